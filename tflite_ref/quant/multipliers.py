"""How TFLite turns real scales into integer (multiplier, shift) pairs, and its effective scales.

Sources (read, not copied):

* ``tensorflow/lite/kernels/internal/quantization_util.cc`` -- QuantizeMultiplier and friends,
  PreprocessSoftmaxScaling, PreprocessLogSoftmaxScalingExp, CalculateInputRadius.
* ``tensorflow/lite/kernels/kernel_util.cc`` -- CalculateActivationRangeQuantized,
  PopulateConvolutionQuantizationParams, GetQuantizedConvolutionMultipler.
* Where each effective scale is computed (float32 vs double matters for the low bits of the
  multiplier): TFLM ``micro/kernels/{mul,add,sub,fully_connected,logistic,quantize}_common.cc``,
  ``tanh.cc``; LiteRT ``tflite/kernels/{mul,add,sub,quantize}.cc``.

Scales stored in a model are float32.  Every helper here first rounds its scale arguments to
float32 (a no-op for values read from a model) and then reproduces the C++ expression literally:
``double(a) * double(b)`` where the C++ widens first, ``float(a * b)`` where it multiplies floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tflite_ref.errors import ModelValidationError, UsageError
from tflite_ref.quant.fixedpoint import INT32_MAX, round_away

__all__ = [
    "QuantizedMultiplier",
    "quantize_multiplier",
    "quantize_multiplier_smaller_than_one_exp",
    "quantize_multiplier_greater_than_one",
    "quantize_multipliers",
    "preprocess_softmax_scaling",
    "preprocess_log_softmax_scaling_exp",
    "calculate_input_radius",
    "checked_log2",
    "calculate_activation_range",
    "calculate_activation_range_quantized",
    "logistic_tanh_int8_input_scaling",
    "conv_effective_scales",
    "fc_per_channel_effective_scales",
    "fc_per_tensor_effective_scale",
    "mul_effective_scale",
    "requantize_effective_scale",
    "add_effective_scales",
    "sub_effective_scales",
    "softmax_int16_effective_scale",
    "Emulate",
]

#: Which runtime's arithmetic to reproduce where TFLite (LiteRT) and TFLM differ.
Emulate = Literal["tflite", "tflm"]

_F32 = np.float32


def _f32(x: float) -> np.float32:
    f: np.float32 = _F32(x)
    return f


def _d(x: float) -> float:
    """``static_cast<double>`` of a float32 scale."""
    return float(_F32(x))


@dataclass(frozen=True, slots=True)
class QuantizedMultiplier:
    """A TFLite fixed-point multiplier: real value ``multiplier · 2^(shift - 31)``.

    ``multiplier`` is in [2^30, 2^31) (or 0); positive ``shift`` means a left shift.
    """

    multiplier: int
    shift: int

    @classmethod
    def from_real(cls, real: float, *, single_rounding: bool = False) -> QuantizedMultiplier:
        """:func:`quantize_multiplier` wrapped in the dataclass."""
        m, s = quantize_multiplier(real, single_rounding=single_rounding)
        return cls(m, s)

    def to_real(self) -> float:
        """The real multiplier this pair represents (exact in double)."""
        return math.ldexp(self.multiplier, self.shift - 31)


def quantize_multiplier(real: float, *, single_rounding: bool = False) -> tuple[int, int]:
    """``QuantizeMultiplier(double)`` -> ``(quantized_multiplier, shift)``.

    ``q, shift = frexp(real)``; ``m = round_away(q · 2^31)``; ``m == 2^31`` becomes
    ``(2^30, shift + 1)``; ``shift < -31`` flushes to ``(0, 0)``; ``real == 0`` gives ``(0, 0)``.
    With ``single_rounding=True`` (the ``TFLITE_SINGLE_ROUNDING`` build) ``shift > 30`` saturates
    to ``(2^31 - 1, 30)``.  ``real`` is used as a double, unchanged.
    """
    real = float(real)
    if not math.isfinite(real):
        raise ModelValidationError(f"cannot quantize a non-finite multiplier {real!r}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)  # exact, same convention as std::frexp
    q_fixed = int(round_away(q * float(1 << 31)))  # q · 2^31 is exact in double
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if single_rounding and shift > 30:
        shift, q_fixed = 30, INT32_MAX
    return q_fixed, shift


def quantize_multiplier_smaller_than_one_exp(
    real: float, *, single_rounding: bool = False
) -> tuple[int, int]:
    """``QuantizeMultiplierSmallerThanOneExp``: CHECKs ``0 < real < 1``; shift is ``<= 0``."""
    real = float(real)
    if not 0.0 < real < 1.0:
        raise ModelValidationError(f"multiplier must be in (0, 1), got {real!r}")
    m, shift = quantize_multiplier(real, single_rounding=single_rounding)
    if shift > 0:  # only reachable when real rounds up to 1.0
        raise ModelValidationError(f"multiplier {real!r} rounds to 1 (shift {shift} > 0)")
    return m, shift


def quantize_multiplier_greater_than_one(
    real: float, *, single_rounding: bool = False
) -> tuple[int, int]:
    """``QuantizeMultiplierGreaterThanOne``: CHECKs ``real > 1``; shift is ``>= 0``."""
    real = float(real)
    if not real > 1.0:
        raise ModelValidationError(f"multiplier must be > 1, got {real!r}")
    m, shift = quantize_multiplier(real, single_rounding=single_rounding)
    if shift < 0:  # unreachable for real > 1; mirrors the TFLITE_CHECK
        raise ModelValidationError(f"multiplier {real!r} gave a negative shift {shift}")
    return m, shift


def quantize_multipliers(
    reals: npt.ArrayLike, *, single_rounding: bool = False
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Vectorised :func:`quantize_multiplier` (``QuantizeMultiplierArray``, per-channel params).

    Takes float64 effective scales (any shape) and returns int64 ``(multipliers, shifts)``.
    """
    r = np.asarray(reals, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise ModelValidationError("cannot quantize non-finite multipliers")
    q, shift = np.frexp(r)
    shift = shift.astype(np.int64)
    q_fixed = np.asarray(round_away(q * float(1 << 31))).astype(np.int64)
    overflow = q_fixed == (1 << 31)
    q_fixed = np.where(overflow, q_fixed // 2, q_fixed)
    shift = np.where(overflow, shift + 1, shift)
    flush = shift < -31
    q_fixed = np.where(flush, 0, q_fixed)
    shift = np.where(flush, 0, shift)
    if single_rounding:
        big = shift > 30
        q_fixed = np.where(big, INT32_MAX, q_fixed)
        shift = np.where(big, 30, shift)
    zero = r == 0.0  # frexp(0) already gives (0, 0); kept explicit like the C++
    return np.where(zero, 0, q_fixed).astype(np.int64), np.where(zero, 0, shift).astype(np.int64)


def preprocess_softmax_scaling(
    beta: float,
    input_scale: float,
    input_integer_bits: int,
    *,
    single_rounding: bool = False,
) -> tuple[int, int]:
    """``PreprocessSoftmaxScaling`` -> ``(input_multiplier, input_left_shift)``.

    ``min(beta · input_scale · 2^(31 - input_integer_bits), cap)`` in double, with
    ``cap = 2^31 - 1`` (``2^30 - 1`` in single-rounding builds), then
    :func:`quantize_multiplier_greater_than_one`.  Pass ``beta`` and ``input_scale`` as the
    runtime sees them (``double(float32)``); softmax uses ``input_integer_bits = 5``.
    """
    cap = float((1 << 30) - 1) if single_rounding else float((1 << 31) - 1)
    real = min(float(beta) * float(input_scale) * float(1 << (31 - input_integer_bits)), cap)
    return quantize_multiplier_greater_than_one(real, single_rounding=single_rounding)


def preprocess_log_softmax_scaling_exp(
    beta: float,
    input_scale: float,
    input_integer_bits: int,
    *,
    single_rounding: bool = False,
) -> tuple[int, int, int, int]:
    """``PreprocessLogSoftmaxScalingExp`` -> ``(multiplier, left_shift, reverse_scaling_divisor,
    reverse_scaling_left_shift)`` (the last one ``<= 0``; LOG_SOFTMAX negates it)."""
    m, ls = preprocess_softmax_scaling(
        beta, input_scale, input_integer_bits, single_rounding=single_rounding
    )
    real_reverse = float(1 << (31 - ls)) / float(m)
    rd, rs = quantize_multiplier_smaller_than_one_exp(real_reverse, single_rounding=single_rounding)
    return m, ls, rd, rs


def calculate_input_radius(
    input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31
) -> int:
    """``CalculateInputRadius``: ``floor((2^ib - 1) · 2^(tsb - ib) / 2^left_shift)`` in double.

    The largest input difference that cannot saturate after the ``left_shift`` rescale
    (softmax ``diff_min = -radius``; logistic/tanh saturate at ``±radius``).
    """
    ib = input_integer_bits
    v = 1.0 * ((1 << ib) - 1) * float(1 << (total_signed_bits - ib)) / float(1 << input_left_shift)
    return int(math.floor(v))


def checked_log2(x: float) -> tuple[bool, int]:
    """quantization_util.cc ``CheckedLog2`` -> ``(is_power_of_two, log2)``.

    ``log2 = float32(log(x)) · (1 / float32(log 2))`` in float32, rounded half away from zero
    (``TfLiteRound``); the scale counts as a power of two when the fraction dropped is below
    1e-3.  The exponent means something only when the flag is true (the kernels use it only
    then); a non-positive or non-finite ``x`` gives ``(False, 0)``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        x_log2 = _F32(np.log(_F32(x))) * (_F32(1.0) / _F32(np.log(_F32(2.0))))
    if not np.isfinite(x_log2):
        return False, 0
    rounded = _F32(round_away(x_log2))
    return bool(abs(x_log2 - rounded) < _F32(1e-3)), int(rounded)


_ACTIVATIONS = {
    "NONE": 0,
    "RELU": 1,
    "RELU_N1_TO_1": 2,
    "RELU6": 3,
    "TANH": 4,
    "SIGN_BIT": 5,
}
_QRANGE = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
}


def _quantize_for_range(scale: np.float32, zero_point: int, f: float) -> int:
    # kernel_util.cc Quantize(): tmp = TfLiteRound(f / scale) in float32, ENSURE it fits int32.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tmp = round_away(_F32(f) / scale)
    if not (-(2.0**31) <= float(tmp) <= 2.0**31 - 1):  # also rejects NaN
        raise ModelValidationError(
            f"activation bound {f} / output scale {float(scale)!r} does not fit int32"
        )
    v = zero_point + int(tmp)
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)  # int32 addition


def _activation_code(activation: str | int) -> int:
    if isinstance(activation, str):
        key = activation.upper()
        if key not in _ACTIVATIONS:
            raise UsageError(f"unknown fused activation {activation!r}")
        return _ACTIVATIONS[key]
    return int(activation)


def calculate_activation_range(
    activation: str | int, dtype: npt.DTypeLike | str
) -> tuple[int | float, int | float]:
    """``CalculateActivationRange<T>`` (kernel_util.h) -> ``(act_min, act_max)`` for float and
    unquantized integer outputs.

    RELU: ``[0, max]``; RELU6: ``[0, 6]``; RELU_N1_TO_1: ``[-1, 1]``; anything else (NONE, TANH,
    SIGN_BIT): ``[lowest, max]`` of the type -- finite for floats, so the clamp turns +-inf into
    the largest finite values, as ``ActivationFunctionWithMinMax`` does.  Floats come back as
    Python floats, integers as Python ints.
    """
    code = _activation_code(activation)
    dt: np.dtype[Any] = np.dtype(dtype)
    lo: int | float
    hi: int | float
    if dt.kind == "f":
        lo, hi = float(np.finfo(dt).min), float(np.finfo(dt).max)
    else:
        lo, hi = int(np.iinfo(dt).min), int(np.iinfo(dt).max)
    if code == 1:
        return 0, hi
    if code == 3:
        return 0, 6
    if code == 2:
        return -1, 1
    return lo, hi


def calculate_activation_range_quantized(
    activation: str | int,
    scale: float,
    zero_point: int,
    dtype: npt.DTypeLike | str,
) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized`` (kernel_util.cc) -> ``(act_min, act_max)``.

    ``activation`` is a schema ``ActivationFunctionType`` name (``"RELU6"``) or code.
    ``Q(f) = zero_point + (int32) round_away(float32(f) / float32(scale))``;
    RELU: ``[max(qmin, Q(0)), qmax]``; RELU6: ``[max(qmin, Q(0)), min(qmax, Q(6))]``;
    RELU_N1_TO_1: ``[max(qmin, Q(-1)), min(qmax, Q(1))]``; anything else (NONE, TANH, SIGN_BIT):
    ``[qmin, qmax]``.  ``dtype`` is int8, uint8 or int16.
    """
    code = _activation_code(activation)
    try:
        dname = np.dtype(dtype).name
    except TypeError as exc:
        raise UsageError(f"unsupported dtype {dtype!r}") from exc
    if dname not in _QRANGE:
        raise UsageError(f"activation range needs int8, uint8 or int16 output, got {dname}")
    qmin, qmax = _QRANGE[dname]
    s = _f32(scale)
    zp = int(zero_point)
    if code == 1:
        return max(qmin, _quantize_for_range(s, zp, 0.0)), qmax
    if code == 3:
        return (
            max(qmin, _quantize_for_range(s, zp, 0.0)),
            min(qmax, _quantize_for_range(s, zp, 6.0)),
        )
    if code == 2:
        return (
            max(qmin, _quantize_for_range(s, zp, -1.0)),
            min(qmax, _quantize_for_range(s, zp, 1.0)),
        )
    return qmin, qmax


def logistic_tanh_int8_input_scaling(input_scale: float) -> tuple[int, int, int]:
    """Input rescaling of the gemmlowp int8 LOGISTIC / TANH kernels -> ``(multiplier,
    left_shift, input_range_radius)``.

    TFLM ``micro/kernels/logistic_common.cc`` / ``tanh.cc`` (and TFLite's non-default
    ``kFixedPointOptimized``): ``q, left_shift = frexp(double(s_in) · 2^27)``,
    ``multiplier = (int32) round_away(q · 2^31)`` -- note: *no* 2^31 fix-up and no flush, unlike
    :func:`quantize_multiplier` (a 2^31 result converts to INT32_MIN, as x86's ``cvttsd2si``
    does) -- and ``radius = CalculateInputRadius(4, left_shift, 31)``.
    """
    real = _d(input_scale) * float(1 << (31 - 4))
    if not math.isfinite(real) or real <= 0.0:
        raise ModelValidationError(f"invalid input scale {input_scale!r}")
    q, left_shift = math.frexp(real)
    m = int(round_away(q * float(1 << 31)))
    if m == 1 << 31:
        m = -(1 << 31)
    return m, left_shift, calculate_input_radius(4, left_shift, 31)


# --------------------------------------------------------------------------------------------
# Effective scales, named by the kernels that compute them
# --------------------------------------------------------------------------------------------


def conv_effective_scales(
    input_scale: float, filter_scales: npt.ArrayLike, output_scale: float
) -> npt.NDArray[np.float64]:
    """CONV_2D / DEPTHWISE / TRANSPOSE_CONV (and per-channel FC) effective scales.

    ``double(s_in) · double(s_w[c]) / double(s_out)`` per channel (kernel_util.cc
    ``PopulateConvolutionQuantizationParams``; TFLM ``conv_common.cc``).  Per-tensor filters pass
    a one-element array (the runtimes broadcast it over the output channels).
    """
    sw = np.asarray(filter_scales, dtype=np.float32).astype(np.float64)
    return (_d(input_scale) * sw) / _d(output_scale)


def fc_per_channel_effective_scales(
    input_scale: float, filter_scales: npt.ArrayLike, output_scale: float
) -> npt.NDArray[np.float64]:
    """Per-channel FULLY_CONNECTED: the same double formula as :func:`conv_effective_scales`
    (TFLM ``fully_connected_common.cc``, LiteRT ``fully_connected.cc``)."""
    return conv_effective_scales(input_scale, filter_scales, output_scale)


def fc_per_tensor_effective_scale(
    input_scale: float, filter_scale: float, output_scale: float
) -> float:
    """Per-tensor FULLY_CONNECTED (integer path): ``double(float32(s_in · s_w)) / double(s_out)``.

    kernel_util.cc ``GetQuantizedConvolutionMultipler`` multiplies the two scales *in float32*
    before widening.  (TFLite's REF FC requantizes in double instead and does not use this
    multiplier; TFLM does.)
    """
    prod = _f32(input_scale) * _f32(filter_scale)  # float32 product, rounded once
    return float(prod) / _d(output_scale)


def mul_effective_scale(
    input1_scale: float, input2_scale: float, output_scale: float, *, emulate: Emulate = "tflite"
) -> float:
    """MUL's real multiplier ``s1·s2/s_out``, computed the way each runtime computes it.

    * ``"tflite"`` (LiteRT ``tflite/kernels/mul.cc``): all float32 --
      ``double(float32(float32(s1 · s2) / s_out))``.
    * ``"tflm"`` (``micro/kernels/mul_common.cc``): ``double(s1) · double(s2) / double(s_out)``.
    """
    if emulate == "tflite":
        return float((_f32(input1_scale) * _f32(input2_scale)) / _f32(output_scale))
    if emulate == "tflm":
        return _d(input1_scale) * _d(input2_scale) / _d(output_scale)
    raise UsageError(f"emulate must be 'tflite' or 'tflm', got {emulate!r}")


def requantize_effective_scale(input_scale: float, output_scale: float) -> float:
    """QUANTIZE int->int (requantize), MEAN/SUM: ``double(s_in) / double(s_out)`` (both runtimes;
    LiteRT ``quantize.cc``, TFLM ``quantize_common.cc``, ``reduce_common.cc``)."""
    return _d(input_scale) / _d(output_scale)


def add_effective_scales(
    input1_scale: float, input2_scale: float, output_scale: float, left_shift: int
) -> tuple[float, float, float]:
    """ADD (both runtimes) and SUB (LiteRT) real multipliers ``(r1, r2, r_out)`` in double.

    ``twice = 2·max(s1, s2)``; ``r1 = s1/twice``; ``r2 = s2/twice``;
    ``r_out = twice / (2^left_shift · s_out)`` (TFLM ``add_common.cc``, LiteRT ``add.cc`` /
    ``sub.cc``; ``left_shift`` is 20 for int8, 15 for the general int16 path).  Feed each to
    :func:`quantize_multiplier_smaller_than_one_exp`.
    """
    s1, s2, so = _f32(input1_scale), _f32(input2_scale), _f32(output_scale)
    twice = 2.0 * float(max(s1, s2))
    pot_out = float(_F32(1 << left_shift) * so)  # int * float -> float32 (exact scaling)
    return float(s1) / twice, float(s2) / twice, twice / pot_out


def sub_effective_scales(
    input1_scale: float,
    input2_scale: float,
    output_scale: float,
    left_shift: int,
    *,
    emulate: Emulate = "tflite",
) -> tuple[float, float, float]:
    """SUB real multipliers ``(r1, r2, r_out)``.

    ``"tflite"``: the double formulas of :func:`add_effective_scales`.  ``"tflm"``
    (``micro/kernels/sub_common.cc``): the same expressions evaluated in float32, then widened.
    """
    if emulate == "tflite":
        return add_effective_scales(input1_scale, input2_scale, output_scale, left_shift)
    if emulate != "tflm":
        raise UsageError(f"emulate must be 'tflite' or 'tflm', got {emulate!r}")
    s1, s2, so = _f32(input1_scale), _f32(input2_scale), _f32(output_scale)
    twice = _F32(2) * max(s1, s2)
    return (
        float(s1 / twice),
        float(s2 / twice),
        float(twice / (_F32(1 << left_shift) * so)),
    )


def softmax_int16_effective_scale(
    input_scale: float, beta: float, *, emulate: Emulate = "tflite"
) -> float:
    """int16 SOFTMAX input rescale ``s_in · beta / (10 / 65535)`` (maps [-65535, 0] to
    [-10, 0] for the exp table); feed it to :func:`quantize_multiplier`.

    * ``"tflite"`` (LiteRT ``activations.cc`` ``SoftmaxPrepare``): ``float32(s_in · beta)``
      widened, then divided in double.
    * ``"tflm"`` (``micro/kernels/softmax_common.cc``): ``double(s_in) · double(beta)`` first.
    """
    if emulate == "tflite":
        return float(_f32(input_scale) * _f32(beta)) / (10.0 / 65535.0)
    if emulate == "tflm":
        return _d(input_scale) * _d(beta) / (10.0 / 65535.0)
    raise UsageError(f"emulate must be 'tflite' or 'tflm', got {emulate!r}")
