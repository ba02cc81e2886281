"""QUANTIZE, DEQUANTIZE and CAST against LiteRT's reference kernels and TFLite Micro.

Each case builds a one-operator model with ``opmodels.op_model``, runs it in tflite_ref and in
the runtime (``emulate="tflite"`` vs LiteRT ``BUILTIN_REF``, every tensor; ``emulate="tflm"`` vs
the TFLM interpreter, outputs) and requires integer results to be equal and float results equal
within 1e-5 relative. Where a runtime has no kernel for a type combination, the case is not run
against it (the comment says which), and a separate test checks that tflite_ref refuses it too.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pytest
from harness import random_array, run_litert_outputs, run_ours
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opmodels import S, op_model, prepared
from opmodels import check_model as check

from tflite_ref.errors import ModelValidationError, UnsupportedOpError

RNG = np.random.default_rng(20261104)


def ties(shape: Sequence[int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """Floats that sit exactly on rounding ties (k + 1/2)·scale, plus random values."""
    n = int(np.prod(shape))
    k = rng.integers(-300, 300, size=n).astype(np.float32)
    x = (k + np.float32(0.5)) * np.float32(scale)
    mix = rng.uniform(-300 * scale, 300 * scale, size=n).astype(np.float32)
    return np.where(rng.random(n) < 0.5, x, mix).astype(np.float32).reshape(shape)


INT_RANGES = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767)}


# -- QUANTIZE float -> int ------------------------------------------------------------------------
# TFLM's QUANTIZE takes float32 -> int8 / int16 only (no uint8, no per-channel output).
FLOAT_QUANT_CASES = [
    ("int8", (1, 8, 8, 3), 0.05, -3),
    ("int8", (2, 33), 0.0125, 127),
    ("int8", (1030,), 1.0 / 3.0, 0),
    ("uint8", (4, 17), 0.02, 128),
    ("uint8", (64,), 0.25, 0),
    ("int16", (3, 5, 7), 1.0 / 4096, 0),
    ("int16", (100,), 0.001, 5),
]


@pytest.mark.parametrize(
    "dtype,shape,scale,zp", FLOAT_QUANT_CASES,
    ids=[f"quantize-float32-{d}-{'x'.join(map(str, s))}-s{sc:.3g}-z{z}"
         for d, s, sc, z in FLOAT_QUANT_CASES])
def test_quantize_float(dtype: str, shape: tuple[int, ...], scale: float, zp: int) -> None:
    model = op_model("QUANTIZE", [S(shape=shape, dtype="FLOAT32")],
                     [S(shape=shape, dtype=dtype.upper(), scale=scale, zero_point=zp)])
    x = ties(shape, scale, RNG)
    check(model, [x], tflm=dtype != "uint8")


def test_quantize_float_extremes() -> None:
    """NaN, infinities and huge values: static_cast<int32_t> gives INT32_MIN, then + z, clamp."""
    x = np.array([np.nan, np.inf, -np.inf, 1e20, -1e20, 3e9, -3e9, 2.5, -2.5, 0.5, -0.5, 0.0,
                  -0.0, 126.5, 127.5, -128.5, 1e-30], np.float32)
    for dtype, zp in (("INT8", -5), ("INT8", 7), ("INT16", 0), ("UINT8", 200)):
        model = op_model("QUANTIZE", [S(shape=x.shape, dtype="FLOAT32")],
                         [S(shape=x.shape, dtype=dtype, scale=1.0, zero_point=zp)])
        check(model, [x], tflm=dtype != "UINT8")


PER_CHANNEL_CASES = [("int8", (3, 4, 5), 0), ("int8", (2, 6), 1), ("uint8", (4, 3), 0),
                     ("int16", (2, 3, 4), 2)]


@pytest.mark.parametrize(
    "dtype,shape,axis", PER_CHANNEL_CASES,
    ids=[f"quantize-float32-{d}-perchannel-{'x'.join(map(str, s))}-axis{a}"
         for d, s, a in PER_CHANNEL_CASES])
def test_quantize_float_per_channel(dtype: str, shape: tuple[int, ...], axis: int) -> None:
    # LiteRT only: TFLM's PrepareQuantizeReference requires a single output scale.
    c = shape[axis]
    scales = RNG.uniform(0.01, 0.1, c).astype(np.float32)
    lo, hi = INT_RANGES[dtype.upper()]
    zps = RNG.integers(max(lo, -20), min(hi, 20) + 1, c) if dtype != "int16" else np.zeros(c)
    model = op_model("QUANTIZE", [S(shape=shape, dtype="FLOAT32")],
                     [S(shape=shape, dtype=dtype.upper(), scale=scales.tolist(),
                           zero_point=zps.astype(int).tolist(), quantized_dimension=axis)])
    x = RNG.uniform(-8, 8, size=shape).astype(np.float32)
    check(model, [x], tflm=False)


# -- QUANTIZE int -> int (requantize) -------------------------------------------------------------
TFLITE_REQUANT = {("INT16", "INT8"), ("INT16", "INT16"), ("INT16", "INT32"), ("INT32", "INT8"),
                  ("INT32", "INT16"), ("INT8", "UINT8"), ("INT8", "INT8"), ("INT8", "INT16"),
                  ("UINT8", "UINT8"), ("UINT8", "INT8"), ("UINT8", "INT16")}
TFLM_REQUANT = {("INT16", "INT8"), ("INT16", "INT16"), ("INT16", "INT32"), ("INT32", "INT8"),
                ("INT32", "INT16"), ("INT8", "INT8"), ("INT8", "UINT8"), ("INT8", "INT16"),
                ("INT8", "INT32"), ("UINT8", "INT8")}
ZERO_POINTS = {"INT8": (-7, 9), "UINT8": (120, 131), "INT16": (0, 0), "INT32": (3, -11)}
REQUANT_CASES = sorted(
    (a, b, ratio) for a, b in TFLITE_REQUANT | TFLM_REQUANT for ratio in (0.37, 2.9))


def _requant_model(a: str, b: str, ratio: float, shape: tuple[int, ...] = (6, 43),
                   zps: tuple[int, int] | None = None) -> bytes:
    s_in = 0.05
    z_in, z_out = zps or (ZERO_POINTS[a][0], ZERO_POINTS[b][1])
    if a == "INT16" and b == "INT16":
        z_in = z_out = 0  # quantize.cc: int16 -> int16 needs zero points 0
    return op_model("QUANTIZE", [S(shape=shape, dtype=a, scale=s_in, zero_point=z_in)],
                    [S(shape=shape, dtype=b, scale=s_in / ratio, zero_point=z_out)])


@pytest.mark.parametrize("a,b,ratio", REQUANT_CASES,
                         ids=[f"quantize-{a.lower()}-{b.lower()}-r{r}"
                              for a, b, r in REQUANT_CASES])
def test_requantize(a: str, b: str, ratio: float) -> None:
    model = _requant_model(a, b, ratio)
    dtype = np.dtype(a.lower())
    x = random_array((6, 43), dtype, RNG)
    if a == "INT32":  # keep most values in a range where the output is not simply saturated
        x = (x // 2**16).astype(np.int32)
    check(model, [x], litert=(a, b) in TFLITE_REQUANT, tflm=(a, b) in TFLM_REQUANT)


def test_requantize_int8_uint8_xor_path() -> None:
    """Equal scales and zero points 128 apart take requantize.h's XOR-0x80 shortcut."""
    for a, b, zps in (("INT8", "UINT8", (-3, 125)), ("UINT8", "INT8", (130, 2))):
        model = _requant_model(a, b, 1.0, shape=(256,), zps=zps)
        x = np.arange(256).astype(np.int64)
        x = (x - 128 if a == "INT8" else x).astype(a.lower())
        check(model, [x], litert=True, tflm=(a, b) in TFLM_REQUANT)


