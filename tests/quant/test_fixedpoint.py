"""Vectorised tflite_ref.quant.fixedpoint vs literal scalar transcriptions of the C++ (_cxx.py).

This checks the vectorisation and the closed forms (the formulas themselves are checked live
against the runtimes in test_live_runtimes.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import _cxx as cxx
from tflite_ref import quant as q
from tflite_ref.errors import TFLiteRefError

I32_MIN, I32_MAX = cxx.INT32_MIN, cxx.INT32_MAX
I16_MIN, I16_MAX = cxx.INT16_MIN, cxx.INT16_MAX

SPECIAL32 = [I32_MIN, I32_MIN + 1, -(1 << 30) - 1, -(1 << 30), -2, -1, 0, 1, 2, (1 << 30) - 1,
             1 << 30, I32_MAX - 1, I32_MAX]
SPECIAL16 = [I16_MIN, I16_MIN + 1, -(1 << 14), -1, 0, 1, 1 << 14, I16_MAX - 1, I16_MAX]

int32s = st.one_of(st.integers(I32_MIN, I32_MAX), st.sampled_from(SPECIAL32))
int16s = st.one_of(st.integers(I16_MIN, I16_MAX), st.sampled_from(SPECIAL16))
multipliers = st.one_of(st.integers(1 << 30, I32_MAX), st.integers(0, I32_MAX),
                        st.sampled_from([0, 1, 1 << 30, I32_MAX]))
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def pot_ties(draw: st.DrawFn) -> tuple[int, int]:
    """(x, e) with x exactly halfway between two multiples of 2^e (both signs)."""
    e = draw(st.integers(1, 31))
    k = draw(st.integers(-(1 << (31 - e)), (1 << (31 - e)) - 1))
    x = k * (1 << e) + (1 << (e - 1))
    assume(I32_MIN <= x <= I32_MAX)
    return x, e


@st.composite
def srdhm_ties(draw: st.DrawFn) -> tuple[int, int]:
    """(a, b) with a·b ≡ 2^30 (mod 2^31): the doubling high multiply rounds exactly a half."""
    j = draw(st.integers(0, 30))
    a = draw(st.sampled_from([1, -1])) * (1 << j)
    odd = draw(st.integers(-(1 << j), (1 << j) - 1)) * 2 + 1
    b = odd * (1 << (30 - j))
    assume(I32_MIN <= b <= I32_MAX)
    return a, b


# -- helpers -------------------------------------------------------------------------------------
@SETTINGS
@given(st.lists(st.integers(-(1 << 62), (1 << 62)), min_size=1, max_size=40))
def test_wrap_and_saturate(xs: list[int]) -> None:
    a = np.array(xs, dtype=np.int64)
    assert q.wrap_int32(a).tolist() == [cxx.narrow(x, 32) for x in xs]
    assert q.wrap_int16(a).tolist() == [cxx.narrow(x, 16) for x in xs]
    assert q.wrap_int8(a).tolist() == [cxx.narrow(x, 8) for x in xs]
    assert q.saturate_int32(a).tolist() == [min(max(x, I32_MIN), I32_MAX) for x in xs]
    assert q.saturate_int16(a).tolist() == [min(max(x, I16_MIN), I16_MAX) for x in xs]
    assert q.saturate_int8(a).tolist() == [min(max(x, -128), 127) for x in xs]
    assert q.wrap_int32(xs[0]) == cxx.narrow(xs[0], 32) and isinstance(q.wrap_int32(xs[0]), int)


@SETTINGS
@given(st.lists(st.tuples(int32s, int32s.filter(lambda v: v != 0)), min_size=1, max_size=40))
def test_c_div_rem(pairs: list[tuple[int, int]]) -> None:
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    assert q.c_div(a, b).tolist() == [cxx.tdiv(x, y) for x, y in pairs]
    assert q.c_rem(a, b).tolist() == [x - y * cxx.tdiv(x, y) for x, y in pairs]
    with pytest.raises(ZeroDivisionError):
        q.c_div(1, 0)


@SETTINGS
@given(st.lists(st.floats(-1e12, 1e12, allow_nan=False), min_size=1, max_size=40))
@example([0.5, -0.5, 1.5, -1.5, 2.5, 0.49999999999999994, -0.49999999999999994, 4503599627370497.0])
def test_round_away_float64(xs: list[float]) -> None:
    assert q.round_away(np.array(xs)).tolist() == [cxx.std_round(x) for x in xs]
    assert q.round_away(xs[0]) == cxx.std_round(xs[0])


def test_round_away_float32_keeps_dtype_and_edge() -> None:
    below_half = np.nextafter(np.float32(0.5), np.float32(0))  # 0.49999997f
    v = np.array([below_half, -below_half, 0.5, -0.5, 2.5, -2.5, 8388609.0], dtype=np.float32)
    r = q.round_away(v)
    assert r.dtype == np.float32
    assert r.tolist() == [0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 8388609.0]
    assert np.isnan(q.round_away(np.float32("nan")))
    assert q.round_away(np.float32(np.inf)) == np.inf


# -- gemmlowp primitives ---------------------------------------------------------------------
@SETTINGS
@given(st.lists(st.one_of(st.tuples(int32s, int32s), srdhm_ties()), min_size=1, max_size=60))
@example([(I32_MIN, I32_MIN), (I32_MIN, I32_MAX), (I32_MAX, I32_MAX), (1, 1 << 30), (-1, 1 << 30)])
def test_srdhm_int32(pairs: list[tuple[int, int]]) -> None:
    a, b = (np.array(c, dtype=np.int64) for c in zip(*pairs))
    got = q.saturating_rounding_doubling_high_mul(a, b)
    assert got.tolist() == [cxx.srdhm(x, y) for x, y in pairs]
    assert q.saturating_rounding_doubling_high_mul(*pairs[0]) == cxx.srdhm(*pairs[0])


@SETTINGS
@given(st.lists(st.tuples(int16s, int16s), min_size=1, max_size=60))
@example([(I16_MIN, I16_MIN), (1, 1 << 14), (-1, 1 << 14), (3, -(1 << 13))])
def test_srdhm_int16(pairs: list[tuple[int, int]]) -> None:
    a, b = (np.array(c, dtype=np.int16) for c in zip(*pairs))
    got = q.saturating_rounding_doubling_high_mul_int16(a, b)
    assert got.tolist() == [cxx.srdhm(x, y, 16) for x, y in pairs]


@SETTINGS
@given(st.lists(st.one_of(st.tuples(int32s, st.integers(0, 31)), pot_ties()), min_size=1,
                max_size=60))
def test_rounding_divide_by_pot(pairs: list[tuple[int, int]]) -> None:
    x, e = (np.array(c, dtype=np.int64) for c in zip(*pairs))
    assert q.rounding_divide_by_pot(x, e).tolist() == [
        cxx.rounding_divide_by_pot(a, b) for a, b in pairs]


def test_rounding_divide_by_pot_exhaustive_small() -> None:
    x = np.arange(-4096, 4097)
    for e in range(0, 14):
        assert q.rounding_divide_by_pot(x, e).tolist() == [
            cxx.rounding_divide_by_pot(int(v), e) for v in x]
    with pytest.raises(TFLiteRefError):
        q.rounding_divide_by_pot(1, 32)
    with pytest.raises(ValueError):
        q.rounding_divide_by_pot(1, -1)


@SETTINGS
@given(st.lists(st.tuples(int32s, st.integers(-31, 31)), min_size=1, max_size=60))
def test_saturating_rounding_multiply_by_pot(pairs: list[tuple[int, int]]) -> None:
    x, e = (np.array(c, dtype=np.int64) for c in zip(*pairs))
    assert q.saturating_rounding_multiply_by_pot(x, e).tolist() == [
        cxx.saturating_rounding_multiply_by_pot(a, b) for a, b in pairs]
    pos = [(a, b) for a, b in pairs if b >= 0]
    if pos:
        x, e = (np.array(c, dtype=np.int64) for c in zip(*pos))
        assert q.saturating_left_shift(x, e).tolist() == [
            cxx.saturating_rounding_multiply_by_pot(a, b) for a, b in pos]


@SETTINGS
@given(st.lists(st.tuples(int16s, st.integers(-15, 15)), min_size=1, max_size=60))
def test_saturating_rounding_multiply_by_pot_int16(pairs: list[tuple[int, int]]) -> None:
    x, e = (np.array(c, dtype=np.int64) for c in zip(*pairs))
    assert q.saturating_rounding_multiply_by_pot(x, e, bits=16).tolist() == [
        cxx.saturating_rounding_multiply_by_pot(a, b, 16) for a, b in pairs]


@SETTINGS
@given(st.lists(st.tuples(int32s, int32s), min_size=1, max_size=60),
       st.lists(st.tuples(int16s, int16s), min_size=1, max_size=60))
def test_rounding_half_sum(p32: list[tuple[int, int]], p16: list[tuple[int, int]]) -> None:
    a, b = (np.array(c) for c in zip(*p32))
    assert q.rounding_half_sum(a, b).tolist() == [cxx.rounding_half_sum(x, y) for x, y in p32]
    a, b = (np.array(c) for c in zip(*p16))
    assert q.rounding_half_sum(a, b, bits=16).tolist() == [
        cxx.rounding_half_sum(x, y, 16) for x, y in p16]


# -- requantization ----------------------------------------------------------------------------
@SETTINGS
@given(st.lists(st.tuples(int32s, multipliers, st.integers(-31, 31)), min_size=1, max_size=60))
@example([(I32_MIN, I32_MAX, 31), (I32_MAX, 1 << 30, 1), (-(1 << 30), 1 << 30, 1),
          (3, 1 << 30, -1), (-3, 1 << 30, -1), (5, 1 << 30, -31), (I32_MIN, 1 << 30, -31)])
def test_multiply_by_quantized_multiplier_double_rounding(
        triples: list[tuple[int, int, int]]) -> None:
    x, m, s = (np.array(c, dtype=np.int64) for c in zip(*triples))
    assert q.multiply_by_quantized_multiplier(x, m, s).tolist() == [
        cxx.multiply_by_quantized_multiplier(*t) for t in triples]


def test_multiply_by_quantized_multiplier_per_channel_broadcast() -> None:
    rng = np.random.default_rng(7)
    acc = rng.integers(-(1 << 20), 1 << 20, size=(3, 5, 8))
    m = rng.integers(1 << 30, I32_MAX, size=8)
    s = rng.integers(-12, 3, size=8)
    got = q.multiply_by_quantized_multiplier(acc, m, s)
    assert got.shape == acc.shape and got.dtype == np.int64
    want = np.array([cxx.multiply_by_quantized_multiplier(int(acc[i, j, c]), int(m[c]), int(s[c]))
                     for i in range(3) for j in range(5) for c in range(8)]).reshape(acc.shape)
    assert np.array_equal(got, want)
    assert isinstance(q.multiply_by_quantized_multiplier(5, 1 << 30, 0), int)
    with pytest.raises(ValueError):
        q.multiply_by_quantized_multiplier(1, 1 << 30, 32)
    with pytest.raises(ValueError):
        q.multiply_by_quantized_multiplier(1, 1 << 30, -32)


@SETTINGS
@given(st.lists(st.tuples(int32s, multipliers, st.integers(-31, 30)), min_size=1, max_size=60))
def test_multiply_by_quantized_multiplier_single_rounding(
        triples: list[tuple[int, int, int]]) -> None:
    x, m, s = (np.array(c, dtype=np.int64) for c in zip(*triples))
    assert q.multiply_by_quantized_multiplier(x, m, s, single_rounding=True).tolist() == [
        cxx.multiply_by_quantized_multiplier_single(*t) for t in triples]


@SETTINGS
@given(st.lists(st.tuples(st.integers(-(1 << 47), (1 << 47) - 1), multipliers,
                          st.integers(-31, 7)), min_size=1, max_size=60))
@example([(-(1 << 47), I32_MAX, 7), ((1 << 47) - 1, 0x7FFF0000, -31), (12345, 0x7FFEFFFF, 0)])
def test_multiply_by_quantized_multiplier_int64(triples: list[tuple[int, int, int]]) -> None:
    x, m, s = (np.array(c, dtype=np.int64) for c in zip(*triples))
    assert q.multiply_by_quantized_multiplier_int64(x, m, s).tolist() == [
        cxx.multiply_by_quantized_multiplier_int64(*t) for t in triples]


@SETTINGS
@given(st.lists(st.tuples(int32s, multipliers, st.integers(-31, 0)), min_size=1, max_size=60),
       st.lists(st.tuples(int32s, multipliers, st.integers(0, 31)), min_size=1, max_size=60))
def test_smaller_than_one_and_greater_than_one(
        lo: list[tuple[int, int, int]], hi: list[tuple[int, int, int]]) -> None:
    x, m, s = (np.array(c, dtype=np.int64) for c in zip(*lo))
    assert q.multiply_by_quantized_multiplier_smaller_than_one_exp(x, m, s).tolist() == [
        cxx.multiply_by_quantized_multiplier_smaller_than_one_exp(*t) for t in lo]
    x, m, s = (np.array(c, dtype=np.int64) for c in zip(*hi))
    assert q.multiply_by_quantized_multiplier_greater_than_one(x, m, s).tolist() == [
        cxx.multiply_by_quantized_multiplier_greater_than_one(*t) for t in hi]


@SETTINGS
@given(st.lists(st.one_of(st.integers(0, I32_MAX),
                          st.sampled_from([0, 1 << 15, I32_MAX - (1 << 15) - 1,
                                           I32_MAX - (1 << 15), I32_MAX])),
                min_size=1, max_size=60))
def test_downscale_int32_to_int16_multiplier(ms: list[int]) -> None:
    assert q.downscale_int32_to_int16_multiplier(np.array(ms)).tolist() == [
        cxx.downscale_int32_to_int16_multiplier(m) for m in ms]


@SETTINGS
@given(st.lists(int32s, min_size=1, max_size=60))
def test_count_leading_zeros_and_sign_bits(xs: list[int]) -> None:
    a = np.array(xs)
    assert q.count_leading_zeros(a).tolist() == [cxx.count_leading_zeros(x % (1 << 32))
                                                 for x in xs]
    assert q.count_leading_sign_bits(a).tolist() == [cxx.count_leading_sign_bits(x) for x in xs]
    assert q.count_leading_zeros(0) == 32 and q.count_leading_zeros(0, bits=16) == 16


# -- gemmlowp transcendental functions -------------------------------------------------------
def _grid32(rng: np.random.Generator, lo: int, hi: int, n: int) -> np.ndarray:
    pts = np.concatenate([rng.integers(lo, hi + 1, size=n, dtype=np.int64),
                          np.array([lo, hi, 0, -1, 1, lo + 1, hi - 1], dtype=np.int64)])
    return np.clip(pts, lo, hi)


def _fp_vec(fn, raws: np.ndarray, ib: int, bits: int = 32) -> list[int]:
    return [fn(cxx.FP(int(r), ib, bits)).raw for r in raws]


def test_exp_on_interval_between_negative_one_quarter_and_0_excl() -> None:
    rng = np.random.default_rng(1)
    for bits in (32, 16):
        lo = -(1 << (bits - 3))
        a = _grid32(rng, lo, 0, 600)
        got = q.exp_on_interval_between_negative_one_quarter_and_0_excl(a, bits=bits)
        assert got.tolist() == _fp_vec(
            cxx.exp_on_interval_between_negative_one_quarter_and_0_excl, a, 0, bits)


@pytest.mark.parametrize("bits,integer_bits", [(32, 0), (32, 1), (32, 3), (32, 4), (32, 5),
                                               (32, 6), (32, 12), (16, 0), (16, 3), (16, 6)])
def test_exp_on_negative_values(bits: int, integer_bits: int) -> None:
    rng = np.random.default_rng(100 + integer_bits + bits)
    a = _grid32(rng, -(1 << (bits - 1)), 0, 700)
    got = q.exp_on_negative_values(a, integer_bits, bits=bits)
    assert got.tolist() == _fp_vec(cxx.exp_on_negative_values, a, integer_bits, bits)


@pytest.mark.parametrize("bits", [32, 16])
def test_one_over_one_plus_x_and_one_minus_x(bits: int) -> None:
    rng = np.random.default_rng(bits)
    a = _grid32(rng, 0, (1 << (bits - 1)) - 1, 800)
    assert q.one_over_one_plus_x_for_x_in_0_1(a, bits=bits).tolist() == _fp_vec(
        cxx.one_over_one_plus_x_for_x_in_0_1, a, 0, bits)
    assert q.one_minus_x_over_one_plus_x_for_x_in_0_1(a, bits=bits).tolist() == _fp_vec(
        cxx.one_minus_x_over_one_plus_x_for_x_in_0_1, a, 0, bits)


@pytest.mark.parametrize("bits,integer_bits", [(32, 0), (32, 2), (32, 4), (32, 5), (32, 8),
                                               (16, 0), (16, 3), (16, 4)])
def test_logistic_and_tanh(bits: int, integer_bits: int) -> None:
    rng = np.random.default_rng(1000 + 7 * integer_bits + bits)
    a = _grid32(rng, -(1 << (bits - 1)), (1 << (bits - 1)) - 1, 700)
    assert q.logistic(a, integer_bits, bits=bits).tolist() == _fp_vec(
        cxx.logistic, a, integer_bits, bits)
    assert q.tanh(a, integer_bits, bits=bits).tolist() == _fp_vec(cxx.tanh, a, integer_bits, bits)


@SETTINGS
@given(st.lists(st.integers(1, I32_MAX), min_size=1, max_size=40), st.integers(0, 31))
def test_get_reciprocal(xs: list[int], digits: int) -> None:
    rec, bits_over = q.get_reciprocal(np.array(xs), digits)
    want = [cxx.get_reciprocal(x, digits) for x in xs]
    assert rec.tolist() == [w[0] for w in want]
    assert bits_over.tolist() == [w[1] for w in want]


def test_scalar_in_scalar_out() -> None:
    assert isinstance(q.logistic(0, 4), int) and q.logistic(0, 4) == 1 << 30
    assert q.tanh(0, 4) == 0
    assert q.exp_on_negative_values(0, 5) == I32_MAX
    with pytest.raises(ValueError):
        q.logistic(0, 4, bits=8)
    with pytest.raises(TFLiteRefError):
        q.multiply_by_quantized_multiplier(np.array([1.5]), 1 << 30, 0)


def _both_paths(fn, *columns: list[int] | int, **kw) -> None:
    """``fn`` on Python-int scalars (the Python-int path), on 0-d arrays and on int64 arrays (the
    NumPy path) gives the same values; scalar results are Python ints.  A plain int argument is
    passed as is (e.g. ``integer_bits``)."""
    n = max(len(c) for c in columns if isinstance(c, list))
    vec = fn(*(c if isinstance(c, int) else np.array(c, dtype=np.int64) for c in columns), **kw)
    vecs = vec if isinstance(vec, tuple) else (vec,)
    for k in range(n):
        args = [c if isinstance(c, int) else c[k] for c in columns]
        lists = [isinstance(c, list) for c in columns]
        for scalar_args in (args, [np.asarray(a) if li else a for a, li in zip(args, lists)],
                            [np.int32(a) if li and -(1 << 31) <= a < (1 << 31) else a
                             for a, li in zip(args, lists)]):
            got = fn(*scalar_args, **kw)
            gots = got if isinstance(got, tuple) else (got,)
            assert all(type(g) is int for g in gots), (fn.__name__, scalar_args, got)
            assert [int(v[k]) for v in vecs] == list(gots), (fn.__name__, scalar_args)


@SETTINGS
@given(st.lists(st.tuples(int32s, int32s, st.integers(0, 31), st.integers(-31, 30),
                          multipliers), min_size=1, max_size=12))
def test_scalar_path_equals_array_path(rows: list[tuple[int, int, int, int, int]]) -> None:
    """Scalars are computed with Python ints, arrays with int64 NumPy: the same function."""
    a, b, e, s, m = (list(c) for c in zip(*rows))
    a16, b16 = [cxx.narrow(v, 16) for v in a], [cxx.narrow(v, 16) for v in b]
    neg = [-abs(v) // 2 for v in a]
    nonneg = [abs(v) // 2 for v in a]
    positive = [max(abs(v), 1) for v in a]
    for fn in (q.wrap_int32, q.wrap_int16, q.wrap_int8, q.saturate_int32, q.saturate_int16,
               q.saturate_int8, q.count_leading_zeros, q.count_leading_sign_bits):
        _both_paths(fn, a)
    _both_paths(q.c_div, a, positive)
    _both_paths(q.c_rem, a, positive)
    _both_paths(q.saturating_rounding_doubling_high_mul, a, b)
    _both_paths(q.saturating_rounding_doubling_high_mul_int16, a16, b16)
    _both_paths(q.rounding_divide_by_pot, a, e)
    _both_paths(q.saturating_left_shift, a, e)
    _both_paths(q.saturating_rounding_multiply_by_pot, a, s)
    _both_paths(q.saturating_rounding_multiply_by_pot, a16, [v % 16 - 8 for v in s], bits=16)
    _both_paths(q.rounding_half_sum, a, b)
    _both_paths(q.multiply_by_quantized_multiplier, a, m, s)
    _both_paths(q.multiply_by_quantized_multiplier, a, m, s, single_rounding=True)
    _both_paths(q.multiply_by_quantized_multiplier_int64, a, m, [v % 39 - 31 for v in s])
    _both_paths(q.multiply_by_quantized_multiplier_smaller_than_one_exp, a, m, [-v for v in e])
    _both_paths(q.multiply_by_quantized_multiplier_greater_than_one, a, m, e)
    _both_paths(q.downscale_int32_to_int16_multiplier, m)
    for bits, lo in ((32, -(1 << 29)), (16, -(1 << 13))):
        quarter = [max(v, lo) if v < 0 else -1 for v in neg]
        _both_paths(q.exp_on_interval_between_negative_one_quarter_and_0_excl,
                    [cxx.narrow(v, bits) for v in quarter], bits=bits)
    for ib in (0, 4, 5, 12):
        _both_paths(q.exp_on_negative_values, neg, ib)
        _both_paths(q.logistic, a, ib)
        _both_paths(q.tanh, a, ib)
    _both_paths(q.one_over_one_plus_x_for_x_in_0_1, nonneg)
    _both_paths(q.one_minus_x_over_one_plus_x_for_x_in_0_1, nonneg)
    _both_paths(q.logistic, a16, 3, bits=16)
    _both_paths(q.get_reciprocal, positive, 12)


def test_scalar_path_rejects_what_the_array_path_rejects() -> None:
    with pytest.raises(TFLiteRefError):
        q.wrap_int32(1 << 63)  # does not fit int64
    with pytest.raises(TFLiteRefError):
        q.rounding_divide_by_pot(5, 32)
    with pytest.raises(TFLiteRefError):
        q.multiply_by_quantized_multiplier(1, 1 << 30, -32)
    with pytest.raises(ZeroDivisionError):
        q.c_div(3, 0)


@SETTINGS
@given(st.lists(st.one_of(st.integers(1, I32_MAX), st.sampled_from(
    [1, 2, 3, 1 << 19, (1 << 19) + 1, 1 << 30, I32_MAX])), min_size=1, max_size=40),
    st.sampled_from([(12, 5), (5, 5), (20, 3), (1, 6)]))
def test_log_x_for_x_greater_than_or_equal_to_1(xs: list[int], bits: tuple[int, int]) -> None:
    got = q.log_x_for_x_greater_than_or_equal_to_1(np.array(xs), *bits)
    assert got.tolist() == [cxx.log_x_for_x_greater_than_or_equal_to_1(x, *bits) for x in xs]
    _both_paths(q.log_x_for_x_greater_than_or_equal_to_1, xs, *bits)


def test_get_inv_sqrt_quantized_multiplier_exp() -> None:
    rng = np.random.default_rng(7)
    xs = np.concatenate([np.arange(-3, 70000), rng.integers(70000, I32_MAX, 3000),
                         [(1 << 29) - 1, 1 << 29, (1 << 31) - 1]]).astype(np.int64)
    for reverse_shift in (-1, 1):
        mult, shift = q.get_inv_sqrt_quantized_multiplier_exp(xs, reverse_shift)
        want = [cxx.get_inv_sqrt_quantized_multiplier_exp(int(x), reverse_shift) for x in xs]
        assert mult.tolist() == [w[0] for w in want]
        assert shift.tolist() == [w[1] for w in want]
        _both_paths(q.get_inv_sqrt_quantized_multiplier_exp, xs[::97].tolist(), reverse_shift)


def test_float_to_int_conversions() -> None:
    """static_cast<int32_t>(float) as x86 executes it, and the saturating conversion."""
    big = 2.0**31
    x = np.array([np.nan, np.inf, -np.inf, big, -big, big - 128, -big - 256, 2.9, -2.9, -0.5],
                 dtype=np.float32)
    assert q.static_cast_int32(x).tolist() == [I32_MIN, I32_MIN, I32_MIN, I32_MIN, I32_MIN,
                                               int(big - 128), I32_MIN, 2, -2, 0]
    assert q.saturating_cast(x, np.int32).tolist() == [0, I32_MAX, I32_MIN, I32_MAX, I32_MIN,
                                                       int(big - 128), I32_MIN, 2, -2, 0]
    assert q.saturating_cast(x, np.int8, nan=127).tolist() == [127, 127, -128, 127, -128, 127,
                                                               -128, 2, -2, 0]
    assert q.saturating_cast(x, np.uint8).tolist() == [0, 255, 0, 255, 0, 255, 0, 2, 0, 0]
    assert q.saturating_cast(np.array([2.0**64, -1.0]), np.uint64).tolist() == [2**64 - 1, 0]
