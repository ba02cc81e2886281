"""Activation kernels (tflite_ref/kernels/activations.py) against LiteRT and TFLite Micro.

Every case builds a one-operator model with :mod:`tflite_ref.model.writer` and runs it in
tflite_ref and in LiteRT's reference kernels (``BUILTIN_REF``; every tensor compared, bit for
bit -- floats included) and, where TFLite Micro has the operator and dtype, in TFLM
(``emulate="tflm"``).  8-bit inputs hold every value of the type (shuffled), so a table-driven
kernel is checked at all 256 entries.  The float LOGISTIC, TANH, SOFTMAX, LOG_SOFTMAX and ELU
call the C library's ``expf`` / ``tanhf`` / ``logf`` / ``expm1f`` and the float GELU is Eigen's
erfc / tanh; :func:`test_float_function_is_the_c_library` and
:func:`test_gelu_float_lanes` use inputs on which the obvious alternatives differ.

What the runtimes lack (so those combinations are compared with the other runtime only):
TFLM has no RELU_N1_TO_1, RELU_0_TO_1 or GELU, and no uint8 kernel of any op here; LiteRT's
BUILTIN_REF resolver has no ELU (ELU is compared with LiteRT's builtin kernels instead), no int16
RELU_N1_TO_1/RELU_0_TO_1/HARD_SWISH/LOG_SOFTMAX/L2_NORMALIZATION.

How to add a case: append a :class:`Case` to ``CASES``; set ``tflm=False`` where TFLM lacks the
op or dtype.  Continuous parameters (scales, zero points, beta, alpha, shapes) belong in the
hypothesis tests further down.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from harness import (
    assert_matches_tflm,
    assert_tensor_matches,
    random_array,
    run_litert_outputs,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from opmodels import (
    S,
    check_model,
    litert_rejects,
    op_model,
    ours_output,
    prepared,
    run_litert_builtin,
    tflm_rejects,
)

import tflite_ref
from tflite_ref.errors import ModelValidationError, UnsupportedOpError
from tflite_ref.kernels import activations, unary

QParams = tuple[float, int]


# ------------------------------------------------------------------------------------------------
# Model building and checking
# ------------------------------------------------------------------------------------------------
def build(op: str, shape: Sequence[int], dtype: str, qin: QParams | None = None,
          qout: QParams | None = None, options: dict[str, Any] | None = None, *,
          out_dtype: str | None = None, alpha: dict[str, Any] | None = None) -> bytes:
    """A single ``op`` model ``y = op(x[, alpha])``.

    ``alpha`` (PRELU): ``{"shape", "dtype", "q", "data"}``; without ``data`` it is a second
    model input.
    """
    ins = [S(shape, dtype, None, *(qin or ()))]
    if alpha is not None:
        ins.append(S(alpha["shape"], alpha["dtype"], alpha.get("data"), *(alpha.get("q") or ())))
    return op_model(op, ins, [S(shape, out_dtype or dtype, None, *(qout or ()))], options)


def check(model: bytes, inputs: list[np.ndarray], *, tflm: bool = True, litert: bool = True
          ) -> None:
    """opmodels.check_model with floats compared bit for bit, as integers are."""
    check_model(model, inputs, litert=litert, tflm=tflm)


def make_input(shape: Sequence[int], dtype: str, rng: np.random.Generator, low: float = -8.0,
               high: float = 8.0) -> np.ndarray:
    """Every value of an 8-bit type (repeated to fill, shuffled); random otherwise."""
    np_dtype = np.dtype(dtype.lower())
    if np_dtype.itemsize == 1 and np_dtype.kind in "iu":
        info = np.iinfo(np_dtype)
        every = np.arange(info.min, info.max + 1)
        flat = np.resize(every, int(np.prod(shape))).astype(np_dtype)
        rng.shuffle(flat)
        return flat.reshape(shape)
    if np_dtype == np.int16:
        a = random_array(shape, np_dtype, rng)
        flat = a.reshape(-1)
        flat[: min(4, flat.size)] = np.array([-32768, 32767, 0, -1], np.int16)[: min(4, flat.size)]
        return a
    return random_array(shape, np_dtype, rng, low, high)


# ------------------------------------------------------------------------------------------------
# Parametrised cases
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    op: str
    dtype: str
    shape: tuple[int, ...] = (2, 5, 26)
    qin: QParams | None = None
    qout: QParams | None = None
    options: dict[str, Any] = field(default_factory=dict)
    tflm: bool = True
    out_dtype: str | None = None
    low: float = -8.0
    high: float = 8.0
    extra: str = ""

    @property
    def id(self) -> str:
        shape = "x".join(map(str, self.shape))
        dt = self.dtype.lower() + ("" if self.out_dtype is None else "-" + self.out_dtype.lower())
        return f"{self.op.lower()}-{dt}-{shape}{self.extra}"


Q8, Q8_OUT = (0.05, 3), (0.03, -10)
QU8, QU8_OUT = (0.05, 130), (0.03, 100)
Q16, Q16_OUT = (0.001, 0), (0.0007, 0)
SIGMOID8, SIGMOIDU8, SIGMOID16 = (1 / 256, -128), (1 / 256, 0), (1 / 32768, 0)
TANH8, TANHU8 = (1 / 128, 0), (1 / 128, 128)
F = "FLOAT32"

CASES = [
    # RELU family. TFLM: RELU and RELU6 in float32, int8, int16 (no RELU_N1_TO_1/RELU_0_TO_1).
    *[Case(op, F, tflm=op in ("RELU", "RELU6")) for op in
      ("RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1")],
    *[Case(op, "INT8", qin=Q8, qout=qo, tflm=op in ("RELU", "RELU6"), extra=extra)
      for op in ("RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1")
      for qo, extra in ((Q8_OUT, ""), (Q8, "-same-q"))],
    # TFLM's RELU6 clamps in the input quantization: with different in/out params it disagrees
    # with LiteRT, and each emulation is checked against its own runtime.
    Case("RELU6", "INT8", qin=(0.051, -20), qout=(0.0235, -128), extra="-converter-q"),
    *[Case(op, "UINT8", qin=QU8, qout=QU8_OUT, tflm=False)
      for op in ("RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1")],
    Case("RELU", "INT16", qin=Q16, qout=Q16_OUT),
    Case("RELU6", "INT16", qin=Q16, qout=Q16_OUT),
    # LEAKY_RELU: TFLM float32, int8, int16.
    Case("LEAKY_RELU", F, options={"alpha": 0.2}),
    Case("LEAKY_RELU", "INT8", qin=Q8, qout=Q8_OUT, options={"alpha": 0.2}),
    Case("LEAKY_RELU", "INT8", qin=Q8, qout=Q8_OUT, options={"alpha": -1.5}, extra="-neg-alpha"),
    Case("LEAKY_RELU", "INT8", qin=(0.1, -3), qout=(0.05, 0), options={"alpha": 3.0},
         extra="-alpha-gt-1"),
    Case("LEAKY_RELU", "UINT8", qin=QU8, qout=QU8_OUT, options={"alpha": 0.3}, tflm=False),
    Case("LEAKY_RELU", "INT16", qin=Q16, qout=Q16_OUT, options={"alpha": 0.3}),
    # HARD_SWISH: TFLM float32 and int8; LiteRT also uint8.
    Case("HARD_SWISH", F),
    Case("HARD_SWISH", "INT8", qin=Q8, qout=Q8_OUT),
    Case("HARD_SWISH", "INT8", qin=(0.005, -3), qout=(0.03, -100), extra="-reluish-exp-neg"),
    Case("HARD_SWISH", "INT8", qin=(0.2, 10), qout=(0.25, -60), extra="-reluish-exp-pos"),
    Case("HARD_SWISH", "UINT8", qin=QU8, qout=QU8_OUT, tflm=False),
    # LOGISTIC / TANH: TFLM float32, int8, int16.
    Case("LOGISTIC", F, low=-20, high=20),
    Case("LOGISTIC", "INT8", qin=Q8, qout=SIGMOID8),
    Case("LOGISTIC", "INT8", qin=(0.15, -20), qout=SIGMOID8, extra="-saturating"),
    Case("LOGISTIC", "UINT8", qin=QU8, qout=SIGMOIDU8, tflm=False),
    Case("LOGISTIC", "INT16", qin=(2.0**-12, 0), qout=SIGMOID16, extra="-pot"),
    Case("LOGISTIC", "INT16", qin=(0.0007, 0), qout=SIGMOID16),
    Case("TANH", F),
    Case("TANH", "INT8", qin=Q8, qout=TANH8),
    # TFLM's int8 TANH assumes (1/128, 0) without checking; LiteRT honours the given params.
    Case("TANH", "INT8", qin=Q8, qout=(0.01, 5), extra="-other-out-q"),
    Case("TANH", "UINT8", qin=QU8, qout=TANHU8, tflm=False),
    Case("TANH", "INT16", qin=(2.0**-12, 0), qout=SIGMOID16, extra="-pot"),
    Case("TANH", "INT16", qin=(2.0**-11, 0), qout=SIGMOID16, extra="-pot-shift1"),
    Case("TANH", "INT16", qin=(0.0007, 0), qout=SIGMOID16),
    # SOFTMAX: TFLM float32, int8->int8, int8->int16, int16->int16.
    Case("SOFTMAX", F, options={"beta": 1.0}),
    Case("SOFTMAX", F, (2, 3, 4, 9), options={"beta": 0.5}),
    Case("SOFTMAX", "INT8", qin=Q8, qout=SIGMOID8, options={"beta": 1.0}),
    Case("SOFTMAX", "INT8", (3, 1000), qin=(0.1, -7), qout=SIGMOID8, options={"beta": 0.7}),
    Case("SOFTMAX", "INT8", qin=Q8, qout=(1 / 65536, -32768), options={"beta": 1.0},
         out_dtype="INT16"),
    Case("SOFTMAX", "UINT8", qin=QU8, qout=SIGMOIDU8, options={"beta": 1.0}, tflm=False),
    Case("SOFTMAX", "UINT8", qin=QU8, qout=(1 / 65536, -32768), options={"beta": 1.0},
         out_dtype="INT16", tflm=False),
    Case("SOFTMAX", "INT16", qin=(0.0007, 0), qout=SIGMOID16, options={"beta": 1.0}),
    Case("SOFTMAX", "INT16", qin=(0.0003, 0), qout=SIGMOID16, options={"beta": 2.0},
         extra="-beta2"),
    # LOG_SOFTMAX: TFLM float32, int8.
    Case("LOG_SOFTMAX", F),
    Case("LOG_SOFTMAX", "INT8", qin=Q8, qout=(16 / 256, 127)),
    Case("LOG_SOFTMAX", "INT8", (4, 300), qin=(0.2, 0), qout=(16 / 256, 127), extra="-wide"),
    Case("LOG_SOFTMAX", "UINT8", qin=QU8, qout=(16 / 256, 255), tflm=False),
    # GELU: LiteRT only.
    *[Case("GELU", dt, qin=qi, qout=qo, options={"approximate": ap}, tflm=False,
           extra="-approx" if ap else "")
      for dt, qi, qo in ((F, None, None), ("INT8", Q8, Q8_OUT), ("UINT8", QU8, QU8_OUT),
                         ("INT16", Q16, Q16_OUT), ("INT16", (0.001, 7), (0.0007, -9)))
      for ap in (False, True)],
    # L2_NORMALIZATION: TFLM float32 and int8.
    Case("L2_NORMALIZATION", F),
    Case("L2_NORMALIZATION", "INT8", qin=Q8, qout=(1 / 128, 0)),
    Case("L2_NORMALIZATION", "INT8", (3, 4, 700), qin=(0.02, -1), qout=(1 / 128, 0),
         extra="-deep"),
    Case("L2_NORMALIZATION", "UINT8", qin=QU8, qout=(1 / 128, 128), tflm=False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case) -> None:
    model = build(case.op, case.shape, case.dtype, case.qin, case.qout, case.options or None,
                  out_dtype=case.out_dtype)
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    check(model, [make_input(case.shape, case.dtype, rng, case.low, case.high)], tflm=case.tflm)


# -- PRELU: a second (constant or runtime) input ------------------------------------------------
PRELU_CASES = [
    # (id, dtype, input shape, alpha shape, q in, q alpha, q out, alpha is constant, tflm)
    ("float32-1x4x5x3-alpha-1x1x3", F, (1, 4, 5, 3), (1, 1, 3), None, None, None, True, True),
    ("float32-2x3x4-alpha-input", F, (2, 3, 4), (2, 3, 4), None, None, None, False, True),
    ("int8-1x4x5x3-alpha-3", "INT8", (1, 4, 5, 3), (3,), Q8, (0.01, 5), Q8_OUT, True, True),
    ("int8-2x6x40-alpha-input", "INT8", (2, 6, 40), (2, 6, 40), Q8, (0.02, -3), Q8_OUT, False,
     True),
    ("uint8-1x4x5x3-alpha-1x5x1", "UINT8", (1, 4, 5, 3), (1, 5, 1), QU8, (0.01, 120), QU8_OUT,
     True, False),
    # int16 PRELU takes an int8 alpha in both runtimes
    ("int16-1x4x5x3-alpha-int8-3", "INT16", (1, 4, 5, 3), (3,), Q16, (0.01, 2), Q16_OUT, True,
     True),
]


@pytest.mark.parametrize("case", PRELU_CASES, ids=[f"prelu-{c[0]}" for c in PRELU_CASES])
def test_prelu(case: tuple[Any, ...]) -> None:
    name, dtype, shape, a_shape, qin, qa, qout, const, tflm = case
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    a_dtype = "INT8" if dtype == "INT16" else dtype
    alpha = make_input(a_shape, a_dtype, rng, -1.0, 1.0)
    model = build("PRELU", shape, dtype, qin, qout, alpha={
        "shape": a_shape, "dtype": a_dtype, "q": qa, "data": alpha if const else None})
    x = make_input(shape, dtype, rng)
    check(model, [x] if const else [x, alpha], tflm=tflm)


# -- ELU: LiteRT's BUILTIN_REF resolver does not register ELU -------------------------------------
@pytest.mark.parametrize("dtype,qin,qout", [(F, None, None), ("INT8", Q8, Q8_OUT),
                                            ("INT8", (0.01, 100), (0.01, 100))],
                         ids=["elu-float32", "elu-int8", "elu-int8-fine-negative"])
def test_elu(dtype: str, qin: QParams | None, qout: QParams | None) -> None:
    shape = (2, 5, 26)
    model = build("ELU", shape, dtype, qin, qout)
    x = make_input(shape, dtype, np.random.default_rng(7))
    # "tflite" emulation follows LiteRT's builtin ELU kernel (activations.cc EluEval), the only
    # one LiteRT has; there is nothing else to compare with.
    ref = run_litert_builtin(model, [x])[0]
    assert_tensor_matches(ours_output(model, [x]), ref, "ELU vs LiteRT builtin", rtol=0.0,
                          atol=0.0)
    assert_matches_tflm(model, [x], rtol=0.0, atol=0.0)


# -- float transcendentals: the C library's functions, and Eigen's --------------------------------
FLOAT_FUNCTION_OPS = {  # op: (options, input range, shape)
    "LOGISTIC": (None, (-20.0, 20.0), (20, 1000)),
    "TANH": (None, (-10.0, 10.0), (20, 1000)),
    "SOFTMAX": ({"beta": 0.7}, (-20.0, 20.0), (20, 1000)),
    # short rows: one logf per row, and a sum of two exponentials that an ulp of either moves
    "LOG_SOFTMAX": (None, (-5.0, 5.0), (10000, 2)),
    "ELU": (None, (-20.0, 5.0), (20, 1000)),
}


@pytest.mark.parametrize("op", sorted(FLOAT_FUNCTION_OPS), ids=str.lower)
def test_float_function_is_the_c_library(op: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """20000 float32 inputs: ours equal both runtimes bit for bit -- and the same kernels with
    correctly rounded exp / tanh / log / expm1 (the NumPy fallback of unary.libm_float, used when
    no C library can be loaded) do not, so computing those instead would fail here."""
    options, (low, high), shape = FLOAT_FUNCTION_OPS[op]
    model = build(op, shape, F, options=options)
    x = random_array(shape, np.dtype(np.float32), np.random.default_rng(zlib.crc32(op.encode())),
                     low, high)
    if op == "ELU":  # LiteRT's reference resolver lacks ELU: its builtin kernel is the golden
        litert_out = run_litert_builtin(model, [x])[0]
        assert_tensor_matches(ours_output(model, [x]), litert_out, "ELU vs LiteRT builtin",
                              rtol=0.0, atol=0.0)
        check(model, [x], litert=False)
    else:
        litert_out = run_litert_outputs(model, [x])[0]
        check(model, [x])
    monkeypatch.setattr(unary, "_libm_float_ufunc", lambda name, arity: None)
    assert np.any(ours_output(model, [x]) != litert_out)


def test_gelu_float_lanes() -> None:
    """GELU's float erfc is Eigen's: packets of 4 take exp(−x²) from Eigen's pexp_float, the
    scalar lanes after the last full packet from expf.  Inputs on which the two differ, on both
    kinds of lane, in tensors of 1 to 11 elements: every lane bit for bit."""
    rng = np.random.default_rng(11)
    # |x/√2| > 1: the branch with exp(−x²), on both sides
    x = (rng.choice([-1.0, 1.0], 4000) * rng.uniform(1.5, 14.0, 4000)).astype(np.float32)
    half_x, arg = np.float32(0.5) * x, x * np.float32(-0.7071067811865476)
    packet = half_x * activations.eigen_erfc(arg)
    scalar = half_x * activations.eigen_erfc(arg, np.ones(x.shape, bool))
    telling = x[packet != scalar]  # where the lane kind decides the output
    assert telling.size >= 11
    for n in range(1, 12):
        model = build("GELU", (n,), F, options={"approximate": False})
        check(model, [telling[:n].copy()], tflm=False)


# ------------------------------------------------------------------------------------------------
# Hypothesis: quantization parameters and shapes
# ------------------------------------------------------------------------------------------------
def scale(lo: float = -10.0, hi: float = -1.0) -> st.SearchStrategy[float]:
    """Scales spread over decades, 2^lo .. 2^hi, rounded to float32."""
    return st.floats(lo, hi).map(lambda e: float(np.float32(2.0 ** e)))


def zero_point(dtype: str) -> st.SearchStrategy[int]:
    if dtype == "UINT8":
        return st.integers(0, 255)
    if dtype == "INT16":
        return st.just(0)
    return st.integers(-128, 127)


def shapes(max_rank: int = 4, max_side: int = 9) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(st.integers(1, max_side), min_size=1, max_size=max_rank).map(tuple)


@given(data=st.data())
@settings(max_examples=100, deadline=None)
def test_relu_family_quantized(data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(["RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"]))
    dtypes = ["INT8", "UINT8"] + (["INT16"] if op in ("RELU", "RELU6") else [])
    dtype = data.draw(st.sampled_from(dtypes))
    s_in, s_out = data.draw(scale(-12, 0)), data.draw(scale(-12, 0))
    qin, qout = (s_in, data.draw(zero_point(dtype))), (s_out, data.draw(zero_point(dtype)))
    shape = data.draw(shapes())
    model = build(op, shape, dtype, qin, qout)
    x = make_input(shape, dtype, np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))
    check(model, [x], tflm=op in ("RELU", "RELU6") and dtype != "UINT8")


@given(data=st.data())
@settings(max_examples=80, deadline=None)
def test_leaky_relu_quantized(data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(["INT8", "UINT8", "INT16"]))
    alpha = data.draw(st.floats(-2.0, 2.0, width=32))
    qin = (data.draw(scale()), data.draw(zero_point(dtype)))
    qout = (data.draw(scale()), data.draw(zero_point(dtype)))
    shape = data.draw(shapes())
    model = build("LEAKY_RELU", shape, dtype, qin, qout, {"alpha": alpha})
    x = make_input(shape, dtype, np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))
    check(model, [x], tflm=dtype != "UINT8")


@given(data=st.data())
@settings(max_examples=80, deadline=None)
def test_prelu_broadcast(data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from([F, "INT8", "UINT8", "INT16"]))
    shape = data.draw(shapes(4, 6))
    # alpha: any suffix of the input shape with some dimensions set to 1
    k = data.draw(st.integers(1, len(shape)))
    a_shape = tuple(d if data.draw(st.booleans()) else 1 for d in shape[-k:])
    a_dtype = "INT8" if dtype == "INT16" else dtype
    q = (lambda dt: None if dt == F else (data.draw(scale()), data.draw(zero_point(dt))))
    qin, qa, qout = q(dtype), q(a_dtype), q(dtype)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    alpha = make_input(a_shape, a_dtype, rng, -1.0, 1.0)
    const = data.draw(st.booleans())
    model = build("PRELU", shape, dtype, qin, qout, alpha={
        "shape": a_shape, "dtype": a_dtype, "q": qa, "data": alpha if const else None})
    x = make_input(shape, dtype, rng)
    check(model, [x] if const else [x, alpha], tflm=dtype != "UINT8")


@given(data=st.data())
@settings(max_examples=80, deadline=None)
def test_hard_swish_quantized(data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(["INT8", "UINT8"]))
    s_in = data.draw(scale(-9, -1))
    # HardSwishPrepare requires (s_in/128)/s_out < 1; real models have s_out ~ s_in
    s_out = float(np.float32(s_in * data.draw(st.floats(0.1, 4.0))))
    qin, qout = (s_in, data.draw(zero_point(dtype))), (s_out, data.draw(zero_point(dtype)))
    model = build("HARD_SWISH", (2, 128), dtype, qin, qout)
    x = make_input((2, 128), dtype, np.random.default_rng(0))
    check(model, [x], tflm=dtype == "INT8")


@given(data=st.data())
@settings(max_examples=100, deadline=None)
def test_logistic_tanh_8bit(data: st.DataObject) -> None:
    """TFLite tabulates a float LUT, TFLM computes in gemmlowp fixed point: both emulated."""
    op = data.draw(st.sampled_from(["LOGISTIC", "TANH"]))
    dtype = data.draw(st.sampled_from(["INT8", "UINT8"]))
    qin = (data.draw(scale(-9, 0)), data.draw(zero_point(dtype)))
    if op == "LOGISTIC":
        qout = SIGMOID8 if dtype == "INT8" else SIGMOIDU8
    else:
        qout = TANH8 if dtype == "INT8" else TANHU8
    model = build(op, (2, 128), dtype, qin, qout)
    x = make_input((2, 128), dtype, np.random.default_rng(0))
    check(model, [x], tflm=dtype == "INT8")


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_logistic_tanh_int16(data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(["LOGISTIC", "TANH"]))
    pot = data.draw(st.booleans())
    s_in = 2.0 ** data.draw(st.sampled_from([-12, -11] if op == "TANH" else [-12])) if pot else \
        data.draw(scale(-15, -6))
    model = build(op, (4, 97), "INT16", (s_in, 0), SIGMOID16)
    x = make_input((4, 97), "INT16", np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))
    check(model, [x], tflm=True)


@given(data=st.data())
@settings(max_examples=100, deadline=None)
def test_softmax_quantized(data: st.DataObject) -> None:
    combo = data.draw(st.sampled_from([("INT8", "INT8"), ("INT8", "INT16"), ("UINT8", "UINT8"),
                                       ("INT16", "INT16")]))
    dtype, out_dtype = combo
    beta = data.draw(st.sampled_from([1.0, 0.5, 2.0, 0.1]))
    depth = data.draw(st.integers(1, 300))
    outer = data.draw(st.integers(1, 4))
    if dtype == "INT16":
        qin, qout = (data.draw(scale(-14, -6)), 0), SIGMOID16
    else:
        qin = (data.draw(scale(-8, 0)), data.draw(zero_point(dtype)))
        qout = {"INT8": SIGMOID8, "UINT8": SIGMOIDU8, "INT16": (1 / 65536, -32768)}[out_dtype]
    model = build("SOFTMAX", (outer, depth), dtype, qin, qout, {"beta": beta},
                  out_dtype=out_dtype)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = make_input((outer, depth), dtype, rng)
    check(model, [x], tflm=dtype != "UINT8")


@given(data=st.data())
@settings(max_examples=80, deadline=None)
def test_log_softmax_quantized(data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(["INT8", "UINT8"]))
    qin = (data.draw(scale(-8, 0)), data.draw(zero_point(dtype)))
    qout = (16 / 256, 127 if dtype == "INT8" else 255)
    shape = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 300)))
    model = build("LOG_SOFTMAX", shape, dtype, qin, qout)
    x = make_input(shape, dtype, np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))
    check(model, [x], tflm=dtype == "INT8")


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_float_kernels(data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(["SOFTMAX", "LOG_SOFTMAX", "L2_NORMALIZATION", "LOGISTIC",
                                    "TANH", "HARD_SWISH", "LEAKY_RELU", "GELU"]))
    shape = data.draw(shapes(4, 12))
    options = {"SOFTMAX": {"beta": data.draw(st.floats(0.0625, 3.0, width=32))},
               "LEAKY_RELU": {"alpha": data.draw(st.floats(-1.0, 1.0, width=32))},
               "GELU": {"approximate": data.draw(st.booleans())}}.get(op)
    model = build(op, shape, F, options=options)
    x = make_input(shape, F, np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))
    check(model, [x], tflm=op != "GELU")


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_lut_kernels_quantized(data: st.DataObject) -> None:
    """GELU (int8/uint8/int16 tables, LiteRT only) and ELU (int8 table; TFLM and LiteRT builtin)."""
    op = data.draw(st.sampled_from(["GELU", "ELU"]))
    dtype = "INT8" if op == "ELU" else data.draw(st.sampled_from(["INT8", "UINT8", "INT16"]))
    qin = (data.draw(scale(-12, -1)), data.draw(zero_point(dtype)))
    qout = (data.draw(scale(-12, -1)), data.draw(zero_point(dtype)))
    options = {"approximate": data.draw(st.booleans())} if op == "GELU" else None
    shape = (2, 128)
    model = build(op, shape, dtype, qin, qout, options)
    x = make_input(shape, dtype, np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))
    if op == "GELU":
        check(model, [x], tflm=False)
    else:
        ref = run_litert_builtin(model, [x])[0]
        assert_tensor_matches(ours_output(model, [x]), ref, "ELU vs LiteRT builtin")
        assert_matches_tflm(model, [x])


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_l2_normalization_quantized(data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(["INT8", "UINT8"]))
    qin = (data.draw(scale()), data.draw(zero_point(dtype)))
    qout = (1 / 128, 0 if dtype == "INT8" else 128)
    shape = data.draw(shapes(4, 40))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = make_input(shape, dtype, rng)
    if data.draw(st.booleans()):  # rows close to the zero point: tiny sums of squares
        x = np.clip(qin[1] + rng.integers(-1, 2, size=shape), *_limits(dtype)).astype(x.dtype)
    check(build("L2_NORMALIZATION", shape, dtype, qin, qout), [x], tflm=dtype == "INT8")


def _limits(dtype: str) -> tuple[int, int]:
    info = np.iinfo(np.dtype(dtype.lower()))
    return int(info.min), int(info.max)


# ------------------------------------------------------------------------------------------------
# Emulation differences and Prepare checks
# ------------------------------------------------------------------------------------------------
def test_tflm_relu6_ignores_output_quantization() -> None:
    """TFLM's standalone int8 RELU6 clamps in the input quantization (doc §2.16)."""
    model = build("RELU6", (256,), "INT8", (0.051, -20), (0.0235, -128))
    x = np.arange(-128, 128, dtype=np.int8)
    tflite_out, tflm_out = ours_output(model, [x], "tflite"), ours_output(model, [x], "tflm")
    np.testing.assert_array_equal(tflm_out, np.clip(x, -20, int(np.round(6 / 0.051)) - 20))
    assert np.count_nonzero(tflite_out != tflm_out) > 200
    check(model, [x], tflm=True)


