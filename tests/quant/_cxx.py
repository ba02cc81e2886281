"""Literal scalar transcriptions of the C++ integer functions, in plain Python ints.

Each function follows its upstream definition statement by statement -- branches, nudges,
truncating division, the int32/int16 narrowing casts -- with no algebraic shortcut, so that the
vectorised closed forms in ``tflite_ref.quant`` can be checked against them.  Sources:
gemmlowp ``fixedpoint/fixedpoint.h``; TFLite ``kernels/internal/common.cc``, ``common.h``,
``quantization_util.cc``, ``cppmath.h``.
"""

from __future__ import annotations

import math

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def narrow(v: int, bits: int) -> int:
    """static_cast to a signed ``bits``-wide int (two's complement wrap)."""
    m = 1 << bits
    v %= m
    return v - m if v >= m // 2 else v


def i32(v: int) -> int:
    return narrow(v, 32)


def tdiv(a: int, b: int) -> int:
    """C++ ``/`` on integers: truncation toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def std_round(x: float) -> float:
    """std::round on a double: half away from zero (via exact fractional part)."""
    if not math.isfinite(x):
        return x
    t = float(math.trunc(x))
    frac = x - t
    if frac >= 0.5:
        return t + 1.0
    if frac <= -0.5:
        return t - 1.0
    return t


# -- gemmlowp ---------------------------------------------------------------------------------
def srdhm(a: int, b: int, bits: int = 32) -> int:
    """SaturatingRoundingDoublingHighMul<int32_t / int16_t>."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    overflow = a == b and a == lo
    ab = a * b  # int64 (int32 for the int16 flavour): exact
    nudge = (1 << (bits - 2)) if ab >= 0 else (1 - (1 << (bits - 2)))
    ab_x2_high = narrow(tdiv(ab + nudge, 1 << (bits - 1)), bits)
    return hi if overflow else ab_x2_high


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    assert 0 <= exponent <= 31
    mask = (1 << exponent) - 1
    zero, one = 0, 1
    remainder = x & mask
    threshold = (mask >> 1) + (one if x < zero else 0)
    return (x >> exponent) + (one if remainder > threshold else 0)


def shift_left_saturating(a: int, offset: int, bits: int) -> int:
    """gemmlowp ShiftLeft: in 64 bits, clamped to the raw type."""
    wide = a * (1 << offset)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return lo if wide < lo else hi if wide > hi else wide


def saturating_rounding_multiply_by_pot(x: int, exponent: int, bits: int = 32) -> int:
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    threshold = (1 << (bits - 1 - exponent)) - 1
    positive_mask = x > threshold
    negative_mask = x < -threshold
    result = shift_left_saturating(x, exponent, bits)
    result = hi if positive_mask else result
    result = lo if negative_mask else result
    return result


def rounding_half_sum(a: int, b: int, bits: int = 32) -> int:
    s = a + b
    sign = 1 if s >= 0 else -1
    return narrow(tdiv(s + sign, 2), bits)


class FP:
    """gemmlowp FixedPoint<int32_t or int16_t, integer_bits> on one scalar."""

    def __init__(self, raw: int, ib: int, bits: int = 32) -> None:
        self.raw, self.ib, self.bits = raw, ib, bits

    @property
    def frac(self) -> int:
        return self.bits - 1 - self.ib

    def _new(self, raw: int, ib: int | None = None) -> "FP":
        return FP(raw, self.ib if ib is None else ib, self.bits)

    def __add__(self, o: "FP") -> "FP":
        return self._new(narrow(self.raw + o.raw, self.bits))

    def __sub__(self, o: "FP") -> "FP":
        return self._new(narrow(self.raw - o.raw, self.bits))

    def __neg__(self) -> "FP":
        return self._new(narrow(-self.raw, self.bits))

    def __and__(self, o: "FP") -> "FP":
        return self._new(self.raw & o.raw)

    def __mul__(self, o: "FP") -> "FP":
        return self._new(srdhm(self.raw, o.raw, self.bits), self.ib + o.ib)


def constant(ib: int, int32_value: int, bits: int) -> FP:
    """GEMMLOWP_CHECKED_FIXEDPOINT_CONSTANT -> RescaleConstantInitializer."""
    return FP(narrow(rounding_divide_by_pot(int32_value, 32 - bits), bits), ib, bits)


