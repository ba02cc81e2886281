"""Binary arithmetic kernels (tflite_ref/kernels/elementwise.py) against LiteRT and TFLite Micro.

Every case builds a one-operator model with :mod:`tflite_ref.model.writer`, runs it in
tflite_ref, in LiteRT's reference kernels (``BUILTIN_REF``; every tensor compared, bit for bit,
floats included) and, where TFLite Micro has the operator and dtype, in TFLM
(``emulate="tflm"``).  The float POW is the C library's ``powf``
(:func:`test_pow_float_is_the_c_library`).

How to add a case: append a :class:`Case` to ``CASES`` (its ``id`` names op, dtype and shapes);
set ``tflm=False`` when TFLM lacks the op or dtype (say which in a comment).  Parameters that vary
continuously (scales, zero points, broadcast shapes) belong in the hypothesis tests below.
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
    random_array,
    run_litert,
    run_litert_outputs,
    run_ours,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from opmodels import S, check_model, op_model, ours_output

import tflite_ref
from tflite_ref.errors import (
    KernelRuntimeError,
    ModelValidationError,
    UnsupportedOpError,
)
from tflite_ref.kernels import unary

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


# ------------------------------------------------------------------------------------------------
# Model building and checking
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """One tensor: shape, dtype name, optional per-tensor quantization."""

    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int = 0

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype.lower())

    def tensor(self) -> S:
        return S(self.shape, self.dtype, scale=self.scale,
                 zero_point=None if self.scale is None else self.zero_point)


def build(op: str, inputs: Sequence[Spec], output: Spec,
          options: dict[str, Any] | None = None) -> bytes:
    return op_model(op, [s.tensor() for s in inputs], [output.tensor()], options)


def check(model: bytes, inputs: list[np.ndarray], *, tflm: bool = True) -> None:
    """opmodels.check_model with floats compared bit for bit, as integers are."""
    check_model(model, inputs, tflm=tflm)


def bshape(*shapes: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(d) for d in np.broadcast_shapes(*(tuple(s) for s in shapes)))


def nonzero(a: np.ndarray) -> np.ndarray:
    """Replace zeros by one (divisors)."""
    return np.where(a == 0, np.ones_like(a), a)


# ------------------------------------------------------------------------------------------------
# Parametrised cases
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    op: str
    dtype: str
    shape1: tuple[int, ...]
    shape2: tuple[int, ...]
    q: tuple[tuple[float, int], tuple[float, int], tuple[float, int]] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    tflm: bool = True
    divisor: bool = False  # input 1 must not hold a zero (or its zero point)
    low: float = -4.0
    high: float = 4.0
    int_range: tuple[int, int] | None = None
    extra: str = ""

    @property
    def id(self) -> str:
        shapes = "x".join(map(str, self.shape1)) + "-" + "x".join(map(str, self.shape2))
        act = self.options.get("fused_activation_function", "NONE")
        tail = "" if act == "NONE" else "-" + act.lower()
        return f"{self.op.lower()}-{self.dtype.lower()}-{shapes}{tail}{self.extra}"

    def specs(self) -> tuple[list[Spec], Spec]:
        out_shape = bshape(self.shape1, self.shape2)
        if self.q is None:
            return [Spec(self.shape1, self.dtype), Spec(self.shape2, self.dtype)], Spec(
                out_shape, self.dtype)
        (s1, z1), (s2, z2), (so, zo) = self.q
        return ([Spec(self.shape1, self.dtype, s1, z1), Spec(self.shape2, self.dtype, s2, z2)],
                Spec(out_shape, self.dtype, so, zo))

    def inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        ins, _ = self.specs()
        arrays = []
        for k, s in enumerate(ins):
            if self.int_range is not None:
                a = rng.integers(*self.int_range, size=s.shape, endpoint=True).astype(s.np_dtype)
            else:
                a = random_array(s.shape, s.np_dtype, rng, self.low, self.high)
            if k == 1 and self.divisor:
                if s.scale is not None:
                    a = np.where(a == s.zero_point, np.asarray(s.zero_point + 1, a.dtype), a)
                elif a.dtype.kind == "f":
                    a = np.where(np.abs(a) < 0.25, np.float32(0.5), a).astype(a.dtype)
                else:
                    a = nonzero(a)
            arrays.append(a)
        return arrays


Q8 = ((0.05, 3), (0.07, -5), (0.1, -2))
QU8 = ((0.05, 130), (0.07, 120), (0.1, 127))
Q16 = ((0.001, 0), (0.0015, 0), (0.002, 0))
Q16_POT = ((2.0**-10, 0), (2.0**-12, 0), (2.0**-10, 0))
S4 = (1, 4, 4, 3)
RELU = {"fused_activation_function": "RELU"}
RELU6 = {"fused_activation_function": "RELU6"}
N1 = {"fused_activation_function": "RELU_N1_TO_1"}
I16 = (-300, 300)

CASES = [
    # ADD: TFLM has float32, int32, int8, int16 (no uint8, no int64).
    Case("ADD", "FLOAT32", S4, S4, options=RELU6),
    Case("ADD", "FLOAT32", (2, 1, 3, 1, 2, 1), (1, 4, 1, 5, 1, 3)),
    Case("ADD", "INT32", S4, (3,), options=RELU),
    Case("ADD", "INT32", S4, S4, int_range=(-(2**31), 2**31 - 1), extra="-wraps"),
    Case("ADD", "INT64", (2, 3), (3,), tflm=False),
    Case("ADD", "INT8", S4, S4, Q8, RELU),
    Case("ADD", "INT8", S4, (1, 1, 1, 3), Q8, RELU6),
    Case("ADD", "INT8", (2, 1, 3, 1, 2, 1), (1, 4, 1, 5, 1, 3), Q8),
    Case("ADD", "UINT8", S4, (3,), QU8, N1, tflm=False),
    Case("ADD", "INT16", S4, S4, Q16, {"pot_scale_int16": False}),
    Case("ADD", "INT16", S4, (1, 4, 1, 3), Q16, {"pot_scale_int16": False, **RELU}),
    # power-of-two int16 path: TFLite only (TFLM always takes the general path, tested below)
    Case("ADD", "INT16", S4, S4, Q16_POT, tflm=False, extra="-pot"),
    # unquantized int16 (plain wrapping arithmetic): LiteRT only
    Case("ADD", "INT16", S4, (3,), options=RELU, tflm=False, extra="-unquantized"),
    # SUB: TFLM has float32, int32, int8, int16.
    Case("SUB", "FLOAT32", S4, (1, 4, 1, 1), options=RELU),
    Case("SUB", "INT32", S4, S4, options=RELU6, int_range=(-20, 20)),
    Case("SUB", "INT64", (5,), (2, 5), tflm=False),
    Case("SUB", "INT8", S4, S4, Q8, RELU6),
    Case("SUB", "INT8", (3, 1), (1, 5), Q8),
    Case("SUB", "UINT8", S4, S4, QU8, tflm=False),
    Case("SUB", "INT16", S4, (3,), Q16, {"pot_scale_int16": False}),
    Case("SUB", "INT16", S4, S4, Q16_POT, tflm=False, extra="-pot"),
    Case("SUB", "INT16", (2, 3), (1, 3), Q16_POT, tflm=False, extra="-pot"),
    # MUL: TFLM has float32, int32, int8, int16 (no uint8, no int64).
    Case("MUL", "FLOAT32", S4, (3,), options=N1),
    Case("MUL", "INT32", S4, S4, int_range=(-(2**31), 2**31 - 1), extra="-wraps"),
    Case("MUL", "INT32", (2, 3), (3,), options=RELU6, int_range=(-5, 5)),
    Case("MUL", "INT64", (2, 3), (2, 3), tflm=False),
    Case("MUL", "INT8", S4, S4, Q8, RELU),
    Case("MUL", "INT8", S4, (1, 4, 1, 3), ((0.02, -7), (0.5, 11), (0.03, 4))),
    Case("MUL", "UINT8", S4, S4, QU8, tflm=False),
    Case("MUL", "INT16", S4, (4, 1, 3), Q16),
    Case("MUL", "INT16", S4, S4, tflm=False, int_range=I16, extra="-unquantized"),
    # DIV: TFLM has float32, int32 and int8; LiteRT float32, int32, uint8, int8, int16.
    Case("DIV", "FLOAT32", S4, S4, options=RELU6, divisor=True),
    Case("DIV", "FLOAT32", (2, 3), (3,), divisor=True),
    Case("DIV", "INT32", S4, (3,), options=RELU, int_range=(-1000, 1000), divisor=True),
    Case("DIV", "UINT8", S4, S4, ((0.1, 128), (0.1, 100), (1.0, 128)), tflm=False,
         divisor=True),
    Case("DIV", "INT8", S4, S4, ((0.1, 0), (0.1, -20), (0.5, 0)), divisor=True),
    # FLOOR_DIV / FLOOR_MOD: TFLM float32 only.
    Case("FLOOR_DIV", "FLOAT32", S4, S4, divisor=True),
    Case("FLOOR_DIV", "INT32", S4, (3,), tflm=False, int_range=(-1000, 1000), divisor=True),
    Case("FLOOR_DIV", "INT16", (7,), (7,), tflm=False, divisor=True),
    Case("FLOOR_DIV", "INT8", (2, 7), (7,), tflm=False, divisor=True),
    Case("FLOOR_MOD", "FLOAT32", S4, (1, 1, 4, 3), divisor=True),
    Case("FLOOR_MOD", "INT32", S4, S4, tflm=False, int_range=(-1000, 1000), divisor=True),
    Case("FLOOR_MOD", "INT64", (3, 4), (4,), tflm=False, int_range=(-99, 99), divisor=True),
    Case("FLOOR_MOD", "INT16", (9,), (9,), tflm=False, divisor=True),
    Case("FLOOR_MOD", "INT8", (9,), (1,), tflm=False, divisor=True),
    # SQUARED_DIFFERENCE: LiteRT float32, int32, int8; TFLM also int16 (tested below).
    Case("SQUARED_DIFFERENCE", "FLOAT32", S4, (3,)),
    Case("SQUARED_DIFFERENCE", "INT32", S4, S4, int_range=(-1000, 1000)),
    Case("SQUARED_DIFFERENCE", "INT8", S4, S4, ((0.05, 3), (0.07, -5), (0.2, -128))),
    Case("SQUARED_DIFFERENCE", "INT8", S4, (1, 4, 1, 1), ((0.05, 3), (0.05, -5), (0.1, -100))),
    # MAXIMUM / MINIMUM: TFLM float32, int8, int16, int32, int64 (no uint8).
    *[Case(op, dt, S4, sh2, tflm=dt != "UINT8")
      for op in ("MAXIMUM", "MINIMUM")
      for dt, sh2 in (("FLOAT32", S4), ("INT8", (3,)), ("UINT8", (1, 4, 1, 3)),
                      ("INT16", S4), ("INT32", (1, 1, 4, 1)), ("INT64", (3,)))],
    # POW: not in TFLM.
    Case("POW", "FLOAT32", S4, S4, tflm=False, low=0.1, high=3.0),
    Case("POW", "FLOAT32", S4, (1,), tflm=False, low=-3.0, high=3.0, extra="-scalar-exp"),
    Case("POW", "INT32", S4, S4, tflm=False, int_range=(0, 7)),
    Case("POW", "INT32", (2, 3), (1,), tflm=False, int_range=(0, 9), extra="-scalar-exp"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case) -> None:
    ins, out = case.specs()
    model = build(case.op, ins, out, case.options)
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    check(model, case.inputs(rng), tflm=case.tflm)


def test_pow_integer_exponent_path() -> None:
    """A one-element integral exponent >= 1 takes IntegerExponentPow (repeated multiplication)."""
    model = build("POW", [Spec((2, 5), "FLOAT32"), Spec((1,), "FLOAT32")], Spec((2, 5), "FLOAT32"))
    x = np.linspace(-3, 3, 10, dtype=np.float32).reshape(2, 5)
    check(model, [x, np.array([3.0], np.float32)], tflm=False)
    model = build("POW", [Spec((2, 5), "INT32"), Spec((1,), "INT32")], Spec((2, 5), "INT32"))
    check(model, [np.arange(-5, 5, dtype=np.int32).reshape(2, 5), np.array([5], np.int32)],
          tflm=False)


def test_pow_float_is_the_c_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """20000 (base, exponent) pairs, a quarter of them negative bases with integral exponents:
    ours equal LiteRT's ``std::pow(float, float)`` bit for bit -- and the correctly rounded power
    (the NumPy fallback of unary.libm_float) does not, so computing that would fail here."""
    rng = np.random.default_rng(17)
    base = rng.uniform(0.0, 20.0, 20000).astype(np.float32)
    exponent = rng.uniform(-8.0, 8.0, 20000).astype(np.float32)
    base[::4], exponent[::4] = -base[::4], np.round(exponent[::4])
    model = build("POW", [Spec((20000,), "FLOAT32")] * 2, Spec((20000,), "FLOAT32"))
    check(model, [base, exponent], tflm=False)
    monkeypatch.setattr(unary, "_libm_float_ufunc", lambda name, arity: None)
    litert = run_litert_outputs(model, [base, exponent])[0]
    assert np.any(ours_output(model, [base, exponent]) != litert)


def test_add_n() -> None:
    rng = np.random.default_rng(1)
    for dtype, n, tflm in (("FLOAT32", 2, True), ("FLOAT32", 5, True), ("INT32", 3, False)):
        # TFLM's ADD_N takes float32 and int8 (quantized, which LiteRT lacks): int32 vs LiteRT only
        specs = [Spec((2, 3, 4), dtype) for _ in range(n)]
        model = build("ADD_N", specs, Spec((2, 3, 4), dtype))
        check(model, [random_array(s.shape, s.np_dtype, rng) for s in specs], tflm=tflm)


def test_add_n_int8_tflm_only() -> None:
    """TFLM's quantized ADD_N (LiteRT has none), including its extra rescaled-offset term."""
    rng = np.random.default_rng(4)
    for n, (s, z), (so, zo) in ((2, (0.05, 3), (0.1, -2)), (4, (0.02, -20), (0.07, 5))):
        specs = [Spec((3, 5), "INT8", s, z) for _ in range(n)]
        model = build("ADD_N", specs, Spec((3, 5), "INT8", so, zo))
        assert_matches_tflm(model, [random_array(sp.shape, np.int8, rng) for sp in specs])
        with pytest.raises(UnsupportedOpError):
            tflite_ref.Interpreter(model_content=model).allocate_tensors()