@pytest.mark.parametrize("op,qin,qout,options", [
    ("RELU", (0.07634323835372925, 0), (0.014777811244130135, 0), None),
    ("LEAKY_RELU", (0.01071111299097538, 0), (0.0013602306134998798, 0),
     {"alpha": 1.30665123462677}),
], ids=["relu-int16", "leaky_relu-int16"])
def test_tflm_divides_scales_in_double(op: str, qin: QParams, qout: QParams,
                                       options: dict[str, Any] | None) -> None:
    """LiteRT forms s_in/s_out (and s_in·alpha/s_out) in float32, the TFLM wheel in double: with
    these scales the multipliers differ and so do a few outputs; each emulation matches its
    runtime."""
    model = build(op, (65536,), "INT16", qin, qout, options)
    x = np.arange(-32768, 32768, dtype=np.int16)
    assert np.count_nonzero(ours_output(model, [x], "tflite") != ours_output(model, [x], "tflm"))
    check(model, [x], tflm=True)


def test_softmax_output_scale_checks_differ() -> None:
    """LiteRT accepts an int8 softmax output scale within 0.1 % of 1/256; TFLM wants it exact."""
    model = build("SOFTMAX", (2, 10), "INT8", (0.1, 0), (1 / 256 * 1.0005, -128), {"beta": 1.0})
    x = make_input((2, 10), "INT8", np.random.default_rng(3))
    check(model, [x], tflm=False)
    with pytest.raises(ModelValidationError, match="exactly 1/256"):
        prepared(model, "tflm")
    assert tflm_rejects(model, [x])


