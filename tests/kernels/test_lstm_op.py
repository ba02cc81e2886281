"""The non-sequence LSTM builtin (lstm.py :func:`~tflite_ref.kernels.lstm.prepare_lstm`) against
LiteRT BUILTIN_REF, every tensor bit for bit, floats included, over two invokes (the states carry
over) -- and TFLite Micro, which has no LSTM kernel: the wheel fails to resolve the operator and
``emulate="tflm"`` refuses it.

LiteRT's lstm.cc full kernel runs lstm_eval.cc's EvalFloat / EvalHybrid / EvalInteger8x8_16 on a
2-D input with ``time_major = true`` and one time step.  The models are test_recurrent.py's
UNIDIRECTIONAL_SEQUENCE_LSTM models (:func:`test_recurrent.lstm_model`, one time-major step)
rewritten as LSTM operators: input ``[batch, input]``, output ``[batch, output]``, LSTMOptions.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from unittest import mock

import numpy as np
import pytest
import test_recurrent
from harness import assert_matches_litert, litert_interpreter, run_litert
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_recurrent import LstmCase, check_litert, ours, random_invokes

import tflite_ref
from tflite_ref.errors import ModelValidationError, UnsupportedOpError
from tflite_ref.model.writer import ModelBuilder


class _AsLstmOp(ModelBuilder):
    """A ModelBuilder that, at build(), turns the single UNIDIRECTIONAL_SEQUENCE_LSTM operator
    of a one-step time-major model into an LSTM operator (same inputs and intermediates)."""

    kernel_type = "FULL"
    input_rank = 2  # 3: keep the [1, batch, input] input (refused)
    extra_intermediates = 0  # pad the intermediates (12: the 8x8->8 variant)

    def build(self, *, external_buffers: bool = False) -> bytes:
        sg = self.subgraphs[0]
        (op,) = sg.operators
        sg.operators = []
        x, y = sg.tensors[op.inputs[0]], sg.tensors[op.outputs[0]]
        for t in (x, y) if self.input_rank == 2 else (y,):
            assert t.shape is not None and t.shape[0] == 1  # one time-major step
            t.shape = t.shape[1:]
        o = op.options
        options = {"fused_activation_function": o["fused_activation_function"],
                   "cell_clip": o["cell_clip"], "proj_clip": o["proj_clip"],
                   "kernel_type": self.kernel_type,
                   "asymmetric_quantize_inputs": o["asymmetric_quantize_inputs"]}
        inter: list[Any] | None = op.intermediates
        if self.extra_intermediates:
            inter = list(inter or []) + [
                sg.tensor(f"extra_intermediate_{k}", [0], "INT8", scale=1.0 / 128)
                for k in range(self.extra_intermediates)]
        sg.operator("LSTM", op.inputs, op.outputs, options, intermediates=inter)
        return super().build(external_buffers=external_buffers)


def lstm_op_model(c: LstmCase, **builder: Any) -> bytes:
    """test_recurrent.lstm_model's model of ``c`` as one LSTM step (``c.time`` and
    ``c.time_major`` are ignored: one time-major step)."""
    cls = type("_Builder", (_AsLstmOp,), builder) if builder else _AsLstmOp
    with mock.patch.object(test_recurrent, "ModelBuilder", cls):
        return test_recurrent.lstm_model(replace(c, time=1, time_major=True))


def _check(case: LstmCase, n: int = 2, float_range: float = 2.0) -> None:
    model = lstm_op_model(case)
    op = tflite_ref.load(model).subgraphs[0].operators[0]
    assert op.opcode == "LSTM"
    invokes = random_invokes(model, np.random.default_rng(case.seed), n=n,
                             float_range=float_range)
    # The first invoke also through the harness (every tensor, one invoke, fresh interpreters);
    # then every tensor after each of the invokes, the states carried over.
    assert assert_matches_litert(model, invokes[0]) >= 3
    check_litert(model, invokes)


FLOAT_CASES = [
    LstmCase("FLOAT32"),
    LstmCase("FLOAT32", batch=2, n_input=3, n_cell=6),
    LstmCase("FLOAT32", batch=2, cell_clip=0.5),
    LstmCase("FLOAT32", cifg=True, peephole=True),
    LstmCase("FLOAT32", batch=2, n_output=3, proj_clip=0.3, peephole=True),
    LstmCase("FLOAT32", batch=2, layer_norm=True, cifg=True),
    LstmCase("FLOAT32", batch=3, layer_norm=True, peephole=True, n_output=2),
    LstmCase("FLOAT32", activation="RELU"),
    LstmCase("FLOAT32", n_output=3, projection_bias=False, activation="RELU6"),
    LstmCase("FLOAT32", batch=2, n_output=4, cifg=True),  # projection to the same size
    LstmCase("FLOAT32", n_slots=20, batch=2),
    # Eigen's GEMM paths of one time-major step (recurrent_float.eigen_product): gebp panels,
    # the coefficient-based product (K + N + B < 20), a single cell, k blocking past depth 680
    LstmCase("FLOAT32", batch=5, n_input=30, n_cell=13),
    LstmCase("FLOAT32", batch=2, n_input=16, n_cell=1),
    LstmCase("FLOAT32", batch=5, n_input=30, n_cell=1),
    LstmCase("FLOAT32", batch=3, n_input=7, n_cell=7, cell_clip=1.0),
    LstmCase("FLOAT32", batch=2, n_input=700, n_cell=9, n_output=5, peephole=True),
]
HYBRID_CASES = [
    LstmCase("HYBRID"),
    LstmCase("HYBRID", batch=2, n_input=3, n_cell=6, asymmetric=True),
    LstmCase("HYBRID", batch=2, cell_clip=0.5, weight_type="UINT8"),
    LstmCase("HYBRID", batch=3, n_input=37, n_cell=21, asymmetric=True, peephole=True),
    LstmCase("HYBRID", cifg=True, peephole=True),
    LstmCase("HYBRID", batch=2, n_output=3, proj_clip=0.3, asymmetric=True),
    LstmCase("HYBRID", batch=2, layer_norm=True, cifg=True, n_cell=7),
    LstmCase("HYBRID", batch=2, layer_norm=True, peephole=True, n_output=5),
    LstmCase("HYBRID", n_output=6, projection_bias=False, activation="RELU6", asymmetric=True),
    LstmCase("HYBRID", n_slots=20, batch=2, activation="SIGN_BIT"),
    # NONE: LiteRT's h = o ⊙ (cell gate), its scratch buffer (lstm.py LstmHybridData)
    LstmCase("HYBRID", batch=2, activation="NONE"),
    LstmCase("HYBRID", batch=2, n_input=33, n_cell=16, minus_128=True, asymmetric=True,
             weight_type="UINT8"),
]
INT8_CASES = [
    LstmCase("INT8"),
    LstmCase("INT8", batch=3, n_input=8, n_cell=6, cell_clip=2.0),
    LstmCase("INT8", batch=2, n_input=2, n_cell=3, cell_scale_log2=-13, input_zero_point=-128,
             state_zero_point=-1),
    LstmCase("INT8", cell_scale_log2=-9, cell_clip=8.0),
    LstmCase("INT8", batch=2, cifg=True),
    LstmCase("INT8", peephole=True, cell_scale_log2=-12),
    LstmCase("INT8", batch=2, n_output=3, proj_clip=0.5),
    LstmCase("INT8", n_output=6, projection_bias=False),
    LstmCase("INT8", batch=2, layer_norm=True, n_cell=8),
    LstmCase("INT8", layer_norm=True, cifg=True, peephole=True, n_cell=5),
    LstmCase("INT8", n_slots=20),
]


def _id(c: LstmCase) -> str:
    return c.id.replace("-1x1x", "-").replace("-tm", "").replace("lstm-", "lstm_op-")


@pytest.mark.parametrize("case", FLOAT_CASES, ids=_id)
def test_lstm_op_float_vs_litert(case: LstmCase) -> None:
    _check(case)


@pytest.mark.parametrize("case", HYBRID_CASES, ids=_id)
def test_lstm_op_hybrid_vs_litert(case: LstmCase) -> None:
    model = lstm_op_model(case)
    invokes = random_invokes(model, np.random.default_rng(case.seed), n=3)
    # All-zero input, then all-zero state after the reset: LiteRT skips those products.
    invokes.insert(1, [np.zeros_like(invokes[0][0])])
    assert assert_matches_litert(model, invokes[0]) >= 3
    check_litert(model, invokes, reset_before=2)


@pytest.mark.parametrize("case", INT8_CASES, ids=_id)
def test_lstm_op_int8_vs_litert(case: LstmCase) -> None:
    _check(case, n=3)


def test_lstm_op_reset_all_variables_vs_litert() -> None:
    model = lstm_op_model(LstmCase("INT8", batch=2, state_zero_point=-4))
    check_litert(model, random_invokes(model, np.random.default_rng(9), n=3), reset_before=2)


def test_lstm_op_is_one_sequence_step() -> None:
    """The LSTM step equals UNIDIRECTIONAL_SEQUENCE_LSTM's first step on the same tensors (in
    LiteRT, the truth for both): the reuse of the sequence kernels is sound."""
    case = LstmCase("FLOAT32", batch=3, n_input=6, n_cell=5, peephole=True, n_output=4)
    single = lstm_op_model(case)
    seq = test_recurrent.lstm_model(replace(case, time=1, time_major=True))
    x = random_invokes(single, np.random.default_rng(1), n=1)[0][0]
    a = run_litert(single, [x])
    b = run_litert(seq, [x[np.newaxis]])
    out = tflite_ref.load(single).subgraphs[0].outputs[0]
    np.testing.assert_array_equal(a[out], b[out][0])


@given(data=st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_lstm_op_drawn(data: st.DataObject) -> None:
    """Drawn float32, hybrid and int8 LSTM steps, with every variant LiteRT runs."""
    dtype = data.draw(st.sampled_from(["FLOAT32", "HYBRID", "INT8"]))
    n_cell = data.draw(st.integers(1, 12))
    n_output = data.draw(st.sampled_from([None, None, max(1, n_cell - 2), n_cell, n_cell + 2]))
    if dtype == "FLOAT32" and n_output is not None and n_output > n_cell:
        n_output = n_cell  # refused: test_lstm_op_refusals[float-projection-wider]
    peephole = data.draw(st.booleans())
    if dtype == "INT8" and n_output is not None and n_output != n_cell:
        peephole = False  # refused (LiteRT's integer peephole with a projection, test_recurrent)
    activations = {"FLOAT32": ["TANH", "RELU", "RELU6"], "HYBRID": ["TANH", "RELU", "NONE"],
                   "INT8": ["TANH"]}[dtype]
    case = LstmCase(
        dtype, batch=data.draw(st.integers(1, 5)), n_input=data.draw(st.integers(1, 24)),
        n_cell=n_cell, n_output=n_output, cifg=data.draw(st.booleans()), peephole=peephole,
        layer_norm=data.draw(st.booleans()), activation=data.draw(st.sampled_from(activations)),
        cell_clip=data.draw(st.sampled_from([0.0, 0.0, 0.7, 3.0])),
        proj_clip=data.draw(st.sampled_from([0.0, 0.4])) if n_output else 0.0,
        n_slots=data.draw(st.sampled_from([24, 24, 20])),
        asymmetric=data.draw(st.booleans()),
        weight_type=data.draw(st.sampled_from(["INT8", "UINT8"])),
        cell_scale_log2=data.draw(st.integers(-14, -9)),
        input_zero_point=data.draw(st.integers(-128, 127)),
        state_zero_point=data.draw(st.integers(-10, 10)),
        seed=data.draw(st.integers(0, 2**16)))
    if case.n_slots == 20:
        case = replace(case, layer_norm=False)
    model = lstm_op_model(case)
    invokes = random_invokes(model, np.random.default_rng(case.seed),
                             float_range=data.draw(st.sampled_from([0.05, 2.0, 30.0])))
    check_litert(model, invokes)


# =============================================================================================
# Refusals
# =============================================================================================
def _tflm_resolves(model: bytes) -> bool:
    from tflite_micro.python.tflite_micro import runtime

    try:
        runtime.Interpreter.from_bytes(model, arena_size=8 << 20)
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8"])
def test_lstm_op_refused_for_tflm(dtype: str, capfd: pytest.CaptureFixture[str]) -> None:
    """TFLite Micro has no LSTM kernel: the wheel cannot build an interpreter for the model (its
    op resolver finds no registration), and emulate="tflm" refuses it, saying so (the model
    itself runs in LiteRT, see above)."""
    model = lstm_op_model(LstmCase(dtype))
    assert not _tflm_resolves(model)
    assert "Didn't find op for builtin opcode 'LSTM'" in "".join(capfd.readouterr())
    with pytest.raises(UnsupportedOpError, match="TFLite Micro has no LSTM kernel"):
        ours(model, "tflm")
    ours(model, "tflite")


def _litert_accepts(model: bytes) -> bool:
    try:
        litert_interpreter(model).allocate_tensors()
    except (RuntimeError, ValueError):
        return False
    return True


def test_lstm_op_basic_kernel_refused() -> None:
    model = lstm_op_model(LstmCase("FLOAT32"), kernel_type="BASIC")
    assert op_options(model)["kernel_type"] == "BASIC"
    with pytest.raises(UnsupportedOpError, match="kernel_type BASIC"):
        ours(model, "tflite")


def test_lstm_op_8x8_8_refused() -> None:
    """12 intermediates select LiteRT's integer 8x8->8 LSTM (EvalInteger8x8_8): refused."""
    model = lstm_op_model(LstmCase("INT8"), extra_intermediates=7)
    with pytest.raises(UnsupportedOpError, match="8x8->8"):
        ours(model, "tflite")


