"""Kernels: FULLY_CONNECTED, BATCH_MATMUL.

Both are one matrix product, done as a float GEMM over exact integers (see ``conv.py``): the
weights are reshaped once in prepare, the input zero point and the bias are folded into one
per-unit offset, and the requantization runs vectorised in int64.

The one place where LiteRT's reference kernels and TFLite Micro differ is FULLY_CONNECTED's
requantization (:attr:`FullyConnectedRequant.method`):

* LiteRT ``BUILTIN_REF`` (``reference_integer_ops::FullyConnected`` / ``FullyConnectedPerChannel``
  overloads that take the float scales, and ``reference_ops::FullyConnected`` for uint8) computes
  ``(int32) round(double(acc) · double(s_in)·double(s_w[c]) / double(s_out))`` -- "double_float";
* TFLM uses the integer multiplier -- "integer_multiplier": ``MultiplyByQuantizedMultiplier``
  with the int32 overload, or for 16x8 with an int64 bias the int64 overload (15-bit multiplier).

Both also have a *hybrid* form (float input, int8 weights, float output; LiteRT only, TFLM
refuses it): :class:`FullyConnectedHybridData` (``EvalHybridDense``) and
:class:`BatchMatMulHybridData` (``EvalHybrid``), built on conv.py's on-the-fly quantizers.
BUILTIN_REF and the optimized resolver run the same code for both (measured equal outputs).

Upstream sources read: LiteRT ``tflite/kernels/fully_connected.cc``, ``batch_matmul.cc``,
``kernel_util.cc``, ``internal/reference/{fully_connected,batch_matmul}.h``,
``internal/reference/integer_ops/fully_connected.h``; TFLM
``tensorflow/lite/micro/kernels/fully_connected.cc``, ``fully_connected_common.cc``,
``batch_matmul.cc``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tflite_ref.kernels.conv import (
    FLOAT_REQUANT_LIMIT,
    Requantization,
    asymmetric_quantize_floats,
    check_bias_scale,
    float_activation_range,
    gemm_dtype_for,
    hybrid_refused_by_tflm,
    hybrid_weights,
    np_dtype,
    quant_params,
    sse_row_sums,
    sse_sign_wrap_correction,
    sse_sign_wrap_mask,
    symmetric_quantize_floats,
)
from tflite_ref.kernels.common import float32_dot_in_order
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.kernels.rnn import eigen_tanh
from tflite_ref.quant.fixedpoint import INT32_MIN, round_away, wrap_int32
from tflite_ref.quant.multipliers import (
    calculate_activation_range_quantized,
    conv_effective_scales,
    fc_per_tensor_effective_scale,
    quantize_multiplier,
    quantize_multipliers,
)

__all__ = [
    "BatchMatMulHybridData",
    "FullyConnectedHybridData",
    "FullyConnectedRequant",
    "apply_float_activation",
    "prepare_batch_matmul",
    "prepare_fully_connected",
    "product_multiplier_scale",
]

_F32 = np.float32


def product_multiplier_scale(ctx: OpContext, scale_a: float, scale_b: float,
                             scale_out: float) -> float:
    """``GetQuantizedConvolutionMultipler`` (kernel_util.cc): ``s_a·s_b / s_out`` for one
    per-tensor multiplier (FULLY_CONNECTED per-tensor, BATCH_MATMUL).

    LiteRT multiplies the two float32 scales in float32, then widens.  The TFLM runtime we
    emulate widens first: its compiled function is ``cvtss2sd; cvtss2sd; mulsd; divsd`` (seen in
    tflite_micro 0.dev20261023's ``_runtime.so``), and its outputs match the double product where
    the two differ.  The one place this emulation difference lives.
    """
    if ctx.emulate == "tflite":
        return fc_per_tensor_effective_scale(scale_a, scale_b, scale_out)
    return float(conv_effective_scales(scale_a, [scale_b], scale_out)[0])


def _max_abs(dtype: np.dtype, zero_point: int = 0) -> float:
    info = np.iinfo(dtype)
    return float(max(abs(int(info.min) - zero_point), abs(int(info.max) - zero_point)))


# =============================================================================================
# FULLY_CONNECTED
# =============================================================================================
@dataclass(frozen=True, slots=True)
class FullyConnectedRequant:
    """How FULLY_CONNECTED turns its accumulator into an output value.

    ``method`` is the emulation difference, kept here and nowhere else:
    ``"double_float"`` (LiteRT REF: ``(int32) std::round(double(acc) · effective_scale[c])``, a
    result outside int32 becoming INT32_MIN as x86's ``cvttsd2si`` makes it) or
    ``"integer_multiplier"`` (TFLM: :class:`~tflite_ref.kernels.conv.Requantization`).
    ``integer`` also carries the accumulator type, the output zero point and the clamp.
    ``max_abs_acc`` (proved in prepare) lets the common case skip the int32 wrap and range checks.
    """

    method: str
    effective_scale: NDArray[np.float64]
    integer: Requantization
    max_abs_acc: float

    def apply(self, acc: np.ndarray) -> np.ndarray:
        """``acc``: exact integer accumulators (float64 or int64), units on the last axis."""
        if self.method == "integer_multiplier":
            return self.integer.apply(acc)
        rq = self.integer
        acc = np.asarray(acc, dtype=np.float64)
        if rq.accumulator == "int32" and not self.max_abs_acc < 2.0**31:
            acc = np.asarray(wrap_int32(acc.astype(np.int64)), dtype=np.float64)
        scaled = np.asarray(round_away(acc * self.effective_scale))
        bound = self.max_abs_acc * float(self.effective_scale.max(initial=0.0)) + 1.0
        if not bound < FLOAT_REQUANT_LIMIT:
            in_range = (scaled >= -(2.0**31)) & (scaled < 2.0**31)
            scaled = np.where(in_range, scaled, INT32_MIN).astype(np.int64)
        return rq.finish(scaled)


@dataclass(frozen=True, slots=True)
class FullyConnectedData:
    locator: str
    batches: int
    depth: int  # K: input row length
    units: int  # N: output channels
    output_shape: tuple[int, ...]
    gemm_dtype: type[np.floating]
    weights: np.ndarray | None  # (K, N) in the GEMM dtype, (w - z_w); None: filter not constant
    offset: np.ndarray | None  # (N,) int64 bias - z_in·Σ_k w, or the float bias
    input_zero_point: int
    filter_offset: int
    requant: FullyConnectedRequant | None  # None on the float path
    act_min: float
    act_max: float


def _fc_accumulator(ctx: OpContext, bias_type: int | None) -> str:
    """16x8 accumulator: LiteRT fully_connected.cc takes int32 only when ``quantized_bias_type``
    says INT32 (and reads the bias as that type); TFLM when the bias is INT32 (or, without
    bias, when the option says INT32)."""
    option = ctx.options.get("quantized_bias_type") or "FLOAT32"
    if ctx.emulate == "tflite":
        if option not in ("FLOAT32", "INT32", "INT64"):
            ctx.fail(f"quantized_bias_type {option} must be INT32 or INT64")
        if option != "FLOAT32" and bias_type is not None and bias_type != T[option]:
            ctx.fail(f"bias type disagrees with quantized_bias_type {option}")
        acc = "int32" if option == "INT32" else "int64"
        if bias_type == T.INT32 and acc == "int64":
            ctx.fail("16x8 FULLY_CONNECTED with an INT32 bias needs quantized_bias_type=INT32: "
                     "LiteRT otherwise reads the bias as INT64")
        return acc
    if bias_type is not None:
        return "int32" if bias_type == T.INT32 else "int64"
    return "int32" if option == "INT32" else "int64"


def prepare_fully_connected(ctx: OpContext) -> FullyConnectedData | FullyConnectedHybridData:
    """fully_connected.cc ``PrepareImpl``/``CheckTypes`` (LiteRT) and TFLM
    ``FullyConnectedPrepare`` / ``CalculateOpDataFullyConnected``."""
    x_t, w_t, out_t, b_t = ctx.input(0), ctx.input(1), ctx.output(0), ctx.input(2)
    if x_t is None or w_t is None:
        ctx.fail("input and weights are required")
    if (ctx.options.get("weights_format") or "DEFAULT") != "DEFAULT":
        ctx.unsupported(f"weights_format {ctx.options.get('weights_format')}")
    if w_t.sparsity is not None and ctx.emulate == "tflm":
        ctx.unsupported("sparse weights: TFLite Micro ignores the sparsity metadata and reads the "
                        "compressed values as a dense matrix")
    if w_t.sparsity is not None and (w_t.type != T.FLOAT32 or ctx.const(1) is None):
        # Float sparse weights are densified once (ctx.const); the sum of the same products in
        # another order stays within float tolerance. LiteRT's quantized sparse kernels
        # requantize on their own paths, not reproduced yet.
        ctx.unsupported(f"sparse {w_t.type_name} weights")
    in_shape, w_shape = ctx.input_shape(0), ctx.input_shape(1)
    if len(w_shape) != 2:
        ctx.fail(f"weights {list(w_shape)} must be 2-D")
    units, depth = w_shape
    size = math.prod(in_shape)
    keep = bool(ctx.options.get("keep_num_dims"))
    if depth and size % depth:
        ctx.fail(f"input of {size} elements cannot be split into rows of {depth}")
    batches = size // depth if depth else math.prod(in_shape[:-1])
    if keep:
        if in_shape[-1] != depth:
            ctx.fail(f"keep_num_dims needs the input's last dimension {in_shape[-1]} to equal "
                     f"the weights' depth {depth}")
        out_shape: tuple[int, ...] = tuple(in_shape[:-1]) + (units,)
    else:
        out_shape = (batches, units)
    ctx.set_output_shape(0, out_shape)
    if b_t is not None and math.prod(ctx.input_shape(2)) != units:
        ctx.fail(f"bias has {math.prod(ctx.input_shape(2))} elements for {units} units")
    act = ctx.options.get("fused_activation_function") or "NONE"
    filt, bias = ctx.const(1), ctx.const(2)

    if x_t.type == T.FLOAT32 and w_t.type in (T.INT8, T.INT4, T.UINT8):
        return _prepare_fully_connected_hybrid(ctx, batches, depth, units, out_shape)
    if x_t.type == T.FLOAT32 or w_t.type == T.FLOAT32:
        if w_t.type != T.FLOAT32:
            ctx.unsupported(f"FULLY_CONNECTED with float input and {ctx.dtype_name(w_t)} "
                            "weights (hybrid takes INT8, INT4 or UINT8)")
        if x_t.type != T.FLOAT32 or out_t.type != T.FLOAT32:
            ctx.fail(f"float weights with {ctx.dtype_name(x_t)} input and "
                     f"{ctx.dtype_name(out_t)} output")
        if b_t is not None and b_t.type != T.FLOAT32:
            ctx.fail(f"float kernel with a {ctx.dtype_name(b_t)} bias")
        lo, hi = float_activation_range(act)
        weights = (np.ascontiguousarray(filt.T, dtype=np.float32) if filt is not None else None)
        offset = (bias.astype(np.float32).reshape(units) if bias is not None
                  else None if b_t is not None else np.zeros(units, np.float32))
        return FullyConnectedData(ctx.op.locator, batches, depth, units, out_shape, np.float32,
                                  weights, offset, 0, 0, None, lo, hi)

    # -- quantized ----------------------------------------------------------------------------
    if out_t.type != x_t.type:
        ctx.unsupported(f"{ctx.dtype_name(x_t)} input with {ctx.dtype_name(out_t)} output")
    if x_t.type == T.UINT8:
        if ctx.emulate == "tflm":
            ctx.unsupported("TFLM has no uint8 FULLY_CONNECTED")
        if w_t.type != T.UINT8:
            ctx.unsupported(f"uint8 input with {ctx.dtype_name(w_t)} weights")
    elif x_t.type in (T.INT8, T.INT16):
        if w_t.type not in (T.INT8, T.INT4):
            ctx.unsupported(f"{ctx.dtype_name(x_t)} input with {ctx.dtype_name(w_t)} weights "
                            "(takes INT8 or INT4)")
    else:
        ctx.unsupported(f"{ctx.dtype_name(x_t)} input")
    if b_t is not None:
        allowed = (T.INT32, T.INT64) if x_t.type == T.INT16 else (T.INT32,)
        if b_t.type not in allowed:
            ctx.fail(f"{ctx.dtype_name(x_t)} FULLY_CONNECTED with a {ctx.dtype_name(b_t)} bias")
    s_in, z_in_a = quant_params(ctx, x_t, "input")
    s_w, z_w_a = quant_params(ctx, w_t, "weights")
    s_out, z_out_a = quant_params(ctx, out_t, "output")
    z_in, z_out = int(z_in_a[0]), int(z_out_a[0])
    if x_t.type == T.INT16 and (z_in or z_out):
        ctx.fail("16x8 FULLY_CONNECTED needs input and output zero points 0")
    per_channel = s_w.size > 1
    if per_channel:
        qdim = w_t.quantization.quantized_dimension if w_t.quantization else 0
        if x_t.type == T.UINT8 or qdim != 0 or s_w.size != units:
            ctx.fail(f"per-channel weights need int8/int16 input, quantized_dimension 0 and "
                     f"{units} scales (have {s_w.size}, dimension {qdim})")
        if ctx.emulate == "tflm" and w_t.type == T.INT4:
            ctx.unsupported("TFLM has no per-channel INT4 FULLY_CONNECTED")
        reals = conv_effective_scales(float(s_in[0]), s_w, float(s_out[0]))
        mult, shift = quantize_multipliers(reals)
        effective = reals
    else:
        check_bias_scale(ctx, b_t, float(s_in[0]), float(s_w[0]), float(s_out[0]))
        m, s = quantize_multiplier(product_multiplier_scale(ctx, float(s_in[0]), float(s_w[0]),
                                                            float(s_out[0])))
        mult, shift = np.array([m], np.int64), np.array([s], np.int64)
        # The REF kernels recompute the scale in double (not the float32 product above).
        effective = conv_effective_scales(float(s_in[0]), s_w[:1], float(s_out[0]))
    # Per-channel kernels assume symmetric weights; the per-tensor ones add weights_offset.
    filter_offset = 0 if per_channel else -int(z_w_a[0])
    accumulator = (_fc_accumulator(ctx, b_t.type if b_t is not None else None)
                   if x_t.type == T.INT16 else "int32")
    max_acc = math.inf
    if filt is not None:
        w_int = filt.astype(np.int64) + filter_offset
        abs_sums = np.abs(w_int).sum(axis=1)
        colsum = float(abs_sums.max(initial=0))
        dtype = gemm_dtype_for(_max_abs(np_dtype(x_t)), colsum)
        weights = np.ascontiguousarray(w_int.T, dtype=dtype)
        if bias is not None or b_t is None:
            bound = _max_abs(np_dtype(x_t), z_in) * abs_sums.astype(np.float64)
            if bias is not None:
                bound = bound + np.abs(bias.astype(np.float64).reshape(-1))
            max_acc = float(bound.max(initial=0.0))
    else:
        dtype, weights = np.float64, None
    offset = (_fc_offset(weights, bias, z_in, units)
              if weights is not None and (bias is not None or b_t is None) else None)
    act_min, act_max = calculate_activation_range_quantized(act, float(s_out[0]), z_out,
                                                            np_dtype(out_t))
    integer = Requantization.build(mult, shift, accumulator, z_out, act_min, act_max,
                                   np.dtype(out_t.dtype), max_acc)
    fc_requant = "double_float" if ctx.emulate == "tflite" else "integer_multiplier"
    requant = FullyConnectedRequant(fc_requant, effective, integer, max_acc)
    return FullyConnectedData(ctx.op.locator, batches, depth, units, out_shape, dtype, weights,
                              offset, z_in, filter_offset, requant, 0.0, 0.0)


def _fc_offset(weights: np.ndarray, bias: np.ndarray | None, zero_point: int, units: int
               ) -> np.ndarray:
    """``bias[n] - z_in·Σ_k w[k, n]``: turns Σ w·x_raw into Σ w·(x - z_in) + bias (exact
    integers in float64)."""
    off: np.ndarray = -zero_point * weights.astype(np.float64).sum(axis=0)
    if bias is not None:
        off = off + bias.astype(np.float64).reshape(units)
    return off


def _fc_product(data: FullyConnectedData, x: np.ndarray, filt: np.ndarray,
                bias: np.ndarray | None) -> np.ndarray:
    """(batches, units) = x_rows @ W + offset in float64 (exact integers when quantized)."""
    weights = data.weights
    if weights is None:
        w = filt.astype(np.float64) + data.filter_offset
        weights = np.ascontiguousarray(w.T, dtype=data.gemm_dtype)
    offset: np.ndarray | float | None = data.offset
    if offset is None:
        if data.requant is None:
            offset = bias.astype(np.float64).reshape(-1) if bias is not None else 0.0
        else:
            offset = _fc_offset(weights, bias, data.input_zero_point, data.units)
    rows = x.reshape(data.batches, data.depth).astype(data.gemm_dtype)
    product: np.ndarray = (rows @ weights) + offset
    return product


# -- hybrid: float input, int8 weights (LiteRT only) --------------------------------------------
@dataclass(frozen=True, slots=True)
class FullyConnectedHybridData:
    """LiteRT ``EvalHybridDense`` (fully_connected.cc), the path BUILTIN_REF takes too.

    Per batch row: quantize the input (``asymmetric_quantize_inputs`` picks the quantizer, see
    conv.py's hybrid section), ``dot = Σ_k w·q - offset·row_sum`` in int32, then in float32
    ``out = bias + fl32(dot) · scale`` with ``scale = fl32(s_row · s_w)`` (per tensor, folded
    into the row's scaling factor) or ``fl32(s_row · s_w[n])`` (per channel), and the fused
    activation applied to floats (``ApplyActivationToVector``: every activation, TANH and
    SIGN_BIT included).
    """

    locator: str
    batches: int
    depth: int
    units: int
    output_shape: tuple[int, ...]
    asymmetric: bool
    gemm_dtype: type[np.floating]
    weights: np.ndarray  # (K, N) int8 values in the GEMM dtype
    sign_wrap: NDArray[np.float64] | None  # see conv.sse_sign_wrap_mask
    row_sums: NDArray[np.float64] | None  # (N,) SseReductionSumVector; asymmetric only
    scales: NDArray[np.float32]  # (1,) per tensor or (N,) per channel
    bias: NDArray[np.float32] | None  # constant bias, if any
    activation: str
    may_wrap: bool  # |dot| can reach 2^31: wrap like the int32 accumulator


def _prepare_fully_connected_hybrid(ctx: OpContext, batches: int, depth: int, units: int,
                                    out_shape: tuple[int, ...]) -> FullyConnectedHybridData:
    """fully_connected.cc ``PrepareImpl`` (is_hybrid) and ``EvalHybridDense``'s checks."""
    hybrid_refused_by_tflm(ctx)
    w_t, out_t, b_t = ctx.input(1), ctx.output(0), ctx.input(2)
    assert w_t is not None
    if out_t.type != T.FLOAT32 or (b_t is not None and b_t.type != T.FLOAT32):
        ctx.fail(f"hybrid FULLY_CONNECTED needs float32 output and bias ({ctx.describe_types()})")
    q = w_t.quantization
    if q is None or not q.is_quantized:
        ctx.fail("hybrid weights have no quantization scale")
    scales = q.scale.astype(np.float32)
    if scales.size > 1 and (q.quantized_dimension != 0 or scales.size != units):
        # EvalHybridDense indexes the scales by output unit after checking only
        # scale count == dims[quantized_dimension].
        ctx.fail(f"per-channel hybrid weights need {units} scales along dimension 0 (have "
                 f"{scales.size} along {q.quantized_dimension})")
    w = hybrid_weights(ctx, 1, "weights").reshape(units, depth).astype(np.int64)
    abs_sums = np.abs(w).sum(axis=1).astype(np.float64)
    dtype = gemm_dtype_for(128.0, float(abs_sums.max(initial=0.0)))
    asymmetric = bool(ctx.options.get("asymmetric_quantize_inputs"))
    row_sums = sse_row_sums(w).astype(np.float64) if asymmetric else None
    sign_wrap = sse_sign_wrap_mask(w)
    bound = 128.0 * abs_sums
    if row_sums is not None:
        bound = bound + 128.0 * np.abs(row_sums)
    if sign_wrap is not None:
        bound = bound + 256.0 * 128.0 * sign_wrap.sum(axis=0)
    bias = ctx.const(2)
    return FullyConnectedHybridData(
        ctx.op.locator, batches, depth, units, out_shape, asymmetric, dtype,
        np.ascontiguousarray(w.T, dtype=dtype), sign_wrap, row_sums, scales,
        None if bias is None else bias.astype(np.float32).reshape(units),
        str(ctx.options.get("fused_activation_function") or "NONE"),
        not float(bound.max(initial=0.0)) < 2.0**31)


def apply_float_activation(x: NDArray[np.float32], activation: str) -> NDArray[np.float32]:
    """``tensor_utils::ApplyActivationToVector`` (tensor_utils.h): the float activation of
    hybrid and recurrent kernels.  TANH is ``ApplyTanhToVector``, Eigen's ``array().tanh()``,
    not ``std::tanh``: rnn.py's :func:`eigen_tanh` reproduces it bit for bit (its packet and
    scalar lanes compute the same rational function)."""
    if activation == "NONE":
        return x
    if activation == "RELU":
        return np.maximum(x, _F32(0))
    if activation == "RELU6":
        return np.clip(x, _F32(0), _F32(6))
    if activation == "RELU_N1_TO_1":
        return np.clip(x, _F32(-1), _F32(1))
    if activation == "TANH":
        return eigen_tanh(x)
    if activation == "SIGN_BIT":
        return np.signbit(x).astype(np.float32)
    raise AssertionError(f"activation {activation} has no float form")


def _fully_connected_hybrid(data: FullyConnectedHybridData, x: NDArray[np.float32],
                            bias: NDArray[np.float32] | None) -> NDArray[np.float32]:
    if data.depth == 0 or data.batches == 0:  # fully_connected.cc Eval writes zeros
        return np.zeros(data.output_shape, np.float32)
    rows = x.reshape(data.batches, data.depth)
    if data.asymmetric:
        q, scaling, offset = asymmetric_quantize_floats(rows)
    else:
        q, scaling = symmetric_quantize_floats(rows)
    acc = np.asarray(q.astype(data.gemm_dtype) @ data.weights, dtype=np.float64)  # exact
    if data.sign_wrap is not None:
        acc -= sse_sign_wrap_correction(q, data.sign_wrap)
    if data.asymmetric:
        assert data.row_sums is not None
        acc -= offset.astype(np.float64)[:, None] * data.row_sums
    if data.may_wrap:
        acc = np.asarray(wrap_int32(acc.astype(np.int64)), dtype=np.float64)
    if data.scales.size == 1:
        scale = (scaling * data.scales[0])[:, None]  # scaling_factors_ptr[b] *= s_w
    else:
        scale = scaling[:, None] * data.scales  # batch_scaling_factor * per_channel_scale[row]
    out = acc.astype(np.float32) * scale  # float32: fl32(dot) * scale
    b = data.bias if data.bias is not None else bias
    if b is not None:
        out += b.astype(np.float32).reshape(-1)  # the output starts as the bias
    return apply_float_activation(out, data.activation).reshape(data.output_shape)


@register(Op.FULLY_CONNECTED, T.FLOAT32, prepare=prepare_fully_connected)
def fully_connected_float32(data: FullyConnectedData | FullyConnectedHybridData, x: NDArray[np.float32],
                            filt: NDArray[np.float32], bias: NDArray[np.float32] | None = None
                            ) -> NDArray[np.float32]:
    """``reference_ops::FullyConnected`` (float, reference/fully_connected.h): per output,
    ``total += x[d]·w[d]`` in float32 for d ascending, then ``total + bias`` clamped -- the
    runtimes' bits (:func:`float32_dot_in_order`).  Hybrid data (int8 weights):
    :func:`_fully_connected_hybrid`."""
    if isinstance(data, FullyConnectedHybridData):
        return _fully_connected_hybrid(data, x, bias)
    if data.depth == 0:
        return np.zeros(data.output_shape, np.float32)
    weights = data.weights if data.weights is not None else np.ascontiguousarray(filt.T)
    offset: np.ndarray | np.float32
    if data.offset is not None:
        offset = data.offset
    elif bias is not None:  # a non-constant bias
        offset = bias.astype(np.float32).reshape(-1)
    else:
        offset = np.float32(0)
    acc = float32_dot_in_order(x.reshape(data.batches, data.depth), weights)
    acc += offset
    out: NDArray[np.float32] = np.clip(acc, data.act_min, data.act_max).astype(np.float32)
    return out.reshape(data.output_shape)


@register(Op.FULLY_CONNECTED, T.INT8, T.INT16, prepare=prepare_fully_connected)
@register(Op.FULLY_CONNECTED, T.UINT8, prepare=prepare_fully_connected, emulations=("tflite",))
def fully_connected_quantized(data: FullyConnectedData, x: np.ndarray, filt: np.ndarray,
                              bias: np.ndarray | None = None) -> np.ndarray:
    """``reference_integer_ops::FullyConnected`` / ``FullyConnectedPerChannel``
    (integer_ops/fully_connected.h) and uint8 ``reference_ops::FullyConnected``:
    ``acc = Σ (w + weights_offset)·(x - z_in) + bias``, then :class:`FullyConnectedRequant`."""
    assert data.requant is not None
    if data.depth == 0:  # fully_connected.cc: an empty dot product writes zeros
        return np.zeros(data.output_shape, data.requant.integer.output_dtype)
    acc = _fc_product(data, x, filt, bias)
    return data.requant.apply(acc).reshape(data.output_shape)


# =============================================================================================
# BATCH_MATMUL
# =============================================================================================
@dataclass(frozen=True, slots=True)
class BatchMatMulData:
    locator: str
    adj_x: bool
    adj_y: bool
    output_shape: tuple[int, ...]
    gemm_dtype: type[np.floating]
    lhs_zero_point: int
    rhs_zero_point: int
    rhs: np.ndarray | None  # constant rhs, zero point removed, adj_y applied, GEMM dtype
    requant: Requantization | None  # None: float32 output or raw int32 accumulators


def prepare_batch_matmul(ctx: OpContext) -> BatchMatMulData | BatchMatMulHybridData:
    """batch_matmul.cc Prepare (LiteRT) / TFLM batch_matmul.cc: ranks 2..5, broadcast batch
    dimensions, one multiplier from ``GetQuantizedConvolutionMultipler``
    (:func:`product_multiplier_scale`), no fused activation."""
    lhs_t, rhs_t, out_t = ctx.input(0), ctx.input(1), ctx.output(0)
    if lhs_t is None or rhs_t is None:
        ctx.fail("both operands are required")
    ls, rs = ctx.input_shape(0), ctx.input_shape(1)
    if not (2 <= len(ls) <= 5 and 2 <= len(rs) <= 5):
        ctx.fail(f"operands of rank {len(ls)} and {len(rs)}; BATCH_MATMUL takes ranks 2 to 5")
    adj_x, adj_y = bool(ctx.options.get("adj_x")), bool(ctx.options.get("adj_y"))
    rank = max(len(ls), len(rs))
    lx = (1,) * (rank - len(ls)) + tuple(ls)
    rx = (1,) * (rank - len(rs)) + tuple(rs)
    batch = []
    for a, b in zip(lx[:-2], rx[:-2]):
        if a != b and a != 1 and b != 1:
            ctx.fail(f"batch dimensions {list(ls[:-2])} and {list(rs[:-2])} do not broadcast")
        batch.append(b if a == 1 else a)
    rows, depth = (lx[-1], lx[-2]) if adj_x else (lx[-2], lx[-1])
    depth_r, cols = (rx[-1], rx[-2]) if adj_y else (rx[-2], rx[-1])
    if depth != depth_r:
        ctx.fail(f"contracted dimensions differ: {depth} (lhs) vs {depth_r} (rhs)")
    out_shape = tuple(batch) + (rows, cols)
    ctx.set_output_shape(0, out_shape)
    rhs_const = ctx.const(1)

    if lhs_t.type == T.FLOAT32 and rhs_t.type == T.INT8:
        return _prepare_batch_matmul_hybrid(ctx, tuple(ls), tuple(rs), adj_x, adj_y, out_shape)
    if lhs_t.type == T.FLOAT32 or rhs_t.type == T.FLOAT32:
        if rhs_t.type != T.FLOAT32:
            ctx.unsupported(f"BATCH_MATMUL with a float lhs and a {ctx.dtype_name(rhs_t)} rhs "
                            "(hybrid takes INT8)")
        if lhs_t.type != T.FLOAT32 or out_t.type != T.FLOAT32:
            ctx.fail("float BATCH_MATMUL needs float32 operands and output")
        rhs = _bmm_rhs(rhs_const, 0, adj_y, np.float64) if rhs_const is not None else None
        return BatchMatMulData(ctx.op.locator, adj_x, adj_y, out_shape, np.float64, 0, 0, rhs,
                               None)

    pair = (lhs_t.type, rhs_t.type)
    if pair not in ((T.INT8, T.INT8), (T.INT16, T.INT16), (T.INT16, T.INT8)):
        ctx.unsupported(f"operands {ctx.dtype_name(lhs_t)} x {ctx.dtype_name(rhs_t)}")
    if pair == (T.INT16, T.INT8) and ctx.emulate == "tflm":
        ctx.unsupported("TFLM's BATCH_MATMUL needs operands of one type")
    s_l, z_l = quant_params(ctx, lhs_t, "lhs")
    s_r, z_r = quant_params(ctx, rhs_t, "rhs")
    if s_r.size > 1 or s_l.size > 1:
        ctx.unsupported("per-channel quantized BATCH_MATMUL operands")
    zl, zr = int(z_l[0]), int(z_r[0])
    if out_t.type == T.INT32 and pair == (T.INT8, T.INT8):
        if ctx.emulate == "tflm":
            ctx.unsupported("TFLM's BATCH_MATMUL has no int32 output")
        # EvalInt8Int32: raw products, zero points ignored (batch_matmul.cc).
        bound = _max_abs(np.dtype(np.int8)) ** 2 * depth
        dtype = np.float32 if bound < 2.0**24 else np.float64
        rhs = _bmm_rhs(rhs_const, 0, adj_y, dtype) if rhs_const is not None else None
        return BatchMatMulData(ctx.op.locator, adj_x, adj_y, out_shape, dtype, 0, 0, rhs, None)
    if out_t.type != lhs_t.type:
        ctx.unsupported(f"{ctx.dtype_name(lhs_t)} operands with {ctx.dtype_name(out_t)} output")
    s_o, z_o = quant_params(ctx, out_t, "output")
    if lhs_t.type == T.INT16 and (zl or zr or int(z_o[0])):
        ctx.fail("int16 BATCH_MATMUL needs zero points 0")
    m, s = quantize_multiplier(product_multiplier_scale(ctx, float(s_l[0]), float(s_r[0]),
                                                        float(s_o[0])))
    lo, hi = calculate_activation_range_quantized("NONE", float(s_o[0]), int(z_o[0]),
                                                  np_dtype(out_t))
    accumulator = "int64" if lhs_t.type == T.INT16 else "int32"
    bound = _max_abs(np_dtype(lhs_t), zl) * _max_abs(np_dtype(rhs_t), zr) * depth
    requant = Requantization.build(np.array([m], np.int64), np.array([s], np.int64),
                                   accumulator, int(z_o[0]), lo, hi, np.dtype(out_t.dtype), bound)
    dtype = np.float32 if bound < 2.0**24 else np.float64
    rhs = _bmm_rhs(rhs_const, zr, adj_y, dtype) if rhs_const is not None else None
    return BatchMatMulData(ctx.op.locator, adj_x, adj_y, out_shape, dtype, zl, zr, rhs, requant)


# -- hybrid: float lhs, int8 rhs (LiteRT only) -------------------------------------------------
@dataclass(frozen=True, slots=True)
class BatchMatMulHybridData:
    """batch_matmul.cc ``EvalHybrid`` -> the hybrid ``reference_ops::BatchMatMul``
    (reference/batch_matmul.h), in LiteRT's own geometry.

    Eval first squeezes ``lhs [..., Q, R, S] x rhs [..., 1, X, Y]`` to ``[..., Q·R, S] x
    [..., X, Y]`` (not with ``adj_x``), then works on transposed operands: the weights as
    ``[..., N, K]`` rows, the input as ``[..., M, K]`` rows, each input row quantized on its own.
    Per output element, in float32: ``t = fl32(fl32(Σ_k q·w) - fl32(row_sum · offset))``
    (``total -= row_sum * batch_offset`` with a float offset) and ``out = fl32(scale · t)``.

    The kernel advances its scaling-factor/offset pointer by ``M`` rows per step of *any*
    non-broadcast batch dimension and its row-sum pointer by ``N`` likewise, instead of by the
    dimension's stride: with two or more batch dimensions the rows borrow another row's scale.
    ``scale_index`` and ``row_sum_index`` reproduce that (it is what LiteRT computes).
    """

    locator: str
    output_shape: tuple[int, ...]
    adj_x: bool
    rows_shape: tuple[int, int, int, int, int]  # input as (I0, I1, I2, M, K)
    asymmetric: bool
    gemm_dtype: type[np.floating]
    weights: np.ndarray  # (F0, F1, F2, K, N): transposed int8 values in the GEMM dtype
    scale_index: NDArray[np.intp]  # (B0, B1, B2, M) -> quantized row whose scale/offset is used
    row_sums: NDArray[np.float32] | None  # (B0, B1, B2, 1, N) as read; asymmetric only
    scales: NDArray[np.float32]  # (1,) per tensor, (N,) per channel


def _ext5(shape: tuple[int, ...]) -> tuple[int, int, int, int, int]:
    e = (1,) * (5 - len(shape)) + tuple(shape)
    return e[0], e[1], e[2], e[3], e[4]


def _extent(shape: tuple[int, ...], i: int) -> int:
    """reference/batch_matmul.h ``extent``: 0 for a broadcast (size-1) dimension."""
    return 0 if shape[i] == 1 else math.prod(shape[i + 1:])


def _prepare_batch_matmul_hybrid(ctx: OpContext, ls: tuple[int, ...], rs: tuple[int, ...],
                                 adj_x: bool, adj_y: bool, out_shape: tuple[int, ...]
                                 ) -> BatchMatMulHybridData:
    hybrid_refused_by_tflm(ctx)
    rhs_t, out_t = ctx.input(1), ctx.output(0)
    assert rhs_t is not None
    if out_t.type != T.FLOAT32:
        ctx.fail(f"hybrid BATCH_MATMUL needs a float32 output ({ctx.describe_types()})")
    w = hybrid_weights(ctx, 1, "rhs").reshape(rs).astype(np.int64)
    if not adj_x and len(rs) > 2 and len(ls) > 2 and rs[-3] == 1:  # batch_matmul.cc Eval
        ls = ls[:-3] + (ls[-3] * ls[-2], ls[-1])
        rs = rs[:-3] + rs[-2:]
        w = w.reshape(rs)
    filt = w if adj_y else np.swapaxes(w, -1, -2)  # [..., N, K] rows
    fshape = _ext5(tuple(filt.shape))
    n_units, depth = fshape[3], fshape[4]
    rows = ls[:-2] + ((ls[-1], ls[-2]) if adj_x else ls[-2:])  # input as [..., M, K]
    ishape = _ext5(rows)
    m_rows = ishape[3]
    # Extents of LiteRT's (filter, input) shapes: [..., N, K] and [..., K, M].
    kshape_f = fshape
    kshape_i = ishape[:3] + (depth, m_rows)
    batch = tuple(max(a, b) for a, b in zip(fshape[:3], ishape[:3]))
    b0, b1, b2 = np.indices(batch, dtype=np.intp)
    io = sum(b * (m_rows if _extent(kshape_i, i) else 0) for i, b in enumerate((b0, b1, b2)))
    scale_index = io[..., None] + np.arange(m_rows)
    q = rhs_t.quantization
    if q is None or not q.is_quantized:
        ctx.fail("the hybrid rhs has no quantization scale")
    scales = q.scale.astype(np.float32)
    if scales.size > 1 and (scales.size != n_units or rhs_t.shape[q.quantized_dimension]
                            != n_units):
        # EvalHybrid checks count == dims[quantized_dimension]; the kernel indexes by column.
        ctx.fail(f"per-channel hybrid rhs needs {n_units} scales along its column dimension "
                 f"(has {scales.size} along dimension {q.quantized_dimension})")
    asymmetric = bool(ctx.options.get("asymmetric_quantize_inputs"))
    flat = filt.reshape(-1, depth)
    row_sums = None
    if asymmetric:
        # ReductionSumVector covers the matrices of extended dimensions 1 and 2 only.
        computed = fshape[1] * fshape[2] * n_units
        wo = sum(b * (n_units if _extent(kshape_f, i) else 0)
                 for i, b in enumerate((b0, b1, b2)))
        index = wo[..., None, None] + np.arange(n_units)
        if int(index.max(initial=0)) >= computed:
            ctx.unsupported("asymmetric hybrid BATCH_MATMUL with a 5-D rhs: LiteRT reads row "
                            "sums it never computed")
        row_sums = sse_row_sums(flat)[:computed][index].astype(np.float32)
    colsum = float(np.abs(flat).sum(axis=1).max(initial=0))
    if not 128.0 * colsum * (2.0 if asymmetric else 1.0) < 2.0**31:
        ctx.unsupported("hybrid BATCH_MATMUL whose int32 sums could overflow")
    dtype = gemm_dtype_for(128.0, colsum)
    weights = np.ascontiguousarray(np.swapaxes(filt.reshape(fshape), -1, -2), dtype=dtype)
    return BatchMatMulHybridData(ctx.op.locator, tuple(out_shape), adj_x, ishape, asymmetric,
                                 dtype, weights, scale_index, row_sums, scales)


def _batch_matmul_hybrid(data: BatchMatMulHybridData, lhs: NDArray[np.float32]
                         ) -> NDArray[np.float32]:
    x = np.swapaxes(lhs, -1, -2) if data.adj_x else lhs
    rows = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, data.rows_shape[4])
    if data.asymmetric:
        q, scaling, offset = asymmetric_quantize_floats(rows)
    else:
        q, scaling = symmetric_quantize_floats(rows)
    total = np.matmul(q.astype(data.gemm_dtype).reshape(data.rows_shape), data.weights)
    t = np.asarray(total, dtype=np.float32)  # exact integers below 2^31 -> float32
    idx = data.scale_index
    if data.asymmetric:
        assert data.row_sums is not None
        t = t - data.row_sums * offset.astype(np.float32)[idx][..., None]
    sf = scaling[idx][..., None]
    if data.scales.size == 1:
        scale = sf * data.scales[0]  # scaling_factors_ptr[b] *= filter->params.scale
    else:
        scale = sf * data.scales  # scale = batch_scaling_factor * per_channel_scales[i]
    out: NDArray[np.float32] = (scale * t).reshape(data.output_shape)
    return out


def _bmm_rhs(rhs: np.ndarray, zero_point: int, adj_y: bool, dtype: type[np.floating]
             ) -> np.ndarray:
    r = rhs.astype(dtype)
    if zero_point:
        r -= zero_point
    return np.swapaxes(r, -1, -2) if adj_y else r


def _bmm_product(data: BatchMatMulData, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    a = lhs.astype(data.gemm_dtype)
    if data.lhs_zero_point:
        a -= data.lhs_zero_point
    if data.adj_x:
        a = np.swapaxes(a, -1, -2)
    b = data.rhs if data.rhs is not None else _bmm_rhs(rhs, data.rhs_zero_point, data.adj_y,
                                                       data.gemm_dtype)
    product: np.ndarray = np.matmul(a, b)
    return product


@register(Op.BATCH_MATMUL, T.FLOAT32, prepare=prepare_batch_matmul)
def batch_matmul_float32(data: BatchMatMulData | BatchMatMulHybridData,
                         lhs: NDArray[np.float32], rhs: np.ndarray) -> NDArray[np.float32]:
    """``reference_ops::BatchMatMul`` (float, reference/batch_matmul.h): ``total += l·r`` over
    the depth in float32, in order (:func:`float32_dot_in_order`); hybrid (int8 rhs):
    :func:`_batch_matmul_hybrid`."""
    if isinstance(data, BatchMatMulHybridData):
        return _batch_matmul_hybrid(data, lhs)
    a = np.swapaxes(lhs, -1, -2) if data.adj_x else lhs
    b = data.rhs if data.rhs is not None else _bmm_rhs(rhs, 0, data.adj_y, np.float32)
    return float32_dot_in_order(a, b).reshape(data.output_shape)


@register(Op.BATCH_MATMUL, T.INT8, T.INT16, prepare=prepare_batch_matmul)
def batch_matmul_quantized(data: BatchMatMulData, lhs: np.ndarray, rhs: np.ndarray
                           ) -> np.ndarray:
    """``reference_ops::BatchMatMul<T, AccumT>`` (FullyConnectedParams): ``Σ (l - z_l)·(r - z_r)``
    in int32 (int8) or int64 (int16), one ``MultiplyByQuantizedMultiplier``, ``+ z_out``, clamp."""
    assert data.requant is not None
    acc = _bmm_product(data, lhs, rhs)  # exact integers in float
    return data.requant.apply(acc).reshape(data.output_shape)


@register(Op.BATCH_MATMUL, T.INT32, prepare=prepare_batch_matmul, emulations=("tflite",))
def batch_matmul_int32(data: BatchMatMulData, lhs: NDArray[np.int8], rhs: NDArray[np.int8]
                       ) -> NDArray[np.int32]:
    """int8 x int8 -> int32 (LiteRT ``EvalInt8Int32``): the raw int32 sum of products, wrapping."""
    acc = _bmm_product(data, lhs, rhs).astype(np.int64)
    return np.asarray(wrap_int32(acc)).astype(np.int32).reshape(data.output_shape)
