"""Unary math kernels (tflite_ref/kernels/unary.py) against LiteRT and TFLite Micro.

Single-operator models are built with :mod:`tflite_ref.model.writer` and run in tflite_ref, in
LiteRT's reference kernels (every tensor compared, bit for bit: floats too) and, where TFLite
Micro has the operator and dtype, in TFLM (``emulate="tflm"``).  The float EXP, LOG, SIN and COS
are the C library's ``expf`` / ``logf`` / ``sinf`` / ``cosf``, which are neither NumPy's float32
functions nor the correctly rounded values: :func:`test_float_function_is_the_c_library` feeds
them enough arguments to tell those apart.

Quantized inputs are *exhaustive*: every int8 code (256) or every int16 code (65536) that the
kernel accepts goes through, so a test covers the whole lookup table or formula at once.

How to add a case: append to ``FLOAT_CASES`` / ``QUANT_CASES``; ``tflm=False`` when TFLM lacks
the op or dtype (TFLM has float32 EXP, LOG, SQRT, RSQRT, SQUARE, SIN, COS, NEG, FLOOR, CEIL,
ROUND; int8 RSQRT and ABS; int16 ABS; no SIGN, no quantized EXP/LOG/SQRT).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from harness import assert_tensor_matches, run_litert, run_litert_outputs
from hypothesis import given, settings
from hypothesis import strategies as st
from opmodels import S, check_model, op_model, ours_output, run_litert_builtin

import tflite_ref
from tflite_ref.errors import (
    KernelRuntimeError,
    ModelValidationError,
    UnsupportedOpError,
)
from tflite_ref.kernels.unary import libm_float


def build(op: str, shape: Sequence[int], dtype: str, q_in: tuple[float, int] | None = None,
          q_out: tuple[float, int] | None = None) -> bytes:
    return op_model(op, [S(shape, dtype, None, *(q_in or ()))],
                    [S(shape, dtype, None, *(q_out or ()))])


def check(model: bytes, x: np.ndarray, tflm: bool, litert_ref: bool = True) -> None:
    """One input ``x``, every float bit for bit; ops LiteRT's reference resolver lacks (CEIL,
    ROUND) are compared with its builtin kernels (exact float functions, so as good a golden)
    instead."""
    if not litert_ref:
        assert_tensor_matches(ours_output(model, [x]), run_litert_builtin(model, [x])[0],
                              "output vs LiteRT builtin kernels", rtol=0.0, atol=0.0)
    if litert_ref or tflm:
        check_model(model, [x], litert=litert_ref, tflm=tflm)


def all_codes(dtype: str, lo: int | None = None) -> np.ndarray:
    info = np.iinfo(np.dtype(dtype.lower()))
    start = info.min if lo is None else max(lo, info.min)
    return np.arange(start, int(info.max) + 1).astype(dtype.lower())


# ------------------------------------------------------------------------------------------------
# Float (and raw integer) kernels
# ------------------------------------------------------------------------------------------------
SPECIAL = np.array([0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 1e-30, -1e-30, 3.0e7, -7.0e6,
                    np.inf, -np.inf, np.nan], np.float32)


@dataclass(frozen=True)
class FloatCase:
    op: str
    dtype: str = "FLOAT32"
    low: float = -4.0
    high: float = 4.0
    tflm: bool = True
    special: bool = True  # append infinities, NaN, halves, signed zeros
    litert_ref: bool = True  # False: BUILTIN_REF has no kernel; compare with LiteRT's builtin one

    @property
    def id(self) -> str:
        return f"{self.op.lower()}-{self.dtype.lower()}"

    def input(self, rng: np.random.Generator) -> np.ndarray:
        dt = np.dtype(self.dtype.lower())
        if dt.kind == "f":
            x = rng.uniform(self.low, self.high, size=48).astype(dt)
            if self.special:
                x = np.concatenate([x, SPECIAL.astype(dt)])
            return x.reshape(1, -1, 3) if x.size % 3 == 0 else x
        info = np.iinfo(dt)
        x = rng.integers(int(info.min), int(info.max), size=45, endpoint=True).astype(dt)
        return np.concatenate([x, np.array([info.min, info.max, 0], dt)]).reshape(4, 3, 4)


FLOAT_CASES = [
    FloatCase("EXP", low=-10, high=10),
    FloatCase("LOG", low=0.0, high=100.0),
    FloatCase("SQRT", low=0.0, high=100.0),
    FloatCase("RSQRT", low=0.0, high=100.0),
    FloatCase("SQUARE"),
    FloatCase("SIN", low=-10, high=10),
    FloatCase("COS", low=-10, high=10),
    FloatCase("FLOOR"),
    FloatCase("CEIL", litert_ref=False),
    FloatCase("ROUND", litert_ref=False),
    FloatCase("ABS"),
    FloatCase("NEG"),
    FloatCase("SIGN", tflm=False),
    FloatCase("SIGN", "FLOAT64", tflm=False),
    FloatCase("SIGN", "INT32", tflm=False),
    FloatCase("ABS", "INT32", tflm=False),  # LiteRT only; INT32_MIN stays INT32_MIN
    FloatCase("ABS", "INT16"),  # unquantized int16 ABS (both runtimes)
    # NEG on 8/16/64-bit integers: LiteRT only (TFLM has float32 NEG).
    FloatCase("NEG", "INT8", tflm=False),
    FloatCase("NEG", "INT16", tflm=False),
    FloatCase("NEG", "INT32", tflm=False),
    FloatCase("NEG", "INT64", tflm=False),
]


@pytest.mark.parametrize("case", FLOAT_CASES, ids=[c.id for c in FLOAT_CASES])
def test_float_and_raw(case: FloatCase) -> None:
    x = case.input(np.random.default_rng(3))
    check(build(case.op, x.shape, case.dtype), x, case.tflm, case.litert_ref)


# The float32 functions of <cmath> the kernels call, and NumPy's float64 one for each.
C_FUNCTIONS = {"EXP": ("expf", np.exp), "LOG": ("logf", np.log), "SIN": ("sinf", np.sin),
               "COS": ("cosf", np.cos)}


@pytest.mark.parametrize("op", sorted(C_FUNCTIONS), ids=str.lower)
def test_float_function_is_the_c_library(op: str) -> None:
    """20000 arguments over the function's range: both runtimes' outputs are the C library's
    float function bit for bit, and ours equal them -- while the float64 function rounded once to
    float32 (what a correctly rounded expf would give) misses some of them, so a kernel that
    computed that instead would fail here."""
    rng = np.random.default_rng(zlib.crc32(op.encode()))
    x = (np.exp(rng.uniform(-80, 80, 20000)) if op == "LOG"
         else rng.uniform(-100, 100, 20000)).astype(np.float32)
    model = build(op, x.shape, "FLOAT32")
    check(model, x, tflm=True)
    litert = run_litert_outputs(model, [x])[0]
    name, numpy_function = C_FUNCTIONS[op]
    np.testing.assert_array_equal(libm_float(name, numpy_function, x), litert)
    with np.errstate(over="ignore"):
        correctly_rounded = numpy_function(x.astype(np.float64)).astype(np.float32)
    assert np.any(correctly_rounded != litert)


def test_round_is_bankers() -> None:
    """ROUND rounds halves to even (tf.round), unlike std::round elsewhere in TFLite."""
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 8388607.5], np.float32)
    model = build("ROUND", x.shape, "FLOAT32")
    check(model, x, tflm=True, litert_ref=False)
    np.testing.assert_array_equal(ours_output(model, [x]), [-2, -2, -0, 0, 2, 2, 4, 8388608])


# ------------------------------------------------------------------------------------------------
# Quantized kernels, exhaustive over the input codes
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuantCase:
    op: str
    dtype: str
    q_in: tuple[float, int]
    q_out: tuple[float, int]
    tflm: bool = False
    extra: str = ""

    @property
    def id(self) -> str:
        return f"{self.op.lower()}-{self.dtype.lower()}{self.extra}"

    def input(self) -> np.ndarray:
        # SQRT and RSQRT reject inputs below the zero point (a negative real value).
        lo = self.q_in[1] if self.op in ("SQRT", "RSQRT") else None
        return all_codes(self.dtype, lo)


QUANT_CASES = [
    # EXP/LOG/SQRT quantized: LiteRT only (TFLM float32 only).
    QuantCase("EXP", "INT8", (0.03, 20), (0.2, -128)),
    QuantCase("EXP", "INT16", (1 / 8192, 0), (1 / 1024, 0)),
    QuantCase("LOG", "INT8", (0.05, -128), (0.03, 40)),
    QuantCase("LOG", "INT16", (0.01, 0), (2.0**-12, 0)),
    QuantCase("SQRT", "INT8", (0.1, -100), (0.07, -128)),
    QuantCase("SQRT", "INT16", (0.01, 0), (0.001, 0)),
    # RSQRT int8: both runtimes; int16 (a LUT): LiteRT only.
    QuantCase("RSQRT", "INT8", (0.05, -60), (0.02, -128), tflm=True),
    QuantCase("RSQRT", "INT8", (0.5, 0), (0.004, -128), tflm=True, extra="-wide"),
    QuantCase("RSQRT", "INT16", (0.001, 0), (0.001, 0)),
    # ABS: int8 and quantized int16 in both runtimes; same scale (no rescale) and rescaled.
    QuantCase("ABS", "INT8", (0.05, 10), (0.05, -20), tflm=True, extra="-same-scale"),
    QuantCase("ABS", "INT8", (0.05, 10), (0.03, -128), tflm=True),
    QuantCase("ABS", "INT16", (0.001, 0), (0.001, 0), tflm=True, extra="-same-scale"),
    QuantCase("ABS", "INT16", (0.001, 0), (0.0007, 0), tflm=True),
    # NEG ignores the quantization (raw negation): LiteRT only.
    QuantCase("NEG", "INT8", (0.05, 3), (0.05, 3)),
]


@pytest.mark.parametrize("case", QUANT_CASES, ids=[c.id for c in QUANT_CASES])
def test_quantized(case: QuantCase) -> None:
    x = case.input()
    check(build(case.op, x.shape, case.dtype, case.q_in, case.q_out), x, case.tflm)


scales = st.floats(0.002, 0.3).map(lambda s: float(np.float32(s)))
zp8 = st.integers(-128, 127)


@settings(max_examples=120, deadline=None)
@given(op=st.sampled_from(["EXP", "LOG", "SQRT", "RSQRT", "ABS"]), s_in=scales, z_in=zp8,
       s_out=scales, z_out=zp8)
def test_int8_random_quantization(op: str, s_in: float, z_in: int, s_out: float,
                                  z_out: int) -> None:
    if op == "RSQRT":  # keep 1/sqrt(s_in)/s_out a multiplier the kernel can apply
        s_out = float(np.float32(max(s_out, 0.5 / np.sqrt(s_in) / 2**10)))
    case = QuantCase(op, "INT8", (s_in, z_in), (s_out, z_out), tflm=op in ("RSQRT", "ABS"))
    x = case.input()
    check(build(op, x.shape, "INT8", case.q_in, case.q_out), x, case.tflm)


@settings(max_examples=25, deadline=None)
@given(op=st.sampled_from(["EXP", "LOG", "SQRT", "RSQRT", "ABS"]),
       s_in=st.floats(1e-5, 1e-2), s_out=st.floats(1e-5, 1e-2))
def test_int16_random_quantization(op: str, s_in: float, s_out: float) -> None:
    if op == "EXP":  # exp of the input range must stay representable
        s_in = min(s_in, 3e-4)
    case = QuantCase(op, "INT16", (float(np.float32(s_in)), 0), (float(np.float32(s_out)), 0),
                     tflm=op == "ABS")
    x = case.input()
    check(build(op, x.shape, "INT16", case.q_in, case.q_out), x, case.tflm)


def test_abs_multiplier_per_runtime() -> None:
    """LiteRT builds ABS's multiplier from the float32 quotient s_in/s_out, the TFLM wheel from the
    double one; with these scales they differ in 22 of the 65536 int16 outputs."""
    q_in, q_out = (2.0**-7, 0), (float(np.float32(0.008149693310246361)), 0)
    model = build("ABS", (65536,), "INT16", q_in, q_out)
    x = all_codes("INT16")
    check(model, x, tflm=True)
    tfl, tflm = ours_output(model, [x]), ours_output(model, [x], "tflm")
    assert np.count_nonzero(tfl != tflm) == 22


def test_rsqrt_multiplier_per_runtime() -> None:
    """1/(sqrt(s_in)·s_out): LiteRT multiplies in float32, the TFLM wheel in double; with these
    scales one table entry differs between the runtimes, and each is matched."""
    q_in, q_out = (0.0024341661483049393, 14), (0.4769107699394226, 47)
    x = all_codes("INT8", q_in[1])
    model = build("RSQRT", x.shape, "INT8", q_in, q_out)
    check(model, x, tflm=True)
    assert np.count_nonzero(ours_output(model, [x]) != ours_output(model, [x], "tflm")) == 1


def test_exp_int8_saturates_out_of_range() -> None:
    """exp(20) / 0.25 does not fit int32: LiteRT's table saturates to 127 (not x86's INT32_MIN)."""
    model = build("EXP", (256,), "INT8", (0.25, 0), (0.25, 0))
    x = all_codes("INT8")
    check(model, x, tflm=False)
    assert ours_output(model, [x])[-1] == 127


@pytest.mark.parametrize("op", ["EXP", "LOG"])
def test_int8_lut_nan_and_overflow_entries(op: str) -> None:
    """A denormal output scale makes 1/s_out infinite: entries with a zero transform are
    0 · inf = NaN, which LiteRT's int8 table turns into 0, the others saturate; a tiny one makes
    every entry overflow int32 (quant.lut_populate_int8, tests/quant/test_live_runtimes.py)."""
    x = all_codes("INT8")
    for q_in, q_out in (((1.0, 0), (1e-40, 3)), ((0.5, 10), (1e-9, -4))):
        check(build(op, (256,), "INT8", q_in, q_out), x, tflm=False)


# ------------------------------------------------------------------------------------------------
# Faults and preconditions
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op,dtype,q", [("SQRT", "INT8", (0.1, 5)), ("RSQRT", "INT8", (0.1, 5)),
                                        ("RSQRT", "INT16", (0.01, 0))],
                         ids=["sqrt-int8", "rsqrt-int8", "rsqrt-int16"])
def test_negative_input_raises(op: str, dtype: str, q: tuple[float, int]) -> None:
    model = build(op, (3,), dtype, q, q)
    x = np.array([q[1] + 1, q[1] - 1, q[1]], dtype.lower())
    with pytest.raises(KernelRuntimeError, match="operator 0"):
        ours_output(model, [x])
    with pytest.raises(RuntimeError):  # LiteRT rejects the input as well
        run_litert(model, [x])


def test_int16_needs_zero_points_zero() -> None:
    model = build("EXP", (3,), "INT16", (0.001, 5), (0.001, 0))
    with pytest.raises(ModelValidationError, match="zero points"):
        tflite_ref.Interpreter(model_content=model).allocate_tensors()


def test_quantized_exp_is_tflite_only() -> None:
    model = build("EXP", (3,), "INT8", (0.05, 0), (0.1, -128))
    with pytest.raises(UnsupportedOpError, match="TFLite Micro"):
        tflite_ref.Interpreter(model_content=model, emulate="tflm").allocate_tensors()


def test_sign_signed_zero_and_nan() -> None:
    x = np.array([-0.0, 0.0, np.nan, -3.0, 2.0], np.float32)
    y = ours_output(build("SIGN", x.shape, "FLOAT32"), [x])
    np.testing.assert_array_equal(np.signbit(y[:2]), [False, False])
    assert np.isnan(y[2]) and list(y[3:]) == [-1.0, 1.0]



