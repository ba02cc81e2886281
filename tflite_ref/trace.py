"""Step through a model operator by operator: what flowed in and out of each one.

``for step in tflite_ref.trace(model, inputs): ...`` runs subgraph 0 once with the reference
kernels and yields one :class:`TraceStep` per operator, in execution order: every input and
output tensor as a :class:`TensorStats` (shape, dtype, quantization, min/max/mean in stored and
real units, the share of saturated elements, optionally the first values).

It is built on the interpreter's observer (``Interpreter.invoke(observer=...)``), so the numbers
are the ones the interpreter computed, not a second execution.  ``until=N`` stops after operator
N; an error inside an operator ends the trace there and is kept in :attr:`Trace.error`, so the
steps that ran stay visible.  Nothing here prints: ``tflite-ref trace`` renders the result.

:func:`prepared_interpreter` (an allocated interpreter with inputs set from names, positions or
random values) is shared by ``explain`` and ``report``.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_ref.errors import TFLiteRefError, UsageError
from tflite_ref.interpreter import Interpreter
from tflite_ref.model.model import Model, Operator, Tensor
from tflite_ref.model.reader import load
from tflite_ref.runner import random_input

DEFAULT_VALUES = 8  # first values shown per tensor when values are asked for without a count


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TensorStats:
    """One tensor as an operator saw it.

    ``min``/``max``/``mean`` are of the stored values (the integers of a quantized tensor);
    ``real_*`` are the same in real units, ``scale·(q − zero_point)``, for per-tensor quantized
    tensors (None otherwise).  ``at_min``/``at_max`` are the shares of elements at the integer
    type's lowest and highest value; ``saturation`` is their sum, except that the lowest value
    is left out when it is the zero point (a ReLU output with ``z = -128`` holds real zeros
    there, not clipped values).  All three are None for float tensors, ``saturation`` also for
    constants.
    """

    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    constant: bool
    scale: tuple[float, ...]  # () unquantized; one entry per tensor, or one per channel
    zero_point: tuple[int, ...]
    quantized_dimension: int
    size: int
    min: float | None
    max: float | None
    mean: float | None
    real_min: float | None
    real_max: float | None
    real_mean: float | None
    at_min: float | None
    at_max: float | None
    saturation: float | None
    non_finite: int  # NaN and infinities (float tensors)
    values: tuple[float, ...] = ()  # first values (stored units), when asked for

    @property
    def quantized(self) -> bool:
        return bool(self.scale)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "name": self.name, "dtype": self.dtype,
            "shape": list(self.shape), "constant": self.constant,
            "quantization": ({"scale": list(self.scale), "zero_point": list(self.zero_point),
                              "quantized_dimension": self.quantized_dimension}
                             if self.scale else None),
            "size": self.size, "min": self.min, "max": self.max, "mean": self.mean,
            "real_min": self.real_min, "real_max": self.real_max, "real_mean": self.real_mean,
            "at_min": self.at_min, "at_max": self.at_max,
            "saturation": self.saturation, "non_finite": self.non_finite,
            "values": list(self.values),
        }


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One executed operator: its inputs (None for an absent optional input) and outputs."""

    subgraph: int
    index: int  # operator index in its subgraph
    opcode: str
    version: int
    options: Mapping[str, Any]  # the options that matter for reading (inspect.key_options)
    inputs: tuple[TensorStats | None, ...]
    outputs: tuple[TensorStats, ...]
    seconds: float  # wall time of the kernel (approximate: measured between observer calls)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subgraph": self.subgraph, "operator": self.index, "opcode": self.opcode,
            "version": self.version, "options": dict(self.options),
            "inputs": [None if t is None else t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "seconds": self.seconds,
        }

    def _repr_html_(self) -> str:
        return step_html(self)


