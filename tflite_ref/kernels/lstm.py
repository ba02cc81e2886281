"""Kernels: UNIDIRECTIONAL_SEQUENCE_LSTM (float32; int8 activations with an int16 cell state;
hybrid), BIDIRECTIONAL_SEQUENCE_LSTM (float32; hybrid), LSTM (one step of the same cell: float32,
hybrid, int8 8x8→16).

The LSTM cell, per time step (``⊙`` element-wise, ``σ`` sigmoid, ``g`` the fused activation)::

    i = σ(W_i·x + R_i·h + P_i⊙c + b_i)      (CIFG variant: i = 1 − f)
    f = σ(W_f·x + R_f·h + P_f⊙c + b_f)
    z = g(W_c·x + R_c·h + b_c)               ("cell gate", usually tanh)
    c = clip(f⊙c + i⊙z)
    o = σ(W_o·x + R_o·h + P_o⊙c + b_o)       (peephole P_o sees the *new* c)
    h = o⊙g(c)   (with projection: h = clip(W_p·(o⊙g(c)) + b_p))

``x`` is ``input[t]``, ``h``/``c`` the output-state / cell-state *variable* tensors (inputs 18 and
19), which the kernel **updates in place** so that they carry over to the next invoke
(``Interpreter.reset_all_variables()`` restores them).  The output is ``h`` of every step.  Input
slots follow ``lstm_shared.h``: weights W (1-4) and R (5-8) in the order input, forget, cell,
output gate; peepholes P (9-11); biases (12-15); projection (16, 17); layer-norm coefficients
(20-23).  Every batch row is independent, so the kernel runs all rows of a time step at once,
and the input terms ``W·x`` of all steps are computed before the (sequential) time loop.

**Float32**, bit for bit with both runtimes (every tensor LiteRT shows, TFLM's outputs):
:attr:`LstmFloatData.runtime` selects the arithmetic.

* LiteRT ``tflite/kernels/lstm_eval.cc`` ``EvalFloat`` (CIFG, peephole, layer norm, projection,
  diagonal recurrent weights): each matrix product is ``optimized_ops::FullyConnected``, i.e.
  Eigen on the x86 build -- a GEMV per row for batch-major input (LiteRT steps its rows one at
  a time), one GEMM per step for a time-major batch, whose order depends on the shape
  (recurrent_float.py :func:`~tflite_ref.kernels.recurrent_float.eigen_product`); the gates
  take Eigen's sigmoid (scalar lanes where the gate's scratch buffer is unaligned) and tanh.
  The fused activation also turns the cell state into ``h``.
* TFLM ``micro/kernels/lstm_eval.h`` ``LstmStep`` (plain LSTM only): two reference
  FULLY_CONNECTEDs per gate (products in index order) added element-wise, sigmoid and tanh on
  the C library's ``expf`` / ``tanhf``; ``h = tanh(c)·o`` whatever the fused activation
  (:attr:`LstmFloatData.hidden_activation`).

**Integer (8x8→16)**: int8 input, weights and output state, int16 cell state, int32 biases; the
gate pre-activations are int16 in Q3.12 and the gates int16 in Q0.15.  The two runtimes are
different implementations (doc §2.21); their differences are the fields of
:class:`IntegerLstmArithmetic`, computed in prepare:

* LiteRT ``EvalInteger8x8_16`` (``lstm_eval.cc``, ``portable_tensor_utils.cc``, params from
  ``unidirectional_sequence_lstm.cc`` ``PopulateQuantizedLstmParams8x8_16``): each gate term is
  ``MultiplyByQuantizedMultiplier`` of an int32 accumulator whose input zero point is folded into
  the bias, *accumulated* into the int16 gate with saturation; sigmoid and tanh are gemmlowp's
  int16 fixed point (``ApplySigmoid``, ``ApplyTanh``); the cell products are rounding shifts
  (``CwiseMul(a, b, shift)``); the hidden state uses the scale and zero point of the op's 5th
  *intermediate* tensor, with a float32-rounded multiplier.  Gate scales are 2^-12 unless the
  model has layer norm (then intermediates 0-3).  Supports CIFG, peephole, projection, layer
  norm.
* TFLM ``LstmStep`` (``lstm_eval.h``, ``lstm_eval.cc``, ``lstm_eval_common.cc``): each gate is the
  saturating sum of two int8→int16 FULLY_CONNECTED results; sigmoid and tanh are the int16
  LOGISTIC / TANH reference kernels (table interpolation); the cell products are int16 MUL
  (``MultiplyByQuantizedMultiplier`` with double-derived multipliers); the hidden state uses
  the output-state tensor's scale and zero point.  Plain LSTM only (no CIFG, peephole,
  projection or layer norm: TFLM's Prepare rejects them).

**BIDIRECTIONAL_SEQUENCE_LSTM** (LiteRT ``tflite/kernels/bidirectional_sequence_lstm.cc``; TFLM
has no such op) runs two float LSTM cells of the same size -- the forward one over the
sequence, the backward one from the last step to the first -- each with its own states
(inputs 35-38).  An aux input (39) either feeds both cells through aux weights (40-47) or, without
aux weights, replaces the backward cell's input.  ``merge_outputs`` concatenates both outputs.
With int8/uint8 weights each cell is a hybrid cell (``lstm_eval::EvalHybrid`` with the aux input
quantized like the input).

**Hybrid** (float input, states and output; int8 or uint8 weights; LiteRT ``EvalHybrid``; TFLM
runs its float kernel on such a model, reading the int8 weights as floats -- refused):
:class:`LstmHybridData`.  Every product's float operand is quantized per batch row at run time
(rnn.py :class:`~tflite_ref.kernels.rnn.HybridWeights`), everything else is float32
in LiteRT's operation order with Eigen's tanh and sigmoid reproduced bit for bit -- needed,
because the output state is quantized again at the next step, where one ulp can move a rounding.
Supports CIFG, peephole, layer norm, projection, diagonal (float) recurrent weights and both
``asymmetric_quantize_inputs`` settings.

**LSTM** (the non-sequence builtin, LiteRT ``tflite/kernels/lstm.cc``, ``kernel_type`` FULL;
TFLM has no such op -- refused): the same 20 or 24 inputs in the same slots, a 2-D input
``[batch, input]`` and output ``[batch, output]``.  Its Eval calls the ``lstm_eval.cc`` functions
above with ``time_major = true`` and one time step, so the kernel is one time-major step of the
sequence cell (:func:`prepare_lstm`): float32 (EvalFloat: the step's products are one Eigen
GEMM over the batch), hybrid with int8/uint8 weights (EvalHybrid, both
``asymmetric_quantize_inputs``) and int8 8x8→16 (5 intermediates, EvalInteger8x8_16), with CIFG,
peephole, projection, layer norm; the recurrent weights are never diagonal there.  Refused: the
BASIC kernel type (5 inputs, 4 outputs, a different concatenated-weights cell) and the 8x8→8
integer LSTM (12 intermediates, ``EvalInteger8x8_8``).

Not implemented: int16 activations (TFLM 16x8), 2-D input to the sequence ops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tflite_ref.kernels.activations import (
    SigmoidTanhData,
    logistic_float32,
    logistic_int16,
    tanh_float32,
    tanh_int16,
)
from tflite_ref.kernels.conv import hybrid_weights
from tflite_ref.kernels.recurrent_float import (
    c_clip,
    eigen_product,
    sequential_matmul,
)
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.kernels.rnn import (
    HybridWeights,
    QuantizedRows,
    apply_activation_eigen,
    batch_quantize_floats,
    bidirectional_arity,
    check_activation_float,
    eigen_scalar_lanes,
    exact_int_matmul,
    hybrid_float_tensor,
    per_tensor_quant,
    require_state,
    state_view,
)
from tflite_ref.model.schema import tensor_type_name
from tflite_ref.quant.fixedpoint import (
    INT16_MAX,
    INT16_MIN,
    get_inv_sqrt_quantized_multiplier_exp,
    logistic,
    multiply_by_quantized_multiplier,
    round_away,
    rounding_divide_by_pot,
    tanh,
    wrap_int32,
)
from tflite_ref.quant.multipliers import quantize_multiplier

__all__ = [
    "BidirectionalLstmData",
    "HybridGate",
    "IntegerLstmArithmetic",
    "LstmFloatData",
    "LstmHybridData",
    "LstmIntegerData",
    "LstmSlots",
    "prepare_bidirectional_sequence_lstm",
    "prepare_lstm",
    "prepare_unidirectional_sequence_lstm",
]

F32 = np.float32
I64 = NDArray[np.int64]

# Input slots (lstm_shared.h for UNIDIRECTIONAL_SEQUENCE_LSTM; bidirectional_sequence_lstm.cc
# numbers the backward cell's tensors 17 higher and adds states 35-38, aux input 39-47).
INPUT = 0
GATES = ("input", "forget", "cell", "output")
_GATE_INDEX = {"input": 0, "forget": 1, "cell": 2, "output": 3}
_PEEPHOLE_INDEX = {"input": 0, "forget": 1, "output": 2}


@dataclass(frozen=True, slots=True)
class LstmSlots:
    """Where one LSTM cell's tensors are among the operator's inputs."""

    offset: int = 0  # added to the unidirectional numbering (bidirectional backward cell: 17)
    output_state: int = 18
    cell_state: int = 19
    layer_norm: int | None = 20  # first of 4 layer-norm coefficient slots, None: no such slots
    aux_weights: int | None = None  # first of 4 aux-input weight slots (bidirectional only)

    def input_weights(self, gate: str) -> int:
        return self.offset + 1 + _GATE_INDEX[gate]

    def recurrent_weights(self, gate: str) -> int:
        return self.offset + 5 + _GATE_INDEX[gate]

    def cell_weights(self, gate: str) -> int:  # peephole (no cell-gate peephole)
        return self.offset + 9 + _PEEPHOLE_INDEX[gate]

    def bias(self, gate: str) -> int:
        return self.offset + 12 + _GATE_INDEX[gate]

    @property
    def projection_weights(self) -> int:
        return self.offset + 16

    @property
    def projection_bias(self) -> int:
        return self.offset + 17

    def layer_norm_coefficients(self, gate: str) -> int:
        assert self.layer_norm is not None
        return self.layer_norm + _GATE_INDEX[gate]


UNIDIRECTIONAL = LstmSlots()
# Unidirectional slot numbers, for readers and tests.
OUTPUT_STATE, CELL_STATE = UNIDIRECTIONAL.output_state, UNIDIRECTIONAL.cell_state


# =============================================================================================
# Geometry and checks shared by both paths
# =============================================================================================
@dataclass(frozen=True, slots=True)
class LstmShape:
    n_batch: int
    n_time: int
    n_input: int
    n_cell: int
    n_output: int
    time_major: bool
    use_cifg: bool
    use_peephole: bool
    use_projection: bool
    use_layer_norm: bool
    n_aux_input: int = 0  # bidirectional with aux weights


def _weights(ctx: OpContext, i: int, what: str) -> np.ndarray:
    data = ctx.const(i)
    if data is None:
        ctx.unsupported(f"input {i} ({what}) is computed at run time; LSTM weights, biases and "
                        "coefficients must be constant")
    return data


def _check_shape(ctx: OpContext, i: int, want: tuple[int, ...], what: str) -> None:
    t = ctx.input(i)
    if t is not None and tuple(ctx.input_shape(i)) != want:
        ctx.fail(f"input {i} ({what}) has shape {list(ctx.input_shape(i))}, expected {list(want)}")


def _sequence_geometry(ctx: OpContext) -> tuple[int, int, int, bool]:
    """``(n_time, n_batch, n_input, time_major)`` of the 3-D input."""
    in_shape = ctx.input_shape(INPUT)
    if len(in_shape) != 3:
        ctx.unsupported(f"input must be 3-D ([batch, time, input] or time-major), got "
                        f"{list(in_shape)}")
    time_major = bool(ctx.options.get("time_major", False))
    n_time, n_batch = (in_shape[0], in_shape[1]) if time_major else (in_shape[1], in_shape[0])
    return n_time, n_batch, in_shape[2], time_major


def _cell_shape(ctx: OpContext, sl: LstmSlots, n_time: int, n_batch: int, n_input: int,
                time_major: bool, n_aux_input: int = 0) -> LstmShape:
    """One LSTM cell's tensors: LiteRT CheckInputTensorDimensions (unidirectional_sequence_lstm.cc,
    bidirectional_sequence_lstm.cc) and TFLM ValidateTensorSize (lstm_eval_common.cc)."""
    for g in ("forget", "cell", "output"):
        ctx.require_input(sl.input_weights(g))
        ctx.require_input(sl.recurrent_weights(g))
        ctx.require_input(sl.bias(g))
    w_o = ctx.input_shape(sl.input_weights("output"))
    if len(w_o) != 2 or w_o[1] != n_input:
        ctx.fail(f"input-to-output weights {list(w_o)} must be [n_cell, {n_input}]")
    n_cell = w_o[0]
    r_o = ctx.input_shape(sl.recurrent_weights("output"))
    n_output = r_o[0] if len(r_o) == 1 else r_o[1]
    use_cifg = ctx.input(sl.input_weights("input")) is None
    if use_cifg != (ctx.input(sl.recurrent_weights("input")) is None):
        ctx.fail("input-to-input and recurrent-to-input weights must be both present or both "
                 "absent (CIFG)")
    if use_cifg != (ctx.input(sl.bias("input")) is None):
        ctx.fail("the input gate bias must be present exactly when the input gate weights are")
    present = {g: ctx.input(sl.cell_weights(g)) is not None for g in ("input", "forget", "output")}
    use_peephole = present["forget"] and present["output"]
    if (present["forget"] != present["output"] or present["input"] and use_cifg
            or not use_cifg and present["input"] != use_peephole):
        ctx.fail("peephole weights must be all present or all absent")
    use_projection = ctx.input(sl.projection_weights) is not None
    if not use_projection and ctx.input(sl.projection_bias) is not None:
        ctx.fail("a projection bias needs projection weights")
    use_layer_norm = (sl.layer_norm is not None and ctx.num_inputs > sl.layer_norm + 3
                      and ctx.input(sl.layer_norm_coefficients("forget")) is not None)
    for g in GATES:
        if use_cifg and g == "input":
            if use_layer_norm and ctx.input(sl.layer_norm_coefficients("input")) is not None:
                ctx.fail("a CIFG LSTM has no input-gate layer-norm coefficients")
            continue
        _check_shape(ctx, sl.input_weights(g), (n_cell, n_input), f"input-to-{g} weights")
        r = ctx.input_shape(sl.recurrent_weights(g))
        if tuple(r) not in ((n_cell, n_output), (n_cell,)):
            ctx.fail(f"recurrent-to-{g} weights {list(r)} must be [{n_cell}, {n_output}] (or "
                     f"[{n_cell}] diagonal)")
        _check_shape(ctx, sl.bias(g), (n_cell,), f"{g} gate bias")
        if use_peephole and g != "cell":
            _check_shape(ctx, sl.cell_weights(g), (n_cell,), f"cell-to-{g} weights")
        if use_layer_norm:
            ctx.require_input(sl.layer_norm_coefficients(g))
            _check_shape(ctx, sl.layer_norm_coefficients(g), (n_cell,),
                         f"{g} layer-norm coefficients")
        if sl.aux_weights is not None and n_aux_input:
            i = sl.aux_weights + _GATE_INDEX[g]
            ctx.require_input(i)
            _check_shape(ctx, i, (n_cell, n_aux_input), f"aux-input-to-{g} weights")
    if use_projection:
        _check_shape(ctx, sl.projection_weights, (n_output, n_cell), "projection weights")
        _check_shape(ctx, sl.projection_bias, (n_output,), "projection bias")
    elif n_output != n_cell:
        ctx.fail(f"without projection the output size {n_output} must equal n_cell {n_cell}")
    require_state(ctx, sl.output_state, "output state")
    require_state(ctx, sl.cell_state, "cell state")
    if int(np.prod(ctx.input_shape(sl.output_state))) != n_batch * n_output:
        ctx.fail(f"output state {list(ctx.input_shape(sl.output_state))} must hold "
                 f"{n_batch}x{n_output} values")
    if int(np.prod(ctx.input_shape(sl.cell_state))) != n_batch * n_cell:
        ctx.fail(f"cell state {list(ctx.input_shape(sl.cell_state))} must hold "
                 f"{n_batch}x{n_cell} values")
    if ctx.options.get("cell_clip", 0.0) < 0 or ctx.options.get("proj_clip", 0.0) < 0:
        ctx.fail("cell_clip and proj_clip must not be negative")
    return LstmShape(n_batch, n_time, n_input, n_cell, n_output, time_major, use_cifg,
                     use_peephole, use_projection, use_layer_norm, n_aux_input)


def _lstm_shape(ctx: OpContext) -> LstmShape:
    """UNIDIRECTIONAL_SEQUENCE_LSTM's Prepare checks; sets the output shape."""
    n_in = ctx.num_inputs
    if ctx.num_outputs != 1:
        ctx.fail(f"takes 1 output, got {ctx.num_outputs}")
    if ctx.emulate == "tflm" and n_in != 24:
        ctx.fail(f"TFLite Micro's LSTM takes 24 inputs, got {n_in}")
    if n_in not in (20, 24):
        ctx.fail(f"takes 20 or 24 inputs, got {n_in}")
    n_time, n_batch, n_input, time_major = _sequence_geometry(ctx)
    shape = _cell_shape(ctx, UNIDIRECTIONAL, n_time, n_batch, n_input, time_major)
    if ctx.emulate == "tflm":
        _check_tflm_plain_lstm(ctx, shape)
    ctx.set_output_shape(0, (*ctx.input_shape(INPUT)[:2], shape.n_output))
    return shape


