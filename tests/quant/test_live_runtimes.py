"""tflite_ref.quant against the real runtimes, live.

Tiny single-op models (tests/quant/_tiny_models.py) are run in LiteRT's reference kernels
(``OpResolverType.BUILTIN_REF``) and in TFLite Micro over every int8 input (256, or 256 x 256
for MUL), and the kernel's formula -- written here from tflite_ref.quant primitives -- must
reproduce every output bit for bit.  The truth is the runtimes' output; nothing is pasted.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tflite_ref import quant as q

ai_edge_litert = pytest.importorskip("ai_edge_litert")
tflite_micro = pytest.importorskip("tflite_micro")

import _tiny_models as tm  # noqa: E402

X8 = np.arange(-128, 128, dtype=np.int64).astype(np.int8)
MUL_A = np.repeat(X8, 256)
MUL_B = np.tile(X8, 256)
LIVE = settings(max_examples=80, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
LIVE_BIG = settings(LIVE, max_examples=50)  # 65 536-element MUL cases
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}


def f32(x: float) -> float:
    return float(np.float32(x))


# Scales: log-uniform over a wide range, plus dyadic ones whose ratios make exact rounding ties.
log_scales = st.floats(-14.0, 3.0).map(lambda e: f32(2.0**e))
dyadic_scales = st.builds(lambda k, e: f32(k * 2.0**e), st.integers(1, 255), st.integers(-16, -2))
scales = st.one_of(log_scales, dyadic_scales)
zero_points = st.integers(-128, 127)


def _assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    got = np.asarray(got).reshape(-1).astype(np.int64)
    want = np.asarray(want).reshape(-1).astype(np.int64)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{what}: {bad.size}/{want.size} outputs differ, first at {bad[0]}: "
                           f"runtime {got[bad[0]]} vs tflite_ref {want[bad[0]]}")


# -- QUANTIZE int8 -> int8 (reference_ops::Requantize) ----------------------------------------
def requantize(x: np.ndarray, s_in: float, z_in: int, s_out: float, z_out: int) -> np.ndarray:
    m, s = q.quantize_multiplier(q.requantize_effective_scale(s_in, s_out))
    acc = q.multiply_by_quantized_multiplier(x.astype(np.int64) - z_in, m, s)
    return q.saturate_int8(acc + z_out)


@LIVE
@given(s_in=scales, z_in=zero_points, s_out=scales, z_out=zero_points)
@example(s_in=f32(3 * 2.0**-9), z_in=0, s_out=2.0**-7, z_out=0)  # ratio 3/8: ties at q ≡ 4 mod 8
@example(s_in=0.25, z_in=-128, s_out=0.25, z_out=127)  # identity scale, zero point shift
@example(s_in=f32(2.0**-24), z_in=5, s_out=512.0, z_out=-3)  # ratio 2^-33: flushed to (0, 0)
@example(s_in=f32(2.0**-23), z_in=5, s_out=256.0, z_out=-3)  # ratio 2^-31: shift -30, kept
def test_requantize_int8_live(s_in: float, z_in: int, s_out: float, z_out: int) -> None:
    model = tm.requantize_model(256, s_in, z_in, s_out, z_out)
    want = requantize(X8, s_in, z_in, s_out, z_out)
    _assert_same(tm.run_litert_ref(model, [X8]), want, "LiteRT QUANTIZE")
    _assert_same(tm.run_tflm(model, [X8]), want, "TFLM QUANTIZE")


# -- MUL int8 (reference_integer_ops::MulElementwise) ------------------------------------------
def mul(a: np.ndarray, b: np.ndarray, p: tuple, activation: int, emulate: q.Emulate) -> np.ndarray:
    s1, z1, s2, z2, so, zo = p
    m, s = q.quantize_multiplier(q.mul_effective_scale(s1, s2, so, emulate=emulate))
    lo, hi = q.calculate_activation_range_quantized(activation, so, zo, np.int8)
    prod = (a.astype(np.int64) - z1) * (b.astype(np.int64) - z2)
    return np.clip(q.multiply_by_quantized_multiplier(prod, m, s) + zo, lo, hi)


mul_scales = st.floats(-9.0, 0.0).map(lambda e: f32(2.0**e))


@LIVE_BIG
@given(p=st.tuples(mul_scales, zero_points, mul_scales, zero_points, mul_scales, zero_points),
       activation=st.sampled_from(sorted(ACTIVATIONS)))
def test_mul_int8_live(p: tuple, activation: int) -> None:
    model = tm.mul_model(MUL_A.size, *p, activation=activation)
    _assert_same(tm.run_litert_ref(model, [MUL_A, MUL_B]),
                 mul(MUL_A, MUL_B, p, activation, "tflite"), "LiteRT MUL")
    _assert_same(tm.run_tflm(model, [MUL_A, MUL_B]),
                 mul(MUL_A, MUL_B, p, activation, "tflm"), "TFLM MUL")


def _scales_where_mul_formulas_disagree(n_wanted: int) -> list[tuple]:
    """Scale triples whose float32 (TFLite) and double (TFLM) MUL multipliers give different
    outputs on some of the 65 536 input pairs (found with tflite_ref alone, seeded)."""
    rng = np.random.default_rng(20261126)
    found: list[tuple] = []
    for _ in range(4000):
        s1, s2 = (f32(v) for v in rng.uniform(0.002, 0.05, size=2))
        so = f32(rng.uniform(0.002, 0.05))
        m1 = q.quantize_multiplier(q.mul_effective_scale(s1, s2, so, emulate="tflite"))
        m2 = q.quantize_multiplier(q.mul_effective_scale(s1, s2, so, emulate="tflm"))
        if m1 == m2:
            continue
        p = (s1, 0, s2, 0, so, 0)
        if np.any(mul(MUL_A, MUL_B, p, 0, "tflite") != mul(MUL_A, MUL_B, p, 0, "tflm")):
            found.append(p)
            if len(found) == n_wanted:
                break
    return found


def test_mul_float32_vs_double_multiplier_live() -> None:
    """LiteRT builds MUL's multiplier from a float32 quotient, TFLM from doubles; where the two
    disagree on an output, each runtime must follow its own formula."""
    cases = _scales_where_mul_formulas_disagree(3)
    assert cases, "no disagreeing scale triple found"
    for p in cases:
        model = tm.mul_model(MUL_A.size, *p)
        lite = tm.run_litert_ref(model, [MUL_A, MUL_B])
        micro = tm.run_tflm(model, [MUL_A, MUL_B])
        _assert_same(lite, mul(MUL_A, MUL_B, p, 0, "tflite"), "LiteRT MUL (float32 multiplier)")
        _assert_same(micro, mul(MUL_A, MUL_B, p, 0, "tflm"), "TFLM MUL (double multiplier)")
        assert np.any(lite.reshape(-1) != micro.reshape(-1))


# -- LOGISTIC / TANH int8 ------------------------------------------------------------------------
lut_in_scales = st.floats(-10.0, 0.0).map(lambda e: f32(2.0**e))


@LIVE
@given(s_in=lut_in_scales, z_in=zero_points, s_out=st.floats(-9.0, -1.0).map(lambda e: f32(2**e)),
       z_out=zero_points)
def test_logistic_tanh_lut_litert(s_in: float, z_in: int, s_out: float, z_out: int) -> None:
    """LiteRT REF: 256-entry float LUTs (LUTPopulate<int8_t>)."""
    model = tm.unary_model("LOGISTIC", 256, s_in, z_in, 1 / 256, -128)
    _assert_same(tm.run_litert_ref(model, [X8]), q.logistic_lut_int8(s_in, z_in),
                 "LiteRT LOGISTIC")
    model = tm.unary_model("TANH", 256, s_in, z_in, s_out, z_out)
    _assert_same(tm.run_litert_ref(model, [X8]), q.tanh_lut_int8(s_in, z_in, s_out, z_out),
                 "LiteRT TANH")


def test_tanh_lut_needs_the_c_library_tanhf() -> None:
    """glibc's tanhf is not correctly rounded; this parameter set (found by a search of 3000
    random ones) gives a different LiteRT table with correctly rounded tanh, and the default
    (libm) backend reproduces LiteRT."""
    if not q.libm_available():
        pytest.skip("no C math library")
    rng = np.random.default_rng(0)
    for _ in range(3000):
        s_in = f32(10 ** rng.uniform(-3, 0))
        z_in = int(rng.integers(-128, 128))
        s_out = f32(10 ** rng.uniform(-3, -1))
        z_out = int(rng.integers(-128, 128))
        libm = q.tanh_lut_int8(s_in, z_in, s_out, z_out, backend="libm")
        if np.any(libm != q.tanh_lut_int8(s_in, z_in, s_out, z_out, backend="numpy")):
            break
    else:
        pytest.skip("libm tanhf and correctly rounded tanh gave identical tables")
    model = tm.unary_model("TANH", 256, s_in, z_in, s_out, z_out)
    _assert_same(tm.run_litert_ref(model, [X8]), libm, "LiteRT TANH (libm tanhf)")


XU8 = np.arange(0, 256, dtype=np.int64).astype(np.uint8)


def test_lut_out_of_range_live() -> None:
    """``(int32_t)`` of an out-of-range or NaN float inside LUTPopulate is undefined in C++; what
    the x86-64 builds do is measured here.  LiteRT's ``LUTPopulate<int8_t>`` saturates (a huge
    EXP or TANH value gives 127, NaN -- ``0 · (1/s_out)`` with ``1/s_out = inf`` -- gives 0);
    its ``LUTPopulate<uint8_t>`` gives INT32_MIN (clamped to 0).  q.lut_populate_int8's
    defaults per type reproduce both."""
    exp = lambda x: q.c_expf(x)  # noqa: E731
    tanh = lambda x: q.c_tanhf(x)  # noqa: E731
    cases = [  # op, s_in, z_in, s_out, z_out, transform, dtype, what the case shows
        ("EXP", 0.25, 0, 0.25, 0, exp, np.int8, "exp(31.75) / 0.25 > 2^31 saturates"),
        ("TANH", 0.05, 0, 1e-10, 0, tanh, np.int8, "+-tanh / 1e-10 saturates both ways"),
        ("TANH", 1.0, 0, 1e-40, 3, tanh, np.int8, "tanh(0) · inf is NaN -> 0"),
        ("EXP", 1.0, 0, 1e-40, 3, exp, np.int8, "exp underflows to 0: 0 · inf -> 0"),
        ("TANH", 0.05, 128, 1e-10, 0, tanh, np.uint8, "uint8: INT32_MIN -> 0"),
        ("TANH", 1.0, 128, 1e-40, 3, tanh, np.uint8, "uint8 NaN -> 0"),
    ]
    for op, s_in, z_in, s_out, z_out, transform, dtype, what in cases:
        model = tm.unary_model(op, 256, s_in, z_in, s_out, z_out, dtype=dtype)
        x = X8 if dtype == np.int8 else XU8
        want = q.lut_populate_int8(s_in, z_in, s_out, z_out, transform, dtype=dtype)
        _assert_same(tm.run_litert_ref(model, [x]), want, f"LiteRT {op} {what}")
    # The other conversion would differ from the runtime in every case above but the last two.
    sat = q.lut_populate_int8(0.05, 0, 1e-10, 0, tanh)
    x86 = q.lut_populate_int8(0.05, 0, 1e-10, 0, tanh, out_of_range="int32_min")
    assert sat[-1] == 127 and x86[-1] == -128


def tflm_logistic(x: np.ndarray, s_in: float, z_in: int) -> np.ndarray:
    """reference_integer_ops::Logistic (int8) with TFLM's CalculateArithmeticOpDataLogistic."""
    m, ls, radius = q.logistic_tanh_int8_input_scaling(s_in)
    v = x.astype(np.int64) - z_in
    x4 = q.multiply_by_quantized_multiplier(v, m, ls)
    out = q.saturate_int8(q.rounding_divide_by_pot(q.logistic(x4, 4), 31 - 8) - 128)
    return np.where(v <= -radius, -128, np.where(v >= radius, 127, out))


