"""Reductions, ARG_MAX/ARG_MIN, CUMSUM and TOPK_V2 against LiteRT's reference kernels and TFLM.

Each case builds a one-operator model with ``opmodels.op_model`` and runs it in tflite_ref and in
the runtime: ``emulate="tflite"`` against LiteRT ``BUILTIN_REF`` (every tensor), ``emulate="tflm"``
against the TFLM interpreter (outputs). Integers must be equal; floats equal within 1e-5
relative. A combination a runtime has no kernel for is not run against that runtime (the case
table says which); ``test_refusals`` checks that tflite_ref refuses it too.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pytest
from harness import random_array
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opmodels import S, op_model, prepared
from opmodels import check_model as check

import tflite_ref
from tflite_ref.errors import KernelRuntimeError, ModelValidationError, UnsupportedOpError

RNG = np.random.default_rng(20261105)


def reduced_shape(shape: Sequence[int], axes: Sequence[int], keep_dims: bool) -> tuple[int, ...]:
    rank = len(shape)
    axes = {a % rank for a in axes} if rank else set()
    if keep_dims:
        return tuple(1 if d in axes else n for d, n in enumerate(shape))
    return tuple(n for d, n in enumerate(shape) if d not in axes)


def quant(dtype: str, scale: float | None, zp: int | None) -> dict[str, Any]:
    return {} if scale is None else {"scale": scale, "zero_point": zp}


def reduce_model(op: str, dtype: str, shape: Sequence[int], axes: Sequence[int],
                 keep_dims: bool, q_in: tuple[float, int] | None = None,
                 q_out: tuple[float, int] | None = None, const_axes: bool = True) -> bytes:
    axis_spec = S(shape=(len(axes),), dtype="INT32")
    if const_axes:
        axis_spec.data = np.array(axes, np.int32)
    return op_model(
        op,
        [S(shape=shape, dtype=dtype, **quant(dtype, *(q_in or (None, None)))), axis_spec],
        [S(shape=reduced_shape(shape, axes, keep_dims), dtype=dtype,
              **quant(dtype, *(q_out or (None, None))))],
        {"keep_dims": keep_dims})


def int_values(dtype: str, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    return random_array(shape, np.dtype(dtype.lower()), rng)


# -- MEAN / SUM -----------------------------------------------------------------------------------
# (op, dtype, shape, axes, keep_dims, q_in, q_out, runtimes). TFLM's MEAN/SUM take float32, int8
# and int16; LiteRT's add uint8, int32, int64 and need zero points 0 for int16.
BOTH, LITERT, TFLM = "both", "litert", "tflm"
MEAN_SUM_CASES = [
    ("MEAN", "FLOAT32", (2, 5, 7, 3), (1, 2), True, None, None, BOTH),
    ("MEAN", "FLOAT32", (4, 9, 6), (-1,), False, None, None, BOTH),
    ("MEAN", "FLOAT32", (3, 4, 5), (0, 2, -1), False, None, None, BOTH),
    ("MEAN", "FLOAT32", (3, 4, 5), (0, 1, 2), False, None, None, BOTH),
    ("SUM", "FLOAT32", (6, 7, 8), (1,), True, None, None, BOTH),
    ("SUM", "FLOAT32", (2, 3, 4, 5), (3, 0), False, None, None, BOTH),
    ("MEAN", "INT8", (1, 7, 7, 16), (1, 2), True, (0.05, -3), (0.02, 5), BOTH),
    ("MEAN", "INT8", (2, 6, 5, 19), (2, 1), True, (0.1, 10), (0.1, 10), BOTH),
    ("MEAN", "INT8", (3, 10, 4), (1,), False, (0.03, -128), (0.011, 2), BOTH),
    ("MEAN", "INT8", (4, 33), (-1, 1), True, (0.02, 7), (0.5, -1), BOTH),
    ("MEAN", "INT8", (2, 3, 4, 5), (0, 1, 2, 3), False, (0.1, 0), (0.003, 0), BOTH),
    ("MEAN", "INT8", (5, 300), (1,), False, (0.02, 1), (0.04, -2), BOTH),
    ("SUM", "INT8", (3, 6, 5), (1,), False, (0.01, 3), (0.2, -4), BOTH),
    ("SUM", "INT8", (2, 4, 4, 8), (1, 2), True, (0.05, -7), (0.9, 0), BOTH),
    ("SUM", "INT8", (2, 4, 8), (0, 2), False, (0.05, 0), (0.01, 1), BOTH),
    ("MEAN", "UINT8", (2, 5, 5, 6), (1, 2), True, (0.04, 128), (0.03, 120), LITERT),
    ("SUM", "UINT8", (3, 8), (0,), False, (0.01, 130), (0.2, 100), LITERT),
    ("MEAN", "INT16", (2, 6, 6, 4), (1, 2), True, (0.001, 0), (0.0007, 0), BOTH),
    ("MEAN", "INT16", (5, 12), (1,), False, (1 / 2048, 0), (1 / 4096, 0), BOTH),
    # LiteRT's reference int16 SUM reads the data as uint8 bytes and leaves half the output
    # unwritten (reduce.cc QuantizedMeanOrSum<T, kReference>): nothing to compare with there.
    ("SUM", "INT16", (4, 3, 10), (2,), False, (0.0005, 0), (0.004, 0), TFLM),
    ("MEAN", "INT16", (3, 9), (1,), False, (0.001, 17), (0.002, -5), TFLM),  # LiteRT: zp must be 0
    ("MEAN", "INT32", (3, 7, 4), (1,), False, None, None, LITERT),
    ("SUM", "INT32", (3, 7, 4), (0, 2), True, None, None, LITERT),
    ("MEAN", "INT64", (4, 6), (0,), False, None, None, LITERT),
    ("SUM", "INT64", (4, 6), (1,), False, None, None, LITERT),
]


def _case_id(op: str, dtype: str, shape: Sequence[int], axes: Sequence[int], keep: bool,
             *rest: Any) -> str:
    ax = "_".join(str(a) for a in axes) or "none"
    dims = "x".join(map(str, shape)) or "scalar"
    return f"{op.lower()}-{dtype.lower()}-{dims}-axes{ax}{'-keep' if keep else ''}"


def _values(dtype: str, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    if dtype == "FLOAT32":
        return rng.uniform(-4, 4, size=shape).astype(np.float32)
    if dtype in ("INT32", "INT64"):  # big enough to overflow an int32 sum now and then
        return (random_array(shape, np.dtype(dtype.lower()), rng) // 3).astype(dtype.lower())
    return int_values(dtype, shape, rng)


@pytest.mark.parametrize("op,dtype,shape,axes,keep,q_in,q_out,runtimes", MEAN_SUM_CASES,
                         ids=[_case_id(*c) for c in MEAN_SUM_CASES])
def test_mean_sum(op: str, dtype: str, shape: tuple[int, ...], axes: tuple[int, ...], keep: bool,
                  q_in: tuple[float, int] | None, q_out: tuple[float, int] | None,
                  runtimes: str) -> None:
    model = reduce_model(op, dtype, shape, axes, keep, q_in, q_out)
    check(model, [_values(dtype, shape, RNG)], litert=runtimes != TFLM, tflm=runtimes != LITERT)


def test_mean_sum_axis_at_run_time() -> None:
    """The axis tensor as a graph input: the output shape is decided at invoke."""
    shape = (3, 5, 6)
    for op, dtype, q in (("MEAN", "FLOAT32", None), ("SUM", "INT8", ((0.05, 2), (0.3, -1))),
                         ("MEAN", "INT8", ((0.05, 2), (0.02, -1)))):
        axes = np.array([2, -3], np.int32)
        model = reduce_model(op, dtype, shape, axes.tolist(), False, *(q or (None, None)),
                             const_axes=False)
        check(model, [_values(dtype, shape, RNG), axes])


def test_mean_sum_repeated_axes_and_no_axes() -> None:
    shape = (4, 3, 5)
    x = int_values("INT8", shape, RNG)
    check(reduce_model("MEAN", "INT8", shape, (1, -2, 1), True, (0.1, 3), (0.07, -2)), [x])
    # An empty axis list reduces nothing: each element is requantized on its own (N = 1).
    check(reduce_model("MEAN", "INT8", shape, (), False, (0.1, 3), (0.07, -2)), [x])
    check(reduce_model("SUM", "FLOAT32", shape, (), True), [_values("FLOAT32", shape, RNG)])


def test_mean_int8_extremes() -> None:
    """Saturating inputs, a large N, scale ratios far from 1 (QuantizedMeanOrSum's shift clamps)."""
    shape = (2, 64, 64)
    x = np.where(RNG.random(shape) < 0.5, -128, 127).astype(np.int8)
    for q_in, q_out in (((0.5, -128), (0.0005, 0)), ((1e-4, 127), (0.9, -128)),
                        ((0.02, 0), (0.02, 0))):
        check(reduce_model("MEAN", "INT8", shape, (1, 2), False, q_in, q_out), [x])
        check(reduce_model("SUM", "INT8", shape, (2,), True, q_in, q_out), [x])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from(["MEAN", "SUM"]), dtype=st.sampled_from(["INT8", "INT16", "UINT8"]),
       shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
       data=st.data(), keep=st.booleans(), log_s_in=st.floats(-10, 0),
       log_ratio=st.floats(-4, 4), z_in=st.integers(-128, 127), z_out=st.integers(-128, 127),
       seed=st.integers(0, 2**31))
