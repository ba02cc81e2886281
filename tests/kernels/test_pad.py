"""PAD, PADV2 and MIRROR_PAD (tflite_ref/kernels/pad.py) against LiteRT BUILTIN_REF and TFLM.

TFLM's PAD takes float32/int8/int16/int32 with constant int32 paddings, MIRROR_PAD float32/int8;
other combinations are compared with LiteRT only.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import assert_matches_tflm, random_array
from hypothesis import given, settings
from hypothesis import strategies as st
from opmodels import S, check, const, litert_fails, op_model, ours_fails, q, t

from tflite_ref.errors import ModelValidationError

TFLM_PAD = {"FLOAT32", "INT8", "INT16", "INT32"}
NP = {"FLOAT32": np.float32, "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16,
      "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_}


def padded(shape: list[int], pads: list[list[int]]) -> list[int]:
    return [n + lo + hi for n, (lo, hi) in zip(shape, pads)]


PAD_CASES = [
    ("image-style", [1, 3, 4, 2], [[0, 0], [1, 2], [2, 0], [0, 0]]),  # LiteRT's PadImageStyle
    ("generic-4d", [2, 2, 3, 2], [[1, 0], [0, 1], [1, 1], [0, 2]]),
    ("1d", [5], [[3, 2]]),
    ("5d", [1, 2, 1, 2, 2], [[0, 1], [1, 0], [1, 1], [0, 0], [2, 0]]),
]


@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "UINT8", "INT16", "INT32", "INT64", "BOOL"])
@pytest.mark.parametrize("shape,pads", [c[1:] for c in PAD_CASES],
                         ids=[f"pad-{c[0]}" for c in PAD_CASES])
def test_pad(dtype: str, shape: list[int], pads: list[list[int]]) -> None:
    # int8 zero point -5 and uint8 128: LiteRT and TFLM pad quantized tensors with it.
    x = q(shape, dtype, 0.05, -5) if dtype == "INT8" else t(shape, dtype)
    y = q(padded(shape, pads), dtype, 0.05, -5) if dtype == "INT8" else t(padded(shape, pads),
                                                                           dtype)
    check("PAD", [x, const(pads)], [y], None, tflm=dtype in TFLM_PAD)


@pytest.mark.parametrize("ptype", ["INT64", "INT8", "INT16"])
def test_pad_paddings_types(ptype: str) -> None:
    # TFLM reads int32 paddings only.
    pads = [[1, 0], [2, 1]]
    check("PAD", [q([2, 3], "INT8", 0.1, 4), const(pads, ptype)], [q([3, 6], "INT8", 0.1, 4)],
          None, tflm=False)


def test_pad_int8_without_quantization_pads_zero() -> None:
    check("PAD", [S([2, 2], "INT8"), const([[1, 1], [0, 1]])], [S([4, 3], "INT8")], None)


def test_pad_int16_zero_point_differs_between_runtimes() -> None:
    """int16 with zero point 3: LiteRT pads with it (EvalInt), TFLM with 0."""
    check("PAD", [q([2, 2], "INT16", 0.01, 3), const([[1, 0], [0, 1]])],
          [q([3, 3], "INT16", 0.01, 3)], None, tflm=True)


@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_pad_random(data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, 5), label="rank")
    shape = data.draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank), label="shape")
    pads = data.draw(st.lists(st.lists(st.integers(0, 3), min_size=2, max_size=2),
                              min_size=rank, max_size=rank), label="paddings")
    dtype = data.draw(st.sampled_from(["FLOAT32", "INT8", "UINT8", "INT16"]), label="dtype")
    zp = data.draw(st.integers(-128, 127) if dtype == "INT8" else st.integers(0, 255),
                   label="zero point")
    if dtype in ("INT8", "UINT8"):
        x, y = q(shape, dtype, 0.02, zp), q(padded(shape, pads), dtype, 0.02, zp)
    else:
        x, y = t(shape, dtype), t(padded(shape, pads), dtype)
    check("PAD", [x, const(pads)], [y], None, tflm=dtype in TFLM_PAD)


def test_pad_dynamic_paddings() -> None:
    # TFLM requires constant paddings.
    check("PAD", [q([2, 3], "INT8", 0.1, -9), S([2, 2], "INT32")], [q([3, 5], "INT8", 0.1, -9)],
          None, values={1: [[0, 1], [2, 0]]}, tflm=False)


def test_pad_negative_paddings_fail() -> None:
    model = op_model("PAD", [S([3], "FLOAT32"), const([[-1, 0]])], [S([2], "FLOAT32")])
    litert_fails(model)
    ours_fails(model, ModelValidationError)


# -- PADV2 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,value", [
    ("FLOAT32", np.float32(-2.5)), ("INT8", np.int8(17)), ("UINT8", np.uint8(3)),
    ("INT16", np.int16(-300)), ("INT32", np.int32(12345)), ("INT64", np.int64(-7)),
    ("BOOL", np.bool_(True))])
def test_padv2(dtype: str, value: np.generic) -> None:
    pads = [[1, 1], [0, 2]]
    if dtype in ("INT8", "UINT8", "INT16"):
        x, y = q([2, 3], dtype, 0.05, 0), q(padded([2, 3], pads), dtype, 0.05, 0)
        c = S([], dtype, np.array(value), 0.05, 0)  # must share the output's quantization
    else:
        x, y, c = t([2, 3], dtype), t(padded([2, 3], pads), dtype), S([], dtype, np.array(value))
    check("PADV2", [x, const(pads), c], [y], None, tflm=dtype in TFLM_PAD)


def test_padv2_without_constant_is_pad() -> None:
    check("PADV2", [q([2, 2], "UINT8", 0.1, 77), const([[1, 0], [1, 1]]), None],
          [q([3, 4], "UINT8", 0.1, 77)], None, tflm=False)  # TFLM: no uint8 pad


def test_padv2_computed_constant_value() -> None:
    check("PADV2", [S([2, 2], "FLOAT32"), const([[1, 0], [1, 1]]), S([], "FLOAT32")],
          [S([3, 4], "FLOAT32")], None, values={2: np.float32(9.5)})


def test_padv2_constant_with_other_quantization_fails() -> None:
    c = S([], "INT8", np.array(3, np.int8), 0.07, 0)
    model = op_model("PADV2", [q([2], "INT8", 0.05, 0), const([[1, 1]]), c],
                     [q([4], "INT8", 0.05, 0)])
    litert_fails(model, [np.zeros(2, np.int8)])
    ours_fails(model, ModelValidationError)


# -- MIRROR_PAD -----------------------------------------------------------------------------------
MIRROR_CASES = [
    ("2d", [3, 4], [[1, 2], [3, 0]]),
    ("4d", [1, 4, 3, 2], [[0, 0], [2, 3], [1, 1], [0, 0]]),
    ("1d-max", [4], [[3, 3]]),  # REFLECT's limit is dim - 1
]


@pytest.mark.parametrize("mode", ["REFLECT", "SYMMETRIC"])
@pytest.mark.parametrize("dtype", ["FLOAT32", "INT8", "UINT8", "INT16", "INT32", "INT64"])
@pytest.mark.parametrize("shape,pads", [c[1:] for c in MIRROR_CASES],
                         ids=[f"mirror_pad-{c[0]}" for c in MIRROR_CASES])
def test_mirror_pad(mode: str, dtype: str, shape: list[int], pads: list[list[int]]) -> None:
    check("MIRROR_PAD", [t(shape, dtype), const(pads)], [t(padded(shape, pads), dtype)],
          {"mode": mode}, tflm=dtype in ("FLOAT32", "INT8"))


@given(data=st.data())
@settings(max_examples=30, deadline=None)
def test_mirror_pad_random(data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, 4), label="rank")
    shape = data.draw(st.lists(st.integers(2, 5), min_size=rank, max_size=rank), label="shape")
    mode = data.draw(st.sampled_from(["REFLECT", "SYMMETRIC"]), label="mode")
    off = 1 if mode == "REFLECT" else 0
    pads = [[data.draw(st.integers(0, n - off)), data.draw(st.integers(0, n - off))]
            for n in shape]
    ptype = data.draw(st.sampled_from(["INT32", "INT64"]), label="paddings type")
    check("MIRROR_PAD", [t(shape, "INT8"), const(pads, ptype)], [t(padded(shape, pads), "INT8")],
          {"mode": mode})


def test_mirror_pad_dynamic_paddings() -> None:
    model = op_model("MIRROR_PAD", [S([3, 3], "FLOAT32"), S([2, 2], "INT32")],
                     [S([5, 4], "FLOAT32")], {"mode": "SYMMETRIC"})
    x = random_array([3, 3], np.float32, np.random.default_rng(0))
    pads = np.array([[1, 1], [0, 1]], np.int32)
    check("MIRROR_PAD", [S([3, 3], "FLOAT32"), S([2, 2], "INT32")], [S([5, 4], "FLOAT32")],
          {"mode": "SYMMETRIC"}, values={1: pads}, tflm=False)
    # TFLM reads the paddings at invoke too; its output shape is the model's.
    assert_matches_tflm(model, [x, pads])


def test_mirror_pad_too_large_fails() -> None:
    model = op_model("MIRROR_PAD", [S([3], "FLOAT32"), const([[3, 0]])], [S([6], "FLOAT32")],
                     {"mode": "REFLECT"})
    litert_fails(model)
    assert "exceed" in ours_fails(model, ModelValidationError)