def test_mul_int16_inputs_int8_output() -> None:
    """LiteRT's int16 x int16 -> int8 MUL: a Q0.15 fixed-point product, rounded to Q0.7 (the
    scales are not used); not in TFLM."""
    rng = np.random.default_rng(6)
    ins = [Spec((4, 8), "INT16", 2.0**-15, 0), Spec((4, 8), "INT16", 2.0**-15, 0)]
    for zo, act in ((0, "NONE"), (5, "RELU")):
        model = build("MUL", ins, Spec((4, 8), "INT8", 2.0**-7, zo),
                      {"fused_activation_function": act})
        check(model, [random_array(s.shape, s.np_dtype, rng) for s in ins], tflm=False)


# ------------------------------------------------------------------------------------------------
# Emulation differences: the same model, a different answer per runtime
# ------------------------------------------------------------------------------------------------
def test_int32_add_activation_is_ignored_by_tflm() -> None:
    """TFLM's int32 ADD clamps to the full int32 range whatever the fused activation says."""
    model = build("ADD", [Spec((8,), "INT32")] * 2, Spec((8,), "INT32"), RELU6)
    x = [np.arange(-8, 8, 2, dtype=np.int32), np.arange(8, dtype=np.int32)]
    check(model, x, tflm=True)
    ours = tflite_ref.Interpreter(model_content=model, emulate="tflm")
    ours.allocate_tensors()
    ours.set_tensor(0, x[0])
    ours.set_tensor(1, x[1])
    ours.invoke()
    assert ours.get_tensor(2).max() > 6


