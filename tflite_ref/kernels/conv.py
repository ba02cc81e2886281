"""Kernels: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV.

The integer kernels are written the same way, as a float GEMM over exact integers:

* prepare decides the geometry (TFLite's ``padding.h``), reshapes the filter into the GEMM's
  right-hand matrix, folds the input zero point and the bias into one per-channel offset, computes
  the per-channel (multiplier, shift) pairs and the activation clamp, and picks the GEMM dtype;
* eval pads the raw input with its own zero point (so padded taps contribute ``z_in - z_in = 0``,
  which is what TFLite's "skip taps outside the image" amounts to), gathers the windows
  (im2col through a strided view), runs one BLAS product, and requantizes in int64.

Float CONV_2D and DEPTHWISE_CONV_2D are not GEMMs: they add the float32 products in the
reference kernels' loop order, so their outputs are the runtimes' bits (see
:func:`_conv_float_in_order`); float TRANSPOSE_CONV likewise follows the reference's scatter
order (:func:`_tconv_float_scatter_in_order`).

Why a float GEMM is exact: every product and every partial sum is an integer.  float64 holds
integers below 2^53 exactly and float32 below 2^24, so prepare bounds the largest possible partial
sum ``max|x| · max_c Σ_k |w[k, c]|`` and uses float32 (twice as fast) whenever it stays below 2^24.
The C++ accumulators are int32 (wrapping) or int64; an exact sum wrapped once at the end equals a
sum wrapped at every step, so :class:`Requantization` wraps once.

Hybrid ("dynamic-range") CONV_2D and DEPTHWISE_CONV_2D -- float input, int8 filter, float output,
LiteRT only -- run the same integer GEMM on the input quantized at run time, then scale back in
float32; the section "Hybrid pieces" explains the on-the-fly quantizers (shared with
fully_connected.py) and which LiteRT code BUILTIN_REF really runs for them.

Upstream sources read for this module (LiteRT = google-ai-edge/LiteRT ``tflite/``, TFLM =
tensorflow/tflite-micro ``tensorflow/lite/``):

* LiteRT ``kernels/conv.cc``, ``depthwise_conv.cc``, ``transpose_conv.cc``, ``padding.h``,
  ``kernel_util.cc`` (``PopulateConvolutionQuantizationParams``,
  ``GetQuantizedConvolutionMultipler``)
* ``kernels/internal/reference/conv.h``, ``depthwiseconv_float.h``, ``depthwiseconv_uint8.h``,
  ``transpose_conv.h`` and ``reference/integer_ops/{conv,depthwise_conv,transpose_conv}.h``
* TFLM ``micro/kernels/conv.cc``, ``conv_common.cc``, ``depthwise_conv.cc``,
  ``depthwise_conv_common.cc``, ``transpose_conv.cc``
* hybrid: LiteRT ``kernels/internal/tensor_utils.{h,cc}``, ``portable_tensor_utils.h``
  (``BatchQuantizeFloats``), ``optimized/sse_tensor_utils.{h,cc}``,
  ``optimized/neon_tensor_utils.cc``, ``reference/portable_tensor_utils.cc``,
  ``optimized/optimized_ops.h`` (``HybridConv``), ``reference/conv.h``
  (``HybridConvPerChannel``), ``reference/integer_ops/depthwise_conv.h``
  (``DepthwiseConvHybridPerChannel``)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tflite_ref import budgets
from tflite_ref.errors import KernelRuntimeError
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.model.model import Tensor
from tflite_ref.model.schema import tensor_type_name
from tflite_ref.quant.fixedpoint import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    round_away,
    wrap_int32,
)
from tflite_ref.quant.multipliers import (
    calculate_activation_range_quantized,
    conv_effective_scales,
    fc_per_tensor_effective_scale,
    quantize_multiplier,
    quantize_multipliers,
)

__all__ = [
    "FLOAT_REQUANT_LIMIT",
    "ConvHybrid",
    "ExactFloatMBQM",
    "Requantization",
    "asymmetric_quantize_floats",
    "check_bias_scale",
    "float_activation_range",
    "gemm_dtype_for",
    "hybrid_refused_by_tflm",
    "hybrid_weights",
    "np_dtype",
    "prepare_conv_2d",
    "prepare_depthwise_conv_2d",
    "prepare_transpose_conv",
    "quant_params",
    "sse_row_sums",
    "sse_sign_wrap_correction",
    "sse_sign_wrap_mask",
    "symmetric_quantize_floats",
]

# Largest integer every partial sum must stay below for a float GEMM to be exact.
_EXACT_FLOAT32 = float(1 << 24)
_EXACT_FLOAT64 = float(1 << 53)
# Values the float requantization path accepts: far enough below 2^31 that no int32 operation
# (accumulator, left shift, ``+ z_out`` with |z_out| <= 2^15) can wrap.
FLOAT_REQUANT_LIMIT = float((1 << 31) - (1 << 16))


# =============================================================================================
# Shared pieces (also used by fully_connected.py)
# =============================================================================================
def float_activation_range(activation: str) -> tuple[float, float]:
    """``CalculateActivationRange`` (kernel_util.h) for float kernels.

    Only the ReLU family clamps; TANH / SIGN_BIT fused into a conv are ignored by TFLite's float
    kernels (the range stays [lowest, max]), so they are ignored here too.
    """
    if activation == "RELU":
        return 0.0, math.inf
    if activation == "RELU6":
        return 0.0, 6.0
    if activation == "RELU_N1_TO_1":
        return -1.0, 1.0
    return -math.inf, math.inf


def gemm_dtype_for(max_abs_input: float, max_abs_column_sum: float) -> type[np.floating]:
    """float32 if every partial sum of the product is an integer below 2^24, else float64.

    ``max_abs_input`` bounds |x| of the GEMM's left operand, ``max_abs_column_sum`` is
    ``max_c Σ_k |w[k, c]|`` of the right one; together they bound |any partial sum|.
    """
    bound = max_abs_input * max_abs_column_sum
    if bound < _EXACT_FLOAT32:
        return np.float32
    if bound >= _EXACT_FLOAT64:  # |acc| >= 2^53 cannot happen with int8/int16 data and int32 sums
        raise AssertionError(f"GEMM partial sums up to {bound:.3g} are not exact in float64")
    return np.float64


def np_dtype(t: Tensor) -> np.dtype:
    """The NumPy dtype of a tensor a numeric kernel reads (its prepare has checked the type)."""
    assert t.dtype is not None, t.type_name
    return t.dtype


def _int_range(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


@dataclass(frozen=True, slots=True)
class ExactFloatMBQM:
    """``MultiplyByQuantizedMultiplier(x) + z_out``, evaluated exactly in float64 and int32.

    NumPy multiplies int64 arrays without SIMD, about ten times slower than float64, so the hot
    requantization runs this plan whenever prepare has proved every step exact for the largest
    possible ``|x|``.  Each float step produces an integer, or an integer times a power of two,
    with at most 53 significant bits, so float64 holds it exactly and ``floor`` of it is exact;
    the int32 steps cannot overflow.  Tests compare it with the int64 reference
    (:func:`tflite_ref.quant.fixedpoint.multiply_by_quantized_multiplier`).

    int32 overload (common.cc, double rounding), for ``|x · 2^left| < 2^31`` (no int32 wrap):

    * ``t = SRDHM(x, m) = floor((x·m + 2^30) / 2^31) = floor(x·(m/2^31) + 1/2)``.  When
      ``|x·m| < 2^52`` (``mode="one_product"``) that is three exact float operations.  Otherwise
      (``"split_product"``) ``m = m_hi·2^16 + m_lo``: ``a = x·m_hi/2^15`` and
      ``b = (x·m_lo + 2^30)/2^31`` are exact, and ``floor(a + b) = floor(a) +
      floor((a - floor(a)) + b)``, the last sum needing at most 48 bits.
    * ``RoundingDivideByPOT(t, right) + z_out = (t + 2^(right-1) - [t < 0] + z_out·2^right)
      >> right`` in int32 (round half away from zero; ``z_out`` folded into the rounding term).

    int64 overload (``mode="int64_overload"``, 16x8 kernels): ``(x·r + 2^(total-1)) >> total``
    with the 15-bit multiplier ``r`` and ``total = 15 - shift`` is ``floor(n / 2^total)`` of an
    integer ``n`` below 2^53; then ``+ z_out``.
    """

    mode: str
    pre_scale: NDArray[np.float64] | None  # 2^left (int32 overload); None: no left shift
    m_full: NDArray[np.float64]  # m / 2^31 (one_product) or the 15-bit r (int64_overload)
    m_hi: NDArray[np.float64]  # m_hi / 2^15 (split_product)
    m_lo: NDArray[np.float64]  # m_lo / 2^31 (split_product)
    post_scale: NDArray[np.float64]  # 2^-total (int64 overload)
    rounding: NDArray[np.float64]  # 2^(total - 1) (int64 overload)
    right: NDArray[np.int32]  # RoundingDivideByPOT exponent (int32 overload)
    round_zero: NDArray[np.int32]  # 2^(right-1) + z_out·2^right, or z_out when right == 0
    no_shift: NDArray[np.bool_] | None  # channels with right == 0, if any
    zero_point: int

    def __call__(self, x: NDArray[np.float64]) -> NDArray[np.int32]:
        """Consumes ``x`` (it is overwritten): few temporaries, as NumPy's large allocations
        cost page faults."""
        if self.mode == "int64_overload":
            x *= self.m_full
            x += self.rounding
            x *= self.post_scale
            r = np.floor(x, out=x).astype(np.int32)
            if self.zero_point:
                r += np.int32(self.zero_point)
            return r
        if self.pre_scale is not None:
            x *= self.pre_scale
        if self.mode == "one_product":
            x *= self.m_full
            x += 0.5
            t = np.floor(x, out=x)
        else:
            b = x * self.m_lo
            b += 0.5
            x *= self.m_hi  # a
            t = np.floor(x)
            x -= t
            x += b
            np.floor(x, out=x)
            t += x
        ti = t.astype(np.int32)  # SaturatingRoundingDoublingHighMul(x, m), exact
        negative = ti < 0
        if self.no_shift is not None:  # RoundingDivideByPOT(t, 0) is t: no sign correction
            negative &= ~self.no_shift
        ti += self.round_zero
        ti -= negative
        ti >>= self.right
        return ti

    @classmethod
    def plan(cls, multiplier: NDArray[np.int64], shift: NDArray[np.int64], accumulator: str,
             max_abs_acc: float, zero_point: int) -> ExactFloatMBQM | None:
        """The plan, or None when ``max_abs_acc`` does not prove every step exact."""
        if not math.isfinite(max_abs_acc) or np.any(multiplier < 0):
            return None
        m = multiplier.astype(np.int64)
        ones = np.ones(m.shape)
        zeros_i = np.zeros(m.shape, np.int32)
        if accumulator == "int64":
            if np.any(shift >= 8) or np.any(shift < -31):
                return None
            reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
            total = 15 - shift.astype(np.int64)
            n_max = max_abs_acc * float(reduced.max(initial=0)) + float(2.0 ** (total.max() - 1))
            out_max = n_max / float(2.0 ** total.min())
            if n_max >= 2.0**53 or out_max >= FLOAT_REQUANT_LIMIT:
                return None  # the C++ truncates to int32 here; let the int64 reference do it
            return cls("int64_overload", None, reduced.astype(np.float64), ones, ones,
                       np.ldexp(1.0, -total), np.ldexp(1.0, total - 1), zeros_i, zeros_i, None,
                       zero_point)
        left = np.maximum(shift, 0)
        right = np.maximum(-shift, 0)
        x_max = max_abs_acc * 2.0 ** int(left.max())
        if np.any(right > 31) or x_max >= FLOAT_REQUANT_LIMIT:
            return None  # the int32 left shift, the accumulator or ``+ z_out`` could wrap
        round_zero = np.where(right > 0, (np.int64(1) << np.maximum(right - 1, 0))
                              + (np.int64(zero_point) << right), zero_point)
        t_max = x_max * float(m.max(initial=0)) / 2.0**31 + 1.0
        if t_max + float(np.abs(round_zero).max(initial=0)) + 1.0 >= 2.0**31:
            return None  # the int32 rounding step could overflow
        one_product = x_max * float(m.max(initial=0)) < 2.0**52
        return cls("one_product" if one_product else "split_product",
                   np.ldexp(1.0, left) if np.any(left) else None,
                   np.ldexp(m.astype(np.float64), -31),
                   np.ldexp((m >> 16).astype(np.float64), -15),
                   np.ldexp((m & 0xFFFF).astype(np.float64), -31), ones, ones,
                   right.astype(np.int32), round_zero.astype(np.int32),
                   (right == 0) if np.any(right == 0) else None, zero_point)


@dataclass(frozen=True, slots=True)
class Requantization:
    """Accumulator -> output value, as TFLite's reference integer kernels do it per channel.

    ``out = clamp(MultiplyByQuantizedMultiplier(acc, m[c], shift[c]) + z_out, act_min, act_max)``.
    ``accumulator`` names the C++ accumulator type: ``"int32"`` wraps (``int32_t acc``) and uses
    the int32 overload of MultiplyByQuantizedMultiplier (common.cc, double rounding);
    ``"int64"`` (16x8 kernels with int64 bias) uses the int64 overload, whose multiplier is first
    cut to 15 bits.  ``multiplier``/``shift`` broadcast along the last (channel) axis.

    ``exact_float`` is the same arithmetic as a faster float64/int32 plan
    (:class:`ExactFloatMBQM`), present when prepare bounded ``|acc|`` tightly enough; otherwise
    the int64 reference functions of :mod:`tflite_ref.quant.fixedpoint` run.
    """

    multiplier: NDArray[np.int64]
    shift: NDArray[np.int64]
    accumulator: str
    output_zero_point: int
    act_min: int
    act_max: int
    output_dtype: np.dtype
    exact_float: ExactFloatMBQM | None = None

    @classmethod
    def build(cls, multiplier: NDArray[np.int64], shift: NDArray[np.int64], accumulator: str,
              output_zero_point: int, act_min: int, act_max: int, output_dtype: np.dtype,
              max_abs_acc: float = math.inf, tile: int = 1) -> Requantization:
        """``tile`` repeats the per-channel parameters: an (N, H, W, C) accumulator is then
        requantized viewed as (N·H, W·C), whose long rows NumPy processes much faster than
        rows of a few channels."""
        multiplier, shift = np.tile(multiplier, tile), np.tile(shift, tile)
        plan = ExactFloatMBQM.plan(multiplier, shift, accumulator, max_abs_acc,
                                   output_zero_point)
        return cls(multiplier, shift, accumulator, output_zero_point, act_min, act_max,
                   np.dtype(output_dtype), plan)

    def scale(self, acc: np.ndarray) -> np.ndarray:
        """``MultiplyByQuantizedMultiplier(acc)`` by the int64 reference functions."""
        acc_i = np.asarray(acc).astype(np.int64)
        if self.accumulator == "int32":
            return np.asarray(multiply_by_quantized_multiplier(wrap_int32(acc_i), self.multiplier,
                                                               self.shift), dtype=np.int64)
        return np.asarray(multiply_by_quantized_multiplier_int64(acc_i, self.multiplier,
                                                                 self.shift), dtype=np.int64)

    def apply(self, acc: np.ndarray) -> np.ndarray:
        """``acc`` holds exact integers (float64 or int64), channels (tiled) on the last axis;
        returns the output dtype.  A float64 ``acc`` may be overwritten."""
        if self.exact_float is not None:
            out = self.exact_float(np.asarray(acc, dtype=np.float64))
            np.clip(out, self.act_min, self.act_max, out=out)
            return out.astype(self.output_dtype)
        return self.finish(self.scale(acc))

    def finish(self, scaled: np.ndarray) -> np.ndarray:
        """``+ z_out`` (an int32 addition), activation clamp, cast to the output type.

        ``scaled`` is int64, or float64 holding integers (FULLY_CONNECTED's double-precision
        requantization, whose callers rule out an int32 wrap of the addition).
        """
        out = scaled
        if self.output_zero_point:
            if out.dtype.kind == "f":
                out += self.output_zero_point
            else:
                out = np.asarray(wrap_int32(out + self.output_zero_point))
        np.clip(out, self.act_min, self.act_max, out=out)
        return out.astype(self.output_dtype)


def quant_params(ctx: OpContext, t: Tensor | None, what: str) -> tuple[NDArray[np.float32],
                                                                       NDArray[np.int64]]:
    """(scales, zero points) of a quantized tensor; fails when the tensor has none."""
    q = t.quantization if t is not None else None
    if q is None or not q.is_quantized:
        ctx.fail(f"{what} has no quantization parameters (scale), which a quantized kernel needs")
    return q.scale, q.zero_point


def check_bias_scale(ctx: OpContext, bias: Tensor | None, input_scale: float,
                     filter_scale: float, output_scale: float) -> None:
    """``GetQuantizedConvolutionMultipler`` with a bias (kernel_util.cc): the bias scale must be
    within 2 % of an output step of ``s_in·s_w`` -- the kernel adds the bias as if it were."""
    if bias is None:
        return
    q = bias.quantization
    # The kernels read the bias's legacy ``params.scale``: TFLM's allocator fills it with the
    # first scale; LiteRT only for single-scale quantization (0 for a per-channel bias).
    n_scales = q.scale.size if q is not None else 0
    use_first = n_scales == 1 or (n_scales > 1 and ctx.emulate == "tflm")
    bias_scale = float(q.scale[0]) if q is not None and use_first else 0.0
    product = float(np.float32(input_scale)) * float(np.float32(filter_scale))
    if abs(product - bias_scale) / float(np.float32(output_scale)) > 0.02:
        ctx.fail(f"bias scale {bias_scale:.6g} differs from input scale x filter scale "
                 f"{product:.6g} by more than 2% of the output scale (kernel_util.cc "
                 "GetQuantizedConvolutionMultipler)")


def _int16_accumulator(ctx: OpContext, bias: Tensor | None, *, tflm_bias_decides: bool) -> str:
    """The accumulator of a 16x8 kernel: ``"int32"`` or ``"int64"``.

    LiteRT (conv.cc, transpose_conv.cc, fully_connected.cc) lets the option
    ``quantized_bias_type`` decide and reads the bias as that type; an int32 bias without the
    option would be read as int64 garbage, so that model is rejected.  TFLM conv.cc /
    fully_connected.cc decide by the bias tensor's type (the option only matters without a bias);
    TFLM transpose_conv.cc always accumulates in int64 (``tflm_bias_decides=False``).
    """
    option = ctx.options.get("quantized_bias_type") or "FLOAT32"
    if option not in ("FLOAT32", "INT32", "INT64"):
        ctx.fail(f"quantized_bias_type {option} must be INT32 or INT64")
    bias_type = bias.type if bias is not None else None
    if bias_type is not None and bias_type not in (T.INT32, T.INT64):
        ctx.unsupported(f"16x8 kernel with a {ctx.dtype_name(bias)} bias (takes INT32 or INT64)")
    if ctx.emulate == "tflite":
        acc = "int32" if option == "INT32" else "int64"
        if option != "FLOAT32" and bias_type is not None and bias_type != T[option]:
            ctx.fail(f"bias is {ctx.dtype_name(bias)} but quantized_bias_type is {option}")
        if bias_type is not None and acc == "int64" and bias_type != T.INT64:
            ctx.fail("16x8 kernel with an INT32 bias needs quantized_bias_type=INT32: LiteRT "
                     "otherwise reads the bias as INT64")
        return acc
    if not tflm_bias_decides:
        if bias_type == T.INT32:
            ctx.unsupported("TFLM's 16x8 TRANSPOSE_CONV reads the bias as INT64; this one is INT32")
        return "int64"
    if bias_type is not None:
        return "int32" if bias_type == T.INT32 else "int64"
    return "int32" if option == "INT32" else "int64"


def _channel_requantization(ctx: OpContext, input_t: Tensor, filter_t: Tensor,
                            output_t: Tensor, bias_t: Tensor | None, channels: int,
                            quantized_dim: int, accumulator: str,
                            max_abs_acc: float = math.inf, tile: int = 1) -> Requantization:
    """``PopulateConvolutionQuantizationParams`` (kernel_util.cc), shared by both runtimes.

    Per-channel multipliers from ``double(s_in)·double(s_w[c]) / double(s_out)`` (a per-tensor
    filter scale is broadcast).  The uint8 path of LiteRT uses one multiplier from the float32
    product ``GetQuantizedConvolutionMultipler`` and checks the bias scale.
    """
    s_in, _ = quant_params(ctx, input_t, "input")
    s_w, z_w = quant_params(ctx, filter_t, "filter")
    s_out, z_out = quant_params(ctx, output_t, "output")
    per_channel = s_w.size > 1
    if per_channel:
        if input_t.type not in (T.INT8, T.INT16):
            ctx.fail("per-channel filter quantization needs int8 or int16 input")
        fshape = filter_t.shape
        if s_w.size != channels or not (0 <= quantized_dim < len(fshape)) \
                or fshape[quantized_dim] != channels:
            ctx.fail(f"filter has {s_w.size} scales for {channels} output channels "
                     f"(quantized_dimension {quantized_dim})")
    if input_t.type in (T.INT8, T.INT16) and np.any(z_w != 0):
        ctx.fail("int8/int16 kernels need symmetric filters (zero point 0)")
    if input_t.type == T.UINT8:
        real = fc_per_tensor_effective_scale(float(s_in[0]), float(s_w[0]), float(s_out[0]))
        check_bias_scale(ctx, bias_t, float(s_in[0]), float(s_w[0]), float(s_out[0]))
        m, s = quantize_multiplier(real)
        mult = np.full(channels, m, np.int64)
        shift = np.full(channels, s, np.int64)
    else:
        reals = conv_effective_scales(float(s_in[0]), s_w, float(s_out[0]))
        mult, shift = quantize_multipliers(np.broadcast_to(reals, (channels,)))
    act = ctx.options.get("fused_activation_function") or "NONE"
    act_min, act_max = calculate_activation_range_quantized(act, float(s_out[0]), int(z_out[0]),
                                                            np_dtype(output_t))
    return Requantization.build(mult, shift, accumulator, int(z_out[0]), act_min, act_max,
                                np.dtype(output_t.dtype), max_abs_acc, tile)


def _check_types(ctx: OpContext, *, bias_int: tuple[int, ...],
                 hybrid_filters: tuple[int, ...] = ()) -> None:
    """Input/filter/output/bias dtype combinations of the conv family (conv.cc Prepare).

    ``hybrid_filters``: the filter types the op's hybrid path takes with float input."""
    x, w, out = ctx.input(0 if ctx.op.name != "TRANSPOSE_CONV" else 2), ctx.input(1), ctx.output(0)
    b = ctx.input(2 if ctx.op.name != "TRANSPOSE_CONV" else 3)
    if x is None or w is None:
        ctx.fail("input and filter are required")
    if out.type != x.type:
        ctx.fail(f"output is {ctx.dtype_name(out)} but input is {ctx.dtype_name(x)}")
    if x.type == T.FLOAT32:
        if w.type != T.FLOAT32 and w.type not in hybrid_filters:
            takes = ", ".join(tensor_type_name(t) for t in hybrid_filters) or "none"
            ctx.unsupported(f"{ctx.op.name} with float input and a {ctx.dtype_name(w)} filter "
                            f"(hybrid filters it takes: {takes})")
        if b is not None and b.type != T.FLOAT32:
            ctx.fail(f"float kernel with a {ctx.dtype_name(b)} bias")
        return
    if x.type == T.UINT8:
        if w.type != T.UINT8:
            ctx.unsupported(f"uint8 input with a {ctx.dtype_name(w)} filter")
    elif w.type not in (T.INT8, T.INT4):
        ctx.unsupported(f"{ctx.dtype_name(x)} input with a {ctx.dtype_name(w)} filter "
                        "(takes INT8 or INT4)")
    if b is not None:
        allowed = (T.INT32,) if x.type in (T.INT8, T.UINT8) else bias_int
        if b.type not in allowed:
            ctx.fail(f"{ctx.dtype_name(x)} kernel with a {ctx.dtype_name(b)} bias")
        if b.quantization is not None and np.any(b.quantization.zero_point != 0):
            ctx.fail("bias zero point must be 0")
    if x.type == T.INT16:
        zx = x.quantization.zero_point if x.quantization is not None else np.zeros(1)
        zo = out.quantization.zero_point if out.quantization is not None else np.zeros(1)
        if np.any(zx != 0) or np.any(zo != 0):
            ctx.fail("16x8 kernels need input and output zero points 0")