@pytest.mark.parametrize("op,dtype,qin,qout,options,message", [
    ("LOGISTIC", "INT8", Q8, (1 / 128, -128), None, "1/256"),
    ("SOFTMAX", "INT8", Q8, (1 / 256, 0), {"beta": 1.0}, "zero point -128"),
    ("SOFTMAX", "INT16", (0.001, 0), (1 / 16384, 0), {"beta": 1.0}, "1/32768"),
    ("LOG_SOFTMAX", "INT8", Q8, (1 / 16, 0), None, "zero point 127"),
    ("L2_NORMALIZATION", "INT8", Q8, (1 / 64, 0), None, "1/128"),
    ("RELU", "INT16", (0.001, 3), (0.001, 0), None, "zero point must be 0"),
    ("TANH", "INT16", (0.001, 0), (1 / 16384, 0), None, r"2\^-15"),
    ("HARD_SWISH", "INT8", (0.5, 0), (0.001, 0), None, "too small"),
], ids=["logistic-int8-out-scale", "softmax-int8-out-zp", "softmax-int16-out-scale",
        "log_softmax-int8-out-zp", "l2_normalization-int8-out-scale", "relu-int16-in-zp",
        "tanh-int16-out-scale", "hard_swish-int8-out-exponent"])
def test_prepare_rejects_what_litert_rejects(op: str, dtype: str, qin: QParams, qout: QParams,
                                            options: dict[str, Any] | None, message: str) -> None:
    model = build(op, (2, 8), dtype, qin, qout, options)
    x = make_input((2, 8), dtype, np.random.default_rng(0))
    assert litert_rejects(model, [x])
    with pytest.raises(ModelValidationError, match=message):
        prepared(model, "tflite")


