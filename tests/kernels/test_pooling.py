"""Pooling kernels (tflite_ref/kernels/pooling.py) against LiteRT and TFLite Micro.

Every case builds a one-operator model with :mod:`tflite_ref.model.writer`, runs it in tflite_ref
and in LiteRT's reference kernels (``BUILTIN_REF``; every tensor compared, integers exactly) and,
where TFLite Micro has the operator and dtype, in TFLM (``emulate="tflm"``).  TFLM does not
compute output shapes for pooling, so the models carry the right ones.

What the runtimes lack: TFLM has no uint8 pooling; L2_POOL_2D is float32 only in both runtimes.

How to add a case: append a :class:`Case` to ``CASES``; geometry that varies continuously
(sizes, strides, filters, padding, quantization) belongs in the hypothesis test below.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pytest
from harness import assert_matches_litert, random_array, run_tflm
from hypothesis import given, settings
from hypothesis import strategies as st
from opmodels import S, check_model, op_model

import tflite_ref
from tflite_ref.errors import ModelValidationError, UnsupportedOpError
from tflite_ref.kernels.common import compute_out_size, compute_padding_with_offset

QParams = tuple[float, int]
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def out_size(size: int, filt: int, stride: int, padding: str) -> int:
    return (size + stride - 1) // stride if padding == "SAME" else (size - filt + stride) // stride


def build(op: str, shape: tuple[int, int, int, int], dtype: str, filt: tuple[int, int],
          stride: tuple[int, int], padding: str, activation: str = "NONE",
          qin: QParams | None = None, qout: QParams | None = None) -> bytes:
    n, h, w, c = shape
    out_shape = (n, out_size(h, filt[0], stride[0], padding),
                 out_size(w, filt[1], stride[1], padding), c)
    return op_model(op, [S(shape, dtype, None, *(qin or ()))],
                    [S(out_shape, dtype, None, *(qout or qin or ()))],
                    {"padding": padding, "stride_h": stride[0], "stride_w": stride[1],
                     "filter_height": filt[0], "filter_width": filt[1],
                     "fused_activation_function": activation})


def check(model: bytes, x: np.ndarray, tflm: bool) -> None:
    check_model(model, [x], tflm=tflm)


@dataclass(frozen=True)
class Case:
    op: str
    dtype: str
    shape: tuple[int, int, int, int]
    filt: tuple[int, int]
    stride: tuple[int, int]
    padding: str
    activation: str = "NONE"
    q: QParams | None = None
    tflm: bool = True

    @property
    def id(self) -> str:
        act = "" if self.activation == "NONE" else "-" + self.activation.lower()
        return (f"{self.op.lower()}-{self.dtype.lower()}-{'x'.join(map(str, self.shape))}"
                f"-f{self.filt[0]}x{self.filt[1]}-s{self.stride[0]}x{self.stride[1]}"
                f"-{self.padding.lower()}{act}")


Q = {"FLOAT32": None, "INT8": (0.05, 3), "INT16": (0.001, 0), "UINT8": (0.05, 130)}
GEOMETRIES = [  # (shape, filter, stride, padding)
    ((1, 8, 8, 3), (2, 2), (2, 2), "VALID"),
    ((1, 8, 8, 3), (3, 3), (2, 2), "SAME"),
    ((2, 7, 9, 4), (3, 2), (1, 2), "SAME"),
    ((1, 7, 7, 5), (7, 7), (1, 1), "VALID"),  # global pooling
    ((1, 5, 6, 2), (4, 4), (3, 3), "SAME"),  # windows hanging over both edges
]
CASES = [
    *[Case(op, dt, shape, f, s, p, q=Q[dt], tflm=dt != "UINT8")
      for op in ("AVERAGE_POOL_2D", "MAX_POOL_2D")
      for dt in ("FLOAT32", "INT8", "INT16", "UINT8")
      for shape, f, s, p in GEOMETRIES],
    *[Case(op, dt, (1, 9, 9, 3), (3, 3), (2, 2), "SAME", act, Q[dt], tflm=dt != "UINT8")
      for op in ("AVERAGE_POOL_2D", "MAX_POOL_2D")
      for dt in ("FLOAT32", "INT8", "UINT8")
      for act in ACTIVATIONS[1:]],
    *[Case("L2_POOL_2D", "FLOAT32", shape, f, s, p) for shape, f, s, p in GEOMETRIES],
    Case("L2_POOL_2D", "FLOAT32", (1, 9, 9, 3), (3, 3), (2, 2), "SAME", "RELU6"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case) -> None:
    model = build(case.op, case.shape, case.dtype, case.filt, case.stride, case.padding,
                  case.activation, case.q)
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    check(model, random_array(case.shape, np.dtype(case.dtype.lower()), rng), case.tflm)


@given(data=st.data())
@settings(max_examples=200, deadline=None)
def test_pooling_geometry_and_quantization(data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(["AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"]))
    dtype = "FLOAT32" if op == "L2_POOL_2D" else data.draw(
        st.sampled_from(["FLOAT32", "INT8", "INT16", "UINT8"]))
    padding = data.draw(st.sampled_from(["SAME", "VALID"]))
    n, c = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 4))
    filt = (data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    lo = (1, 1) if padding == "SAME" else filt  # VALID needs the window to fit
    h, w = data.draw(st.integers(lo[0], 12)), data.draw(st.integers(lo[1], 12))
    activation = data.draw(st.sampled_from(ACTIVATIONS))
    q = None
    if dtype != "FLOAT32":
        scale = float(np.float32(2.0 ** data.draw(st.floats(-12, 0))))
        zp = {"INT8": data.draw(st.integers(-128, 127)), "INT16": 0,
              "UINT8": data.draw(st.integers(0, 255))}[dtype]
        q = (scale, zp)
    model = build(op, (n, h, w, c), dtype, filt, stride, padding, activation, q)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    check(model, random_array((n, h, w, c), np.dtype(dtype.lower()), rng), tflm=dtype != "UINT8")


def test_int8_average_rounds_half_away_from_zero() -> None:
    """Sums of 2 taps ending in .5 round away from zero on both sides."""
    model = build("AVERAGE_POOL_2D", (1, 1, 8, 1), "INT8", (1, 2), (1, 2), "VALID",
                  qin=(0.1, 0))
    x = np.array([1, 2, -1, -2, 3, 4, -128, -127], np.int8).reshape(1, 1, 8, 1)
    it = tflite_ref.Interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(0, x)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(1).ravel(), [2, -2, 4, -128])
    check(model, x, tflm=True)


def test_tflm_requires_matching_quantization() -> None:
    """LiteRT only DCHECKs equal input/output quantization (compiled out in release builds) and
    pools the raw values; TFLM's PoolingPrepare refuses the model."""
    model = build("AVERAGE_POOL_2D", (1, 4, 4, 2), "INT8", (2, 2), (2, 2), "VALID",
                  qin=(0.05, 3), qout=(0.1, 3))
    x = random_array((1, 4, 4, 2), np.dtype(np.int8), np.random.default_rng(0))
    assert assert_matches_litert(model, [x]) >= 1
    with pytest.raises(ModelValidationError, match="quantization must match"):
        tflite_ref.Interpreter(model_content=model, emulate="tflm").allocate_tensors()
    with pytest.raises(RuntimeError):
        run_tflm(model, [x])