# =============================================================================================
# Hybrid pieces: dynamic-range quantization, shared with fully_connected.py
# =============================================================================================
# A hybrid operator has float activations and int8 weights: LiteRT quantizes each input row on
# the fly to int8 with a scaling factor (and, asymmetrically, an offset), multiplies in int32 and
# scales the sums back to float.  The row quantizers and the int8 products live in tensor_utils,
# which BUILTIN_REF shares with the optimized kernels.  On the x86 pip wheels that is
# ``optimized/sse_tensor_utils.h``: it sends the quantizers to ``neon_tensor_utils.cc`` (NEON
# intrinsics translated to SSE by NEON_2_SSE, see ``neon_check.h``) and the products to SSSE3/AVX2
# code.  What follows was read there and confirmed on ai-edge-litert 2.3.0, whose interpreter
# shows the quantized input, scaling factors, offsets and row sums as temporaries (every one
# matched, over random rows and hand-made ties):
#
# * ``NeonSymmetricQuantizeFloats`` / ``NeonAsymmetricQuantizeFloats``, not the ``Portable*``
#   versions of ``reference/portable_tensor_utils.cc``.  Their vector body (the first
#   ``n - n % 8`` values of a row) rounds with the pre-ARMv8 ``RoundToNearest``,
#   ``vcvtq_s32_f32(p + (p < 0 ? -0.5f : 0.5f))``: half away from zero, but through a float32
#   addition, so 0.49999997f becomes 1.  The tail rounds with ``TfLiteRound``.
# * The asymmetric quantizer subtracts ``rmax - rmin`` in float32 (``NeonMinMax`` returns
#   floats; the portable code widens first), inverts the scale in double,
#   ``(float)(1.0 / (double)scale)``, and adds the offset after rounding.
# * ``SseReductionSumVector`` (row sums for the asymmetric offset) adds in eight int16 lanes,
#   which wrap for long rows.
# * ``SseMatrixBatchVectorMultiplyAccumulateImpl`` multiplies whole 16-column blocks with
#   ``_mm_sign_epi8`` + ``_mm_maddubs_epi16``: moving a negative input's sign onto a weight of
#   -128 wraps (-(-128) is -128 in int8), so that product comes out negated.  Symmetrically
#   quantized weights never hold -128; hand-made ones may.
#
# Beyond tensor_utils, BUILTIN_REF runs the optimized ``HybridConv`` for per-tensor CONV_2D (ruy
# when the filter count is a multiple of 4, the SSE product otherwise) and the reference kernels
# for per-channel CONV_2D and DEPTHWISE_CONV_2D; those two are where the optimized resolver's
# float outputs differ from REF (by float32 rounding), FULLY_CONNECTED and BATCH_MATMUL do not.
_F32 = np.float32