@pytest.mark.parametrize("op,dtype,options", [
    ("RELU_N1_TO_1", F, None), ("RELU_0_TO_1", "INT8", None), ("GELU", F, None),
    ("SOFTMAX", "UINT8", {"beta": 1.0}), ("HARD_SWISH", "UINT8", None),
    ("LOG_SOFTMAX", "UINT8", None),
], ids=lambda v: str(v).lower() if isinstance(v, str) else None)
def test_tflm_lacks(op: str, dtype: str, options: dict[str, Any] | None) -> None:
    zp = 128 if dtype == "UINT8" else 0
    q = None if dtype == F else (0.05, zp)
    qout = None if dtype == F else (1 / 256 if op != "LOG_SOFTMAX" else 1 / 16, zp and 255)
    model = build(op, (2, 8), dtype, q, qout, options)
    assert tflm_rejects(model, [make_input((2, 8), dtype, np.random.default_rng(0))])
    with pytest.raises(UnsupportedOpError):
        prepared(model, "tflm")


def test_resize_input_replans_softmax() -> None:
    model = build("SOFTMAX", (1, 10), "INT8", Q8, SIGMOID8, {"beta": 1.0})
    it = tflite_ref.Interpreter(model_content=model)
    it.resize_tensor_input(0, [3, 17])
    it.allocate_tensors()
    x = make_input((3, 17), "INT8", np.random.default_rng(1))
    it.set_tensor(0, x)
    it.invoke()
    out = it.get_tensor(it.get_output_details()[0]["index"])
    assert out.shape == (3, 17)
    # each row sums to ~1 in the 1/256 output scale
    np.testing.assert_allclose((out.astype(np.int64) + 128).sum(axis=1) / 256, 1.0, atol=0.1)