def _check_tflm_plain_lstm(ctx: OpContext, shape: LstmShape) -> None:
    """lstm_eval.cc LstmTensors::ValidateTensorStatus: TFLM runs the plain LSTM only."""
    extras = [name for name, used in (("CIFG (no input gate)", shape.use_cifg),
                                      ("peephole", shape.use_peephole),
                                      ("projection", shape.use_projection),
                                      ("layer norm", shape.use_layer_norm)) if used]
    extras += [f"input {i}" for i in range(20, 24) if ctx.input(i) is not None
               and not shape.use_layer_norm]
    if extras:
        ctx.unsupported(f"TFLite Micro's LSTM has no {', '.join(extras)}")
    sl = UNIDIRECTIONAL
    if any(len(ctx.input_shape(sl.recurrent_weights(g))) != 2 for g in GATES):
        ctx.unsupported("TFLite Micro's LSTM has no diagonal recurrent weights")
    out_state, cell_state = ctx.require_input(sl.output_state), ctx.require_input(sl.cell_state)
    if not (out_state.is_variable and cell_state.is_variable):
        ctx.fail("TFLite Micro requires the output and cell states to be variable tensors")
    x = ctx.require_input(INPUT)
    if out_state.type != x.type or ctx.output(0).type != x.type:
        ctx.fail("TFLite Micro requires the output state and the output to have the input's "
                 "type")
    if tuple(ctx.input_shape(sl.output_state))[1:] != (shape.n_cell,):
        ctx.fail(f"TFLite Micro reads the state size from dimension 1 of the output state "
                 f"{list(ctx.input_shape(sl.output_state))}, which must be "
                 f"[batch, {shape.n_cell}]")


def _to_time_major(shape: LstmShape, x: np.ndarray) -> np.ndarray:
    return x if shape.time_major else x.transpose(1, 0, 2)


def _from_time_major(shape: LstmShape, y: np.ndarray) -> np.ndarray:
    return y if shape.time_major else np.ascontiguousarray(y.transpose(1, 0, 2))


def prepare_unidirectional_sequence_lstm(ctx: OpContext
                                         ) -> LstmFloatData | LstmIntegerData | LstmHybridData:
    x = ctx.require_input(INPUT)
    w_type = ctx.require_input(UNIDIRECTIONAL.input_weights("output")).type
    hybrid = x.type == T.FLOAT32 and w_type in (T.INT8, T.UINT8)
    if hybrid and ctx.emulate == "tflm":
        # unidirectional_sequence_lstm.cc Eval switches on the input type only: float input runs
        # EvalLstm<float, float, float, float>, which reads the int8 weights as float32 -- four
        # bytes per weight, past the end of each tensor (the wheel returns NaNs).
        ctx.unsupported(f"hybrid LSTM ({ctx.describe_types()}): TFLite Micro runs its float "
                        "kernel on it and reads the int8 weights as float32, past their end; "
                        "there is no result to reproduce (LiteRT runs it: emulate='tflite')")
    shape = _lstm_shape(ctx)
    if x.type == T.FLOAT32 and w_type == T.FLOAT32:
        return _prepare_float(ctx, shape, UNIDIRECTIONAL)
    if hybrid:
        return _prepare_hybrid(ctx, shape)
    if x.type == T.INT8 and w_type == T.INT8:
        return _prepare_integer(ctx, shape)
    ctx.unsupported(f"{ctx.describe_types()}: implemented are float32 activations with float32 "
                    "or int8/uint8 (hybrid) weights, and int8 activations with int8 weights")


# =============================================================================================
# Float32
# =============================================================================================
@dataclass(frozen=True, slots=True)
class FloatGate:
    input_weights: NDArray[np.float32]  # (n_cell, n_input), row-major as the kernels read it
    recurrent_weights: NDArray[np.float32]  # (n_cell, n_output), or (n_cell,) diagonal
    cell_weights: NDArray[np.float32] | None  # peephole
    layer_norm: NDArray[np.float32] | None
    bias: NDArray[np.float32]
    activation: str
    aux_weights: NDArray[np.float32] | None = None  # (n_cell, n_aux_input), bidirectional
    # LiteRT: (n_batch, n_cell), where Eigen computes this gate's sigmoid with its scalar
    # functor (see _scratch_scalar_lanes); None for other activations and for TFLM.
    scalar_lanes: NDArray[np.bool_] | None = None


