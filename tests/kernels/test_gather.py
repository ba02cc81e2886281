"""GATHER and GATHER_ND (tflite_ref/kernels/gather.py) against LiteRT BUILTIN_REF and TFLM.

TFLM has both ops for float32/int8 data with int32 indices only, so other dtypes and index types
are compared with LiteRT alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import assert_matches_tflm
from hypothesis import given, settings
from hypothesis import strategies as st
from opmodels import S, check, const, litert_fails, op_model, ours_fails, t

from tflite_ref.errors import KernelRuntimeError, ModelValidationError

DTYPES = ["FLOAT32", "INT8", "UINT8", "INT16", "INT32", "INT64", "BOOL"]
NP_INDEX = {"INT16": np.int16, "INT32": np.int32, "INT64": np.int64}


def indices(shape: list[int], high: int, itype: str, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, high, size=shape).astype(NP_INDEX[itype])


# -- GATHER ---------------------------------------------------------------------------------------
GATHER_CASES = [
    # id, input shape, positions shape, axis, batch_dims
    ("axis0", [5, 3], [4], 0, 0),
    ("axis1-2d-positions", [2, 6, 3], [2, 2], 1, 0),
    ("axis-last-negative", [2, 3, 4], [5], -1, 0),
    ("batch-dims", [2, 5, 3], [2, 4], 1, 1),
    ("batch-dims-negative", [2, 3, 5, 2], [2, 3, 2], 2, -1),
    ("scalar-position", [4, 3], [], 0, 0),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("itype", ["INT32", "INT64", "INT16"])
@pytest.mark.parametrize("shape,pshape,axis,batch_dims", [c[1:] for c in GATHER_CASES],
                         ids=[f"gather-{c[0]}" for c in GATHER_CASES])
def test_gather(dtype: str, itype: str, shape: list[int], pshape: list[int], axis: int,
                batch_dims: int) -> None:
    a = axis % len(shape)
    bd = batch_dims % len(pshape) if batch_dims < 0 else batch_dims
    out = shape[:a] + pshape[bd:] + shape[a + 1:]
    pos = indices(pshape, shape[a], itype, np.random.default_rng(len(shape)))
    ins = [t(shape, dtype), S(pshape, itype)]
    # TFLM: float32/int8 data with int32 positions only.
    tflm = dtype in ("FLOAT32", "INT8") and itype == "INT32"
    check("GATHER", ins, [t(out, dtype)], {"axis": axis, "batch_dims": batch_dims},
          values={1: pos}, tflm=tflm)


def test_gather_constant_positions() -> None:
    check("GATHER", [t([6, 2], "INT8"), const([5, 0, 5])], [t([3, 2], "INT8")], {"axis": 0})


@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_gather_random(data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, 4), label="rank")
    shape = data.draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank), label="shape")
    axis = data.draw(st.integers(0, rank - 1), label="axis")
    batch_dims = data.draw(st.integers(0, axis), label="batch_dims")
    extra = data.draw(st.lists(st.integers(0, 3), max_size=2), label="positions dims")
    pshape = shape[:batch_dims] + extra
    if len(pshape) < batch_dims:
        return
    dtype = data.draw(st.sampled_from(["FLOAT32", "INT8", "INT16"]), label="dtype")
    out = shape[:axis] + pshape[batch_dims:] + shape[axis + 1:]
    pos = indices(pshape, shape[axis], "INT32", np.random.default_rng(data.draw(st.integers(0, 9))))
    tflm = dtype != "INT16" and 0 not in out  # TFLM: no int16 gather, no empty tensors
    check("GATHER", [t(shape, dtype), S(pshape, "INT32")], [t(out, dtype)],
          {"axis": axis, "batch_dims": batch_dims}, values={1: pos}, tflm=tflm)


@pytest.mark.parametrize("bad", [7, -1], ids=["too-large", "negative"])
def test_gather_out_of_range_index_fails_naming_position(bad: int) -> None:
    model = op_model("GATHER", [S([5, 2], "FLOAT32"), S([2, 2], "INT32")],
                     [S([2, 2, 2], "FLOAT32")])
    x = np.zeros([5, 2], np.float32)
    pos = np.array([[0, 1], [bad, 2]], np.int32)
    litert_fails(model, [x, pos])
    msg = ours_fails(model, KernelRuntimeError, [x, pos])
    assert "operator 0 (GATHER)" in msg and f"index {bad}" in msg and "position [1, 0]" in msg


def test_gather_bad_batch_dims_fails() -> None:
    model = op_model("GATHER", [S([2, 3], "FLOAT32"), S([3, 1], "INT32")], [S([2, 1], "FLOAT32")],
                     {"axis": 1, "batch_dims": 1})
    litert_fails(model)
    ours_fails(model, ModelValidationError)


# -- GATHER_ND ------------------------------------------------------------------------------------
GATHER_ND_CASES = [
    ("elements", [3, 4], [5, 2]),
    ("rows", [3, 4, 2], [2, 1]),
    ("slices-batched", [4, 3, 2], [2, 3, 2]),
    ("full-depth-3d", [2, 3, 4], [4, 3]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("itype", ["INT32", "INT64", "INT16"])
@pytest.mark.parametrize("shape,ishape", [c[1:] for c in GATHER_ND_CASES],
                         ids=[f"gather_nd-{c[0]}" for c in GATHER_ND_CASES])
def test_gather_nd(dtype: str, itype: str, shape: list[int], ishape: list[int]) -> None:
    nd = ishape[-1]
    rng = np.random.default_rng(nd)
    idx = np.stack([rng.integers(0, shape[k], size=ishape[:-1]) for k in range(nd)], -1)
    idx = idx.astype(NP_INDEX[itype])
    out = ishape[:-1] + shape[nd:]
    tflm = dtype in ("FLOAT32", "INT8") and itype == "INT32"  # TFLM: these only
    check("GATHER_ND", [t(shape, dtype), S(ishape, itype)], [t(out, dtype)], None,
          values={1: idx}, tflm=tflm)


@given(data=st.data())
@settings(max_examples=30, deadline=None)
def test_gather_nd_random(data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, 4), label="rank")
    shape = data.draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank), label="shape")
    nd = data.draw(st.integers(1, rank), label="index depth")
    lead = data.draw(st.lists(st.integers(1, 3), max_size=2), label="leading index dims")
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    idx = np.stack([rng.integers(0, shape[k], size=lead) for k in range(nd)], -1).astype(np.int32)
    out = lead + shape[nd:]
    check("GATHER_ND", [t(shape, "INT8"), S(lead + [nd], "INT32")], [t(out, "INT8")], None,
          values={1: idx})


def test_gather_nd_empty_index_depth_fails_like_litert() -> None:
    """Indices of shape [2, 0] (whole-tensor slices): LiteRT's kernel sees null index data."""
    model = op_model("GATHER_ND", [S([2, 3], "FLOAT32"), S([2, 0], "INT32")],
                     [S([2, 2, 3], "FLOAT32")])
    x = np.zeros([2, 3], np.float32)
    pos = np.zeros([2, 0], np.int32)
    litert_fails(model, [x, pos])
    assert "empty" in ours_fails(model, KernelRuntimeError, [x, pos])