def _round_to_nearest(p: NDArray[np.float32], body: int) -> NDArray[np.float32]:
    """The quantizers' rounding, per row: ``RoundToNearest`` (x86 NEON_2_SSE build) on the first
    ``body`` columns, ``TfLiteRound`` on the rest; float32 results."""
    out = np.empty_like(p)
    if body:
        head = out[:, :body]
        np.copysign(_F32(0.5), p[:, :body], out=head)  # -0.0 gets -0.5: trunc gives 0 all the same
        head += p[:, :body]
        np.trunc(head, out=head)
    if body < p.shape[1]:
        out[:, body:] = round_away(p[:, body:])
    return out


def symmetric_quantize_floats(rows: NDArray[np.float32]
                              ) -> tuple[NDArray[np.int8], NDArray[np.float32]]:
    """``NeonSymmetricQuantizeFloats`` on each row of ``rows`` (R, n): int8 values in
    [-127, 127] and the scaling factor ``range / 127`` (float32, ``range = max |x|``).

    ``q = round(x · fl32(127 / range))``; an all-zero row gives zeros and scaling factor 1.
    """
    rows = np.asarray(rows, dtype=np.float32)
    n_rows, n = rows.shape
    if n == 0:
        return np.zeros(rows.shape, np.int8), np.ones(n_rows, np.float32)
    span = np.maximum(np.abs(rows.min(axis=1)), np.abs(rows.max(axis=1)))
    zero = span == 0
    span = np.where(zero, _F32(1), span)
    scaling = np.where(zero, _F32(1), span / _F32(127)).astype(np.float32)
    inverse = (_F32(127) / span).astype(np.float32)
    q = _round_to_nearest(rows * inverse[:, None], n - n % 8)
    np.clip(q, -127, 127, out=q)
    q[zero] = 0
    return q.astype(np.int8), scaling


def asymmetric_quantize_floats(rows: NDArray[np.float32]) -> tuple[
        NDArray[np.int8], NDArray[np.float32], NDArray[np.int32]]:
    """``NeonAsymmetricQuantizeFloats`` on each row: int8 values, scaling factor and offset.

    The range is widened to include 0 (``rmin = min(0, min x)``, ``rmax = max(0, max x)``);
    ``scale = double(fl32(rmax - rmin)) / 255``; the zero point is taken from whichever end has
    the smaller error and rounded half away (``round``), clamped to [-128, 127];
    ``q = clamp(round(x · fl32(1.0 / double(fl32(scale)))) + offset)``.  A row with
    ``rmin == rmax`` (all zeros) gives zeros, scaling factor 1 and offset 0.
    """
    rows = np.asarray(rows, dtype=np.float32)
    n_rows, n = rows.shape
    if n == 0:
        return (np.zeros(rows.shape, np.int8), np.ones(n_rows, np.float32),
                np.zeros(n_rows, np.int32))
    rmin = np.minimum(rows.min(axis=1), _F32(0))
    rmax = np.maximum(rows.max(axis=1), _F32(0))
    flat = rmin == rmax
    scale = np.where(flat, 1.0, (rmax - rmin).astype(np.float64) / 255.0)
    lo, hi = rmin.astype(np.float64) / scale, rmax.astype(np.float64) / scale
    zero_point = np.where(128.0 + np.abs(lo) < 127.0 + np.abs(hi), -128.0 - lo, 127.0 - hi)
    offset = np.where(zero_point <= -128.0, -128.0,
                      np.where(zero_point >= 127.0, 127.0, round_away(zero_point)))
    offset[flat] = 0.0
    scaling = scale.astype(np.float32)
    scaling[flat] = 1
    with np.errstate(divide="ignore"):
        inverse = np.where(scaling == 0, 0.0, 1.0 / scaling.astype(np.float64)).astype(np.float32)
    q = _round_to_nearest(rows * inverse[:, None], n - n % 8)
    q += offset.astype(np.float32)[:, None]
    np.clip(q, -128, 127, out=q)
    q[flat] = 0
    return q.astype(np.int8), scaling, offset.astype(np.int32)


def sse_row_sums(weights: np.ndarray) -> NDArray[np.int64]:
    """``SseReductionSumVector`` of each row of ``weights`` (N, K) int8: Σ_k w[n, k].

    16-column blocks go through ``_mm_maddubs_epi16`` into eight int16 lanes (lane j collects
    columns 2j and 2j+1 of every block) and one 8-column postamble adds column j to lane j; the
    lanes wrap at 16 bits before they are summed in int32 with the scalar tail.
    """
    w = np.asarray(weights).astype(np.int64)
    n, k = w.shape
    blocks = k & ~15
    lanes = w[:, :blocks].reshape(n, -1, 8, 2).sum(axis=(1, 3))
    col = blocks
    if col < (k & ~7):
        lanes = lanes + w[:, col:col + 8]
        col += 8
    lanes = ((lanes + (1 << 15)) & 0xFFFF) - (1 << 15)
    total: NDArray[np.int64] = lanes.sum(axis=1) + w[:, col:].sum(axis=1)
    return total


def sse_sign_wrap_mask(weights: np.ndarray) -> NDArray[np.float64] | None:
    """Where ``SseMatrixBatchVectorMultiplyAccumulateImpl`` gets weights (N, K) wrong: a -128
    in the 16-column blocks.  Returns the (K & ~15, N) indicator, or None when there is none;
    the kernel's dot product is then ``Σ_k q_k·w_k - 256 · Σ_{masked k} max(-q_k, 0)``."""
    w = np.asarray(weights)
    mask = w[:, :w.shape[1] & ~15] == -128
    return np.ascontiguousarray(mask.T, dtype=np.float64) if mask.any() else None


def sse_sign_wrap_correction(q: np.ndarray, mask: NDArray[np.float64]) -> NDArray[np.float64]:
    """The term :func:`sse_sign_wrap_mask` describes, for input rows ``q`` (R, >= K & ~15)."""
    neg = np.maximum(-q[:, :mask.shape[0]].astype(np.float64), 0.0)
    return 256.0 * (neg @ mask)