@dataclass(frozen=True, slots=True)
class LstmFloatData:
    """A float LSTM cell and the runtime whose arithmetic it follows (``runtime``):

    * ``"tflite"`` -- LiteRT ``lstm_eval.cc`` ``EvalFloat`` / ``LstmStepFloat``: gate = bias;
      gate = Eigen(W·x) + gate (skipped for an all-zero input); the same for the aux input and
      for R·h (``MatrixBatchVectorMultiplyAccumulate``, recurrent_float.py
      :func:`~tflite_ref.kernels.recurrent_float.eigen_product`: a GEMV per row for batch-major
      input, one GEMM per step for a time-major batch); gate += P⊙c; layer norm; Eigen's
      sigmoid / tanh.  ``c = f·c; c += z·i``; ``h = o · act(c)``, projection
      ``Eigen(W_p·h) + bias``.
    * ``"tflm"`` -- TFLM ``lstm_eval.h`` ``LstmStep``: gate = (Σ_k x·W + b) + (Σ_k h·R + 0)
      (two reference FULLY_CONNECTEDs, k in order), ``reference_ops::Logistic`` / ``Tanh`` on
      the C library's ``expf`` / ``tanhf``; ``c = f·c; c = c + i·z``; ``h = tanh(c)·o``.
    """

    shape: LstmShape
    slots: LstmSlots
    input_gate: FloatGate | None  # None: CIFG
    forget_gate: FloatGate
    cell_gate: FloatGate
    output_gate: FloatGate
    cell_clip: float
    proj_clip: float
    projection_weights: NDArray[np.float32] | None  # (n_output, n_cell)
    projection_bias: NDArray[np.float32] | None
    # The emulation difference: what turns the cell state into the hidden state.
    # LiteRT CalculateLstmOutputFloat: the fused activation; TFLM UpdateLstmHidden: tanh.
    hidden_activation: str
    runtime: str = "tflite"  # whose float arithmetic: "tflite" (LiteRT) or "tflm"


def _check_float_activation(ctx: OpContext) -> str:
    activation = str(ctx.options.get("fused_activation_function", "NONE"))
    check_activation_float(ctx, activation)
    if ctx.emulate == "tflite" and activation == "NONE":
        # ApplyActivationToVector returns without writing for kTfLiteActNone, so LiteRT's
        # EvalFloat then uses scratch buffers as they happen to be left: the cell gate keeps
        # only its bias in some cases (all-zero input, diagonal weights) and h = o ⊙ (cell gate)
        # instead of o ⊙ c.  There is no LSTM to reproduce.
        ctx.unsupported("fused activation NONE: LiteRT's float LSTM then reads scratch buffers "
                        "it never wrote (ApplyActivationToVector skips the copy)")
    if ctx.emulate == "tflm" and activation != "TANH":
        # lstm_eval.h CalculateLstmGate takes sigmoid or tanh, anything else hits
        # TFLITE_ASSERT_FALSE; a model can only name TANH of the two.
        ctx.unsupported(f"TFLite Micro's LSTM takes a TANH cell gate, not {activation}")
    return activation


def _scratch_slot(shape: LstmShape, gate: str) -> int:
    """Where LiteRT's EvalFloat and EvalHybrid put a gate in their scratch buffer: input,
    cell, forget, output gate, n_cell·n_batch floats each (without the input gate under CIFG)."""
    order = ("cell", "forget", "output") if shape.use_cifg else ("input", "cell", "forget",
                                                                  "output")
    return order.index(gate)


def _scratch_scalar_lanes(shape: LstmShape, gate: str) -> NDArray[np.bool_]:
    """Eigen's scalar lanes of one gate's sigmoid (see rnn.py :func:`eigen_scalar_lanes`; the
    gate's scratch slot is the destination, LiteRT's arena aligns the buffer to 64 bytes):
    time-major input activates a gate's whole buffer at once; batch-major runs one batch row
    per call, at row offset ``b·n_cell`` in the buffer."""
    size = shape.n_cell * shape.n_batch
    base = _scratch_slot(shape, gate) * size
    if shape.time_major:
        return eigen_scalar_lanes(base, size).reshape(shape.n_batch, shape.n_cell)
    return np.stack([eigen_scalar_lanes(base + b * shape.n_cell, shape.n_cell)
                     for b in range(shape.n_batch)])


def _prepare_float(ctx: OpContext, shape: LstmShape, sl: LstmSlots) -> LstmFloatData:
    for i in range(1, ctx.num_inputs):
        t = ctx.input(i)
        if t is not None and t.type != T.FLOAT32:
            ctx.fail(f"input {i} must be FLOAT32 in a float LSTM, not {t.type_name}")
    activation = _check_float_activation(ctx)
    tflite = ctx.emulate == "tflite"

    def gate(name: str, act: str) -> FloatGate | None:
        if shape.use_cifg and name == "input":
            return None
        cell = (_weights(ctx, sl.cell_weights(name), f"cell-to-{name} weights").astype(F32)
                if shape.use_peephole and name != "cell" else None)
        ln = (_weights(ctx, sl.layer_norm_coefficients(name), f"{name} layer norm").astype(F32)
              if shape.use_layer_norm else None)
        rec = _weights(ctx, sl.recurrent_weights(name), f"recurrent-to-{name} weights")
        aux = None
        if shape.n_aux_input:
            assert sl.aux_weights is not None
            aux = np.ascontiguousarray(_weights(ctx, sl.aux_weights + _GATE_INDEX[name],
                                                f"aux-input-to-{name} weights"), dtype=F32)
        lanes = _scratch_scalar_lanes(shape, name) if tflite and act == "SIGMOID" else None
        return FloatGate(
            np.ascontiguousarray(_weights(ctx, sl.input_weights(name), "weights"), dtype=F32),
            np.ascontiguousarray(rec, dtype=F32), cell, ln,
            _weights(ctx, sl.bias(name), f"{name} gate bias").astype(F32), act, aux, lanes)

    proj_w = proj_b = None
    if shape.use_projection:
        proj_w = np.ascontiguousarray(_weights(ctx, sl.projection_weights, "projection"),
                                      dtype=F32)
        if ctx.input(sl.projection_bias) is not None:
            proj_b = _weights(ctx, sl.projection_bias, "projection bias").astype(F32)
    forget, cell, output = gate("forget", "SIGMOID"), gate("cell", activation), gate(
        "output", "SIGMOID")
    assert forget is not None and cell is not None and output is not None
    hidden_activation = activation if tflite else "TANH"
    return LstmFloatData(shape, sl, gate("input", "SIGMOID"), forget, cell, output,
                         float(F32(ctx.options.get("cell_clip", 0.0))),
                         float(F32(ctx.options.get("proj_clip", 0.0))), proj_w, proj_b,
                         hidden_activation, ctx.emulate)


def _mean_stddev_normalization(v: NDArray[np.float32]) -> NDArray[np.float32]:
    """portable_tensor_utils.cc PortableMeanStddevNormalization, per row, in float32 (the SSE
    build's ``MeanStddevNormalization`` is the portable one)."""
    n = F32(v.shape[-1])
    mean = np.cumsum(v, axis=-1, dtype=F32)[..., -1:] / n
    diff = (v - mean).astype(F32)
    variance = np.cumsum(diff * diff, axis=-1, dtype=F32)[..., -1:] / n
    stddev_inv = F32(1) / np.sqrt(variance + F32(1e-8))
    out: NDArray[np.float32] = ((v - mean) * stddev_inv).astype(F32)
    return out


# -- LiteRT: lstm_eval.cc EvalFloat -------------------------------------------------------------
def _litert_product(data: LstmFloatData, matrix: NDArray[np.float32],
                    vectors: NDArray[np.float32], result: NDArray[np.float32]
                    ) -> NDArray[np.float32]:
    """lstm_eval.cc's ``MatrixBatchVectorMultiplyAccumulate(matrix, vector, result, output)``:
    ``output = Eigen(matrix · vector) + result``.  A time-major step passes all batch rows at
    once (a GEMM); batch-major input is stepped one row at a time (GEMVs)."""
    prod = eigen_product(matrix, vectors, batched=data.shape.time_major)
    return np.asarray(prod + result, dtype=F32)


def _zero_rows(data: LstmFloatData, v: NDArray[np.float32]) -> NDArray[np.bool_]:
    """LstmStepFloat's ``IsZeroVector`` over what one call sees, for rows (..., B, K): the whole
    step of a time-major input, each row of a batch-major one; shape (..., B, 1)."""
    zero_row: NDArray[np.bool_] = ~np.any(v, axis=-1, keepdims=True)
    if data.shape.time_major:
        return np.broadcast_to(np.all(zero_row, axis=-2, keepdims=True), zero_row.shape)
    return zero_row


def _litert_input_terms(data: LstmFloatData, g: FloatGate | None, xs: NDArray[np.float32],
                        aux: NDArray[np.float32] | None) -> NDArray[np.float32] | None:
    """CalculateLstmGateFloat up to the recurrent product, for every step at once (each step's
    terms depend on that step's input only): ``gate = bias`` (0 with layer norm), then
    ``+= W·x`` and ``+= W_aux·aux`` unless that input is all zeros (``IsZeroVector``)."""
    if g is None:
        return None
    start = np.zeros_like(g.bias) if g.layer_norm is not None else g.bias
    acc = np.broadcast_to(start, xs.shape[:-1] + start.shape).astype(F32)
    acc = np.where(_zero_rows(data, xs), acc, _litert_product(data, g.input_weights, xs, acc))
    if g.aux_weights is not None and aux is not None:
        acc = np.where(_zero_rows(data, aux), acc,
                       _litert_product(data, g.aux_weights, aux, acc))
    return np.asarray(acc, dtype=F32)


def _litert_gate(data: LstmFloatData, g: FloatGate, x_term: NDArray[np.float32],
                 h: NDArray[np.float32], c: NDArray[np.float32]) -> NDArray[np.float32]:
    """CalculateLstmGateFloat after the input products: ``+= R·h`` (diagonal: ``VectorBatchVector
    CwiseProductAccumulate``), ``+= P⊙c``, layer norm (normalise, × coefficients, + bias),
    ``ApplyActivationToVector`` (Eigen's sigmoid / tanh)."""
    if g.recurrent_weights.ndim == 1:
        acc = x_term + g.recurrent_weights * h
    else:
        acc = _litert_product(data, g.recurrent_weights, h, x_term)
    if g.cell_weights is not None:
        acc = acc + g.cell_weights * c
    if g.layer_norm is not None:
        acc = _mean_stddev_normalization(np.asarray(acc, dtype=F32)) * g.layer_norm + g.bias
    return apply_activation_eigen(np.asarray(acc, dtype=F32), g.activation, g.scalar_lanes)


