"""Kernel: SVDF (singular value decomposition filter, a low-rank "memory" layer).

Inputs: 0 input ``[batch, input_size]``, 1 weights_feature ``[num_filters, input_size]``,
2 weights_time ``[num_filters, memory_size]``, 3 bias ``[num_units]`` (optional),
4 state ``[batch, memory_size · num_filters]`` (a variable tensor); ``num_units = num_filters /
rank``.  Output ``[batch, num_units]``.

Per invoke, for every batch row and filter ``f`` (the state holds ``memory_size`` activations
per filter, oldest first):

1. shift the state one step left (the whole buffer moves by one element; each filter's newest
   slot is then overwritten, so filters never mix);
2. newest slot ``state[f, -1] = weights_feature[f] · x``;
3. ``scratch[f] = weights_time[f] · state[f]``;
4. ``out[u] = bias[u] + Σ_{r < rank} scratch[u·rank + r]``, then the fused activation.

The state array is **updated in place** (the interpreter keeps it between invokes;
``Interpreter.reset_all_variables()`` restores its initial value).

Float path, bit for bit with both runtimes (the emulation difference is
:attr:`SvdfData.runtime`; recurrent_float.py has the sums):

* LiteRT (``reference/svdf.h`` ``EvalFloatSVDF``): step 2 adds
  ``tensor_utils::MatrixBatchVectorMultiplyAccumulate`` into a cleared row -- on the x86 build
  NEON_2_SSE's four lanes, summed left to right, then the tail; steps 3-4 are
  ``ApplyTimeWeightsBiasAndActivation``: the NEON dot product per filter, the NEON reduction
  over the rank, ``+ bias``, Eigen's activation (its own tanh).
* TFLM (``svdf_common.cc`` ``EvalFloatSvdfReference``): every sum is a plain loop in index
  order; the output starts from the bias and adds the rank's terms; ``ActivationValFloat``
  takes TANH from the C library's ``tanhf``.

Integer path (int8 input, int16 -- or in TFLM int8 -- state; doc §2.20): step 2 is
``clamp_T(MBQM(Σ wf·(x − z_in), eff1))`` with ``eff1 = s_in·s_wf / s_state``;
step 4 is ``clamp8(MBQM(bias + Σ scratch, eff2) + z_out)`` with ``eff2 = s_state·s_wt / s_out``
(formed in float32 by LiteRT, in double by the TFLM wheel: :func:`_effective_scale`).  The
fused activation is **not** applied (LiteRT insists on RELU being declared and then ignores it;
TFLM ignores it).  Emulation differences,
kept in :attr:`SvdfData.state_zero_point`, :attr:`SvdfData.state_dtype` and the arithmetic of
the effective scales:

* LiteRT (``tflite/kernels/svdf.cc``, ``internal/reference/svdf.h`` ``EvalIntegerSVDF``) assumes
  the state's zero point is 0 and only knows int16 state and weights_time.  A model whose state
  is int8 (TFLM's ``keyword_scrambled_8bit.tflite``) makes LiteRT read int16 values out of an int8
  buffer -- past its end (heap corruption); there is no defined result to reproduce, so
  ``emulate="tflite"`` refuses such a model.
* TFLM (``micro/kernels/svdf_common.cc`` ``EvalIntegerSvdfReference<T>``) also takes int8 state
  and weights_time, subtracts the state zero point in step 3 and adds it in step 2 -- after the
  clamp, with the int8/int16 store wrapping, which is reproduced.

**Hybrid** (float input, state and output; int8 or uint8 weights; LiteRT only -- TFLM refuses
it): ``reference_ops::EvalHybridSVDF`` (``internal/reference/svdf.h``).  Step 2 quantizes each
input row on the fly (``asymmetric_quantize_inputs`` picks the quantizer) and stores
``fl(Σ q·wf) · fl(s_row · s_wf)`` as a float; steps 3-4 run in float32 against
``weights_time`` dequantized once (``fl(wt · s_wt)``), with the x86 build's NEON_2_SSE dot
product and reduction (four float32 lanes summed left to right, then the tail in order:
``NeonVectorVectorDotProduct``, ``NeonReductionSumVector``) and Eigen's tanh -- bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tflite_ref.kernels.conv import hybrid_refused_by_tflm, hybrid_weights
from tflite_ref.kernels.recurrent_float import (
    activation_val_float,
    neon_matrix_batch_vector_multiply_accumulate,
    neon_reduction_sum,
    neon_vector_vector_dot,
    sequential_matmul,
)
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.kernels.rnn import (
    HybridWeights,
    apply_activation_eigen,
    batch_quantize_floats,
    check_activation_float,
    exact_int_matmul,
    hybrid_float_tensor,
    per_tensor_quant,
    require_state,
    state_view,
)
from tflite_ref.quant.fixedpoint import multiply_by_quantized_multiplier, wrap_int32
from tflite_ref.quant.multipliers import quantize_multiplier

__all__ = ["SvdfData", "SvdfHybridData", "prepare_svdf"]

F32 = np.float32


@dataclass(frozen=True, slots=True)
class SvdfData:
    batch: int
    num_filters: int
    num_units: int
    rank: int
    memory: int
    # float: (num_filters, input_size) float32, row-major as the kernels read it; integer:
    # (input_size, num_filters), int8 values as float64 for an exact BLAS product
    weights_feature: np.ndarray
    weights_time: np.ndarray  # (num_filters, memory): float32 or int64
    bias: np.ndarray | None  # (num_units,) float32 or int64
    activation: str  # float path only
    # integer path
    state_dtype: type[np.integer] | None = None  # int16, or int8 (TFLM only)
    input_zero_point: int = 0
    output_zero_point: int = 0
    # The emulation difference: TFLM subtracts / adds the state zero point, LiteRT assumes 0.
    state_zero_point: int = 0
    multiplier_1: int = 0  # x · wf -> state
    shift_1: int = 0
    multiplier_2: int = 0  # state · wt -> output
    shift_2: int = 0
    # Whose float arithmetic (float path): "tflite" (LiteRT: NEON_2_SSE lanes, Eigen's
    # activations) or "tflm" (reference loops, the C library's tanhf).
    runtime: str = "tflite"


def _effective_scale(a: float, b: float, c: float, arithmetic: str) -> float:
    """``a · b / c`` of three float32 scales, the way the emulated runtime forms it.

    ``"float32"``: LiteRT svdf.cc ``const double s = p1->scale * p2->scale / p3->scale``
    multiplies and divides floats, then widens.  ``"double"``: the TFLM wheel we emulate
    (tflite_micro 0.dev20261023) -- measured: on parameter sets where the two differ, its state
    and output follow the double quotient, although the svdf_common.cc snapshot we read
    (2026-08-20) shows the float32 expression.
    """
    if arithmetic == "float32":
        return float((F32(a) * F32(b)) / F32(c))
    return float(F32(a)) * float(F32(b)) / float(F32(c))


def prepare_svdf(ctx: OpContext) -> SvdfData | SvdfHybridData:
    """svdf.cc Prepare (LiteRT) / svdf_common.cc PrepareSvdf (TFLM)."""
    if ctx.num_inputs != 5 or ctx.num_outputs != 1:
        ctx.fail(f"SVDF takes 5 inputs and 1 output, got {ctx.num_inputs} and {ctx.num_outputs}")
    x, wf, wt = ctx.require_input(0), ctx.require_input(1), ctx.require_input(2)
    bias, state = ctx.input(3), require_state(ctx, 4, "state")
    out = ctx.output(0)
    rank = int(ctx.options.get("rank", 0))
    activation = str(ctx.options.get("fused_activation_function", "NONE"))
    in_shape = ctx.input_shape(0)
    if len(in_shape) != 2:
        ctx.fail(f"input must be 2-D [batch, input_size], got {list(in_shape)}")
    wf_data, wt_data = ctx.const(1), ctx.const(2)
    bias_data = ctx.const(3) if bias is not None else None
    if wf_data is None or wt_data is None or (bias is not None and bias_data is None):
        ctx.unsupported("weights and bias computed at run time are not supported")
    if wf_data.ndim != 2 or wt_data.ndim != 2:
        ctx.fail(f"weights_feature {wf_data.shape} and weights_time {wt_data.shape} must be 2-D")
    batch, input_size = in_shape
    num_filters, memory = int(wf_data.shape[0]), int(wt_data.shape[1])
    if rank <= 0 or num_filters % rank:
        ctx.fail(f"rank {rank} must be positive and divide num_filters {num_filters}")
    num_units = num_filters // rank
    if wf_data.shape[1] != input_size or wt_data.shape[0] != num_filters:
        ctx.fail(f"weights_feature {wf_data.shape} must be [num_filters, {input_size}] and "
                 f"weights_time {wt_data.shape} [{num_filters}, memory_size]")
    if bias_data is not None and bias_data.shape[:1] != (num_units,):
        ctx.fail(f"bias {bias_data.shape} must be [{num_units}] (num_filters / rank)")
    state_shape = ctx.input_shape(4)
    if tuple(state_shape) != (batch, memory * num_filters):
        ctx.fail(f"state must be [{batch}, {memory * num_filters}] (batch, memory_size · "
                 f"num_filters), got {list(state_shape)}")
    ctx.set_output_shape(0, (batch, num_units))
    if ctx.emulate == "tflm" and bias is None:
        # svdf_common.cc reads the bias's scale in Prepare (int8) and its data pointer in Eval
        # (float) without a null check (TODO(#1751) upstream): TFLM crashes on such a model.
        ctx.unsupported("an SVDF without bias: TFLite Micro dereferences the absent bias "
                        "(it crashes on this model)")

    if x.type == T.FLOAT32:
        if wf.type in (T.INT8, T.UINT8):
            return _prepare_svdf_hybrid(ctx, rank, activation, batch, num_filters, num_units,
                                        memory)
        if wf.type != T.FLOAT32:
            ctx.unsupported(f"{ctx.describe_types()}: float input takes FLOAT32 weights, or "
                            "INT8/UINT8 ones (hybrid)")
        for t, what in ((wt, "weights_time"), (bias, "bias"), (state, "state"), (out, "output")):
            if t is not None and t.type != T.FLOAT32:
                ctx.fail(f"{what} must be FLOAT32 in a float SVDF, not {t.type_name}")
        check_activation_float(ctx, activation)
        return SvdfData(batch, num_filters, num_units, rank, memory,
                        np.ascontiguousarray(wf_data, dtype=F32), wt_data.astype(F32),
                        None if bias_data is None else bias_data.astype(F32), activation,
                        runtime=ctx.emulate)
    return _prepare_svdf_integer(ctx, rank, activation, batch, num_filters, num_units, memory,
                                 wf_data, wt_data, bias_data)


def _prepare_svdf_integer(ctx: OpContext, rank: int, activation: str, batch: int,
                          num_filters: int, num_units: int, memory: int, wf_data: np.ndarray,
                          wt_data: np.ndarray, bias_data: np.ndarray | None) -> SvdfData:
    x, wf, wt, bias = ctx.input(0), ctx.input(1), ctx.input(2), ctx.input(3)
    state, out = ctx.input(4), ctx.output(0)
    assert x is not None and wf is not None and wt is not None and state is not None
    if x.type != T.INT8 or wf.type != T.INT8 or out.type != T.INT8:
        ctx.unsupported(f"{ctx.describe_types()}: integer SVDF takes int8 input, "
                        "weights_feature and output")
    if bias is not None and bias.type != T.INT32:
        ctx.fail(f"bias must be INT32 in an integer SVDF, not {bias.type_name}")
    if ctx.emulate == "tflite":
        if state.type != T.INT16 or wt.type != T.INT16:
            # EvalIntegerSVDF reads weights_time and state as int16_t unconditionally.
            ctx.unsupported(
                f"state is {state.type_name} and weights_time {wt.type_name}: LiteRT's integer "
                "SVDF reads both as INT16, so on an 8-bit state it reads past the end of the "
                "buffer and its result is undefined (TFLite Micro runs such models: use "
                "emulate='tflm')")
        if activation != "RELU":  # svdf.cc Eval: TF_LITE_ENSURE_EQ(activation, kTfLiteActRelu)
            ctx.fail(f"LiteRT's integer SVDF requires fused activation RELU, got {activation} "
                     "(it then does not apply it)")
    else:
        if state.type not in (T.INT16, T.INT8) or wt.type != state.type:
            ctx.unsupported(f"state {state.type_name} and weights_time {wt.type_name}: TFLite "
                            "Micro's integer SVDF takes both INT16 or both INT8")
        if not state.is_variable:  # svdf_common.cc: TF_LITE_ENSURE_EQ(is_variable, true)
            ctx.fail("the state input must be a variable tensor (TFLite Micro checks it)")
    s_in, z_in = per_tensor_quant(ctx, x, "input")
    s_wf, _ = per_tensor_quant(ctx, wf, "weights_feature")
    s_wt, _ = per_tensor_quant(ctx, wt, "weights_time")
    s_state, z_state = per_tensor_quant(ctx, state, "state")
    s_out, z_out = per_tensor_quant(ctx, out, "output")
    if ctx.emulate == "tflm":
        assert bias is not None  # checked in prepare_svdf
        s_bias, _ = per_tensor_quant(ctx, bias, "bias")
        if not abs(s_bias - float(F32(s_state) * F32(s_wt))) < 1e-5:
            ctx.fail(f"bias scale {s_bias:.6g} must equal state scale x weights_time scale "
                     f"{float(F32(s_state) * F32(s_wt)):.6g} within 1e-5")
    scale_arithmetic = "float32" if ctx.emulate == "tflite" else "double"
    m1, sh1 = quantize_multiplier(_effective_scale(s_in, s_wf, s_state, scale_arithmetic))
    m2, sh2 = quantize_multiplier(_effective_scale(s_state, s_wt, s_out, scale_arithmetic))
    state_dtype = np.int16 if state.type == T.INT16 else np.int8
    return SvdfData(
        batch, num_filters, num_units, rank, memory,
        np.ascontiguousarray(wf_data.T, dtype=np.float64), wt_data.astype(np.int64),
        None if bias_data is None else bias_data.astype(np.int64), activation,
        state_dtype=state_dtype, input_zero_point=z_in, output_zero_point=z_out,
        state_zero_point=z_state if ctx.emulate == "tflm" else 0,
        multiplier_1=m1, shift_1=sh1, multiplier_2=m2, shift_2=sh2)


@dataclass(frozen=True, slots=True)
class SvdfHybridData:
    """svdf.cc EvalHybrid -> ``reference_ops::EvalHybridSVDF``: float state, int8 weights."""

    batch: int
    num_filters: int
    num_units: int
    rank: int
    memory: int
    weights_feature: HybridWeights
    weights_time: NDArray[np.float32]  # (num_filters, memory): fl(wt · s_wt), dequantized once
    bias: NDArray[np.float32] | None
    activation: str
    asymmetric: bool  # asymmetric_quantize_inputs


def _prepare_svdf_hybrid(ctx: OpContext, rank: int, activation: str, batch: int,
                         num_filters: int, num_units: int, memory: int) -> SvdfHybridData:
    """svdf.cc Prepare/Eval for float input with int8 weights_feature (``IsHybridOp``)."""
    hybrid_refused_by_tflm(ctx)
    wt, state, out = ctx.input(2), ctx.input(4), ctx.output(0)
    assert wt is not None and state is not None
    if wt.type not in (T.INT8, T.UINT8):
        # Eval dequantizes weights_time through GetTensorData<int8_t> whatever its type.
        ctx.fail(f"weights_time must be INT8 or UINT8 in a hybrid SVDF, not {wt.type_name}")
    for t, what in ((state, "state"), (out, "output")):
        if t.type != T.FLOAT32:
            ctx.fail(f"{what} must be FLOAT32 in a hybrid SVDF, not {t.type_name}")
    check_activation_float(ctx, activation)
    asymmetric = bool(ctx.options.get("asymmetric_quantize_inputs", False))
    s_wt, _ = per_tensor_quant(ctx, wt, "weights_time")
    # float_weights_time[i] = weights_time[i] * dequantization_scale (int8 -> float, times float)
    wt_float = (hybrid_weights(ctx, 2, "weights_time").astype(F32) * F32(s_wt)).astype(F32)
    return SvdfHybridData(batch, num_filters, num_units, rank, memory,
                          HybridWeights.of(ctx, 1, "weights_feature", asymmetric), wt_float,
                          hybrid_float_tensor(ctx, 3, "bias"), activation, asymmetric)


def _shift_state(data: SvdfData | SvdfHybridData, state: np.ndarray) -> np.ndarray:
    """View the state as (batch, filters, memory) and drop each filter's oldest activation."""
    s = state_view(state, (data.batch, data.num_filters, data.memory))
    s[:, :, :-1] = s[:, :, 1:].copy()
    return s


