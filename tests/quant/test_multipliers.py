"""tflite_ref.quant.multipliers vs literal transcriptions of quantization_util.cc / kernel_util.cc.

Float32 arithmetic in the transcriptions is done in double and rounded to float32 with
``struct`` (exact for one + - * / of float32 operands), independently of NumPy's float32.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import _cxx as cxx
from tflite_ref import quant as q
from tflite_ref.errors import TFLiteRefError

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def f32(x: float) -> float:
    """Round a double to float32 (and back to a Python float)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


positive_doubles = st.floats(min_value=1e-45, max_value=1e12, allow_nan=False,
                             allow_infinity=False)
# Mantissas within half an ulp of 2^31 after scaling: the q_fixed == 2^31 fix-up.
near_pot = st.builds(lambda e, k: math.ldexp(1.0 - k * 2.0**-53, e),
                     st.integers(-40, 40), st.integers(0, 2**20))
scales32 = st.floats(min_value=1e-8, max_value=1e3, allow_nan=False).map(f32)


@SETTINGS
@given(st.lists(st.one_of(positive_doubles, near_pot, positive_doubles.map(lambda v: -v),
                          st.just(0.0), st.floats(1e-12, 1e-8)), min_size=1, max_size=40))
@example([1.0, 0.5, 2.0**-31, 2.0**-32, 2.0**-32 * (1 - 2.0**-40), 1 - 2.0**-40, 2.0**40,
          2.0**-31 * (1 - 2.0**-35), 0.0, -0.75, 3.0])
def test_quantize_multiplier_scalar_and_vector(reals: list[float]) -> None:
    want = [cxx.quantize_multiplier(r) for r in reals]
    assert [q.quantize_multiplier(r) for r in reals] == want
    m, s = q.quantize_multipliers(np.array(reals))
    assert m.dtype == np.int64 and s.dtype == np.int64
    assert list(zip(m.tolist(), s.tolist())) == want
    want1 = [cxx.quantize_multiplier(r, single_rounding=True) for r in reals]
    assert [q.quantize_multiplier(r, single_rounding=True) for r in reals] == want1
    m, s = q.quantize_multipliers(np.array(reals), single_rounding=True)
    assert list(zip(m.tolist(), s.tolist())) == want1


def test_quantize_multiplier_fixups() -> None:
    assert q.quantize_multiplier(1 - 2.0**-40) == (1 << 30, 1)  # q_fixed == 2^31 fix-up
    assert q.quantize_multiplier(2.0**-32) == (1 << 30, -31)  # frexp: 0.5 · 2^-31
    assert q.quantize_multiplier(2.0**-33) == (0, 0)  # shift -32 < -31: flushed
    assert q.quantize_multiplier(2.0**-31) == (1 << 30, -30)
    assert q.quantize_multiplier(2.0**40, single_rounding=True) == ((1 << 31) - 1, 30)
    qm = q.QuantizedMultiplier.from_real(0.3)
    assert (qm.multiplier, qm.shift) == q.quantize_multiplier(0.3)
    assert abs(qm.to_real() - 0.3) < 1e-9
    with pytest.raises(AttributeError):
        qm.shift = 3  # type: ignore[misc]
    with pytest.raises(TFLiteRefError):
        q.quantize_multiplier(float("inf"))


def test_smaller_than_one_greater_than_one_checks() -> None:
    assert q.quantize_multiplier_smaller_than_one_exp(0.25) == q.quantize_multiplier(0.25)
    assert q.quantize_multiplier_greater_than_one(5.0) == q.quantize_multiplier(5.0)
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError):
            q.quantize_multiplier_smaller_than_one_exp(bad)
    with pytest.raises(ValueError):
        q.quantize_multiplier_smaller_than_one_exp(1 - 2.0**-40)  # rounds to shift 1
    for bad in (1.0, 0.5):
        with pytest.raises(ValueError):
            q.quantize_multiplier_greater_than_one(bad)


