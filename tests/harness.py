"""Run a model in tflite_ref and in the real runtimes, and compare tensor by tensor.

Truth comes from the runtimes, live: LiteRT's reference kernels
(``OpResolverType.BUILTIN_REF`` with ``experimental_preserve_all_tensors=True``) for
``emulate="tflite"``, and the TFLite Micro Python interpreter for ``emulate="tflm"``.

Integer tensors must match exactly, and so must float tensors by default: every float kernel adds
in the runtimes' order and calls the same C library functions, so a float32 output is the
runtime's bits (``rtol``/``atol`` remain for comparisons with something other than a runtime).
A failure message carries Polygraphy-style statistics: max/mean abs error, mismatch count and the
tolerance that would have passed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterable, Mapping, Sequence

import flatbuffers
import numpy as np

import tflite_ref

FLOAT_KINDS = "fc"


# -- runtimes -------------------------------------------------------------------------------------
def litert_interpreter(model_bytes: bytes, preserve_all: bool = True):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(model_content=model_bytes,
                       experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                       experimental_preserve_all_tensors=preserve_all)


def run_litert(model_bytes: bytes, inputs: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
    """Every tensor of subgraph 0 that LiteRT can show after invoke, by index."""
    it = litert_interpreter(model_bytes)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    out: dict[int, np.ndarray] = {}
    for d in it.get_tensor_details():
        try:
            out[d["index"]] = np.array(it.get_tensor(d["index"]))
        except ValueError:  # tensors without data (e.g. optional, or freed)
            continue
    return out


def run_litert_outputs(model_bytes: bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Outputs only, without preserve_all_tensors (that flag has changed outputs in some builds)."""
    it = litert_interpreter(model_bytes, preserve_all=False)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [np.array(it.get_tensor(d["index"])) for d in it.get_output_details()]


def run_tflm(model_bytes: bytes, inputs: Sequence[np.ndarray], arena_size: int = 64 << 20
             ) -> list[np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model_bytes, arena_size=arena_size)
    for k, x in enumerate(inputs):
        it.set_input(x, k)
    it.invoke()
    n_out = len(tflite_ref.load(model_bytes).subgraphs[0].outputs)
    return [np.array(it.get_output(k)) for k in range(n_out)]


def run_ours(model_bytes: bytes, inputs: Sequence[np.ndarray], emulate: str = "tflite"
             ) -> tflite_ref.Interpreter:
    it = tflite_ref.Interpreter(model_content=model_bytes, emulate=emulate)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it


# -- inputs ---------------------------------------------------------------------------------------
def random_inputs(model_bytes: bytes, rng: np.random.Generator) -> list[np.ndarray]:
    """Dtype-appropriate random values for each input of subgraph 0."""
    model = tflite_ref.load(model_bytes)
    sg = model.subgraphs[0]
    return [random_array(sg.tensors[i].shape, sg.tensors[i].dtype, rng) for i in sg.inputs]


def random_array(shape: Sequence[int], dtype: np.dtype, rng: np.random.Generator,
                 low: float = -4.0, high: float = 4.0) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.uniform(low, high, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -(2**31)), min(info.max, 2**31 - 1)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


# -- comparison -----------------------------------------------------------------------------------
def diff_stats(ours: np.ndarray, ref: np.ndarray) -> str:
    a = ours.astype(np.float64)
    b = ref.astype(np.float64)
    err = np.abs(a - b)
    mism = int(np.count_nonzero(a != b))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(b != 0, err / np.abs(b), np.where(err == 0, 0, np.inf))
    worst = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
    return (f"max abs err {err.max() if err.size else 0:.6g}, mean abs err "
            f"{err.mean() if err.size else 0:.6g}, {mism}/{err.size} elements differ, min rtol to "
            f"pass {rel.max() if rel.size else 0:.3g}; worst at {tuple(int(i) for i in worst)}: "
            f"ours {a[worst] if err.size else None} vs ref {b[worst] if err.size else None}")


