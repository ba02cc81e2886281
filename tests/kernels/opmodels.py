"""Single-operator models for the kernel tests, and their runs in tflite_ref and the runtimes.

A test describes the operator's tensors as :class:`S` (shape, dtype name, constant data,
quantization: the keywords of :meth:`tflite_ref.model.writer.SubgraphBuilder.tensor`), builds the
model with :func:`op_model` and compares tflite_ref with the runtimes through
:func:`check_model` -- LiteRT's reference kernels on every tensor, TFLite Micro on the outputs
(:mod:`harness` does the comparing, and leaves out LiteRT's own scratch tensors and operator
intermediates).  :func:`check` does all three for random inputs.  The family test files keep
builders in their own terms (``build(op, shape, dtype, q_in, q_out)`` ...) as thin front ends
to :func:`op_model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from harness import (
    assert_matches_litert,
    assert_matches_tflm,
    litert_interpreter,
    random_array,
    run_litert_outputs,
    run_ours,
    run_tflm,
)

import tflite_ref
from tflite_ref.model.writer import ModelBuilder

__all__ = ["MIN_VERSION", "S", "check", "check_model", "const", "litert_fails",
           "litert_rejects", "model_inputs", "np_dtype", "op_model", "ours_fails", "ours_output",
           "prepared", "q", "run_litert_builtin", "t", "tflm_rejects"]


# -- building -------------------------------------------------------------------------------------
@dataclass
class S:
    """A tensor of a one-op model: ``data`` makes it a constant, otherwise a model input."""

    shape: Sequence[int]
    dtype: str
    data: Any = None
    scale: float | Sequence[float] | None = None
    zero_point: int | Sequence[int] | None = None
    quantized_dimension: int = 0


def q(shape: Sequence[int], dtype: str, scale: float = 0.05, zero_point: int = 0,
      data: Any = None) -> S:
    """A per-tensor quantized tensor."""
    return S(shape, dtype, data, scale, zero_point)


def const(values: Any, dtype: str = "INT32") -> S:
    arr = np.asarray(values, dtype=np_dtype(dtype))
    return S(arr.shape, dtype, arr)


def t(shape: Sequence[int], dtype: str) -> S:
    """A tensor of ``dtype``; int8/uint8/int16 get a realistic quantization."""
    if dtype == "INT8":
        return q(shape, dtype, 0.05, -3)
    if dtype == "UINT8":
        return q(shape, dtype, 0.05, 128)
    if dtype == "INT16":
        return q(shape, dtype, 0.001, 0)
    return S(shape, dtype)


def np_dtype(dtype: str) -> np.dtype:
    """The NumPy dtype of a schema type name (``"BOOL"`` -> bool)."""
    return np.dtype(bool) if dtype == "BOOL" else np.dtype(dtype.lower())


# LiteRT's BuiltinRefOpResolver registers these from a version above 1 (register_ref.cc).
MIN_VERSION = {"BROADCAST_TO": 2}


def op_model(op: str, ins: Sequence[S | None], outs: Sequence[S],
             options: dict[str, Any] | None = None) -> bytes:
    """A model with the one operator ``op``: tensors ``in0..``, ``out0..`` (in that order); the
    non-constant inputs are the model's inputs, ``None`` is an absent optional input."""
    mb = ModelBuilder(description=f"single {op}")
    sg = mb.subgraph("main")

    def tensor(name: str, s: S | None) -> Any:
        if s is None:
            return None
        return sg.tensor(name, s.shape, s.dtype, data=s.data, scale=s.scale,
                         zero_point=s.zero_point, quantized_dimension=s.quantized_dimension)

    ti = [tensor(f"in{i}", s) for i, s in enumerate(ins)]
    to = [tensor(f"out{j}", s) for j, s in enumerate(outs)]
    sg.operator(op, ti, to, options, version=MIN_VERSION.get(op, 1))
    sg.inputs = [x for x, s in zip(ti, ins) if s is not None and s.data is None]
    sg.outputs = to
    return mb.build()