def test_int16_add_pot_path_differs_from_tflm_general_path() -> None:
    """Power-of-two int16 scales: TFLite shifts, TFLM rescales; both are reproduced."""
    ins = [Spec((64,), "INT16", 2.0**-12, 0), Spec((64,), "INT16", 2.0**-14, 0)]
    model = build("ADD", ins, Spec((64,), "INT16", 2.0**-12, 0))
    x = [np.arange(-32768, 32768, 1024, dtype=np.int16),
         np.arange(-32768, 32768, 1024, dtype=np.int16)[::-1].copy() + 3]
    check(model, x, tflm=True)


def test_sub_multipliers_are_double_in_tflm() -> None:
    """TFLM's sub_common.cc writes the SUB multipliers in float32, yet the TFLM wheel matches the
    double formulas (as ADD's): with these scales the two differ in m and in 6 of 48 outputs."""
    from tflite_ref.quant.multipliers import add_effective_scales, sub_effective_scales

    f32 = sub_effective_scales(0.001, 0.0015, 0.002, 15, emulate="tflm")
    assert f32 != add_effective_scales(0.001, 0.0015, 0.002, 15)
    ins = [Spec((1, 4, 4, 3), "INT16", 0.001, 0), Spec((3,), "INT16", 0.0015, 0)]
    model = build("SUB", ins, Spec((1, 4, 4, 3), "INT16", 0.002, 0), {"pot_scale_int16": False})
    rng = np.random.default_rng(7)
    check(model, [random_array(s.shape, s.np_dtype, rng) for s in ins], tflm=True)