def tflm_tanh(x: np.ndarray, s_in: float, z_in: int) -> np.ndarray:
    """reference_integer_ops::Tanh (int8): output assumed at scale 1/128, zero point 0."""
    m, ls, radius = q.logistic_tanh_int8_input_scaling(s_in)
    v = x.astype(np.int64) - z_in
    x4 = q.multiply_by_quantized_multiplier(v, m, ls)
    out = q.saturate_int8(q.rounding_divide_by_pot(q.tanh(x4, 4), 31 - 7))
    return np.where(v <= -radius, -128, np.where(v >= radius, 127, out))


@LIVE
@given(s_in=lut_in_scales, z_in=zero_points)
def test_logistic_tanh_fixed_point_tflm(s_in: float, z_in: int) -> None:
    """TFLM: gemmlowp logistic / tanh on FixedPoint<int32_t, 4>."""
    model = tm.unary_model("LOGISTIC", 256, s_in, z_in, 1 / 256, -128)
    _assert_same(tm.run_tflm(model, [X8]), tflm_logistic(X8, s_in, z_in), "TFLM LOGISTIC")
    model = tm.unary_model("TANH", 256, s_in, z_in, 1 / 128, 0)
    _assert_same(tm.run_tflm(model, [X8]), tflm_tanh(X8, s_in, z_in), "TFLM TANH")