def test_l2_pool_is_float_only() -> None:
    model = build("L2_POOL_2D", (1, 4, 4, 2), "INT8", (2, 2), (2, 2), "VALID", qin=(0.05, 3))
    for emulate in ("tflite", "tflm"):
        with pytest.raises(UnsupportedOpError, match="FLOAT32"):
            tflite_ref.Interpreter(model_content=model, emulate=emulate).allocate_tensors()


def test_uint8_pooling_is_not_in_tflm() -> None:
    model = build("MAX_POOL_2D", (1, 4, 4, 2), "UINT8", (2, 2), (2, 2), "VALID", qin=(0.05, 3))
    with pytest.raises(UnsupportedOpError):
        tflite_ref.Interpreter(model_content=model, emulate="tflm").allocate_tensors()


def test_valid_window_larger_than_input_is_rejected() -> None:
    model = build("MAX_POOL_2D", (1, 2, 8, 1), "FLOAT32", (3, 3), (1, 1), "VALID")
    with pytest.raises(ModelValidationError, match="no output"):
        tflite_ref.Interpreter(model_content=model).allocate_tensors()


def test_resize_input_replans_output_shape() -> None:
    model = build("AVERAGE_POOL_2D", (1, 8, 8, 3), "FLOAT32", (3, 3), (2, 2), "SAME")
    it = tflite_ref.Interpreter(model_content=model)
    it.resize_tensor_input(0, [2, 11, 5, 3])
    it.allocate_tensors()
    it.set_tensor(0, np.ones((2, 11, 5, 3), np.float32))
    it.invoke()
    out = it.get_tensor(it.get_output_details()[0]["index"])
    assert out.shape == (2, 6, 3, 3)
    np.testing.assert_array_equal(out, 1.0)  # padding taps are not counted


def test_padding_helpers_match_padding_h() -> None:
    """kernels.common's ComputeOutSize / ComputePaddingWithOffset against a line-by-line
    transcription of tflite/kernels/padding.h (C's truncating division), dilation included."""
    def c_div(a: int, b: int) -> int:
        return abs(a) // abs(b) * (1 if (a >= 0) == (b > 0) else -1)

    for padding in ("SAME", "VALID", "OTHER"):
        for image in range(0, 13):
            for filt in range(1, 7):
                for stride in range(0, 5):
                    for dilation in (1, 2, 3):
                        eff = (filt - 1) * dilation + 1
                        want = 0 if stride == 0 or padding == "OTHER" else c_div(
                            image + stride - (1 if padding == "SAME" else eff), stride)
                        assert compute_out_size(padding, image, filt, stride, dilation) == want
                        total = max((want - 1) * stride + eff - image, 0)
                        assert compute_padding_with_offset(stride, dilation, image, filt, want) \
                            == (total // 2, total % 2)


def test_activation_range_error_names_the_operator() -> None:
    """6 / 1e-12 does not fit int32 (quant.calculate_activation_range_quantized); the error
    names the pooling operator."""
    model = build("AVERAGE_POOL_2D", (1, 4, 4, 1), "INT8", (2, 2), (2, 2), "VALID", "RELU6",
                  qin=(1e-12, 0))
    with pytest.raises(ModelValidationError, match="does not fit int32") as info:
        tflite_ref.Interpreter(model_content=model).allocate_tensors()
    assert str(info.value).startswith("subgraph 0, operator 0 (AVERAGE_POOL_2D): ")