def test_div_multiplier_per_runtime() -> None:
    """LiteRT builds DIV's multiplier s1/(s2·s_out) in float32 (exactly 2.0 here), the TFLM
    wheel in double (just below 2.0): every (q1, q2) pair shows which one each runtime uses."""
    n = 256 * 255
    a = np.repeat(np.arange(-128, 128), 255).astype(np.int8)
    b = np.tile(np.array([v for v in range(-128, 128) if v != 20]), 256).astype(np.int8)
    so = float(np.float32(0.5 / 0.375 * 0.5))
    ins = [Spec((n,), "INT8", 0.5, 0), Spec((n,), "INT8", 0.375, 20)]
    model = build("DIV", ins, Spec((n,), "INT8", so, 0))
    check(model, [a, b], tflm=True)
    tfl = run_ours(model, [a, b], "tflite").get_tensor(2)
    tflm = run_ours(model, [a, b], "tflm").get_tensor(2)
    assert np.count_nonzero(tfl != tflm) > 1000


def test_mul_multiplier_per_runtime() -> None:
    """MUL's s1·s2/s_out: float32 in LiteRT, double in TFLM (doc §1.8); 8 of the 65536
    (q1, q2) pairs differ for these scales, and each runtime is matched."""
    a = np.repeat(np.arange(-128, 128), 256).astype(np.int8)
    b = np.tile(np.arange(-128, 128), 256).astype(np.int8)
    ins = [Spec((65536,), "INT8", 0.00498881284147501, -122),
           Spec((65536,), "INT8", 0.010105377994477749, -120)]
    model = build("MUL", ins, Spec((65536,), "INT8", 0.004929648246616125, -64))
    check(model, [a, b], tflm=True)
    tfl = run_ours(model, [a, b], "tflite").get_tensor(2)
    assert np.count_nonzero(tfl != run_ours(model, [a, b], "tflm").get_tensor(2)) == 8


