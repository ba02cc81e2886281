"""TFLite's integer primitives, vectorised over NumPy int64 arrays.

Every function takes NumPy integer arrays (any shape, broadcast together) or Python ints and
emulates the C++ expression it is named after *exactly*: values are carried in int64 (a product of
two int32 never overflows int64), and an explicit :func:`wrap_int32` / :func:`wrap_int16` or
saturation is applied exactly where the C++ code wraps (signed overflow, compiled as two's
complement wrap-around on every platform TFLite ships for) or saturates (gemmlowp).  Per-channel
multipliers and shifts are arrays that broadcast along the last axis.  Values passed for a C++
``int32_t`` parameter are converted modulo 2^32, as the C++ call would convert them.

Scalars in, Python ``int`` out; arrays in, ``np.int64`` arrays out.  Scalars (and 0-d arrays)
are computed with Python ints all the way through -- the same expressions, exact, and an order
of magnitude faster than 0-d NumPy arrays, which matters where a kernel needs a few per-row
values (a softmax row's reciprocal, an L2 norm's inverse square root).

Sources (read, not copied):

* gemmlowp ``fixedpoint/fixedpoint.h`` -- SaturatingRoundingDoublingHighMul, RoundingDivideByPOT,
  SaturatingRoundingMultiplyByPOT, RoundingHalfSum, the ``FixedPoint<tRawType, tIntegerBits>``
  class and its exp / logistic / tanh / 1/(1+x) approximations.
* TFLite / TFLM ``tensorflow/lite/kernels/internal/common.cc`` and ``common.h`` --
  MultiplyByQuantizedMultiplier (int32 and int64 overloads), the SmallerThanOneExp /
  GreaterThanOne helpers, CountLeadingZeros, GetReciprocal, DownScaleInt32ToInt16Multiplier,
  SaturatingRoundingMultiplyByPOTParam.
* ``tensorflow/lite/kernels/internal/cppmath.h`` -- ``TfLiteRound`` is ``std::round``.

The default everywhere is the *double-rounding* build (``TFLITE_SINGLE_ROUNDING`` undefined),
which is what TFLM and the pip LiteRT/TF wheels compile (see docs/integer-arithmetic.md §1.4).
"""

from __future__ import annotations

from typing import Union

import numpy as np
import numpy.typing as npt

from tflite_ref.errors import UsageError

__all__ = [
    "INT8_MIN",
    "INT8_MAX",
    "INT16_MIN",
    "INT16_MAX",
    "INT32_MIN",
    "INT32_MAX",
    "IntLike",
    "wrap_int32",
    "wrap_int16",
    "wrap_int8",
    "saturate_int32",
    "saturate_int16",
    "saturate_int8",
    "c_div",
    "c_rem",
    "round_away",
    "static_cast_int32",
    "saturating_cast",
    "saturating_rounding_doubling_high_mul",
    "saturating_rounding_doubling_high_mul_int16",
    "rounding_divide_by_pot",
    "saturating_left_shift",
    "saturating_rounding_multiply_by_pot",
    "rounding_half_sum",
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_int64",
    "multiply_by_quantized_multiplier_smaller_than_one_exp",
    "multiply_by_quantized_multiplier_greater_than_one",
    "downscale_int32_to_int16_multiplier",
    "count_leading_zeros",
    "count_leading_sign_bits",
    "exp_on_interval_between_negative_one_quarter_and_0_excl",
    "exp_on_negative_values",
    "one_over_one_plus_x_for_x_in_0_1",
    "one_minus_x_over_one_plus_x_for_x_in_0_1",
    "logistic",
    "tanh",
    "get_reciprocal",
    "log_x_for_x_greater_than_or_equal_to_1",
    "get_inv_sqrt_quantized_multiplier_exp",
]

INT8_MIN = -(1 << 7)
INT8_MAX = (1 << 7) - 1
INT16_MIN = -(1 << 15)
INT16_MAX = (1 << 15) - 1
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

#: What the functions accept: a Python int, a NumPy integer scalar or an integer array.
IntLike = Union[int, np.integer, npt.NDArray[np.integer]]
_I64 = npt.NDArray[np.int64]
#: A value inside this module: a Python int on the scalar path, an int64 array otherwise.
_Int = int | _I64
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


# --------------------------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------------------------


def _i64(x: IntLike) -> _Int:
    """A scalar (or 0-d array) as a Python int, anything else widened to an int64 array.

    Values must fit int64 (uint64 inputs above 2^63 are not meaningful here and are rejected).
    """
    if isinstance(x, (int, np.integer)):  # bool is an int
        v = int(x)
        if not _INT64_MIN <= v <= _INT64_MAX:
            raise UsageError(f"integer value {v} does not fit int64")
        return v
    a = np.asarray(x)
    if a.dtype.kind not in "iub":
        raise UsageError(f"expected integer values, got dtype {a.dtype}")
    if a.dtype == np.uint64 and a.size and int(a.max()) > np.iinfo(np.int64).max:
        raise UsageError("uint64 value does not fit int64")
    if a.ndim == 0:
        return int(a)
    return a.astype(np.int64, copy=False)