def constant_pot(ib: int, exponent: int, bits: int) -> FP:
    offset = bits - 1 - ib + exponent
    assert offset < 31
    return FP(1 << offset, ib, bits)


def one(ib: int, bits: int) -> FP:
    return FP((1 << (bits - 1)) - 1 if ib == 0 else 1 << (bits - 1 - ib), ib, bits)


def zero(ib: int, bits: int) -> FP:
    return FP(0, ib, bits)


def rescale(x: FP, dst_ib: int) -> FP:
    return FP(saturating_rounding_multiply_by_pot(x.raw, x.ib - dst_ib, x.bits), dst_ib, x.bits)


def exact_mul_by_pot(x: FP, exponent: int) -> FP:
    return FP(x.raw, x.ib + exponent, x.bits)


def select(mask: bool, a: FP, b: FP) -> FP:
    return a if mask else b


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: FP) -> FP:
    bits = a.bits
    constant_term = constant(0, 1895147668, bits)
    constant_1_over_3 = constant(0, 715827883, bits)
    x = a + constant_pot(0, -3, bits)
    x2 = x * x
    x3 = x2 * x
    x4 = x2 * x2
    x4_over_4 = FP(saturating_rounding_multiply_by_pot(x4.raw, -2, bits), 0, bits)
    poly = FP(
        saturating_rounding_multiply_by_pot((((x4_over_4 + x3) * constant_1_over_3) + x2).raw, -1,
                                            bits), 0, bits)
    prod = constant_term * (x + poly)
    if bits == 16:  # AddSaturatingIf16Bit
        s = constant_term.raw + prod.raw
        return FP(max(INT16_MIN, min(INT16_MAX, s)), 0, bits)
    return constant_term + prod


def exp_on_negative_values(a: FP) -> FP:
    bits, ib, frac = a.bits, a.ib, a.frac
    one_quarter = constant_pot(ib, -2, bits)
    mask = one_quarter - FP(1, ib, bits)
    a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, 0))
    remainder = (a_mod_quarter_minus_one_quarter - a).raw

    def barrel(exponent: int, multiplier: int) -> None:
        nonlocal result
        if ib > exponent:
            k = constant(0, multiplier, bits)
            shift_amount = frac + exponent if ib > exponent else 0
            result = select((remainder & (1 << shift_amount)) != 0, result * k, result)

    barrel(-2, 1672461947)
    barrel(-1, 1302514674)
    barrel(+0, 790015084)
    barrel(+1, 290630308)
    barrel(+2, 39332535)
    barrel(+3, 720401)
    barrel(+4, 242)
    if ib > 5:
        clamp_b = 36 - ib
        clamp = constant(ib, -(1 << clamp_b), bits)
        result = select(a.raw < clamp.raw, zero(0, bits), result)
    return select(a.raw == 0, one(0, bits), result)


def _newton(a: FP) -> FP:
    bits = a.bits
    half_denominator = FP(rounding_half_sum(a.raw, one(0, bits).raw, bits), 0, bits)
    c48 = constant(2, 1515870810, bits)
    cm32 = constant(2, -1010580540, bits)
    x = c48 + half_denominator * cm32
    for _ in range(3):
        half_denominator_times_x = half_denominator * x
        one_minus = one(2, bits) - half_denominator_times_x
        x = x + rescale(x * one_minus, 2)
    return x


def one_over_one_plus_x_for_x_in_0_1(a: FP) -> FP:
    return rescale(exact_mul_by_pot(_newton(a), -1), 0)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: FP) -> FP:
    x = _newton(a)
    return rescale(x - one(2, a.bits), 0)


def tanh(a: FP) -> FP:
    bits = a.bits
    mask_if_negative = a.raw < 0
    mask_if_zero = a.raw == 0
    n = select(mask_if_negative, a, -a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(exact_mul_by_pot(n, 1)))
    return select(mask_if_zero, zero(0, bits), select(mask_if_negative, -t, t))


def logistic(a: FP) -> FP:
    bits = a.bits
    mask_if_positive = a.raw > 0
    mask_if_zero = a.raw == 0
    abs_input = select(mask_if_positive, a, -a)
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-abs_input))
    result_if_negative = one(0, bits) - result_if_positive
    one_half = constant(0, 1 << 30, bits)
    return select(mask_if_zero, one_half,
                  select(mask_if_positive, result_if_positive, result_if_negative))