def test_div_dividend_minus_one_quirk() -> None:
    """A dividend of -1 (q1 = z1 - 1) has 31 bits of headroom, so DivElementwise shifts right
    by more than 31; both runtimes then saturate instead of rounding to 0, and so do we."""
    ins = [Spec((255,), "INT8", 0.1, 0), Spec((255,), "INT8", 0.1, 0)]
    model = build("DIV", ins, Spec((255,), "INT8", 1.0, 0))
    y = np.array([v for v in range(-128, 128) if v != 0], np.int8)
    x = np.full(255, -1, np.int8)
    check(model, [x, y], tflm=True)
    out = run_litert(model, [x, y])[2]
    assert out[0] == 127 and out[-1] == -128  # -1/-128 and -1/127 would round to 0


# ------------------------------------------------------------------------------------------------
# Hypothesis: scales, zero points, broadcasting, activations
# ------------------------------------------------------------------------------------------------
@st.composite
def broadcast_pair(draw: st.DrawFn, max_rank: int = 6) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rank = draw(st.integers(0, max_rank))
    full = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    a = [d if draw(st.booleans()) else 1 for d in full]
    b = [d if draw(st.booleans()) else 1 for d in full]
    cut_a = draw(st.integers(0, rank))
    cut_b = draw(st.integers(0, rank)) if cut_a == 0 else 0
    return tuple(a[cut_a:]), tuple(b[cut_b:])