def test_mean_sum_hypothesis(op: str, dtype: str, shape: list[int], data: st.DataObject,
                             keep: bool, log_s_in: float, log_ratio: float, z_in: int,
                             z_out: int, seed: int) -> None:
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank + 1),
                     label="axes")
    s_in = 2.0**log_s_in
    s_out = s_in / 2.0**log_ratio
    if dtype == "INT16":
        z_in = z_out = 0
    elif dtype == "UINT8":
        z_in, z_out = z_in + 128, z_out + 128
    model = reduce_model(op, dtype, shape, axes, keep, (s_in, z_in), (s_out, z_out))
    x = int_values(dtype, shape, np.random.default_rng(seed))
    # LiteRT: not int16 SUM (see MEAN_SUM_CASES); TFLM: no uint8.
    check(model, [x], litert=not (op == "SUM" and dtype == "INT16"), tflm=dtype != "UINT8")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from(["MEAN", "SUM"]),
       shape=st.lists(st.integers(1, 7), min_size=1, max_size=4), data=st.data(),
       keep=st.booleans(), seed=st.integers(0, 2**31))
def test_mean_sum_float_hypothesis(op: str, shape: list[int], data: st.DataObject, keep: bool,
                                   seed: int) -> None:
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=0, max_size=rank),
                     label="axes")
    model = reduce_model(op, "FLOAT32", shape, axes, keep)
    check(model, [_values("FLOAT32", shape, np.random.default_rng(seed))])


