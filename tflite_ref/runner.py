"""Run a model once on given or random inputs and summarise what came out (``tflite-ref run``).

The tool returns a :class:`RunResult` dataclass; the CLI renders it. Random inputs follow the
input's type: the full range for 8/16-bit integers, small non-negative values for int32/int64
(often indices or lengths), uniform [-1, 1) for floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from tflite_ref import budgets
from tflite_ref.errors import UsageError
from tflite_ref.interpreter import Interpreter
from tflite_ref.model.model import Model, Tensor


@dataclass(frozen=True, slots=True)
class TensorSummary:
    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    min: float | None
    max: float | None
    mean: float | None
    top5: tuple[tuple[int, float], ...] = ()  # (class index, value) for classifier-shaped outputs
    dequantized: bool = False  # min/max/mean in real units (scale * (q - zero_point))


@dataclass(frozen=True, slots=True)
class RunResult:
    model: str
    emulate: str
    seed: int | None
    inputs: tuple[TensorSummary, ...]
    outputs: tuple[TensorSummary, ...]
    tensors: Mapping[int, np.ndarray]  # every tensor of subgraph 0 after invoke


def random_input(t: Tensor, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    dtype = t.dtype
    if dtype is None or dtype == np.dtype(object):
        raise UsageError(f"input tensor {t.index} {t.name!r} is {t.type_name}; give it with --input")
    budgets.check_allocation(f"subgraph 0, tensor {t.index} {t.name!r}", shape, dtype.itemsize)
    if dtype.kind == "f":
        return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.kind in "iu" and dtype.itemsize <= 2:
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    return rng.integers(0, 10, size=shape).astype(dtype)


def summarise(t: Tensor, value: np.ndarray) -> TensorSummary:
    q = t.quantization
    real = value
    dequantized = False
    if q is not None and q.scale.size == 1 and value.dtype.kind in "iu" and float(q.scale[0]) > 0:
        real = (value.astype(np.float64) - float(q.zero_point[0])) * float(q.scale[0])
        dequantized = True
    finite = real.astype(np.float64) if real.dtype.kind in "fiub" else None
    top5: tuple[tuple[int, float], ...] = ()
    if finite is not None and finite.size >= 2 and (finite.ndim == 1 or
                                                    finite.size == finite.shape[-1]):
        flat = finite.reshape(-1)
        order = np.argsort(-flat, kind="stable")[:5]
        top5 = tuple((int(i), float(flat[i])) for i in order)
    return TensorSummary(
        index=t.index, name=t.name, dtype=t.type_name, shape=tuple(value.shape),
        min=float(finite.min()) if finite is not None and finite.size else None,
        max=float(finite.max()) if finite is not None and finite.size else None,
        mean=float(finite.mean()) if finite is not None and finite.size else None,
        top5=top5, dequantized=dequantized,
    )


def run_model(model: Model, inputs: Mapping[str, np.ndarray] | None = None, seed: int | None = 0,
              emulate: str = "tflite",
              on_operator: Callable[[int, int], None] | None = None) -> RunResult:
    """Run subgraph 0 once. ``inputs`` maps input tensor names (or signature names) to arrays;
    inputs not given are random. ``on_operator(done, total)`` reports progress."""
    it = Interpreter(model=model, emulate=emulate)
    sg = model.subgraphs[0]
    given = dict(inputs or {})
    aliases = {}
    for sd in model.signatures:
        if sd.subgraph_index == 0:
            aliases.update({name: ti for name, ti in sd.inputs.items()})
    feed: dict[int, np.ndarray] = {}
    for name, value in given.items():
        ti = aliases.get(name)
        if ti is None:
            ti = next((i for i in sg.inputs if sg.tensors[i].name == name), None)
        if ti is None and name.isdigit() and int(name) < len(sg.inputs):
            ti = sg.inputs[int(name)]
        if ti is None:
            raise UsageError(f"the model has no input named {name!r}; inputs: "
                             + ", ".join(repr(sg.tensors[i].name) for i in sg.inputs))
        t = sg.tensors[ti]
        arr = np.asarray(value)
        if t.dtype is not None and arr.dtype != t.dtype:
            if arr.dtype.kind == "f" and t.dtype.kind in "iu" and t.quantization is not None \
                    and t.quantization.scale.size == 1:
                # Real values for a quantized input: quantize as TFLite's QUANTIZE does.
                s, z = float(t.quantization.scale[0]), int(t.quantization.zero_point[0])
                info = np.iinfo(t.dtype)
                v = (arr.astype(np.float32) / np.float32(s)).astype(np.float64)  # float32 division
                q = np.trunc(v + np.copysign(0.5, v))  # std::round: half away from zero
                arr = np.clip(q + z, info.min, info.max).astype(t.dtype)
            else:
                arr = arr.astype(t.dtype)
        if tuple(arr.shape) != t.shape:
            it.resize_tensor_input(ti, arr.shape)
        feed[ti] = arr
    it.allocate_tensors()
    rng = np.random.default_rng(seed)
    details = {d["index"]: d for d in it.get_input_details()}
    for ti in sg.inputs:
        fed = feed.get(ti)
        if fed is None:
            fed = random_input(sg.tensors[ti], tuple(int(d) for d in details[ti]["shape"]), rng)
            feed[ti] = fed
        it.set_tensor(ti, fed)
    total = len(sg.operators)

    def observer(subgraph: int, index: int, *_: object) -> None:
        # Operators inside called subgraphs (WHILE bodies, IF branches) are observed too;
        # progress counts the main graph's operators.
        if on_operator is not None and subgraph == 0:
            on_operator(index + 1, total)

    it.invoke(observer=observer if on_operator is not None else None)
    tensors: dict[int, np.ndarray] = {}
    for t in sg.tensors:
        try:
            tensors[t.index] = it.get_tensor(t.index)
        except UsageError:
            continue  # a tensor nothing wrote (e.g. an unused optional slot)
    return RunResult(
        model=model.path or "<bytes>", emulate=emulate, seed=seed,
        inputs=tuple(summarise(sg.tensors[i], feed[i]) for i in sg.inputs),
        outputs=tuple(summarise(sg.tensors[i], tensors[i]) for i in sg.outputs),
        tensors=tensors,
    )