scales = st.floats(0.002, 0.5).map(lambda s: float(np.float32(s)))
zp8 = st.integers(-128, 127)
zpu8 = st.integers(0, 255)


def quant_strategy(dtype: str) -> st.SearchStrategy[tuple[float, int]]:
    zps = {"INT8": zp8, "UINT8": zpu8, "INT16": st.just(0)}[dtype]
    sc = scales if dtype != "INT16" else st.floats(1e-4, 1e-2).map(lambda s: float(np.float32(s)))
    return st.tuples(sc, zps)


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(["ADD", "SUB", "MUL"]), dtype=st.sampled_from(["INT8", "UINT8", "INT16"]),
       shapes=broadcast_pair(), act=st.sampled_from(ACTIVATIONS), data=st.data())
def test_quantized_add_sub_mul(op: str, dtype: str, shapes: tuple, act: str,
                               data: st.DataObject) -> None:
    q1, q2, qo = (data.draw(quant_strategy(dtype)) for _ in range(3))
    if op == "MUL" and dtype == "INT16":
        qo = (data.draw(st.floats(1e-6, 1e-4)), 0)
    out = bshape(*shapes)
    ins = [Spec(shapes[0], dtype, *q1), Spec(shapes[1], dtype, *q2)]
    # Random int16 scales are almost never powers of two; the POT path has its own cases.
    options: dict[str, Any] = {"fused_activation_function": act}
    if op in ("ADD", "SUB") and dtype == "INT16":
        options["pot_scale_int16"] = False
    model = build(op, ins, Spec(out, dtype, *qo), options)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    xs = [random_array(s.shape, s.np_dtype, rng) for s in ins]
    check(model, xs, tflm=dtype != "UINT8")


@settings(max_examples=100, deadline=None)
@given(op=st.sampled_from(["ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE"]),
       dtype=st.sampled_from(["FLOAT32", "INT32"]), shapes=broadcast_pair(),
       act=st.sampled_from(ACTIVATIONS), seed=st.integers(0, 2**32 - 1))
def test_float_and_int32_binary(op: str, dtype: str, shapes: tuple, act: str, seed: int) -> None:
    options = {"fused_activation_function": act} if op in ("ADD", "SUB", "MUL") else None
    model = build(op, [Spec(shapes[0], dtype), Spec(shapes[1], dtype)],
                  Spec(bshape(*shapes), dtype), options)
    rng = np.random.default_rng(seed)
    xs = [random_array(s, np.dtype(dtype.lower()), rng) if dtype == "FLOAT32"
          else rng.integers(-50, 50, size=s).astype(np.int32) for s in shapes]
    # TFLM's int32 ADD ignores the activation, which our emulation reproduces; compare it too.
    check(model, xs, tflm=True)


@settings(max_examples=200, deadline=None)
@given(dtype=st.sampled_from(["INT8", "UINT8", "INT16"]), shapes=broadcast_pair(max_rank=4),
       act=st.sampled_from(ACTIVATIONS), data=st.data())