# Zero-sized and scalar inputs (LiteRT only: TFLM does not plan zero-sized tensors). A quantized
# REDUCE_PROD over an empty axis is left out: LiteRT returns without writing its output.
EDGE_CASES = [
    ("MEAN", "FLOAT32", (0, 4), (0,), False, None, None),  # NaN-filled output
    ("SUM", "FLOAT32", (0, 4), (0,), False, None, None),
    ("MEAN", "INT8", (0, 4), (0,), False, (0.1, 3), (0.1, 2)),
    ("SUM", "INT8", (0, 4), (0,), False, (0.1, 3), (0.1, 2)),
    ("MEAN", "INT32", (0, 3), (0,), False, None, None),
    ("REDUCE_MAX", "FLOAT32", (0, 4), (0,), False, None, None),  # lowest float
    ("REDUCE_MIN", "INT8", (0, 4), (0,), False, None, None),
    ("REDUCE_PROD", "FLOAT32", (3, 0), (1,), False, None, None),
    ("REDUCE_ANY", "BOOL", (0, 4), (0,), False, None, None),
    ("REDUCE_ALL", "BOOL", (0, 4), (0,), False, None, None),
    ("REDUCE_PROD", "BOOL", (3, 5), (1,), False, None, None),
    ("MEAN", "FLOAT32", (), (0,), False, None, None),  # scalar: the axes are ignored
    ("SUM", "INT8", (), (), False, (0.1, 3), (0.05, 2)),
    ("REDUCE_MAX", "FLOAT32", (), (), False, None, None),
]