def hybrid_weights(ctx: OpContext, slot: int, what: str) -> NDArray[np.int8]:
    """The constant int8 values LiteRT's hybrid kernels multiply by: they read an int8, int4 or
    uint8 weight tensor with ``GetTensorData<int8_t>``, so uint8 bytes are reinterpreted as int8
    (its zero point is ignored) and int4 arrives unpacked to [-8, 7].

    Non-constant weights are refused: LiteRT computes the asymmetric row sums once and keeps
    them (``compute_row_sums``), so later invokes would silently use stale sums.
    """
    t, data = ctx.input(slot), ctx.const(slot)
    if t is None or data is None:
        ctx.unsupported(f"hybrid {ctx.op.name} with a non-constant {what}: LiteRT caches sums "
                        "of its first value (compute_row_sums)")
    return data.view(np.int8) if data.dtype == np.uint8 else data.astype(np.int8)


@dataclass(frozen=True, slots=True)
class ConvHybrid:
    """The hybrid part of CONV_2D / DEPTHWISE_CONV_2D data (float input, int8 filter).

    ``per_channel`` (asymmetric input) is conv.cc ``EvalHybridPerChannel`` ->
    ``reference_ops::HybridConvPerChannel`` and every hybrid depthwise conv
    (``reference_integer_ops::DepthwiseConvHybridPerChannel``): the GEMM runs on ``q - offset``
    with padding 0.  Otherwise conv.cc ``EvalHybrid`` -> ``optimized_ops::HybridConv`` (BUILTIN_REF
    takes it too): symmetric input, one scale ``fl32(s_row · s_w)`` per image.
    """

    per_channel: bool
    scales: NDArray[np.float32]  # (1,) filter scale, or per channel tiled out_w times
    sign_wrap: tuple[np.ndarray, ...] | None  # (K, OC) 0/1 GEMM operand: sse_sign_wrap_mask
    bias: NDArray[np.float32] | None  # tiled out_w times; None: computed at run time


def _hybrid_conv_input(hybrid: ConvHybrid, x: NDArray[np.float32], dtype: type[np.floating]
                       ) -> tuple[np.ndarray, np.ndarray, NDArray[np.float32]]:
    """Quantize each image: (GEMM input, raw int8 values, per-image scaling factor)."""
    rows = x.reshape(x.shape[0], -1)
    if hybrid.per_channel:
        q, scaling, offset = asymmetric_quantize_floats(rows)
        gemm_in = q.astype(dtype) - offset.astype(dtype)[:, None]
        return gemm_in.reshape(x.shape), q, scaling
    q, scaling = symmetric_quantize_floats(rows)
    return q.reshape(x.shape), q, scaling


def _hybrid_bias(ctx: OpContext, slot: int, tile: int) -> NDArray[np.float32] | None:
    bias = ctx.const(slot)
    return None if bias is None else np.tile(bias.astype(np.float32).reshape(-1), tile)


def _hybrid_finish(data_act: tuple[float, float], hybrid: ConvHybrid, out: NDArray[np.float32],
                   bias: np.ndarray | None, tile: int) -> NDArray[np.float32]:
    """``+ bias`` (float32) and the activation clamp (``CalculateActivationRange``)."""
    b = hybrid.bias if hybrid.bias is not None else (
        None if bias is None else np.tile(bias.astype(np.float32).reshape(-1), tile))
    if b is not None:
        out += b
    return np.clip(out, _F32(data_act[0]), _F32(data_act[1]), out=out)


def hybrid_refused_by_tflm(ctx: OpContext) -> None:
    """TFLM's conv/depthwise/fully_connected/batch_matmul Prepare refuse float input with
    quantized weights ("Hybrid models are not supported on TFLite Micro.")."""
    if ctx.emulate == "tflm":
        ctx.unsupported(f"hybrid {ctx.op.name} ({ctx.describe_types()}): TFLite Micro refuses "
                        "hybrid models (float activations, quantized weights) at Prepare")


# -- geometry (tflite/kernels/padding.h) --------------------------------------------------------
def _out_size_and_pad(ctx: OpContext, padding: str, in_size: int, kernel: int, stride: int,
                      dilation: int, axis: str) -> tuple[int, int]:
    """``ComputeOutSizeChecked`` + ``ComputePaddingWithOffsetChecked``: (out size, pad before).

    SAME: ``ceil(in / stride)``; VALID: ``(in + stride - eff_k) / stride`` with C truncation;
    total padding ``max((out - 1)·stride + eff_k - in, 0)``, the smaller half before.
    """
    if stride <= 0 or dilation <= 0 or kernel <= 0 or in_size < 0:
        ctx.fail(f"{axis}: stride {stride}, dilation {dilation}, kernel {kernel} and input "
                 f"{in_size} must be positive")
    eff = (kernel - 1) * dilation + 1
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    elif padding == "VALID":
        num = in_size + stride - eff
        out = num // stride if num >= 0 else -((-num) // stride)  # C++ truncates toward 0
    else:
        ctx.fail(f"padding {padding!r} must be SAME or VALID")
    if out < 0:
        ctx.fail(f"{axis}: a {kernel}-tap filter (dilation {dilation}) does not fit an input of "
                 f"{in_size} with VALID padding")
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2


@dataclass(frozen=True, slots=True)
class Window:
    """Where each output pixel reads: ``in = out·stride - pad + tap·dilation``.

    ``padded_h``/``padded_w`` size the padded input so that every tap of every window is inside
    it; padding beyond the image holds the input zero point (an exact zero after the offset).
    """

    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    pad_top: int
    pad_left: int
    in_h: int
    in_w: int
    out_h: int
    out_w: int
    padded_h: int
    padded_w: int

    @classmethod
    def of(cls, ctx: OpContext, in_h: int, in_w: int, kernel_h: int, kernel_w: int) -> Window:
        o = ctx.options
        sh, sw = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))
        dh, dw = int(o.get("dilation_h_factor", 1)), int(o.get("dilation_w_factor", 1))
        padding = str(o.get("padding", "SAME"))
        out_h, pad_top = _out_size_and_pad(ctx, padding, in_h, kernel_h, sh, dh, "height")
        out_w, pad_left = _out_size_and_pad(ctx, padding, in_w, kernel_w, sw, dw, "width")
        padded_h = max(pad_top + in_h, (out_h - 1) * sh + (kernel_h - 1) * dh + 1)
        padded_w = max(pad_left + in_w, (out_w - 1) * sw + (kernel_w - 1) * dw + 1)
        # eval builds the padded input (up to float64): a hostile dilation or filter size must
        # be refused here, before allocating (hostile-models.md class 19).
        in_shape = ctx.input_shape(0)
        n, c = (in_shape[0], in_shape[-1]) if len(in_shape) == 4 else (1, 1)
        budgets.check_allocation(ctx.op.locator, (n, padded_h, padded_w, c), 8)
        return cls(kernel_h, kernel_w, sh, sw, dh, dw, pad_top, pad_left, in_h, in_w, out_h,
                   out_w, padded_h, padded_w)

    @property
    def needs_padding(self) -> bool:
        return bool(self.pad_top or self.pad_left or self.padded_h != self.in_h
                    or self.padded_w != self.in_w)

    def pad(self, x: np.ndarray, fill: float, dtype: type[np.floating]) -> np.ndarray:
        """``x`` converted to ``dtype`` inside a frame of ``fill`` (N, padded_h, padded_w, C)."""
        if not self.needs_padding:
            return x.astype(dtype)
        n, _, _, c = x.shape
        xp = np.full((n, self.padded_h, self.padded_w, c), fill, dtype=dtype)
        xp[:, self.pad_top:self.pad_top + self.in_h, self.pad_left:self.pad_left + self.in_w] = x
        return xp

    def windows(self, xp: np.ndarray) -> np.ndarray:
        """Read-only strided view (N, out_h, out_w, kernel_h, kernel_w, C) of a padded input."""
        sn, sh, sw, sc = xp.strides
        n, c = xp.shape[0], xp.shape[3]
        return np.lib.stride_tricks.as_strided(
            xp, (n, self.out_h, self.out_w, self.kernel_h, self.kernel_w, c),
            (sn, sh * self.stride_h, sw * self.stride_w, sh * self.dilation_h,
             sw * self.dilation_w, sc), writeable=False)


def _input_max_abs(dtype: np.dtype, zero_point: int = 0) -> float:
    """Largest ``|x - zero_point|`` an input of ``dtype`` can hold."""
    lo, hi = _int_range(dtype)
    return float(max(zero_point - lo, hi - zero_point))


def _max_abs_acc(input_dtype: np.dtype, zero_point: int, abs_column_sums: np.ndarray,
                 bias: np.ndarray | None) -> float:
    """Bound on ``|Σ w·(x - z_in) + bias|`` per channel, maximised over channels."""
    bound = _input_max_abs(input_dtype, zero_point) * abs_column_sums.astype(np.float64)
    if bias is not None:
        bound = bound + np.abs(bias.astype(np.float64).reshape(-1))
    return float(bound.max(initial=0.0))


# =============================================================================================
# CONV_2D
# =============================================================================================
# Per-channel parameters (bias offsets, multipliers) are stored repeated out_w times: the
# (N, out_h, out_w, C) accumulator is processed viewed as (N·out_h, out_w·C), because NumPy runs
# long rows much faster than rows of a few channels.
@dataclass(frozen=True, slots=True)
class Conv2DData:
    """Everything CONV_2D's eval needs; ``weights``/``offset`` are None for a non-constant filter
    or bias (then eval builds them from the arrays it receives)."""

    locator: str
    window: Window
    groups: int
    out_channels: int
    gemm_dtype: type[np.floating]
    input_fill: float  # raw value padded taps hold: z_in (integer kernels) or 0.0
    weights: tuple[np.ndarray, ...] | None  # per group: (kh·kw·cin_g, oc_g) GEMM operand;
    #   float: one (KH, KW, Cg, OC) float32 array for the in-order loop
    offset: np.ndarray | None  # (out_w·OC,): bias - z_in·Σ_k w (exact integers), or float bias
    filter_offset: int  # -z_w (uint8 only)
    input_zero_point: int
    requant: Requantization | None  # None on the float path
    act_min: float
    act_max: float
    hybrid: ConvHybrid | None = None  # float input, int8 filter


def _conv_gemm_weights(filt: np.ndarray, groups: int, filter_offset: int,
                       dtype: type[np.floating]) -> tuple[np.ndarray, ...]:
    """Filter (OC, KH, KW, Cg) -> per group the (KH·KW·Cg, OC/groups) GEMM right operand."""
    oc = filt.shape[0]
    per = oc // groups
    w = filt.astype(np.float64) + filter_offset
    return tuple(np.ascontiguousarray(w[g * per:(g + 1) * per].reshape(per, -1).T, dtype=dtype)
                 for g in range(groups))


