"""RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR (tflite_ref/kernels/resize.py) against LiteRT
BUILTIN_REF and TFLM.

int8/int16 bilinear results are exact integers from the 10-bit algorithm; uint8 goes through the
float template (still an exact integer result); float32 is compared within 1e-5. TFLM has
bilinear for float32/int8 and nearest neighbour for float32/int8/int16, with a constant size.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opmodels import S, check, const, litert_fails, op_model, ours_fails, q, t

from tflite_ref.errors import ModelValidationError

FLAGS = [(False, False), (True, False), (False, True)]
FLAG_IDS = ["plain", "align_corners", "half_pixel"]

RESIZE_CASES = [
    ("up-2x", [1, 4, 4, 3], [8, 8]),
    ("up-odd", [2, 3, 5, 2], [7, 11]),
    ("down", [1, 9, 7, 1], [4, 3]),
    ("to-1x1", [1, 5, 6, 2], [1, 1]),
    ("mixed", [1, 1, 8, 2], [5, 3]),
]


def wide(shape: list[int], dtype: str) -> S:
    """Quantized tensors use the full integer range so rounding and extremes are exercised."""
    if dtype == "INT16":
        return q(shape, dtype, 0.0005, 0)
    return t(shape, dtype)


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "UINT8", "INT16"])
@pytest.mark.parametrize("align,half", FLAGS, ids=FLAG_IDS)
@pytest.mark.parametrize("shape,size", [c[1:] for c in RESIZE_CASES],
                         ids=[f"resize_bilinear-{c[0]}" for c in RESIZE_CASES])
def test_resize_bilinear(dtype: str, align: bool, half: bool, shape: list[int],
                         size: list[int]) -> None:
    out = [shape[0], *size, shape[3]]
    check("RESIZE_BILINEAR", [wide(shape, dtype), const(size)], [wide(out, dtype)],
          {"align_corners": align, "half_pixel_centers": half},
          tflm=dtype in ("FLOAT32", "INT8"))


@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_resize_bilinear_random(data: st.DataObject) -> None:
    shape = [data.draw(st.integers(1, 2)), data.draw(st.integers(1, 9)),
             data.draw(st.integers(1, 9)), data.draw(st.integers(1, 3))]
    size = [data.draw(st.integers(1, 17)), data.draw(st.integers(1, 17))]
    align, half = data.draw(st.sampled_from(FLAGS), label="flags")
    dtype = data.draw(st.sampled_from(["FLOAT32", "INT8", "UINT8", "INT16"]), label="dtype")
    out = [shape[0], *size, shape[3]]
    check("RESIZE_BILINEAR", [wide(shape, dtype), const(size)], [wide(out, dtype)],
          {"align_corners": align, "half_pixel_centers": half},
          tflm=dtype in ("FLOAT32", "INT8"), seed=data.draw(st.integers(0, 99)))


def test_resize_bilinear_dynamic_size() -> None:
    # TFLM requires a constant size.
    check("RESIZE_BILINEAR", [t([1, 3, 4, 2], "INT8"), S([2], "INT32")],
          [t([1, 5, 9, 2], "INT8")], {"half_pixel_centers": True}, values={1: [5, 9]},
          tflm=False)


def test_resize_bilinear_both_flags_fail() -> None:
    model = op_model("RESIZE_BILINEAR", [S([1, 2, 2, 1], "FLOAT32"), const([4, 4])],
                     [S([1, 4, 4, 1], "FLOAT32")], {"align_corners": True,
                                                     "half_pixel_centers": True})
    litert_fails(model)
    ours_fails(model, ModelValidationError)
    ours_fails(model, ModelValidationError, emulate="tflm")


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "UINT8", "INT16", "INT32"])
@pytest.mark.parametrize("align,half", FLAGS + [(True, True)], ids=FLAG_IDS + ["both"])
@pytest.mark.parametrize("shape,size", [c[1:] for c in RESIZE_CASES],
                         ids=[f"resize_nearest_neighbor-{c[0]}" for c in RESIZE_CASES])
def test_resize_nearest_neighbor(dtype: str, align: bool, half: bool, shape: list[int],
                                 size: list[int]) -> None:
    out = [shape[0], *size, shape[3]]
    check("RESIZE_NEAREST_NEIGHBOR", [t(shape, dtype), const(size)], [t(out, dtype)],
          {"align_corners": align, "half_pixel_centers": half},
          tflm=dtype in ("FLOAT32", "INT8", "INT16"))


@given(data=st.data())
@settings(max_examples=30, deadline=None)
def test_resize_nearest_neighbor_random(data: st.DataObject) -> None:
    shape = [1, data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12)), 2]
    size = [data.draw(st.integers(1, 25)), data.draw(st.integers(1, 25))]
    align = data.draw(st.booleans(), label="align_corners")
    half = data.draw(st.booleans(), label="half_pixel_centers")
    out = [1, *size, 2]
    check("RESIZE_NEAREST_NEIGHBOR", [t(shape, "INT8"), const(size)], [t(out, "INT8")],
          {"align_corners": align, "half_pixel_centers": half})


def test_resize_nearest_neighbor_dynamic_size() -> None:
    check("RESIZE_NEAREST_NEIGHBOR", [t([2, 3, 3, 1], "FLOAT32"), S([2], "INT32")],
          [t([2, 7, 2, 1], "FLOAT32")], {"align_corners": True}, values={1: [7, 2]}, tflm=False)


def test_resize_int8_uses_integer_rounding_not_the_float_template() -> None:
    """The float template would truncate (int)(v + 0.5) toward zero: wrong for negatives."""
    x = np.array([-3, -2], np.int8).reshape(1, 1, 2, 1)
    model = op_model("RESIZE_BILINEAR", [q([1, 1, 2, 1], "INT8", 0.1, 0), const([1, 4])],
                     [q([1, 1, 4, 1], "INT8", 0.1, 0)])
    check("RESIZE_BILINEAR", [q([1, 1, 2, 1], "INT8", 0.1, 0), const([1, 4])],
          [q([1, 1, 4, 1], "INT8", 0.1, 0)], None, values={0: x})
    import tflite_ref

    it = tflite_ref.Interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    # src x = 0, 0.5, 1, 1 (scale 1/2): -3, -2.5 -> -3 (half away from zero), -2, -2
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]).ravel(),
                                  [-3, -3, -2, -2])