@SETTINGS
@given(st.floats(0.01, 10.0).map(f32), st.floats(1e-4, 1.0).map(f32), st.integers(0, 8))
def test_preprocess_softmax_scaling_and_radius(beta: float, scale: float, ib: int) -> None:
    for single in (False, True):
        cap = (1 << 30) - 1.0 if single else (1 << 31) - 1.0
        real = min(beta * scale * (1 << (31 - ib)), cap)
        if not real > 1.0:
            with pytest.raises(ValueError):
                q.preprocess_softmax_scaling(beta, scale, ib, single_rounding=single)
            continue
        want = cxx.quantize_multiplier(real, single_rounding=single)
        got = q.preprocess_softmax_scaling(beta, scale, ib, single_rounding=single)
        assert got == want
    for ls in range(0, 31):
        want = int(math.floor(1.0 * ((1 << ib) - 1) * (1 << (31 - ib)) / (1 << ls)))
        assert q.calculate_input_radius(ib, ls) == want


def test_preprocess_log_softmax_scaling_exp() -> None:
    m, ls, rd, rs = q.preprocess_log_softmax_scaling_exp(1.0, f32(0.0625), 5)
    assert (m, ls) == q.preprocess_softmax_scaling(1.0, f32(0.0625), 5)
    assert (rd, rs) == cxx.quantize_multiplier((1 << (31 - ls)) / m)
    assert rs <= 0


def _act_range_literal(act: str, scale: float, zp: int, qmin: int, qmax: int) -> tuple[int, int]:
    def quantize(f: float) -> int:
        tmp = cxx.std_round(f32(f32(f) / scale))
        assert -(2.0**31) <= tmp <= 2.0**31 - 1
        return zp + int(tmp)

    if act == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if act == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if act == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    return qmin, qmax


@SETTINGS
@given(st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH"]),
       st.floats(1e-3, 0.5).map(f32), st.integers(-128, 127),
       st.sampled_from([(np.int8, -128, 127), (np.uint8, 0, 255), (np.int16, -32768, 32767)]))
@example("RELU6", f32(6 / 255), -128, (np.int8, -128, 127))
@example("RELU6", f32(6.0 / 11), 5, (np.int8, -128, 127))  # 6 / s lands next to a .5
def test_calculate_activation_range_quantized(act: str, scale: float, zp: int, dt) -> None:
    dtype, qmin, qmax = dt
    want = _act_range_literal(act, scale, zp, qmin, qmax)
    assert q.calculate_activation_range_quantized(act, scale, zp, dtype) == want
    code = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}[act]
    assert q.calculate_activation_range_quantized(code, scale, zp, np.dtype(dtype).name) == want


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.int16])
def test_calculate_activation_range(dtype: type) -> None:
    """CalculateActivationRange<T>: lowest()/max() of T unless a ReLU clamps (kernel_util.h)."""
    is_float = np.dtype(dtype).kind == "f"
    info = np.finfo(dtype) if is_float else np.iinfo(dtype)
    lowest, highest = (float(info.min), float(info.max)) if is_float else (int(info.min),
                                                                           int(info.max))
    want = {"NONE": (lowest, highest), "RELU": (0, highest), "RELU_N1_TO_1": (-1, 1),
            "RELU6": (0, 6), "TANH": (lowest, highest), "SIGN_BIT": (lowest, highest)}
    for code, (act, bounds) in enumerate(want.items()):
        got = q.calculate_activation_range(act, dtype)
        assert got == bounds and got == q.calculate_activation_range(code, np.dtype(dtype).name)
        # Python ints for integer types: an int64 clamp must not go through float64.
        assert is_float or all(type(v) is int for v in got)
    if is_float:  # finite bounds: the clamp turns +-inf into the largest finite values
        inf = np.array([-np.inf, np.inf], np.float32)
        assert np.minimum(np.maximum(inf, lowest), highest).tolist() == [lowest, highest]
    with pytest.raises(TFLiteRefError):
        q.calculate_activation_range("SWISH", dtype)


def test_calculate_activation_range_errors() -> None:
    with pytest.raises(TFLiteRefError):
        q.calculate_activation_range_quantized("RELU6", 0.0, 0, np.int8)  # 6 / 0 = inf
    with pytest.raises(TFLiteRefError):
        q.calculate_activation_range_quantized("SWISH", 0.1, 0, np.int8)
    with pytest.raises(TFLiteRefError):
        q.calculate_activation_range_quantized("RELU", 0.1, 0, np.float32)