@pytest.mark.parametrize("op,dtype,shape,axes,keep,q_in,q_out", EDGE_CASES,
                         ids=[_case_id(*c) for c in EDGE_CASES])
def test_reduce_empty_and_scalar(op: str, dtype: str, shape: tuple[int, ...],
                                 axes: tuple[int, ...], keep: bool,
                                 q_in: tuple[float, int] | None,
                                 q_out: tuple[float, int] | None) -> None:
    model = reduce_model(op, dtype, shape, axes, keep, q_in, q_out)
    x = RNG.random(shape) < 0.5 if dtype == "BOOL" else _values(dtype, shape, RNG)
    check(model, [np.asarray(x)], tflm=False)


# -- REDUCE_PROD ----------------------------------------------------------------------------------
# LiteRT only: TFLM has no REDUCE_PROD.
PROD_CASES = [
    ("FLOAT32", (3, 4, 5), (1,), False, None, None),
    ("FLOAT32", (2, 3, 6), (0, 2), True, None, None),
    ("INT32", (3, 9), (1,), False, None, None),
    ("INT64", (2, 3, 5), (0, 1, 2), False, None, None),
    ("INT8", (4, 5), (1,), True, None, None),  # no quantization: wrapping int8 product
    ("INT8", (3, 4, 6), (2,), False, (0.1, 2), (0.5, -3)),
    ("INT8", (2, 3, 4, 3), (1, 3), True, (0.2, -10), (0.6, 0)),
    ("INT8", (5, 8), (0,), False, (0.08, 0), (0.01, 4)),
    ("INT16", (3, 7), (1,), False, (0.002, 0), (0.001, 0)),
]


@pytest.mark.parametrize("dtype,shape,axes,keep,q_in,q_out", PROD_CASES,
                         ids=[_case_id("REDUCE_PROD", *c) + ("-quant" if c[4] else "")
                              for c in PROD_CASES])
def test_reduce_prod(dtype: str, shape: tuple[int, ...], axes: tuple[int, ...], keep: bool,
                     q_in: tuple[float, int] | None, q_out: tuple[float, int] | None) -> None:
    model = reduce_model("REDUCE_PROD", dtype, shape, axes, keep, q_in, q_out)
    if dtype == "FLOAT32":
        x = RNG.uniform(-1.6, 1.6, size=shape).astype(np.float32)
    elif dtype in ("INT32", "INT64"):
        x = RNG.integers(-50, 50, size=shape).astype(dtype.lower())
    else:
        x = int_values(dtype, shape, RNG)
    check(model, [x], tflm=False)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), data=st.data(),
       keep=st.booleans(), s_in=st.floats(0.01, 0.5), s_out=st.floats(0.01, 2.0),
       z_in=st.integers(-20, 20), z_out=st.integers(-128, 127), seed=st.integers(0, 2**31))
def test_reduce_prod_int8_hypothesis(shape: list[int], data: st.DataObject, keep: bool,
                                     s_in: float, s_out: float, z_in: int, z_out: int,
                                     seed: int) -> None:
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank),
                     label="axes")
    model = reduce_model("REDUCE_PROD", "INT8", shape, axes, keep, (s_in, z_in), (s_out, z_out))
    check(model, [int_values("INT8", shape, np.random.default_rng(seed))], tflm=False)


# -- REDUCE_MAX / REDUCE_MIN / REDUCE_ANY / REDUCE_ALL --------------------------------------------
# TFLM: REDUCE_MAX/MIN take float32 and int8, REDUCE_ALL bool, no REDUCE_ANY.
MAX_MIN_CASES = [
    ("FLOAT32", (3, 4, 5), (1,), False, BOTH),
    ("FLOAT32", (2, 6, 6, 3), (1, 2), True, BOTH),
    ("FLOAT32", (4, 5), (0, 1), False, BOTH),
    ("INT8", (3, 8, 2), (-1, 0), True, BOTH),
    ("INT8", (7, 9), (1,), False, BOTH),
    ("UINT8", (7, 9), (0,), False, LITERT),
    ("INT16", (3, 4, 5), (2,), False, LITERT),
    ("INT32", (3, 4, 5), (0, 2), True, LITERT),
    ("INT64", (6, 5), (1,), False, LITERT),
    ("BOOL", (6, 5), (1,), False, LITERT),
]