def _ret(r: _Int) -> IntLike:
    """Scalar results are Python ints, so scalar code reads like the C++ it mirrors."""
    if isinstance(r, (int, np.integer)):
        return int(r)
    return int(r) if r.ndim == 0 else r


def _where(cond: bool | np.bool_ | npt.NDArray[np.bool_], a: _Int, b: _Int) -> _Int:
    """``np.where``, or the plain conditional on the scalar path."""
    if isinstance(cond, (bool, np.bool_)):
        return a if cond else b
    return np.where(cond, a, b)


def _max0(v: _Int) -> _Int:
    return max(v, 0) if isinstance(v, int) else np.maximum(v, 0)


def _check_range(name: str, v: _Int, lo: int, hi: int) -> None:
    if isinstance(v, int):
        vmin = vmax = v
    elif v.size:
        vmin, vmax = int(v.min()), int(v.max())
    else:
        return
    if vmin < lo or vmax > hi:
        raise UsageError(f"{name} must be in [{lo}, {hi}], got [{vmin}, {vmax}]")


def _wrap(v: _Int, bits: int) -> _Int:
    half = 1 << (bits - 1)
    mask = (1 << bits) - 1
    return ((v + half) & mask) - half


def _sat(v: _Int, bits: int) -> _Int:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if isinstance(v, int):
        return min(max(v, lo), hi)
    return np.clip(v, lo, hi)


def wrap_int32(x: IntLike) -> IntLike:
    """Two's-complement wrap to int32: what a C++ int32 ``+ - *`` or narrowing cast does."""
    return _ret(_wrap(_i64(x), 32))


def wrap_int16(x: IntLike) -> IntLike:
    """Wrap to int16, as ``static_cast<int16_t>`` of a wider int does."""
    return _ret(_wrap(_i64(x), 16))


def wrap_int8(x: IntLike) -> IntLike:
    """Wrap to int8, as ``static_cast<int8_t>`` of a wider int does."""
    return _ret(_wrap(_i64(x), 8))


def saturate_int32(x: IntLike) -> IntLike:
    """Clamp to [INT32_MIN, INT32_MAX] (e.g. ``SaturatingAddNonGemmlowp`` on int64 sums)."""
    return _ret(_sat(_i64(x), 32))


def saturate_int16(x: IntLike) -> IntLike:
    """Clamp to [-32768, 32767] (gemmlowp ``SaturatingAdd<int16_t>``, TFLite ``SaturatingSub``)."""
    return _ret(_sat(_i64(x), 16))


def saturate_int8(x: IntLike) -> IntLike:
    """Clamp to [-128, 127]: the final clamp of every int8 kernel (do it before ``astype``)."""
    return _ret(_sat(_i64(x), 8))


def c_div(a: IntLike, b: IntLike) -> IntLike:
    """C/C++ integer division, truncating toward zero (NumPy ``//`` floors).

    Division by zero raises ``ZeroDivisionError`` (C++ would be undefined behaviour).
    """
    a64, b64 = _i64(a), _i64(b)
    if np.any(b64 == 0):
        raise ZeroDivisionError("integer division by zero")
    q: _Int = abs(a64) // abs(b64)  # type: ignore[operator]
    return _ret(_where((a64 < 0) != (b64 < 0), -q, q))


def c_rem(a: IntLike, b: IntLike) -> IntLike:
    """C/C++ ``%``: the remainder has the sign of the dividend (``a == b*c_div(a,b) + c_rem``)."""
    a64, b64 = _i64(a), _i64(b)
    return _ret(a64 - b64 * _i64(c_div(a64, b64)))


def round_away(x: float | npt.ArrayLike) -> float | np.floating | npt.NDArray[np.floating]:
    """``std::round`` / ``TfLiteRound``: round half away from zero, keeping the float dtype.

    Computed as ``trunc(x) ± 1`` when the (exactly representable) fractional part is >= 1/2.
    The popular ``sign(x)·floor(|x| + 0.5)`` is wrong for the largest float below 0.5
    (0.49999997f, 0.49999999999999994), where ``|x| + 0.5`` itself rounds up to 1.
    Python's ``round`` and ``np.round``/``np.rint`` round half to even and must not be used.
    Float32 input stays float32 (``roundf``); Python floats give a Python float.
    """
    scalar = isinstance(x, float)
    a = np.asarray(x)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    t = np.trunc(a)
    with np.errstate(invalid="ignore"):  # inf - inf for infinite inputs; they stay infinite
        r = t + np.where(np.abs(a - t) >= 0.5, np.sign(a), 0).astype(a.dtype)
    if scalar:
        return float(r)
    rounded: np.floating | npt.NDArray[np.floating] = r if r.ndim else r[()]
    return rounded


def static_cast_int32(x: npt.ArrayLike) -> _I64:
    """``static_cast<int32_t>(float)`` as the x86-64 builds of the runtimes execute it
    (``cvttss2si`` / ``cvttsd2si``): truncation toward zero, and INT32_MIN for NaN and for
    values outside [-2^31, 2^31), which C++ leaves undefined.  Returned as int64.

    Measured where it matters: QUANTIZE (``AffineQuantize``), LiteRT's ``LUTPopulate<uint8_t>``
    and TFLM's ELU table.  A compiler may instead saturate (:func:`saturating_cast`) when a clamp
    follows the conversion, as it did for LiteRT's ``LUTPopulate<int8_t>``.
    """
    v = np.asarray(x)
    with np.errstate(invalid="ignore"):
        ok = (v >= -(2.0**31)) & (v < 2.0**31)  # False for NaN
        return np.where(ok, np.trunc(np.where(ok, v, 0)), INT32_MIN).astype(np.int64)