# -- SOFTMAX -------------------------------------------------------------------------------------
def softmax_int8(x: np.ndarray, s_in: float, beta: float) -> np.ndarray:
    """reference_ops::Softmax<int8_t, int8_t> (gemmlowp; LiteRT REF and TFLM), last axis."""
    m, ls = q.preprocess_softmax_scaling(beta, s_in, 5)
    diff_min = -q.calculate_input_radius(5, ls)
    v = x.astype(np.int64)
    diff = v - v.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    scaled = q.multiply_by_quantized_multiplier_greater_than_one(diff, m, ls)
    e = q.exp_on_negative_values(scaled, 5)
    # sum_of_exps (FixedPoint<int32, 12>) += Rescale<12>(exp): a wrapping int32 sum.
    terms = np.where(valid, q.rounding_divide_by_pot(e, 12), 0)
    total = q.wrap_int32(terms.sum(axis=-1, keepdims=True))
    recip, bits_over_unit = q.get_reciprocal(total, 12)
    exponent = bits_over_unit + 31 - 8
    out = q.rounding_divide_by_pot(q.saturating_rounding_doubling_high_mul(recip, e), exponent)
    return np.where(valid, q.saturate_int8(out - 128), -128)


@LIVE
@given(s_in=st.floats(-8.0, 0.0).map(lambda e: f32(2.0**e)),
       beta=st.floats(0.1, 4.0).map(f32), rows=st.integers(1, 4), depth=st.integers(1, 300),
       seed=st.integers(0, 2**32 - 1))