def test_requantize_int32_wraps() -> None:
    """int32 inputs near the limits: (q - z_in) and the left shift wrap as C++ int32 does."""
    x = np.array([2**31 - 1, -2**31, 2**31 - 5, -2**31 + 3, 0, 1, -1, 2**30, -2**30], np.int32)
    for ratio in (0.5, 1.0, 3.0):
        model = _requant_model("INT32", "INT16", ratio, shape=x.shape, zps=(-9, 4))
        check(model, [x])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=st.sampled_from(["INT8", "UINT8", "INT16"]), b=st.sampled_from(["INT8", "INT16"]),
       log_ratio=st.floats(-6, 4), z_in=st.integers(-128, 127), z_out=st.integers(-128, 127),
       n=st.integers(1, 70), seed=st.integers(0, 2**31))
def test_requantize_hypothesis(a: str, b: str, log_ratio: float, z_in: int, z_out: int,
                               n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    if a == "UINT8":
        z_in += 128
    if a == "INT16" and b == "INT16":
        z_in = z_out = 0
    model = op_model("QUANTIZE", [S(shape=(n,), dtype=a, scale=0.02, zero_point=z_in)],
                     [S(shape=(n,), dtype=b, scale=0.02 / 2.0**log_ratio, zero_point=z_out)])
    x = random_array((n,), np.dtype(a.lower()), rng)
    check(model, [x], litert=(a, b) in TFLITE_REQUANT, tflm=(a, b) in TFLM_REQUANT)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dtype=st.sampled_from(["INT8", "UINT8", "INT16"]), log_scale=st.floats(-12, 2),
       zp=st.integers(-128, 127), shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
       seed=st.integers(0, 2**31))