@pytest.mark.parametrize("op,dtype,shape,axes,keep,runtimes", [
    pytest.param(op, *c, id=_case_id(op, *c)) for op in ("REDUCE_MAX", "REDUCE_MIN")
    for c in MAX_MIN_CASES])
def test_reduce_max_min(op: str, dtype: str, shape: tuple[int, ...], axes: tuple[int, ...],
                        keep: bool, runtimes: str) -> None:
    q = {"INT8": (0.05, -4), "UINT8": (0.05, 128), "INT16": (0.05, 0)}.get(dtype)
    model = reduce_model(op, dtype, shape, axes, keep, q, q)
    x = _values(dtype, shape, RNG) if dtype != "BOOL" else RNG.random(shape) < 0.5
    check(model, [x], litert=runtimes != TFLM, tflm=runtimes != LITERT)


def test_reduce_max_min_nan() -> None:
    """NaN never wins `(in > current) ? in : current`; LiteRT's all-axes path starts from x[0]."""
    x = np.array([[np.nan, 1, 2, np.nan, 2], [np.nan] * 5, [1, np.nan, 3, 3, 0],
                  [-np.inf, np.nan, -np.inf, np.nan, np.nan]], np.float32)
    for op in ("REDUCE_MAX", "REDUCE_MIN"):
        for axes in ((1,), (0,), (0, 1)):
            check(reduce_model(op, "FLOAT32", x.shape, axes, False), [x])
        check(reduce_model(op, "FLOAT32", x.shape, (0, 1), False), [x[::-1].copy()])


@pytest.mark.parametrize("op,shape,axes,keep", [
    pytest.param(op, *c, id=_case_id(op, "bool", *c)) for op in ("REDUCE_ANY", "REDUCE_ALL")
    for c in [((4, 5, 3), (1,), False), ((3, 6), (0, 1), True), ((2, 3, 4), (-1, 0), False)]])
def test_reduce_any_all(op: str, shape: tuple[int, ...], axes: tuple[int, ...],
                        keep: bool) -> None:
    # TFLM has REDUCE_ALL only.
    model = reduce_model(op, "BOOL", shape, axes, keep)
    for p in (0.1, 0.5, 0.9):
        check(model, [RNG.random(shape) < p], tflm=op == "REDUCE_ALL")


# -- ARG_MAX / ARG_MIN ----------------------------------------------------------------------------
# TFLM: float32 and int8 inputs, int32 axis and output. LiteRT adds uint8, int32, bool inputs,
# int64 axis and output.
ARG_CASES = [
    ("FLOAT32", (4, 7), 1, "INT32", "INT32", BOTH),
    ("FLOAT32", (3, 5, 6), 0, "INT32", "INT32", BOTH),
    ("FLOAT32", (2, 3, 9, 4), -2, "INT32", "INT32", BOTH),
    ("INT8", (5, 40), 1, "INT32", "INT32", BOTH),
    ("INT8", (6, 5, 3), 1, "INT32", "INT32", BOTH),
    ("INT8", (6, 3), -1, "INT32", "INT64", LITERT),
    ("UINT8", (3, 33), 1, "INT32", "INT32", LITERT),
    ("UINT8", (9, 4), 0, "INT64", "INT64", LITERT),
    ("INT32", (4, 6, 5), 2, "INT32", "INT32", LITERT),
    ("BOOL", (5, 6), 1, "INT32", "INT32", LITERT),
    ("FLOAT32", (4, 21), 1, "INT64", "INT64", LITERT),
]


