"""tflite_ref.quant.lut vs scalar transcriptions of common.h LUTPopulate / LUTLookup.

The live comparison with LiteRT and TFLM is in test_live_runtimes.py.
"""

from __future__ import annotations

import math
import struct
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _cxx as cxx
from tflite_ref import quant as q
from tflite_ref.errors import TFLiteRefError

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BACKENDS = ["numpy"] + (["libm"] if q.libm_available() else [])


def f32(x: float) -> float:
    """Round a double to float32 (struct rejects values that overflow to inf)."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def f2i_x86(x: float) -> int:
    """static_cast<int32_t>(float) as x86 does it (INT32_MIN when out of range / NaN)."""
    if math.isnan(x) or not -(2.0**31) <= x < 2.0**31:
        return -(1 << 31)
    return int(x)


def f2i_saturating(x: float) -> int:
    """static_cast<int32_t>(float) compiled as a saturating conversion (NaN -> 0)."""
    if math.isnan(x):
        return 0
    return int(min(max(x, -(2.0**31)), 2.0**31 - 1))


def lut_populate_int8_literal(s_in: float, z_in: int, s_out: float, z_out: int,
                              transform: Callable[[float], float], unsigned: bool,
                              f2i: Callable[[float], int] | None = None) -> list[int]:
    """detail::LUTPopulateInt8, one float32 operation at a time, in value order.  ``f2i`` is the
    float -> int32 conversion; by default the one each LiteRT instantiation was measured to use
    (int8: saturating, uint8: x86's INT32_MIN)."""
    f2i = f2i or (f2i_x86 if unsigned else f2i_saturating)
    inverse_scale = f32(1 / s_out)
    minval, maxval = (0, 255) if unsigned else (-128, 127)
    out = []
    for val in range(minval, maxval + 1):
        dequantized = f32(s_in * float(val - z_in))
        transformed = transform(dequantized)
        rescaled = cxx.std_round(f32(transformed * inverse_scale))
        quantized = f2i(f32(rescaled + float(z_out)))
        out.append(max(min(maxval, quantized), minval))
    return out


def lut_populate_int16_literal(s_in: float, z_in: int, s_out: float, z_out: int,
                               transform: Callable[[float], float], use_f32: bool) -> list[int]:
    """detail::LUTPopulateInt16<FloatT>: FloatT = float (use_f32) or double."""
    r = f32 if use_f32 else (lambda v: v)
    rnd = cxx.std_round
    input_min = r(s_in * (-32768 - z_in))
    input_max = r(s_in * (32767 - z_in))
    output_min = r(s_out * (-32768 - z_out))
    output_max = r(s_out * (32767 - z_out))
    nb_steps = 512
    step = r((input_max - input_min) / nb_steps)
    half_step = r(step / 2)
    output_scaling_inv = r(65536.0 / r(output_max - output_min))
    lut = []
    for i in range(nb_steps):
        val = transform(r(input_min + r(i * step)))
        val_midpoint = transform(r(r(input_min + r(i * step)) + half_step))
        val_next = transform(r(input_min + r((i + 1) * step)))
        sample_val = rnd(r(val * output_scaling_inv))
        midpoint_interp_val = rnd(
            r(r(r(val_next * output_scaling_inv) + rnd(r(val * output_scaling_inv))) / 2))
        midpoint_val = rnd(r(val_midpoint * output_scaling_inv))
        midpoint_err = r(midpoint_interp_val - midpoint_val)
        bias = rnd(r(midpoint_err / 2))
        lut.append(int(min(max(r(sample_val - bias), -32768.0), 32767.0)))
    lut.append(int(min(max(rnd(r(transform(input_max) * output_scaling_inv)), -32768.0),
                       32767.0)))
    return lut


def lut_lookup_int16_literal(value: int, lut: list[int]) -> int:
    index = (256 + (value >> 7)) & 0xFFFF
    assert index < 512
    offset = value & 0x7F
    base = lut[index]
    slope = cxx.narrow(lut[index + 1] - lut[index], 16)
    delta = (slope * offset + 64) >> 7
    return cxx.narrow(base + delta, 16)


def _scalar_f32(fn: Callable, backend: str) -> Callable[[float], float]:
    return lambda x: float(fn(np.float32(x), backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(s_in=st.floats(1e-3, 1.0).map(f32), z_in=st.integers(-128, 127),
       s_out=st.floats(1e-3, 0.1).map(f32), z_out=st.integers(-128, 127))
def test_lut_populate_int8_matches_literal(backend: str, s_in: float, z_in: int, s_out: float,
                                           z_out: int) -> None:
    def logistic(x: float) -> float:
        return f32(1.0 / f32(1.0 + float(q.c_expf(np.float32(-x), backend=backend))))

    want = lut_populate_int8_literal(s_in, z_in, 1 / 256, -128, logistic, unsigned=False)
    got = q.logistic_lut_int8(s_in, z_in, backend=backend)
    assert got.dtype == np.int8 and got.tolist() == want
    tanh = _scalar_f32(q.c_tanhf, backend)
    want = lut_populate_int8_literal(s_in, z_in, s_out, z_out, tanh, unsigned=False)
    assert q.tanh_lut_int8(s_in, z_in, s_out, z_out, backend=backend).tolist() == want
    want = lut_populate_int8_literal(s_in, z_in + 128, s_out, z_out + 128, tanh, unsigned=True)
    got = q.lut_populate_int8(s_in, z_in + 128, s_out, z_out + 128,
                              lambda x: q.c_tanhf(x, backend=backend), dtype=np.uint8)
    assert got.dtype == np.uint8 and got.tolist() == want


def test_lut_populate_int8_overflowing_transform() -> None:
    """A transform whose scaled value overflows int32: int8 tables saturate (+inf -> 127, as
    LiteRT's LUTPopulate<int8_t> does), uint8 tables and ``out_of_range="int32_min"`` convert like
    x86 (INT32_MIN -> qmin); NaN (0 · inf) gives 0 when saturating."""
    def exp10(x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(x.astype(np.float64) * 10).astype(np.float32)

    def exp10_literal(x: float) -> float:
        return f32(math.exp(x * 10)) if x < 8 else math.inf

    lut = q.lut_populate_int8(0.1, 0, 1e-6, 0, exp10)
    want = lut_populate_int8_literal(f32(0.1), 0, f32(1e-6), 0, exp10_literal, unsigned=False)
    assert lut.tolist() == want
    assert lut[-1] == 127  # +inf -> saturated to INT32_MAX -> clamped to the maximum
    lut = q.lut_populate_int8(0.1, 0, 1e-6, 0, exp10, out_of_range="int32_min")
    assert lut.tolist() == lut_populate_int8_literal(f32(0.1), 0, f32(1e-6), 0, exp10_literal,
                                                     unsigned=False, f2i=f2i_x86)
    assert lut[-1] == -128  # +inf -> INT32_MIN -> clamped to the minimum
    lut = q.lut_populate_int8(0.1, 128, 1e-6, 0, exp10, dtype=np.uint8)
    assert lut.tolist() == lut_populate_int8_literal(f32(0.1), 128, f32(1e-6), 0, exp10_literal,
                                                     unsigned=True)
    assert lut[-1] == 0  # uint8: INT32_MIN -> clamped to 0
    # 1/s_out = inf for a denormal scale: 0 · inf is NaN, which saturates to 0.
    lut = q.lut_populate_int8(1.0, 0, 1e-40, 5, lambda x: x.astype(np.float32))
    assert lut[128] == 0 and lut[129] == 127 and lut[127] == -128
    with pytest.raises(TFLiteRefError):
        q.lut_populate_int8(1.0, 0, 1.0, 0, exp10, out_of_range="wrap")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(s_in=st.floats(1e-5, 1e-3).map(f32), z_in=st.integers(-200, 200),
       s_out=st.floats(1e-5, 1e-3).map(f32), z_out=st.integers(-200, 200),
       use_f32=st.booleans())
def test_lut_populate_int16_matches_literal(backend: str, s_in: float, z_in: int, s_out: float,
                                            z_out: int, use_f32: bool) -> None:
    if use_f32:
        got = q.lut_populate_int16(s_in, z_in, s_out, z_out,
                                   lambda x: q.c_tanhf(x, backend=backend), float_type=np.float32)
        want = lut_populate_int16_literal(s_in, z_in, s_out, z_out,
                                          _scalar_f32(q.c_tanhf, backend), True)
    else:
        def tr(x: float) -> float:
            return 1.0 / (1.0 + float(q.c_exp(-abs(x), backend=backend)))

        got = q.lut_populate_int16(s_in, z_in, s_out, z_out,
                                   lambda x: 1.0 / (1.0 + q.c_exp(-np.abs(x), backend=backend)),
                                   float_type=np.float64)
        want = lut_populate_int16_literal(s_in, z_in, s_out, z_out, tr, False)
    assert got.dtype == np.int16 and got.shape == (q.LUT_INT16_SIZE,)
    assert got.tolist() == want


@pytest.mark.parametrize("emulate", ["tflite", "tflm"])
def test_softmax_int16_luts_match_literal(emulate: str) -> None:
    backend = BACKENDS[-1]
    exp_lut, recip_lut = q.softmax_int16_luts(emulate=emulate, backend=backend)
    rng = 65535
    if emulate == "tflite":
        want_exp = lut_populate_int16_literal(10.0 / rng, 32767, 2.0 / rng, 0,
                                              lambda x: float(q.c_exp(x, backend=backend)), False)
        want_rec = lut_populate_int16_literal(1.0 / rng, -32768, 2.0 / rng, 0,
                                              lambda x: 1.0 / (1.0 + x), False)
    else:
        want_exp = lut_populate_int16_literal(f32(10.0 / rng), 32767, f32(2.0 / rng), 0,
                                              _scalar_f32(q.c_expf, backend), True)
        want_rec = lut_populate_int16_literal(f32(1.0 / rng), -32768, f32(2.0 / rng), 0,
                                              lambda x: f32(1.0 / f32(1.0 + x)), True)
    assert exp_lut.tolist() == want_exp
    assert recip_lut.tolist() == want_rec


def test_lut_lookup_int16_exhaustive() -> None:
    rng = np.random.default_rng(5)
    for lut in (q.softmax_int16_luts()[0],
                rng.integers(-32768, 32768, size=513).astype(np.int16)):  # steep: slope wraps
        values = np.arange(-32768, 32768, dtype=np.int64).astype(np.int16)
        got = q.lut_lookup_int16(values, lut)
        table = lut.tolist()
        want = [lut_lookup_int16_literal(int(v), table) for v in values[::7]]
        assert got.dtype == np.int16
        assert got[::7].tolist() == want


def test_lut_lookup_int8() -> None:
    lut = q.tanh_lut_int8(0.05, 3, 1 / 128, 0)
    x = np.arange(-128, 128, dtype=np.int64).astype(np.int8)
    assert np.array_equal(q.lut_lookup_int8(x, lut), lut)
    assert q.lut_lookup_int8(np.array([[-128, 127]], dtype=np.int8), lut).tolist() == [
        [lut[0], lut[255]]]
    # C++ memory order [0..127, -128..-1] is a roll of the value order.
    mem = np.roll(lut, -128)
    assert mem[np.array(x).view(np.uint8)].tolist() == lut.tolist()
    with pytest.raises(TFLiteRefError):
        q.lut_lookup_int8(np.array([1], dtype=np.int16), lut)


def test_math_backends() -> None:
    x = np.linspace(-20, 20, 4001).astype(np.float32)
    cr_exp = np.exp(x.astype(np.float64)).astype(np.float32)
    cr_tanh = np.tanh(x.astype(np.float64)).astype(np.float32)
    assert np.array_equal(q.c_expf(x, backend="numpy"), cr_exp)
    assert np.array_equal(q.c_tanhf(x, backend="numpy"), cr_tanh)
    if q.libm_available():
        # glibc 2.36: expf within 1 ulp of the correctly rounded value, tanhf within 2.
        for got, want in ((q.c_expf(x, backend="libm"), cr_exp),
                          (q.c_tanhf(x, backend="libm"), cr_tanh)):
            assert np.all(np.abs(got.view(np.int32) - want.view(np.int32)) <= 2)
    with pytest.raises(TFLiteRefError):
        q.c_expf(x, backend="fast")  # type: ignore[arg-type]


def test_math_backends_of_the_other_tables() -> None:
    """expm1f (ELU), erfcf (GELU), logf (LOG): the numpy backend is the correctly rounded value,
    the C library's is what ctypes returns for each element and within a few ulps of it."""
    x = np.linspace(-20, 20, 4001).astype(np.float32)
    pos = np.abs(x) + np.float32(1e-3)
    cases = [(q.c_expm1f, x, np.expm1(x.astype(np.float64))),
             (q.c_erfcf, x, np.array([math.erfc(float(v)) for v in x])),
             (q.c_logf, pos, np.log(pos.astype(np.float64)))]
    for fn, arg, exact in cases:
        cr = exact.astype(np.float32)
        numpy_result = fn(arg, backend="numpy")
        assert numpy_result.dtype == np.float32 and np.array_equal(numpy_result, cr)
        if q.libm_available():
            got = fn(arg, backend="libm")
            assert got.dtype == np.float32 and got.shape == arg.shape
            assert np.all(np.abs(got.view(np.int32) - cr.view(np.int32)) <= 4)
            assert np.array_equal(fn(arg), got)  # the default backend is the C library