def test_lut_entries_out_of_int32_range() -> None:
    """Table entries whose scaled value does not fit int32 (a tiny output scale) or is NaN
    (``0 · (1/s_out)`` with a denormal scale): LiteRT's int8 tables saturate (NaN -> 0), its uint8
    tables and TFLM's ELU table take x86's INT32_MIN (quant.lut_populate_int8)."""
    rng = np.random.default_rng(5)
    for dtype, z_in in (("INT8", 0), ("UINT8", 128)):
        x = make_input((1, 256), dtype, rng)
        for q_out in ((1e-10, 0), (1e-40, 3)):
            check(build("GELU", (1, 256), dtype, (0.05, z_in), q_out), [x], tflm=False)
    x = make_input((1, 256), "INT8", rng)
    for q_out in ((1e-8, 0), (1e-40, 3)):
        model = build("ELU", (1, 256), "INT8", (1.0, 0), q_out)
        assert_tensor_matches(ours_output(model, [x]), run_litert_builtin(model, [x])[0],
                              "ELU vs LiteRT builtin kernels")
        check(model, [x], tflm=True, litert=False)
        # The two runtimes disagree here: LiteRT saturates, TFLM gives INT32_MIN -> -128.
        assert np.any(ours_output(model, [x]) != ours_output(model, [x], "tflm"))