@dataclass(frozen=True, slots=True)
class Trace:
    """The steps of one run; iterating over it yields the :class:`TraceStep` objects."""

    model: str
    emulate: str
    seed: int | None
    operators: int  # operators in subgraph 0
    inputs: tuple[TensorStats, ...]  # the model inputs that were fed
    steps: tuple[TraceStep, ...] = field(default=())
    stopped_after: int | None = None  # ``until``: the operator after which the run stopped
    error: str | None = None  # an operator failed: the message (the steps before it are kept)

    def __iter__(self) -> Iterator[TraceStep]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, k: int) -> TraceStep:
        return self.steps[k]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "emulate": self.emulate, "seed": self.seed,
            "operators": self.operators, "inputs": [t.to_dict() for t in self.inputs],
            "steps": [s.to_dict() for s in self.steps], "stopped_after": self.stopped_after,
            "error": self.error,
        }

    def _repr_html_(self) -> str:
        parts = [(f"<div><b>{html.escape(self.model)}</b> &middot; emulating "
                 f"{html.escape(self.emulate)} &middot; {len(self.steps)} of {self.operators} "
                 "operators</div>")]
        parts.extend(step_html(s) for s in self.steps)
        if self.error:
            parts.append(f"<div style='color:#b00'>{html.escape(self.error)}</div>")
        return "\n".join(parts)


# ------------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------------
def tensor_stats(t: Tensor, value: np.ndarray | None, values: int = 0) -> TensorStats:
    """The :class:`TensorStats` of tensor ``t`` holding ``value`` (None: no value)."""
    q = t.quantization
    scale = tuple(float(s) for s in q.scale) if q is not None and q.is_quantized else ()
    zps = tuple(int(z) for z in q.zero_point) if scale and q is not None else ()
    qdim = q.quantized_dimension if q is not None else 0
    arr = None if value is None else np.asarray(value)
    shape = tuple(arr.shape) if arr is not None else t.shape
    size = int(arr.size) if arr is not None else t.num_elements
    lo = hi = mean = rlo = rhi = rmean = sat = at_min = at_max = None
    non_finite = 0
    first: tuple[float, ...] = ()
    if arr is not None and arr.size and arr.dtype.kind in "biuf":
        flat = arr.reshape(-1)
        if arr.dtype.kind == "f":
            finite = np.isfinite(flat)
            non_finite = int(flat.size - np.count_nonzero(finite))
            nums = flat[finite].astype(np.float64)
        else:
            nums = flat.astype(np.float64)
        if nums.size:
            lo, hi, mean = float(nums.min()), float(nums.max()), float(nums.mean())
            if len(scale) == 1 and arr.dtype.kind in "iu":
                s, z = scale[0], zps[0] if zps else 0
                rlo, rhi, rmean = s * (lo - z), s * (hi - z), s * (mean - z)
        if arr.dtype.kind in "iu":
            info = np.iinfo(arr.dtype)
            at_min = float(np.count_nonzero(flat == info.min)) / flat.size
            at_max = float(np.count_nonzero(flat == info.max)) / flat.size
            relu_zero = len(zps) == 1 and zps[0] == info.min
            # Constants are not clipped by anything: a weight at 127 is just a large weight.
            sat = None if t.is_constant else at_max + (0.0 if relu_zero else at_min)
        if values:
            first = tuple(float(v) if arr.dtype.kind == "f" else int(v)
                          for v in flat[:values].tolist())
    return TensorStats(
        index=t.index, name=t.name, dtype=t.type_name, shape=shape, constant=t.is_constant,
        scale=scale, zero_point=zps, quantized_dimension=qdim, size=size, min=lo, max=hi,
        mean=mean, real_min=rlo, real_max=rhi, real_mean=rmean, at_min=at_min, at_max=at_max,
        saturation=sat,
        non_finite=non_finite, values=first)


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------
def as_model(model: Model | str | os.PathLike[str] | bytes) -> Model:
    return model if isinstance(model, Model) else load(model)