def _svdf_hybrid(data: SvdfHybridData, x: NDArray[np.float32], state: NDArray[np.float32]
                 ) -> NDArray[np.float32]:
    """reference_ops::EvalHybridSVDF: shift, quantized feature product into the newest column
    (skipped, leaving 0, when the whole input is zero), then ApplyTimeWeightsBiasAndActivation
    in float32."""
    s = _shift_state(data, state)
    newest = np.zeros((data.batch, data.num_filters), F32)
    rows = np.ascontiguousarray(x, dtype=F32)
    if rows.any():
        newest = data.weights_feature.accumulate(newest, batch_quantize_floats(rows,
                                                                               data.asymmetric))
    s[:, :, -1] = newest
    return _litert_time_weights_bias_activation(data, s)


def _litert_time_weights_bias_activation(data: SvdfData | SvdfHybridData, s: NDArray[np.float32]
                                         ) -> NDArray[np.float32]:
    """svdf.h ApplyTimeWeightsBiasAndActivation: ``BatchVectorBatchVectorDotProduct`` per
    filter (``NeonVectorVectorDotProduct``), ``ReductionSumVector`` over the rank
    (``NeonReductionSumVector``), ``VectorBatchVectorAdd`` of the bias, Eigen's activation."""
    scratch = neon_vector_vector_dot(data.weights_time, s)
    out = neon_reduction_sum(scratch.reshape(data.batch, data.num_units, data.rank))
    if data.bias is not None:
        out = out + data.bias
    return apply_activation_eigen(np.asarray(out, dtype=F32), data.activation)