def _softmax_8bit_direct(x: np.ndarray, s_in: float, beta: float, out_dtype: str
                         ) -> np.ndarray:
    """softmax.h Softmax<InputT, OutputT> element by element from tflite_ref.quant primitives,
    without the kernel's tables: every exponential computed from its own difference."""
    from tflite_ref import quant as qu

    m, ls = qu.preprocess_softmax_scaling(beta, s_in, 5)
    diff_min = -qu.calculate_input_radius(5, ls)
    v = x.astype(np.int64).reshape(-1, x.shape[-1])
    diff = v - v.max(axis=1, keepdims=True)
    valid = diff >= diff_min
    scaled = qu.multiply_by_quantized_multiplier_greater_than_one(np.where(valid, diff, 0), m, ls)
    e = np.where(valid, qu.exp_on_negative_values(scaled, 5), 0)
    terms = np.where(valid, qu.rounding_divide_by_pot(e, 12), 0)
    total = qu.wrap_int32(terms.sum(axis=1, keepdims=True))
    recip, bits_over_unit = qu.get_reciprocal(total, 12)
    lo, hi = (int(b) for b in (np.iinfo(out_dtype.lower()).min, np.iinfo(out_dtype.lower()).max))
    exponent = bits_over_unit + 31 - 8 * np.dtype(out_dtype.lower()).itemsize
    out = qu.rounding_divide_by_pot(qu.saturating_rounding_doubling_high_mul(recip, e), exponent)
    return np.where(valid, np.clip(out + lo, lo, hi), lo).reshape(x.shape)