# -- TFLite common.cc / common.h ------------------------------------------------------------
def multiply_by_quantized_multiplier(x: int, m: int, shift: int) -> int:
    """Double-rounding build."""
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    return rounding_divide_by_pot(srdhm(i32(x * i32(1 << left_shift)), m), right_shift)


def multiply_by_quantized_multiplier_single(x: int, m: int, shift: int) -> int:
    """TFLITE_SINGLE_ROUNDING build."""
    assert m >= 0 and -31 <= shift <= 30
    total_shift = 31 - shift
    round_ = 1 << (total_shift - 1)
    result = x * m + round_
    result = result >> total_shift
    return i32(result)


def multiply_by_quantized_multiplier_int64(x: int, m: int, shift: int) -> int:
    assert m >= 0 and -31 <= shift < 8 and -(1 << 47) <= x < (1 << 47)
    reduced_multiplier = ((m + (1 << 15)) >> 16) if m < 0x7FFF0000 else 0x7FFF
    total_shift = 15 - shift
    x = (x * reduced_multiplier) + (1 << (total_shift - 1))
    return i32(x >> total_shift)


def multiply_by_quantized_multiplier_smaller_than_one_exp(x: int, m: int, left_shift: int) -> int:
    return rounding_divide_by_pot(srdhm(x, m), -left_shift)


def multiply_by_quantized_multiplier_greater_than_one(x: int, m: int, left_shift: int) -> int:
    return srdhm(i32(x * (1 << left_shift)), m)


def downscale_int32_to_int16_multiplier(m: int) -> int:
    k_rounding_offset = 1 << 15
    if m >= INT32_MAX - k_rounding_offset:
        return INT16_MAX
    return (m + k_rounding_offset) >> 16


def count_leading_zeros(u: int, bits: int = 32) -> int:
    if u == 0:
        return bits
    one_in_leading_positive = 1 << (bits - 1)
    leading_zeros = 0
    while u < one_in_leading_positive:
        u <<= 1
        leading_zeros += 1
    return leading_zeros


def count_leading_sign_bits(x: int, bits: int = 32) -> int:
    if x >= 0:
        return count_leading_zeros(x, bits) - 1
    if x != -(1 << (bits - 1)):
        return count_leading_zeros(2 * (-x) - 1, bits)
    return 0


def get_reciprocal(x: int, x_integer_digits: int) -> tuple[int, int]:
    headroom_plus_one = count_leading_zeros(x % (1 << 32))
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = i32((((x % (1 << 32)) << headroom_plus_one) % (1 << 32)) - (1 << 31))
    shifted_scale = one_over_one_plus_x_for_x_in_0_1(FP(shifted_sum_minus_one, 0))
    return shifted_scale.raw, num_bits_over_unit


def saturating_rounding_multiply_by_pot_param(x: int, exponent: int) -> int:
    """TFLite SaturatingRoundingMultiplyByPOTParam (int32, runtime exponent >= 0)."""
    assert 0 <= exponent <= 31
    return saturating_rounding_multiply_by_pot(x, exponent)


def saturating_add_non_gemmlowp(a: int, b: int) -> int:
    return min(max(a + b, INT32_MIN), INT32_MAX)


def saturating_sub(a: int, b: int) -> int:
    return min(max(a - b, INT32_MIN), INT32_MAX)