def model_inputs(ins: Sequence[S | None], rng: np.random.Generator,
                 values: dict[int, Any] | None = None) -> list[np.ndarray]:
    """Random data for the non-constant inputs; ``values[i]`` fixes input slot i."""
    out = []
    for i, s in enumerate(ins):
        if s is None or s.data is not None:
            continue
        if values and i in values:
            out.append(np.asarray(values[i], dtype=np_dtype(s.dtype)))
        else:
            out.append(random_array(s.shape, np_dtype(s.dtype), rng))
    return out


# -- running and comparing ------------------------------------------------------------------------
def check_model(model: bytes, inputs: Sequence[np.ndarray], *, litert: bool = True,
                tflm: bool = True, exact: bool = False, min_compared: int = 1) -> None:
    """tflite_ref against LiteRT ``BUILTIN_REF`` on every tensor it shows (at least
    ``min_compared`` of them) and against TFLite Micro on the outputs, floats bit for bit as
    integers (NaN matches NaN).  ``exact`` also demands bit-identical outputs from a LiteRT run without
    ``experimental_preserve_all_tensors`` (that flag has changed outputs in some builds)."""
    assert litert or tflm, "a case must be compared with at least one runtime"
    if litert:
        assert assert_matches_litert(model, inputs) >= min_compared
        if exact:
            it = run_ours(model, inputs)
            for ti, ref in zip(it.model.subgraphs[0].outputs, run_litert_outputs(model, inputs)):
                np.testing.assert_array_equal(it.get_tensor(ti), ref)
    if tflm:
        assert_matches_tflm(model, inputs)


def check(op: str, ins: Sequence[S | None], outs: Sequence[S],
             options: dict[str, Any] | None, *, tflm: bool = True, seed: int = 0,
             values: dict[int, Any] | None = None) -> None:
    """:func:`op_model` on random inputs (``values`` fixes some) through :func:`check_model`;
    every output must be among the tensors compared with LiteRT."""
    model = op_model(op, ins, outs, options)
    inputs = model_inputs(ins, np.random.default_rng(seed), values)
    check_model(model, inputs, tflm=tflm, min_compared=len(outs))


def prepared(model: bytes, emulate: str = "tflite") -> tflite_ref.Interpreter:
    """A tflite_ref interpreter with its tensors allocated (every kernel's prepare has run)."""
    it = tflite_ref.Interpreter(model_content=model, emulate=emulate)
    it.allocate_tensors()
    return it


def ours_output(model: bytes, inputs: Sequence[np.ndarray], emulate: str = "tflite"
                ) -> np.ndarray:
    """Output 0 of tflite_ref on ``inputs``."""
    it = run_ours(model, inputs, emulate)
    return it.get_tensor(it.get_output_details()[0]["index"])


def ours_fails(model: bytes, error: type[Exception], inputs: Sequence[np.ndarray] = (),
               emulate: str = "tflite") -> str:
    """tflite_ref raises ``error`` in prepare or invoke; returns the message."""
    it = tflite_ref.Interpreter(model_content=model, emulate=emulate)
    with pytest.raises(error) as exc:
        it.allocate_tensors()
        for d, x in zip(it.get_input_details(), inputs):
            it.set_tensor(d["index"], x)
        it.invoke()
    return str(exc.value)


def litert_rejects(model: bytes, inputs: Sequence[np.ndarray] = ()) -> bool:
    """Whether LiteRT (``BUILTIN_REF``) refuses the model or fails to invoke it."""
    try:
        it = litert_interpreter(model)
        it.allocate_tensors()
        for d, x in zip(it.get_input_details(), inputs):
            it.set_tensor(d["index"], x)
        it.invoke()
    except (RuntimeError, ValueError):
        return True
    return False


def litert_fails(model: bytes, inputs: Sequence[np.ndarray] = ()) -> None:
    assert litert_rejects(model, inputs), "LiteRT ran the model"


def tflm_rejects(model: bytes, inputs: Sequence[np.ndarray]) -> bool:
    """Whether TFLite Micro refuses the model or fails to invoke it."""
    try:
        run_tflm(model, inputs)
    except (RuntimeError, ValueError):
        return True
    return False


def run_litert_builtin(model: bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Outputs of LiteRT's default builtin kernels without XNNPACK, for ops its reference
    resolver lacks (ELU, CEIL, ROUND)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model, experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [np.array(it.get_tensor(d["index"])) for d in it.get_output_details()]