def test_quantized_div(dtype: str, shapes: tuple, act: str, data: st.DataObject) -> None:
    q1, q2 = data.draw(quant_strategy(dtype)), data.draw(quant_strategy(dtype))
    # An output scale that covers the quotients' range keeps the multiplier in [2^-8, 2^8].
    ratio = data.draw(st.floats(0.3, 3.0))
    so = float(np.float32(q1[0] / q2[0] * ratio * (0.5 if dtype != "INT16" else 0.002)))
    qo = (so, data.draw({"INT8": zp8, "UINT8": zpu8, "INT16": st.just(0)}[dtype]))
    ins = [Spec(shapes[0], dtype, *q1), Spec(shapes[1], dtype, *q2)]
    model = build("DIV", ins, Spec(bshape(*shapes), dtype, *qo),
                  {"fused_activation_function": act})
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    xs = [random_array(s.shape, s.np_dtype, rng) for s in ins]
    z2 = np.asarray(q2[1], dtype=xs[1].dtype)
    xs[1] = np.where(xs[1] == z2, z2 + np.asarray(1, xs[1].dtype), xs[1]).astype(xs[1].dtype)
    check(model, xs, tflm=dtype == "INT8")


@settings(max_examples=100, deadline=None)
@given(dtype=st.sampled_from(["INT8", "INT16"]), shapes=broadcast_pair(max_rank=4),
       data=st.data())
def test_quantized_squared_difference(dtype: str, shapes: tuple, data: st.DataObject) -> None:
    q1, q2 = data.draw(quant_strategy(dtype)), data.draw(quant_strategy(dtype))
    m = max(q1[0], q2[0])
    so = float(np.float32(m * m * data.draw(st.floats(4.0, 400.0))))
    qo = (so, data.draw(zp8) if dtype == "INT8" else 0)
    ins = [Spec(shapes[0], dtype, *q1), Spec(shapes[1], dtype, *q2)]
    model = build("SQUARED_DIFFERENCE", ins, Spec(bshape(*shapes), dtype, *qo))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    xs = [random_array(s.shape, s.np_dtype, rng) for s in ins]
    if dtype == "INT8":
        check(model, xs, tflm=True)
    else:  # LiteRT has no int16 SQUARED_DIFFERENCE: TFLM only
        assert_matches_tflm(model, xs)


@settings(max_examples=100, deadline=None)
@given(op=st.sampled_from(["FLOOR_DIV", "FLOOR_MOD", "DIV"]),
       dtype=st.sampled_from(["FLOAT32", "INT32", "INT16", "INT8"]),
       shapes=broadcast_pair(max_rank=4), seed=st.integers(0, 2**32 - 1))
def test_division_family(op: str, dtype: str, shapes: tuple, seed: int) -> None:
    if op == "DIV" and dtype in ("INT16", "INT8"):
        dtype = "INT32"  # unquantized DIV exists for int32 only
    rng = np.random.default_rng(seed)
    np_dtype = np.dtype(dtype.lower())
    if dtype == "FLOAT32":
        xs = [random_array(s, np_dtype, rng, -20, 20) for s in shapes]
        xs[1] = np.where(np.abs(xs[1]) < 0.5, np.float32(1.5), xs[1]).astype(np.float32)
    else:
        xs = [rng.integers(-100, 100, size=s, endpoint=True).astype(np_dtype) for s in shapes]
        xs[1] = nonzero(xs[1])
    model = build(op, [Spec(shapes[0], dtype), Spec(shapes[1], dtype)],
                  Spec(bshape(*shapes), dtype))
    # TFLM: FLOOR_DIV/FLOOR_MOD float32 only; DIV float32 and int32.
    check(model, xs, tflm=dtype == "FLOAT32" or op == "DIV")


# ------------------------------------------------------------------------------------------------
# Faults and preconditions
# ------------------------------------------------------------------------------------------------
DIVISION_BY_ZERO = [
    ("DIV", "INT32", None),
    ("DIV", "INT8", (0.1, 5)),
    ("DIV", "UINT8", (0.1, 128)),
    ("FLOOR_DIV", "INT32", None),
    ("FLOOR_DIV", "FLOAT32", None),  # TFLite checks 0.0 for FLOOR_DIV too
    ("FLOOR_MOD", "INT32", None),
    ("FLOOR_MOD", "INT8", None),
]


@pytest.mark.parametrize("op,dtype,q", DIVISION_BY_ZERO,
                         ids=[f"{o.lower()}-{d.lower()}" for o, d, _ in DIVISION_BY_ZERO])