def _input_index(model: Model, name: str) -> int:
    """An input named by signature name, tensor name or position (``"0"``)."""
    sg = model.subgraphs[0]
    for sd in model.signatures:
        if sd.subgraph_index == 0 and name in sd.inputs:
            return sd.inputs[name]
    for ti in sg.inputs:
        if sg.tensors[ti].name == name:
            return ti
    if name.isdigit() and int(name) < len(sg.inputs):
        return sg.inputs[int(name)]
    raise UsageError(f"the model has no input named {name!r}; inputs: "
                     + ", ".join(repr(sg.tensors[i].name) for i in sg.inputs))


def _coerce(t: Tensor, value: Any) -> np.ndarray:
    """``value`` as tensor ``t`` stores it; real (float) values for a quantized input are
    quantized as QUANTIZE does (float32 division, ties away from zero; quantize.cc)."""
    arr: np.ndarray = np.asarray(value)
    if t.dtype is None or arr.dtype == t.dtype:
        return arr
    q = t.quantization
    if arr.dtype.kind == "f" and t.dtype.kind in "iu" and q is not None and q.scale.size == 1:
        info = np.iinfo(t.dtype)
        v = (arr.astype(np.float32) / np.float32(q.scale[0])).astype(np.float64)
        r = np.trunc(v + np.copysign(0.5, v))
        return np.asarray(np.clip(r + int(q.zero_point[0]), info.min, info.max), t.dtype)
    return np.asarray(arr, t.dtype)


def prepared_interpreter(model: Model, inputs: Mapping[str, Any] | Sequence[Any] | None = None,
                         *, seed: int | None = 0, emulate: str = "tflite"
                         ) -> tuple[Interpreter, dict[int, np.ndarray]]:
    """An allocated :class:`Interpreter` for subgraph 0 with every input set.

    ``inputs``: a mapping (signature name, tensor name or position -> array) or a sequence in
    input order; inputs not given are random (``runner.random_input``, seeded).  Raises
    :class:`~tflite_ref.errors.UnsupportedOpError` when an operator has no kernel.
    Returns the interpreter and the fed arrays by tensor index.
    """
    sg = model.subgraphs[0]
    given: dict[int, np.ndarray] = {}
    if inputs is not None:
        pairs = (inputs.items() if isinstance(inputs, Mapping)
                 else ((str(k), v) for k, v in enumerate(inputs)))
        for name, value in pairs:
            ti = _input_index(model, str(name))
            given[ti] = _coerce(sg.tensors[ti], value)
    it = Interpreter(model=model, emulate=emulate)
    for ti, arr in given.items():
        if tuple(arr.shape) != sg.tensors[ti].shape:
            it.resize_tensor_input(ti, arr.shape)
    it.allocate_tensors()
    rng = np.random.default_rng(seed)
    details = {d["index"]: d for d in it.get_input_details()}
    feed: dict[int, np.ndarray] = {}
    for ti in sg.inputs:
        value = given.get(ti)
        if value is None:
            shape = tuple(int(d) for d in details[ti]["shape"])
            value = random_input(sg.tensors[ti], shape, rng)
        it.set_tensor(ti, value)
        feed[ti] = value
    return it, feed


# ------------------------------------------------------------------------------------------------
# The tool
# ------------------------------------------------------------------------------------------------
class _Stop(Exception):
    """Raised from the observer to end the run after ``until``."""