def _arg_values(dtype: str, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Few distinct values, so most rows hold ties (first index must win)."""
    if dtype == "BOOL":
        return rng.random(shape) < 0.3
    v = rng.integers(-3, 3, size=shape)
    if dtype == "UINT8":
        v = v + 200
    return v.astype(np.float32 if dtype == "FLOAT32" else dtype.lower())


def arg_model(op: str, dtype: str, shape: Sequence[int], axis: int, axis_type: str,
              out_type: str, const_axis: bool = True) -> bytes:
    axis_spec = S(shape=(1,), dtype=axis_type)
    if const_axis:
        axis_spec.data = np.array([axis], axis_type.lower())
    out_shape = tuple(n for d, n in enumerate(shape) if d != axis % len(shape))
    return op_model(op, [S(shape=shape, dtype=dtype), axis_spec],
                    [S(shape=out_shape, dtype=out_type)], {"output_type": out_type})


@pytest.mark.parametrize("op,dtype,shape,axis,axis_type,out_type,runtimes", [
    pytest.param(op, d, s, a, at, ot, r, id=f"{op.lower()}-{d.lower()}-{'x'.join(map(str, s))}"
                 f"-axis{a}-{at.lower()}-{ot.lower()}")
    for op in ("ARG_MAX", "ARG_MIN") for d, s, a, at, ot, r in ARG_CASES])
def test_arg_min_max(op: str, dtype: str, shape: tuple[int, ...], axis: int, axis_type: str,
                     out_type: str, runtimes: str) -> None:
    model = arg_model(op, dtype, shape, axis, axis_type, out_type)
    check(model, [_arg_values(dtype, shape, RNG)], litert=runtimes != TFLM,
          tflm=runtimes != LITERT)


def test_arg_min_max_axis_at_run_time() -> None:
    shape = (3, 4, 5)
    for op in ("ARG_MAX", "ARG_MIN"):
        model = arg_model(op, "FLOAT32", shape, 1, "INT32", "INT32", const_axis=False)
        check(model, [_arg_values("FLOAT32", shape, RNG), np.array([1], np.int32)])


def test_arg_min_max_nan_first_element() -> None:
    """A NaN at index 0, not along the last axis (the reference loop, not the vector path):
    LiteRT's NaN-aware comparator lets the first number replace it, TFLM keeps index 0."""
    x = np.array([[np.nan, np.nan, 1.0], [2.0, np.nan, -1.0], [2.0, 5.0, np.nan]], np.float32)
    for op in ("ARG_MAX", "ARG_MIN"):
        check(arg_model(op, "FLOAT32", x.shape, 0, "INT32", "INT32"), [x])


@pytest.mark.parametrize("n", [4, 5, 7, 8, 13, 21])
def test_arg_min_max_nan_last_axis(n: int) -> None:
    """NaNs along the last axis: LiteRT's x86 4-lane path (the NaN can swallow the lane max)."""
    rng = np.random.default_rng(n)
    x = rng.integers(-3, 3, size=(64, n)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan
    x[0] = np.nan
    x[1, ::2] = np.nan
    x[2, :4] = [np.nan, 1.0, 2.0, np.nan]
    for op in ("ARG_MAX", "ARG_MIN"):
        check(arg_model(op, "FLOAT32", x.shape, 1, "INT32", "INT32"), [x])
        y = x.reshape(8, 8, n, 1)  # axis 2 with trailing size-1 dimension: still the lane path
        check(arg_model(op, "FLOAT32", y.shape, 2, "INT32", "INT32"), [y])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from(["ARG_MAX", "ARG_MIN"]), dtype=st.sampled_from(["FLOAT32", "INT8"]),
       shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), data=st.data(),
       seed=st.integers(0, 2**31))
def test_arg_min_max_hypothesis(op: str, dtype: str, shape: list[int], data: st.DataObject,
                                seed: int) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    model = arg_model(op, dtype, shape, axis, "INT32", "INT32")
    check(model, [_arg_values(dtype, shape, np.random.default_rng(seed))])


# -- CUMSUM ---------------------------------------------------------------------------------------
# LiteRT: float32, int32, int64. TFLM: float32, int8.
CUMSUM_CASES = [
    ("FLOAT32", (4, 9), 1, BOTH),
    ("FLOAT32", (3, 5, 6), 0, BOTH),
    ("FLOAT32", (2, 3, 4, 5), -2, BOTH),
    ("INT32", (5, 7), 1, LITERT),
    ("INT32", (3, 6, 4), -3, LITERT),
    ("INT64", (6, 5), 0, LITERT),
    ("INT8", (4, 10), 1, TFLM),
    ("INT8", (3, 5, 6), 0, TFLM),
]


@pytest.mark.parametrize("exclusive,reverse", [(False, False), (True, False), (False, True),
                                               (True, True)],
                         ids=["inclusive", "exclusive", "reverse", "exclusive-reverse"])
