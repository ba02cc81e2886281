"""Layout kernels (tflite_ref/kernels/layout.py) against LiteRT BUILTIN_REF and TFLite Micro.

Every case builds a one-operator model with the writer. Inputs without ``data`` become model
inputs (so a parameter tensor given without data is *computed*, which exercises the dynamic
output path); constants are written into the file. TFLM is compared wherever it has the op and
the dtype and the parameters are constant (it cannot resize outputs at run time); the comment at
each ``tflm=False`` says why.

The single-op model helpers are tests/kernels/opmodels.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from harness import assert_matches_litert, assert_matches_tflm, litert_interpreter, random_array
from hypothesis import given, settings
from hypothesis import strategies as st
from opmodels import (
    S,
    check,
    const,
    litert_fails,
    op_model,
    ours_fails,
    q,
    t,
)

import tflite_ref
from tflite_ref.errors import KernelRuntimeError, ModelValidationError, UnsupportedOpError

F32 = "FLOAT32"
NP = {"FLOAT32": np.float32, "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16,
      "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_}


# -- RESHAPE, SQUEEZE, EXPAND_DIMS ----------------------------------------------------------------
RESHAPE_CASES = [
    ("float32-const-shape", F32, [2, 3, 4], [-1, 4], [6, 4], True),
    ("int8-const-shape", "INT8", [1, 4, 4, 2], [1, 32], [1, 32], True),
    ("int16-new-shape-option", "INT16", [2, 6], None, [3, 4], True),
    ("bool-scalar-legacy-zero", "BOOL", [1, 1], None, [], False),  # TFLM: no bool I/O here
]


@pytest.mark.parametrize("dtype,in_shape,shape,out_shape,tflm",
                         [c[1:] for c in RESHAPE_CASES],
                         ids=[f"reshape-{c[0]}" for c in RESHAPE_CASES])
def test_reshape(dtype: str, in_shape: list[int], shape: list[int] | None, out_shape: list[int],
                 tflm: bool) -> None:
    if shape is None:
        opts = {"new_shape": out_shape or [0]}  # [0] is the legacy spelling of "scalar"
        check("RESHAPE", [t(in_shape, dtype)], [t(out_shape, dtype)], opts, tflm=tflm)
    else:
        check("RESHAPE", [t(in_shape, dtype), const(shape)], [t(out_shape, dtype)], None,
              tflm=tflm)


def test_reshape_dynamic_shape_input() -> None:
    """A computed shape tensor: LiteRT resizes the output at invoke; so do we."""
    ins = [S([2, 3, 4], F32), S([3], "INT32")]
    check("RESHAPE", ins, [S([4, 3, 2], F32)], None, values={1: [4, -1, 3]}, tflm=False)
    # TFLM ignores the shape input and uses the output tensor's shape.
    model = op_model("RESHAPE", ins, [S([4, 3, 2], F32)])
    x = random_array([2, 3, 4], np.float32, np.random.default_rng(1))
    assert_matches_tflm(model, [x, np.array([4, 3, 2], np.int32)])


def test_reshape_follows_resize_tensor_input() -> None:
    model = op_model("RESHAPE", [S([2, 3, 4], F32), const([-1, 4])], [S([6, 4], F32)])
    x = random_array([5, 3, 4], np.float32, np.random.default_rng(2))
    ref = litert_interpreter(model, preserve_all=False)
    ours = tflite_ref.Interpreter(model_content=model)
    for it in (ref, ours):
        it.resize_tensor_input(it.get_input_details()[0]["index"], [5, 3, 4])
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
    got = ours.get_tensor(ours.get_output_details()[0]["index"])
    want = ref.get_tensor(ref.get_output_details()[0]["index"])
    assert got.shape == want.shape == (15, 4)
    np.testing.assert_array_equal(got, want)


def test_reshape_bad_element_count_fails_like_litert() -> None:
    model = op_model("RESHAPE", [S([2, 3], F32), const([4, 2])], [S([4, 2], F32)])
    litert_fails(model)
    assert "cannot reshape 6 elements" in ours_fails(model, ModelValidationError)


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "INT16"])
@pytest.mark.parametrize("dims,in_shape,out_shape", [
    ([], [1, 3, 1, 2], [3, 2]), ([0, -2], [1, 3, 1, 2], [3, 2]), ([2], [4, 1, 1], [4, 1])],
    ids=["all", "negative", "one"])
def test_squeeze(dtype: str, dims: list[int], in_shape: list[int], out_shape: list[int]) -> None:
    check("SQUEEZE", [t(in_shape, dtype)], [t(out_shape, dtype)], {"squeeze_dims": dims})


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "INT16"])
@pytest.mark.parametrize("axis,axis_type,out_shape", [
    (0, "INT32", [1, 2, 3]), (-1, "INT32", [2, 3, 1]), (1, "INT64", [2, 1, 3])],
    ids=["first", "last-negative", "int64-axis"])
def test_expand_dims(dtype: str, axis: int, axis_type: str, out_shape: list[int]) -> None:
    check("EXPAND_DIMS", [t([2, 3], dtype), const([axis], axis_type)], [t(out_shape, dtype)], None,
          tflm=axis_type == "INT32")  # TFLM's expand_dims.cc reads an int32 axis only


def test_expand_dims_dynamic_axis() -> None:
    # TFLM requires a constant axis.
    check("EXPAND_DIMS", [S([2, 3], F32), S([1], "INT32")], [S([2, 3, 1], F32)], None,
          values={1: [-1]}, tflm=False)


# -- TRANSPOSE ------------------------------------------------------------------------------------
TFLM_TRANSPOSE = {"FLOAT32", "INT8", "INT16"}


@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_transpose_random(data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, 6), label="rank")
    shape = data.draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank), label="shape")
    perm = data.draw(st.permutations(range(rank)), label="perm")
    if data.draw(st.booleans(), label="negative perm"):
        perm = [p - rank for p in perm]
    dtype = data.draw(st.sampled_from(["FLOAT32", "INT8", "UINT8", "INT16", "INT32", "INT64",
                                       "BOOL"]), label="dtype")
    out = [shape[p] for p in perm]
    tflm = dtype in TFLM_TRANSPOSE and rank <= 5 and all(p >= 0 for p in perm)
    check("TRANSPOSE", [t(shape, dtype), const(perm)], [t(out, dtype)], None, tflm=tflm)


def test_transpose_dynamic_perm() -> None:
    # TFLM requires a constant perm.
    check("TRANSPOSE", [S([2, 3, 4], "INT8", None, 0.1, 0), S([3], "INT32")],
          [S([4, 2, 3], "INT8", None, 0.1, 0)], None, values={1: [2, 0, 1]}, tflm=False)


# -- CONCATENATION --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "INT16", "INT32", "INT64", "BOOL"])
@pytest.mark.parametrize("axis", [0, 2, -1], ids=["axis0", "axis2", "axis-1"])
def test_concatenation(dtype: str, axis: int) -> None:
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    a = axis % 3
    shapes[1][a], shapes[2][a] = 1, 3
    out = list(shapes[0])
    out[a] = sum(s[a] for s in shapes)
    check("CONCATENATION", [t(s, dtype) for s in shapes], [t(out, dtype)], {"axis": axis},
          tflm=dtype != "BOOL")  # TFLM's Python wrapper cannot feed bool inputs


def test_concatenation_uint8_rescales() -> None:
    """uint8 is the one dtype TFLite rescales (ConcatenationWithScaling); TFLM has no uint8."""
    ins = [S([1, 4, 4, 3], "UINT8", None, 0.05, 128), S([1, 4, 4, 2], "UINT8", None, 0.0137, 7),
           S([1, 4, 4, 1], "UINT8", None, 0.1, 200)]
    check("CONCATENATION", ins, [S([1, 4, 4, 6], "UINT8", None, 0.05, 128)], {"axis": 3},
          tflm=False)


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_concatenation_uint8_rescale_random(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 3))
    scales = data.draw(st.lists(st.floats(1e-3, 1.0), min_size=n + 1, max_size=n + 1))
    zps = data.draw(st.lists(st.integers(0, 255), min_size=n + 1, max_size=n + 1))
    ins = [S([3, 5 + i], "UINT8", None, scales[i], zps[i]) for i in range(n)]
    out = S([3, sum(5 + i for i in range(n))], "UINT8", None, scales[n], zps[n])
    check("CONCATENATION", ins, [out], {"axis": 1}, tflm=False, seed=data.draw(st.integers(0, 99)))


def test_concatenation_int8_requires_equal_quantization() -> None:
    ins = [q([2, 3], "INT8", 0.05, 0), q([2, 3], "INT8", 0.06, 0)]
    model = op_model("CONCATENATION", ins, [q([4, 3], "INT8", 0.05, 0)], {"axis": 0})
    litert_fails(model)
    assert "share scale and zero point" in ours_fails(model, ModelValidationError)


def test_concatenation_fused_activation_is_rejected_like_both_runtimes() -> None:
    model = op_model("CONCATENATION", [S([2], F32), S([2], F32)], [S([4], F32)],
                     {"axis": 0, "fused_activation_function": "RELU"})
    litert_fails(model)
    ours_fails(model, ModelValidationError)
    ours_fails(model, ModelValidationError, emulate="tflm")


def test_concatenation_constant_scalars() -> None:
    ins = [const(np.int32(3)), const(np.int32(-7)), const(np.int32(5))]
    model = op_model("CONCATENATION", ins, [S([3], "INT32")], {"axis": 0})
    it = tflite_ref.Interpreter(model_content=model)
    it.allocate_tensors()
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]), [3, -7, 5])
    assert_matches_litert(model, [])


# -- SPLIT, SPLIT_V, PACK, UNPACK -----------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "UINT8", "INT16", "INT32", "INT64"])
@pytest.mark.parametrize("axis", [1, -1])
def test_split(dtype: str, axis: int) -> None:
    shape, n = [2, 6, 4], 2
    a = axis % 3
    out = list(shape)
    out[a] //= n
    check("SPLIT", [const([axis]), t(shape, dtype)], [t(out, dtype)] * n, {"num_splits": n},
          tflm=dtype in ("FLOAT32", "INT8", "INT16", "INT32"))


def test_split_dynamic_axis() -> None:
    # TFLM requires a constant axis.
    check("SPLIT", [S([1], "INT32"), S([4, 6], F32)], [S([4, 2], F32)] * 3, {"num_splits": 3},
          values={0: [1]}, tflm=False)


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "INT16", "INT64"])
@pytest.mark.parametrize("sizes,sizes_type", [([1, 3, 2], "INT32"), ([2, -1, 1], "INT64")],
                         ids=["sizes", "minus-one"])
def test_split_v(dtype: str, sizes: list[int], sizes_type: str) -> None:
    outs = [t([3, s, 2], dtype) for s in ([1, 3, 2] if sizes[0] == 1 else [2, 3, 1])]
    check("SPLIT_V", [t([3, 6, 2], dtype), const(sizes, sizes_type), const([1])], outs,
          {"num_splits": 3}, tflm=dtype in ("FLOAT32", "INT8", "INT16"))


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "UINT8", "INT16", "INT32", "INT64"])
@pytest.mark.parametrize("axis", [0, 2, -1])
def test_pack(dtype: str, axis: int) -> None:
    shape, n = [2, 3], 3
    a = axis % 3
    out = shape[:a] + [n] + shape[a:]
    check("PACK", [t(shape, dtype)] * n, [t(out, dtype)], {"values_count": n, "axis": axis},
          tflm=dtype in ("FLOAT32", "INT8", "INT16", "INT32", "INT64"))


def test_pack_requires_equal_quantization_in_litert_only() -> None:
    model = op_model("PACK", [q([2], "INT8", 0.1, 1), q([2], "INT8", 0.1, 2)],
                     [q([2, 2], "INT8", 0.1, 1)], {"values_count": 2, "axis": 0})
    litert_fails(model)
    ours_fails(model, ModelValidationError)
    # micro/kernels/pack.cc makes no such check: the bytes are copied as they are.
    assert_matches_tflm(model, [np.array([1, 2], np.int8), np.array([3, 4], np.int8)])


@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_split_v_and_pack_random(data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, 4), label="rank")
    shape = data.draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank), label="shape")
    axis = data.draw(st.integers(-rank, rank - 1), label="axis")
    a = axis % rank
    n = data.draw(st.integers(1, 4), label="splits")
    cuts = sorted(data.draw(st.lists(st.integers(0, shape[a]), min_size=n - 1, max_size=n - 1)))
    sizes = [hi - lo for lo, hi in zip([0, *cuts], [*cuts, shape[a]])]
    outs = [t(shape[:a] + [s] + shape[a + 1:], "INT8") for s in sizes]
    tflm = 0 not in sizes  # TFLM cannot hold empty tensors
    check("SPLIT_V", [t(shape, "INT8"), const(sizes), const([axis])], outs, {"num_splits": n},
          tflm=tflm)
    pack_axis = data.draw(st.integers(-(rank + 1), rank), label="pack axis")
    pa = pack_axis % (rank + 1)
    out = shape[:pa] + [n] + shape[pa:]
    check("PACK", [t(shape, "INT16")] * n, [t(out, "INT16")],
          {"values_count": n, "axis": pack_axis})


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "UINT8", "INT16", "INT32"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_unpack(dtype: str, axis: int) -> None:
    shape = [2, 3, 4]
    a = axis % 3
    out = shape[:a] + shape[a + 1:]
    check("UNPACK", [t(shape, dtype)], [t(out, dtype)] * shape[a], {"num": shape[a], "axis": axis},
          tflm=dtype in ("FLOAT32", "INT8", "INT16", "INT32"))


# -- STRIDED_SLICE, SLICE -------------------------------------------------------------------------
def strided_slice_reference(shape: Sequence[int], begin: list[int], end: list[int],
                            strides: list[int], opts: dict[str, Any]) -> tuple[int, ...] | None:
    """Output shape from our planner; None when the slice is one TFLite leaves unwritten."""
    from tflite_ref.kernels.layout import strided_slice_plan

    masks = (opts.get("begin_mask", 0), opts.get("end_mask", 0), opts.get("ellipsis_mask", 0),
             opts.get("new_axis_mask", 0), opts.get("shrink_axis_mask", 0),
             opts.get("offset", False))

    class Bad(Exception):
        pass

    def fail(msg: str) -> Any:
        raise Bad(msg)

    try:
        return strided_slice_plan(shape, begin, end, strides, masks, fail).output_shape
    except Bad:
        return None


STRIDED_CASES = [
    ("basic", [4, 5], [1, 0], [3, 5], [1, 2], {}),
    ("negative-stride", [6], [-1], [0], [-2], {}),
    ("negative-stride-to-start", [6], [4], [-7], [-1], {}),
    ("begin-end-mask", [3, 4, 5], [1, 1, 1], [2, 3, 4], [1, 1, 1],
     {"begin_mask": 5, "end_mask": 2}),
    ("shrink", [3, 4], [1, 2], [2, 3], [1, 1], {"shrink_axis_mask": 1}),
    ("shrink-negative-index", [3, 4], [0, -1], [0, 0], [1, 1], {"shrink_axis_mask": 2,
                                                              "end_mask": 1}),
    ("ellipsis", [2, 3, 4, 5], [0, 1], [0, 3], [1, 1], {"ellipsis_mask": 1, "end_mask": 1}),
    ("new-axis", [3, 4], [0, 0, 1], [0, 3, 3], [1, 1, 1], {"new_axis_mask": 1}),
    ("ellipsis-new-axis-shrink", [2, 3, 4], [0, 0, 2], [0, 0, 3], [1, 1, 1],
     {"ellipsis_mask": 1, "new_axis_mask": 2, "shrink_axis_mask": 4}),
    ("short-begin", [3, 4, 5], [1], [3], [1], {}),
    ("clamped", [5, 5], [-10, 2], [10, 100], [3, 1], {}),
    ("empty", [4], [3], [1], [1], {}),
    ("offset", [4, 6], [1, 2], [2, 3], [1, 1], {"offset": True}),
    ("offset-strided", [4, 6], [0, 5], [4, 3], [2, -2], {"offset": True}),
]


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "INT16"])
@pytest.mark.parametrize("shape,begin,end,strides,opts", [c[1:] for c in STRIDED_CASES],
                         ids=[f"strided_slice-{c[0]}" for c in STRIDED_CASES])
def test_strided_slice(dtype: str, shape: list[int], begin: list[int], end: list[int],
                       strides: list[int], opts: dict[str, Any]) -> None:
    out = strided_slice_reference(shape, begin, end, strides, opts)
    assert out is not None
    ins = [t(shape, dtype), const(begin), const(end), const(strides)]
    # TFLM: no ellipsis/new_axis, ignores offset, needs one index per dim.
    tflm = (not opts.get("ellipsis_mask") and not opts.get("new_axis_mask")
            and not opts.get("offset") and len(begin) == len(shape))
    check("STRIDED_SLICE", ins, [t(out, dtype)], opts, tflm=tflm)


def test_strided_slice_tflm_ignores_offset() -> None:
    """TFLM never sets StridedSliceParams.offset: end is a bound there, a size in TFLite."""
    ins = [S([6], F32), const([2]), const([5]), const([1])]
    model = op_model("STRIDED_SLICE", ins, [S([3], F32)], {"offset": True})
    assert_matches_tflm(model, [np.arange(6, dtype=np.float32)])
    ours = tflite_ref.Interpreter(model_content=model, emulate="tflm")
    ours.allocate_tensors()
    ours.set_tensor(ours.get_input_details()[0]["index"], np.arange(6, dtype=np.float32))
    ours.invoke()
    np.testing.assert_array_equal(ours.get_tensor(ours.get_output_details()[0]["index"]),
                                  [2, 3, 4])


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_strided_slice_random(data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, 4), label="rank")
    shape = data.draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank), label="shape")
    n = data.draw(st.integers(1, rank + 1), label="indices")
    ints = st.integers(-7, 7)
    begin = data.draw(st.lists(ints, min_size=n, max_size=n), label="begin")
    end = data.draw(st.lists(ints, min_size=n, max_size=n), label="end")
    strides = data.draw(st.lists(st.integers(-3, 3).filter(bool), min_size=n, max_size=n),
                        label="strides")
    mask = st.integers(0, 2**n - 1)
    opts = {"begin_mask": data.draw(mask, label="begin_mask"),
            "end_mask": data.draw(mask, label="end_mask"),
            "shrink_axis_mask": data.draw(mask, label="shrink_axis_mask"),
            "new_axis_mask": data.draw(mask, label="new_axis_mask") if n <= rank else 0}
    if data.draw(st.booleans(), label="use ellipsis"):
        opts["ellipsis_mask"] = 1 << data.draw(st.integers(0, n - 1), label="ellipsis at")
    out = strided_slice_reference(shape, begin, end, strides, opts)
    if out is None:  # TFLite leaves part of such an output unwritten: nothing to compare
        return
    dtype = data.draw(st.sampled_from(["FLOAT32", "INT8", "INT32"]), label="dtype")
    ins = [t(shape, dtype), const(begin), const(end), const(strides)]
    # TFLM: no ellipsis/new_axis, one index per dim; it treats empty multi-dim outputs as
    # dynamic tensors and refuses to allocate them.
    tflm = (not opts.get("ellipsis_mask") and not opts["new_axis_mask"] and n == rank
            and 0 not in out)
    check("STRIDED_SLICE", ins, [t(out, dtype)], opts, tflm=tflm)


def test_strided_slice_dynamic_begin() -> None:
    # TFLM requires constant begin/end/strides.
    ins = [S([5, 4], F32), S([2], "INT32"), const([4, 3]), const([1, 1])]
    check("STRIDED_SLICE", ins, [S([3, 2], F32)], None, values={1: [1, 1]}, tflm=False)


def test_strided_slice_unwritable_shrink_fails() -> None:
    """shrink_axis past the end: TFLite declares the axis but writes nothing (garbage out)."""
    ins = [S([3, 4], F32), const([5, 0]), const([6, 4]), const([1, 1])]
    model = op_model("STRIDED_SLICE", ins, [S([4], F32)], {"shrink_axis_mask": 1})
    assert "shrink_axis" in ours_fails(model, ModelValidationError)


SLICE_CASES = [
    ("basic", [4, 5, 6], [1, 0, 2], [2, 5, 3], "INT32"),
    ("size-minus-one", [4, 5], [1, 2], [-1, 2], "INT64"),
    ("whole", [3], [0], [3], "INT32"),
    ("empty", [3, 2], [3, 0], [0, 2], "INT32"),
]


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "UINT8", "INT16", "INT32", "BOOL"])
@pytest.mark.parametrize("shape,begin,size,idx", [c[1:] for c in SLICE_CASES],
                         ids=[f"slice-{c[0]}" for c in SLICE_CASES])
def test_slice(dtype: str, shape: list[int], begin: list[int], size: list[int], idx: str) -> None:
    out = [n - b if s == -1 else s for n, b, s in zip(shape, begin, size)]
    ins = [t(shape, dtype), const(begin, idx), const(size, idx)]
    # TFLM: no uint8/bool I/O in its slice.cc (bool) / Python wrapper; no empty tensors.
    tflm = dtype in ("FLOAT32", "INT8", "INT16", "INT32") and 0 not in out
    check("SLICE", ins, [t(out, dtype)], None, tflm=tflm)


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_slice_random(data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, 5), label="rank")
    shape = data.draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank), label="shape")
    begin = [data.draw(st.integers(0, n - 1)) for n in shape]
    size = [data.draw(st.integers(-1, n - b).filter(bool)) for n, b in zip(shape, begin)]
    out = [n - b if s == -1 else s for n, b, s in zip(shape, begin, size)]
    check("SLICE", [t(shape, "FLOAT32"), const(begin), const(size)], [t(out, "FLOAT32")], None)


def test_slice_dynamic_size() -> None:
    check("SLICE", [S([4, 5], "INT8", None, 0.1, 0), const([1, 1]), S([2], "INT32")],
          [S([2, 3], "INT8", None, 0.1, 0)], None, values={2: [2, 3]}, tflm=False)


def test_slice_out_of_range_fails() -> None:
    model = op_model("SLICE", [S([4], F32), const([2]), const([3])], [S([3], F32)])
    litert_fails(model)
    ours_fails(model, ModelValidationError)


# -- TILE, BROADCAST_TO, REVERSE_V2 ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "INT16", "INT32", "INT64", "BOOL"])
@pytest.mark.parametrize("multiples,mtype", [([2, 1, 3], "INT32"), ([1, 0, 2], "INT64")],
                         ids=["int32", "int64-zero"])
def test_tile(dtype: str, multiples: list[int], mtype: str) -> None:
    shape = [2, 3, 1]
    out = [d * m for d, m in zip(shape, multiples)]
    # TFLM has no TILE.
    check("TILE", [t(shape, dtype), const(multiples, mtype)], [t(out, dtype)], None, tflm=False)


@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_tile_and_broadcast_to_random(data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, 4), label="rank")
    shape = data.draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank), label="shape")
    mult = data.draw(st.lists(st.integers(0, 3), min_size=rank, max_size=rank), label="multiples")
    check("TILE", [t(shape, "INT8"), const(mult)], [t([d * m for d, m in zip(shape, mult)],
                                                      "INT8")], None, tflm=False)  # no TFLM TILE
    lead = data.draw(st.lists(st.integers(1, 3), max_size=2), label="new leading dims")
    target = lead + [d if d != 1 else data.draw(st.integers(1, 3)) for d in shape]
    check("BROADCAST_TO", [t(shape, "FLOAT32"), const(target)], [t(target, "FLOAT32")], None,
          tflm=len(target) <= 5)


def test_tile_dynamic_multiples() -> None:
    check("TILE", [S([2, 2], F32), S([2], "INT32")], [S([4, 6], F32)], None, values={1: [2, 3]},
          tflm=False)


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "INT16", "INT32"])
@pytest.mark.parametrize("in_shape,shape,stype", [
    ([3, 1], [2, 3, 4], "INT32"), ([1], [5], "INT64"), ([2, 1, 3], [2, 4, 3], "INT32")],
    ids=["rank-up", "int64", "middle"])
def test_broadcast_to(dtype: str, in_shape: list[int], shape: list[int], stype: str) -> None:
    check("BROADCAST_TO", [t(in_shape, dtype), const(shape, stype)], [t(shape, dtype)], None)


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "UINT8", "INT16", "INT32", "INT64"])
@pytest.mark.parametrize("axes", [[0], [1, 2], [-1], [2, 1]],
                         ids=lambda a: "ax" + "_".join(map(str, a)))
def test_reverse_v2(dtype: str, axes: list[int]) -> None:
    check("REVERSE_V2", [t([2, 3, 4], dtype), const(axes)], [t([2, 3, 4], dtype)], None,
          tflm=dtype != "UINT8")  # TFLM's Python wrapper has no uint8 inputs here


def test_reverse_v2_non_contiguous_axes_fail() -> None:
    model = op_model("REVERSE_V2", [S([2, 3, 4], F32), const([0, 2])], [S([2, 3, 4], F32)])
    litert_fails(model, [np.zeros([2, 3, 4], np.float32)])
    ours_fails(model, ModelValidationError)


# -- DEPTH_TO_SPACE, SPACE_TO_DEPTH, *_TO_*_ND ----------------------------------------------------
@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "UINT8", "INT32", "INT64"])
@pytest.mark.parametrize("bs", [2, 3])
def test_depth_to_space_and_back(dtype: str, bs: int) -> None:
    tflm = dtype in ("FLOAT32", "INT8")
    check("DEPTH_TO_SPACE", [t([2, 2, 3, 2 * bs * bs], dtype)], [t([2, 2 * bs, 3 * bs, 2], dtype)],
          {"block_size": bs}, tflm=tflm)
    check("SPACE_TO_DEPTH", [t([1, 2 * bs, 3 * bs, 3], dtype)], [t([1, 2, 3, 3 * bs * bs], dtype)],
          {"block_size": bs}, tflm=tflm)


STB_CASES = [
    ("4d", [1, 4, 4, 2], [2, 2], [[0, 0], [0, 0]]),
    ("4d-padded", [2, 3, 5, 1], [2, 3], [[1, 0], [2, 2]]),
    ("3d", [2, 5, 3], [3], [[1, 0]]),
]


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "UINT8", "INT16", "INT32", "INT64"])
@pytest.mark.parametrize("shape,block,pads", [c[1:] for c in STB_CASES],
                         ids=[f"stb-{c[0]}" for c in STB_CASES])
def test_space_to_batch_and_back(dtype: str, shape: list[int], block: list[int],
                                 pads: list[list[int]]) -> None:
    spatial = len(shape) - 2
    padded = [shape[d + 1] + sum(pads[d]) for d in range(spatial)]
    mid = [shape[0] * int(np.prod(block))] + [p // b for p, b in zip(padded, block)] + [shape[-1]]
    tflm = dtype in ("FLOAT32", "INT8")
    # int8 with a non-zero zero point: LiteRT pads with it, TFLM with 0 (see the kernel).
    x = q(shape, "INT8", 0.05, -7) if dtype == "INT8" else t(shape, dtype)
    y = q(mid, "INT8", 0.05, -7) if dtype == "INT8" else t(mid, dtype)
    check("SPACE_TO_BATCH_ND", [x, const(block), const(pads)], [y], None, tflm=tflm)
    check("BATCH_TO_SPACE_ND", [y, const(block), const(pads)], [x], None, tflm=tflm)


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_space_batch_random(data: st.DataObject) -> None:
    spatial = data.draw(st.integers(1, 2), label="spatial dims")
    block = data.draw(st.lists(st.integers(1, 3), min_size=spatial, max_size=spatial))
    pads, shape = [], [data.draw(st.integers(1, 2))]
    for b in block:
        lo, hi = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))
        least = -(-(lo + hi + 1) // b)  # blocks needed to keep at least one input element
        full = b * data.draw(st.integers(least, least + 2))
        pads.append([lo, hi])
        shape.append(full - lo - hi)
    shape.append(data.draw(st.integers(1, 3)))
    mid = [shape[0] * int(np.prod(block))]
    mid += [(n + sum(p)) // b for n, p, b in zip(shape[1:-1], pads, block)] + [shape[-1]]
    zp = data.draw(st.integers(-128, 127), label="zero point")
    x, y = q(shape, "INT8", 0.1, zp), q(mid, "INT8", 0.1, zp)
    check("SPACE_TO_BATCH_ND", [x, const(block), const(pads)], [y], None)
    check("BATCH_TO_SPACE_ND", [y, const(block), const(pads)], [x], None)


def test_space_to_batch_dynamic_paddings() -> None:
    check("SPACE_TO_BATCH_ND", [S([1, 4, 4, 1], F32), const([2, 2]), S([2, 2], "INT32")],
          [S([4, 3, 2, 1], F32)], None, values={2: [[1, 1], [0, 0]]}, tflm=False)


# -- SHAPE, FILL, ZEROS_LIKE, RANGE, ONE_HOT ------------------------------------------------------
@pytest.mark.parametrize("out_type", ["INT32", "INT64"])
@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8"])
def test_shape(out_type: str, dtype: str) -> None:
    # TFLM's shape.cc writes int32 only.
    check("SHAPE", [t([2, 3, 5], dtype)], [S([3], out_type)], {"out_type": out_type},
          tflm=out_type == "INT32")


@pytest.mark.parametrize("dtype,value", [("FLOAT32", np.float32(1.5)), ("INT32", np.int32(-4)),
                                         ("INT64", np.int64(7)), ("BOOL", np.bool_(True))])
def test_fill(dtype: str, value: Any) -> None:
    check("FILL", [const([2, 3]), const(value, dtype)], [S([2, 3], dtype)], None,
          tflm=dtype in ("FLOAT32", "INT32"))  # TFLM's fill.cc: float32, int32, int8


def test_fill_int8_keeps_quantization_and_dynamic_dims() -> None:
    value = S([], "INT8", np.array(-5, np.int8), 0.1, 3)
    check("FILL", [S([3], "INT64"), value], [q([2, 1, 4], "INT8", 0.1, 3)], None,
          values={0: [2, 1, 4]}, tflm=False)  # TFLM: dims must be constant


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT32", "INT64"])
def test_zeros_like(dtype: str) -> None:
    check("ZEROS_LIKE", [t([3, 2], dtype)], [t([3, 2], dtype)], None)


def test_zeros_like_int8_is_tflm_only() -> None:
    model = op_model("ZEROS_LIKE", [q([4], "INT8")], [q([4], "INT8")])
    assert_matches_tflm(model, [np.arange(4, dtype=np.int8)])
    ours_fails(model, UnsupportedOpError)


@pytest.mark.parametrize("dtype,start,limit,delta", [
    ("INT32", 3, 18, 4), ("INT32", 10, -3, -3), ("INT64", 0, 5, 1), ("FLOAT32", 0.1, 2.3, 0.3),
    ("FLOAT32", 5.0, -1.0, -0.7)], ids=["int32", "int32-down", "int64", "float", "float-down"])
def test_range(dtype: str, start: Any, limit: Any, delta: Any) -> None:
    dt = NP[dtype]
    n = len(np.arange(dt(start), dt(limit), dt(delta)))
    # Constant operands (LiteRT computes it in Prepare) and computed ones (dynamic output).
    # TFLM has no RANGE.
    check("RANGE", [const(dt(start), dtype), const(dt(limit), dtype), const(dt(delta), dtype)],
          [S([n], dtype)], None, tflm=False)
    check("RANGE", [S([], dtype), const(dt(limit), dtype), const(dt(delta), dtype)],
          [S([n], dtype)], None, values={0: dt(start)}, tflm=False)


def test_range_that_never_arrives_fails_at_invoke() -> None:
    model = op_model("RANGE", [S([], "INT32"), const(np.int32(5)), const(np.int32(1))],
                     [S([1], "INT32")])
    litert_fails(model, [np.array(9, np.int32)])
    assert "never arrives" in ours_fails(model, KernelRuntimeError, [np.array(9, np.int32)])


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT32", "INT64", "INT8", "UINT8", "BOOL"])
@pytest.mark.parametrize("axis,itype", [(-1, "INT32"), (0, "INT64"), (1, "INT32")])
def test_one_hot(dtype: str, axis: int, itype: str) -> None:
    indices = S([2, 3], itype)
    depth = 4
    shape = [2, 3]
    a = 2 if axis == -1 else axis
    out = shape[:a] + [depth] + shape[a:]
    on, off = (np.array(v, NP[dtype]) for v in ((True, False) if dtype == "BOOL" else (3, -1)
                                                   if dtype not in ("UINT8",) else (9, 1)))
    ins = [indices, const(np.int32(depth)), const(on, dtype), const(off, dtype)]
    # TFLM has no ONE_HOT. Indices include out-of-range values (-1, 4): rows of off_value.
    check("ONE_HOT", ins, [S(out, dtype)], {"axis": axis}, tflm=False,
          values={0: [[0, 3, -1], [4, 1, 2]]})
