"""Recurrent kernels (svdf.py, lstm.py, rnn.py) against LiteRT BUILTIN_REF and TFLite Micro.

Every case builds a one-operator model with the writer and invokes it **twice** with different
inputs, so that the state variables carry over: after each invoke every tensor LiteRT exposes
(the state variables included) must equal ours (``emulate="tflite"``), and TFLM's outputs must
equal ours (``emulate="tflm"``) -- bit for bit, floats included: every kernel here adds its
float32 terms in the emulated runtime's order (tflite_ref/kernels/recurrent_float.py).

Runtime coverage (what is compared against what, and why not more):

* SVDF float32 and int8/int16-state: LiteRT and TFLM.  int8 state: TFLM only -- LiteRT reads an
  int8 state as int16 and runs off the end of the buffer (heap corruption), so it never runs it;
  ``emulate="tflite"`` refuses the model.
* UNIDIRECTIONAL_SEQUENCE_LSTM plain float32 and int8: LiteRT and TFLM.  CIFG, peephole,
  projection, layer norm and diagonal recurrent weights: LiteRT only (TFLM's LSTM rejects them).
* BIDIRECTIONAL_SEQUENCE_LSTM, RNN, UNIDIRECTIONAL_SEQUENCE_RNN float32: LiteRT only (TFLM has
  none of these ops).
* Hybrid (float activations and states, int8/uint8 weights quantized per row at run time)
  UNIDIRECTIONAL_SEQUENCE_LSTM, BIDIRECTIONAL_SEQUENCE_LSTM, SVDF, RNN,
  UNIDIRECTIONAL_SEQUENCE_RNN: LiteRT only (the kernels reproduce its x86 SSE / NEON_2_SSE
  products and Eigen's tanh and sigmoid).  TFLM has no RNN ops, refuses a hybrid SVDF at
  allocation, and runs a hybrid LSTM through its float kernel, reading the int8 weights as floats
  (NaNs): :func:`test_hybrid_in_tflm` checks both and that ``emulate="tflm"`` refuses.

Float32 arithmetic, which the cases' shapes are chosen to reach:

* LiteRT: RNN and SVDF multiply through ``tensor_utils`` (NEON_2_SSE lanes); the LSTM's gate and
  projection products go through Eigen -- a GEMV per row for batch-major input (a ``dot`` for a
  single cell), for a time-major batch one GEMM: the coefficient-based product when
  K + N + B < 20, else ``gebp`` with its 8-row, 4-row and single-row panels (4-column panels
  and single columns) and, past a depth of 680, blocks along k; sigmoid with Eigen's scalar
  lanes at unaligned heads and tails.
* TFLM: reference loops in index order; ``expf`` / ``tanhf`` from the C library, which glibc
  does not round correctly everywhere (:func:`test_tflm_float_tanh_is_the_c_library_tanhf`).

Both runtimes start an int8 variable tensor at its zero point (LiteRT ``ResetVariableTensor``,
tflite/core/api/tensor_utils.cc; TFLM ``MicroInterpreterGraph::ResetTensorData``), and so does
our Interpreter (:func:`test_int8_state_starts_at_zero_point`): LSTM output states with a
non-zero zero point depend on it from the first step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from harness import assert_tensor_matches, litert_interpreter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tflite_ref
from tflite_ref.errors import ModelValidationError, UnsupportedOpError
from tflite_ref.kernels.rnn import eigen_logistic, eigen_scalar_lanes, eigen_tanh
from tflite_ref.model.writer import ModelBuilder, SubgraphBuilder, TensorSpec

Inputs = Sequence[np.ndarray]


# =============================================================================================
# Running a model for several invokes
# =============================================================================================
def ours(model: bytes, emulate: str) -> tflite_ref.Interpreter:
    it = tflite_ref.Interpreter(model_content=model, emulate=emulate)
    it.allocate_tensors()
    return it


def _feed(it: object, details: list[dict], xs: Inputs) -> None:
    for d, x in zip(details, xs):
        it.set_tensor(d["index"], x)  # type: ignore[attr-defined]


def _skipped(model: tflite_ref.model.Model) -> set[int]:
    """Tensors not to compare: constants, the op's intermediates (no values) and LiteRT's
    temporaries (indices past the model's tensors)."""
    sg = model.subgraphs[0]
    skip = {t.index for t in sg.tensors if t.data is not None and not t.is_variable}
    for op in sg.operators:
        skip.update(op.intermediates)
    return skip


def check_litert(model: bytes, invokes: Sequence[Inputs], *,
                 reset_before: int | None = None) -> None:
    """Every tensor LiteRT shows after each invoke equals ours (``emulate="tflite"``), floats bit
    for bit.  ``reset_before=k`` calls ``reset_all_variables()`` on both before invoke ``k``.
    """
    ref = litert_interpreter(model)
    ref.allocate_tensors()
    it = ours(model, "tflite")
    sg = it.model.subgraphs[0]
    skip = _skipped(it.model)
    for k, xs in enumerate(invokes):
        if reset_before == k:
            ref.reset_all_variables()
            it.reset_all_variables()
        _feed(ref, ref.get_input_details(), xs)
        _feed(it, it.get_input_details(), xs)
        ref.invoke()
        it.invoke()
        compared = 0
        for d in ref.get_tensor_details():
            ti = d["index"]
            if ti >= len(sg.tensors) or ti in skip:
                continue
            try:
                theirs = np.array(ref.get_tensor(ti))
            except ValueError:
                continue
            assert_tensor_matches(it.get_tensor(ti), theirs,
                                  f"invoke {k}: tensor {ti} {sg.tensors[ti].name!r}", rtol=0.0,
                                  atol=0.0)
            compared += 1
        assert compared >= 2 + len(sg.inputs)  # inputs, the output, at least one state


def check_tflm(model: bytes, invokes: Sequence[Inputs]) -> None:
    """TFLM's outputs after each invoke equal ours (``emulate="tflm"``), floats bit for bit."""
    from tflite_micro.python.tflite_micro import runtime

    ref = runtime.Interpreter.from_bytes(model, arena_size=8 << 20)
    it = ours(model, "tflm")
    sg = it.model.subgraphs[0]
    for k, xs in enumerate(invokes):
        for j, x in enumerate(xs):
            ref.set_input(x, j)
        _feed(it, it.get_input_details(), xs)
        ref.invoke()
        it.invoke()
        for j, ti in enumerate(sg.outputs):
            mine = it.get_tensor(ti)
            theirs = np.array(ref.get_output(j)).reshape(mine.shape)
            assert_tensor_matches(mine, theirs, f"invoke {k}: output {j} vs TFLM", rtol=0.0,
                                  atol=0.0)


def random_invokes(model: bytes, rng: np.random.Generator, n: int = 2,
                   float_range: float = 2.0) -> list[list[np.ndarray]]:
    sg = tflite_ref.load(model).subgraphs[0]
    out = []
    for _ in range(n):
        xs = []
        for i in sg.inputs:
            t = sg.tensors[i]
            if t.dtype.kind == "f":
                xs.append(rng.uniform(-float_range, float_range, t.shape).astype(t.dtype))
            else:
                info = np.iinfo(t.dtype)
                xs.append(rng.integers(info.min, info.max, t.shape, endpoint=True).astype(t.dtype))
        out.append(xs)
    return out


def _int_data(rng: np.random.Generator, shape: Sequence[int], dtype: str, limit: int | None = None
              ) -> np.ndarray:
    info = np.iinfo(np.dtype(dtype.lower()))
    hi = int(info.max) if limit is None else limit
    return rng.integers(-hi, hi, shape, endpoint=True).astype(dtype.lower())


def hybrid_weights(sg: SubgraphBuilder, rng: np.random.Generator, name: str,
                   shape: Sequence[int], *, sd: float = 0.4, weight_type: str = "INT8",
                   minus_128: bool = False) -> TensorSpec:
    """Float weights quantized as the converter's dynamic-range mode does: symmetric per tensor,
    ``scale = max|w| / 127``.  ``UINT8`` stores the same bytes in a uint8 tensor (LiteRT's hybrid
    kernels read any 8-bit weights as int8); ``minus_128`` plants -128s, which no converter
    writes and LiteRT's SSE product gets wrong (conv.py ``sse_sign_wrap_mask``)."""
    w = rng.normal(0, sd, shape)
    scale = float(np.abs(w).max()) / 127 or 1.0
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    if minus_128:
        q.reshape(-1)[::5] = -128
    data = q.view(np.uint8) if weight_type == "UINT8" else q
    return sg.tensor(name, shape, weight_type, data=data, scale=scale, zero_point=0)


# =============================================================================================
# SVDF
# =============================================================================================
@dataclass(frozen=True)
class SvdfCase:
    dtype: str  # "FLOAT32", "INT8" or "HYBRID" (float input and state, 8-bit weights)
    batch: int = 1
    input_size: int = 6
    units: int = 4
    rank: int = 2
    memory: int = 5
    activation: str = "RELU"
    bias: bool = True
    state_dtype: str = "INT16"  # integer path: "INT16" or "INT8"
    state_zero_point: int = 0
    input_zero_point: int = -3
    output_zero_point: int = 5
    asymmetric: bool = False  # hybrid: asymmetric_quantize_inputs
    weight_type: str = "INT8"  # hybrid: INT8 or UINT8
    seed: int = 0

    @property
    def id(self) -> str:
        state = f"{self.state_dtype.lower()}state" if self.dtype == "INT8" else ""
        hybrid = ("asym" if self.asymmetric else "sym") if self.dtype == "HYBRID" else ""
        return "-".join(x for x in (
            "svdf", self.dtype.lower(), state, hybrid,
            self.weight_type.lower() if self.weight_type != "INT8" else "",
            f"{self.batch}x{self.input_size}",
            f"u{self.units}r{self.rank}m{self.memory}", self.activation.lower(),
            "" if self.bias else "nobias", f"zs{self.state_zero_point}"
            if self.state_zero_point else "") if x)


def svdf_model(c: SvdfCase) -> bytes:
    rng = np.random.default_rng(c.seed)
    filters = c.units * c.rank
    mb = ModelBuilder(description=c.id)
    sg = mb.subgraph("main")
    if c.dtype == "FLOAT32":
        x = sg.tensor("input", [c.batch, c.input_size], "FLOAT32")
        wf = sg.tensor("weights_feature", [filters, c.input_size], "FLOAT32",
                       data=rng.normal(0, 0.5, (filters, c.input_size)).astype(np.float32))
        wt = sg.tensor("weights_time", [filters, c.memory], "FLOAT32",
                       data=rng.normal(0, 0.5, (filters, c.memory)).astype(np.float32))
        b = sg.tensor("bias", [c.units], "FLOAT32",
                      data=rng.normal(0, 0.5, c.units).astype(np.float32)) if c.bias else None
        state = sg.tensor("state", [c.batch, c.memory * filters], "FLOAT32", is_variable=True)
        y = sg.tensor("output", [c.batch, c.units], "FLOAT32")
    elif c.dtype == "HYBRID":
        x = sg.tensor("input", [c.batch, c.input_size], "FLOAT32")
        wf = hybrid_weights(sg, rng, "weights_feature", [filters, c.input_size], sd=0.5,
                            weight_type=c.weight_type)
        wt = hybrid_weights(sg, rng, "weights_time", [filters, c.memory], sd=0.5,
                            weight_type=c.weight_type)
        b = sg.tensor("bias", [c.units], "FLOAT32",
                      data=rng.normal(0, 0.5, c.units).astype(np.float32)) if c.bias else None
        state = sg.tensor("state", [c.batch, c.memory * filters], "FLOAT32", is_variable=True)
        y = sg.tensor("output", [c.batch, c.units], "FLOAT32")
    else:
        # Scales in the proportions a converter picks: the new state column and the output
        # use a good part of their integer range without saturating everywhere.
        s_in, s_wf = rng.uniform(0.02, 0.08), rng.uniform(0.005, 0.02)
        wide = c.state_dtype == "INT16"
        typical_dot = s_in * s_wf * 64 * 64 * math.sqrt(c.input_size)
        s_state = typical_dot / (1000.0 if wide else 40.0) * rng.uniform(0.7, 1.4)
        s_wt = rng.uniform(1e-4, 4e-4) if wide else rng.uniform(0.005, 0.02)
        wt_typ = 0.5 * (16000 if wide else 64)
        typical_out = s_state * (1000.0 if wide else 40.0) * s_wt * wt_typ * math.sqrt(
            c.memory * c.rank)
        s_out = typical_out / 40.0
        x = sg.tensor("input", [c.batch, c.input_size], "INT8", scale=s_in,
                      zero_point=c.input_zero_point)
        wf = sg.tensor("weights_feature", [filters, c.input_size], "INT8",
                       data=_int_data(rng, (filters, c.input_size), "INT8", 127),
                       scale=s_wf, zero_point=0)
        wt = sg.tensor("weights_time", [filters, c.memory], c.state_dtype,
                       data=_int_data(rng, (filters, c.memory), c.state_dtype,
                                      16000 if wide else 127), scale=s_wt, zero_point=0)
        s_bias = float(np.float32(s_state) * np.float32(s_wt))
        b = sg.tensor("bias", [c.units], "INT32", scale=s_bias, zero_point=0,
                      data=np.round(rng.normal(0, typical_out, c.units) / s_bias).astype(
                          np.int32)) if c.bias else None
        state = sg.tensor("state", [c.batch, c.memory * filters], c.state_dtype, scale=s_state,
                          zero_point=c.state_zero_point, is_variable=True)
        y = sg.tensor("output", [c.batch, c.units], "INT8", scale=s_out,
                      zero_point=c.output_zero_point)
    sg.operator("SVDF", [x, wf, wt, b, state], [y],
                {"rank": c.rank, "fused_activation_function": c.activation,
                 "asymmetric_quantize_inputs": c.asymmetric})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


SVDF_CASES = [
    SvdfCase("FLOAT32"),
    SvdfCase("FLOAT32", batch=2, input_size=3, units=3, rank=1, memory=4, activation="NONE"),
    SvdfCase("FLOAT32", batch=3, units=2, rank=3, memory=1, activation="RELU6", bias=False),
    # NEON lanes with tails in all three LiteRT sums (9 inputs, memory 6, rank 3); TFLM's tanhf
    SvdfCase("FLOAT32", batch=2, input_size=9, units=5, rank=3, memory=6, activation="TANH"),
    SvdfCase("INT8"),
    SvdfCase("INT8", batch=2, input_size=16, units=8, rank=1, memory=8),
    SvdfCase("INT8", batch=3, input_size=5, units=3, rank=3, memory=2, bias=False),
]


@pytest.mark.parametrize("case", SVDF_CASES, ids=lambda c: c.id)
def test_svdf_vs_litert(case: SvdfCase) -> None:
    model = svdf_model(case)
    check_litert(model, random_invokes(model, np.random.default_rng(case.seed), n=3))


# TFLM's SVDF Prepare reads the bias scale unconditionally: models without bias crash it.
@pytest.mark.parametrize("case", [c for c in SVDF_CASES if c.bias] + [
    SvdfCase("INT8", state_dtype="INT8", state_zero_point=-50),
    SvdfCase("INT8", batch=2, input_size=9, units=4, rank=2, memory=3, state_dtype="INT8",
             state_zero_point=7, input_zero_point=-128, output_zero_point=-128),
    # A non-zero int16 state zero point: TFLM honours it, LiteRT assumes 0.
    SvdfCase("INT8", state_zero_point=300),
], ids=lambda c: c.id)
def test_svdf_vs_tflm(case: SvdfCase) -> None:
    model = svdf_model(case)
    check_tflm(model, random_invokes(model, np.random.default_rng(case.seed), n=3))


@given(data=st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_svdf_drawn(data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(["FLOAT32", "INT8"]))
    state_dtype = data.draw(st.sampled_from(["INT16", "INT8"])) if dtype == "INT8" else "INT16"
    case = SvdfCase(
        dtype, batch=data.draw(st.integers(1, 3)), input_size=data.draw(st.integers(1, 12)),
        units=data.draw(st.integers(1, 6)), rank=data.draw(st.integers(1, 3)),
        memory=data.draw(st.integers(1, 6)),
        activation="RELU" if dtype == "INT8" else data.draw(st.sampled_from(
            ["NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH", "SIGN_BIT"])),
        bias=data.draw(st.booleans()), state_dtype=state_dtype,
        state_zero_point=data.draw(st.integers(-20, 20)) if state_dtype == "INT8" else 0,
        input_zero_point=data.draw(st.integers(-128, 127)),
        output_zero_point=data.draw(st.integers(-128, 127)),
        seed=data.draw(st.integers(0, 2**16)))
    model = svdf_model(case)
    invokes = random_invokes(model, np.random.default_rng(case.seed), n=2)
    if state_dtype == "INT16":
        check_litert(model, invokes)
    if case.bias:  # TFLM crashes without bias (test_svdf_without_bias_refused_for_tflm)
        check_tflm(model, invokes)


SVDF_HYBRID_CASES = [
    SvdfCase("HYBRID"),
    SvdfCase("HYBRID", asymmetric=True, activation="TANH"),
    SvdfCase("HYBRID", batch=3, input_size=33, units=5, rank=3, memory=11, activation="RELU6"),
    SvdfCase("HYBRID", batch=2, input_size=20, units=3, rank=1, memory=1, asymmetric=True,
             bias=False, activation="NONE"),
    SvdfCase("HYBRID", batch=2, memory=7, weight_type="UINT8", activation="SIGN_BIT"),
]


@pytest.mark.parametrize("case", SVDF_HYBRID_CASES, ids=lambda c: c.id)
def test_svdf_hybrid_vs_litert(case: SvdfCase) -> None:
    model = svdf_model(case)
    rng = np.random.default_rng(case.seed)
    # An all-zero input first: LiteRT skips its quantization and leaves the new column 0.
    invokes = [[np.zeros((case.batch, case.input_size), np.float32)]] + random_invokes(
        model, rng, n=3, float_range=3.0)
    check_litert(model, invokes)


@given(data=st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_svdf_hybrid_drawn(data: st.DataObject) -> None:
    case = SvdfCase(
        "HYBRID", batch=data.draw(st.integers(1, 3)), input_size=data.draw(st.integers(1, 40)),
        units=data.draw(st.integers(1, 6)), rank=data.draw(st.integers(1, 3)),
        memory=data.draw(st.integers(1, 10)), bias=data.draw(st.booleans()),
        activation=data.draw(st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH",
                                              "SIGN_BIT"])),
        asymmetric=data.draw(st.booleans()),
        weight_type=data.draw(st.sampled_from(["INT8", "UINT8"])),
        seed=data.draw(st.integers(0, 2**16)))
    model = svdf_model(case)
    check_litert(model, random_invokes(model, np.random.default_rng(case.seed), n=3,
                                       float_range=data.draw(st.sampled_from([0.01, 3.0, 100.0]))))


def test_svdf_int8_state_refused_for_litert() -> None:
    model = svdf_model(SvdfCase("INT8", state_dtype="INT8", state_zero_point=-50))
    with pytest.raises(UnsupportedOpError, match="INT8.*reads past the end.*emulate='tflm'"):
        ours(model, "tflite")


def test_svdf_int16_state_zero_point_is_an_emulation_difference() -> None:
    """LiteRT ignores the state zero point, TFLM uses it: the same model, two answers."""
    model = svdf_model(SvdfCase("INT8", state_zero_point=300))
    invokes = random_invokes(model, np.random.default_rng(3), n=2)
    check_litert(model, invokes)
    check_tflm(model, invokes)
    a, b = ours(model, "tflite"), ours(model, "tflm")
    for xs in invokes:
        _feed(a, a.get_input_details(), xs)
        _feed(b, b.get_input_details(), xs)
        a.invoke()
        b.invoke()
    out = a.get_output_details()[0]["index"]
    assert not np.array_equal(a.get_tensor(out), b.get_tensor(out))


# Parameter sets where forming eff1 = s_in·s_wf/s_state or eff2 = s_state·s_wt/s_out in float32
# or in double changes results (found by search): LiteRT uses float32, the TFLM wheel double.
_WIDE = {"batch": 32, "input_size": 48, "units": 16, "rank": 1, "memory": 1, "output_zero_point": 5}
_OUT = {"batch": 32, "input_size": 8, "units": 32, "rank": 1, "memory": 2, "output_zero_point": 0}


@pytest.mark.parametrize("case, runtime", [
    (SvdfCase("INT8", input_zero_point=-32, seed=868489426, **_WIDE), "tflm"),  # eff1
    (SvdfCase("INT8", input_zero_point=44, seed=730056029, **_WIDE), "litert"),  # eff1
    (SvdfCase("INT8", input_zero_point=-3, seed=989550186, **_OUT), "litert"),  # eff2
    (SvdfCase("INT8", batch=1, input_size=12, units=4, rank=1, memory=1, state_dtype="INT8",
              input_zero_point=-106, output_zero_point=0, seed=12), "tflm"),  # eff2
], ids=["eff1-tflm-double", "eff1-litert-float32", "eff2-litert-float32", "eff2-tflm-double"])
def test_svdf_effective_scale_arithmetic(case: SvdfCase, runtime: str) -> None:
    model = svdf_model(case)
    invokes = random_invokes(model, np.random.default_rng(case.seed), n=3)
    (check_litert if runtime == "litert" else check_tflm)(model, invokes)
    if case.state_dtype == "INT16":  # the other emulation gives another answer
        a, b = ours(model, "tflite"), ours(model, "tflm")
        for it in (a, b):
            _feed(it, it.get_input_details(), invokes[0])
            it.invoke()
        op = a.model.subgraphs[0].operators[0]
        assert any(not np.array_equal(a.get_tensor(i), b.get_tensor(i))
                   for i in (op.inputs[4], op.outputs[0]))


def test_svdf_reset_all_variables_vs_litert() -> None:
    model = svdf_model(SvdfCase("INT8", batch=2))
    check_litert(model, random_invokes(model, np.random.default_rng(5), n=3), reset_before=2)


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8"])
def test_svdf_without_bias_refused_for_tflm(dtype: str) -> None:
    """TFLM dereferences the absent bias (segfault, checked in a child process once)."""
    with pytest.raises(UnsupportedOpError, match="without bias"):
        ours(svdf_model(SvdfCase(dtype, bias=False)), "tflm")


def test_svdf_litert_requires_relu_on_integer_path() -> None:
    model = svdf_model(SvdfCase("INT8", activation="NONE"))
    with pytest.raises(ModelValidationError, match="RELU"):
        ours(model, "tflite")
    ours(model, "tflm")  # TFLM neither checks nor applies it


# =============================================================================================
# UNIDIRECTIONAL_SEQUENCE_LSTM
# =============================================================================================
@dataclass(frozen=True)
class LstmCase:
    dtype: str  # "FLOAT32", "INT8" or "HYBRID" (float activations and states, 8-bit weights)
    batch: int = 1
    time: int = 3
    n_input: int = 5
    n_cell: int = 4
    n_output: int | None = None  # None: n_cell (no projection)
    time_major: bool = False
    cifg: bool = False
    peephole: bool = False
    layer_norm: bool = False
    projection_bias: bool = True
    diagonal: bool = False  # float and hybrid
    activation: str = "TANH"
    cell_clip: float = 0.0
    proj_clip: float = 0.0
    cell_scale_log2: int = -11  # int8: the cell state scale is a power of two
    input_zero_point: int = -7
    state_zero_point: int = 3
    n_slots: int = 24  # LiteRT also takes the 20-input form (no layer-norm slots)
    asymmetric: bool = False  # hybrid: asymmetric_quantize_inputs
    weight_type: str = "INT8"  # hybrid: INT8 or UINT8
    minus_128: bool = False  # hybrid: weights holding -128 (see hybrid_weights)
    seed: int = 0

    @property
    def projection(self) -> bool:
        return self.n_output is not None

    @property
    def tflm_can_run(self) -> bool:
        return not (self.cifg or self.peephole or self.layer_norm or self.projection
                    or self.diagonal) and self.activation == "TANH" and self.n_slots == 24 \
            and self.dtype != "HYBRID"

    @property
    def id(self) -> str:
        parts = ["lstm", self.dtype.lower(), f"{self.batch}x{self.time}x{self.n_input}",
                 f"c{self.n_cell}"]
        parts += [f"p{self.n_output}" if self.projection else "",
                  "tm" if self.time_major else "", "cifg" if self.cifg else "",
                  "peep" if self.peephole else "", "ln" if self.layer_norm else "",
                  "diag" if self.diagonal else "", self.activation.lower(),
                  f"cc{self.cell_clip:g}" if self.cell_clip else "",
                  f"pc{self.proj_clip:g}" if self.proj_clip else ""]
        if self.dtype == "INT8":
            parts.append(f"cs{self.cell_scale_log2}")
        if self.n_slots != 24:
            parts.append(f"{self.n_slots}inputs")
        if self.dtype == "HYBRID":
            parts += ["asym" if self.asymmetric else "sym",
                      "uint8" if self.weight_type == "UINT8" else "",
                      "m128" if self.minus_128 else ""]
        return "-".join(p for p in parts if p)


def lstm_model(c: LstmCase) -> bytes:
    rng = np.random.default_rng(c.seed)
    n_out = c.n_output if c.projection else c.n_cell
    mb = ModelBuilder(description=c.id)
    sg = mb.subgraph("main")
    in_shape = [c.time, c.batch, c.n_input] if c.time_major else [c.batch, c.time, c.n_input]
    out_shape = in_shape[:2] + [n_out]
    gates = ["input", "forget", "cell", "output"]
    use = {g: not (c.cifg and g == "input") for g in gates}
    slots: list[TensorSpec | None] = [None] * 24
    intermediates: list[TensorSpec] = []
    if c.dtype == "FLOAT32":
        def f(name: str, shape: Sequence[int], sd: float = 0.4) -> TensorSpec:
            return sg.tensor(name, shape, "FLOAT32",
                             data=rng.normal(0, sd, shape).astype(np.float32))
        x = sg.tensor("input", in_shape, "FLOAT32")
        for k, g in enumerate(gates):
            if not use[g]:
                continue
            slots[1 + k] = f(f"w_{g}", [c.n_cell, c.n_input])
            slots[5 + k] = f(f"r_{g}", [c.n_cell] if c.diagonal else [c.n_cell, n_out])
            slots[12 + k] = f(f"b_{g}", [c.n_cell], 0.2)
            if c.peephole and g != "cell":
                slots[9 + k - (k > 2)] = f(f"p_{g}", [c.n_cell])
            if c.layer_norm:
                slots[20 + k] = sg.tensor(f"ln_{g}", [c.n_cell], "FLOAT32", data=rng.uniform(
                    0.5, 1.5, c.n_cell).astype(np.float32))
        if c.projection:
            slots[16] = f("proj_w", [n_out, c.n_cell])
            slots[17] = f("proj_b", [n_out], 0.1) if c.projection_bias else None
        h = sg.tensor("output_state", [c.batch, n_out], "FLOAT32", is_variable=True)
        cs = sg.tensor("cell_state", [c.batch, c.n_cell], "FLOAT32", is_variable=True)
        y = sg.tensor("output", out_shape, "FLOAT32")
    elif c.dtype == "HYBRID":
        def q8(name: str, shape: Sequence[int], sd: float = 0.4) -> TensorSpec:
            return hybrid_weights(sg, rng, name, shape, sd=sd, weight_type=c.weight_type,
                                  minus_128=c.minus_128)

        def f32(name: str, data: np.ndarray) -> TensorSpec:
            return sg.tensor(name, list(data.shape), "FLOAT32", data=data.astype(np.float32))
        x = sg.tensor("input", in_shape, "FLOAT32")
        for k, g in enumerate(gates):
            if not use[g]:
                continue
            slots[1 + k] = q8(f"w_{g}", [c.n_cell, c.n_input])
            slots[5 + k] = (f32(f"r_{g}", rng.normal(0, 0.4, c.n_cell)) if c.diagonal
                            else q8(f"r_{g}", [c.n_cell, n_out]))
            slots[12 + k] = f32(f"b_{g}", rng.normal(0, 0.2, c.n_cell))
            if c.peephole and g != "cell":
                slots[9 + k - (k > 2)] = q8(f"p_{g}", [c.n_cell])
            if c.layer_norm:
                slots[20 + k] = f32(f"ln_{g}", rng.uniform(0.5, 1.5, c.n_cell))
        if c.projection:
            slots[16] = q8("proj_w", [n_out, c.n_cell])
            slots[17] = f32("proj_b", rng.normal(0, 0.1, n_out)) if c.projection_bias else None
        h = sg.tensor("output_state", [c.batch, n_out], "FLOAT32", is_variable=True)
        cs = sg.tensor("cell_state", [c.batch, c.n_cell], "FLOAT32", is_variable=True)
        y = sg.tensor("output", out_shape, "FLOAT32")
    else:
        s_in = rng.uniform(0.01, 0.06)
        s_h = rng.uniform(0.006, 0.01)  # output state: values in about [-1, 1]
        s_hidden = 2.0 ** -7 if c.projection else s_h  # o ⊙ tanh(c) before the projection
        z_hidden = 0 if c.projection else c.state_zero_point
        x = sg.tensor("input", in_shape, "INT8", scale=s_in, zero_point=c.input_zero_point)
        for k, g in enumerate(gates):
            if not use[g]:
                continue
            # Pre-activations of a few units in Q3.12: |W·x| and |R·h| of about 1..3.
            s_w = 2.0 / (s_in * 64 * 64 * math.sqrt(c.n_input)) * rng.uniform(0.5, 2)
            s_r = 2.0 / (s_h * 64 * 64 * math.sqrt(n_out)) * rng.uniform(0.5, 2)
            slots[1 + k] = sg.tensor(f"w_{g}", [c.n_cell, c.n_input], "INT8", scale=s_w,
                                     data=_int_data(rng, (c.n_cell, c.n_input), "INT8", 127))
            slots[5 + k] = sg.tensor(f"r_{g}", [c.n_cell, n_out], "INT8", scale=s_r,
                                     data=_int_data(rng, (c.n_cell, n_out), "INT8", 127))
            s_b = float(np.float32(s_in) * np.float32(s_w))
            slots[12 + k] = sg.tensor(f"b_{g}", [c.n_cell], "INT32", scale=s_b, data=np.round(
                rng.normal(0, 0.5, c.n_cell) / s_b).astype(np.int32))
            if c.peephole and g != "cell":
                slots[9 + k - (k > 2)] = sg.tensor(
                    f"p_{g}", [c.n_cell], "INT16", scale=1.0 / 16384,
                    data=_int_data(rng, (c.n_cell,), "INT16", 16384))
            if c.layer_norm:
                slots[20 + k] = sg.tensor(f"ln_{g}", [c.n_cell], "INT16", scale=1.0 / 16384,
                                          data=rng.integers(8000, 24000, c.n_cell).astype(
                                              np.int16))
        if c.projection:
            s_pw = 0.7 / (s_hidden * 64 * 64 * math.sqrt(c.n_cell)) * rng.uniform(0.5, 2)
            slots[16] = sg.tensor("proj_w", [n_out, c.n_cell], "INT8", scale=s_pw,
                                  data=_int_data(rng, (n_out, c.n_cell), "INT8", 127))
            s_pb = float(np.float32(s_hidden) * np.float32(s_pw))
            slots[17] = sg.tensor("proj_b", [n_out], "INT32", scale=s_pb, data=np.round(
                rng.normal(0, 0.3, n_out) / s_pb).astype(np.int32)) if c.projection_bias else None
        h = sg.tensor("output_state", [c.batch, n_out], "INT8", scale=s_h,
                      zero_point=c.state_zero_point, is_variable=True)
        cs = sg.tensor("cell_state", [c.batch, c.n_cell], "INT16",
                       scale=2.0 ** c.cell_scale_log2, zero_point=0, is_variable=True)
        y = sg.tensor("output", out_shape, "INT8", scale=s_h, zero_point=c.state_zero_point)
        # The converter's intermediates: gate scales (used with layer norm) and the hidden scale.
        for k, g in enumerate(gates):
            if c.layer_norm:
                intermediates.append(sg.tensor(f"{g}_intermediate", [0], "INT16",
                                               scale=2.0 ** -12 * rng.uniform(0.5, 2)))
            else:
                intermediates.append(sg.tensor(f"{g}_intermediate", [0], "FLOAT32"))
        intermediates.append(sg.tensor("effective_hidden_scale_intermediate", [0], "INT8",
                                       scale=s_hidden, zero_point=z_hidden))
    slots[0], slots[18], slots[19] = x, h, cs
    options = {"fused_activation_function": c.activation, "cell_clip": c.cell_clip,
               "proj_clip": c.proj_clip, "time_major": c.time_major,
               "diagonal_recurrent_tensors": c.diagonal,
               "asymmetric_quantize_inputs": c.asymmetric}
    sg.operator("UNIDIRECTIONAL_SEQUENCE_LSTM", slots[:c.n_slots], [y], options,
                intermediates=intermediates or None)
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


LSTM_FLOAT_CASES = [
    LstmCase("FLOAT32"),
    LstmCase("FLOAT32", batch=2, time=4, n_input=3, n_cell=6, time_major=True),
    LstmCase("FLOAT32", batch=2, time=2, cell_clip=0.5),
    # LiteRT only (TFLM's LSTM has none of these):
    LstmCase("FLOAT32", cifg=True, peephole=True),
    LstmCase("FLOAT32", batch=2, n_output=3, proj_clip=0.3, peephole=True),
    LstmCase("FLOAT32", batch=2, layer_norm=True, cifg=True),
    LstmCase("FLOAT32", time=2, diagonal=True, activation="RELU"),
    LstmCase("FLOAT32", n_output=6, projection_bias=False, activation="RELU6"),
    LstmCase("FLOAT32", n_slots=20, batch=2),
    # Eigen's paths in LiteRT (recurrent_float.eigen_product), TFLM's loops alike:
    # time-major batch of 5 -> gebp: an 8-row, a 4-row ("1pX4") and a single-row panel, against
    # a 4-column panel and a single column; depth 30 and 13
    LstmCase("FLOAT32", batch=5, time=2, n_input=30, n_cell=13, time_major=True),
    # K + N + B = 16 + 1 + 2 < 20: the coefficient-based product (four blocks of 4)
    LstmCase("FLOAT32", batch=2, time=3, n_input=16, n_cell=1, time_major=True),
    # 30 + 1 + 5 >= 20 with a single cell: GemmProduct's GEMV of rhs^T
    LstmCase("FLOAT32", batch=5, time=2, n_input=30, n_cell=1, time_major=True),
    # batch-major rows one at a time: a single cell is Eigen's dot (three packets at depth 12)
    LstmCase("FLOAT32", batch=3, time=3, n_input=12, n_cell=1),
    # a 7-cell gate buffer: Eigen's sigmoid takes unaligned heads and tails per row
    LstmCase("FLOAT32", batch=3, time=3, n_input=7, n_cell=7, cell_clip=1.0),
    # depth 700 > 680 (a 32 KiB L1 data cache): Eigen's GEMM adds two k blocks (352 + 348)
    # separately (LiteRT only, with a projection: TFLM has none)
    LstmCase("FLOAT32", batch=2, time=2, n_input=700, n_cell=9, n_output=5, time_major=True,
             peephole=True),
]
LSTM_INT8_CASES = [
    LstmCase("INT8"),
    LstmCase("INT8", batch=3, time=5, n_input=8, n_cell=6, time_major=True, cell_clip=2.0),
    LstmCase("INT8", batch=2, time=4, n_input=2, n_cell=3, cell_scale_log2=-13,
             input_zero_point=-128, state_zero_point=-1),
    LstmCase("INT8", cell_scale_log2=-9, cell_clip=8.0),
    # LiteRT only:
    LstmCase("INT8", batch=2, cifg=True),
    LstmCase("INT8", peephole=True, cell_scale_log2=-12),
    LstmCase("INT8", batch=2, n_output=3, proj_clip=0.5),
    LstmCase("INT8", n_output=6, projection_bias=False, time_major=True),
    LstmCase("INT8", batch=2, layer_norm=True, n_cell=8),
    LstmCase("INT8", layer_norm=True, cifg=True, peephole=True, n_cell=5, time=2),
    LstmCase("INT8", n_slots=20, time_major=True),
]


@pytest.mark.parametrize("case", LSTM_FLOAT_CASES + LSTM_INT8_CASES, ids=lambda c: c.id)
def test_lstm_vs_litert(case: LstmCase) -> None:
    model = lstm_model(case)
    check_litert(model, random_invokes(model, np.random.default_rng(case.seed)))


@pytest.mark.parametrize("case", [c for c in LSTM_FLOAT_CASES + LSTM_INT8_CASES
                                  if c.tflm_can_run], ids=lambda c: c.id)
def test_lstm_vs_tflm(case: LstmCase) -> None:
    model = lstm_model(case)
    check_tflm(model, random_invokes(model, np.random.default_rng(case.seed)))


@given(data=st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_lstm_int8_drawn(data: st.DataObject) -> None:
    """Plain int8 LSTMs against both runtimes; LiteRT also with its extra features."""
    n_cell = data.draw(st.integers(1, 8))
    case = LstmCase(
        "INT8", batch=data.draw(st.integers(1, 3)), time=data.draw(st.integers(1, 4)),
        n_input=data.draw(st.integers(1, 10)), n_cell=n_cell,
        time_major=data.draw(st.booleans()),
        cell_clip=data.draw(st.sampled_from([0.0, 0.0, 1.0, 3.0])),
        cell_scale_log2=data.draw(st.integers(-14, -9)),
        input_zero_point=data.draw(st.integers(-128, 127)),
        state_zero_point=data.draw(st.integers(-10, 10)), seed=data.draw(st.integers(0, 2**16)))
    model = lstm_model(case)
    invokes = random_invokes(model, np.random.default_rng(case.seed))
    check_litert(model, invokes)
    check_tflm(model, invokes)
    extras = replace(case, cifg=data.draw(st.booleans()), peephole=data.draw(st.booleans()),
                     layer_norm=data.draw(st.booleans()),
                     n_output=data.draw(st.sampled_from([None, max(1, n_cell - 1), n_cell + 2])))
    if extras.peephole and extras.projection and extras.n_output != n_cell:
        extras = replace(extras, peephole=False)  # refused: see test_lstm_refusals
    if extras != case:
        model = lstm_model(extras)
        check_litert(model, random_invokes(model, np.random.default_rng(case.seed)))


@given(data=st.data())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_lstm_float_drawn(data: st.DataObject) -> None:
    """Plain float LSTMs against both runtimes (inputs up to ±30 reach the sigmoid's cut-offs);
    LiteRT also with its extra features.  Sizes reach every Eigen path of eigen_product."""
    n_cell = data.draw(st.integers(1, 24))
    case = LstmCase(
        "FLOAT32", batch=data.draw(st.integers(1, 6)), time=data.draw(st.integers(1, 4)),
        n_input=data.draw(st.integers(1, 40)), n_cell=n_cell,
        time_major=data.draw(st.booleans()),
        cell_clip=data.draw(st.sampled_from([0.0, 0.7])), seed=data.draw(st.integers(0, 2**16)))
    model = lstm_model(case)
    invokes = random_invokes(model, np.random.default_rng(case.seed),
                             float_range=data.draw(st.sampled_from([0.05, 2.0, 30.0])))
    check_litert(model, invokes)
    check_tflm(model, invokes)
    extras = replace(case, cifg=data.draw(st.booleans()), peephole=data.draw(st.booleans()),
                     layer_norm=data.draw(st.booleans()),
                     n_output=data.draw(st.sampled_from([None, max(1, n_cell - 1), n_cell + 2])),
                     activation=data.draw(st.sampled_from(["TANH", "RELU", "RELU6"])),
                     proj_clip=data.draw(st.sampled_from([0.0, 0.4])))
    if extras != case:
        model = lstm_model(extras)
        check_litert(model, random_invokes(model, np.random.default_rng(case.seed)))


LSTM_HYBRID_CASES = [
    LstmCase("HYBRID"),
    LstmCase("HYBRID", batch=2, time=4, n_input=3, n_cell=6, time_major=True, asymmetric=True),
    LstmCase("HYBRID", batch=2, time=2, cell_clip=0.5, weight_type="UINT8"),
    LstmCase("HYBRID", batch=3, time=5, n_input=37, n_cell=21, asymmetric=True, peephole=True),
    LstmCase("HYBRID", cifg=True, peephole=True, time_major=True),
    LstmCase("HYBRID", batch=2, n_output=3, proj_clip=0.3, asymmetric=True),
    LstmCase("HYBRID", batch=2, layer_norm=True, cifg=True, n_cell=7, time_major=True),
    LstmCase("HYBRID", batch=2, layer_norm=True, peephole=True, n_output=5, time=4),
    LstmCase("HYBRID", time=2, diagonal=True, activation="RELU"),
    LstmCase("HYBRID", n_output=6, projection_bias=False, activation="RELU6", asymmetric=True),
    LstmCase("HYBRID", n_slots=20, batch=2, activation="SIGN_BIT"),
    # NONE: LiteRT's h = o ⊙ (cell gate), its scratch buffer (see LstmHybridData)
    LstmCase("HYBRID", batch=2, activation="NONE", time_major=True),
    LstmCase("HYBRID", batch=2, n_input=40, n_cell=18, n_output=17, minus_128=True),
    LstmCase("HYBRID", batch=2, n_input=33, n_cell=16, minus_128=True, asymmetric=True,
             weight_type="UINT8"),
]


@pytest.mark.parametrize("case", LSTM_HYBRID_CASES, ids=lambda c: c.id)
def test_lstm_hybrid_vs_litert(case: LstmCase) -> None:
    model = lstm_model(case)
    invokes = random_invokes(model, np.random.default_rng(case.seed), n=3)
    # All-zero input and state: LiteRT skips those products (IsZeroVector).
    invokes.insert(1, [np.zeros_like(invokes[0][0])])
    check_litert(model, invokes, reset_before=2)


@given(data=st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_lstm_hybrid_drawn(data: st.DataObject) -> None:
    n_cell = data.draw(st.integers(1, 24))
    case = LstmCase(
        "HYBRID", batch=data.draw(st.integers(1, 3)), time=data.draw(st.integers(1, 5)),
        n_input=data.draw(st.integers(1, 40)), n_cell=n_cell,
        n_output=data.draw(st.sampled_from([None, None, max(1, n_cell - 3), n_cell + 2])),
        time_major=data.draw(st.booleans()), cifg=data.draw(st.booleans()),
        peephole=data.draw(st.booleans()), layer_norm=data.draw(st.booleans()),
        activation=data.draw(st.sampled_from(["TANH", "TANH", "RELU", "RELU6", "NONE"])),
        cell_clip=data.draw(st.sampled_from([0.0, 0.0, 0.8])),
        proj_clip=data.draw(st.sampled_from([0.0, 0.5])),
        asymmetric=data.draw(st.booleans()),
        weight_type=data.draw(st.sampled_from(["INT8", "UINT8"])),
        minus_128=data.draw(st.sampled_from([False, False, True])),
        seed=data.draw(st.integers(0, 2**16)))
    model = lstm_model(case)
    check_litert(model, random_invokes(model, np.random.default_rng(case.seed),
                                       float_range=data.draw(st.sampled_from([0.05, 2.0, 50.0]))))


# Found by search: the gate multipliers s·s_w / 2^-12 formed from a float32 or a double product
# give different TFLM results here; the TFLM wheel follows the double one.
@pytest.mark.parametrize("zp_in, zp_state, seed", [(28, -4, 368966752), (-85, 4, 711976462)])
def test_lstm_tflm_gate_multiplier_in_double(zp_in: int, zp_state: int, seed: int) -> None:
    model = lstm_model(LstmCase("INT8", batch=16, time=2, n_input=24, n_cell=16,
                                input_zero_point=zp_in, state_zero_point=zp_state, seed=seed))
    check_tflm(model, random_invokes(model, np.random.default_rng(seed)))


def test_lstm_reset_all_variables_vs_litert() -> None:
    model = lstm_model(LstmCase("INT8", batch=2, state_zero_point=-4))
    check_litert(model, random_invokes(model, np.random.default_rng(9), n=3), reset_before=2)


def test_lstm_int8_runtimes_differ() -> None:
    """LiteRT's and TFLM's integer LSTMs are different arithmetic (gemmlowp vs table sigmoid,
    shifts vs multipliers): over enough steps the two emulations give different outputs."""
    model = lstm_model(LstmCase("INT8", batch=4, time=8, n_input=8, n_cell=8, seed=4))
    xs = random_invokes(model, np.random.default_rng(4), n=1)[0]
    a, b = ours(model, "tflite"), ours(model, "tflm")
    _feed(a, a.get_input_details(), xs)
    _feed(b, b.get_input_details(), xs)
    a.invoke()
    b.invoke()
    cell = a.model.subgraphs[0].operators[0].inputs[19]
    assert not np.array_equal(a.get_tensor(cell), b.get_tensor(cell))


@pytest.mark.parametrize("case, emulate, match", [
    (LstmCase("INT8", cifg=True), "tflm", "TFLite Micro's LSTM has no CIFG"),
    (LstmCase("FLOAT32", n_output=3), "tflm", "no projection"),
    (LstmCase("INT8", peephole=True, n_output=3), "tflite", "peephole with a projection"),
    (LstmCase("INT8", cell_scale_log2=-8), "tflite", "cell scales 2.-15 .. 2.-9"),
    (LstmCase("FLOAT32", activation="RELU"), "tflm", "TANH cell gate"),
    (LstmCase("FLOAT32", activation="NONE"), "tflite", "scratch buffers it never wrote"),
], ids=["tflm-cifg", "tflm-projection", "litert-peephole-projection", "litert-cell-scale",
        "tflm-relu", "litert-float-none"])
def test_lstm_refusals(case: LstmCase, emulate: str, match: str) -> None:
    with pytest.raises(UnsupportedOpError, match=match):
        ours(lstm_model(case), emulate)


@pytest.mark.parametrize("emulate", ["tflite", "tflm"])
def test_int8_state_starts_at_zero_point(emulate: str) -> None:
    """Before the first invoke and after reset_all_variables(): the int8 output state holds its
    zero point, the int16 cell state 0."""
    model = lstm_model(LstmCase("INT8", state_zero_point=-4))
    it = ours(model, emulate)
    op = it.model.subgraphs[0].operators[0]
    h, c = op.inputs[18], op.inputs[19]
    for _ in range(2):
        assert np.all(it.get_tensor(h) == -4) and np.all(it.get_tensor(c) == 0)
        _feed(it, it.get_input_details(), random_invokes(model, np.random.default_rng(0), 1)[0])
        it.invoke()
        assert not np.all(it.get_tensor(h) == -4)
        it.reset_all_variables()


# =============================================================================================
# BIDIRECTIONAL_SEQUENCE_LSTM (float32; LiteRT only: TFLM has no such op)
# =============================================================================================
@dataclass(frozen=True)
class BiLstmCase:
    batch: int = 2
    time: int = 3
    n_input: int = 4
    n_cell: int = 3  # both cells: LiteRT requires equal sizes
    merge: bool = False
    time_major: bool = False
    aux: str = "none"  # "none" | "weights" (aux input through aux weights) | "backward_input"
    n_aux: int = 2
    cifg: bool = False
    peephole: bool = False
    projection: int | None = None
    hybrid: bool = False  # int8 weights, float everything else
    asymmetric: bool = False  # hybrid: asymmetric_quantize_inputs
    seed: int = 0

    @property
    def id(self) -> str:
        kind = f"hybrid-{'asym' if self.asymmetric else 'sym'}" if self.hybrid else "float32"
        return "-".join(p for p in (
            "bidirectional_sequence_lstm", kind, f"{self.batch}x{self.time}x{self.n_input}",
            f"c{self.n_cell}", "merge" if self.merge else "",
            "tm" if self.time_major else "", f"aux_{self.aux}" if self.aux != "none" else "",
            "cifg" if self.cifg else "", "peep" if self.peephole else "",
            f"p{self.projection}" if self.projection else "") if p)


def bilstm_model(c: BiLstmCase) -> bytes:
    rng = np.random.default_rng(c.seed)
    mb = ModelBuilder(description=c.id)
    sg = mb.subgraph("main")
    lead = [c.time, c.batch] if c.time_major else [c.batch, c.time]

    def f(name: str, shape: Sequence[int], sd: float = 0.4) -> TensorSpec:
        return sg.tensor(name, shape, "FLOAT32", data=rng.normal(0, sd, shape).astype(np.float32))

    def w(name: str, shape: Sequence[int]) -> TensorSpec:  # weights: float32 or int8
        return hybrid_weights(sg, rng, name, shape) if c.hybrid else f(name, shape)

    slots: list[TensorSpec | None] = [None] * 48
    x = slots[0] = sg.tensor("input", [*lead, c.n_input], "FLOAT32")
    n_outs = []
    n_cell = c.n_cell
    for d, off in enumerate((0, 17)):
        n_out = c.projection or n_cell
        n_outs.append(n_out)
        for k, g in enumerate(["input", "forget", "cell", "output"]):
            if c.cifg and g == "input":
                continue
            slots[off + 1 + k] = w(f"{d}_w_{g}", [n_cell, c.n_input])
            slots[off + 5 + k] = w(f"{d}_r_{g}", [n_cell, n_out])
            slots[off + 12 + k] = f(f"{d}_b_{g}", [n_cell], 0.2)
            if c.peephole and g != "cell":
                slots[off + 9 + k - (k > 2)] = w(f"{d}_p_{g}", [n_cell])
            if c.aux == "weights":
                slots[40 + 4 * d + k] = w(f"{d}_aux_{g}", [n_cell, c.n_aux])
        if n_out != n_cell:
            slots[off + 16] = w(f"{d}_proj_w", [n_out, n_cell])
            slots[off + 17] = f(f"{d}_proj_b", [n_out], 0.1)
        slots[35 + 2 * d] = sg.tensor(f"{d}_h", [c.batch, n_out], "FLOAT32", is_variable=True)
        slots[36 + 2 * d] = sg.tensor(f"{d}_c", [c.batch, n_cell], "FLOAT32", is_variable=True)
    inputs = [x]
    if c.aux != "none":
        n_aux = c.n_aux if c.aux == "weights" else c.n_input
        slots[39] = sg.tensor("aux_input", [*lead, n_aux], "FLOAT32")
        inputs.append(slots[39])
    if c.merge:
        outs = [sg.tensor("output", [*lead, n_outs[0] + n_outs[1]], "FLOAT32")]
    else:
        outs = [sg.tensor("fw_output", [*lead, n_outs[0]], "FLOAT32"),
                sg.tensor("bw_output", [*lead, n_outs[1]], "FLOAT32")]
    sg.operator("BIDIRECTIONAL_SEQUENCE_LSTM", slots, outs,
                {"fused_activation_function": "TANH", "cell_clip": 0.0, "proj_clip": 0.0,
                 "merge_outputs": c.merge, "time_major": c.time_major,
                 "asymmetric_quantize_inputs": c.asymmetric})
    sg.inputs, sg.outputs = inputs, outs
    return mb.build()


BILSTM_CASES = [
    BiLstmCase(),
    BiLstmCase(merge=True, time_major=True, batch=1, time=4),
    BiLstmCase(aux="weights", cifg=True),
    BiLstmCase(aux="backward_input", merge=True, peephole=True, time_major=True),
    BiLstmCase(aux="backward_input", merge=True, batch=1),
    BiLstmCase(projection=2, batch=3, time=2),
    # hybrid (LiteRT runs lstm_eval::EvalHybrid for each cell)
    BiLstmCase(hybrid=True),
    BiLstmCase(hybrid=True, asymmetric=True, merge=True, time_major=True, time=4),
    BiLstmCase(hybrid=True, aux="weights", cifg=True, asymmetric=True),
    BiLstmCase(hybrid=True, aux="backward_input", peephole=True, time_major=True),
    BiLstmCase(hybrid=True, projection=2, batch=3, time=2, n_input=17, n_cell=9),
]


@pytest.mark.parametrize("case", BILSTM_CASES, ids=lambda c: c.id)
def test_bidirectional_lstm_vs_litert(case: BiLstmCase) -> None:
    model = bilstm_model(case)
    check_litert(model, random_invokes(model, np.random.default_rng(case.seed)))


def test_bidirectional_lstm_refusal() -> None:
    with pytest.raises(UnsupportedOpError, match="past its buffer"):
        ours(bilstm_model(BiLstmCase(merge=True, batch=2)), "tflite")


@given(data=st.data())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_bidirectional_lstm_drawn(data: st.DataObject) -> None:
    case = BiLstmCase(
        batch=data.draw(st.integers(1, 3)), time=data.draw(st.integers(1, 4)),
        n_input=data.draw(st.integers(1, 5)), n_cell=data.draw(st.integers(1, 5)),
        projection=data.draw(st.sampled_from([None, 2])), merge=data.draw(st.booleans()),
        time_major=data.draw(st.booleans()),
        aux=data.draw(st.sampled_from(["none", "weights", "backward_input"])),
        n_aux=data.draw(st.integers(1, 4)), cifg=data.draw(st.booleans()),
        peephole=data.draw(st.booleans()), hybrid=data.draw(st.booleans()),
        asymmetric=data.draw(st.booleans()), seed=data.draw(st.integers(0, 2**16)))
    if case.merge and not case.time_major and case.batch > 1:
        case = replace(case, time_major=True)  # refused: see test_bidirectional_lstm_refusal
    model = bilstm_model(case)
    check_litert(model, random_invokes(model, np.random.default_rng(case.seed)))


# =============================================================================================
# RNN, UNIDIRECTIONAL_SEQUENCE_RNN (float32; LiteRT only: TFLM has neither op)
# =============================================================================================
@dataclass(frozen=True)
class RnnCase:
    sequence: bool
    batch: int = 2
    time: int = 3
    n_input: int = 4
    units: int = 5
    time_major: bool = False
    activation: str = "TANH"
    weights: str = "FLOAT32"  # or INT8 / UINT8: hybrid
    asymmetric: bool = False  # hybrid: asymmetric_quantize_inputs
    seed: int = 0

    @property
    def hybrid(self) -> bool:
        return self.weights != "FLOAT32"

    @property
    def id(self) -> str:
        op = "unidirectional_sequence_rnn" if self.sequence else "rnn"
        shape = (f"{self.batch}x{self.time}x{self.n_input}" if self.sequence
                 else f"{self.batch}x{self.n_input}")
        kind = (f"hybrid-{self.weights.lower()}-{'asym' if self.asymmetric else 'sym'}"
                if self.hybrid else "float32")
        return "-".join(p for p in (op, kind, shape, f"u{self.units}",
                                    "tm" if self.time_major and self.sequence else "",
                                    self.activation.lower()) if p)


def rnn_model(c: RnnCase) -> bytes:
    rng = np.random.default_rng(c.seed)
    mb = ModelBuilder(description=c.id)
    sg = mb.subgraph("main")
    if c.sequence:
        in_shape = [c.time, c.batch, c.n_input] if c.time_major else [c.batch, c.time, c.n_input]
    else:
        in_shape = [c.batch, c.n_input]
    x = sg.tensor("input", in_shape, "FLOAT32")
    if c.hybrid:
        w = hybrid_weights(sg, rng, "w", [c.units, c.n_input], sd=0.5, weight_type=c.weights)
        r = hybrid_weights(sg, rng, "r", [c.units, c.units], sd=0.5, weight_type=c.weights)
    else:
        w = sg.tensor("w", [c.units, c.n_input], "FLOAT32",
                      data=rng.normal(0, 0.5, (c.units, c.n_input)).astype(np.float32))
        r = sg.tensor("r", [c.units, c.units], "FLOAT32",
                      data=rng.normal(0, 0.5, (c.units, c.units)).astype(np.float32))
    b = sg.tensor("b", [c.units], "FLOAT32", data=rng.normal(0, 0.3, c.units).astype(np.float32))
    h = sg.tensor("hidden_state", [c.batch, c.units], "FLOAT32", is_variable=True)
    y = sg.tensor("output", [*in_shape[:-1], c.units], "FLOAT32")
    options: dict[str, object] = {"fused_activation_function": c.activation,
                                  "asymmetric_quantize_inputs": c.asymmetric}
    if c.sequence:
        options["time_major"] = c.time_major
    sg.operator("UNIDIRECTIONAL_SEQUENCE_RNN" if c.sequence else "RNN", [x, w, r, b, h], [y],
                options)
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


RNN_CASES = [
    RnnCase(False),
    RnnCase(False, batch=1, n_input=7, units=3, activation="RELU"),
    RnnCase(True),
    RnnCase(True, batch=3, time=4, time_major=True, activation="RELU6"),
    RnnCase(True, batch=1, time=5, n_input=2, units=6, activation="NONE"),
    RnnCase(True, batch=2, time=2, activation="SIGN_BIT"),
    # NEON_2_SSE lanes with tails: 21 inputs (5 blocks + 1), 13 units (3 blocks + 1)
    RnnCase(True, batch=3, time=4, n_input=21, units=13, time_major=True),
    RnnCase(False, weights="INT8"),
    RnnCase(False, batch=3, n_input=20, units=17, weights="INT8", asymmetric=True,
            activation="RELU"),
    RnnCase(True, weights="INT8"),
    RnnCase(True, batch=3, time=4, n_input=33, units=9, time_major=True, weights="INT8",
            asymmetric=True),
    RnnCase(True, batch=1, time=5, n_input=2, units=6, weights="UINT8", activation="NONE"),
    RnnCase(True, batch=2, time=3, weights="UINT8", asymmetric=True, activation="RELU_N1_TO_1"),
]


@pytest.mark.parametrize("case", RNN_CASES, ids=lambda c: c.id)
def test_rnn_vs_litert(case: RnnCase) -> None:
    model = rnn_model(case)
    invokes = random_invokes(model, np.random.default_rng(case.seed), n=3)
    if case.hybrid:
        invokes.insert(1, [np.zeros_like(invokes[0][0])])  # LiteRT skips it (IsZeroVector)
    check_litert(model, invokes)


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_rnn_drawn(data: st.DataObject) -> None:
    case = RnnCase(data.draw(st.booleans()), batch=data.draw(st.integers(1, 3)),
                   time=data.draw(st.integers(1, 4)), n_input=data.draw(st.integers(1, 6)),
                   units=data.draw(st.integers(1, 6)), time_major=data.draw(st.booleans()),
                   activation=data.draw(st.sampled_from(["NONE", "RELU", "TANH", "RELU_N1_TO_1"])),
                   weights=data.draw(st.sampled_from(["FLOAT32", "INT8", "UINT8"])),
                   asymmetric=data.draw(st.booleans()), seed=data.draw(st.integers(0, 2**16)))
    model = rnn_model(case)
    check_litert(model, random_invokes(model, np.random.default_rng(case.seed)))


# =============================================================================================
# Hybrid ops in TFLM; Eigen's float functions as LiteRT runs them
# =============================================================================================
@pytest.mark.parametrize("kind", ["svdf", "lstm", "rnn"])
def test_hybrid_in_tflm(kind: str, tmp_path: Path) -> None:
    """TFLM refuses a hybrid SVDF at allocation and has no RNN ops; its LSTM takes float input
    to its float kernel and reads the int8 weights as float32 (NaNs, or worse: run in a child
    process).  ``emulate="tflm"`` refuses all three."""
    from native import run_native

    model = {"svdf": lambda: svdf_model(SvdfCase("HYBRID")),
             "lstm": lambda: lstm_model(LstmCase("HYBRID", batch=2)),
             "rnn": lambda: rnn_model(RnnCase(True, weights="INT8"))}[kind]()
    path = tmp_path / f"hybrid_{kind}.tflite"
    path.write_bytes(model)
    inputs = random_invokes(model, np.random.default_rng(0), n=1)[0]
    res = run_native("tflm", path, inputs)
    if kind == "lstm":
        it = ours(model, "tflite")
        _feed(it, it.get_input_details(), inputs)
        it.invoke()
        litert_like = it.get_tensor(it.get_output_details()[0]["index"])
        assert not res.ok or not np.allclose(res.tensors["o0"].reshape(litert_like.shape),
                                             litert_like, atol=1e-2), \
            "TFLM computed the hybrid LSTM: compare it instead of refusing it"
    else:
        assert not res.ok and "TFLM failed to allocate tensors" in res.error, res.error
    match = {"svdf": "refuses hybrid", "lstm": "reads the int8 weights as float32",
             "rnn": "no emulation of 'tflm'"}[kind]
    with pytest.raises(UnsupportedOpError, match=match):
        ours(model, "tflm")


def test_hybrid_per_axis_weights_refused() -> None:
    """LiteRT's hybrid recurrent kernels read ``tensor->params.scale``, which it leaves 0 for a
    per-axis tensor: the products vanish and the RNN outputs its bias.  We refuse the model."""
    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    sg = mb.subgraph("main")
    x = sg.tensor("x", [2, 3], "FLOAT32")
    w = sg.tensor("w", [4, 3], "INT8", data=_int_data(rng, (4, 3), "INT8", 127),
                  scale=[0.01, 0.02, 0.03, 0.04], zero_point=[0] * 4, quantized_dimension=0)
    r = sg.tensor("r", [4, 4], "INT8", data=_int_data(rng, (4, 4), "INT8", 127), scale=0.01)
    bias = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    b = sg.tensor("b", [4], "FLOAT32", data=bias)
    h = sg.tensor("h", [2, 4], "FLOAT32", is_variable=True)
    y = sg.tensor("y", [2, 4], "FLOAT32")
    sg.operator("RNN", [x, w, r, b, h], [y], {"fused_activation_function": "NONE"})
    sg.inputs, sg.outputs = [x], [y]
    model = mb.build()
    ref = litert_interpreter(model)
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], np.ones((2, 3), np.float32))
    ref.invoke()
    np.testing.assert_array_equal(ref.get_tensor(ref.get_output_details()[0]["index"]),
                                  np.tile(bias, (2, 1)))
    with pytest.raises(UnsupportedOpError, match="per axis.*products vanish"):
        ours(model, "tflite")


def _zero_weight_model(op: str, n: int, bias: np.ndarray, batch: int = 1,
                       time_major: bool = True) -> bytes:
    """A hybrid op whose int8 weights are all zero, so that its output is an activation of its
    bias alone: RNN (``tanh(b)``), or an LSTM whose input, forget and cell gates saturate
    (biases 100) so that after 10 steps ``c >= 9``, ``tanh(c) = 1`` and ``h = σ(b_o)``."""
    mb = ModelBuilder()
    sg = mb.subgraph("main")

    def zeros(name: str, shape: list[int]) -> TensorSpec:
        return sg.tensor(name, shape, "INT8", data=np.zeros(shape, np.int8), scale=1.0)

    def f32(name: str, data: np.ndarray) -> TensorSpec:
        return sg.tensor(name, list(data.shape), "FLOAT32", data=data.astype(np.float32))
    if op == "RNN":
        x = sg.tensor("x", [batch, 1], "FLOAT32")
        h = sg.tensor("h", [batch, n], "FLOAT32", is_variable=True)
        y = sg.tensor("y", [batch, n], "FLOAT32")
        sg.operator("RNN", [x, zeros("w", [n, 1]), zeros("r", [n, n]), f32("b", bias), h], [y],
                    {"fused_activation_function": "TANH"})
    else:
        shape = [10, batch, 1] if time_major else [batch, 10, 1]
        slots: list[TensorSpec | None] = [None] * 24
        x = slots[0] = sg.tensor("x", shape, "FLOAT32")
        for k, g in enumerate("ifco"):
            slots[1 + k] = zeros(f"w{g}", [n, 1])
            slots[5 + k] = zeros(f"r{g}", [n, n])
            slots[12 + k] = f32(f"b{g}", bias if g == "o" else np.full(n, 100.0))
        slots[18] = sg.tensor("h", [batch, n], "FLOAT32", is_variable=True)
        slots[19] = sg.tensor("c", [batch, n], "FLOAT32", is_variable=True)
        y = sg.tensor("y", [*shape[:2], n], "FLOAT32")
        sg.operator("UNIDIRECTIONAL_SEQUENCE_LSTM", slots, [y],
                    {"fused_activation_function": "TANH", "time_major": time_major})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def _litert_tensor(model: bytes, name: str) -> np.ndarray:
    ref = litert_interpreter(model)
    ref.allocate_tensors()
    d = ref.get_input_details()[0]
    ref.set_tensor(d["index"], np.zeros(d["shape"], np.float32))
    ref.invoke()
    return np.array(ref.get_tensor(next(t["index"] for t in ref.get_tensor_details()
                                        if t["name"] == name)))


def test_eigen_tanh_is_litert_tanh() -> None:
    bias = np.concatenate([np.linspace(-9, 9, 2001), np.random.default_rng(0).normal(0, 2, 1003),
                           [0.0, -0.0, 1e-30, 7.9, 8.5]]).astype(np.float32)
    theirs = _litert_tensor(_zero_weight_model("RNN", bias.size, bias), "h")[0]
    np.testing.assert_array_equal(eigen_tanh(bias), theirs)
    assert np.count_nonzero(np.tanh(bias) != theirs) > 100  # why not NumPy's (or libm's) tanh


@pytest.mark.parametrize("n_cell, batch, time_major, packet_only_wrong", [
    (13, 3, True, 1), (13, 3, False, 6), (10, 2, False, 4), (1026, 1, True, 0),
    (7, 5, False, 4)])
def test_eigen_logistic_lanes_are_litert_sigmoid(n_cell: int, batch: int, time_major: bool,
                                                 packet_only_wrong: int) -> None:
    """Eigen computes the first elements before a 16-byte boundary and the tail after the last
    packet of 4 with its scalar logistic (expf-based), the rest with its packet formula.  The
    output gate is slot 3 of EvalHybrid's scratch buffer (n_cell·n_batch floats per gate);
    time-major input activates the whole gate buffer at once, batch-major one row at a time."""
    bias = np.random.default_rng(n_cell).normal(0, 3, n_cell).astype(np.float32)
    model = _zero_weight_model("LSTM", n_cell, bias, batch, time_major)
    assert np.all(_litert_tensor(model, "c") >= 9)  # so that tanh(c) = 1 exactly
    theirs = _litert_tensor(model, "h")
    size, start = n_cell * batch, 3 * n_cell * batch
    if time_major:
        lanes = eigen_scalar_lanes(start, size).reshape(batch, n_cell)
    else:
        lanes = np.stack([eigen_scalar_lanes(start + b * n_cell, n_cell) for b in range(batch)])
    tiled = np.tile(bias, (batch, 1))
    np.testing.assert_array_equal(eigen_logistic(tiled, lanes), theirs)
    # Without the scalar lanes (the packet formula everywhere) this many elements are wrong
    # (1026: the two scalar lanes of that buffer happen to agree in both formulas).
    assert np.count_nonzero(eigen_logistic(tiled) != theirs) == packet_only_wrong


def test_tflm_float_tanh_is_the_c_library_tanhf() -> None:
    """TFLM's float kernels call ``std::tanh`` -- the C library's ``tanhf``, which glibc does not
    round correctly everywhere -- so recurrent_float takes it from the C library.  An SVDF with
    zero feature weights outputs ``tanh(bias)``."""
    from tflite_micro.python.tflite_micro import runtime

    from tflite_ref.kernels.recurrent_float import activation_val_float

    bias = np.concatenate([np.linspace(-9, 9, 2001), np.random.default_rng(1).normal(0, 2, 999),
                           [0.0, -0.0, 1e-30, 7.9, 8.5, 30.0]]).astype(np.float32)
    mb = ModelBuilder()
    sg = mb.subgraph("main")
    n = bias.size
    x = sg.tensor("x", [1, 1], "FLOAT32")
    wf = sg.tensor("wf", [n, 1], "FLOAT32", data=np.zeros((n, 1), np.float32))
    wt = sg.tensor("wt", [n, 1], "FLOAT32", data=np.ones((n, 1), np.float32))
    b = sg.tensor("b", [n], "FLOAT32", data=bias)
    state = sg.tensor("state", [1, n], "FLOAT32", is_variable=True)
    y = sg.tensor("y", [1, n], "FLOAT32")
    sg.operator("SVDF", [x, wf, wt, b, state], [y],
                {"rank": 1, "fused_activation_function": "TANH"})
    sg.inputs, sg.outputs = [x], [y]
    model = mb.build()
    ref = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    ref.set_input(np.ones((1, 1), np.float32), 0)
    ref.invoke()
    theirs = np.array(ref.get_output(0)).reshape(-1)
    np.testing.assert_array_equal(activation_val_float(bias, "TANH"), theirs)
    it = ours(model, "tflm")
    _feed(it, it.get_input_details(), [np.ones((1, 1), np.float32)])
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"])[0], theirs)
    correctly_rounded = np.tanh(bias.astype(np.float64)).astype(np.float32)
    if tflite_ref.quant.libm_available():  # else the NumPy fallback is all we have
        assert np.count_nonzero(correctly_rounded != theirs) > 0  # why not NumPy's tanh


# =============================================================================================
# The shared corpus's recurrent models, whole (runtimes in a child process: tests/native.py)
# =============================================================================================
REAL_MODELS = {  # model id -> runtimes to compare with
    "tflm/keyword_scrambled": ("litert", "tflm"),
    # int8 SVDF state: LiteRT reads past the buffer (heap corruption); never run it on this one.
    "tflm/keyword_scrambled_8bit": ("tflm",),
    "tflm/trained_lstm": ("litert", "tflm"),
    "tflm/trained_lstm_int8": ("litert", "tflm"),
    "tflm/micro_speech_lstm": ("litert", "tflm"),
    "tflm/dtln_noise_suppression": ("litert", "tflm"),
}


@pytest.mark.parametrize("model_id", sorted(REAL_MODELS))
def test_real_model(model_id: str) -> None:
    from conftest import SHARED_MODEL_FILES
    from conftest import model_id as id_of
    from harness import random_inputs
    from native import run_native

    path = next(p for p in SHARED_MODEL_FILES if id_of(p) == model_id)
    model = path.read_bytes()
    inputs = random_inputs(model, np.random.default_rng(0))
    for runtime in REAL_MODELS[model_id]:
        ref = run_native(runtime, path, inputs)
        assert ref.ok, ref.error
        it = ours(model, "tflite" if runtime == "litert" else "tflm")
        _feed(it, it.get_input_details(), inputs)
        it.invoke()
        sg = it.model.subgraphs[0]
        if runtime == "tflm":
            pairs = [(ti, ref.tensors[f"o{k}"]) for k, ti in enumerate(sg.outputs)]
        else:
            skip = _skipped(it.model)
            pairs = [(int(k[1:]), v) for k, v in ref.tensors.items()
                     if int(k[1:]) < len(sg.tensors) and int(k[1:]) not in skip]
            assert len(pairs) >= len(sg.operators)
        for ti, theirs in pairs:
            mine = it.get_tensor(ti)
            assert_tensor_matches(mine, theirs.reshape(mine.shape),
                                  f"{model_id} vs {runtime}: tensor {ti} {sg.tensors[ti].name!r}",
                                  rtol=0.0, atol=0.0)