def test_quantize_float_hypothesis(dtype: str, log_scale: float, zp: int, shape: list[int],
                                   seed: int) -> None:
    scale = float(np.float32(2.0**log_scale))
    if dtype == "UINT8":
        zp += 128
    if dtype == "INT16":
        zp *= 7
    model = op_model("QUANTIZE", [S(shape=shape, dtype="FLOAT32")],
                     [S(shape=shape, dtype=dtype, scale=scale, zero_point=zp)])
    x = ties(shape, scale, np.random.default_rng(seed))
    check(model, [x], tflm=dtype != "UINT8")


# -- QUANTIZE: combinations the runtimes refuse ---------------------------------------------------
def test_quantize_refusals() -> None:
    to_uint8 = op_model("QUANTIZE", [S(shape=(4,), dtype="FLOAT32")],
                        [S(shape=(4,), dtype="UINT8", scale=0.1, zero_point=128)])
    prepared(to_uint8, "tflite")
    with pytest.raises(UnsupportedOpError, match="Micro"):
        prepared(to_uint8, "tflm")  # TFLM: "Input float32, output uint8 not supported"
    with pytest.raises(UnsupportedOpError):
        prepared(_requant_model("INT32", "INT32", 0.5), "tflite")
    with pytest.raises(UnsupportedOpError):
        prepared(_requant_model("INT8", "INT32", 0.5), "tflite")  # TFLM only
    with pytest.raises(ModelValidationError, match="zero points"):
        prepared(op_model("QUANTIZE", [S(shape=(4,), dtype="INT16", scale=0.1, zero_point=3)],
                     [S(shape=(4,), dtype="INT16", scale=0.2, zero_point=0)]), "tflite")
    with pytest.raises(ModelValidationError, match="quantization"):
        prepared(op_model("QUANTIZE", [S(shape=(4,), dtype="FLOAT32")],
                     [S(shape=(4,), dtype="INT8")]), "tflite")


# -- DEQUANTIZE -----------------------------------------------------------------------------------
DEQUANT_CASES = [("INT8", 0.05, -3), ("INT8", 1.7e-3, 127), ("UINT8", 0.1, 128),
                 ("UINT8", 3.3, 0), ("INT16", 1.0 / 3000, 0), ("INT16", 2.5e-5, 0)]


@pytest.mark.parametrize("dtype,scale,zp", DEQUANT_CASES,
                         ids=[f"dequantize-{d.lower()}-s{s:.3g}-z{z}" for d, s, z in DEQUANT_CASES])
def test_dequantize(dtype: str, scale: float, zp: int) -> None:
    shape = (3, 7, 11)
    model = op_model("DEQUANTIZE", [S(shape=shape, dtype=dtype, scale=scale, zero_point=zp)],
                     [S(shape=shape, dtype="FLOAT32")])
    check(model, [random_array(shape, np.dtype(dtype.lower()), RNG)], exact=True)


@pytest.mark.parametrize("dtype,axis", [("INT8", 0), ("INT8", 2), ("UINT8", 1)],
                         ids=["dequantize-int8-perchannel-axis0",
                              "dequantize-int8-perchannel-axis2",
                              "dequantize-uint8-perchannel-axis1"])
def test_dequantize_per_channel(dtype: str, axis: int) -> None:
    # LiteRT only: TFLM's DEQUANTIZE reads one scale (params.scale).
    shape = (4, 5, 6)
    c = shape[axis]
    scales = RNG.uniform(0.001, 0.2, c).astype(np.float32).tolist()
    zps = RNG.integers(-10, 10, c) + (128 if dtype == "UINT8" else 0)
    w = random_array(shape, np.dtype(dtype.lower()), RNG)
    model = op_model("DEQUANTIZE", [S(shape=shape, dtype=dtype, data=w, scale=scales,
                                         zero_point=zps.tolist(), quantized_dimension=axis)],
                     [S(shape=shape, dtype="FLOAT32")])
    check(model, [], tflm=False, exact=True)