def saturating_cast(x: npt.ArrayLike, dtype: npt.DTypeLike, *, nan: int = 0) -> np.ndarray:
    """Float to integer ``dtype``: truncation toward zero, out-of-range values (and +-inf)
    clamped to the type's limits, NaN mapped to ``nan``.

    This is quantization_util.h ``SafeCast`` (NaN -> 0) and LLVM's ``fptosi.sat``; LiteRT's CAST
    gives NaN -> the type's maximum (``nan=max``), TFLM's 0.
    """
    info = np.iinfo(dtype)
    v = np.asarray(x).astype(np.float64)  # exact for float16/32; float64 keeps its own value
    is_nan = np.isnan(v)
    t = np.trunc(np.where(is_nan, 0.0, v))
    # Compare in float64 against 2^bits-style bounds so no rounded bound admits an overflow.
    hi_excl = float(info.max) + 1.0
    lo = float(info.min)
    below, above = t < lo, t >= hi_excl
    inside = np.where(below | above, 0.0, t)
    out = inside.astype(np.int64) if info.max <= np.iinfo(np.int64).max else inside.astype(
        np.uint64)
    out = np.where(below, info.min, np.where(above, info.max, out))
    out = np.where(is_nan, nan, out)
    return out.astype(dtype)


# --------------------------------------------------------------------------------------------
# gemmlowp scalar primitives
# --------------------------------------------------------------------------------------------


def _srdhm(a: _Int, b: _Int, bits: int) -> _Int:
    # gemmlowp computes ab = a*b in 2*bits, adds nudge = ab >= 0 ? 2^(bits-2) : 1 - 2^(bits-2)
    # and divides by 2^(bits-1) truncating toward zero.  For ab < 0,
    # trunc((ab + 1 - 2^(bits-2)) / 2^(bits-1)) == floor((ab + 2^(bits-2)) / 2^(bits-1)),
    # so both branches collapse to one arithmetic shift (round half toward +inf).
    lo = -(1 << (bits - 1))
    r = (a * b + (1 << (bits - 2))) >> (bits - 1)
    return _where((a == lo) & (b == lo), -lo - 1, r)


def saturating_rounding_doubling_high_mul(a: IntLike, b: IntLike) -> IntLike:
    """gemmlowp ``SaturatingRoundingDoublingHighMul<int32_t>``: ``(a·b + 2^30) >> 31``.

    The only overflow, ``INT32_MIN · INT32_MIN``, saturates to ``INT32_MAX``.  Inputs must be
    int32 values.  (Equals ARM ``VQRDMULH``.)
    """
    return _ret(_srdhm(_wrap(_i64(a), 32), _wrap(_i64(b), 32), 32))


def saturating_rounding_doubling_high_mul_int16(a: IntLike, b: IntLike) -> IntLike:
    """gemmlowp ``SaturatingRoundingDoublingHighMul<int16_t>``: ``(a·b + 2^14) >> 15``.

    ``-32768 · -32768`` saturates to 32767.  Inputs must be int16 values.
    """
    return _ret(_srdhm(_wrap(_i64(a), 16), _wrap(_i64(b), 16), 16))