def trace(model: Model | str | os.PathLike[str] | bytes,
          inputs: Mapping[str, Any] | Sequence[Any] | None = None, *,
          until: int | None = None, op: int | None = None, values: int = 0,
          emulate: str = "tflite", seed: int | None = 0) -> Trace:
    """Run subgraph 0 once and record every operator; iterate the result for the steps.

    ``until``: stop after operator ``until``.  ``op``: keep only that operator's step (the
    run stops after it).  ``values``: how many first values of each tensor to keep.
    Operators of called subgraphs (WHILE, IF bodies) run inside their caller's step.
    """
    m = as_model(model)
    n_ops = len(m.subgraphs[0].operators)
    for what, k in (("--until", until), ("--op", op)):
        if k is not None and not 0 <= k < n_ops:
            raise UsageError(f"{what} {k}: subgraph 0 has operators 0..{n_ops - 1}")
    if values < 0:
        raise UsageError("values must be >= 0")
    it, feed = prepared_interpreter(m, inputs, seed=seed, emulate=emulate)
    sg = m.subgraphs[0]
    stop = min(k for k in (until, op, n_ops - 1) if k is not None)
    steps: list[TraceStep] = []
    from tflite_ref.inspect import key_options  # late: inspect is heavier than trace needs

    clock = [time.perf_counter()]

    def observer(si: int, index: int, operator: Operator, ins: Sequence[np.ndarray | None],
                 outs: Sequence[np.ndarray]) -> None:
        seconds = time.perf_counter() - clock[0]
        if si == 0 and (op is None or index == op):
            tens = m.subgraphs[si].tensors
            in_stats = tuple(None if ti < 0 else tensor_stats(tens[ti], v, values)
                             for ti, v in zip(operator.inputs, ins))
            out_stats = tuple(tensor_stats(tens[ti], v, values)
                              for ti, v in zip(operator.outputs, outs))
            steps.append(TraceStep(si, index, operator.opcode, operator.version,
                                   key_options(operator), in_stats, out_stats, seconds))
        if si == 0 and index >= stop and stop < n_ops - 1:
            raise _Stop
        clock[0] = time.perf_counter()

    error = None
    stopped = None
    try:
        it.invoke(observer=observer)
    except _Stop:
        stopped = stop
    except TFLiteRefError as exc:
        error = str(exc)
    return Trace(model=m.path or "<bytes>", emulate=emulate, seed=seed, operators=n_ops,
                 inputs=tuple(tensor_stats(sg.tensors[ti], feed[ti], values) for ti in sg.inputs),
                 steps=tuple(steps), stopped_after=stopped, error=error)


# ------------------------------------------------------------------------------------------------
# HTML (Jupyter)
# ------------------------------------------------------------------------------------------------
def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def _quant_text(t: TensorStats) -> str:
    if not t.scale:
        return ""
    if len(t.scale) == 1:
        return f"s={t.scale[0]:.6g} z={t.zero_point[0] if t.zero_point else 0}"
    return f"{len(t.scale)} scales (dim {t.quantized_dimension})"


def step_html(step: TraceStep) -> str:
    """A small table for one step (Jupyter's ``_repr_html_``)."""
    opts = ", ".join(f"{k}={v}" for k, v in step.options.items())
    rows = []
    for role, items in (("in", step.inputs), ("out", step.outputs)):
        for t in items:
            if t is None:
                continue
            real = (f"[{_num(t.real_min)}, {_num(t.real_max)}]" if t.real_min is not None else "")
            sat = "" if t.saturation is None else f"{100 * t.saturation:.1f}%"
            rows.append(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
                    role, t.index, t.name[-40:], t.dtype, "x".join(map(str, t.shape)),
                    _quant_text(t) + (" const" if t.constant else ""),
                    f"[{_num(t.min)}, {_num(t.max)}]", _num(t.mean), real, sat,
                    " ".join(str(v) for v in t.values))) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("", "#", "name", "dtype", "shape", "quant",
                                             "min..max", "mean", "real", "sat", "values"))
    return (f"<div><b>op {step.index} {html.escape(step.opcode)}</b> "
            f"<span style='color:#666'>{html.escape(opts)}</span>"
            f"<table><tr>{head}</tr>{''.join(rows)}</table></div>")


__all__ = ["DEFAULT_VALUES", "TensorStats", "Trace", "TraceStep", "as_model",
           "prepared_interpreter", "tensor_stats", "trace"]