def assert_tensor_matches(ours: np.ndarray, ref: np.ndarray, what: str, rtol: float = 0.0,
                          atol: float = 0.0, magnitude_relative: bool = False) -> None:
    """Shape, then dtype, then values: exactly, unless a float tolerance is given."""
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != reference {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != reference {ref.dtype}"
    if ref.dtype.kind == "c":  # compare real and imaginary parts alike
        assert_tensor_matches(ours.real.copy(), ref.real.copy(), what + " (real)", rtol, atol,
                              magnitude_relative)
        assert_tensor_matches(ours.imag.copy(), ref.imag.copy(), what + " (imag)", rtol, atol,
                              magnitude_relative)
        return
    if ref.dtype.kind in FLOAT_KINDS:
        a, b = ours.astype(np.float64), ref.astype(np.float64)
        if magnitude_relative:
            scale = float(np.max(np.abs(b))) if b.size else 0.0
            ok = np.all(np.abs(a - b) <= rtol * scale + atol) and np.array_equal(
                np.isnan(a), np.isnan(b))
        else:
            ok = np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
        assert ok, f"{what}: float mismatch: {diff_stats(ours, ref)}"
    else:
        assert np.array_equal(ours, ref), f"{what}: integer mismatch: {diff_stats(ours, ref)}"


def assert_matches_litert(model_bytes: bytes, inputs: Sequence[np.ndarray], rtol: float = 0.0,
                          atol: float = 0.0, magnitude_relative: bool = False,
                          skip: Iterable[int] = ()) -> int:
    """Every tensor LiteRT exposes equals ours (emulate='tflite'). Returns how many were compared."""
    ref = run_litert(model_bytes, inputs)
    ours = run_ours(model_bytes, inputs, "tflite")
    sg = ours.model.subgraphs[0]
    skip = set(skip) | {i for op in sg.operators for i in op.intermediates}
    compared = 0
    for ti, r in ref.items():
        if ti >= len(sg.tensors):
            continue  # LiteRT's own temporaries (kernel scratch tensors) come after the model's
        if ti in skip or sg.tensors[ti].data is not None and not sg.tensors[ti].is_variable:
            continue
        producer = _producer(sg, ti)
        what = f"tensor {ti} {sg.tensors[ti].name!r} ({producer})"
        assert_tensor_matches(ours.get_tensor(ti), r, what, rtol, atol, magnitude_relative)
        compared += 1
    return compared


def assert_matches_tflm(model_bytes: bytes, inputs: Sequence[np.ndarray], rtol: float = 0.0,
                        atol: float = 0.0, magnitude_relative: bool = False) -> None:
    ref = run_tflm(model_bytes, inputs)
    ours = run_ours(model_bytes, inputs, "tflm")
    sg = ours.model.subgraphs[0]
    for k, (ti, r) in enumerate(zip(sg.outputs, ref)):
        what = f"output {k} tensor {ti} {sg.tensors[ti].name!r} ({_producer(sg, ti)}) vs TFLM"
        assert_tensor_matches(ours.get_tensor(ti), r.reshape(ours.get_tensor(ti).shape)
                              if r.size == ours.get_tensor(ti).size else r,
                              what, rtol, atol, magnitude_relative)


def _producer(sg: tflite_ref.model.Subgraph, ti: int) -> str:
    for op in sg.operators:
        if ti in op.outputs:
            return f"output of operator {op.index} {op.opcode}"
    return "input" if ti in sg.inputs else "not produced"


def feed_by_name(model_bytes: bytes, values: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    model = tflite_ref.load(model_bytes)
    sg = model.subgraphs[0]
    return [values[sg.tensors[i].name] for i in sg.inputs]


# -- the dev-only model generators, importable as modules --------------------------------------
def part2_models() -> ModuleType:
    """``tests/models/part2/make_models.py`` (the builders of the control-flow, variable, sparse
    and custom-op fixtures) as a module, loaded once per session."""
    name = "tests_part2_make_models"
    if name not in sys.modules:
        path = Path(__file__).parent / "models" / "part2" / "make_models.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


# -- hostile files shared by the load-error and hostile-class tests --------------------------------
def aliasing_bomb(n_alias: int, n_tensors: int) -> bytes:
    """A model whose ``subgraphs`` vector references one subgraph of ``n_tensors`` tensors
    ``n_alias`` times: a few KB that a naive reader decodes as ``n_alias * n_tensors`` tables."""
    fb_tensor, fb_subgraph, fb_model, fb_buffer = (
        importlib.import_module(f"tflite.{n}") for n in ("Tensor", "SubGraph", "Model", "Buffer"))
    b = flatbuffers.Builder(1 << 16)
    name = b.CreateString("t")
    tensors = []
    for _ in range(n_tensors):
        fb_tensor.TensorStart(b)
        fb_tensor.TensorAddName(b, name)
        tensors.append(fb_tensor.TensorEnd(b))
    fb_subgraph.SubGraphStartTensorsVector(b, len(tensors))
    for t in reversed(tensors):
        b.PrependUOffsetTRelative(t)
    tvec = b.EndVector()
    fb_subgraph.SubGraphStart(b)
    fb_subgraph.SubGraphAddTensors(b, tvec)
    sg = fb_subgraph.SubGraphEnd(b)
    fb_model.ModelStartSubgraphsVector(b, n_alias)
    for _ in range(n_alias):
        b.PrependUOffsetTRelative(sg)
    sgs = b.EndVector()
    fb_buffer.BufferStart(b)
    buf0 = fb_buffer.BufferEnd(b)
    fb_model.ModelStartBuffersVector(b, 1)
    b.PrependUOffsetTRelative(buf0)
    bufs = b.EndVector()
    fb_model.ModelStart(b)
    fb_model.ModelAddVersion(b, 3)
    fb_model.ModelAddSubgraphs(b, sgs)
    fb_model.ModelAddBuffers(b, bufs)
    b.Finish(fb_model.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())