def test_lstm_op_sequence_input_refused() -> None:
    model = lstm_op_model(LstmCase("FLOAT32", batch=2), input_rank=3)
    with pytest.raises(UnsupportedOpError, match="rank 3"):
        ours(model, "tflite")


@pytest.mark.parametrize("case, error, match", [
    (LstmCase("FLOAT32", diagonal=True), ModelValidationError, "no diagonal recurrent"),
    (LstmCase("INT8", peephole=True, n_output=3), UnsupportedOpError,
     "peephole with a projection"),
    (LstmCase("INT8", cell_scale_log2=-8), UnsupportedOpError, "cell scales 2.-15 .. 2.-9"),
    (LstmCase("FLOAT32", activation="NONE"), UnsupportedOpError,
     "scratch buffers it never wrote"),
    # LiteRT writes n_batch·n_output projection-bias floats into an n_batch·n_cell scratch;
    # past its end (heap corruption: the process aborts), so it is not run here.
    (LstmCase("FLOAT32", batch=7, n_input=50, n_cell=1, n_output=7, cifg=True, peephole=True),
     UnsupportedOpError, "past the end of its scratch buffer"),
    (LstmCase("FLOAT32", n_output=6), UnsupportedOpError, "n_output 6 > n_cell 4"),
], ids=["diagonal", "int8-peephole-projection", "int8-cell-scale", "float-none",
        "float-projection-wider-aborts-litert", "float-projection-wider"])
def test_lstm_op_refusals(case: LstmCase, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ours(lstm_op_model(case), "tflite")


def test_lstm_op_diagonal_rejected_by_litert() -> None:
    """What test_lstm_op_refusals[diagonal] follows: lstm.cc's Prepare wants 2-D recurrent
    weights."""
    assert not _litert_accepts(lstm_op_model(LstmCase("FLOAT32", diagonal=True)))


def op_options(model: bytes) -> dict[str, Any]:
    return dict(tflite_ref.load(model).subgraphs[0].operators[0].options)