def _litert_step(data: LstmFloatData, x_terms: list[NDArray[np.float32] | None],
                 h: NDArray[np.float32], c: NDArray[np.float32]
                 ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """LstmStepFloat: input, forget, cell gate; UpdateLstmCellFloat; output gate;
    CalculateLstmOutputFloat.  Returns the new (h, c)."""
    inp = None
    if data.input_gate is not None:
        inp = _litert_gate(data, data.input_gate, x_terms[0], h, c)  # type: ignore[arg-type]
    forget = _litert_gate(data, data.forget_gate, x_terms[1], h, c)  # type: ignore[arg-type]
    cell_in = _litert_gate(data, data.cell_gate, x_terms[2], h, c)  # type: ignore[arg-type]
    # UpdateLstmCellFloat: c = f·c (VectorVectorCwiseProduct); c += z·i (… Accumulate), with
    # i = 1 − f under CIFG (Sub1Vector); CwiseClipping.
    new_c = forget * c
    new_c = new_c + cell_in * (F32(1) - forget if inp is None else inp)
    if data.cell_clip > 0:
        new_c = c_clip(new_c, data.cell_clip)
    new_c = np.asarray(new_c, dtype=F32)
    o = _litert_gate(data, data.output_gate, x_terms[3], h, new_c)  # type: ignore[arg-type]
    # CalculateLstmOutputFloat: scratch = act(c); scratch = o·scratch; projection:
    # out = Eigen(W_p·scratch) + (bias or 0), clipped.
    hidden = o * apply_activation_eigen(new_c, data.hidden_activation)
    if data.projection_weights is not None:
        start = (np.zeros(data.shape.n_output, F32) if data.projection_bias is None
                 else data.projection_bias)
        hidden = _litert_product(data, data.projection_weights, np.asarray(hidden, dtype=F32),
                                 np.broadcast_to(start, hidden.shape[:-1] + start.shape))
        if data.proj_clip > 0:
            hidden = c_clip(hidden, data.proj_clip)
    return np.asarray(hidden, dtype=F32), new_c


# -- TFLM: lstm_eval.h LstmStep<float, float, float, float> ------------------------------------
# lstm_eval.cc Sigmoid / Tanh (float) run reference_ops::Logistic / Tanh in place: the float
# LOGISTIC and TANH kernels (on the C library's expf / tanhf), which read no prepared data.
_FLOAT_ACTIVATION = SigmoidTanhData(None, 0, 0)


def _tflm_input_terms(g: FloatGate | None, xs: NDArray[np.float32]
                      ) -> NDArray[np.float32] | None:
    """The input FULLY_CONNECTED of CalculateLstmGate for every step at once:
    ``(Σ_k x·W) + b``."""
    if g is None:
        return None
    return np.asarray(sequential_matmul(g.input_weights, xs) + g.bias, dtype=F32)


def _tflm_gate(g: FloatGate, x_term: NDArray[np.float32], h: NDArray[np.float32]
               ) -> NDArray[np.float32]:
    """CalculateLstmGate: the recurrent FULLY_CONNECTED (no bias: ``total + 0.f``), added
    element-wise to the input one (AddElementWise), then Sigmoid or Tanh."""
    rec = sequential_matmul(g.recurrent_weights, h) + F32(0)
    acc = np.asarray(x_term + rec, dtype=F32)
    kernel = logistic_float32 if g.activation == "SIGMOID" else tanh_float32
    return np.asarray(kernel(_FLOAT_ACTIVATION, acc), dtype=F32)


def _tflm_step(data: LstmFloatData, x_terms: list[NDArray[np.float32] | None],
               h: NDArray[np.float32], c: NDArray[np.float32]
               ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """LstmStep: forget, input, cell gate; UpdateLstmCell (``c = f·c``, ``c = c + i·z``,
    Clipping); output gate; UpdateLstmHidden (``h = tanh(c)·o``)."""
    assert data.input_gate is not None  # TFLM has no CIFG
    forget = _tflm_gate(data.forget_gate, x_terms[1], h)  # type: ignore[arg-type]
    inp = _tflm_gate(data.input_gate, x_terms[0], h)  # type: ignore[arg-type]
    cell_in = _tflm_gate(data.cell_gate, x_terms[2], h)  # type: ignore[arg-type]
    new_c = np.asarray(forget * c, dtype=F32)
    new_c = np.asarray(new_c + inp * cell_in, dtype=F32)
    if data.cell_clip > 0:
        new_c = c_clip(new_c, data.cell_clip)
    o = _tflm_gate(data.output_gate, x_terms[3], h)  # type: ignore[arg-type]
    return np.asarray(tanh_float32(_FLOAT_ACTIVATION, new_c) * o, dtype=F32), new_c


def _float_lstm_pass(data: LstmFloatData, xs: NDArray[np.float32],
                     aux: NDArray[np.float32] | None, h_state: np.ndarray, c_state: np.ndarray,
                     reverse: bool = False) -> NDArray[np.float32]:
    """EvalFloat (LiteRT) / EvalLstm (TFLM) over time-major ``xs`` (time, batch, input);
    ``reverse`` runs the steps last to first (``forward_sequence = false``).  The states are
    updated in place; returns the hidden state of every step, time-major.  Every batch row is
    independent in both runtimes' arithmetic, so a step runs all rows at once."""
    sh = data.shape
    h_view = state_view(h_state, (sh.n_batch, sh.n_output))
    c_view = state_view(c_state, (sh.n_batch, sh.n_cell))
    gates = (data.input_gate, data.forget_gate, data.cell_gate, data.output_gate)
    if data.runtime == "tflite":
        x_terms = [_litert_input_terms(data, g, xs, aux) for g in gates]
        step = _litert_step
    else:
        x_terms = [_tflm_input_terms(g, xs) for g in gates]
        step = _tflm_step
    h, c = h_view.copy(), c_view.copy()
    out = np.empty((sh.n_time, sh.n_batch, sh.n_output), dtype=F32)
    for t in (range(sh.n_time - 1, -1, -1) if reverse else range(sh.n_time)):
        h, c = step(data, [None if x is None else x[t] for x in x_terms], h, c)
        out[t] = h
    h_view[...] = h
    c_view[...] = c
    return out


@register(Op.UNIDIRECTIONAL_SEQUENCE_LSTM, T.FLOAT32,
          prepare=prepare_unidirectional_sequence_lstm)
def unidirectional_sequence_lstm_float32(data: LstmFloatData | LstmHybridData,
                                         x: NDArray[np.float32], *inputs: np.ndarray | None
                                         ) -> NDArray[np.float32]:
    """lstm_eval.cc EvalFloat (LiteRT), EvalLstm<float> (TFLM).  Inputs 18 and 19 (output and
    cell state) are updated in place.  Hybrid data (int8 weights): EvalHybrid,
    :func:`_lstm_hybrid_pass`."""
    if isinstance(data, LstmHybridData):
        xs = np.ascontiguousarray(_to_time_major(data.shape, x), dtype=F32)
        out = _lstm_hybrid_pass(data, xs, None, inputs[OUTPUT_STATE - 1],  # type: ignore
                                inputs[CELL_STATE - 1])  # type: ignore[arg-type]
        return _from_time_major(data.shape, out)
    sh, sl = data.shape, data.slots
    xs = np.ascontiguousarray(_to_time_major(sh, x), dtype=F32)
    out = _float_lstm_pass(data, xs, None, inputs[sl.output_state - 1],  # type: ignore[arg-type]
                           inputs[sl.cell_state - 1])  # type: ignore[arg-type]
    return _from_time_major(sh, out)

# =============================================================================================
# Hybrid: float activations and states, int8 weights (LiteRT only)
# =============================================================================================
@dataclass(frozen=True, slots=True)
class HybridGate:
    """One gate of lstm_eval.cc ``CalculateLstmGateHybrid``."""

    input_weights: HybridWeights
    aux_weights: HybridWeights | None  # bidirectional with aux weights
    recurrent_weights: HybridWeights | None  # None: diagonal recurrent weights
    recurrent_diagonal: NDArray[np.float32] | None  # float32 (read with GetTensorData<float>)
    cell_weights: NDArray[np.float32] | None  # peephole, fl32(s · w) (VectorScalarMultiply)
    layer_norm: NDArray[np.float32] | None
    bias: NDArray[np.float32]
    activation: str  # SIGMOID, or the fused activation for the cell gate
    # (n_batch, n_cell): where Eigen computes this gate's sigmoid with its scalar functor, from
    # where the gate's scratch buffer sits (EvalHybrid's scratch layout, eigen_scalar_lanes).
    scalar_lanes: NDArray[np.bool_] | None


@dataclass(frozen=True, slots=True)
class LstmHybridData:
    """lstm_eval.cc ``EvalHybrid`` / ``LstmStepHybrid``.

    Per step, every float operand of a product (the input, the output state, the projection's
    input) is quantized per batch row (``asymmetric_quantize_inputs`` picks the quantizer) and
    multiplied by int8 weights (rnn.py :class:`HybridWeights`); the rest is float32 in LiteRT's
    order: ``gate = bias; gate += W·x; gate += R·h; gate += P⊙c``, layer norm, Eigen's sigmoid /
    tanh; ``c = f·c; c += z·i``; ``h = o · act(c)``, projection.
    """

    shape: LstmShape
    slots: LstmSlots
    asymmetric: bool
    input_gate: HybridGate | None  # None: CIFG
    forget_gate: HybridGate
    cell_gate: HybridGate
    output_gate: HybridGate
    cell_clip: float
    proj_clip: float
    projection_weights: HybridWeights | None
    projection_bias: NDArray[np.float32] | None
    activation: str
    # With activation NONE, ApplyActivationToVector(c) writes nothing, so CalculateLstmOutputHybrid
    # multiplies the output gate by what its scratch buffer holds: the cell gate z (the same
    # buffer).  h = o ⊙ z instead of o ⊙ c -- reproduced, as LiteRT computes it.
    hidden_from_cell_gate: bool


def _prepare_hybrid(ctx: OpContext, shape: LstmShape, sl: LstmSlots = UNIDIRECTIONAL
                    ) -> LstmHybridData:
    """unidirectional_sequence_lstm.cc / bidirectional_sequence_lstm.cc Prepare for
    ``IsHybridOp`` and EvalHybrid's reads, for the cell whose tensors ``sl`` locates."""
    activation = str(ctx.options.get("fused_activation_function", "NONE"))
    check_activation_float(ctx, activation)
    for i, what in ((sl.output_state, "output state"), (sl.cell_state, "cell state")):
        if ctx.require_input(i).type != T.FLOAT32:
            ctx.fail(f"input {i} ({what}) must be FLOAT32 in a hybrid LSTM, not "
                     f"{ctx.require_input(i).type_name}")
    if ctx.output(0).type != T.FLOAT32:
        ctx.fail(f"the output must be FLOAT32 in a hybrid LSTM, not {ctx.output(0).type_name}")
    asymmetric = bool(ctx.options.get("asymmetric_quantize_inputs", False))
    w_type = ctx.require_input(sl.input_weights("forget")).type

    def gate(name: str, act: str) -> HybridGate | None:
        if shape.use_cifg and name == "input":
            return None
        rec_t = ctx.require_input(sl.recurrent_weights(name))
        rec = diag = None
        if len(ctx.input_shape(sl.recurrent_weights(name))) == 2:
            if rec_t.type != w_type:  # CheckInputTensorDimensions
                ctx.fail(f"recurrent-to-{name} weights are {rec_t.type_name}, the "
                         f"input-to-forget weights {tensor_type_name(w_type)}")
            rec = HybridWeights.of(ctx, sl.recurrent_weights(name),
                                   f"recurrent-to-{name} weights", asymmetric)
        else:
            if sl is not UNIDIRECTIONAL:
                # bidirectional_sequence_lstm.cc passes recurrent_to_*_is_diag = false.
                ctx.unsupported("diagonal recurrent weights in a hybrid "
                                "BIDIRECTIONAL_SEQUENCE_LSTM: LiteRT reads them as matrices")
            if rec_t.type != T.FLOAT32:
                # LstmStepHybrid reads a diagonal with GetTensorData<float>: int8 bytes would be
                # taken four at a time as floats, past the end of the tensor.
                ctx.unsupported(f"diagonal recurrent-to-{name} weights of type "
                                f"{rec_t.type_name}: LiteRT's hybrid LSTM reads them as FLOAT32")
            diag = hybrid_float_tensor(ctx, sl.recurrent_weights(name),
                                       f"recurrent-to-{name} weights")
        cell = None
        if shape.use_peephole and name != "cell":
            i = sl.cell_weights(name)
            if ctx.require_input(i).type != w_type:
                ctx.fail(f"cell-to-{name} weights must have the weights' type "
                         f"{tensor_type_name(w_type)}")
            s_cw, _ = per_tensor_quant(ctx, ctx.input(i), f"cell-to-{name} weights")
            cell = (F32(s_cw) * hybrid_weights(ctx, i, f"cell-to-{name} weights").astype(F32)
                    ).astype(F32)
        ln = (hybrid_float_tensor(ctx, sl.layer_norm_coefficients(name), f"{name} layer norm")
              if shape.use_layer_norm else None)
        bias = hybrid_float_tensor(ctx, sl.bias(name), f"{name} gate bias")
        assert bias is not None  # _cell_shape required it
        aux = None
        if shape.n_aux_input:
            assert sl.aux_weights is not None
            aux = HybridWeights.of(ctx, sl.aux_weights + _GATE_INDEX[name],
                                   f"aux-input-to-{name} weights", asymmetric)
        return HybridGate(
            HybridWeights.of(ctx, sl.input_weights(name), f"input-to-{name} weights",
                             asymmetric), aux, rec, diag, cell, ln, bias, act,
            _scratch_scalar_lanes(shape, name) if act == "SIGMOID" else None)

    proj_w = proj_b = None
    if shape.use_projection:
        proj_w = HybridWeights.of(ctx, sl.projection_weights, "projection weights", asymmetric)
        proj_b = hybrid_float_tensor(ctx, sl.projection_bias, "projection bias")
    forget, cell_g, output = gate("forget", "SIGMOID"), gate("cell", activation), gate(
        "output", "SIGMOID")
    assert forget is not None and cell_g is not None and output is not None
    return LstmHybridData(shape, sl, asymmetric, gate("input", "SIGMOID"), forget, cell_g, output,
                          float(F32(ctx.options.get("cell_clip", 0.0))),
                          float(F32(ctx.options.get("proj_clip", 0.0))), proj_w, proj_b,
                          activation, activation == "NONE")


def _hybrid_input_terms(g: HybridGate | None, qx: QuantizedRows | None,
                        qaux: QuantizedRows | None, rows: int) -> NDArray[np.float32] | None:
    """``gate = bias (0 with layer norm); gate += W·x; gate += W_aux·aux`` for every (step,
    batch) row at once: each row is quantized on its own, so the terms do not depend on the
    step.  (LiteRT skips a product for an all-zero step, which only changes the sign of a
    zero.)"""
    if g is None:
        return None
    acc = np.broadcast_to(np.zeros_like(g.bias) if g.layer_norm is not None else g.bias,
                          (rows, g.bias.size)).copy()
    if qx is not None:
        acc = g.input_weights.accumulate(acc, qx)
    if qaux is not None and g.aux_weights is not None:
        acc = g.aux_weights.accumulate(acc, qaux)
    return np.asarray(acc, dtype=F32)


def _hybrid_gate(g: HybridGate, x_term: NDArray[np.float32], hq: QuantizedRows | None,
                 h: NDArray[np.float32], c: NDArray[np.float32]) -> NDArray[np.float32]:
    """CalculateLstmGateHybrid after its input product: ``+= R·h`` (skipped for an all-zero
    state, ``hq`` None), peephole, layer norm, activation."""
    acc = x_term
    if hq is not None:
        if g.recurrent_weights is None:
            assert g.recurrent_diagonal is not None
            acc = acc + g.recurrent_diagonal * h  # VectorBatchVectorCwiseProductAccumulate
        else:
            acc = g.recurrent_weights.accumulate(acc, hq)
    if g.cell_weights is not None:
        acc = acc + g.cell_weights * c
    if g.layer_norm is not None:  # MeanStddevNormalization, × coefficients, + bias
        acc = (_mean_stddev_normalization(acc) * g.layer_norm + g.bias).astype(F32)
    return apply_activation_eigen(acc, g.activation, g.scalar_lanes)


def _quantize_sequence(xs: NDArray[np.float32] | None, asymmetric: bool
                       ) -> QuantizedRows | None:
    """Every (step, batch) row of a time-major sequence quantized; None when there is nothing to
    multiply (no such input, or all zeros: LiteRT's IsZeroVector skips the product)."""
    if xs is None:
        return None
    rows = xs.reshape(-1, xs.shape[-1])
    return batch_quantize_floats(rows, asymmetric) if rows.any() else None


def _lstm_hybrid_pass(data: LstmHybridData, xs: NDArray[np.float32],
                      aux: NDArray[np.float32] | None, h_state: np.ndarray, c_state: np.ndarray,
                      reverse: bool = False) -> NDArray[np.float32]:
    """lstm_eval.cc EvalHybrid / LstmStepHybrid over time-major ``xs`` (time, batch, input),
    last step first when ``reverse``; the states are updated in place; returns every step's
    output, time-major.  Batch rows are independent (LiteRT runs batch-major input one row at a
    time), so every step runs all rows at once."""
    sh = data.shape
    h = state_view(h_state, (sh.n_batch, sh.n_output))
    c = state_view(c_state, (sh.n_batch, sh.n_cell))
    qx = _quantize_sequence(xs, data.asymmetric)
    qaux = _quantize_sequence(aux, data.asymmetric)
    gates = (data.input_gate, data.forget_gate, data.cell_gate, data.output_gate)
    x_terms = [_hybrid_input_terms(g, qx, qaux, sh.n_time * sh.n_batch) for g in gates]
    out = np.empty((sh.n_time, sh.n_batch, sh.n_output), dtype=F32)
    for t in (range(sh.n_time - 1, -1, -1) if reverse else range(sh.n_time)):
        step = slice(t * sh.n_batch, (t + 1) * sh.n_batch)
        hq = batch_quantize_floats(h, data.asymmetric) if h.any() else None
        forget = _hybrid_gate(data.forget_gate, x_terms[1][step], hq, h, c)  # type: ignore
        if data.input_gate is not None:
            inp = _hybrid_gate(data.input_gate, x_terms[0][step], hq, h, c)  # type: ignore
        cell_in = _hybrid_gate(data.cell_gate, x_terms[2][step], hq, h, c)  # type: ignore
        # UpdateLstmCellFloat: c = f·c; c += z·i (CIFG: i = 1 − f)
        if data.input_gate is None:
            inp = F32(1) - forget
        new_c = forget * c + cell_in * inp
        if data.cell_clip > 0:
            new_c = np.clip(new_c, F32(-data.cell_clip), F32(data.cell_clip))
        c[...] = new_c
        o = _hybrid_gate(data.output_gate, x_terms[3][step], hq, h, c)  # type: ignore
        # CalculateLstmOutputHybrid
        hidden = o * (cell_in if data.hidden_from_cell_gate
                      else apply_activation_eigen(c.copy(), data.activation))
        if data.projection_weights is not None:
            proj = np.zeros((sh.n_batch, sh.n_output), F32)
            if data.projection_bias is not None:
                proj = proj + data.projection_bias  # VectorBatchVectorAssign
            if hidden.any():
                proj = data.projection_weights.accumulate(
                    proj, batch_quantize_floats(hidden, data.asymmetric))
            if data.proj_clip > 0:
                proj = np.clip(proj, F32(-data.proj_clip), F32(data.proj_clip))
            hidden = proj
        h[...] = hidden
        out[t] = hidden
    return out


# =============================================================================================
# BIDIRECTIONAL_SEQUENCE_LSTM (float32, LiteRT only: TFLM has no such op)
# =============================================================================================
FORWARD = LstmSlots(offset=0, output_state=35, cell_state=36, layer_norm=None, aux_weights=40)
BACKWARD = LstmSlots(offset=17, output_state=37, cell_state=38, layer_norm=None, aux_weights=44)
AUX_INPUT = 39


@dataclass(frozen=True, slots=True)
class BidirectionalLstmData:
    forward: LstmFloatData | LstmHybridData
    backward: LstmFloatData | LstmHybridData
    merge_outputs: bool
    # aux input 39 without aux weights feeds the backward cell instead of the input
    # ("non-stacking mode", bidirectional_sequence_lstm.cc Eval).
    backward_reads_aux_input: bool


def prepare_bidirectional_sequence_lstm(ctx: OpContext) -> BidirectionalLstmData:
    """bidirectional_sequence_lstm.cc Prepare: 48 inputs; two LSTM cells without layer norm,
    each with its own states; an optional aux input with per-gate aux weights."""
    merge = bidirectional_arity(ctx, 48)
    x = ctx.require_input(INPUT)
    w_type = ctx.require_input(FORWARD.input_weights("output")).type
    if x.type != T.FLOAT32 or w_type not in (T.FLOAT32, T.INT8, T.UINT8):
        ctx.unsupported(f"{ctx.describe_types()}: implemented are float32 input with float32 or "
                        "int8/uint8 (hybrid) weights")
    n_time, n_batch, n_input, time_major = _sequence_geometry(ctx)
    aux_w = [ctx.input(i) is not None for i in range(41, 48) if i != 44]
    if any(aux_w) and not all(aux_w):
        ctx.fail("aux-input weights (forget, cell, output of both cells) must be all present "
                 "or all absent")
    aux = ctx.input(AUX_INPUT)
    n_aux = 0
    if aux is not None:
        aux_shape = ctx.input_shape(AUX_INPUT)
        if len(aux_shape) != 3 or tuple(aux_shape[:2]) != tuple(ctx.input_shape(INPUT)[:2]):
            ctx.fail(f"aux input {list(aux_shape)} must share the input's first two dimensions")
        if all(aux_w):
            n_aux = aux_shape[2]
        elif aux_shape[2] != n_input:
            ctx.fail(f"aux input {list(aux_shape)} feeds the backward cell: its last dimension "
                     f"must be {n_input}")
    elif any(aux_w):
        ctx.fail("aux-input weights need the aux input (input 39)")
    fw = _cell_shape(ctx, FORWARD, n_time, n_batch, n_input, time_major, n_aux)
    bw = _cell_shape(ctx, BACKWARD, n_time, n_batch, n_input, time_major, n_aux)
    if (fw.n_cell, fw.n_output) != (bw.n_cell, bw.n_output):
        # CheckInputTensorDimensions checks both cells' tensors against each cell's sizes.
        ctx.fail(f"the forward and backward cells must have the same size (LiteRT checks each "
                 f"against the other): n_cell {fw.n_cell} vs {bw.n_cell}, n_output "
                 f"{fw.n_output} vs {bw.n_output}")
    if merge and not time_major and n_batch > 1:
        # lstm_eval.cc EvalFloat (batch-major) offsets each row's output state by the output's
        # row length, which merge_outputs doubles: rows past the first are read from and
        # written to memory beyond the state buffer.
        ctx.unsupported("merge_outputs with batch-major input and more than one batch row: "
                        "LiteRT then reads and writes the forward state past its buffer")
    lead = tuple(ctx.input_shape(INPUT)[:2])
    ctx.set_output_shape(0, (*lead, fw.n_output + (bw.n_output if merge else 0)))
    if not merge:
        ctx.set_output_shape(1, (*lead, bw.n_output))
    if w_type == T.FLOAT32:
        return BidirectionalLstmData(_prepare_float(ctx, fw, FORWARD),
                                     _prepare_float(ctx, bw, BACKWARD), merge,
                                     aux is not None and n_aux == 0)
    # Hybrid: bidirectional_sequence_lstm.cc Eval runs lstm_eval::EvalHybrid per cell.
    for sl in (FORWARD, BACKWARD):
        for i in (sl.input_weights(g) for g in GATES):
            t = ctx.input(i)
            if t is not None and t.type != w_type:
                ctx.fail(f"input {i} is {t.type_name}; the cells' weights must all be "
                         f"{tensor_type_name(w_type)}")
    return BidirectionalLstmData(_prepare_hybrid(ctx, fw, FORWARD),
                                 _prepare_hybrid(ctx, bw, BACKWARD), merge,
                                 aux is not None and n_aux == 0)


@register(Op.BIDIRECTIONAL_SEQUENCE_LSTM, T.FLOAT32, prepare=prepare_bidirectional_sequence_lstm,
          emulations=("tflite",))
def bidirectional_sequence_lstm_float32(data: BidirectionalLstmData, x: NDArray[np.float32],
                                        *inputs: np.ndarray | None
                                        ) -> NDArray[np.float32] | tuple[np.ndarray, np.ndarray]:
    """bidirectional_sequence_lstm.cc Eval (float): the forward cell over the sequence, then the
    backward cell from the last step to the first (``forward_sequence = false``); the four
    state variables (inputs 35-38) are updated in place."""
    fw, bw = data.forward, data.backward
    sh = fw.shape
    xs = np.ascontiguousarray(_to_time_major(sh, x), dtype=F32)
    aux_in = inputs[AUX_INPUT - 1]
    aux = None if aux_in is None else np.ascontiguousarray(_to_time_major(sh, aux_in), dtype=F32)

    def run(cell: LstmFloatData | LstmHybridData, xs: NDArray[np.float32],
            aux: NDArray[np.float32] | None, reverse: bool) -> NDArray[np.float32]:
        h, c = inputs[cell.slots.output_state - 1], inputs[cell.slots.cell_state - 1]
        assert h is not None and c is not None
        if isinstance(cell, LstmHybridData):
            return _lstm_hybrid_pass(cell, xs, aux, h, c, reverse)
        return _float_lstm_pass(cell, xs, aux, h, c, reverse)

    fw_out = run(fw, xs, None if data.backward_reads_aux_input else aux, False)
    bw_xs, bw_aux = (aux, None) if data.backward_reads_aux_input else (xs, aux)
    assert bw_xs is not None
    bw_out = run(bw, bw_xs, bw_aux, True)
    if data.merge_outputs:
        return _from_time_major(sh, np.concatenate([fw_out, bw_out], axis=-1))
    return _from_time_major(sh, fw_out), _from_time_major(sh, bw_out)


# =============================================================================================
# Integer: int8 activations and weights, int16 cell state
# =============================================================================================
@dataclass(frozen=True, slots=True)
class Rescale:
    """``MultiplyByQuantizedMultiplier(x, multiplier, shift)`` with its real value for reading."""

    multiplier: int
    shift: int
    real: float

    @classmethod
    def of(cls, real: float) -> Rescale:
        m, s = quantize_multiplier(real)
        return cls(m, s, real)

    def __call__(self, x: np.ndarray) -> I64:
        return np.asarray(multiply_by_quantized_multiplier(wrap_int32(x), self.multiplier,
                                                           self.shift))


@dataclass(frozen=True, slots=True)
class LayerNormParams:
    """ApplyLayerNorm (LiteRT only): int16 coefficients, int32 bias, output rescale."""

    coefficients: I64
    bias: I64
    rescale: Rescale
    variance_guard: int


@dataclass(frozen=True, slots=True)
class IntegerGate:
    input_weights: NDArray[np.float64]  # (n_input, n_cell): int8 values (+ TFLM weight offset)
    input_offset: I64  # (n_cell,): bias − z_in·Σ_k w (the zero point folded in), int32 math
    input_rescale: Rescale
    recurrent_weights: NDArray[np.float64]  # (n_output, n_cell)
    recurrent_offset: I64  # −z_h·Σ_k w
    recurrent_rescale: Rescale
    cell_weights: I64 | None  # int16 peephole (LiteRT only)
    cell_rescale: Rescale | None
    layer_norm: LayerNormParams | None
    activation: str  # "SIGMOID" or "TANH" (of the Q3.12 pre-activation)


@dataclass(frozen=True, slots=True)
class IntegerLstmArithmetic:
    """Where LiteRT's and TFLM's integer LSTMs differ; one value per emulated runtime.

    * ``gate_sum``: ``"accumulate_saturating"`` -- LiteRT adds each rescaled term to the int16
      gate and saturates after each (``MatrixBatchVectorMultiplyAccumulate``);
      ``"add_saturated_terms"`` -- TFLM saturates the input and recurrent FC results to int16
      separately, then adds them with saturation (``AddElementWise``).
    * ``nonlinearity``: ``"gemmlowp_fixed_point"`` -- LiteRT ``ApplySigmoid`` / ``ApplyTanh`` on
      ``FixedPoint<int16_t, 3>``; ``"int16_table"`` -- TFLM ``reference_integer_ops::Logistic``
      / ``Tanh`` on int16 (``sigmoid_table_uint16`` with linear interpolation).
    * ``cell_products``: ``"rounding_shift"`` -- LiteRT ``CwiseMul(a, b, shift)``:
      ``RoundingDivideByPOT(a·b, shift)``; ``"quantized_multiplier"`` -- TFLM int16 MUL:
      ``MultiplyByQuantizedMultiplier(a·b, m, s)`` (a double rounding).
    """

    gate_sum: str
    nonlinearity: str
    cell_products: str


@dataclass(frozen=True, slots=True)
class LstmIntegerData:
    shape: LstmShape
    arithmetic: IntegerLstmArithmetic
    input_gate: IntegerGate | None  # None: CIFG
    forget_gate: IntegerGate
    cell_gate: IntegerGate
    output_gate: IntegerGate
    cell_scale_log2: int  # the cell state scale is 2^cell_scale_log2
    # cell_products == "rounding_shift": shifts; "quantized_multiplier": rescales
    forget_times_cell_shift: int
    input_times_cell_gate_shift: int
    forget_times_cell: Rescale | None
    input_times_cell_gate: Rescale | None
    cell_clip: int  # quantized; applied when cell_clip_active
    cell_clip_active: bool
    # tanh(cell): gemmlowp integer bits (LiteRT), or the int16 TANH kernel's input scaling (TFLM)
    cell_tanh_integer_bits: int
    cell_tanh_scaling: SigmoidTanhData | None
    hidden: Rescale  # o ⊙ tanh(c) -> int8 hidden
    hidden_zero_point: int
    projection_weights: NDArray[np.float64] | None  # (n_cell, n_output), LiteRT only
    projection_offset: I64 | None
    projection: Rescale | None
    output_state_zero_point: int
    proj_clip: int  # quantized int8, 0 = none


def _f32_product_ratio(a: float, b: float, c: float) -> float:
    """``float a * float b / float c`` evaluated in float32 and widened (LiteRT
    PopulateQuantizedLstmParams8x8_16 keeps its effective scales in ``float`` variables)."""
    return float((F32(a) * F32(b)) / F32(c))


def _tflm_fc_scale(s_in: float, s_w: float, s_out: float) -> float:
    """The multiplier of TFLM's int8→int16 gate FULLY_CONNECTEDs: ``s_in·s_w / s_out`` in double.

    The kernel_util.cc snapshot we read (2026-08-20, ``GetQuantizedConvolutionMultipler``) forms
    the product in float32 and widens it; the TFLM wheel we emulate (tflite_micro
    0.dev20261023) follows the double product on every parameter set where the two differ
    (measured; as it does for SVDF's effective scales, see svdf.py).
    """
    return float(F32(s_in)) * float(F32(s_w)) / float(F32(s_out))


def _checked_log2(x: float) -> tuple[bool, int]:
    """quantization_util.cc ``CheckedLog2``: float32 ``log(x) · (1/log 2)`` rounded half away;
    true when within 1e-3 of an integer."""
    with np.errstate(divide="ignore", invalid="ignore"):
        x_log2 = F32(np.log(F32(x))) * (F32(1.0) / F32(np.log(F32(2.0))))
    if not np.isfinite(x_log2):
        return False, 0
    rounded = F32(round_away(x_log2))
    return bool(abs(x_log2 - rounded) < F32(1e-3)), int(rounded)


def _trunc_clamp(v: float, lo: float, hi: float) -> int:
    """``static_cast<intN_t>(std::min(std::max(v, lo), hi))``: clamp, then truncate."""
    return int(np.trunc(min(max(v, lo), hi)))


def _prepare_integer(ctx: OpContext, shape: LstmShape) -> LstmIntegerData:
    tflite = ctx.emulate == "tflite"
    sl = UNIDIRECTIONAL
    x = ctx.require_input(INPUT)
    out_state, cell_state = ctx.require_input(OUTPUT_STATE), ctx.require_input(CELL_STATE)
    out = ctx.output(0)
    if out.type != T.INT8 or out_state.type != T.INT8 or cell_state.type != T.INT16:
        ctx.unsupported(f"{ctx.describe_types()}: the integer LSTM takes an int8 output and "
                        "output state and an int16 cell state")
    gates = [g for g in GATES if not (shape.use_cifg and g == "input")]
    for g in gates:
        for i, want, what in ((sl.input_weights(g), T.INT8, "weights"),
                              (sl.recurrent_weights(g), T.INT8, "recurrent weights"),
                              (sl.bias(g), T.INT32, "bias")):
            t = ctx.require_input(i)
            if t.type != want:
                ctx.fail(f"input {i} ({g} gate {what}) must be "
                         f"{'INT8' if want == T.INT8 else 'INT32'}, not {t.type_name}")
        if len(ctx.input_shape(sl.recurrent_weights(g))) != 2:
            ctx.unsupported("diagonal recurrent weights exist only in the float LSTM")
    for i in [sl.cell_weights(g) for g in gates if g != "cell" and shape.use_peephole] + (
            [sl.layer_norm_coefficients(g) for g in gates] if shape.use_layer_norm else []):
        if ctx.require_input(i).type != T.INT16:
            ctx.fail(f"input {i} (peephole / layer-norm coefficients) must be INT16")
    if shape.use_projection and ctx.require_input(sl.projection_weights).type != T.INT8:
        ctx.fail("projection weights must be INT8")
    proj_bias_t = ctx.input(sl.projection_bias)
    if proj_bias_t is not None and proj_bias_t.type != T.INT32:
        ctx.fail("projection bias must be INT32")
    if shape.use_peephole and shape.use_projection and shape.n_output != shape.n_cell:
        # LiteRT's peephole call passes n_output as the vector size (lstm_eval.cc
        # CalculateLstmGateInteger8x8_16): it indexes the cell state with the wrong stride.
        ctx.unsupported("integer peephole with a projection to a different size: LiteRT "
                        "indexes the cell state with the output size there")

    s_in, z_in = per_tensor_quant(ctx, x, "input")
    s_h, z_h = per_tensor_quant(ctx, out_state, "output state")
    s_c, _ = per_tensor_quant(ctx, cell_state, "cell state")
    s_out, _ = per_tensor_quant(ctx, out, "output")
    is_pot, cell_scale_log2 = _checked_log2(s_c)
    if tflite and not is_pot:
        ctx.fail(f"the cell state scale {s_c:.9g} must be a power of two")

    # Gate pre-activation scales: 2^-12 (Q3.12), or the intermediates' with layer norm (LiteRT).
    gate_scale = {g: 2.0 ** -12 for g in GATES}
    hidden_scale, hidden_zp = s_h, z_h
    if tflite:
        inter = [ctx.subgraph.tensors[i] if i >= 0 else None for i in ctx.op.intermediates]
        if len(inter) != 5:
            ctx.fail(f"LiteRT's integer LSTM needs 5 intermediate tensors, the operator has "
                     f"{len(inter)}")
        if shape.use_layer_norm:
            for k, g in enumerate(GATES):
                gate_scale[g] = float(F32(per_tensor_quant(ctx, inter[k],
                                                           f"intermediate {k}")[0]))
        hidden_scale, hidden_zp = per_tensor_quant(ctx, inter[4], "intermediate 4 (hidden)")

    def weights_scale(i: int, what: str) -> tuple[np.ndarray, float, int]:
        data = _weights(ctx, i, what)
        s, z = per_tensor_quant(ctx, ctx.input(i), what)
        return data, s, z

    def gate(name: str, activation: str) -> IntegerGate | None:
        if shape.use_cifg and name == "input":
            return None
        w, s_w, z_w = weights_scale(sl.input_weights(name), f"input-to-{name} weights")
        r, s_r, z_r = weights_scale(sl.recurrent_weights(name), f"recurrent-to-{name} weights")
        bias = _weights(ctx, sl.bias(name), f"{name} gate bias").astype(np.int64)
        # LiteRT ignores weight zero points (symmetric by contract); TFLM's FC adds
        # weights_offset = -z_w (and DCHECKs it is 0).
        w64 = w.astype(np.int64) - (0 if tflite else z_w)
        r64 = r.astype(np.int64) - (0 if tflite else z_r)
        if tflite:
            in_scale = _f32_product_ratio(s_w, s_in, gate_scale[name])
            rec_scale = _f32_product_ratio(s_r, s_h, gate_scale[name])
        else:
            in_scale = _tflm_fc_scale(s_in, s_w, gate_scale[name])
            rec_scale = _tflm_fc_scale(s_h, s_r, gate_scale[name])
        # With layer norm the bias is added after normalisation, not to the matmul.
        fold_bias = bias if not shape.use_layer_norm else np.zeros_like(bias)
        cell_w = cell_rs = None
        if shape.use_peephole and name != "cell":
            cw, s_cw, _ = weights_scale(sl.cell_weights(name), f"cell-to-{name} weights")
            cell_w = cw.astype(np.int64)
            # float(std::pow(2, cell_scale) * s_cw / s_gate): double math, stored in a float
            cell_rs = Rescale.of(float(F32(2.0 ** cell_scale_log2 * float(F32(s_cw))
                                           / gate_scale[name])))
        ln = None
        if shape.use_layer_norm:
            coef, s_ln, _ = weights_scale(sl.layer_norm_coefficients(name), f"{name} layer norm")
            ln = LayerNormParams(coef.astype(np.int64), bias, Rescale.of(float(F32(s_ln))),
                                 max(1, int(F32(10000) * F32(s_ln))))
        return IntegerGate(
            w64.T.astype(np.float64), np.asarray(wrap_int32(fold_bias - z_in * w64.sum(axis=1))),
            Rescale.of(in_scale), r64.T.astype(np.float64),
            np.asarray(wrap_int32(-z_h * r64.sum(axis=1))), Rescale.of(rec_scale), cell_w,
            cell_rs, ln, activation)

    if not tflite:
        # TFLM takes the cell gate's nonlinearity from the fused activation (lstm_eval.h);
        # LiteRT's integer path always uses tanh.
        act = str(ctx.options.get("fused_activation_function", "NONE"))
        if act != "TANH":
            ctx.unsupported(f"TFLite Micro's LSTM takes a TANH cell gate, not {act}")
    input_g, forget_g = gate("input", "SIGMOID"), gate("forget", "SIGMOID")
    cell_g, output_g = gate("cell", "TANH"), gate("output", "SIGMOID")
    assert forget_g is not None and cell_g is not None and output_g is not None

    cell_clip = float(ctx.options.get("cell_clip", 0.0))
    if tflite:
        arithmetic = IntegerLstmArithmetic("accumulate_saturating", "gemmlowp_fixed_point",
                                           "rounding_shift")
        q_cell_clip = _trunc_clamp(float(F32(cell_clip) / F32(s_c)), -32768.0, 32767.0) \
            if cell_clip > 0 else 0
        clip_active = q_cell_clip > 0
        tanh_bits = 15 + cell_scale_log2
        if not 0 <= tanh_bits <= 6:
            # ApplyTanh dispatches integer bits 0..6 only and otherwise leaves its output
            # buffer unwritten (portable_tensor_utils.cc): the result would be undefined.
            ctx.unsupported(f"cell state scale 2^{cell_scale_log2}: LiteRT's integer tanh takes "
                            "cell scales 2^-15 .. 2^-9 only")
        # float effective_hidden_scale = std::pow(2, -15) / s_hidden * std::pow(2, -15)
        hidden = Rescale.of(float(F32(2.0 ** -15 / float(F32(hidden_scale)) * 2.0 ** -15)))
        fxc_shift, ixg_shift, fxc, ixg, tanh_scaling = 15, 30 + cell_scale_log2, None, None, None
    else:
        arithmetic = IntegerLstmArithmetic("add_saturated_terms", "int16_table",
                                           "quantized_multiplier")
        q_cell_clip = _trunc_clamp(cell_clip / float(F32(s_c)), -32768.0, 32767.0)
        clip_active = cell_clip > 0
        tanh_bits = 0
        # lstm_eval.cc Tanh(cell_state_scale_power): input left shift (15 + p) − 3, or a ×3
        # multiplier with a right shift when that is negative.
        left = 15 + cell_scale_log2 - 3
        tanh_scaling = SigmoidTanhData(None, 3 if left < 0 else 0, abs(left))
        # CreateInterGateMulParams: double(s1)·double(s2)/double(s_out) (lstm_eval_common.cc)
        fxc = Rescale.of(2.0 ** -15 * float(F32(s_c)) / float(F32(s_c)))
        ixg = Rescale.of(2.0 ** -15 * 2.0 ** -15 / float(F32(s_c)))
        hidden = Rescale.of(2.0 ** -15 * 2.0 ** -15 / float(F32(s_h)))
        fxc_shift = ixg_shift = 0

    proj_w = proj_off = proj_rs = None
    proj_clip = 0
    if shape.use_projection:
        pw, s_pw, _ = weights_scale(sl.projection_weights, "projection weights")
        pb = (_weights(ctx, sl.projection_bias, "projection bias").astype(np.int64)
              if ctx.input(sl.projection_bias) is not None else np.zeros(shape.n_output, np.int64))
        pw64 = pw.astype(np.int64)
        proj_w = pw64.T.astype(np.float64)
        # PrecomputeZeroPointTimesWeightWithBias(hidden_zp, ...): the hidden values are stored
        # with zero point −hidden_zp before the projection (b/246629213).
        proj_off = np.asarray(wrap_int32(pb + hidden_zp * pw64.sum(axis=1)))
        proj_rs = Rescale.of(_f32_product_ratio(s_pw, hidden_scale, s_h))
        pc = float(ctx.options.get("proj_clip", 0.0))
        proj_clip = _trunc_clamp(float(F32(pc) / F32(s_out)), -128.0, 127.0) if pc > 0 else 0
    return LstmIntegerData(
        shape, arithmetic, input_g, forget_g, cell_g, output_g, cell_scale_log2, fxc_shift,
        ixg_shift, fxc, ixg, q_cell_clip, clip_active, tanh_bits, tanh_scaling, hidden,
        hidden_zp, proj_w, proj_off, proj_rs, z_h, proj_clip)


def _sat16(v: np.ndarray) -> I64:
    out: I64 = np.clip(v, INT16_MIN, INT16_MAX)
    return out


def _layer_norm(p: LayerNormParams, gate: I64) -> I64:
    """portable_tensor_utils.cc PortableApplyLayerNorm, per batch row (LiteRT only)."""
    n = gate.shape[-1]
    out = np.empty_like(gate)
    for b in range(gate.shape[0]):  # a few rows; the inverse sqrt is a scalar routine
        val = gate[b]
        total, total_sq = int(val.sum()), int((val * val).sum())
        mean = int(wrap_int32(_c_div(total * 1024, n)))  # int64 math, cast to int32
        temp = _c_div(1 << 20, n)  # exact only for power-of-two n (a TODO upstream)
        variance = total_sq * temp - mean * mean
        variance2 = int(wrap_int32(_c_div(variance, 1 << 20)))
        if variance2 < 1:
            variance2 = p.variance_guard
        inv_a, inv_b = get_inv_sqrt_quantized_multiplier_exp(variance2, -1)
        shifted = np.asarray(wrap_int32(1024 * val - mean))
        rescaled = np.asarray(multiply_by_quantized_multiplier(shifted, inv_a, inv_b))
        val3 = np.asarray(wrap_int32(rescaled * p.coefficients)) + p.bias
        val4 = np.asarray(wrap_int32(_c_div_arr(np.where(val3 > 0, val3 + 512, val3 - 512),
                                                1024)))
        val5 = multiply_by_quantized_multiplier(val4, p.rescale.multiplier, p.rescale.shift + 12)
        out[b] = _sat16(np.asarray(val5))
    return out


def _c_div(a: int, b: int) -> int:
    """C++ integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _c_div_arr(a: I64, b: int) -> I64:
    return np.where(a >= 0, a // b, -((-a) // b))


def _nonlinearity(arith: IntegerLstmArithmetic, activation: str, v: I64) -> I64:
    """Sigmoid / tanh of a Q3.12 int16 pre-activation, to Q0.15."""
    if arith.nonlinearity == "gemmlowp_fixed_point":
        fn = logistic if activation == "SIGMOID" else tanh
        return np.asarray(fn(v, 3, bits=16))
    # TFLM Sigmoid(): Logistic(input_multiplier = 0, left_shift = 0); Tanh(-12): the same ×3.
    kernel = logistic_int16 if activation == "SIGMOID" else tanh_int16
    out: I64 = kernel(SigmoidTanhData(None, 0, 0), v.astype(np.int16)).astype(np.int64)
    return out


def _integer_gate(data: LstmIntegerData, g: IntegerGate, x_term: I64, h: I64, c: I64) -> I64:
    """One gate: LiteRT CalculateLstmGateInteger8x8_16 or TFLM CalculateLstmGate (int8)."""
    rec = g.recurrent_rescale(exact_int_matmul(h, g.recurrent_weights) + g.recurrent_offset)
    if data.arithmetic.gate_sum == "accumulate_saturating":
        acc = _sat16(rec + x_term)
    else:
        acc = _sat16(x_term + _sat16(rec))
    if g.cell_weights is not None:  # VectorBatchVectorCwiseProductAccumulate
        assert g.cell_rescale is not None
        acc = _sat16(g.cell_rescale(g.cell_weights * c) + acc)
    if g.layer_norm is not None:
        acc = _layer_norm(g.layer_norm, acc)
    return _nonlinearity(data.arithmetic, g.activation, acc)


def _integer_input_terms(g: IntegerGate | None, xs: I64) -> I64 | None:
    """``clamp16(MBQM(W·x + offset))`` for every step at once: the first gate term does not
    depend on the state (both runtimes saturate it to int16 before adding the next term)."""
    if g is None:
        return None
    return _sat16(g.input_rescale(exact_int_matmul(xs, g.input_weights) + g.input_offset))


def _cell_product(data: LstmIntegerData, a: I64, b: I64, shift: int, rescale: Rescale | None
                  ) -> I64:
    if data.arithmetic.cell_products == "rounding_shift":
        return np.asarray(rounding_divide_by_pot(a * b, shift))  # stored as int16: in range
    assert rescale is not None
    return _sat16(rescale(a * b))


@register(Op.UNIDIRECTIONAL_SEQUENCE_LSTM, T.INT8, prepare=prepare_unidirectional_sequence_lstm)
def unidirectional_sequence_lstm_int8(data: LstmIntegerData, x: NDArray[np.int8],
                                      *inputs: np.ndarray | None) -> NDArray[np.int8]:
    """LiteRT lstm_eval.cc EvalInteger8x8_16 / TFLM EvalLstm<int8_t, int8_t, int16_t, int32_t>.
    Inputs 18 (int8 output state) and 19 (int16 cell state) are updated in place."""
    sh, arith = data.shape, data.arithmetic
    h_state = state_view(inputs[OUTPUT_STATE - 1], (sh.n_batch, sh.n_output))  # type: ignore
    c_state = state_view(inputs[CELL_STATE - 1], (sh.n_batch, sh.n_cell))  # type: ignore
    xs = _to_time_major(sh, x).astype(np.int64)
    gates = (data.input_gate, data.forget_gate, data.cell_gate, data.output_gate)
    x_terms = [_integer_input_terms(g, xs) for g in gates]
    h = h_state.astype(np.int64)
    c = c_state.astype(np.int64)
    out = np.empty((sh.n_time, sh.n_batch, sh.n_output), dtype=np.int8)
    for t in range(sh.n_time):  # the recurrence is sequential in time
        forget = _integer_gate(data, data.forget_gate, x_terms[1][t], h, c)  # type: ignore
        if data.input_gate is None:
            inp = INT16_MAX - forget  # CIFG: Sub1Vector(int16) with "one" = 32767
        else:
            inp = _integer_gate(data, data.input_gate, x_terms[0][t], h, c)  # type: ignore
        cell_in = _integer_gate(data, data.cell_gate, x_terms[2][t], h, c)  # type: ignore
        c = _sat16(_cell_product(data, forget, c, data.forget_times_cell_shift,
                                 data.forget_times_cell)
                   + _cell_product(data, inp, cell_in, data.input_times_cell_gate_shift,
                                   data.input_times_cell_gate))
        if data.cell_clip_active:
            c = np.clip(c, -data.cell_clip, data.cell_clip)
        o = _integer_gate(data, data.output_gate, x_terms[3][t], h, c)  # type: ignore
        if arith.nonlinearity == "gemmlowp_fixed_point":
            tanh_c = np.asarray(tanh(c, data.cell_tanh_integer_bits, bits=16))
        else:
            assert data.cell_tanh_scaling is not None
            tanh_c = tanh_int16(data.cell_tanh_scaling, c.astype(np.int16)).astype(np.int64)
        if data.projection_weights is None:
            h = np.clip(data.hidden(o * tanh_c) + data.hidden_zero_point, -128, 127)
        else:
            assert data.projection is not None and data.projection_offset is not None
            hidden = np.clip(data.hidden(o * tanh_c) - data.hidden_zero_point, -128, 127)
            acc = exact_int_matmul(hidden, data.projection_weights) + data.projection_offset
            h = np.clip(data.projection(acc) + data.output_state_zero_point, -128, 127)
            if data.proj_clip > 0:
                h = np.clip(h, -data.proj_clip, data.proj_clip)
        out[t] = h
    h_state[...] = h
    c_state[...] = c
    return _from_time_major(sh, out)


# =============================================================================================
# LSTM: the non-sequence builtin (LiteRT tflite/kernels/lstm.cc, the "full" kernel)
# =============================================================================================
# lstm.cc full::Eval calls the sequence kernels' lstm_eval.cc functions (EvalFloat, EvalHybrid,
# EvalInteger8x8_16) with a 2-D input [n_batch, n_input], time_major = true and max_time = 1,
# never diagonal recurrent weights: one time-major step of the UNIDIRECTIONAL_SEQUENCE_LSTM
# cell above, whose prepared data and passes it reuses as they are.


def _lstm_op_shape(ctx: OpContext) -> LstmShape:
    """lstm.cc full::Prepare and CheckInputTensorDimensions; sets the output shape
    [n_batch, n_output]."""
    if ctx.num_outputs != 1:
        ctx.fail(f"the full LSTM kernel takes 1 output, got {ctx.num_outputs}")
    if ctx.num_inputs not in (20, 24):
        ctx.fail(f"the full LSTM kernel takes 20 or 24 inputs, got {ctx.num_inputs}")
    in_shape = tuple(ctx.input_shape(INPUT))
    if len(in_shape) < 2:
        ctx.fail(f"input must be [batch, input], got {list(in_shape)}")
    if len(in_shape) != 2:
        # Prepare reads dims 0 and 1 as batch and input size whatever the rank; EvalFloat then
        # reads a 3-D input as [time, batch, input], inconsistently with those checks.
        ctx.unsupported(f"input of rank {len(in_shape)} ({list(in_shape)}): LiteRT's LSTM takes "
                        "[batch, input] (a sequence is UNIDIRECTIONAL_SEQUENCE_LSTM)")
    sl = UNIDIRECTIONAL
    for g in GATES:
        r = ctx.input(sl.recurrent_weights(g))
        if r is not None and len(ctx.input_shape(sl.recurrent_weights(g))) != 2:
            ctx.fail(f"recurrent-to-{g} weights {list(ctx.input_shape(sl.recurrent_weights(g)))}"
                     " must be 2-D: the LSTM operator has no diagonal recurrent weights")
    shape = _cell_shape(ctx, sl, 1, in_shape[0], in_shape[1], time_major=True)
    ctx.set_output_shape(0, (shape.n_batch, shape.n_output))
    return shape


def prepare_lstm(ctx: OpContext) -> LstmFloatData | LstmIntegerData | LstmHybridData:
    """lstm.cc Prepare: the full kernel (``kernel_type`` FULL) by the input and weight types --
    float32 (EvalFloat), float input with int8/uint8 weights (EvalHybrid), int8 with 5
    intermediates (EvalInteger8x8_16)."""
    if ctx.emulate == "tflm":
        # TFLM's op resolver has no AddLstm (micro_mutable_op_resolver.h: the LSTM kernel there
        # is UNIDIRECTIONAL_SEQUENCE_LSTM); the tflite-micro wheel fails to resolve the op.
        ctx.unsupported("TFLite Micro has no LSTM kernel (its op resolver has "
                        "UNIDIRECTIONAL_SEQUENCE_LSTM only; the interpreter fails to resolve "
                        "LSTM): convert the model with the sequence op")
    kernel_type = str(ctx.options.get("kernel_type", "FULL"))
    if kernel_type == "BASIC":
        ctx.unsupported("kernel_type BASIC (lstm.cc basic kernel: 5 inputs, 4 outputs, the "
                        "concatenated-weights LstmCell of float32 or uint8 with an int16 state) "
                        "is not implemented; the FULL kernel is")
    if kernel_type != "FULL":
        ctx.fail(f"unknown LSTM kernel_type {kernel_type}")
    x = ctx.require_input(INPUT)
    w_type = ctx.require_input(UNIDIRECTIONAL.input_weights("output")).type
    shape = _lstm_op_shape(ctx)
    if x.type == T.FLOAT32 and w_type == T.FLOAT32:
        if shape.use_projection and shape.n_output > shape.n_cell:
            # EvalFloat's projection bias goes to the accumulation scratch, the last n_batch·n_cell
            # floats of a scratch buffer that lstm.cc sizes n_batch × 4 or 5·n_cell -- without
            # the 16 floats per row of slack unidirectional_sequence_lstm.cc adds -- and
            # CalculateLstmOutputFloat writes n_batch·n_output floats there (measured: heap
            # corruption, aborts).
            ctx.unsupported(f"float projection to a larger output (n_output {shape.n_output} > "
                            f"n_cell {shape.n_cell}): LiteRT's LSTM then writes the projection "
                            "bias past the end of its scratch buffer")
        return _prepare_float(ctx, shape, UNIDIRECTIONAL)
    if x.type == T.FLOAT32 and w_type in (T.INT8, T.UINT8):
        return _prepare_hybrid(ctx, shape)
    if x.type == T.INT8 and w_type == T.INT8:
        n_inter = len(ctx.op.intermediates)
        if n_inter == 12:
            ctx.unsupported("the integer 8x8->8 LSTM (12 intermediate tensors, lstm_eval.cc "
                            "EvalInteger8x8_8) is not implemented; the 8x8->16 one (5 "
                            "intermediates) is")
        if n_inter != 5:
            ctx.fail(f"LiteRT's integer LSTM needs 5 (or 12) intermediate tensors, the operator "
                     f"has {n_inter}")
        return _prepare_integer(ctx, shape)
    ctx.unsupported(f"{ctx.describe_types()}: implemented are float32 activations with float32 "
                    "or int8/uint8 (hybrid) weights, and int8 activations with int8 weights")


@register(Op.LSTM, T.FLOAT32, prepare=prepare_lstm)
def lstm_float32(data: LstmFloatData | LstmHybridData, x: NDArray[np.float32],
                 *inputs: np.ndarray | None) -> NDArray[np.float32]:
    """lstm.cc full::Eval, float and hybrid: one time-major step of
    :func:`unidirectional_sequence_lstm_float32`.  Inputs 18 and 19 (output and cell state) are
    updated in place."""
    out: NDArray[np.float32] = unidirectional_sequence_lstm_float32(data, x[np.newaxis],
                                                                    *inputs)[0]
    return out


@register(Op.LSTM, T.INT8, prepare=prepare_lstm)
def lstm_int8(data: LstmIntegerData, x: NDArray[np.int8], *inputs: np.ndarray | None
              ) -> NDArray[np.int8]:
    """lstm.cc full::Eval, EvalInteger8x8_16: one step of
    :func:`unidirectional_sequence_lstm_int8`."""
    out: NDArray[np.int8] = unidirectional_sequence_lstm_int8(data, x[np.newaxis], *inputs)[0]
    return out