def test_division_by_zero_raises(op: str, dtype: str, q: tuple[float, int] | None) -> None:
    spec = Spec((4,), dtype) if q is None else Spec((4,), dtype, *q)
    model = build(op, [spec, spec], spec)
    zero = 0 if q is None else q[1]
    np_dtype = spec.np_dtype
    xs = [np.array([1, 2, 3, 4], np_dtype), np.array([1, zero, 2, 3], np_dtype)]
    with pytest.raises(KernelRuntimeError, match="operator 0"):
        ours_output(model, xs)
    with pytest.raises(RuntimeError):  # LiteRT fails the invoke as well
        run_litert(model, xs)


def test_int32_div_overflow_raises() -> None:
    model = build("DIV", [Spec((1,), "INT32")] * 2, Spec((1,), "INT32"))
    with pytest.raises(KernelRuntimeError, match="overflow"):
        ours_output(model, [np.array([-(2**31)], np.int32), np.array([-1], np.int32)])


def test_pow_negative_int_exponent_raises() -> None:
    model = build("POW", [Spec((2,), "INT32")] * 2, Spec((2,), "INT32"))
    with pytest.raises(KernelRuntimeError, match="negative"):
        ours_output(model, [np.array([2, 3], np.int32), np.array([1, -1], np.int32)])


def test_mismatched_input_types_fail_at_allocate() -> None:
    model = build("ADD", [Spec((3,), "FLOAT32"), Spec((3,), "INT32")], Spec((3,), "FLOAT32"))
    it = tflite_ref.Interpreter(model_content=model)
    with pytest.raises(ModelValidationError, match="operator 0"):
        it.allocate_tensors()


def test_incompatible_broadcast_fails_at_allocate() -> None:
    model = build("MUL", [Spec((2, 3), "FLOAT32"), Spec((4,), "FLOAT32")], Spec((2, 3), "FLOAT32"))
    with pytest.raises(ModelValidationError, match="broadcast"):
        tflite_ref.Interpreter(model_content=model).allocate_tensors()


def test_tflm_only_and_tflite_only_dtypes() -> None:
    """int16 SQUARED_DIFFERENCE exists only in TFLM; POW only in TFLite."""
    sq = build("SQUARED_DIFFERENCE", [Spec((3,), "INT16", 0.01, 0)] * 2, Spec((3,), "INT16", 0.01))
    with pytest.raises(UnsupportedOpError):
        tflite_ref.Interpreter(model_content=sq).allocate_tensors()
    tflite_ref.Interpreter(model_content=sq, emulate="tflm").allocate_tensors()
    pw = build("POW", [Spec((3,), "FLOAT32")] * 2, Spec((3,), "FLOAT32"))
    with pytest.raises(UnsupportedOpError):
        tflite_ref.Interpreter(model_content=pw, emulate="tflm").allocate_tensors()


def test_resize_input_replans_broadcast() -> None:
    model = build("ADD", [Spec((1, 3), "FLOAT32"), Spec((3,), "FLOAT32")], Spec((1, 3), "FLOAT32"))
    it = tflite_ref.Interpreter(model_content=model)
    it.resize_tensor_input(0, [4, 3])
    it.allocate_tensors()
    it.set_tensor(0, np.ones((4, 3), np.float32))
    it.set_tensor(1, np.arange(3, dtype=np.float32))
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(2), np.ones((4, 3)) + np.arange(3))



@pytest.mark.parametrize("op", ["ADD", "MUL", "SUB"])
def test_quant_errors_name_the_operator(op: str) -> None:
    """A RELU6 bound 6 / 1e-12 does not fit int32: quant.calculate_activation_range_quantized
    refuses it without knowing the operator; the error that reaches the user names it (the
    interpreter adds the locator), as those raised by the kernel itself do."""
    q = Spec((2, 3), "INT8", 0.05, 0)
    model = build(op, [q, q], Spec((2, 3), "INT8", 1e-12, 0),
                  {"fused_activation_function": "RELU6"})
    with pytest.raises(ModelValidationError, match="does not fit int32") as info:
        tflite_ref.Interpreter(model_content=model).allocate_tensors()
    assert str(info.value).startswith(f"subgraph 0, operator 0 ({op}): ")
    assert info.value.locator is not None and info.value.locator.operator == 0