def _rdbpot(x: _Int, e: _Int) -> _Int:
    # gemmlowp RoundingDivideByPOT: mask = 2^e - 1; threshold = mask/2 (+1 if x < 0);
    # (x >> e) + (remainder > threshold) -- i.e. round half away from zero.
    mask = (1 << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def rounding_divide_by_pot(x: IntLike, exponent: IntLike) -> IntLike:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded half away from zero.

    ``exponent`` must be in [0, 31] (gemmlowp asserts it).  Works for int32 and int16 raws alike
    (the formula does not depend on the width).
    """
    x64, e64 = _i64(x), _i64(exponent)
    _check_range("exponent", e64, 0, 31)
    return _ret(_rdbpot(x64, e64))


def _sat_lshift(x: _Int, e: _Int, bits: int) -> _Int:
    # gemmlowp ImplSaturatingRoundingMultiplyByPOT<Exponent > 0> and TFLite's
    # SaturatingRoundingMultiplyByPOTParam: threshold = 2^(bits-1-e) - 1 (computed in int),
    # x > threshold -> max, x < -threshold -> min, else x << e.
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    threshold = (1 << (bits - 1 - e)) - 1
    shifted = _sat(x << e, bits)  # gemmlowp's ShiftLeft itself saturates in 64 bits
    r = _where(x > threshold, hi, shifted)
    return _where(x < -threshold, lo, r)


def saturating_left_shift(x: IntLike, exponent: IntLike, *, bits: int = 32) -> IntLike:
    """Saturating ``x · 2^exponent`` for ``exponent >= 0`` on an int32 (or int16) raw value.

    This is gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent > 0>`` / TFLite
    ``SaturatingRoundingMultiplyByPOTParam`` with a non-negative exponent (exponent 0 is the
    identity).  ``bits`` is the width of the raw type (32 or 16).
    """
    x64, e64 = _i64(x), _i64(exponent)
    _check_range("exponent", e64, 0, bits - 1)
    r = _sat_lshift(x64, e64, bits)
    return _ret(_where(e64 == 0, x64, r))


def saturating_rounding_multiply_by_pot(
    x: IntLike, exponent: IntLike, *, bits: int = 32
) -> IntLike:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` with a runtime exponent.

    Positive exponents shift left with saturation, negative ones are
    :func:`rounding_divide_by_pot` (round half away from zero), zero is the identity.
    """
    x64, e64 = _i64(x), _i64(exponent)
    _check_range("exponent", e64, -31, bits - 1)
    left = _sat_lshift(x64, _max0(e64), bits)
    right = _rdbpot(x64, _max0(-e64))
    return _ret(_where(e64 > 0, left, _where(e64 < 0, right, x64)))


def rounding_half_sum(a: IntLike, b: IntLike, *, bits: int = 32) -> IntLike:
    """gemmlowp ``RoundingHalfSum``: ``(a + b + sign(a + b)) / 2`` with truncating division.

    The sum is formed in the wider type, so it never overflows; ``sign`` is +1 for a zero sum.
    """
    s = _i64(a) + _i64(b)
    num = s + _where(s >= 0, 1, -1)
    # C++ truncating division by 2 of a possibly negative number.
    return _ret(_wrap(_where(num >= 0, num >> 1, -((-num) >> 1)), bits))


# --------------------------------------------------------------------------------------------
# TFLite requantization (common.cc / common.h)
# --------------------------------------------------------------------------------------------


def _arg32(x: IntLike) -> _Int:
    # Passing a wider value to an int32_t parameter converts it modulo 2^32.
    return _wrap(_i64(x), 32)


def _pow2_int32(e: _Int) -> _Int:
    # C++ `1 << left_shift` in int: 1 << 31 is INT32_MIN (two's complement); larger is UB.
    _check_range("left shift", e, 0, 31)
    return _wrap(1 << e, 32)


def _mbqm_double(x: _Int, m: _Int, shift: _Int) -> _Int:
    left = _max0(shift)
    right = _max0(-shift)
    _check_range("right shift", right, 0, 31)
    # `x * (1 << left_shift)` is an int32 multiply in common.cc: it wraps on overflow.
    return _rdbpot(_srdhm(_wrap(x * _pow2_int32(left), 32), m, 32), right)


def _mbqm_single(x: _Int, m: _Int, shift: _Int) -> _Int:
    _check_range("shift", shift, -31, 30)
    total = 31 - shift
    r = (x * m + (1 << (total - 1))) >> total
    return _wrap(r, 32)  # static_cast<int32_t>; DCHECKed to fit


def multiply_by_quantized_multiplier(
    x: IntLike, quantized_multiplier: IntLike, shift: IntLike, *, single_rounding: bool = False
) -> IntLike:
    """TFLite ``MultiplyByQuantizedMultiplier(int32_t x, int32_t m, int shift)``.

    Default (double rounding, the build every runtime ships):
    ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x · 2^max(shift,0), m),
    max(-shift,0))`` with the left shift done as a wrapping int32 multiply.  With
    ``single_rounding=True``: the ``TFLITE_SINGLE_ROUNDING`` variant
    ``(x·m + 2^(30-shift)) >> (31-shift)``.

    ``x`` int32 values, ``m`` in [0, 2^31), ``shift`` in [-31, 31] (single: [-31, 30]).
    Per-channel ``m`` / ``shift`` arrays broadcast against ``x``.
    """
    x64, m64, s64 = _arg32(x), _arg32(quantized_multiplier), _i64(shift)
    fn = _mbqm_single if single_rounding else _mbqm_double
    return _ret(fn(x64, m64, s64))


def multiply_by_quantized_multiplier_int64(
    x: IntLike, quantized_multiplier: IntLike, shift: IntLike
) -> IntLike:
    """TFLite ``MultiplyByQuantizedMultiplier(int64_t x, int32_t m, int shift)`` (common.cc).

    Used with int64 accumulators (int16x8 conv / depthwise, TFLM int16 FC).  The multiplier is
    first *reduced to 15 bits*: ``reduced = m < 0x7FFF0000 ? (m + 2^15) >> 16 : 0x7FFF``, then
    ``(x·reduced + 2^(14-shift)) >> (15-shift)`` -- one round-half-up; the result is truncated to
    int32.  Both builds use this same formula.  Valid: ``m >= 0``, ``-31 <= shift < 8``,
    ``|x| < 2^47``.
    """
    x64, m64, s64 = _i64(x), _arg32(quantized_multiplier), _i64(shift)
    _check_range("shift", s64, -31, 7)
    _check_range("x", x64, -(1 << 47), (1 << 47) - 1)
    reduced = _where(m64 < 0x7FFF0000, (m64 + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - s64
    r = (x64 * reduced + (1 << (total - 1))) >> total
    return _ret(_wrap(r, 32))


def multiply_by_quantized_multiplier_smaller_than_one_exp(
    x: IntLike, quantized_multiplier: IntLike, left_shift: IntLike, *, single_rounding: bool = False
) -> IntLike:
    """``MultiplyByQuantizedMultiplierSmallerThanOneExp`` (common.h), ``left_shift <= 0``.

    Double build: ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, m), -left_shift)``
    (used by ADD/SUB); single build: :func:`multiply_by_quantized_multiplier`.
    """
    x64, m64, s64 = _arg32(x), _arg32(quantized_multiplier), _i64(left_shift)
    _check_range("left_shift", s64, -31, 0)
    if single_rounding:
        return _ret(_mbqm_single(x64, m64, s64))
    return _ret(_rdbpot(_srdhm(x64, m64, 32), -s64))


def multiply_by_quantized_multiplier_greater_than_one(
    x: IntLike, quantized_multiplier: IntLike, left_shift: IntLike, *, single_rounding: bool = False
) -> IntLike:
    """``MultiplyByQuantizedMultiplierGreaterThanOne`` (common.h), ``left_shift >= 0``.

    Double build: ``SaturatingRoundingDoublingHighMul(x · 2^left_shift, m)`` with a wrapping
    int32 shift (softmax input scaling); single build: :func:`multiply_by_quantized_multiplier`.
    """
    x64, m64, s64 = _arg32(x), _arg32(quantized_multiplier), _i64(left_shift)
    if single_rounding:
        _check_range("left_shift", s64, 0, 30)
        return _ret(_mbqm_single(x64, m64, s64))
    return _ret(_srdhm(_wrap(x64 * _pow2_int32(s64), 32), m64, 32))


def downscale_int32_to_int16_multiplier(multiplier: IntLike) -> IntLike:
    """``DownScaleInt32ToInt16Multiplier`` (common.h): round a Q31 multiplier to Q15.

    ``m >= 2^31 - 1 - 2^15 -> 32767``, else ``(m + 2^15) >> 16``.  ``m`` must be >= 0.
    """
    m = _i64(multiplier)
    _check_range("multiplier", m, 0, INT32_MAX)
    return _ret(_where(m >= INT32_MAX - (1 << 15), INT16_MAX, (m + (1 << 15)) >> 16))


def count_leading_zeros(x: IntLike, *, bits: int = 32) -> IntLike:
    """``CountLeadingZeros`` of an unsigned ``bits``-wide value (``0 -> bits``).

    Negative inputs are reinterpreted as unsigned, like ``static_cast<uint32_t>(x)``.
    """
    if bits not in (8, 16, 32):
        raise UsageError(f"bits must be 8, 16 or 32, got {bits}")
    v = _i64(x) & ((1 << bits) - 1)
    if isinstance(v, int):
        return bits - v.bit_length()
    # frexp is exact for integers below 2^53 and gives the bit length as its exponent.
    _, e = np.frexp(v.astype(np.float64))
    return _ret(bits - e.astype(np.int64))


def count_leading_sign_bits(x: IntLike, *, bits: int = 32) -> IntLike:
    """``CountLeadingSignBits`` (common.h) of a signed ``bits``-wide value: ``__builtin_clrsb``.

    The number of bits after the sign bit that equal it (0 and -1 give ``bits - 1``, the
    minimum gives 0).
    """
    v = _i64(x)
    u = _where(v < 0, ~v, v)  # clrsb(x) == clz(x ^ (x >> (bits-1))) - 1
    return _ret(_i64(count_leading_zeros(u, bits=bits)) - 1)


# --------------------------------------------------------------------------------------------
# gemmlowp FixedPoint<tRawType, tIntegerBits> transcendental functions
# --------------------------------------------------------------------------------------------
# A raw value is carried as int64; `bits` (32 or 16) selects FixedPoint<int32_t, N> or
# FixedPoint<int16_t, N>.  In gemmlowp, `+`/`-`/unary `-` on the raw type are plain C++ ops:
# they wrap (int16 via the implicit narrowing back from int); `*` of two fixed-point values is
# SaturatingRoundingDoublingHighMul, and the integer bits of the product add up.


def _check_bits(bits: int) -> None:
    if bits not in (16, 32):
        raise UsageError(f"bits must be 16 or 32, got {bits}")


def _const(v32: int, bits: int) -> int:
    # GEMMLOWP_CHECKED_FIXEDPOINT_CONSTANT -> RescaleConstantInitializer: the constants are
    # written for int32 and rounded (RoundingDivideByPOT) down to the raw width.
    if bits == 32:
        return v32
    return int(_rdbpot(v32, 32 - bits))


def _one(integer_bits: int, bits: int) -> int:
    # FixedPoint::One(): the raw max when there are no integer bits, else 1 << fractional_bits.
    if integer_bits == 0:
        return (1 << (bits - 1)) - 1
    return 1 << (bits - 1 - integer_bits)


def _rescale(x: _Int, src_integer_bits: int, dst_integer_bits: int, bits: int) -> _Int:
    # gemmlowp Rescale<dst>(FixedPoint<src>) = SaturatingRoundingMultiplyByPOT<src - dst>.
    e = src_integer_bits - dst_integer_bits
    if e > 0:
        return _sat_lshift(x, e, bits)
    if e < 0:
        return _rdbpot(x, -e)
    return x


def _fp_exp_quarter(a: _Int, bits: int) -> _Int:
    # exp_on_interval_between_negative_one_quarter_and_0_excl: Taylor series of exp around
    # -1/8 in Q0.(bits-1); x = a + 1/8.
    def w(v: _Int) -> _Int:  # raw +/-: wrapping
        return _wrap(v, bits)

    def mul(p: _Int, q: _Int) -> _Int:
        return _srdhm(p, q, bits)

    constant_term = _const(1895147668, bits)  # exp(-1/8)
    constant_1_over_3 = _const(715827883, bits)
    x = w(a + (1 << (bits - 1 - 3)))  # ConstantPOT<-3>
    x2 = mul(x, x)
    x3 = mul(x2, x)
    x4 = mul(x2, x2)
    x4_over_4 = _rdbpot(x4, 2)
    t = _rdbpot(w(mul(w(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    prod = mul(constant_term, w(x + t))
    # AddSaturatingIf16Bit: saturating for int16 raws, a plain (wrapping) add for int32.
    return _sat(constant_term + prod, 16) if bits == 16 else w(constant_term + prod)


def _fp_exp_neg(a: _Int, integer_bits: int, bits: int) -> _Int:
    frac = bits - 1 - integer_bits

    def w(v: _Int) -> _Int:
        return _wrap(v, bits)

    one_quarter = 1 << (frac - 2)  # InputF::ConstantPOT<-2>
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = w((a & mask) - one_quarter)
    result = _fp_exp_quarter(_rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0, bits), bits)
    remainder = w(a_mod_quarter_minus_one_quarter - a)
    # Barrel shifter: multiply by exp(-2^k) for every set bit k of the remainder.
    for exponent, multiplier in (
        (-2, 1672461947),  # exp(-1/4)
        (-1, 1302514674),  # exp(-1/2)
        (0, 790015084),  # exp(-1)
        (1, 290630308),  # exp(-2)
        (2, 39332535),  # exp(-4)
        (3, 720401),  # exp(-8)
        (4, 242),  # exp(-16)
    ):
        if integer_bits > exponent:
            k = _const(multiplier, bits)
            bit = 1 << (frac + exponent)
            result = _where((remainder & bit) != 0, _srdhm(result, k, bits), result)
    if integer_bits > 5:
        clamp = _const(-(1 << (36 - integer_bits)), bits)  # -32 in the input format
        result = _where(a < clamp, 0, result)
    return _where(a == 0, _one(0, bits), result)


def _fp_newton_reciprocal(a: _Int, bits: int) -> _Int:
    # Shared body of one_over_one_plus_x / one_minus_x_over_one_plus_x: Newton-Raphson for
    # 1/half_denominator in Q2.(bits-3), starting from 48/17 - 32/17·d.

    def w(v: _Int) -> _Int:
        return _wrap(v, bits)

    half_denominator = _i64(rounding_half_sum(a, _one(0, bits), bits=bits))
    c48_17 = _const(1515870810, bits)
    cm32_17 = _const(-1010580540, bits)
    one_f2 = _one(2, bits)
    x = w(c48_17 + _srdhm(half_denominator, cm32_17, bits))
    for _ in range(3):
        half_denominator_times_x = _srdhm(half_denominator, x, bits)
        one_minus = w(one_f2 - half_denominator_times_x)
        x = w(x + _rescale(_srdhm(x, one_minus, bits), 4, 2, bits))
    return x


def exp_on_interval_between_negative_one_quarter_and_0_excl(
    a: IntLike, *, bits: int = 32
) -> IntLike:
    """gemmlowp ``exp_on_interval_between_negative_one_quarter_and_0_excl`` (Q0 in, Q0 out)."""
    _check_bits(bits)
    return _ret(_fp_exp_quarter(_i64(a), bits))


def exp_on_negative_values(a: IntLike, integer_bits: int, *, bits: int = 32) -> IntLike:
    """gemmlowp ``exp_on_negative_values(FixedPoint<raw, integer_bits>)`` -> Q0 raw.

    ``a`` is a raw value with ``integer_bits`` integer bits (a <= 0); ``a == 0`` gives the Q0
    "one" (raw max); below -32 is clamped to 0 only when ``integer_bits > 5``.
    """
    _check_bits(bits)
    if not 0 <= integer_bits < bits - 2:
        raise UsageError(f"integer_bits must be in [0, {bits - 3}], got {integer_bits}")
    return _ret(_fp_exp_neg(_i64(a), integer_bits, bits))


def one_over_one_plus_x_for_x_in_0_1(a: IntLike, *, bits: int = 32) -> IntLike:
    """gemmlowp ``one_over_one_plus_x_for_x_in_0_1``: Q0 raw ``a`` in [0, 1) -> 1/(1+a) in Q0.

    Three Newton-Raphson steps in Q2, then ``Rescale<0>(ExactMulByPot<-1>(x))`` (a saturating
    doubling).
    """
    _check_bits(bits)
    x = _fp_newton_reciprocal(_i64(a), bits)
    return _ret(_rescale(x, 1, 0, bits))


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: IntLike, *, bits: int = 32) -> IntLike:
    """gemmlowp ``one_minus_x_over_one_plus_x_for_x_in_0_1``: (1-a)/(1+a) in Q0 (for tanh)."""
    _check_bits(bits)
    x = _fp_newton_reciprocal(_i64(a), bits)
    return _ret(_rescale(_wrap(x - _one(2, bits), bits), 2, 0, bits))


def logistic(a: IntLike, integer_bits: int, *, bits: int = 32) -> IntLike:
    """gemmlowp ``logistic(FixedPoint<raw, integer_bits>)`` -> Q0 raw (1/2 for ``a == 0``).

    ``bits=32`` is what TFLM's int8 LOGISTIC uses (``integer_bits=4``); ``bits=16`` is the
    ``FixedPoint<int16_t, N>`` flavour of TFLite's integer LSTM.
    """
    _check_bits(bits)
    a64 = _i64(a)
    neg_a = _wrap(-a64, bits)
    positive = a64 > 0
    abs_input = _where(positive, a64, neg_a)
    # logistic_on_positive_values(x) = one_over_one_plus_x(exp_on_negative_values(-x))
    e = _fp_exp_neg(_wrap(-abs_input, bits), integer_bits, bits)
    result_if_positive = _rescale(_fp_newton_reciprocal(e, bits), 1, 0, bits)
    result_if_negative = _wrap(_one(0, bits) - result_if_positive, bits)
    one_half = _const(1 << 30, bits)
    r = _where(positive, result_if_positive, result_if_negative)
    return _ret(_where(a64 == 0, one_half, r))


def tanh(a: IntLike, integer_bits: int, *, bits: int = 32) -> IntLike:
    """gemmlowp ``tanh(FixedPoint<raw, integer_bits>)`` -> Q0 raw (0 for ``a == 0``).

    Computed as ``(1 - e)/(1 + e)`` with ``e = exp(-2|a|)`` (``ExactMulByPot<1>`` adds an
    integer bit instead of shifting).
    """
    _check_bits(bits)
    a64 = _i64(a)
    negative = a64 < 0
    n = _where(negative, a64, _wrap(-a64, bits))
    e = _fp_exp_neg(n, integer_bits + 1, bits)
    x = _fp_newton_reciprocal(e, bits)
    t = _rescale(_wrap(x - _one(2, bits), bits), 2, 0, bits)
    r = _where(negative, _wrap(-t, bits), t)
    return _ret(_where(a64 == 0, 0, r))


def get_reciprocal(x: IntLike, x_integer_digits: int) -> tuple[IntLike, IntLike]:
    """TFLite ``GetReciprocal`` (common.h) -> ``(reciprocal_q0_raw, num_bits_over_unit)``.

    ``x`` (> 0) has ``x_integer_digits`` integer bits; it is normalised by its leading zeros to
    ``1 + f`` with f in [0, 1) and ``1/(1+f)`` comes from
    :func:`one_over_one_plus_x_for_x_in_0_1`.
    """
    x64 = _i64(x)
    headroom_plus_one = _i64(count_leading_zeros(x64))
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    # (uint32)x << headroom - (1u << 31), reinterpreted as int32 (shift count 32 only for x=0).
    u = (x64 & 0xFFFFFFFF) << headroom_plus_one  # headroom_plus_one <= 32
    shifted_minus_one = _wrap((u & 0xFFFFFFFF) - (1 << 31), 32)
    recip = _rescale(_fp_newton_reciprocal(shifted_minus_one, 32), 1, 0, 32)
    return _ret(recip), _ret(num_bits_over_unit)


def _any(cond: bool | np.bool_ | npt.NDArray[np.bool_]) -> bool:
    return bool(cond) if isinstance(cond, (bool, np.bool_)) else bool(np.any(cond))


def log_x_for_x_greater_than_or_equal_to_1(
    x: IntLike, input_integer_bits: int, output_integer_bits: int
) -> IntLike:
    """TFLite ``log_x_for_x_greater_than_or_equal_to_1<OutputIntegerBits, InputIntegerBits>``
    (``log_x_for_x_greater_than_or_equal_to_1_impl``, common.h): ln(x) of a
    ``FixedPoint<int32, input_integer_bits>`` raw value ``x >= 1``, as a
    ``FixedPoint<int32, output_integer_bits>`` raw value.  LOG_SOFTMAX uses it (12 -> 5).

    ``x = 2^k · r`` with r in [sqrt(1/2), sqrt(2)) -- two candidate normalisations, the better one
    kept -- and ``ln x = k·ln 2 + ln r``, where ``ln r`` is a rational approximation in
    ``q = 2(r − 2^(−1/4))``.  The sum is accumulated with one extra integer bit (``k·ln 2`` may
    saturate), then rescaled.
    """
    accum_bits = output_integer_bits + 1  # kAccumIntegerBits
    log_2, sqrt_sqrt_half, sqrt_half = 1488522236, 1805811301, 1518500250
    alpha_n, alpha_d, alpha_i, alpha_f = 117049297, 127690142, 1057819769, 638450708
    shifted_quarter = int(_rdbpot(536870912, accum_bits))  # Rescale<kAccumIntegerBits>(1/4)

    def mul(a: _Int, b: _Int) -> _Int:  # FixedPoint * (SaturatingRoundingDoublingHighMul)
        return _srdhm(_wrap(a, 32), _wrap(b, 32), 32)

    def pot_param(v: _Int, exponent: _Int) -> _Int:  # SaturatingRoundingMultiplyByPOTParam
        _check_range("exponent", exponent, 0, 31)
        return _where(exponent == 0, v, _sat_lshift(v, exponent, 32))

    z_a = _i64(x)
    z_a_headroom_plus_1 = _i64(count_leading_zeros(z_a))
    r_a_tmp = pot_param(z_a, z_a_headroom_plus_1 - 1)
    r_a_raw = pot_param(mul(r_a_tmp, sqrt_half), 1)
    # SaturatingAddNonGemmlowp / SaturatingSub: int32 saturating
    z_a_pow_2_adj = _sat(pot_param(input_integer_bits - z_a_headroom_plus_1, 31 - accum_bits)
                         + shifted_quarter, 32)
    z_b = mul(z_a, sqrt_half)
    z_b_headroom = _i64(count_leading_zeros(z_b)) - 1
    r_b_raw = pot_param(z_a, z_b_headroom)
    z_b_pow_2_adj = _sat(pot_param(input_integer_bits - z_b_headroom, 31 - accum_bits)
                         - shifted_quarter, 32)
    r = _where(r_a_raw <= r_b_raw, r_a_raw, r_b_raw)  # std::min
    z_pow_2_adj = _where(z_a_pow_2_adj >= z_b_pow_2_adj, z_a_pow_2_adj, z_b_pow_2_adj)  # max

    p = _i64(rounding_half_sum(r, sqrt_sqrt_half))
    q = _wrap(r - sqrt_sqrt_half, 32)
    q = _wrap(q + q, 32)
    common_sq = mul(q, q)
    num = _wrap(mul(q, r) + mul(mul(q, common_sq), alpha_n), 32)
    denom_minus_one_0 = _wrap(
        mul(p, _wrap(_wrap(alpha_i + q, 32) + mul(alpha_d, common_sq), 32)) + mul(alpha_f, q), 32)
    recip_denom = _i64(one_over_one_plus_x_for_x_in_0_1(denom_minus_one_0))
    num_scaled = _rdbpot(num, accum_bits)  # Rescale<kAccumIntegerBits>(num)
    result = _wrap(mul(z_pow_2_adj, log_2) + mul(num_scaled, recip_denom), 32)
    return _ret(_rescale(result, accum_bits, output_integer_bits, 32))


def get_inv_sqrt_quantized_multiplier_exp(x: IntLike, reverse_shift: int
                                          ) -> tuple[IntLike, IntLike]:
    """TFLite ``GetInvSqrtQuantizedMultiplierExp`` (common.h) -> ``(multiplier, shift)``:
    ``1/sqrt(x)`` of an int32 ``x >= 0`` as a quantized multiplier; the shift is a right shift
    times ``reverse_shift`` (``kReverseShift = -1`` makes it a left-shift exponent for
    MultiplyByQuantizedMultiplier).

    ``x`` is brought to [2^27, 2^29) by pairs of bits (a Q3.28 value in [0.5, 2)), five
    Newton-Raphson steps ``r <- 1.5·r - (x/2)·r^3`` run in ``FixedPoint<int32, 3>``, and the result
    is scaled by sqrt(2)/2; a negative shift is folded into the multiplier (a wrapping int32
    shift).  ``x <= 1`` (0 is invalid, 1 would overflow) gives ``(INT32_MAX, 0)``.  Used by
    L2_NORMALIZATION, int8 RSQRT and the integer LSTM's layer norm.
    """
    value = _i64(x)
    small = value <= 1
    value = _where(small, 4, value)  # the early-return lanes just need a valid input
    shift: _Int = 11
    big = value >= (1 << 29)
    while _any(big):  # input /= 4; ++output_shift
        value = _where(big, value // 4, value)
        shift = shift + big
        big = value >= (1 << 29)
    left_shift_bit_pairs = (_i64(count_leading_zeros(value)) - 1) // 2 - 1
    shift = shift - left_shift_bit_pairs
    value = value << (2 * left_shift_bit_pairs)
    half_input = _rdbpot(value >> 1, 1)  # SaturatingRoundingMultiplyByPOT<-1>(F3::FromRaw)
    half_three = (1 << 28) + (1 << 27)  # 1.5 in F3
    r: _Int = 1 << 28  # F3::One()
    for _ in range(5):
        # r·r·r is F9 (integer bits add up); Rescale<3> is a saturating left shift by 6.
        x3 = _sat_lshift(_srdhm(_srdhm(r, r, 32), r, 32), 6, 32)
        # both products are F6; their wrapping difference, Rescale<3>d.
        r = _sat_lshift(_wrap(_srdhm(half_three, r, 32) - _srdhm(half_input, x3, 32), 32), 3, 32)
    r = _srdhm(r, 1518500250, 32)  # · sqrt(2)/2 in F0: stays F3
    negative = shift < 0
    r = _where(negative, _wrap(r << _max0(-shift), 32), r)
    shift = _where(negative, 0, shift)
    return _ret(_where(small, INT32_MAX, r)), _ret(_where(small, 0, shift * reverse_shift))