def _tflm_time_weights_bias_activation(data: SvdfData, s: NDArray[np.float32]
                                       ) -> NDArray[np.float32]:
    """svdf_common.cc ApplyTimeWeightsBiasAndActivation (TFLM): per filter ``scratch = 0;
    scratch += wt·state`` over the memory in order; ``out = bias``; ``out += scratch`` over the
    rank in order; ``ActivationValFloat``."""
    scratch: NDArray[np.float32] = np.zeros((data.batch, data.num_filters), F32)
    for m in range(data.memory):
        scratch = np.asarray(scratch + data.weights_time[:, m] * s[:, :, m], dtype=F32)
    ranked = scratch.reshape(data.batch, data.num_units, data.rank)
    assert data.bias is not None  # prepare refuses TFLM models without bias
    out = np.broadcast_to(data.bias, (data.batch, data.num_units)).astype(F32)
    for r in range(data.rank):
        out = out + ranked[:, :, r]
    return activation_val_float(np.asarray(out, dtype=F32), data.activation)


@register(Op.SVDF, T.FLOAT32, prepare=prepare_svdf)
def svdf_float32(data: SvdfData | SvdfHybridData, x: NDArray[np.float32], wf: np.ndarray,
                 wt: np.ndarray, bias: np.ndarray | None, state: NDArray[np.float32]
                 ) -> NDArray[np.float32]:
    """reference_ops::EvalFloatSVDF (LiteRT svdf.h) / EvalFloatSvdfReference (TFLM
    svdf_common.cc); ``state`` is updated in place.  Hybrid data: :func:`_svdf_hybrid`.

    The newest state column: LiteRT clears a scratch row and adds
    ``tensor_utils::MatrixBatchVectorMultiplyAccumulate`` into it (the x86 build's NEON_2_SSE
    lanes); TFLM sums ``dot_prod += w·x`` in order.  Both bit for bit."""
    if isinstance(data, SvdfHybridData):
        return _svdf_hybrid(data, x, state)
    s = _shift_state(data, state)
    rows = np.asarray(x, dtype=F32)
    if data.runtime == "tflite":
        s[:, :, -1] = neon_matrix_batch_vector_multiply_accumulate(
            data.weights_feature, rows, np.zeros((data.batch, data.num_filters), F32))
        return _litert_time_weights_bias_activation(data, s)
    s[:, :, -1] = sequential_matmul(data.weights_feature, rows)
    return _tflm_time_weights_bias_activation(data, s)


