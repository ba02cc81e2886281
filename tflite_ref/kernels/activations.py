"""Kernels: RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1, LEAKY_RELU, PRELU, HARD_SWISH, LOGISTIC, TANH,
SOFTMAX, LOG_SOFTMAX, ELU, GELU, L2_NORMALIZATION.

Sources (read, not copied), TFLite side = what LiteRT's ``BuiltinRefOpResolver`` registers:

* LiteRT ``tflite/kernels/activations.cc`` (Prepare/Eval of every op here except
  L2_NORMALIZATION, which is ``tflite/kernels/l2norm.cc``), ``tflite/kernels/register_ref.cc``.
* ``tensorflow/lite/kernels/internal/reference/``: ``reference_ops.h`` (ReluX), ``leaky_relu.h``,
  ``prelu.h``, ``hard_swish.h``, ``logistic.h``, ``tanh.h``, ``softmax.h``, ``log_softmax.h``,
  ``elu.h``, ``gelu.h``, ``l2normalization.h``, ``integer_ops/{logistic,tanh,log_softmax,
  l2normalization}.h``; ``internal/common.h`` (LUTPopulate, sigmoid_table_uint16,
  log_x_for_x_greater_than_or_equal_to_1, GetInvSqrtQuantizedMultiplierExp).
* TFLM ``micro/kernels/``: ``activations{,_common}.cc``, ``leaky_relu_common.cc``,
  ``prelu_common.cc``, ``hard_swish_common.cc``, ``logistic_common.cc``, ``tanh.cc``,
  ``softmax_common.cc``, ``log_softmax.cc``, ``elu.cc``, ``l2norm.cc``.
* Eigen (the float GELU is an Eigen array expression): ``GenericPacketMathTrig.h``
  ``ptanh_float``, ``SpecialFunctionsImpl.h`` ``generic_fast_erfc<float>``,
  ``GenericPacketMathFunctions.h`` ``pexp_float``.

Float kernels are bit-identical to both runtimes: where the C++ calls ``std::exp`` / ``std::log``
/ ``std::tanh`` / ``std::expm1`` of a float (LOGISTIC, TANH, SOFTMAX, LOG_SOFTMAX, ELU), the
kernels call that C function of this process's C library (:func:`unary.libm_float`) -- it is
neither NumPy's float32 function nor the correctly rounded value -- and every other operation is
a float32 operation in the C++ order.

Where TFLite and TFLM compute differently, prepare sets one field named after the difference
(``relu6_rescale``, ``_scale_arithmetic``, ``table_method``, ``elu_negative_branch``, the int16
softmax tables) and the eval functions are shared.  Everything that depends on the model --
multipliers, shifts, activation bounds, the 256-entry tables of the int8 LUT kernels (the
gemmlowp fixed-point int8 LOGISTIC/TANH of TFLM are tabulated the same way, and so are the
exponentials of 8-bit SOFTMAX, by difference to the row maximum) -- is computed in prepare; eval
is a few vectorised NumPy expressions over int64 values.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import numpy.typing as npt

from tflite_ref.errors import KernelRuntimeError
from tflite_ref.kernels.common import (
    generic_prepare,
    quant_params,
    type_range,
)
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.kernels.rnn import eigen_scalar_lanes, eigen_tanh
from tflite_ref.kernels.unary import libm_float
from tflite_ref.model.model import Tensor
from tflite_ref.quant.fixedpoint import (
    INT32_MIN,
    IntLike,
    count_leading_zeros,
    downscale_int32_to_int16_multiplier,
    exp_on_negative_values,
    get_inv_sqrt_quantized_multiplier_exp,
    get_reciprocal,
    log_x_for_x_greater_than_or_equal_to_1,
    logistic,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_greater_than_one,
    multiply_by_quantized_multiplier_smaller_than_one_exp,
    round_away,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    saturating_rounding_doubling_high_mul_int16,
    tanh,
    wrap_int16,
    wrap_int32,
)
from tflite_ref.quant.lut import (
    OutOfRange,
    c_erfcf,
    c_expf,
    c_expm1f,
    c_tanhf,
    logistic_f32,
    lut_lookup_int8,
    lut_lookup_int16,
    lut_populate_int8,
    lut_populate_int16,
    softmax_int16_luts,
)
from tflite_ref.quant.multipliers import (
    calculate_input_radius,
    checked_log2,
    logistic_tanh_int8_input_scaling,
    preprocess_log_softmax_scaling_exp,
    preprocess_softmax_scaling,
    quantize_multiplier,
    softmax_int16_effective_scale,
)

F32 = np.float32
I64 = npt.NDArray[np.int64]
_INT_DTYPES: dict[int, np.dtype[Any]] = {int(T.INT8): np.dtype(np.int8), int(T.UINT8): np.dtype(np.uint8),
               int(T.INT16): np.dtype(np.int16)}
TFLITE_ONLY = ("tflite",)


# =============================================================================================
# Shared helpers
# =============================================================================================
def _require_positive_scales(ctx: OpContext, **scales: float) -> None:
    for name, s in scales.items():
        if not (math.isfinite(s) and s > 0.0):
            ctx.fail(f"{name} scale must be positive and finite, got {s!r}")


def _require_zero_points(ctx: OpContext, why: str, **zero_points: int) -> None:
    for name, z in zero_points.items():
        if z != 0:
            ctx.fail(f"{name} zero point must be 0 ({why}), got {z}")


def _scale_arithmetic(ctx: OpContext) -> str:
    """How RELU, LEAKY_RELU, HARD_SWISH and PRELU form their real multipliers from float32 scales.

    LiteRT's activations.cc divides the float32 scales in float32 and widens the quotient.  The
    TFLM wheel we emulate (tflite_micro 0.dev20261023) divides in double: measured against it,
    every parameter set where the two choices give different outputs follows the double one --
    even though the snapshot of micro/kernels/{activations,leaky_relu,hard_swish}_common.cc we
    read (2026-08-20) still shows the float32 expressions; a newer activations_common.cc has the
    double one.  (TFLM's PRELU is double in both.)
    """
    return "float32" if ctx.emulate == "tflite" else "double"


def _real_multiplier(arithmetic: str, numerator: Sequence[float], denominator: float) -> float:
    """``Π numerator / denominator`` left to right, in float32 (then widened) or in double."""
    if arithmetic == "float32":
        value = F32(numerator[0])
        for factor in numerator[1:]:
            value = F32(value * F32(factor))
        return float(F32(value / F32(denominator)))
    real = float(numerator[0])
    for factor in numerator[1:]:
        real *= float(factor)
    return real / float(denominator)


def _rows(x: np.ndarray) -> np.ndarray:
    """View as [outer, depth] over the last axis (softmax-like ops run along it)."""
    depth = x.shape[-1] if x.ndim else 1
    return x.reshape(-1, depth)


# -- Eigen's float erfc, as LiteRT's x86 build computes it (GELU) -----------------------------
# unsupported/Eigen/src/SpecialFunctions/SpecialFunctionsImpl.h generic_fast_erfc<float> and
# Eigen/src/Core/arch/Default/GenericPacketMathFunctions.h pexp_float (Eigen ea13a98d, the
# commit LiteRT's cmake build pins), compiled for SSE without FMA: every pmadd is a float32 multiply then a float32
# add, preciprocal is a division, twoprod_low is Dekker's product with Veltkamp's split.  The
# packet lanes take exp(-x²) from Eigen's pexp_float, the scalar lanes (rnn.eigen_scalar_lanes)
# from std::exp, i.e. expf -- measured on ai-edge-litert 2.3.0, both bit for bit.
def _polevl(x: npt.NDArray[np.float32], coefficients: Sequence[float]
            ) -> npt.NDArray[np.float32]:
    """ppolevl: Horner's scheme, highest coefficient first, one multiply and one add a step."""
    p = np.full_like(x, F32(coefficients[0]))
    for c in coefficients[1:]:
        p = p * x + F32(c)
    return p


_ERFC_SMALL = (5.61802298761904239654541015625e-04, -4.91381669417023658752441406250e-03,
               2.67075151205062866210937500000e-02, -1.12800106406211853027343750000e-01,
               3.76122951507568359375000000000e-01, -1.12837910652160644531250000000e+00)
_ERFC_LARGE_NUM = (1.0208116471767425537109375e-01, 4.2920666933059692382812500e-01,
                   3.2379078865051269531250000e-01, 5.3971976041793823242187500e-02)
_ERFC_LARGE_DEN = (1.7251677811145782470703125e-02, 3.9137163758277893066406250e-01,
                   1.0, 6.2173241376876831054687500e-01, 9.5662862062454223632812500e-02)
_PEXP_POLY = (1.37449637986719608306884765625e-3, 8.36894474923610687255859375e-3,
              4.166965186595916748046875e-2, 0.16666518151760101318359375,
              0.49999988079071044921875)  # p6, p5, p4, p3, p2


def _eigen_pexp_float(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """pexp_float<Packet4f, false>: ``m = floor(x·log2(e) + 0.5)``, ``r = x − m·ln 2`` (Cephes'
    two-part ln 2), a degree-6 polynomial, scaled by 2^m (pldexp: exact but for the one final
    rounding, 0 below −104; ``pmax(·, x)`` only matters for NaN)."""
    p6, p5, p4, p3, p2 = (F32(c) for c in _PEXP_POLY)
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.minimum(x, F32(88.723))
        m = np.floor(v * F32(1.44269504088896341) + F32(0.5))
        r = m * F32(-0.693359375) + v
        r = m * F32(2.12194440e-4) + r
        r2 = r * r
        p_even = r2 * (r2 * p6 + p4) + p2
        p_odd = r2 * p5 + p3
        y = r2 * (r * p_odd + p_even) + (r + F32(1))
        exponent = np.nan_to_num(np.clip(m, -300, 300)).astype(np.int32)
        out = np.ldexp(y, exponent).astype(np.float32)
    result: npt.NDArray[np.float32] = np.where(x < F32(-104), F32(0), out).astype(np.float32)
    return result


def _eigen_twoprod_low(x: npt.NDArray[np.float32], xx: npt.NDArray[np.float32]
                       ) -> npt.NDArray[np.float32]:
    """twoprod_low(x, x, xx) without FMA: the rounding error ``x·x − xx`` of the float32 square,
    from Veltkamp's split of x (shift 12) and Dekker's four partial products."""
    gamma = F32(4097) * x
    hi = (x - gamma) + gamma
    lo = x - hi
    p = hi * hi + (-xx)
    p = hi * lo + p
    p = lo * hi + p
    p = lo * lo + p
    low: npt.NDArray[np.float32] = np.asarray(p, dtype=np.float32)
    return low


def eigen_erfc(x: npt.NDArray[np.float32], scalar_lanes: npt.NDArray[np.bool_] | None = None
               ) -> npt.NDArray[np.float32]:
    """``Eigen::ArrayXf::erfc()`` (generic_fast_erfc<float>), bit for bit: x clamped to ±11;
    ``|x| <= 1``: ``1 + x·S(x²)``; else ``exp(−x²)·(1 − x²_lo) · P(1/x²) / (x·Q(1/x²))`` (+2 for
    x < 0).  ``scalar_lanes`` (same shape as x) take exp(−x²) from ``expf``."""
    v = np.clip(np.asarray(x, dtype=np.float32), F32(-11), F32(11))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        x2 = v * v
        small = v * _polevl(x2, _ERFC_SMALL) + F32(1)
        exp_hi = _eigen_pexp_float(-x2)
        if scalar_lanes is not None and scalar_lanes.any():
            exp_hi[scalar_lanes] = libm_float("expf", np.exp, -x2[scalar_lanes])
        z = exp_hi - exp_hi * _eigen_twoprod_low(v, x2)  # pnmadd
        q2 = F32(1) / x2
        r = _polevl(q2, _ERFC_LARGE_NUM) / (v * _polevl(q2, _ERFC_LARGE_DEN))
        large = z * r + np.where(v < 0, F32(2), F32(0))
        out: npt.NDArray[np.float32] = np.where(F32(1) < x2, large, small).astype(np.float32)
    return out


# =============================================================================================
# RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1
# =============================================================================================
_RELU_BOUNDS = {  # the (act_min, act_max) each op passes to QuantizedReluX
    Op.RELU: (0.0, math.inf), Op.RELU6: (0.0, 6.0), Op.RELU_N1_TO_1: (-1.0, 1.0),
    Op.RELU_0_TO_1: (0.0, 1.0),
}


@dataclass(frozen=True, slots=True)
class ReluData:
    lo: float | int  # clamp bounds in the output type (float: act_min/act_max)
    hi: float | int
    # Integer kernels: "requantize" = z_out + MBQM(q - z_in) (TFLite, and TFLM's RELU);
    # "none" = clamp the raw input (TFLM's RELU6, doc §2.16).
    relu6_rescale: str = "requantize"
    multiplier: int = 0
    shift: int = 0
    input_zero_point: int = 0
    output_zero_point: int = 0
    dtype: np.dtype = np.dtype(np.float32)


def _prepare_relu(ctx: OpContext) -> ReluData:
    x, y = generic_prepare(ctx)
    act_min, act_max = _RELU_BOUNDS[Op(ctx.op.builtin_code)]
    if x.type == T.FLOAT32:
        return ReluData(act_min, act_max)
    dtype = _INT_DTYPES[x.type]
    qmin, qmax = type_range(dtype)
    s_in, z_in = quant_params(x)
    s_out, z_out = quant_params(y)
    _require_positive_scales(ctx, input=s_in, output=s_out)
    is_relu6 = ctx.op.builtin_code == Op.RELU6
    if ctx.emulate == "tflm" and is_relu6:
        # micro/kernels/activations_common.cc Relu6Prepare: bounds in the *input* quantization,
        # six = FloatToQuantizedType(6.0f, s_in, z_in) = clamp(round(6.0f / s_in) + z_in); the
        # eval clamps q to [z_in, six] and never looks at the output's quantization.
        six = int(round_away(F32(6.0) / F32(s_in))) + z_in
        return ReluData(z_in, min(max(six, qmin), qmax), "none", dtype=dtype)
    if x.type == T.INT16 and (ctx.emulate == "tflite" or not is_relu6):
        # activations.cc ReluPrepare; TFLM ReluPrepare (TFLM's RELU6 has no such check)
        _require_zero_points(ctx, "int16 RELU", input=z_in, output=z_out)
    # activations.cc ReluPrepare / TFLM CalculateReluOpData: s_in / s_out
    multiplier, shift = quantize_multiplier(_real_multiplier(_scale_arithmetic(ctx), [s_in],
                                                             s_out))
    # QuantizedReluX: bound = z_out + (int32) roundf(float(act) / s_out), then the type range
    lo = max(qmin, z_out + int(round_away(F32(act_min) / F32(s_out))))
    hi = qmax if math.isinf(act_max) else min(qmax, z_out + int(round_away(F32(act_max)
                                                                          / F32(s_out))))
    return ReluData(lo, hi, "requantize", multiplier, shift, z_in, z_out, dtype)


def relu_float32(data: ReluData, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """reference_ops::Relu / Relu6 / Relu1 / Relu0To1: a clamp."""
    return np.clip(x, data.lo, data.hi).astype(np.float32)


def relu_integer(data: ReluData, x: np.ndarray) -> np.ndarray:
    """reference_ops::ReluX (ReluParams) = TFLM ReluQuantized:
    ``clamp(z_out + MultiplyByQuantizedMultiplier(q − z_in, m, shift), lo, hi)``; TFLM's RELU6
    clamps ``q`` to ``[z_in, six]`` without rescaling."""
    v: npt.NDArray[np.int64] = x.astype(np.int64)
    if data.relu6_rescale == "requantize":
        v = data.output_zero_point + np.asarray(multiply_by_quantized_multiplier(
            v - data.input_zero_point, data.multiplier, data.shift), dtype=np.int64)
    return np.clip(v, data.lo, data.hi).astype(data.dtype)


for _op in (Op.RELU, Op.RELU6):
    register(_op, T.FLOAT32, prepare=_prepare_relu)(relu_float32)
    register(_op, T.INT8, T.INT16, prepare=_prepare_relu)(relu_integer)
    register(_op, T.UINT8, prepare=_prepare_relu, emulations=TFLITE_ONLY)(relu_integer)
# TFLM has no RELU_N1_TO_1 / RELU_0_TO_1 kernels; LiteRT has float32, uint8 and int8 only.
for _op in (Op.RELU_N1_TO_1, Op.RELU_0_TO_1):
    register(_op, T.FLOAT32, prepare=_prepare_relu, emulations=TFLITE_ONLY)(relu_float32)
    register(_op, T.INT8, T.UINT8, prepare=_prepare_relu, emulations=TFLITE_ONLY)(relu_integer)
prepare_relu = prepare_relu6 = prepare_relu_n1_to_1 = prepare_relu_0_to_1 = _prepare_relu


# =============================================================================================
# LEAKY_RELU
# =============================================================================================
@dataclass(frozen=True, slots=True)
class LeakyReluData:
    alpha: float
    multiplier_identity: int = 0
    shift_identity: int = 0
    multiplier_alpha: int = 0  # |m_alpha|; the sign of alpha is kept in negate_alpha
    shift_alpha: int = 0
    negate_alpha: bool = False
    input_zero_point: int = 0
    output_zero_point: int = 0
    dtype: np.dtype = np.dtype(np.float32)


def prepare_leaky_relu(ctx: OpContext) -> LeakyReluData:
    x, y = generic_prepare(ctx)
    alpha = F32(ctx.options.get("alpha", 0.0))
    if x.type == T.FLOAT32:
        return LeakyReluData(float(alpha))
    s_in, z_in = quant_params(x)
    s_out, z_out = quant_params(y)
    _require_positive_scales(ctx, input=s_in, output=s_out)
    if x.type == T.INT16 and ctx.emulate == "tflite":
        # activations.cc LeakyReluPrepare (TFLM's leaky_relu_common.cc does not check)
        _require_zero_points(ctx, "int16 LEAKY_RELU", input=z_in, output=z_out)
    # LeakyReluPrepare / TFLM CalculateOpDataLeakyRelu: (s_in · alpha) / s_out and s_in / s_out
    arithmetic = _scale_arithmetic(ctx)
    m_alpha, s_alpha = quantize_multiplier(_real_multiplier(arithmetic, [s_in, float(alpha)], s_out))
    m_id, s_id = quantize_multiplier(_real_multiplier(arithmetic, [s_in], s_out))
    return LeakyReluData(float(alpha), m_id, s_id, abs(m_alpha), s_alpha, m_alpha < 0, z_in,
                         z_out, _INT_DTYPES[x.type])


@register(Op.LEAKY_RELU, T.FLOAT32, prepare=prepare_leaky_relu)
def leaky_relu_float32(data: LeakyReluData, x: npt.NDArray[np.float32]
                       ) -> npt.NDArray[np.float32]:
    """reference_ops::LeakyRelu: ``x > 0 ? x : x · alpha``."""
    return np.where(x > 0, x, x * F32(data.alpha)).astype(np.float32)


@register(Op.LEAKY_RELU, T.UINT8, prepare=prepare_leaky_relu, emulations=TFLITE_ONLY)
@register(Op.LEAKY_RELU, T.INT8, T.INT16, prepare=prepare_leaky_relu)
def leaky_relu_integer(data: LeakyReluData, x: np.ndarray) -> np.ndarray:
    """reference_ops::QuantizeLeakyRelu: identity or alpha multiplier by the sign of ``q − z_in``
    (a negative alpha multiplier is applied as its magnitude, then negated)."""
    v = x.astype(np.int64) - data.input_zero_point
    identity = multiply_by_quantized_multiplier(v, data.multiplier_identity, data.shift_identity)
    scaled_alpha = multiply_by_quantized_multiplier(v, data.multiplier_alpha, data.shift_alpha)
    if data.negate_alpha:
        scaled_alpha = -np.asarray(scaled_alpha)
    out = data.output_zero_point + np.where(v >= 0, identity, scaled_alpha)
    result: np.ndarray = np.clip(out, *type_range(data.dtype)).astype(data.dtype)
    return result


# =============================================================================================
# PRELU
# =============================================================================================
@dataclass(frozen=True, slots=True)
class PreluData:
    multiplier_1: int = 0  # for q >= z_in: s_in / s_out
    shift_1: int = 0
    multiplier_2: int = 0  # for q < z_in: s_in · s_alpha / s_out
    shift_2: int = 0
    input_zero_point: int = 0
    alpha_zero_point: int = 0
    output_zero_point: int = 0
    dtype: np.dtype = np.dtype(np.float32)


def prepare_prelu(ctx: OpContext) -> PreluData:
    if ctx.num_inputs != 2 or ctx.num_outputs != 1:
        ctx.fail(f"expects 2 inputs and 1 output, got {ctx.num_inputs} and {ctx.num_outputs}")
    x, alpha, y = ctx.require_input(0), ctx.require_input(1), ctx.output(0)
    in_shape, alpha_shape = ctx.input_shape(0), ctx.input_shape(1)
    try:
        out_shape = np.broadcast_shapes(in_shape, alpha_shape)
    except ValueError:
        ctx.fail(f"alpha shape {list(alpha_shape)} does not broadcast to input {list(in_shape)}")
    if tuple(out_shape) != tuple(in_shape):
        # PreluPrepare: "the output shape should always be the same as the input shape"
        ctx.fail(f"alpha shape {list(alpha_shape)} broadcasts the input {list(in_shape)} to "
                 f"{list(out_shape)}")
    if y.type != x.type:
        ctx.fail(f"input is {ctx.dtype_name(x)} but output is {ctx.dtype_name(y)}")
    want_alpha = T.INT8 if x.type == T.INT16 else x.type  # int16 PRELU reads an int8 alpha
    if alpha.type != want_alpha:
        ctx.unsupported(f"{ctx.dtype_name(x)} PRELU needs a {T(want_alpha).name} alpha, got "
                        f"{ctx.dtype_name(alpha)}")
    ctx.set_output_shape(0, in_shape)
    if x.type == T.FLOAT32:
        return PreluData()
    s_in, z_in = quant_params(x)
    s_a, z_a = quant_params(alpha)
    s_out, z_out = quant_params(y)
    _require_positive_scales(ctx, input=s_in, alpha=s_a, output=s_out)
    # LiteRT PreluPrepare divides the float32 scales in float32; TFLM CalculatePreluParams
    # widens them to double first.
    arithmetic = _scale_arithmetic(ctx)
    m1, sh1 = quantize_multiplier(_real_multiplier(arithmetic, [s_in], s_out))
    m2, sh2 = quantize_multiplier(_real_multiplier(arithmetic, [s_in, s_a], s_out))
    return PreluData(m1, sh1, m2, sh2, z_in, z_a, z_out, _INT_DTYPES[x.type])


@register(Op.PRELU, T.FLOAT32, prepare=prepare_prelu)
def prelu_float32(data: PreluData, x: npt.NDArray[np.float32], alpha: npt.NDArray[np.float32]
                  ) -> npt.NDArray[np.float32]:
    """``x >= 0 ? x : x · alpha`` with alpha broadcast to the input."""
    return np.where(x >= 0, x, x * alpha).astype(np.float32)


@register(Op.PRELU, T.UINT8, prepare=prepare_prelu, emulations=TFLITE_ONLY)
@register(Op.PRELU, T.INT8, T.INT16, prepare=prepare_prelu)
def prelu_integer(data: PreluData, x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """reference_ops::Prelu / BroadcastPrelu4DSlow: ``v = q − z_in``; ``v >= 0``:
    ``MBQM(v, m1)``, else ``MBQM(v · (α − z_α), m2)``; then ``+ z_out`` and the type clamp."""
    v = x.astype(np.int64) - data.input_zero_point
    a = alpha.astype(np.int64) - data.alpha_zero_point
    positive = multiply_by_quantized_multiplier(v, data.multiplier_1, data.shift_1)
    negative = multiply_by_quantized_multiplier(wrap_int32(v * a), data.multiplier_2,
                                                data.shift_2)
    out = np.where(v >= 0, positive, negative) + data.output_zero_point
    result: np.ndarray = np.clip(out, *type_range(data.dtype)).astype(data.dtype)
    return result


# =============================================================================================
# HARD_SWISH
# =============================================================================================
@dataclass(frozen=True, slots=True)
class HardSwishData:
    input_zero_point: int = 0
    output_zero_point: int = 0
    output_multiplier_int16: int = 0
    output_multiplier_exponent: int = 0
    reluish_multiplier_int16: int = 0
    reluish_multiplier_exponent: int = 0
    dtype: np.dtype = np.dtype(np.float32)
    # hard_swish_reference of every 8-bit input value (value order): eval is a lookup
    table: np.ndarray | None = None


def prepare_hard_swish(ctx: OpContext) -> HardSwishData:
    x, y = generic_prepare(ctx)
    if x.type == T.FLOAT32:
        return HardSwishData()
    s_in, z_in = quant_params(x)
    s_out, z_out = quant_params(y)
    _require_positive_scales(ctx, input=s_in, output=s_out)
    # activations.cc HardSwishPrepare / TFLM hard_swish_common.cc: hires = s_in / 128 and
    # reluish = 3 / 32768 are exact in float32; the two quotients follow _scale_arithmetic.
    arithmetic = _scale_arithmetic(ctx)
    hires_input_scale = F32(1.0 / 128.0) * F32(s_in)
    reluish_scale = F32(3.0) / F32(32768.0)
    out_m32, out_exp = quantize_multiplier(_real_multiplier(arithmetic,
                                                            [float(hires_input_scale)], s_out))
    if out_exp > 0:
        ctx.fail(f"output scale {s_out} is too small for input scale {s_in} "
                 f"(output multiplier exponent {out_exp} > 0)")
    relu_m32, relu_exp = quantize_multiplier(_real_multiplier(
        arithmetic, [float(hires_input_scale)], float(reluish_scale)))
    dtype = _INT_DTYPES[x.type]
    params = HardSwishData(z_in, z_out, int(downscale_int32_to_int16_multiplier(out_m32)),
                           out_exp, int(downscale_int32_to_int16_multiplier(relu_m32)),
                           relu_exp, dtype)
    # The kernel is a function of the 8-bit input value alone, so evaluating it once for all 256
    # values gives bit-identical results and a cheap eval.
    qmin, qmax = type_range(dtype)
    table = hard_swish_reference(params, np.arange(qmin, qmax + 1).astype(dtype))
    return dataclasses.replace(params, table=table)


@register(Op.HARD_SWISH, T.FLOAT32, prepare=prepare_hard_swish)
def hard_swish_float32(data: HardSwishData, x: npt.NDArray[np.float32]
                       ) -> npt.NDArray[np.float32]:
    """reference_ops::HardSwish (float): ``x · min(6, max(0, x + 3)) / 6`` in that order."""
    relu6 = np.minimum(F32(6), np.maximum(F32(0), x + F32(3)))
    out: npt.NDArray[np.float32] = ((x * relu6) / F32(6)).astype(np.float32)
    return out


def _saturating_left_shift_int16(v: I64, amount: int) -> I64:
    # hard_swish.h SaturatingLeftShift: int64 product, clamped to int16
    return np.clip(v * (1 << amount), -32768, 32767)


def hard_swish_reference(data: HardSwishData, x: np.ndarray) -> np.ndarray:
    """reference_ops::HardSwish (quantized), every intermediate an int16 (doc §2.13).

    ``x · relu6(x + 3) / 6`` as the product of the input rescaled to the output scale
    (``preshift``) and a "reluish" factor in [0, 1) in Q0.15; the last product truncates
    (``SaturatingDoublingHighMul`` has no rounding nudge).
    """
    srdhm16 = saturating_rounding_doubling_high_mul_int16
    v = x.astype(np.int64) - data.input_zero_point  # fits int16 for 8-bit inputs
    hires = v * (1 << 7)  # |v| <= 255, so 128·v still fits int16
    preshift = np.asarray(srdhm16(hires, data.output_multiplier_int16), dtype=np.int64)
    reluish = hires
    if data.reluish_multiplier_exponent > 0:
        reluish = _saturating_left_shift_int16(reluish, data.reluish_multiplier_exponent - 1)
    reluish = np.asarray(srdhm16(reluish, data.reluish_multiplier_int16), dtype=np.int64)
    if data.reluish_multiplier_exponent > 0:
        reluish = _saturating_left_shift_int16(reluish, 1)
    elif data.reluish_multiplier_exponent < 0:
        reluish = np.asarray(rounding_divide_by_pot(reluish, -data.reluish_multiplier_exponent))
    reluish = (reluish + (1 << 15)) >> 1  # [-1, 1) in Q0.15 -> [0, 1)
    product = reluish * preshift  # reluish >= 0: the INT16_MIN² overflow case cannot occur
    preshift_output = np.where(product < 0, -((-product) >> 15), product >> 15)  # C `/ 2^15`
    out = np.asarray(rounding_divide_by_pot(preshift_output, -data.output_multiplier_exponent))
    out = np.asarray(wrap_int16(out + data.output_zero_point))  # `int16 += zero_point`
    result: np.ndarray = np.clip(out, *type_range(data.dtype)).astype(data.dtype)
    return result


@register(Op.HARD_SWISH, T.UINT8, prepare=prepare_hard_swish, emulations=TFLITE_ONLY)
@register(Op.HARD_SWISH, T.INT8, prepare=prepare_hard_swish)
def hard_swish_integer(data: HardSwishData, x: np.ndarray) -> np.ndarray:
    """:func:`hard_swish_reference`, tabulated in prepare."""
    return lut_lookup_int8(x, data.table)  # type: ignore[arg-type]


# =============================================================================================
# LOGISTIC and TANH
# =============================================================================================
# common.h sigmoid_table_uint16: sigmoid(i/24) in Q0.16 for i = 0..255, used by the int16
# LOGISTIC and TANH kernels (tanh(x) = 2·sigmoid(2x) − 1).  The upstream entries are not
# round(sigmoid(i/24)·2^16) (44 of them differ by one), so the table is data, kept verbatim.
SIGMOID_TABLE_UINT16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794,
    41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443,
    48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374,
    54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544,
    58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279,
    61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990,
    63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030,
    64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019,
    65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234,
    65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476,
    65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498, 65500, 65501,
    65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529,
    65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532,
    65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535], dtype=np.int64)
SIGMOID_TABLE_UINT16.flags.writeable = False


@dataclass(frozen=True, slots=True)
class SigmoidTanhData:
    """LOGISTIC / TANH: a 256-entry table for 8-bit types, or the int16 input rescaling."""

    table: np.ndarray | None = None  # value order: entry i is for q = qmin + i
    input_multiplier: int = 0  # int16 only
    input_left_shift: int = 0


def _int16_sigmoid_tanh_scaling(ctx: OpContext, x: Tensor, y: Tensor, is_tanh: bool
                                ) -> SigmoidTanhData:
    """Shared int16 Prepare of LOGISTIC (SigmoidPrepare) and TANH (TanhPrepare), identical in
    LiteRT and TFLM: a power-of-two input scale 2^-12 (tanh also 2^-11) takes the ×3 path,
    any other scale becomes a multiplier that maps it to 1/(3·4096)."""
    s_in, z_in = quant_params(x)
    s_out, z_out = quant_params(y)
    _require_zero_points(ctx, "int16 LOGISTIC/TANH", input=z_in, output=z_out)
    _require_positive_scales(ctx, input=s_in, output=s_out)
    pot, log2_in = checked_log2(s_in)
    left_shift = (15 - 3) + log2_in
    pot = pot and (left_shift in (0, 1) if is_tanh else left_shift == 0)
    multiplier = 0  # the kernels turn 0 into 3 << left_shift
    if not pot:
        real = s_in * 4096.0 * 3.0  # double
        left_shift = 0
        while real <= 32767.0 / 2.0 and left_shift <= 30:
            left_shift += 1
            real *= 2.0
        multiplier = int(real)  # static_cast<int32_t>: truncation
    ok, log2_out = checked_log2(s_out)
    if not ok or log2_out != -15:
        ctx.fail(f"int16 output scale must be 2^-15, got {s_out}")
    return SigmoidTanhData(None, multiplier, left_shift)


def _int16_table_index(data: SigmoidTanhData, x: np.ndarray) -> I64:
    """``(q · multiplier + round) >> left_shift`` of reference_integer_ops Logistic/Tanh(int16)."""
    multiplier, left_shift = data.input_multiplier, data.input_left_shift
    if multiplier == 0:  # power-of-two case
        multiplier, left_shift = 3 << left_shift, 0
    rounding = (1 << (left_shift - 1)) if left_shift > 0 else 0
    return np.asarray(wrap_int32(x.astype(np.int64) * multiplier + rounding)) >> left_shift


def _sigmoid_table_interpolate(abs_x: I64, fraction_bits: int, saturated: int) -> I64:
    """``(ua << b) + ut · (ub − ua)`` between entries ``abs_x >> b`` and the next one (b =
    ``fraction_bits``), or ``saturated`` past the table's end."""
    uh = abs_x >> fraction_bits
    idx = np.minimum(uh, 254)
    ua, ub = SIGMOID_TABLE_UINT16[idx], SIGMOID_TABLE_UINT16[idx + 1]
    ut = abs_x & ((1 << fraction_bits) - 1)
    return np.where(uh >= 255, saturated, (ua << fraction_bits) + ut * (ub - ua))


def _gemmlowp_int8_table(input_scale: float, input_zero_point: int, function: str
                         ) -> npt.NDArray[np.int8]:
    """TFLM's int8 LOGISTIC / TANH (reference_integer_ops::Logistic / Tanh, int8), evaluated for
    all 256 inputs: ``x = q − z_in`` saturates beyond ±radius, else is rescaled to Q4.27 and
    fed to gemmlowp's fixed-point logistic / tanh; the Q0.31 result is rounded to the implied
    output quantization (logistic 1/256 with z = −128, tanh 1/128 with z = 0)."""
    multiplier, left_shift, radius = logistic_tanh_int8_input_scaling(input_scale)
    v = np.arange(-128, 128, dtype=np.int64) - input_zero_point
    inside = (v > -radius) & (v < radius)
    x_q4 = np.asarray(multiply_by_quantized_multiplier(np.where(inside, v, 0), multiplier,
                                                       left_shift))
    if function == "logistic":
        y = np.asarray(rounding_divide_by_pot(logistic(x_q4, 4), 31 - 8)) - 128
    else:
        y = np.asarray(rounding_divide_by_pot(tanh(x_q4, 4), 31 - 7))
    y = np.where(v <= -radius, -128, np.where(v >= radius, 127, y))
    out: npt.NDArray[np.int8] = np.clip(y, -128, 127).astype(np.int8)
    return out


def _prepare_sigmoid_tanh(ctx: OpContext, function: str) -> SigmoidTanhData:
    x, y = generic_prepare(ctx)
    if x.type == T.FLOAT32:
        return SigmoidTanhData()
    if x.type == T.INT16:
        if function == "logistic" and ctx.emulate == "tflite":
            s_out, z_out = quant_params(y)  # activations.cc SigmoidPrepare, kReference branch
            if s_out != 1.0 / 32768 or z_out != 0:
                ctx.fail(f"int16 LOGISTIC output must have scale 1/32768 and zero point 0, "
                         f"got {s_out} and {z_out}")
        return _int16_sigmoid_tanh_scaling(ctx, x, y, function == "tanh")
    s_in, z_in = quant_params(x)
    s_out, z_out = quant_params(y)
    _require_positive_scales(ctx, input=s_in, output=s_out)
    dtype = _INT_DTYPES[x.type]
    # TFLite builds a float LUT (LUTPopulate); TFLM computes in gemmlowp fixed point, which we
    # tabulate: both become a 256-entry table (differences: doc §2.9).
    table_method = "float_lut" if ctx.emulate == "tflite" else "gemmlowp_fixed_point"
    if table_method == "gemmlowp_fixed_point":
        if function == "logistic" and z_out != -128:  # logistic_common.cc; TFLM's TANH: none
            ctx.fail(f"int8 LOGISTIC output zero point must be -128, got {z_out}")
        return SigmoidTanhData(_gemmlowp_int8_table(s_in, z_in, function))
    if function == "logistic":
        if s_out != 1.0 / 256:  # SigmoidPrepare: TF_LITE_ENSURE(output scale == 1/256)
            ctx.fail(f"LOGISTIC output scale must be 1/256, got {s_out}")
        transform: Callable[[np.ndarray], np.ndarray] = logistic_f32
    else:
        transform = c_tanhf  # TanhPrepare: std::tanh(float)
    return SigmoidTanhData(lut_populate_int8(s_in, z_in, s_out, z_out, transform, dtype=dtype))


def prepare_logistic(ctx: OpContext) -> SigmoidTanhData:
    return _prepare_sigmoid_tanh(ctx, "logistic")


def prepare_tanh(ctx: OpContext) -> SigmoidTanhData:
    return _prepare_sigmoid_tanh(ctx, "tanh")


@register(Op.LOGISTIC, T.FLOAT32, prepare=prepare_logistic)
def logistic_float32(data: SigmoidTanhData, x: npt.NDArray[np.float32]
                     ) -> npt.NDArray[np.float32]:
    """reference_ops::Logistic (float, reference/logistic.h; TFLM's copy is the same): 1 above
    16.619047, ``std::exp(x)`` below −9, else ``1.f / (1.f + std::exp(−x))`` in float32 --
    ``std::exp(float)`` is the C library's ``expf`` (:func:`unary.libm_float`), bit for bit."""
    x = np.asarray(x, dtype=np.float32)
    upper, lower = x > F32(16.619047164916992), x < F32(-9)
    # One expf per element: of x below the lower cutoff, of -x in the middle (and 1 above).
    e = libm_float("expf", np.exp, np.where(lower, x, -x))
    with np.errstate(over="ignore"):
        middle = F32(1) / (F32(1) + e)
    return np.where(upper, F32(1), np.where(lower, e, middle)).astype(np.float32)


@register(Op.TANH, T.FLOAT32, prepare=prepare_tanh)
def tanh_float32(data: SigmoidTanhData, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """reference_ops::Tanh (float, reference/tanh.h; both runtimes): ``std::tanh(float)``, the
    C library's ``tanhf`` -- glibc's is not correctly rounded (~5 % of arguments in [-10, 10]
    differ from the float64 tanh rounded to float32), so it is called itself."""
    return libm_float("tanhf", np.tanh, x)


@register(Op.LOGISTIC, T.UINT8, prepare=prepare_logistic, emulations=TFLITE_ONLY)
@register(Op.LOGISTIC, T.INT8, prepare=prepare_logistic)
@register(Op.TANH, T.UINT8, prepare=prepare_tanh, emulations=TFLITE_ONLY)
@register(Op.TANH, T.INT8, prepare=prepare_tanh)
def sigmoid_tanh_8bit(data: SigmoidTanhData, x: np.ndarray) -> np.ndarray:
    """``LookupTable``: one table entry per 8-bit input value."""
    return lut_lookup_int8(x, data.table)  # type: ignore[arg-type]


logistic_int8 = tanh_int8 = sigmoid_tanh_8bit


@register(Op.LOGISTIC, T.INT16, prepare=prepare_logistic)
def logistic_int16(data: SigmoidTanhData, x: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """reference_integer_ops::Logistic (int16): the input in Q?.9 indexes sigmoid(i/24) with
    9-bit linear interpolation; negative inputs use sigmoid(−x) = 1 − sigmoid(x)."""
    xin = _int16_table_index(data, x)
    result = _sigmoid_table_interpolate(np.abs(xin), 9, 0x7FFF << 10)
    result = np.where(xin >= 0, result + (1 << 9), (1 << (16 + 9)) - result + (1 << 9) - 1)
    return np.asarray(wrap_int16(result >> 10)).astype(np.int16)


@register(Op.TANH, T.INT16, prepare=prepare_tanh)
def tanh_int16(data: SigmoidTanhData, x: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """reference_integer_ops::Tanh (int16): ``2·sigmoid(2x) − 1`` from the same table with 8-bit
    interpolation, odd-symmetric."""
    xin = _int16_table_index(data, x)
    result = _sigmoid_table_interpolate(np.abs(xin), 8, 0xFFFF << 8)
    result = np.where(xin >= 0, result - (1 << (14 + 9)) + (1 << (9 - 2)),
                      -result + (1 << (14 + 9)) + (1 << (9 - 2)) - 1)
    return np.asarray(wrap_int16(result >> (9 - 1))).astype(np.int16)


# =============================================================================================
# SOFTMAX
# =============================================================================================
@dataclass(frozen=True, slots=True)
class SoftmaxData:
    beta: float = 1.0
    # 8-bit input (gemmlowp reference kernel, any output type)
    input_multiplier: int = 0
    input_left_shift: int = 0
    diff_min: int = 0
    output_min: int = 0  # numeric_limits<OutputT>::min(): the implied output zero point
    output_bits: int = 8
    output_dtype: np.dtype = np.dtype(np.float32)
    # int16 input (SoftmaxInt16): exp and 1/(1+x) tables
    exp_lut: np.ndarray | None = None
    one_over_one_plus_x_lut: np.ndarray | None = None
    locator: str = ""
    # 8-bit input: exp of every difference max - q = 0..255 (see _softmax_8bit_tables), in Q0.31
    # and as the Q12.19 term of the row sum; output_max = numeric_limits<OutputT>::max()
    exp_table: np.ndarray | None = None
    exp_sum_table: np.ndarray | None = None
    output_max: int = 0


@functools.lru_cache(maxsize=2)
def _softmax_int16_luts(emulate: str) -> tuple[np.ndarray, np.ndarray]:
    """The int16 SOFTMAX tables depend only on the emulated runtime: build them once each."""
    tables = softmax_int16_luts(emulate=emulate)  # type: ignore[arg-type]
    for table in tables:
        table.flags.writeable = False
    return tables


def _near(a: float, b: float, rel: float) -> bool:
    """``TF_LITE_ENSURE_NEAR(a, b, rel · b)`` evaluated in float32."""
    return bool(abs(F32(a) - F32(b)) <= F32(rel) * F32(b))


def _check_softmax_output(ctx: OpContext, in_type: int, out_type: int, s_out: float,
                          z_out: int) -> None:
    """Output-quantization checks of LiteRT SoftmaxPrepare and TFLM CalculateSoftmaxParams."""
    def need(ok: bool, what: str) -> None:
        if not ok:
            ctx.fail(f"{T(in_type).name}->{T(out_type).name} SOFTMAX output must have {what}, got "
                     f"scale {s_out} and zero point {z_out}")

    tflm = ctx.emulate == "tflm"
    if in_type == T.INT8 and out_type == T.INT8:
        need(z_out == -128, "zero point -128")
        if tflm:  # TFLM: exact equality, stricter than LiteRT's 0.1 %
            need(F32(s_out) == F32(1.0) / F32(256), "scale exactly 1/256")
        else:
            need(_near(s_out, 1.0 / 256, 0.001), "scale 1/256 (within 0.1 %)")
    elif in_type == T.INT8 and out_type == T.INT16 and tflm:  # LiteRT checks nothing here
        need(z_out == -32768, "zero point -32768")
        need(_near(s_out, 1.0 / 65536, 0.001), "scale 1/65536 (within 0.1 %)")
    elif in_type == T.INT16:
        need(z_out == 0, "zero point 0")
        need(_near(s_out, 1.0 / 32768, 0.001), "scale 1/32768 (within 0.1 %)")


def prepare_softmax(ctx: OpContext) -> SoftmaxData:
    if ctx.num_inputs != 1 or ctx.num_outputs != 1:
        ctx.fail(f"expects 1 input and 1 output, got {ctx.num_inputs} and {ctx.num_outputs}")
    x, y = ctx.require_input(0), ctx.output(0)
    shape = ctx.input_shape(0)
    if len(shape) < 1:
        ctx.fail("input must have at least one dimension")
    ctx.set_output_shape(0, shape)
    beta = float(F32(ctx.options.get("beta", 0.0)))
    if x.type == T.FLOAT32 or y.type == T.FLOAT32:
        if x.type != y.type:
            ctx.fail(f"input is {ctx.dtype_name(x)} but output is {ctx.dtype_name(y)}")
        return SoftmaxData(beta)
    combos = {(T.INT8, T.INT8), (T.INT8, T.INT16), (T.INT16, T.INT16)}
    if ctx.emulate == "tflite":
        combos |= {(T.UINT8, T.UINT8), (T.UINT8, T.INT16)}
    if (x.type, y.type) not in combos:
        ctx.unsupported(f"SOFTMAX {ctx.describe_types()} is not supported")
    s_in, z_in = quant_params(x)
    s_out, z_out = quant_params(y)
    _check_softmax_output(ctx, x.type, y.type, s_out, z_out)
    out_dtype = _INT_DTYPES[y.type]
    if x.type == T.INT16:
        _require_zero_points(ctx, "int16 SOFTMAX", input=z_in)
        # The tables: LiteRT builds them with the double LUTPopulate overload, TFLM with the
        # float one (quant.lut.softmax_int16_luts), and the input rescale differs likewise.
        exp_lut, recip_lut = _softmax_int16_luts(ctx.emulate)
        real = softmax_int16_effective_scale(s_in, beta, emulate=ctx.emulate)  # type: ignore
        multiplier, shift = quantize_multiplier(real)
        return SoftmaxData(beta, multiplier, shift, output_dtype=out_dtype, exp_lut=exp_lut,
                           one_over_one_plus_x_lut=recip_lut)
    # 8-bit input: softmax.h Softmax<InputT, OutputT>, both runtimes.  The scaled difference is
    # Q5.26 (kScaledDiffIntegerBits = 5); differences below diff_min contribute nothing.
    if not beta * s_in * float(1 << 26) > 1.0:
        ctx.fail(f"beta {beta} · input scale {s_in} is too small for the fixed-point softmax "
                 "(QuantizeMultiplierGreaterThanOne needs beta · scale · 2^26 > 1)")
    multiplier, left_shift = preprocess_softmax_scaling(beta, s_in, 5)
    diff_min = -calculate_input_radius(5, left_shift)
    out_min, out_max = type_range(out_dtype)
    exp_table, exp_sum_table = _softmax_8bit_tables(multiplier, left_shift, diff_min)
    return SoftmaxData(beta, multiplier, left_shift, diff_min, out_min, out_dtype.itemsize * 8,
                       out_dtype, locator=ctx.op.locator, exp_table=exp_table,
                       exp_sum_table=exp_sum_table, output_max=out_max)


@register(Op.SOFTMAX, T.FLOAT32, prepare=prepare_softmax)
def softmax_float32(data: SoftmaxData, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """reference_ops::Softmax (float, reference/softmax.h; both runtimes): ``e = exp((x − max)
    · beta)``, divided by the sum of the row accumulated in index order in float32.

    ``std::exp`` of a float is the C library's ``expf``.  Neither NumPy's float32 ``exp`` (a
    SIMD approximation) nor the float64 exp rounded to float32 is that function (glibc's
    ``expf`` is not correctly rounded: ~0.07 % of arguments differ), so it is called itself
    (:func:`unary.libm_float`)."""
    rows = _rows(x)
    arg = (rows - rows.max(axis=1, keepdims=True)) * F32(data.beta)  # float32, as the C++
    e = libm_float("expf", np.exp, arg)
    total = np.cumsum(e, axis=1, dtype=np.float32)[:, -1:]  # sequential, like the C loop
    return (e / total).astype(np.float32).reshape(x.shape)


def _softmax_8bit_tables(input_multiplier: int, input_left_shift: int, diff_min: int
                         ) -> tuple[I64, I64]:
    """The exponentials of Softmax<InputT, OutputT> for every difference ``d = max − q``.

    For 8-bit input the difference ``q − max`` of an element to its row's maximum is one of
    0, −1, ..., −255, and everything softmax.h computes from it alone -- the rescale
    ``MultiplyByQuantizedMultiplierGreaterThanOne(q − max, m, shift)`` to Q5.26, the test
    against ``diff_min``, ``exp_on_negative_values`` in Q0.31 and its ``Rescale<12>`` (a
    RoundingDivideByPOT by 12) into the Q12.19 row sum -- is a function of it and of the model's
    parameters, with no other input.  Tabulating it for the 256 differences in prepare therefore
    gives eval the very values the C++ computes element by element.  An element below
    ``diff_min`` gets 0 in both tables: it adds 0 to the sum (the C++ skips it) and its output
    ``RDBPOT(SRDHM(scale, 0), e) + min = min`` is what the C++ writes for it.
    """
    diff = -np.arange(256, dtype=np.int64)
    kept = diff >= diff_min
    # The rescale of a difference below diff_min may wrap in int32; it is never used.
    scaled = multiply_by_quantized_multiplier_greater_than_one(
        np.where(kept, diff, 0), input_multiplier, input_left_shift)
    exp_q0 = np.where(kept, exp_on_negative_values(scaled, 5), 0).astype(np.int64)
    exp_q12 = np.asarray(rounding_divide_by_pot(exp_q0, 12), dtype=np.int64)
    for table in (exp_q0, exp_q12):
        table.flags.writeable = False
    return exp_q0, exp_q12


# Up to this many rows, eval takes each row's GetReciprocal on the Python-int path of
# tflite_ref.quant (~10 us a row) instead of the vectorised one (~100 us for any number of rows).
_SOFTMAX_SCALAR_ROWS = 8


@register(Op.SOFTMAX, T.UINT8, prepare=prepare_softmax, emulations=TFLITE_ONLY)
@register(Op.SOFTMAX, T.INT8, T.INT16, prepare=prepare_softmax)
def softmax_quantized(data: SoftmaxData, x: np.ndarray) -> np.ndarray:
    """Dispatch on the input type: 8-bit (gemmlowp) or int16 (LUT) kernel."""
    if x.dtype == np.int16:
        return _softmax_int16(data, x)
    return _softmax_8bit(data, x)


def _softmax_8bit(data: SoftmaxData, x: np.ndarray) -> np.ndarray:
    """reference_ops::Softmax<InputT, OutputT> (softmax.h), doc §2.8 A.

    Per row: ``Σ exp`` in Q12.19, its reciprocal by GetReciprocal (``scale`` in Q0.31 and
    ``num_bits_over_unit``), then ``RDBPOT(scale · exp_c, nbou + 31 − bits(OutputT)) +
    min(OutputT)``.  The exponentials come from the tables built in prepare
    (:func:`_softmax_8bit_tables`), indexed by ``max − q``.
    """
    assert data.exp_table is not None and data.exp_sum_table is not None
    rows = _rows(x).astype(np.intp)
    d = rows.max(axis=1, keepdims=True) - rows  # 0..255
    exp_q0 = data.exp_table[d]
    # The FixedPoint<int32, 12> additions wrap; so does the int64 sum taken modulo 2^32.
    sums = data.exp_sum_table[d].sum(axis=1, keepdims=True)
    shifted_scale: IntLike
    num_bits_over_unit: IntLike
    if sums.shape[0] <= _SOFTMAX_SCALAR_ROWS:
        recips = [get_reciprocal(wrap_int32(int(v)), 12) for v in sums[:, 0]]
        if len(recips) == 1:  # Python ints broadcast over the row
            shifted_scale, num_bits_over_unit = recips[0]
        else:
            shifted_scale = np.array([r for r, _ in recips], dtype=np.int64).reshape(-1, 1)
            num_bits_over_unit = np.array([b for _, b in recips], dtype=np.int64).reshape(-1, 1)
    else:
        shifted_scale, num_bits_over_unit = get_reciprocal(wrap_int32(sums), 12)
    exponent = np.asarray(num_bits_over_unit) + 31 - data.output_bits
    if np.any((exponent < 0) | (exponent > 31)):
        # softmax.h TFLITE_CHECK(0 <= exponent && exponent <= 31): the row sum outgrew Q12.19
        raise KernelRuntimeError(f"{data.locator}: a row of {rows.shape[1]} values overflows the "
                                 "fixed-point sum of exponentials")
    unsat = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, exp_q0),
                                   num_bits_over_unit + 31 - data.output_bits)
    out: np.ndarray = np.clip(np.asarray(unsat) + data.output_min, data.output_min,
                              data.output_max)
    return out.astype(data.output_dtype).reshape(x.shape)


def _softmax_int16(data: SoftmaxData, x: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """reference_ops::SoftmaxInt16 (softmax.h): exp from a table over [−10, 0], the row sum
    normalised to [1, 2) and inverted with a 1/(1+x) table, both with 7-bit interpolation."""
    rows = _rows(x).astype(np.int64)
    diff = rows - rows.max(axis=1, keepdims=True)
    scaled = np.asarray(multiply_by_quantized_multiplier(diff, data.input_multiplier,
                                                         data.input_left_shift))
    sym_scaled = np.clip(scaled + 32767, -32768, 32767).astype(np.int16)
    assert data.exp_lut is not None and data.one_over_one_plus_x_lut is not None  # prepare's
    exp_q015 = lut_lookup_int16(sym_scaled, data.exp_lut).astype(np.int64)
    sum_of_exps = np.asarray(wrap_int32(exp_q015.sum(axis=1, keepdims=True)))  # Q16.15
    headroom_plus_one = np.asarray(count_leading_zeros(sum_of_exps))
    shifted_sum = ((sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    sym_shifted_sum = np.clip(shifted_sum - ((1 << 15) + (1 << 16)), -32768, 32767)
    reciprocal_q015 = lut_lookup_int16(sym_shifted_sum.astype(np.int16),
                                       data.one_over_one_plus_x_lut).astype(np.int64)
    right_shift = 31 - headroom_plus_one
    result = (exp_q015 * reciprocal_q015 + (np.int64(1) << (right_shift - 1))) >> right_shift
    out: npt.NDArray[np.int16] = np.clip(result, 0, 32767).astype(np.int16).reshape(x.shape)
    return out


# =============================================================================================
# LOG_SOFTMAX
# =============================================================================================
@dataclass(frozen=True, slots=True)
class LogSoftmaxData:
    input_multiplier: int = 0
    input_left_shift: int = 0
    reverse_scaling_divisor: int = 0
    reverse_scaling_right_shift: int = 0
    diff_min: int = 0
    dtype: np.dtype = np.dtype(np.float32)


def prepare_log_softmax(ctx: OpContext) -> LogSoftmaxData:
    x, y = generic_prepare(ctx)
    if x.type == T.FLOAT32:
        return LogSoftmaxData()
    dtype = _INT_DTYPES[x.type]
    s_in, _ = quant_params(x)
    s_out, z_out = quant_params(y)
    qmax = type_range(dtype)[1]
    # LogSoftmaxPrepare / TFLM CalculateOpData: output is Q4.3 (scale 16/256) ending at qmax
    if s_out != 16.0 / 256 or z_out != qmax:
        ctx.fail(f"LOG_SOFTMAX output must have scale 1/16 and zero point {qmax}, got "
                 f"{s_out} and {z_out}")
    if not s_in * float(1 << 26) > 1.0:
        ctx.fail(f"input scale {s_in} is too small for the fixed-point log-softmax")
    multiplier, left_shift, divisor, reverse_shift = preprocess_log_softmax_scaling_exp(
        1.0, s_in, 5)
    return LogSoftmaxData(multiplier, left_shift, divisor, -reverse_shift,
                          -calculate_input_radius(5, left_shift), dtype)


@register(Op.LOG_SOFTMAX, T.FLOAT32, prepare=prepare_log_softmax)
def log_softmax_float32(data: LogSoftmaxData, x: npt.NDArray[np.float32]
                        ) -> npt.NDArray[np.float32]:
    """reference_ops::LogSoftmax (float, reference/log_softmax.h; both runtimes), in float32:
    ``sum += std::exp(x − max)`` in index order, ``log_sum = std::log(sum)``, then
    ``x − max − log_sum`` (left to right).  ``std::exp`` / ``std::log`` of a float are the C
    library's ``expf`` / ``logf`` (:func:`unary.libm_float`), bit for bit."""
    rows = _rows(x)
    shifted = rows - rows.max(axis=1, keepdims=True)
    total = np.cumsum(libm_float("expf", np.exp, shifted), axis=1, dtype=np.float32)[:, -1:]
    out: npt.NDArray[np.float32] = (shifted - libm_float("logf", np.log, total)).astype(
        np.float32).reshape(x.shape)
    return out


@register(Op.LOG_SOFTMAX, T.UINT8, prepare=prepare_log_softmax, emulations=TFLITE_ONLY)
@register(Op.LOG_SOFTMAX, T.INT8, prepare=prepare_log_softmax)
def log_softmax_quantized(data: LogSoftmaxData, x: np.ndarray) -> np.ndarray:
    """reference_integer_ops::LogSoftmax (int8) = reference_ops::LogSoftmax (uint8):
    ``diff_c − ln Σ exp(diff)`` in Q5.26, rounded to Q4.3 and offset to end at qmax; entries
    whose result would fall below the range are set to qmin."""
    rows = _rows(x).astype(np.int64)
    lo, hi = type_range(data.dtype)
    diff = rows - rows.max(axis=1, keepdims=True)
    kept = diff >= data.diff_min
    diff_q5 = np.asarray(multiply_by_quantized_multiplier(np.where(kept, diff, 0),
                                                          data.input_multiplier,
                                                          data.input_left_shift))
    exps = np.where(kept, rounding_divide_by_pot(exp_on_negative_values(diff_q5, 5), 12), 0)
    sum_of_exps_q12 = np.asarray(wrap_int32(exps.sum(axis=1, keepdims=True)))
    log_sum_q5 = np.asarray(log_x_for_x_greater_than_or_equal_to_1(sum_of_exps_q12, 12, 5))
    shifted_log_sum = np.asarray(wrap_int32(log_sum_q5 + INT32_MIN))
    adjusted_diff_min = np.maximum(data.diff_min - 1, multiply_by_quantized_multiplier(
        shifted_log_sum, data.reverse_scaling_divisor, -data.reverse_scaling_right_shift))
    out = np.asarray(rounding_divide_by_pot(wrap_int32(diff_q5 - log_sum_q5), 31 - 5 - 4)) + hi
    out = np.where(diff > adjusted_diff_min, np.clip(out, lo, hi), lo)
    return out.astype(data.dtype).reshape(x.shape)


# =============================================================================================
# ELU
# =============================================================================================
@dataclass(frozen=True, slots=True)
class LutData:
    table: np.ndarray | None = None  # 256 entries (value order) or 513 (int16 LUTLookup)
    approximate: bool = False  # GELU only


def prepare_elu(ctx: OpContext) -> LutData:
    x, y = generic_prepare(ctx)
    if x.type == T.FLOAT32:
        return LutData()
    s_in, z_in = quant_params(x)
    s_out, z_out = quant_params(y)
    _require_positive_scales(ctx, input=s_in, output=s_out)
    # The table's negative branch: LiteRT EluPrepare calls std::expm1, TFLM elu.cc
    # std::exp(value) - 1.0f (they differ by rounding near 0).  An out-of-range entry: LiteRT's
    # LUTPopulate<int8_t> saturates, TFLM's PopulateLookupTable gives INT32_MIN (measured).
    elu_negative_branch = "expm1f" if ctx.emulate == "tflite" else "expf_minus_one"
    out_of_range: OutOfRange = "saturate" if ctx.emulate == "tflite" else "int32_min"

    def transform(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if elu_negative_branch == "expm1f":
            negative = c_expm1f(v)
        else:
            negative = c_expf(v) - F32(1.0)
        return np.where(v < 0, negative, v).astype(np.float32)

    return LutData(lut_populate_int8(s_in, z_in, s_out, z_out, transform, dtype=np.int8,
                                     out_of_range=out_of_range))


@register(Op.ELU, T.FLOAT32, prepare=prepare_elu)
def elu_float32(data: LutData, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """reference_ops::Elu (reference/elu.h; LiteRT's builtin ELU and TFLM both run it):
    ``x < 0 ? TfLiteExpm1(x) : x``, i.e. the C library's ``expm1f`` (:func:`unary.libm_float`),
    bit for bit."""
    out = np.array(x, dtype=np.float32)
    negative = out < 0  # NaN is not: it passes through, as in the C++
    out[negative] = libm_float("expm1f", np.expm1, out[negative])
    return out


@register(Op.ELU, T.INT8, prepare=prepare_elu)
def elu_int8(data: LutData, x: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    return lut_lookup_int8(x, data.table)  # type: ignore[arg-type]


# =============================================================================================
# GELU (LiteRT only: TFLM has no GELU kernel)
# =============================================================================================
_M_SQRT1_2 = 0.70710678118654752440  # <cmath> M_SQRT1_2
_M_2_SQRTPI = 1.12837916709551257390  # <cmath> M_2_SQRTPI
_K_SQRT_2_OVER_PI = F32(_M_2_SQRTPI * _M_SQRT1_2)  # gelu_internal::kSqrt2dPi: double, then float


def _gelu_transform(v: npt.NDArray[np.float32], approximate: bool) -> npt.NDArray[np.float32]:
    """gelu.h GeluTransform / GeluTransformApproximate, in float32 with C's erfcf / tanhf."""
    v = np.asarray(v, dtype=F32)
    half_v = F32(0.5) * v
    if approximate:
        cube = F32(0.044715) * v * v * v
        return (half_v * (F32(1) + c_tanhf(_K_SQRT_2_OVER_PI * (v + cube)))).astype(F32)
    return (half_v * c_erfcf(v * F32(-_M_SQRT1_2))).astype(F32)


def prepare_gelu(ctx: OpContext) -> LutData:
    x, y = generic_prepare(ctx)
    approximate = bool(ctx.options.get("approximate", False))
    if x.type == T.FLOAT32:
        return LutData(None, approximate)
    s_in, z_in = quant_params(x)
    s_out, z_out = quant_params(y)
    _require_positive_scales(ctx, input=s_in, output=s_out)

    def transform(v: np.ndarray) -> np.ndarray:
        return _gelu_transform(v, approximate)

    if x.type == T.INT16:
        table = lut_populate_int16(s_in, z_in, s_out, z_out, transform, float_type=np.float32)
    else:
        table = lut_populate_int8(s_in, z_in, s_out, z_out, transform,
                                  dtype=_INT_DTYPES[x.type])
    return LutData(table, approximate)


@register(Op.GELU, T.FLOAT32, prepare=prepare_gelu, emulations=TFLITE_ONLY)
def gelu_float32(data: LutData, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """reference_ops::Gelu (reference/gelu.h) for float: an Eigen array expression, not the
    ``std::erfc`` / ``std::tanh`` of GeluTransform (that is only the tables' transform):
    ``0.5f · x · (x · float(−M_SQRT1_2)).erfc()``, or when approximate
    ``0.5f · x · (1 + (kSqrt2dPi · (x + 0.044715f · x.cube())).tanh())``, every operation in
    float32 in that order, with Eigen's own erfc and tanh (:func:`eigen_erfc`,
    :func:`rnn.eigen_tanh`), bit for bit."""
    v = np.asarray(x, dtype=np.float32)
    half_v = F32(0.5) * v
    with np.errstate(over="ignore", invalid="ignore"):
        if data.approximate:
            cube = v * (v * v)  # scalar_cube_op: a * (a * a)
            inner = np.asarray(_K_SQRT_2_OVER_PI * (v + F32(0.044715) * cube),
                               dtype=np.float32)  # float32 already: the stubs widen it
            factor = F32(1) + eigen_tanh(inner)
        else:
            # The tensor is one Eigen map from the start of its (aligned) arena buffer.
            lanes = eigen_scalar_lanes(0, v.size).reshape(v.shape)
            factor = eigen_erfc(v * F32(-_M_SQRT1_2), lanes)
        out: npt.NDArray[np.float32] = (half_v * factor).astype(np.float32)
    return out


@register(Op.GELU, T.INT8, T.UINT8, prepare=prepare_gelu, emulations=TFLITE_ONLY)
def gelu_8bit(data: LutData, x: np.ndarray) -> np.ndarray:
    return lut_lookup_int8(x, data.table)  # type: ignore[arg-type]


@register(Op.GELU, T.INT16, prepare=prepare_gelu, emulations=TFLITE_ONLY)
def gelu_int16(data: LutData, x: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """reference_ops::LookupTableInt16: 513-entry table, 7-bit linear interpolation."""
    return lut_lookup_int16(x, data.table)  # type: ignore[arg-type]


# =============================================================================================
# L2_NORMALIZATION
# =============================================================================================
@dataclass(frozen=True, slots=True)
class L2NormData:
    input_zero_point: int = 0
    dtype: np.dtype = np.dtype(np.float32)


def prepare_l2_normalization(ctx: OpContext) -> L2NormData:
    x, y = generic_prepare(ctx)
    rank = len(ctx.input_shape(0))
    if rank < 1:
        ctx.fail("input must have at least one dimension")
    if ctx.emulate == "tflm" and rank > 4:  # micro/kernels/l2norm.cc
        ctx.fail(f"TFLM's L2_NORMALIZATION takes at most 4 dimensions, got {rank}")
    if str(ctx.options.get("fused_activation_function", "NONE")) != "NONE":
        ctx.fail("fused activation must be NONE")
    if x.type == T.FLOAT32:
        return L2NormData()
    dtype = _INT_DTYPES.get(x.type)
    if dtype is None or dtype == np.int16:
        ctx.unsupported(f"L2_NORMALIZATION {ctx.describe_types()} is not supported")
    s_out, z_out = quant_params(y)
    want_zero_point = 128 if dtype == np.uint8 else 0
    if ctx.emulate == "tflite" and (s_out != 1.0 / 128 or z_out != want_zero_point):
        # l2norm.cc Prepare (TFLM checks neither; its kernel assumes the same output)
        ctx.fail(f"output must have scale 1/128 and zero point {want_zero_point}, got "
                 f"{s_out} and {z_out}")
    return L2NormData(quant_params(x)[1], dtype)


@register(Op.L2_NORMALIZATION, T.FLOAT32, prepare=prepare_l2_normalization)
def l2_normalization_float32(data: L2NormData, x: npt.NDArray[np.float32]
                             ) -> npt.NDArray[np.float32]:
    """reference_ops::L2Normalization (float): ``x / max(sqrt(Σ x²), 1e-6)`` along the last
    axis, the sum of squares accumulated in order in float32."""
    rows = _rows(x)
    squared = np.cumsum(rows * rows, axis=1, dtype=np.float32)[:, -1:]
    l2_norm = np.maximum(np.sqrt(squared), F32(1e-6))
    return (rows / l2_norm).astype(np.float32).reshape(x.shape)


@register(Op.L2_NORMALIZATION, T.UINT8, prepare=prepare_l2_normalization,
          emulations=TFLITE_ONLY)
@register(Op.L2_NORMALIZATION, T.INT8, prepare=prepare_l2_normalization)
def l2_normalization_quantized(data: L2NormData, x: np.ndarray) -> np.ndarray:
    """reference_integer_ops::L2Normalization (int8): ``MBQM(q − z, inv_sqrt, shift + 7)``;
    reference_ops::L2Normalization (uint8): ``128 + MBQM_SmallerThanOneExp(128·(q − z), ...)``.
    Output scale 1/128."""
    diff = _rows(x).astype(np.int64) - data.input_zero_point
    acc = np.asarray(wrap_int32((diff * diff).sum(axis=1, keepdims=True)))
    multiplier, shift = get_inv_sqrt_quantized_multiplier_exp(acc, -1)  # kReverseShift
    if data.dtype == np.uint8:
        rescaled = multiply_by_quantized_multiplier_smaller_than_one_exp(128 * diff, multiplier,
                                                                         shift)
        out = np.clip(128 + np.asarray(rescaled), 0, 255)
    else:
        out = np.clip(multiply_by_quantized_multiplier(diff, multiplier, shift + 7), -128, 127)
    result: np.ndarray = out.astype(data.dtype).reshape(x.shape)
    return result