def test_gather_nd_bounds_check_differs_between_runtimes() -> None:
    """[0, 5] into a 3x3 tensor: LiteRT rejects the coordinate; TFLM reads flat element 5."""
    model = op_model("GATHER_ND", [S([3, 3], "FLOAT32"), S([1, 2], "INT32")], [S([1], "FLOAT32")])
    x = np.arange(9, dtype=np.float32).reshape(3, 3)
    pos = np.array([[0, 5]], np.int32)
    litert_fails(model, [x, pos])
    msg = ours_fails(model, KernelRuntimeError, [x, pos])
    assert "operator 0 (GATHER_ND)" in msg and "position [0, 1]" in msg
    assert_matches_tflm(model, [x, pos])  # emulate="tflm" reads element 5 as TFLM does


def test_gather_nd_slice_past_the_end_fails_in_both_emulations() -> None:
    model = op_model("GATHER_ND", [S([3, 3], "INT8", None, 0.1, 0), S([1, 2], "INT32")],
                     [S([1], "INT8", None, 0.1, 0)])
    x = np.zeros([3, 3], np.int8)
    pos = np.array([[2, 4]], np.int32)
    ours_fails(model, KernelRuntimeError, [x, pos])
    ours_fails(model, KernelRuntimeError, [x, pos], emulate="tflm")