@pytest.mark.parametrize("dtype,shape,axis,runtimes", CUMSUM_CASES,
                         ids=[f"cumsum-{d.lower()}-{'x'.join(map(str, s))}-axis{a}"
                              for d, s, a, _ in CUMSUM_CASES])
def test_cumsum(dtype: str, shape: tuple[int, ...], axis: int, runtimes: str, exclusive: bool,
                reverse: bool) -> None:
    q = (0.05, -6) if dtype == "INT8" else None
    q_out = (0.4, 3) if dtype == "INT8" else None
    model = op_model("CUMSUM", [S(shape=shape, dtype=dtype, **quant(dtype, *(q or (None, None)))),
                                S(shape=(1,), dtype="INT32", data=np.array([axis], np.int32))],
                     [S(shape=shape, dtype=dtype, **quant(dtype, *(q_out or (None, None))))],
                     {"exclusive": exclusive, "reverse": reverse})
    x = _values(dtype, shape, RNG) if dtype != "INT32" else random_array(shape, np.int32, RNG)
    check(model, [x], litert=runtimes != TFLM, tflm=runtimes != LITERT)


def test_cumsum_int8_multiplier_error_names_the_operator() -> None:
    """TFLM's int8 CUMSUM rescales by 2·s_in / (2^20·s_out), which QuantizeMultiplierSmallerThan
    OneExp refuses when it is not below 1; the error names the operator."""
    model = op_model("CUMSUM", [S(shape=(4,), dtype="INT8", scale=0.5, zero_point=0),
                                S(shape=(1,), dtype="INT32", data=np.array([0], np.int32))],
                     [S(shape=(4,), dtype="INT8", scale=1e-7, zero_point=0)])
    with pytest.raises(ModelValidationError, match="must be in \\(0, 1\\)") as info:
        tflite_ref.Interpreter(model_content=model, emulate="tflm").allocate_tensors()
    assert str(info.value).startswith("subgraph 0, operator 0 (CUMSUM): ")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(st.integers(1, 8), min_size=1, max_size=3), data=st.data(),
       exclusive=st.booleans(), reverse=st.booleans(), s_in=st.floats(0.005, 0.5),
       log_ratio=st.floats(-5, 2), z_in=st.integers(-128, 127), z_out=st.integers(-128, 127),
       seed=st.integers(0, 2**31))
def test_cumsum_int8_hypothesis(shape: list[int], data: st.DataObject, exclusive: bool,
                                reverse: bool, s_in: float, log_ratio: float, z_in: int,
                                z_out: int, seed: int) -> None:
    # TFLM only: LiteRT's CUMSUM has no int8 kernel.
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    model = op_model("CUMSUM", [S(shape=shape, dtype="INT8", scale=s_in, zero_point=z_in),
                                S(shape=(1,), dtype="INT32", data=np.array([axis], np.int32))],
                     [S(shape=shape, dtype="INT8", scale=s_in / 2.0**log_ratio,
                           zero_point=z_out)],
                     {"exclusive": exclusive, "reverse": reverse})
    check(model, [int_values("INT8", shape, np.random.default_rng(seed))], litert=False)


# -- TOPK_V2 --------------------------------------------------------------------------------------
# LiteRT only: TFLM has no TOPK_V2.
TOPK_CASES = [
    ("FLOAT32", (4, 10), 3, "INT32"),
    ("FLOAT32", (2, 3, 7), 7, "INT32"),
    ("FLOAT32", (5,), 0, "INT32"),
    ("INT8", (6, 12), 5, "INT32"),
    ("UINT8", (3, 9), 4, "INT16"),
    ("INT16", (2, 2, 8), 2, "INT32"),
    ("INT32", (3, 20), 20, "INT32"),
    ("INT64", (4, 6), 1, "INT16"),
]


def topk_model(dtype: str, shape: Sequence[int], k: int, index_type: str,
               const_k: bool = True, k_type: str = "INT32") -> bytes:
    k_spec = S(shape=(1,), dtype=k_type)
    if const_k:
        k_spec.data = np.array([k], k_type.lower())
    out_shape = tuple(shape[:-1]) + (k,)
    return op_model("TOPK_V2", [S(shape=shape, dtype=dtype), k_spec],
                    [S(shape=out_shape, dtype=dtype), S(shape=out_shape, dtype=index_type)])