def _offset(column_sums: np.ndarray, bias: np.ndarray | None, zero_point: int, quantized: bool,
            tile: int) -> np.ndarray:
    """Per output channel ``bias[c] - z_in·Σ_k w[k, c]`` (what turns Σ w·x_raw into
    Σ w·(x - z_in) + bias; exact integers in float64), or the float bias; repeated ``tile``
    times."""
    off = -zero_point * column_sums if quantized else np.zeros(column_sums.shape)
    if bias is not None:
        off = off + bias.astype(np.float64).reshape(-1)
    return np.tile(off, tile)


def prepare_conv_2d(ctx: OpContext) -> Conv2DData:
    """conv.cc Prepare (LiteRT) / conv_common.cc ConvPrepare (TFLM)."""
    in_shape, f_shape = ctx.input_shape(0), ctx.input_shape(1)
    if len(in_shape) != 4 or len(f_shape) != 4:
        ctx.fail(f"input {list(in_shape)} and filter {list(f_shape)} must be 4-D")
    x_t, w_t, out_t = ctx.input(0), ctx.input(1), ctx.output(0)
    b_t = ctx.input(2)
    _check_types(ctx, bias_int=(T.INT32, T.INT64), hybrid_filters=(T.INT8, T.INT4, T.UINT8))
    assert x_t is not None and w_t is not None
    if x_t.type == T.UINT8 and ctx.emulate == "tflm":
        ctx.unsupported("TFLM has no uint8 CONV_2D")
    n, h, w, c = in_shape
    oc, kh, kw, cin_g = f_shape
    if min(h, w, c, oc, kh, kw, cin_g) <= 0 or c % cin_g:
        ctx.fail(f"input channels {c} must be a positive multiple of filter depth {cin_g}")
    groups = c // cin_g
    if oc % groups:
        ctx.fail(f"{oc} output channels cannot be split into {groups} groups")
    if b_t is not None and math.prod(ctx.input_shape(2)) != oc:
        ctx.fail(f"bias has {math.prod(ctx.input_shape(2))} elements for {oc} output channels")
    if b_t is None and ctx.emulate == "tflite":
        ctx.fail("LiteRT's CONV_2D requires a bias tensor (conv.cc Prepare: "
                 "TF_LITE_ENSURE(context, has_bias)); TFLM runs it without")
    win = Window.of(ctx, h, w, kh, kw)
    ctx.set_output_shape(0, (n, win.out_h, win.out_w, oc))
    act = ctx.options.get("fused_activation_function") or "NONE"
    filt, bias = ctx.const(1), ctx.const(2)
    known_bias = bias is not None or b_t is None

    if x_t.type == T.FLOAT32 and w_t.type != T.FLOAT32:
        return _prepare_conv_2d_hybrid(ctx, win, groups, oc)
    if x_t.type == T.FLOAT32:
        lo, hi = float_activation_range(act)
        weights: tuple[np.ndarray, ...] | None = (
            (_conv_float_taps(filt),) if filt is not None else None)
        offset = (_offset(np.zeros(oc), bias, 0, False, 1).astype(np.float32) if known_bias
                  else None)
        return Conv2DData(ctx.op.locator, win, groups, oc, np.float32, 0.0, weights, offset, 0, 0,
                          None, lo, hi)

    accumulator = (_int16_accumulator(ctx, b_t, tflm_bias_decides=True)
                   if x_t.type == T.INT16 else "int32")
    z_in = int(quant_params(ctx, x_t, "input")[1][0])
    filter_offset = (-int(quant_params(ctx, w_t, "filter")[1][0]) if x_t.type == T.UINT8
                     else 0)
    weights, offset, max_acc = None, None, math.inf
    dtype: type[np.floating] = np.float64
    if filt is not None:
        w_int = (filt.astype(np.int64) + filter_offset).reshape(oc, -1)
        # The GEMM runs on raw inputs; |x_raw| times the column sums bounds every partial sum.
        abs_colsums = np.abs(w_int).sum(axis=1)
        dtype = gemm_dtype_for(_input_max_abs(np_dtype(x_t)), float(abs_colsums.max()))
        weights = _conv_gemm_weights(filt, groups, filter_offset, dtype)
        if known_bias:
            max_acc = _max_abs_acc(np_dtype(x_t), z_in, abs_colsums, bias)
            offset = _offset(w_int.sum(axis=1).astype(np.float64), bias, z_in, True, win.out_w)
    rq = _channel_requantization(ctx, x_t, w_t, out_t, b_t, oc,
                                 w_t.quantization.quantized_dimension if w_t.quantization else 0,
                                 accumulator, max_acc, tile=win.out_w)
    return Conv2DData(ctx.op.locator, win, groups, oc, dtype, float(z_in), weights, offset,
                      filter_offset, z_in, rq, 0.0, 0.0)


def _hybrid_scales(ctx: OpContext, w_t: Tensor, channels: int, *, per_channel_ok: bool,
                   grouped: bool = False) -> tuple[NDArray[np.float32], bool]:
    """(filter scales, per-channel kernel?) of a hybrid conv/depthwise filter.  The per-channel
    kernels index the scales by output channel after checking only ``count ==
    dims[quantized_dimension]``, so any other layout would read out of bounds: refused."""
    q = w_t.quantization
    if q is None or not q.is_quantized:
        ctx.fail("the hybrid filter has no quantization scale")
    scales = q.scale.astype(np.float32)
    if grouped and scales.size != channels:
        ctx.fail(f"grouped hybrid CONV_2D needs one filter scale per output channel "
                 f"({channels}), has {scales.size} (LiteRT conv.cc Prepare)")
    # conv.cc: is_hybrid_per_channel only when the int8/int4 filter's scales differ.
    per_channel = grouped or (per_channel_ok and scales.size > 1
                              and bool(np.any(scales != scales[0])))
    if per_channel and (scales.size != channels
                        or w_t.shape[q.quantized_dimension] != channels):
        ctx.fail(f"per-channel hybrid filter needs {channels} scales along its output-channel "
                 f"dimension (has {scales.size} along dimension {q.quantized_dimension})")
    return scales, per_channel


def _prepare_conv_2d_hybrid(ctx: OpContext, win: Window, groups: int, oc: int) -> Conv2DData:
    """conv.cc Prepare/Eval for float input and an int8/int4/uint8 filter (LiteRT only)."""
    hybrid_refused_by_tflm(ctx)
    w_t = ctx.input(1)
    assert w_t is not None
    # EvalImpl also sends grouped convs to EvalHybridPerChannel (only the reference kernel
    # has groups), whose Prepare wants one scale per filter (conv.cc: "scale->size !=
    # filter->dims->data[0]" in LiteRT 2.3.0).
    scales, per_channel = _hybrid_scales(ctx, w_t, oc, per_channel_ok=w_t.type in (
        T.INT8, T.INT4), grouped=groups != 1)
    if groups != 1 and w_t.type == T.UINT8:
        ctx.fail("grouped hybrid CONV_2D needs an INT8 or INT4 filter (LiteRT conv.cc Prepare)")
    w = hybrid_weights(ctx, 1, "filter").astype(np.int64)
    rows = w.reshape(oc, -1)
    dtype = gemm_dtype_for(255.0 if per_channel else 127.0,
                           float(np.abs(rows).sum(axis=1).max(initial=0)))
    sign_wrap = None
    if not per_channel and oc % 4:
        # HybridConv's MatrixBatchVectorMultiplyAccumulate goes through ruy (exact) when the
        # filter count is a multiple of 4, and through the SSE kernel otherwise.
        mask = sse_sign_wrap_mask(rows)
        if mask is not None:
            full = np.zeros((rows.shape[1], oc), dtype)
            full[:mask.shape[0]] = mask
            sign_wrap = (full,)
    hybrid = ConvHybrid(per_channel, np.tile(scales, win.out_w) if per_channel else scales[:1],
                        sign_wrap, _hybrid_bias(ctx, 2, win.out_w))
    lo, hi = float_activation_range(ctx.options.get("fused_activation_function") or "NONE")
    return Conv2DData(ctx.op.locator, win, groups, oc, dtype, 0.0,
                      _conv_gemm_weights(w, groups, 0, dtype), None, 0, 0, None, lo, hi, hybrid)


def _conv_2d_hybrid(data: Conv2DData, x: NDArray[np.float32], bias: np.ndarray | None
                    ) -> NDArray[np.float32]:
    """conv.cc ``EvalHybrid`` (symmetric): ``fl32(acc) · fl32(s_img · s_w)``;
    ``EvalHybridPerChannel`` (asymmetric, reference/conv.h ``HybridConvPerChannel``):
    ``fl32(fl32(acc) · s_w[c]) · s_img`` with ``acc = Σ w·(q - offset)`` over the taps inside
    the image; then ``+ bias`` and the activation clamp, all in float32."""
    hy = data.hybrid
    assert hy is not None and data.weights is not None
    n = x.shape[0]
    win = data.window
    gemm_in, q, scaling = _hybrid_conv_input(hy, x, data.gemm_dtype)
    acc = _conv_gemm(data, gemm_in, data.weights)  # exact integers
    if hy.sign_wrap is not None:  # see sse_sign_wrap_mask
        negative = np.maximum(-q.astype(np.int16), 0).reshape(x.shape)
        acc = acc - 256.0 * _conv_gemm(data, negative, hy.sign_wrap)
    out = acc.astype(np.float32).reshape(n, win.out_h, -1)
    if hy.per_channel:
        out *= hy.scales
        out *= scaling[:, None, None]
    else:
        out *= (scaling * hy.scales[0])[:, None, None]
    out = _hybrid_finish((data.act_min, data.act_max), hy, out, bias, win.out_w)
    return out.reshape(_conv_output_shape(data, n))


def _conv_gemm(data: Conv2DData, x: np.ndarray, weights: tuple[np.ndarray, ...]) -> np.ndarray:
    """Σ over the window of x_padded · w, as (N·out_h, out_w·OC) in the GEMM dtype."""
    win = data.window
    xp = win.pad(x, data.input_fill, data.gemm_dtype)
    n = x.shape[0]
    rows = n * win.out_h * win.out_w
    if win.kernel_h == win.kernel_w == 1 and data.groups == 1:
        # 1x1: the "window" is the pixel itself; only strides subsample.
        cols = xp[:, ::win.stride_h, ::win.stride_w][:, :win.out_h, :win.out_w].reshape(rows, -1)
        acc = cols @ weights[0]
    elif data.groups == 1:
        acc = win.windows(xp).reshape(rows, -1) @ weights[0]
    else:
        view = win.windows(xp)
        cin_g = x.shape[3] // data.groups
        grouped = view.reshape(view.shape[:5] + (data.groups, cin_g))
        acc = np.concatenate([grouped[..., g, :].reshape(rows, -1) @ weights[g]
                              for g in range(data.groups)], axis=1)
    out: np.ndarray = acc.reshape(n * win.out_h, win.out_w * data.out_channels)
    return out