@register(Op.SVDF, T.INT8, prepare=prepare_svdf)
def svdf_int8(data: SvdfData, x: NDArray[np.int8], wf: np.ndarray, wt: np.ndarray,
              bias: np.ndarray | None, state: np.ndarray) -> NDArray[np.int8]:
    """reference_ops::EvalIntegerSVDF (LiteRT svdf.h) / EvalIntegerSvdfReference<T> (TFLM
    svdf_common.cc); ``state`` (int16, or int8 in TFLM) is updated in place."""
    assert data.state_dtype is not None
    info = np.iinfo(data.state_dtype)
    s = _shift_state(data, state)
    dot = exact_int_matmul(x.astype(np.int64) - data.input_zero_point, data.weights_feature)
    newest = np.clip(multiply_by_quantized_multiplier(wrap_int32(dot), data.multiplier_1,
                                                      data.shift_1), int(info.min), int(info.max))
    # TFLM adds the zero point after the clamp and stores into T: the store wraps.
    newest = newest + data.state_zero_point
    s[:, :, -1] = ((newest - int(info.min)) % (1 << info.bits) + int(info.min))
    # Time: int16 x int16 products summed in an int32 accumulator (wraps modulo 2^32).
    scratch = np.einsum("bfm,fm->bf", s.astype(np.int64) - data.state_zero_point,
                        data.weights_time)
    acc = scratch.reshape(data.batch, data.num_units, data.rank).sum(axis=-1)
    if data.bias is not None:
        acc = acc + data.bias
    y = multiply_by_quantized_multiplier(wrap_int32(acc), data.multiplier_2, data.shift_2)
    out: NDArray[np.int8] = np.clip(np.asarray(y) + data.output_zero_point, -128,
                                    127).astype(np.int8)
    return out