def test_softmax_int8_live(s_in: float, beta: float, rows: int, depth: int, seed: int) -> None:
    x = np.random.default_rng(seed).integers(-128, 128, size=(rows, depth)).astype(np.int8)
    model = tm.single_op_model("SOFTMAX", [tm.TensorSpec((rows, depth), np.int8, s_in, 0)],
                               [tm.TensorSpec((rows, depth), np.int8, 1 / 256, -128)], beta=beta)
    want = softmax_int8(x, s_in, beta)
    _assert_same(tm.run_litert_ref(model, [x]), want, "LiteRT SOFTMAX int8")
    _assert_same(tm.run_tflm(model, [x]), want, "TFLM SOFTMAX int8")


def softmax_int16(x: np.ndarray, s_in: float, beta: float, emulate: q.Emulate) -> np.ndarray:
    """reference_ops::SoftmaxInt16 with each runtime's LUTs and input multiplier."""
    exp_lut, recip_lut = q.softmax_int16_luts(emulate=emulate)
    m, ls = q.quantize_multiplier(q.softmax_int16_effective_scale(s_in, beta, emulate=emulate))
    v = x.astype(np.int64)
    diff = v - v.max(axis=-1, keepdims=True)
    scaled = q.multiply_by_quantized_multiplier(diff, m, ls)
    e = q.lut_lookup_int16(q.saturate_int16(scaled + 32767).astype(np.int16), exp_lut)
    e = e.astype(np.int64)
    total = e.sum(axis=-1, keepdims=True)
    headroom_plus_one = q.count_leading_zeros(total)
    shifted_sum = ((total << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    sym = q.saturate_int16(shifted_sum - ((1 << 15) + (1 << 16))).astype(np.int16)
    recip = q.lut_lookup_int16(sym, recip_lut).astype(np.int64)
    right_shift = 31 - headroom_plus_one
    result = (e * recip + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(result, 0, 32767)


@LIVE
@given(s_in=st.floats(-14.0, -6.0).map(lambda e: f32(2.0**e)), beta=st.floats(0.2, 2.0).map(f32),
       rows=st.integers(1, 4), depth=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_softmax_int16_live(s_in: float, beta: float, rows: int, depth: int, seed: int) -> None:
    """int16 SOFTMAX: LiteRT builds its LUTs in double, TFLM in float32 (and the input
    multiplier from a float32 resp. double product) -- each must match its own emulation."""
    x = np.random.default_rng(seed).integers(-32768, 32768, size=(rows, depth)).astype(np.int16)
    model = tm.single_op_model("SOFTMAX", [tm.TensorSpec((rows, depth), np.int16, s_in, 0)],
                               [tm.TensorSpec((rows, depth), np.int16, 1 / 32768, 0)], beta=beta)
    _assert_same(tm.run_litert_ref(model, [x]), softmax_int16(x, s_in, beta, "tflite"),
                 "LiteRT SOFTMAX int16")
    _assert_same(tm.run_tflm(model, [x]), softmax_int16(x, s_in, beta, "tflm"),
                 "TFLM SOFTMAX int16")


def test_softmax_int16_runtimes_differ_live() -> None:
    """Where the float32 (TFLM) and double (LiteRT) int16 softmax tables / multipliers give
    different outputs, each runtime follows its own construction."""
    rng = np.random.default_rng(11)
    for _ in range(500):
        s_in = f32(2.0 ** rng.uniform(-14, -6))
        beta = f32(rng.uniform(0.2, 2.0))
        x = rng.integers(-32768, 32768, size=(8, 64)).astype(np.int16)
        lite, micro = (softmax_int16(x, s_in, beta, e) for e in ("tflite", "tflm"))
        if np.any(lite != micro):
            break
    else:
        pytest.fail("no input where the two int16 softmax constructions differ")
    model = tm.single_op_model("SOFTMAX", [tm.TensorSpec(x.shape, np.int16, s_in, 0)],
                               [tm.TensorSpec(x.shape, np.int16, 1 / 32768, 0)], beta=beta)
    _assert_same(tm.run_litert_ref(model, [x]), lite, "LiteRT SOFTMAX int16")
    _assert_same(tm.run_tflm(model, [x]), micro, "TFLM SOFTMAX int16")