def _conv_weights_offset(data: Conv2DData, filt: np.ndarray, bias: np.ndarray | None
                         ) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The prepared GEMM operand and offset, or (non-constant filter/bias) built now."""
    weights = data.weights
    if weights is None:
        weights = _conv_gemm_weights(filt, data.groups, data.filter_offset, data.gemm_dtype)
    offset = data.offset
    if offset is None:
        colsums = np.concatenate([w.astype(np.float64).sum(axis=0) for w in weights])
        offset = _offset(colsums, bias, data.input_zero_point, data.requant is not None,
                         data.window.out_w)
    return weights, offset


def _conv_output_shape(data: Conv2DData, n: int) -> tuple[int, int, int, int]:
    return (n, data.window.out_h, data.window.out_w, data.out_channels)


def _conv_float_taps(filt: np.ndarray) -> NDArray[np.float32]:
    """Filter (OC, KH, KW, Cg) -> (KH, KW, Cg, OC) float32: one row of OC weights per product
    the reference loop adds."""
    return np.ascontiguousarray(filt.transpose(1, 2, 3, 0), dtype=np.float32)


def _conv_float_in_order(data: Conv2DData, x: NDArray[np.float32], taps: NDArray[np.float32]
                         ) -> NDArray[np.float32]:
    """reference/conv.h's float loop, vectorised over the output: per output element
    ``total += x·w`` for filter_y, filter_x, in_channel (of its group) ascending, in float32.

    A padded tap adds ``0·w`` = ±0.0 to the total, which leaves it unchanged -- the reference
    skips it, same bits.  Products are rounded before the addition (no FMA), as in the runtimes.
    """
    win = data.window
    n = x.shape[0]
    oh, ow, oc, groups = win.out_h, win.out_w, data.out_channels, data.groups
    cin_g = taps.shape[2]
    xp = win.pad(x, 0.0, np.float32)
    total = np.zeros((n, oh, ow, groups, oc // groups), np.float32)
    term = np.empty_like(total)
    for ky in range(win.kernel_h):
        y0 = ky * win.dilation_h
        for kx in range(win.kernel_w):
            x0 = kx * win.dilation_w
            block = xp[:, y0:y0 + (oh - 1) * win.stride_h + 1:win.stride_h,
                       x0:x0 + (ow - 1) * win.stride_w + 1:win.stride_w]
            block = block.reshape(n, oh, ow, groups, cin_g)  # input channel g·cin_g + ic
            for ic in range(cin_g):
                np.multiply(block[..., ic, None], taps[ky, kx, ic].reshape(groups, -1), out=term)
                total += term
    return total.reshape(n, oh, ow, oc)


@register(Op.CONV_2D, T.FLOAT32, prepare=prepare_conv_2d)
def conv_2d_float32(data: Conv2DData, x: NDArray[np.float32], filt: NDArray[np.float32],
                    bias: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
    """``reference_ops::Conv`` (float, reference/conv.h): Σ x·w over valid taps + bias, clamped,
    summed in float32 in the reference's order (:func:`_conv_float_in_order`): the runtimes'
    bits.  Hybrid filters (int8/int4/uint8): :func:`_conv_2d_hybrid`.
    """
    shape = _conv_output_shape(data, x.shape[0])
    if math.prod(shape) == 0:  # conv.cc Eval: nothing to compute
        return np.zeros(shape, np.float32)
    if data.hybrid is not None:
        return _conv_2d_hybrid(data, x, bias)
    taps = data.weights[0] if data.weights is not None else _conv_float_taps(filt)
    offset = data.offset
    if offset is None:  # a non-constant bias
        offset = (bias.astype(np.float32).reshape(-1) if bias is not None
                  else np.zeros(data.out_channels, np.float32))
    total = _conv_float_in_order(data, x, taps)
    total += offset  # reference: total + bias_value, then the activation clamp
    np.clip(total, data.act_min, data.act_max, out=total)
    return total


@register(Op.CONV_2D, T.INT8, T.INT16, prepare=prepare_conv_2d)
@register(Op.CONV_2D, T.UINT8, prepare=prepare_conv_2d, emulations=("tflite",))
def conv_2d_quantized(data: Conv2DData, x: np.ndarray, filt: np.ndarray,
                      bias: np.ndarray | None = None) -> np.ndarray:
    """int8: ``reference_integer_ops::ConvPerChannel`` (integer_ops/conv.h); int16x8: its
    ``<AccumScalar>`` template (int32 or int64 accumulator); uint8: ``reference_ops::Conv``
    (reference/conv.h) with one multiplier and a filter offset.

    ``acc = Σ (w - z_w)·(x - z_in) + bias`` over the taps inside the image, then per channel
    ``MultiplyByQuantizedMultiplier``, ``+ z_out`` and the activation clamp.
    """
    assert data.requant is not None
    shape = _conv_output_shape(data, x.shape[0])
    if math.prod(shape) == 0:  # conv.cc Eval: nothing to compute
        return np.zeros(shape, data.requant.output_dtype)
    weights, offset = _conv_weights_offset(data, filt, bias)
    acc = np.add(_conv_gemm(data, x, weights), offset)  # exact integers in float64
    return data.requant.apply(acc).reshape(shape)


# =============================================================================================
# DEPTHWISE_CONV_2D
# =============================================================================================
@dataclass(frozen=True, slots=True)
class DepthwiseConv2DData:
    """``method`` picks how the taps are summed, by shape (all three are exact):

    * ``"single_channel"``: one input channel -- a plain conv with one input channel, so one
      im2col GEMM (``(pixels, kh·kw) @ (kh·kw, M)``); many taps, few channels (micro_speech).
    * ``"small_image"``: at most 64 output pixels -- one ``einsum`` over the window view; a
      per-tap loop would be mostly NumPy call overhead.
    * ``"taps"``: a loop over the kh·kw taps, each one multiply-add of a slice of the input by
      the per-channel weights.  Strided convs first split the input into its stride phases so
      every slice is a block of whole rows, viewed as long (out_w·C) rows.
    """

    locator: str
    window: Window
    depth_multiplier: int
    out_channels: int
    gemm_dtype: type[np.floating]
    input_fill: float
    method: str
    taps: np.ndarray | None  # (KH, KW, out_w·OC) tiled weights ("taps"), (KH·KW, OC) otherwise
    offset: np.ndarray | None  # (out_w·OC,) bias - z_in·Σ_taps w, or float bias
    filter_offset: int
    input_zero_point: int
    requant: Requantization | None
    act_min: float
    act_max: float
    hybrid: ConvHybrid | None = None  # float input, int8 filter


def _depthwise_method(win: Window, in_channels: int, batch: int) -> str:
    if in_channels == 1:
        return "single_channel"
    if batch * win.out_h * win.out_w <= 64:
        return "small_image"
    return "taps"


def _depthwise_taps(filt: np.ndarray, filter_offset: int, method: str, out_w: int,
                    dtype: type[np.floating]) -> np.ndarray:
    _, kh, kw, oc = filt.shape
    w = (filt.astype(np.float64) + filter_offset).reshape(kh, kw, oc)
    if method == "taps":
        return np.tile(w, (1, 1, out_w)).astype(dtype)
    return np.ascontiguousarray(w.reshape(kh * kw, oc), dtype=dtype)


def prepare_depthwise_conv_2d(ctx: OpContext) -> DepthwiseConv2DData:
    """depthwise_conv.cc Prepare (LiteRT) / depthwise_conv_common.cc (TFLM).

    Filter ``[1, KH, KW, C·M]``: output channel ``oc = ic·M + m`` reads input channel ``ic``.
    """
    in_shape, f_shape = ctx.input_shape(0), ctx.input_shape(1)
    if len(in_shape) != 4 or len(f_shape) != 4:
        ctx.fail(f"input {list(in_shape)} and filter {list(f_shape)} must be 4-D")
    x_t, w_t, out_t, b_t = ctx.input(0), ctx.input(1), ctx.output(0), ctx.input(2)
    _check_types(ctx, bias_int=(T.INT64,), hybrid_filters=(T.INT8,))
    assert x_t is not None and w_t is not None
    if x_t.type == T.UINT8 and ctx.emulate == "tflm":
        ctx.unsupported("TFLM has no uint8 DEPTHWISE_CONV_2D")
    n, h, w, c = in_shape
    one, kh, kw, oc = f_shape
    if one != 1 or min(h, w, c, kh, kw, oc) <= 0 or oc % c:
        ctx.fail(f"filter {list(f_shape)} must be [1, KH, KW, {c}·depth_multiplier]")
    multiplier = oc // c
    # TFLM (all types) and LiteRT's int16 kernel loop over the *option*; the others compute it.
    option_dm = int(ctx.options.get("depth_multiplier") or 0)
    hybrid = x_t.type == T.FLOAT32 and w_t.type != T.FLOAT32
    if option_dm != multiplier and (ctx.emulate == "tflm" or x_t.type == T.INT16 or hybrid):
        ctx.fail(f"depth_multiplier option {option_dm} disagrees with the filter "
                 f"({oc} output / {c} input channels = {multiplier})")
    if b_t is not None and math.prod(ctx.input_shape(2)) != oc:
        ctx.fail(f"bias has {math.prod(ctx.input_shape(2))} elements for {oc} output channels")
    if b_t is None and len(ctx.op.inputs) == 3 and ctx.emulate == "tflite":
        # depthwise_conv.cc reads input 2 with GetInputSafe whenever there are three slots.
        ctx.fail("LiteRT's DEPTHWISE_CONV_2D refuses an omitted (-1) bias; leave the slot out")
    win = Window.of(ctx, h, w, kh, kw)
    ctx.set_output_shape(0, (n, win.out_h, win.out_w, oc))
    # Float: always the per-tap loop, the only strategy that adds in the reference's order.
    method = "taps" if x_t.type == T.FLOAT32 and not hybrid else _depthwise_method(win, c, n)
    act = ctx.options.get("fused_activation_function") or "NONE"
    filt, bias = ctx.const(1), ctx.const(2)
    known_bias = bias is not None or b_t is None
    if hybrid:
        return _prepare_depthwise_conv_2d_hybrid(ctx, win, multiplier, oc, method)
    if x_t.type == T.FLOAT32:
        lo, hi = float_activation_range(act)
        # The per-tap loop adds the products in reference_ops::DepthwiseConv's order (filter_y,
        # filter_x) in float32, as the C++ does (a padded tap adds 0.0): the runtimes' bits.
        dtype: type[np.floating] = np.float32
        taps = _depthwise_taps(filt, 0, method, win.out_w, dtype) if filt is not None else None
        offset = _offset(np.zeros(oc), bias, 0, False, win.out_w) if known_bias else None
        return DepthwiseConv2DData(ctx.op.locator, win, multiplier, oc, dtype, 0.0, method,
                                   taps, offset, 0, 0, None, lo, hi)
    # LiteRT and TFLM both read a 16x8 depthwise bias as int64 (depthwise_conv.cc).
    accumulator = "int64" if x_t.type == T.INT16 else "int32"
    z_in = int(quant_params(ctx, x_t, "input")[1][0])
    filter_offset = (-int(quant_params(ctx, w_t, "filter")[1][0]) if x_t.type == T.UINT8
                     else 0)
    taps, offset, dtype, max_acc = None, None, np.float64, math.inf
    if filt is not None:
        w_int = (filt.astype(np.int64) + filter_offset).reshape(-1, oc)
        abs_colsums = np.abs(w_int).sum(axis=0)
        dtype = gemm_dtype_for(_input_max_abs(np_dtype(x_t)), float(abs_colsums.max()))
        taps = _depthwise_taps(filt, filter_offset, method, win.out_w, dtype)
        if known_bias:
            max_acc = _max_abs_acc(np_dtype(x_t), z_in, abs_colsums, bias)
            offset = _offset(w_int.sum(axis=0).astype(np.float64), bias, z_in, True, win.out_w)
    rq = _channel_requantization(ctx, x_t, w_t, out_t, b_t, oc,
                                 w_t.quantization.quantized_dimension if w_t.quantization else 3,
                                 accumulator, max_acc, tile=win.out_w)
    return DepthwiseConv2DData(ctx.op.locator, win, multiplier, oc, dtype, float(z_in), method,
                               taps, offset, filter_offset, z_in, rq, 0.0, 0.0)


def _prepare_depthwise_conv_2d_hybrid(ctx: OpContext, win: Window, multiplier: int, oc: int,
                                      method: str) -> DepthwiseConv2DData:
    """depthwise_conv.cc for float input and an int8 filter (LiteRT only): always the
    per-channel kernel with asymmetric input quantization, whatever the filter's scales."""
    hybrid_refused_by_tflm(ctx)
    w_t = ctx.input(1)
    assert w_t is not None
    scales, _ = _hybrid_scales(ctx, w_t, oc, per_channel_ok=True)
    if scales.size != oc:
        # Prepare checks count == dims[quantized_dimension] (a single scale passes with
        # dimension 0), then the kernel reads per_channel_scale[output_channel].
        ctx.fail(f"hybrid DEPTHWISE_CONV_2D reads one filter scale per output channel ({oc}); "
                 f"this filter has {scales.size}")
    w = hybrid_weights(ctx, 1, "filter").astype(np.int64)
    dtype = gemm_dtype_for(255.0, float(np.abs(w.reshape(-1, oc)).sum(axis=0).max(initial=0)))
    taps = _depthwise_taps(w, 0, method, win.out_w, dtype)
    hybrid = ConvHybrid(True, np.tile(scales, win.out_w), None, _hybrid_bias(ctx, 2, win.out_w))
    lo, hi = float_activation_range(ctx.options.get("fused_activation_function") or "NONE")
    return DepthwiseConv2DData(ctx.op.locator, win, multiplier, oc, dtype, 0.0, method, taps,
                               None, 0, 0, None, lo, hi, hybrid)


