"""Comparison, logical and selection kernels (tflite_ref/kernels/logical.py) against LiteRT and
TFLite Micro.

Single-operator models are built with :mod:`tflite_ref.model.writer` and run in tflite_ref, in
LiteRT's reference kernels (every tensor compared exactly) and, where TFLite Micro has the op and
dtype, in TFLM (``emulate="tflm"``).

TFLM coverage: EQUAL/NOT_EQUAL take bool, float32, int8, int32, int64; LESS(_EQUAL) and
GREATER(_EQUAL) float32, int8, int32, int64 (no uint8; its int16 GREATER compares uninitialised
scaling parameters, so int16 is LiteRT-only); LOGICAL_* bool; SELECT_V2 float32, int8, int16
(no SELECT v1); no WHERE.

How to add a case: append to the relevant ``*_CASES`` list with a readable id.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from harness import random_array
from hypothesis import given, settings
from hypothesis import strategies as st
from opmodels import S, op_model
from opmodels import check_model as check

import tflite_ref
from tflite_ref.errors import ModelValidationError, UnsupportedOpError

COMPARISONS = ("LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL")
TFLM_COMPARE = {"EQUAL": {"BOOL", "FLOAT32", "INT8", "INT32", "INT64"},
                "NOT_EQUAL": {"BOOL", "FLOAT32", "INT8", "INT32", "INT64"}}
for _op in ("LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL"):
    TFLM_COMPARE[_op] = {"FLOAT32", "INT8", "INT32", "INT64"}

TensorArg = tuple  # (shape, dtype) or (shape, dtype, scale, zero_point) or (..., data=array)


def build(op: str, inputs: Sequence[TensorArg], output: TensorArg,
          consts: dict[int, np.ndarray] | None = None) -> bytes:
    """``inputs`` / ``output``: ``(shape, dtype[, scale, zero_point])``; ``consts`` makes some
    inputs constant tensors (not model inputs)."""
    consts = consts or {}

    def tensor(spec: TensorArg, data: np.ndarray | None = None) -> S:
        return S(spec[0], spec[1], data, *spec[2:4])

    return op_model(op, [tensor(s, consts.get(i)) for i, s in enumerate(inputs)],
                    [tensor(output)])


def bshape(*shapes: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(d) for d in np.broadcast_shapes(*(tuple(s) for s in shapes)))


def small_values(shape: Sequence[int], dtype: str, rng: np.random.Generator) -> np.ndarray:
    """Values from a small set, so that equal pairs are frequent."""
    dt = np.dtype(dtype.lower()) if dtype != "BOOL" else np.dtype(bool)
    if dt.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.kind == "f":
        return rng.integers(-3, 4, size=shape).astype(dt) * dt.type(0.5)
    lo = 0 if dt.kind == "u" else -3
    return rng.integers(lo, lo + 7, size=shape).astype(dt)


# ------------------------------------------------------------------------------------------------
# Comparisons
# ------------------------------------------------------------------------------------------------
S4 = (1, 3, 4, 2)
CMP_CASES: list[tuple[str, str, tuple, tuple, tuple | None]] = []
for _op in COMPARISONS:
    CMP_CASES += [
        (_op, "FLOAT32", S4, S4, None),
        (_op, "FLOAT32", S4, (2,), None),
        (_op, "INT32", S4, (1, 3, 1, 1), None),
        (_op, "INT64", (5,), (5,), None),
        # 8-bit inputs are compared after rescaling with their own scales
        (_op, "INT8", S4, S4, ((0.1, 3), (0.05, -10))),
        (_op, "INT8", S4, (1, 1, 4, 2), ((0.02, 0), (0.02, 0))),
        (_op, "UINT8", S4, (2,), ((0.1, 128), (0.05, 120))),
        # int16: rescaled for (NOT_)EQUAL, raw for the orderings
        (_op, "INT16", S4, S4, ((0.001, 0), (0.002, 0))),
    ]
CMP_CASES += [("EQUAL", "BOOL", S4, (2,), None), ("NOT_EQUAL", "BOOL", S4, S4, None)]


def _cmp_id(c: tuple) -> str:
    op, dt, s1, s2, _ = c
    shapes = "x".join(map(str, s1)) + "-" + "x".join(map(str, s2))
    return f"{op.lower()}-{dt.lower()}-{shapes}"


@pytest.mark.parametrize("case", CMP_CASES, ids=[_cmp_id(c) for c in CMP_CASES])
def test_comparison(case: tuple) -> None:
    op, dtype, s1, s2, q = case
    ins = [(s1, dtype, *q[0]), (s2, dtype, *q[1])] if q else [(s1, dtype), (s2, dtype)]
    model = build(op, ins, (bshape(s1, s2), "BOOL"))
    rng = np.random.default_rng(len(s1) * 31 + len(s2))
    xs = [small_values(s1, dtype, rng), small_values(s2, dtype, rng)]
    check(model, xs, tflm=dtype in TFLM_COMPARE[op])


def test_unquantized_int16_equality() -> None:
    model = build("EQUAL", [((6,), "INT16")] * 2, ((6,), "BOOL"))
    xs = [np.array([1, 2, 3, -4, 5, 6], np.int16), np.array([1, 0, 3, 4, 5, -6], np.int16)]
    check(model, xs, tflm=False)
    model = build("NOT_EQUAL", [((6,), "INT16")] * 2, ((6,), "BOOL"))
    with pytest.raises(UnsupportedOpError, match="unquantized INT16"):
        tflite_ref.Interpreter(model_content=model).allocate_tensors()


def test_quantized_comparison_rescales() -> None:
    """q=10 at scale 0.1 (1.0) equals q=20 at scale 0.05 (1.0): the comparison is on real values."""
    ins = [((3,), "INT8", 0.1, 0), ((3,), "INT8", 0.05, 0)]
    model = build("EQUAL", ins, ((3,), "BOOL"))
    xs = [np.array([10, 10, -5], np.int8), np.array([20, 21, -10], np.int8)]
    check(model, xs, tflm=True)
    it = tflite_ref.Interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(0, xs[0])
    it.set_tensor(1, xs[1])
    it.invoke()
    assert it.get_tensor(2).tolist() == [True, False, True]


def test_float_comparison_nan() -> None:
    x = np.array([np.nan, 1.0, np.nan, -np.inf], np.float32)
    y = np.array([np.nan, np.nan, 0.0, -np.inf], np.float32)
    for op in COMPARISONS:
        check(build(op, [((4,), "FLOAT32")] * 2, ((4,), "BOOL")), [x, y], tflm=True)


@st.composite
def broadcast_pair(draw: st.DrawFn, max_rank: int = 5) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rank = draw(st.integers(0, max_rank))
    full = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    a = tuple(d if draw(st.booleans()) else 1 for d in full)
    b = tuple(d if draw(st.booleans()) else 1 for d in full)
    return a[draw(st.integers(0, rank)):], b


@settings(max_examples=250, deadline=None)
@given(op=st.sampled_from(COMPARISONS), dtype=st.sampled_from(["INT8", "UINT8", "INT16"]),
       shapes=broadcast_pair(), same_scale=st.booleans(), data=st.data())
def test_quantized_comparison_random(op: str, dtype: str, shapes: tuple, same_scale: bool,
                                     data: st.DataObject) -> None:
    sc = st.floats(0.001, 0.9).map(lambda s: float(np.float32(s)))
    zp = {"INT8": st.integers(-128, 127), "UINT8": st.integers(0, 255),
          "INT16": st.integers(-100, 100)}[dtype]
    q1 = (data.draw(sc), data.draw(zp))
    q2 = q1 if same_scale else (data.draw(sc), data.draw(zp))
    model = build(op, [(shapes[0], dtype, *q1), (shapes[1], dtype, *q2)],
                  (bshape(*shapes), "BOOL"))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    np_dtype = np.dtype(dtype.lower())
    xs = [random_array(s, np_dtype, rng) for s in shapes]
    if same_scale and xs[0].size and xs[1].size:  # make some pairs equal
        xs[1] = np.where(rng.random(shapes[1]) < 0.3, xs[0].reshape(-1)[0], xs[1]).astype(
            np_dtype)
    check(model, xs, tflm=dtype in TFLM_COMPARE[op])


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(COMPARISONS),
       dtype=st.sampled_from(["FLOAT32", "INT32", "INT64", "INT16", "BOOL"]),
       shapes=broadcast_pair(), seed=st.integers(0, 2**32 - 1))
def test_plain_comparison_random(op: str, dtype: str, shapes: tuple, seed: int) -> None:
    if dtype == "BOOL" and op not in ("EQUAL", "NOT_EQUAL"):
        dtype = "INT32"
    if dtype == "INT16" and op in ("EQUAL", "NOT_EQUAL"):
        # Unquantized int16: LiteRT's EQUAL compares raw values (test_unquantized_int16_equality);
        # its NOT_EQUAL writes no output at all, which we refuse.
        dtype = "INT64"
    model = build(op, [(s, dtype) for s in shapes], (bshape(*shapes), "BOOL"))
    rng = np.random.default_rng(seed)
    check(model, [small_values(s, dtype, rng) for s in shapes],
          tflm=dtype in TFLM_COMPARE[op])


# ------------------------------------------------------------------------------------------------
# LOGICAL_AND, LOGICAL_OR, LOGICAL_NOT
# ------------------------------------------------------------------------------------------------
LOGICAL_CASES = [("LOGICAL_AND", (2, 3, 4), (2, 3, 4)), ("LOGICAL_AND", (2, 3, 4), (4,)),
                 ("LOGICAL_OR", (2, 1, 4), (3, 1)), ("LOGICAL_OR", (5,), (5,))]


@pytest.mark.parametrize("op,s1,s2", LOGICAL_CASES,
                         ids=[f"{o.lower()}-{'x'.join(map(str, a))}-{'x'.join(map(str, b))}"
                              for o, a, b in LOGICAL_CASES])
def test_logical_binary(op: str, s1: tuple, s2: tuple) -> None:
    rng = np.random.default_rng(5)
    model = build(op, [(s1, "BOOL"), (s2, "BOOL")], (bshape(s1, s2), "BOOL"))
    check(model, [small_values(s1, "BOOL", rng), small_values(s2, "BOOL", rng)], tflm=True)


def test_logical_not() -> None:
    x = np.array([[True, False, True], [False, False, True]])
    check(build("LOGICAL_NOT", [((2, 3), "BOOL")], ((2, 3), "BOOL")), [x], tflm=True)


def test_logical_requires_bool() -> None:
    model = build("LOGICAL_AND", [((3,), "INT32")] * 2, ((3,), "BOOL"))
    with pytest.raises(ModelValidationError, match="BOOL"):
        tflite_ref.Interpreter(model_content=model).allocate_tensors()


# ------------------------------------------------------------------------------------------------
# SELECT and SELECT_V2
# ------------------------------------------------------------------------------------------------
SELECT_CASES = [
    # (op, dtype, cond shape, x shape, y shape, quantization of x/y/out)
    ("SELECT", "FLOAT32", (2, 3), (2, 3), (2, 3), None),
    ("SELECT", "INT8", (4,), (4, 2, 3), (4, 2, 3), (0.1, 3)),  # rank-1 condition picks rows
    ("SELECT", "INT32", (), (3, 2), (3, 2), None),  # scalar condition
    ("SELECT", "INT64", (2, 2), (2, 2), (2, 2), None),
    ("SELECT", "UINT8", (3,), (3,), (3,), (0.5, 128)),
    ("SELECT", "BOOL", (2, 3), (2, 3), (2, 3), None),
    ("SELECT", "INT16", (1,), (1,), (1,), (0.01, 0)),  # one element everywhere
    ("SELECT_V2", "FLOAT32", (2, 1, 3), (1, 4, 1), (4, 3), None),
    ("SELECT_V2", "INT8", (1, 3), (2, 3), (2, 1), (0.1, -5)),
    ("SELECT_V2", "INT16", (2, 3), (2, 3), (2, 3), (0.01, 0)),
    ("SELECT_V2", "INT32", (), (2, 3), (3,), None),
    ("SELECT_V2", "INT64", (2, 1, 2, 1, 2), (1, 2, 1, 2, 1), (2,), None),
    ("SELECT_V2", "BOOL", (3, 1), (1, 3), (3, 3), None),
    ("SELECT_V2", "UINT8", (4,), (1,), (4,), (0.5, 128)),
]


def _select_id(c: tuple) -> str:
    op, dt, cs, xs, ys, _ = c
    return "-".join([op.lower(), dt.lower()] + ["x".join(map(str, s)) or "scalar"
                                                for s in (cs, xs, ys)])


@pytest.mark.parametrize("case", SELECT_CASES, ids=[_select_id(c) for c in SELECT_CASES])
def test_select(case: tuple) -> None:
    op, dtype, cs, xs, ys, q = case
    qq = () if q is None else q
    out_shape = xs if op == "SELECT" else bshape(cs, xs, ys)
    model = build(op, [(cs, "BOOL"), (xs, dtype, *qq), (ys, dtype, *qq)],
                  (out_shape, dtype, *qq))
    rng = np.random.default_rng(9)
    np_dtype = np.dtype(bool) if dtype == "BOOL" else np.dtype(dtype.lower())
    arrays = [small_values(cs, "BOOL", rng), random_array(xs, np_dtype, rng),
              random_array(ys, np_dtype, rng)]
    tflm = op == "SELECT_V2" and dtype in ("FLOAT32", "INT8", "INT16")
    check(model, arrays, tflm=tflm)


@settings(max_examples=60, deadline=None)
@given(shapes=st.lists(st.lists(st.integers(1, 3), max_size=4).map(tuple), min_size=3,
                       max_size=3).filter(lambda s: _broadcastable(*s)),
       dtype=st.sampled_from(["FLOAT32", "INT8", "INT16"]), seed=st.integers(0, 2**32 - 1))
def test_select_v2_random_broadcast(shapes: list, dtype: str, seed: int) -> None:
    cs, xs, ys = shapes
    qq = () if dtype == "FLOAT32" else ((0.05, 0) if dtype == "INT16" else (0.05, 7))
    model = build("SELECT_V2", [(cs, "BOOL"), (xs, dtype, *qq), (ys, dtype, *qq)],
                  (bshape(cs, xs, ys), dtype, *qq))
    rng = np.random.default_rng(seed)
    np_dtype = np.dtype(dtype.lower())
    arrays = [small_values(cs, "BOOL", rng), random_array(xs, np_dtype, rng),
              random_array(ys, np_dtype, rng)]
    check(model, arrays, tflm=True)


def _broadcastable(*shapes: Sequence[int]) -> bool:
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        return False
    return True


def test_select_v1_rejects_broadcasting() -> None:
    model = build("SELECT", [((2, 1), "BOOL"), ((2, 3), "FLOAT32"), ((2, 3), "FLOAT32")],
                  ((2, 3), "FLOAT32"))
    with pytest.raises(ModelValidationError, match="SELECT"):
        tflite_ref.Interpreter(model_content=model).allocate_tensors()


def test_select_v1_is_not_in_tflm() -> None:
    model = build("SELECT", [((2,), "BOOL"), ((2,), "FLOAT32"), ((2,), "FLOAT32")],
                  ((2,), "FLOAT32"))
    with pytest.raises(UnsupportedOpError, match="SELECT_V2 only"):
        tflite_ref.Interpreter(model_content=model, emulate="tflm").allocate_tensors()


# ------------------------------------------------------------------------------------------------
# WHERE (dynamic output shape)
# ------------------------------------------------------------------------------------------------
WHERE_CASES = [("BOOL", (3, 4)), ("FLOAT32", (2, 3, 2)), ("INT32", (7,)), ("INT8", (2, 2)),
               ("INT64", (1, 5)), ("UINT8", (4, 1, 2))]


@pytest.mark.parametrize("dtype,shape", WHERE_CASES,
                         ids=[f"where-{d.lower()}-{'x'.join(map(str, s)) or 'scalar'}"
                              for d, s in WHERE_CASES])
def test_where(dtype: str, shape: tuple) -> None:
    """Not in TFLM. The output shape depends on the data: [number of non-zeros, rank]."""
    rng = np.random.default_rng(2)
    model = build("WHERE", [(shape, dtype)], ((0, len(shape)), "INT64"))
    cond = small_values(shape, dtype, rng)
    if cond.dtype.kind != "b":
        cond = np.where(rng.random(shape) < 0.5, 0, cond).astype(cond.dtype)
    check(model, [cond], tflm=False)
    it = tflite_ref.Interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(0, cond)
    it.invoke()
    assert it.get_tensor(1).shape == (int(np.count_nonzero(cond)), len(shape))


def test_where_scalar_condition_fails() -> None:
    """LiteRT fails the invoke ("requires condition w/ rank > 0"); we fail at allocate."""
    model = build("WHERE", [((), "BOOL")], ((0, 0), "INT64"))
    with pytest.raises(ModelValidationError, match="rank > 0"):
        tflite_ref.Interpreter(model_content=model).allocate_tensors()


def test_where_constant_condition_is_static() -> None:
    cond = np.array([[True, False], [True, True]])
    model = build("WHERE", [((2, 2), "BOOL")], ((3, 2), "INT64"), consts={0: cond})
    check(model, [], tflm=False)
    it = tflite_ref.Interpreter(model_content=model)
    it.allocate_tensors()
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(1), [[0, 0], [1, 0], [1, 1]])