def test_dequantize_float16_and_int4() -> None:
    # LiteRT only: TFLM takes int8, int16 and uint8 inputs.
    h = np.array([0.0, -0.0, 1.5, -2.25, 65504.0, -65504.0, 6.1e-5, 5.96e-8, np.inf, -np.inf],
                 np.float16)
    model = op_model("DEQUANTIZE", [S(shape=h.shape, dtype="FLOAT16", data=h)],
                     [S(shape=h.shape, dtype="FLOAT32")])
    check(model, [], tflm=False, exact=True)
    model = op_model("DEQUANTIZE", [S(shape=h.shape, dtype="FLOAT16")],
                     [S(shape=h.shape, dtype="FLOAT32")])
    check(model, [h], tflm=False, exact=True)
    w4 = RNG.integers(-8, 8, size=(3, 5)).astype(np.int8)
    model = op_model("DEQUANTIZE", [S(shape=w4.shape, dtype="INT4", data=w4, scale=0.3,
                                         zero_point=-1)],
                     [S(shape=w4.shape, dtype="FLOAT32")])
    check(model, [], tflm=False, exact=True)


# -- CAST -----------------------------------------------------------------------------------------
CAST_TYPES = ["INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "INT64", "BOOL", "FLOAT16",
              "FLOAT32", "FLOAT64", "COMPLEX64"]
CAST_TFLITE_OUT = CAST_TYPES  # LiteRT also has bfloat16/int4/int2, which NumPy cannot hold
# The tflite_micro wheel's CAST takes and writes int8, int16, int32, uint32, bool and float32
# (no uint8, uint16, int64, float16, float64 or complex); probed, since the TFLM source we read
# (micro/kernels/cast.cc) has no bool output yet.
CAST_TFLM = ["INT8", "INT16", "INT32", "UINT32", "BOOL", "FLOAT32"]


def cast_values(dtype: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Values that exercise wrap-around, truncation, saturation and NaN for each source type."""
    if dtype == "BOOL":
        return rng.integers(0, 2, n).astype(bool)
    if dtype in ("FLOAT16", "FLOAT32", "FLOAT64", "COMPLEX64"):
        special = np.array([np.nan, np.inf, -np.inf, 0.5, -0.5, 1.99, -1.99, 127.5, 128.0,
                            -128.7, 255.9, 256.0, 32767.9, 65535.5, 65536.0, 2.0**31, -2.0**31,
                            2.0**31 - 128, 2.0**32, 2.0**63, -2.0**63, 1e30, -1e30, 0.0, -0.0])
        x = np.concatenate([special, rng.normal(0, 300, n - special.size)])
        if dtype == "COMPLEX64":
            return (x + 1j * rng.normal(0, 5, n)).astype(np.complex64)
        with np.errstate(over="ignore"):
            return x.astype(np.dtype(dtype.lower()))
    return random_array((n,), np.dtype(dtype.lower()), rng)


CAST_PAIRS = [(a, b) for a in CAST_TYPES for b in CAST_TFLITE_OUT]


@pytest.mark.parametrize("a,b", CAST_PAIRS, ids=[f"cast-{a.lower()}-{b.lower()}"
                                                 for a, b in CAST_PAIRS])
@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")
def test_cast(a: str, b: str) -> None:
    n = 64
    model = op_model("CAST", [S(shape=(n,), dtype=a)], [S(shape=(n,), dtype=b)],
                     {"in_data_type": a, "out_data_type": b})
    x = cast_values(a, n, RNG)
    check(model, [x], litert=True, tflm=a in CAST_TFLM and b in CAST_TFLM)
    if b == "COMPLEX64":  # the harness compares real parts only; check the imaginary parts too
        ref = run_litert_outputs(model, [x])[0]
        np.testing.assert_array_equal(run_ours(model, [x]).get_tensor(1), ref)


def test_cast_int4_constant() -> None:
    # LiteRT only (cast.cc castInt4ToFloat); TFLM's CAST has no int4.
    w4 = RNG.integers(-8, 8, size=(3, 7)).astype(np.int8)
    model = op_model("CAST", [S(shape=w4.shape, dtype="INT4", data=w4)],
                     [S(shape=w4.shape, dtype="FLOAT32")])
    check(model, [], tflm=False, exact=True)


def test_cast_refusals() -> None:
    model = op_model("CAST", [S(shape=(3,), dtype="INT64")], [S(shape=(3,), dtype="INT32")])
    prepared(model, "tflite")
    with pytest.raises(UnsupportedOpError, match="Micro"):
        prepared(model, "tflm")
    with pytest.raises(UnsupportedOpError):
        prepared(op_model("CAST", [S(shape=(3,), dtype="UINT64")],
                     [S(shape=(3,), dtype="INT32")]), "tflite")