def _depthwise_conv_2d_hybrid(data: DepthwiseConv2DData, x: NDArray[np.float32],
                              bias: np.ndarray | None) -> NDArray[np.float32]:
    """``reference_integer_ops::DepthwiseConvHybridPerChannel``: ``acc = Σ w·(q - offset)``
    over the taps inside the image, ``fl32(acc) · fl32(s_w[c] · s_img)``, ``+ bias``, clamp."""
    hy = data.hybrid
    assert hy is not None and data.taps is not None
    n = x.shape[0]
    win = data.window
    gemm_in, _, scaling = _hybrid_conv_input(hy, x, data.gemm_dtype)
    acc = _depthwise_sum(data, gemm_in, data.taps)  # exact integers
    scale = (hy.scales[None, :] * scaling[:, None]).astype(np.float32)
    out = acc.astype(np.float32).reshape(n, win.out_h, -1) * scale[:, None, :]
    out = _hybrid_finish((data.act_min, data.act_max), hy, out, bias, win.out_w)
    return out.reshape(n, win.out_h, win.out_w, data.out_channels)


def _depthwise_sum(data: DepthwiseConv2DData, x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Σ over the taps of input × per-channel weight, as (N·out_h, out_w·OC) in the GEMM dtype."""
    win = data.window
    n = x.shape[0]
    oh, ow, oc = win.out_h, win.out_w, data.out_channels
    xp = win.pad(x, data.input_fill, data.gemm_dtype)
    if data.method == "single_channel":  # (pixels, kh·kw) @ (kh·kw, M)
        gemm: np.ndarray = win.windows(xp).reshape(n * oh * ow, -1) @ taps
        return gemm.reshape(n * oh, ow * oc)
    if data.depth_multiplier > 1:
        xp = np.repeat(xp, data.depth_multiplier, axis=3)  # channel ic·M + m reads ic
    if data.method == "small_image":
        view = win.windows(xp).reshape(n, oh, ow, -1, oc)
        summed: np.ndarray = np.einsum("nhwkc,kc->nhwc", view, taps)
        return summed.reshape(n * oh, ow * oc)
    sh, sw = win.stride_h, win.stride_w
    phases: dict[tuple[int, int], np.ndarray] = {}
    acc = np.empty((n, oh, ow * oc), dtype=data.gemm_dtype)
    term = np.empty_like(acc)
    for ky in range(win.kernel_h):
        for kx in range(win.kernel_w):
            # Input row of output row r, tap ky: r·sh + ky·dh = (r + y0)·sh + py.
            y0, py = divmod(ky * win.dilation_h, sh)
            x0, px = divmod(kx * win.dilation_w, sw)
            phase = phases.get((py, px))
            if phase is None:
                phase = xp if sh == sw == 1 else np.ascontiguousarray(xp[:, py::sh, px::sw])
                phases[(py, px)] = phase
            block = phase[:, y0:y0 + oh, x0:x0 + ow].reshape(n, oh, ow * oc)
            if ky == kx == 0:
                np.multiply(block, taps[0, 0], out=acc)
            else:
                np.multiply(block, taps[ky, kx], out=term)
                acc += term
    return acc.reshape(n * oh, ow * oc)


def _depthwise_taps_offset(data: DepthwiseConv2DData, filt: np.ndarray, bias: np.ndarray | None
                           ) -> tuple[np.ndarray, np.ndarray]:
    taps = data.taps
    if taps is None:
        taps = _depthwise_taps(filt, data.filter_offset, data.method, data.window.out_w,
                               data.gemm_dtype)
    offset = data.offset
    if offset is None:
        w = (filt.astype(np.float64) + data.filter_offset).reshape(-1, data.out_channels)
        offset = _offset(w.sum(axis=0), bias, data.input_zero_point, data.requant is not None,
                         data.window.out_w)
    return taps, offset


@register(Op.DEPTHWISE_CONV_2D, T.FLOAT32, prepare=prepare_depthwise_conv_2d)
def depthwise_conv_2d_float32(data: DepthwiseConv2DData, x: NDArray[np.float32],
                              filt: NDArray[np.float32], bias: NDArray[np.float32] | None = None
                              ) -> NDArray[np.float32]:
    """``reference_ops::DepthwiseConv`` (reference/depthwiseconv_float.h): ``Σ x·w`` over the
    taps, ``+ bias``, clamp -- in float32 and the reference's order for the per-tap strategy, in
    float64 otherwise.  Hybrid (int8 filter): :func:`_depthwise_conv_2d_hybrid`."""
    win = data.window
    shape = (x.shape[0], win.out_h, win.out_w, data.out_channels)
    if math.prod(shape) == 0:
        return np.zeros(shape, np.float32)
    if data.hybrid is not None:
        return _depthwise_conv_2d_hybrid(data, x, bias)
    taps, offset = _depthwise_taps_offset(data, filt, bias)
    acc = _depthwise_sum(data, x, taps)
    acc += offset.astype(acc.dtype, copy=False)  # the float bias is exact in float32
    np.clip(acc, data.act_min, data.act_max, out=acc)
    return acc.astype(np.float32).reshape(shape)


@register(Op.DEPTHWISE_CONV_2D, T.INT8, T.INT16, prepare=prepare_depthwise_conv_2d)
@register(Op.DEPTHWISE_CONV_2D, T.UINT8, prepare=prepare_depthwise_conv_2d,
          emulations=("tflite",))
def depthwise_conv_2d_quantized(data: DepthwiseConv2DData, x: np.ndarray, filt: np.ndarray,
                                bias: np.ndarray | None = None) -> np.ndarray:
    """int8/int16x8: ``reference_integer_ops::DepthwiseConvPerChannel``
    (integer_ops/depthwise_conv.h; int16 with an int64 accumulator); uint8:
    ``reference_ops::DepthwiseConv`` (depthwiseconv_uint8.h, ``kAwayFromZero`` = the standard
    double-rounding MultiplyByQuantizedMultiplier)."""
    assert data.requant is not None
    win = data.window
    shape = (x.shape[0], win.out_h, win.out_w, data.out_channels)
    if math.prod(shape) == 0:
        return np.zeros(shape, data.requant.output_dtype)
    taps, offset = _depthwise_taps_offset(data, filt, bias)
    acc = np.add(_depthwise_sum(data, x, taps), offset)  # exact integers in float64
    return data.requant.apply(acc).reshape(shape)


# =============================================================================================
# TRANSPOSE_CONV
# =============================================================================================
@dataclass(frozen=True, slots=True)
class TransposeConvGeometry:
    """The forward-conv geometry computed from the *output* size (transpose_conv.cc Eval:
    ``ComputePaddingHeightWidth(stride, dilation 1, out_h, out_w, kh, kw, padding)``)."""

    output_shape: tuple[int, int, int, int]
    pad_top: int
    pad_left: int
    full_h: int  # scatter buffer: big enough for every tap and for the cropped output
    full_w: int


@dataclass(frozen=True, slots=True)
class TransposeConvData:
    locator: str
    stride_h: int
    stride_w: int
    kernel_h: int
    kernel_w: int
    out_channels: int
    padding: str
    geometry: TransposeConvGeometry | None  # None: output_shape is computed at run time
    # integers: (Cin, KH·KW·OC) float64, (w - z_w); float32: (KH, KW, Cin, OC) float32 taps
    weights: np.ndarray | None
    input_zero_point: int
    filter_offset: int
    requant: Requantization | None
    act_min: float
    act_max: float


def _tconv_geometry(padding: str, stride_h: int, stride_w: int, kh: int, kw: int,
                    in_shape: tuple[int, ...], output_shape: tuple[int, ...], out_channels: int,
                    ctx: OpContext | None) -> TransposeConvGeometry:
    """At prepare (constant output_shape) a bad shape fails the model; at invoke (computed
    output_shape) it is a run-time fault."""

    def bad(msg: str) -> None:
        if ctx is not None:
            ctx.fail(msg)
        raise KernelRuntimeError(msg)

    if len(output_shape) != 4:
        bad(f"output_shape {list(output_shape)} must have 4 elements")
    n, oh, ow, oc = (int(d) for d in output_shape)
    if n != in_shape[0] or oh <= 0 or ow <= 0 or oc != out_channels:
        bad(f"output_shape {list(output_shape)} does not fit input {list(in_shape)} and "
            f"{out_channels} filters")
    results = []
    for size, k, s, axis, actual in ((oh, kh, stride_h, "height", in_shape[1]),
                                     (ow, kw, stride_w, "width", in_shape[2])):
        eff = k
        if padding == "SAME":
            computed = (size + s - 1) // s
        elif padding == "VALID":
            num = size + s - eff
            computed = num // s if num >= 0 else -((-num) // s)
        else:
            bad(f"padding {padding!r} must be SAME or VALID")
        if computed != actual:
            bad(f"{axis}: output {size} with stride {s} and a {k}-tap filter ({padding}) needs "
                f"an input of {computed}, not {actual}")
        results.append(max((computed - 1) * s + eff - size, 0) // 2)
    pad_top, pad_left = results
    full_h = max((in_shape[1] - 1) * stride_h + kh, pad_top + oh)
    full_w = max((in_shape[2] - 1) * stride_w + kw, pad_left + ow)
    return TransposeConvGeometry((n, oh, ow, oc), pad_top, pad_left, full_h, full_w)


def prepare_transpose_conv(ctx: OpContext) -> TransposeConvData:
    """transpose_conv.cc Prepare/Eval (LiteRT) and TFLM transpose_conv.cc.

    Inputs: 0 output_shape (int32 [4]), 1 weights ``[OC, KH, KW, Cin]``, 2 input, 3 bias
    (optional).  No dilation, no groups.
    """
    shape_t, w_t, x_t, out_t = ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)
    b_t = ctx.input(3)
    if shape_t is None or shape_t.type != T.INT32:
        ctx.fail("output_shape (input 0) must be an int32 tensor")
    in_shape, f_shape = ctx.input_shape(2), ctx.input_shape(1)
    if len(in_shape) != 4 or len(f_shape) != 4 or len(ctx.input_shape(0)) != 1:
        ctx.fail(f"input {list(in_shape)} and weights {list(f_shape)} must be 4-D, output_shape "
                 "1-D")
    _check_types(ctx, bias_int=(T.INT32, T.INT64))
    assert x_t is not None and w_t is not None
    if x_t.type == T.UINT8 and ctx.emulate == "tflm":
        ctx.unsupported("TFLM has no uint8 TRANSPOSE_CONV")
    oc, kh, kw, cin = f_shape
    if min(oc, kh, kw, cin) <= 0 or in_shape[3] != cin:
        ctx.fail(f"input depth {in_shape[3]} must equal the weights' depth {cin}")
    if b_t is not None and math.prod(ctx.input_shape(3)) != oc:
        ctx.fail(f"bias has {math.prod(ctx.input_shape(3))} elements for {oc} output channels")
    o = ctx.options
    sh, sw = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))
    if not (0 < sh <= 32767 and 0 < sw <= 32767):
        ctx.fail(f"strides ({sh}, {sw}) must be in [1, 32767]")
    padding = str(o.get("padding", "SAME"))
    out_shape_const = ctx.const(0)
    geometry = None
    if out_shape_const is not None:
        geometry = _tconv_geometry(padding, sh, sw, kh, kw, in_shape,
                                   tuple(int(d) for d in out_shape_const.reshape(-1)), oc, ctx)
        ctx.set_output_shape(0, geometry.output_shape)
    else:
        ctx.set_dynamic_output(0)
    filt = ctx.const(1)
    act = o.get("fused_activation_function") or "NONE"
    if x_t.type == T.FLOAT32:
        lo, hi = float_activation_range(act)
        weights = _tconv_float_taps(filt) if filt is not None else None
        return TransposeConvData(ctx.op.locator, sh, sw, kh, kw, oc, padding, geometry, weights,
                                 0, 0, None, lo, hi)
    if x_t.type == T.INT16:
        accumulator = _int16_accumulator(ctx, b_t, tflm_bias_decides=False)
    else:
        accumulator = "int32"
    z_in = int(quant_params(ctx, x_t, "input")[1][0])
    filter_offset = (-int(quant_params(ctx, w_t, "filter")[1][0]) if x_t.type == T.UINT8
                     else 0)
    bias = ctx.const(3)
    max_acc = math.inf
    if filt is not None and (bias is not None or b_t is None):
        # Each output pixel receives every (tap, input channel) product at most once.
        abs_sums = np.abs(filt.astype(np.int64) + filter_offset).reshape(oc, -1).sum(axis=1)
        max_acc = _max_abs_acc(np_dtype(x_t), z_in, abs_sums, bias)
    rq = _channel_requantization(ctx, x_t, w_t, out_t, b_t, oc,
                                 w_t.quantization.quantized_dimension if w_t.quantization else 0,
                                 accumulator, max_acc)
    weights = _tconv_weights(filt, filter_offset) if filt is not None else None
    return TransposeConvData(ctx.op.locator, sh, sw, kh, kw, oc, padding, geometry, weights,
                             z_in, filter_offset, rq, 0.0, 0.0)


def _tconv_weights(filt: np.ndarray, filter_offset: int) -> np.ndarray:
    """[OC, KH, KW, Cin] -> (Cin, KH·KW·OC): one GEMM gives every tap's contribution."""
    w = filt.astype(np.float64) + filter_offset
    return np.ascontiguousarray(w.transpose(3, 1, 2, 0).reshape(w.shape[3], -1))


def _tconv_float_taps(filt: np.ndarray) -> NDArray[np.float32]:
    """[OC, KH, KW, Cin] -> (KH, KW, Cin, OC) float32: one tap's row for every output channel."""
    return np.ascontiguousarray(filt.transpose(1, 2, 3, 0), dtype=np.float32)


def _tconv_resolved_geometry(data: TransposeConvData, x: np.ndarray, output_shape: np.ndarray
                             ) -> TransposeConvGeometry:
    """The prepared geometry, or the one a run-time ``output_shape`` asks for (a bad one is a
    run-time fault)."""
    if data.geometry is not None:
        return data.geometry
    try:
        return _tconv_geometry(
            data.padding, data.stride_h, data.stride_w, data.kernel_h, data.kernel_w,
            x.shape, tuple(int(d) for d in np.asarray(output_shape).reshape(-1)),
            data.out_channels, None)
    except KernelRuntimeError as exc:
        raise KernelRuntimeError(f"{data.locator}: {exc}") from None


def _tconv_scatter(data: TransposeConvData, x: np.ndarray, output_shape: np.ndarray,
                   filt: np.ndarray) -> tuple[np.ndarray, TransposeConvGeometry]:
    """``Σ (x - z_in)·w`` scattered to ``out = in·stride - pad + tap`` (float64, exact).

    One GEMM computes, for every input pixel, its contribution through each (ky, kx) tap; the
    scatter-add is then a loop over the kh·kw taps of strided slice additions.
    """
    geo = _tconv_resolved_geometry(data, x, output_shape)
    weights = data.weights
    if weights is None:
        weights = _tconv_weights(filt, data.filter_offset)
    n, h, w, cin = x.shape
    xs = x.reshape(-1, cin).astype(np.float64)
    if data.input_zero_point:
        xs -= data.input_zero_point
    contrib = (xs @ weights).reshape(n, h, w, data.kernel_h, data.kernel_w, data.out_channels)
    full = np.zeros((n, geo.full_h, geo.full_w, data.out_channels))
    sh, sw = data.stride_h, data.stride_w
    for ky in range(data.kernel_h):
        for kx in range(data.kernel_w):
            full[:, ky:ky + (h - 1) * sh + 1:sh, kx:kx + (w - 1) * sw + 1:sw] += \
                contrib[:, :, :, ky, kx]
    _, oh, ow, _ = geo.output_shape
    return full[:, geo.pad_top:geo.pad_top + oh, geo.pad_left:geo.pad_left + ow], geo


def _tconv_float_scatter_in_order(data: TransposeConvData, x: NDArray[np.float32],
                                  taps: NDArray[np.float32], geo: TransposeConvGeometry
                                  ) -> NDArray[np.float32]:
    """reference/transpose_conv.h's float scatter, in float32 and in its order.

    The reference zeroes the output, then for in_y, in_x, in_channel (ascending), filter_y,
    filter_x, out_channel does ``output[out_y, out_x, oc] += input·filter`` (the product rounded
    to float32 before the addition; the runtimes do not fuse it).  One output element gets at
    most one input pixel through each tap, and a larger in_y (in_x) reaches it through a smaller
    filter_y (filter_x): its terms arrive by filter_y descending, filter_x descending,
    in_channel ascending.  Looping over the taps in that order, each adding one input channel's
    products into the strided sub-grid of the output the tap touches, sums every element in the
    same order -- vectorised over the input pixels and output channels.  The buffer covers the
    positions the reference skips (outside the output); they are cropped away.
    """
    n, h, w, cin = x.shape
    sh, sw = data.stride_h, data.stride_w
    full = np.zeros((n, geo.full_h, geo.full_w, data.out_channels), np.float32)
    term = np.empty((n, h, w, data.out_channels), np.float32)
    for ky in range(data.kernel_h - 1, -1, -1):
        for kx in range(data.kernel_w - 1, -1, -1):
            hit = full[:, ky:ky + (h - 1) * sh + 1:sh, kx:kx + (w - 1) * sw + 1:sw]
            for ic in range(cin):
                np.multiply(x[..., ic, None], taps[ky, kx, ic], out=term)
                hit += term
    _, oh, ow, _ = geo.output_shape
    return full[:, geo.pad_top:geo.pad_top + oh, geo.pad_left:geo.pad_left + ow]


@register(Op.TRANSPOSE_CONV, T.FLOAT32, prepare=prepare_transpose_conv)
def transpose_conv_float32(data: TransposeConvData, output_shape: NDArray[np.int32],
                           filt: NDArray[np.float32], x: NDArray[np.float32],
                           bias: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
    """``reference_ops::TransposeConv`` (float, reference/transpose_conv.h; LiteRT
    transpose_conv.cc EvalFloat<kReference> and TFLM transpose_conv.cc both call it): the
    float32 scatter in the reference's order (:func:`_tconv_float_scatter_in_order`), then
    ``acc + bias[oc]`` in float32 and the activation clamp -- the runtimes' bits."""
    geo = _tconv_resolved_geometry(data, x, output_shape)
    taps = data.weights if data.weights is not None else _tconv_float_taps(filt)
    acc = _tconv_float_scatter_in_order(data, np.asarray(x, np.float32), taps, geo)
    if bias is not None:  # the reference adds a bias only when there is one
        acc = acc + bias.astype(np.float32).reshape(-1)
    out: NDArray[np.float32] = np.clip(acc, np.float32(data.act_min), np.float32(data.act_max))
    return np.ascontiguousarray(out, dtype=np.float32)


@register(Op.TRANSPOSE_CONV, T.INT8, T.INT16, prepare=prepare_transpose_conv)
@register(Op.TRANSPOSE_CONV, T.UINT8, prepare=prepare_transpose_conv, emulations=("tflite",))
def transpose_conv_quantized(data: TransposeConvData, output_shape: NDArray[np.int32],
                             filt: np.ndarray, x: np.ndarray, bias: np.ndarray | None = None
                             ) -> np.ndarray:
    """``reference_integer_ops::TransposeConv`` (integer_ops/transpose_conv.h; int16 with an
    int32 or int64 scratch) and ``reference_ops::TransposeConv`` (uint8): scatter
    ``(x - z_in)·w`` into a zeroed scratch buffer, ``+ bias``, requantize per channel."""
    acc, _ = _tconv_scatter(data, x, output_shape, filt)
    if bias is not None:
        acc += bias.astype(np.float64).reshape(-1)  # exact integers in float64
    assert data.requant is not None
    return data.requant.apply(acc)