SOFTMAX_OUT = {("INT8", "INT8"): (1 / 256, -128), ("INT8", "INT16"): (1 / 32768, -32768),
               ("UINT8", "UINT8"): (1 / 256, 0), ("UINT8", "INT16"): (1 / 32768, -32768)}


@settings(max_examples=60, deadline=None)
@given(io=st.sampled_from(sorted(SOFTMAX_OUT)), rows=st.integers(0, 12),
       depth=st.integers(1, 40), log_s_in=st.floats(-8.0, 1.0), beta=st.floats(0.05, 4.0),
       seed=st.integers(0, 2**32 - 1))
def test_softmax_8bit_tables_are_the_gemmlowp_result(io: tuple[str, str], rows: int, depth: int,
                                                     log_s_in: float, beta: float,
                                                     seed: int) -> None:
    """The int8/uint8 SOFTMAX eval looks its exponentials up by ``max − q`` in tables built in
    prepare, and takes a row's reciprocal on the scalar path for up to 8 rows: the outputs are
    those of the element-by-element computation, for 0 to 12 rows (both paths), any scales and
    betas (many differences fall below diff_min when beta·scale is large)."""
    in_dtype, out_dtype = io
    s_in, beta = float(np.float32(2.0**log_s_in)), float(np.float32(beta))
    if not beta * s_in * 2.0**26 > 1.0:
        return  # refused by prepare (QuantizeMultiplierGreaterThanOne)
    shape = (rows, depth)
    model = build("SOFTMAX", shape, in_dtype, (s_in, 0 if in_dtype == "INT8" else 128),
                  SOFTMAX_OUT[io], {"beta": beta}, out_dtype=out_dtype)
    x = random_array(shape, np.dtype(in_dtype.lower()), np.random.default_rng(seed))
    got = ours_output(model, [x])
    np.testing.assert_array_equal(got, _softmax_8bit_direct(x, s_in, beta, out_dtype))
    assert got.dtype == np.dtype(out_dtype.lower())


@pytest.mark.parametrize("rows", [1, 3, 9])
def test_softmax_row_sum_overflow_is_refused(rows: int) -> None:
    """5000 equal values sum to 5000 in Q12.19, which does not fit: softmax.h's TFLITE_CHECK on
    the output exponent aborts; tflite_ref raises (scalar and vectorised reciprocal paths)."""
    from tflite_ref.errors import KernelRuntimeError

    model = build("SOFTMAX", (rows, 5000), "INT8", (0.1, 0), (1 / 256, -128), {"beta": 1.0})
    with pytest.raises(KernelRuntimeError, match="overflows the fixed-point sum"):
        ours_output(model, [np.zeros((rows, 5000), np.int8)])