@pytest.mark.parametrize("dtype,shape,k,index_type", TOPK_CASES,
                         ids=[f"topk_v2-{d.lower()}-{'x'.join(map(str, s))}-k{k}-{i.lower()}"
                              for d, s, k, i in TOPK_CASES])
def test_topk_v2(dtype: str, shape: tuple[int, ...], k: int, index_type: str) -> None:
    x = _arg_values(dtype, shape, RNG)  # many ties: equal values must come by increasing index
    check(topk_model(dtype, shape, k, index_type), [x], tflm=False)


def test_topk_v2_k_at_run_time_and_nan() -> None:
    x = np.array([[1.0, np.nan, 3.0, 3.0, -np.inf, np.nan, 0.0, -0.0],
                  [np.nan] * 8], np.float32)
    check(topk_model("FLOAT32", x.shape, 8, "INT32"), [x], tflm=False)
    model = topk_model("FLOAT32", x.shape, 5, "INT32", const_k=False, k_type="INT16")
    check(model, [x, np.array([5], np.int16)], tflm=False)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(st.integers(1, 12), min_size=1, max_size=3), data=st.data(),
       dtype=st.sampled_from(["FLOAT32", "INT8", "INT32"]), seed=st.integers(0, 2**31))
def test_topk_v2_hypothesis(shape: list[int], data: st.DataObject, dtype: str,
                            seed: int) -> None:
    k = data.draw(st.integers(0, shape[-1]), label="k")
    x = _arg_values(dtype, shape, np.random.default_rng(seed))
    check(topk_model(dtype, shape, k, "INT32"), [x], tflm=False)


# -- what the runtimes refuse, tflite_ref refuses too ---------------------------------------------
def test_refusals() -> None:
    with pytest.raises(UnsupportedOpError, match="Micro"):
        prepared(reduce_model("MEAN", "INT32", (3, 4), (1,), False), "tflm")
    with pytest.raises(UnsupportedOpError, match="Micro"):
        prepared(reduce_model("REDUCE_PROD", "FLOAT32", (3, 4), (1,), False), "tflm")
    with pytest.raises(ModelValidationError, match="zero points 0"):
        prepared(reduce_model("MEAN", "INT16", (3, 4), (1,), False, (0.1, 1), (0.1, 0)), "tflite")
    prepared(reduce_model("MEAN", "INT16", (3, 4), (1,), False, (0.1, 1), (0.1, 0)), "tflm")
    with pytest.raises(ModelValidationError, match="must be equal"):
        prepared(reduce_model("REDUCE_MAX", "INT8", (3, 4), (1,), False, (0.1, 1), (0.2, 1)),
                 "tflite")
    with pytest.raises(ModelValidationError, match="out of range"):
        prepared(reduce_model("SUM", "FLOAT32", (3, 4), (2,), False), "tflite")
    int8_cumsum = op_model("CUMSUM", [S(shape=(4,), dtype="INT8", scale=0.1, zero_point=0),
                                      S(shape=(1,), dtype="INT32", data=np.array([0], np.int32))],
                           [S(shape=(4,), dtype="INT8", scale=0.1, zero_point=0)])
    prepared(int8_cumsum, "tflm")
    with pytest.raises(UnsupportedOpError, match="TFLite's CUMSUM"):
        prepared(int8_cumsum, "tflite")
    with pytest.raises(UnsupportedOpError, match="Micro"):
        prepared(topk_model("FLOAT32", (3, 4), 2, "INT32"), "tflm")
    with pytest.raises(ModelValidationError, match="larger than"):
        prepared(topk_model("FLOAT32", (3, 4), 5, "INT32"), "tflite")


def test_axis_out_of_range_at_run_time() -> None:
    model = reduce_model("SUM", "FLOAT32", (3, 4), (1,), False, const_axes=False)
    it = prepared(model, "tflite")
    it.set_tensor(it.get_input_details()[0]["index"], np.ones((3, 4), np.float32))
    it.set_tensor(it.get_input_details()[1]["index"], np.array([5], np.int32))
    with pytest.raises(KernelRuntimeError, match="out of range"):
        it.invoke()