@SETTINGS
@given(scales32, st.lists(scales32, min_size=1, max_size=8), scales32, scales32)
def test_effective_scales(s_in: float, s_w: list[float], s_out: float, s2: float) -> None:
    conv = q.conv_effective_scales(s_in, np.array(s_w, dtype=np.float32), s_out)
    assert conv.tolist() == [s_in * w / s_out for w in s_w]
    assert q.fc_per_channel_effective_scales(s_in, s_w, s_out).tolist() == conv.tolist()
    assert q.fc_per_tensor_effective_scale(s_in, s_w[0], s_out) == f32(s_in * s_w[0]) / s_out
    assert q.mul_effective_scale(s_in, s2, s_out, emulate="tflite") == f32(
        f32(s_in * s2) / s_out)
    assert q.mul_effective_scale(s_in, s2, s_out, emulate="tflm") == s_in * s2 / s_out
    assert q.requantize_effective_scale(s_in, s_out) == s_in / s_out
    twice = 2 * max(s_in, s2)
    want_add = (s_in / twice, s2 / twice, twice / (f32((1 << 20) * s_out)))
    assert q.add_effective_scales(s_in, s2, s_out, 20) == want_add
    assert q.sub_effective_scales(s_in, s2, s_out, 20, emulate="tflite") == want_add
    t32 = f32(2 * max(s_in, s2))
    assert q.sub_effective_scales(s_in, s2, s_out, 15, emulate="tflm") == (
        f32(s_in / t32), f32(s2 / t32), f32(t32 / f32((1 << 15) * s_out)))
    assert q.softmax_int16_effective_scale(s_in, s2, emulate="tflite") == f32(s_in * s2) / (
        10.0 / 65535.0)
    assert q.softmax_int16_effective_scale(s_in, s2, emulate="tflm") == s_in * s2 / (
        10.0 / 65535.0)
    with pytest.raises(TFLiteRefError):
        q.mul_effective_scale(s_in, s2, s_out, emulate="xnnpack")  # type: ignore[arg-type]


def test_float_vs_double_mul_multiplier_differs_sometimes() -> None:
    """The two MUL formulas give different multipliers for a sizeable share of scale triples."""
    rng = np.random.default_rng(3)
    s = rng.uniform(1e-3, 1.0, size=(2000, 3)).astype(np.float32)
    diff = sum(q.quantize_multiplier(q.mul_effective_scale(*map(float, t), emulate="tflite"))
               != q.quantize_multiplier(q.mul_effective_scale(*map(float, t), emulate="tflm"))
               for t in s)
    assert diff > 100


@SETTINGS
@given(st.floats(1e-4, 1.0).map(f32))
def test_logistic_tanh_int8_input_scaling(scale: float) -> None:
    real = scale * (1 << 27)
    qv, ls = math.frexp(real)
    m = int(cxx.std_round(qv * (1 << 31)))
    m = cxx.i32(m)
    radius = int(math.floor(1.0 * 15 * (1 << 27) / (1 << ls)))
    assert q.logistic_tanh_int8_input_scaling(scale) == (m, ls, radius)


def test_checked_log2() -> None:
    """CheckedLog2 against its transcription: float32 log(x) · (1/log 2), TfLiteRound, the 1e-3
    test.  The exponent is used only when the flag is true, and then the ``floor(|v| + 0.5)``
    rounding elementwise.py used to compute gives the same exponent."""
    rng = np.random.default_rng(3)
    xs = [2.0**e * (1 + d) for e in range(-30, 8) for d in (0.0, 1e-4, -1e-4, 7e-4, 3e-3)]
    xs += list(10 ** rng.uniform(-8, 3, 300)) + [0.0, -1.0, math.inf, math.nan, 2**0.4999999]
    for x in xs:
        x32 = np.float32(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.float32(np.log(x32)) * (np.float32(1.0) / np.float32(np.log(np.float32(2.0))))
        ok, log2 = q.checked_log2(float(x32))
        if not np.isfinite(v):
            assert (ok, log2) == (False, 0)
            continue
        rounded = cxx.std_round(float(v))
        assert (ok, log2) == (abs(float(v) - rounded) < float(np.float32(1e-3)), int(rounded))
        if ok:
            assert log2 == int(np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)))