def log_x_for_x_greater_than_or_equal_to_1(input_raw: int, input_integer_bits: int,
                                           output_integer_bits: int) -> int:
    """log_x_for_x_greater_than_or_equal_to_1_impl<OutputIntegerBits, InputIntegerBits>."""
    k_accum_integer_bits = output_integer_bits + 1
    log_2 = constant(0, 1488522236, 32)
    sqrt_sqrt_half = constant(0, 1805811301, 32)
    sqrt_half = constant(0, 1518500250, 32)
    one_quarter = constant(0, 536870912, 32)
    alpha_n = constant(0, 117049297, 32)
    alpha_d = constant(0, 127690142, 32)
    alpha_i = constant(0, 1057819769, 32)
    alpha_f = constant(0, 638450708, 32)
    shifted_quarter = rescale(one_quarter, k_accum_integer_bits)
    z_a = FP(input_raw, 0)
    z_a_headroom_plus_1 = count_leading_zeros(z_a.raw % (1 << 32))
    r_a_tmp = FP(saturating_rounding_multiply_by_pot_param(z_a.raw, z_a_headroom_plus_1 - 1), 0)
    r_a_raw = saturating_rounding_multiply_by_pot_param((r_a_tmp * sqrt_half).raw, 1)
    z_a_pow_2_adj = FP(saturating_add_non_gemmlowp(saturating_rounding_multiply_by_pot_param(
        input_integer_bits - z_a_headroom_plus_1, 31 - k_accum_integer_bits),
        shifted_quarter.raw), k_accum_integer_bits)
    z_b = z_a * sqrt_half
    z_b_headroom = count_leading_zeros(z_b.raw % (1 << 32)) - 1
    r_b_raw = saturating_rounding_multiply_by_pot_param(z_a.raw, z_b_headroom)
    z_b_pow_2_adj = FP(saturating_sub(saturating_rounding_multiply_by_pot_param(
        input_integer_bits - z_b_headroom, 31 - k_accum_integer_bits), shifted_quarter.raw),
        k_accum_integer_bits)
    r = FP(min(r_a_raw, r_b_raw), 0)
    z_pow_2_adj = FP(max(z_a_pow_2_adj.raw, z_b_pow_2_adj.raw), k_accum_integer_bits)
    p = FP(rounding_half_sum(r.raw, sqrt_sqrt_half.raw), 0)
    q = r - sqrt_sqrt_half
    q = q + q
    common_sq = q * q
    num = q * r + q * common_sq * alpha_n
    denom_minus_one_0 = p * (alpha_i + q + alpha_d * common_sq) + alpha_f * q
    recip_denom = one_over_one_plus_x_for_x_in_0_1(denom_minus_one_0)
    num_scaled = rescale(num, k_accum_integer_bits)
    return rescale(z_pow_2_adj * log_2 + num_scaled * recip_denom, output_integer_bits).raw


def get_inv_sqrt_quantized_multiplier_exp(input_: int, reverse_shift: int) -> tuple[int, int]:
    """GetInvSqrtQuantizedMultiplierExp (common.h)."""
    if input_ <= 1:
        return INT32_MAX, 0
    output_shift = 11
    while input_ >= (1 << 29):
        input_ = tdiv(input_, 4)
        output_shift += 1
    max_left_shift_bits = count_leading_zeros(input_) - 1
    max_left_shift_bit_pairs = max_left_shift_bits // 2
    left_shift_bit_pairs = max_left_shift_bit_pairs - 1
    output_shift -= left_shift_bit_pairs
    input_ <<= 2 * left_shift_bit_pairs
    assert (1 << 27) <= input_ < (1 << 29)
    fixedpoint_input = FP(input_ >> 1, 3)
    fixedpoint_half_input = FP(saturating_rounding_multiply_by_pot(fixedpoint_input.raw, -1), 3)
    fixedpoint_half_three = constant(3, (1 << 28) + (1 << 27), 32)
    x = one(3, 32)
    for _ in range(5):
        x3 = rescale(x * x * x, 3)
        x = rescale(fixedpoint_half_three * x - fixedpoint_half_input * x3, 3)
    fixedpoint_half_sqrt_2 = constant(0, 1518500250, 32)
    x = x * fixedpoint_half_sqrt_2
    output_inv_sqrt = x.raw
    if output_shift < 0:
        output_inv_sqrt = i32(output_inv_sqrt << -output_shift)
        output_shift = 0
    return output_inv_sqrt, output_shift * reverse_shift


# -- quantization_util.cc ----------------------------------------------------------------------
def quantize_multiplier(d: float, single_rounding: bool = False) -> tuple[int, int]:
    if d == 0.0:
        return 0, 0
    q, shift = math.frexp(d)
    q_fixed = int(std_round(q * (1 << 31)))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed = tdiv(q_fixed, 2)
        shift += 1
    assert q_fixed <= INT32_MAX
    if shift < -31:
        shift = 0
        q_fixed = 0
    if single_rounding and shift > 30:
        shift = 30
        q_fixed = (1 << 31) - 1
    return q_fixed, shift
