"""Hybrid ("dynamic-range") kernels: float activations, int8 weights, float output.

FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D and BATCH_MATMUL quantize their float input on the
fly and EMBEDDING_LOOKUP dequantizes the rows it copies (tflite_ref/kernels/conv.py's hybrid
section, fully_connected.py, embedding.py).  Each case is a one-operator model built with
tflite_ref's writer and compared with LiteRT ``BUILTIN_REF`` on every tensor, **exactly** (float
outputs included: the emulation reproduces LiteRT's float32 operation order, and a fused TANH is
Eigen's tanh, ``ApplyTanhToVector``, reproduced bit for bit).  LiteRT's own temporaries --
the quantized input, scaling factors, offsets and row sums -- are compared with our quantizers
directly.

TFLite Micro refuses hybrid FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D / BATCH_MATMUL at
Prepare, so those are compared with LiteRT only; :func:`test_tflm_refuses_hybrid_layers` checks
that TFLM really refuses them and that ``emulate="tflm"`` refuses them too.  TFLM does run the
int8 -> float32 EMBEDDING_LOOKUP, which is also compared with TFLM (uint8/int4 tables and
float16 outputs are LiteRT-only: TFLM's Prepare takes float32 and int8 tables only).

The fixtures in ``tests/models/hybrid/`` come from the TensorFlow converter (dev-only script
``make_fixtures.py`` there); the two mlperf_tiny models are the corpus' hybrid models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness import assert_matches_litert, assert_matches_tflm, run_litert, run_tflm
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fully_connected import ours

import tflite_ref
from tflite_ref.errors import (
    KernelRuntimeError,
    ModelValidationError,
    UnsupportedOpError,
)
from tflite_ref.kernels.conv import (
    asymmetric_quantize_floats,
    sse_row_sums,
    symmetric_quantize_floats,
)
from tflite_ref.kernels.registry import OpContext, key_dtype, lookup
from tflite_ref.model.writer import ModelBuilder
from tflite_ref.quant.fixedpoint import round_away

F32 = np.float32
FIXTURES = Path(__file__).resolve().parents[1] / "models" / "hybrid"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "models"
NEAR_HALF = float(np.nextafter(F32(0.5), F32(0)))  # 0.49999997f


def check(model: bytes, inputs: list[np.ndarray]) -> int:
    """Every tensor vs LiteRT REF, exactly."""
    compared = assert_matches_litert(model, inputs, rtol=0.0, atol=0.0)
    assert compared >= 1
    return compared


# -- inputs --------------------------------------------------------------------------------------
def float_rows(kind: str, shape: tuple[int, ...], rng: np.random.Generator,
               asymmetric: bool) -> np.ndarray:
    """Float inputs; ``kind`` picks what the on-the-fly quantizer sees.

    * ``normal``: Gaussian, random magnitude; ``negative``: all <= 0 (int8 -128 after asymmetric
      quantization, and every product's sign flipped by the SSE kernel);
    * ``ties``: each row of the last axis holds its range ends (so the quantizer's inverse scale
      is exactly 1: symmetric max |x| = 127; asymmetric [-100, 155], offset -28) and values
      ``k + 1/2`` and ±0.49999997f that land on or next to rounding ties, in the vector body
      and in the tail;
    * ``zeros``: all zero (the scaling factor becomes 1).
    """
    if kind == "zeros":
        return np.zeros(shape, F32)
    if kind == "normal":
        return (rng.normal(0, 1, shape) * rng.uniform(0.05, 20)).astype(F32)
    if kind == "negative":
        return -np.abs(rng.normal(0, 3, shape)).astype(F32)
    assert kind == "ties"
    lo, hi = (-100, 155) if asymmetric else (-126, 126)
    halves = rng.integers(lo, hi, shape) + 0.5
    near = rng.choice([NEAR_HALF, -NEAR_HALF, 1.5, -2.5, 0.5], shape)
    x = np.where(rng.random(shape) < 0.5, halves, near).astype(F32)
    rows = x.reshape(-1, shape[-1])
    if shape[-1] >= 2:
        rows[:, 0], rows[:, 1] = (-100, 155) if asymmetric else (127, -3)
    else:
        rows[:, 0] = 155 if asymmetric else 127
    return rows.reshape(shape)


def int8_weights(kind: str, shape: tuple[int, ...], rng: np.random.Generator,
                 low: int = -127, high: int = 127) -> np.ndarray:
    """``random`` in [low, high]; ``minus128``: some -128 (what the SSE product gets wrong);
    ``saturated``: mostly 127 (row sums that wrap SseReductionSumVector's int16 lanes)."""
    w = rng.integers(low, high, shape, endpoint=True)
    if kind == "minus128":
        w = np.where(rng.random(shape) < 0.3, -128 if high == 127 else low, w)
    elif kind == "saturated":
        w = np.where(rng.random(shape) < 0.8, 127, w)
    return w.astype(np.int8)


def weight_tensor(sg: Any, shape: tuple[int, ...], wtype: str, data: np.ndarray,
                  scales: np.ndarray, qdim: int) -> Any:
    if wtype == "UINT8":
        data = data.view(np.uint8)  # LiteRT reads the bytes as int8 anyway
    return sg.tensor("weights", shape, wtype, data=data, scale=[float(s) for s in scales],
                     zero_point=[0] * len(scales), quantized_dimension=qdim)


# -- the quantizers vs LiteRT's temporaries ------------------------------------------------------
def _fc_temporaries(x: np.ndarray, w: np.ndarray, asymmetric: bool) -> dict[str, np.ndarray]:
    """LiteRT's FULLY_CONNECTED hybrid temporaries (fully_connected.cc PrepareImpl order)."""
    mb = ModelBuilder()
    sg = mb.subgraph()
    xt = sg.tensor("x", x.shape, "FLOAT32")
    wt = sg.tensor("w", w.shape, "INT8", data=w, scale=0.01)
    yt = sg.tensor("y", (x.shape[0], w.shape[0]), "FLOAT32")
    sg.operator("FULLY_CONNECTED", [xt, wt, None], [yt],
                {"asymmetric_quantize_inputs": asymmetric})
    sg.inputs, sg.outputs = [xt], [yt]
    ref = run_litert(mb.build(), [x])
    n = 3  # model tensors; LiteRT's temporaries follow
    return {"q": ref[n], "scaling": ref[n + 1], "offset": ref[n + 3], "row_sums": ref[n + 4]}


@pytest.mark.parametrize("asymmetric", [False, True], ids=["symmetric", "asymmetric"])
@pytest.mark.parametrize("kind,depth", [("normal", 37), ("ties", 21), ("ties", 64),
                                        ("negative", 19)])
def test_input_quantization_matches_litert_temporaries(kind: str, depth: int,
                                                       asymmetric: bool) -> None:
    """The quantized rows, scaling factors and offsets LiteRT computes are ours, bit for bit.

    LiteRT multiplies the stored scaling factor by the (per-tensor) weight scale in place.  (An
    all-zero input skips quantization altogether, ``IsZeroVector``, and leaves the temporaries
    unwritten; the FULLY_CONNECTED ``x-zeros`` cases check its output.)"""
    rng = np.random.default_rng(depth)
    x = float_rows(kind, (3, depth), rng, asymmetric)
    tmp = _fc_temporaries(x, int8_weights("random", (4, depth), rng), asymmetric)
    if asymmetric:
        q, scaling, offset = asymmetric_quantize_floats(x)
        np.testing.assert_array_equal(offset, tmp["offset"])
    else:
        q, scaling = symmetric_quantize_floats(x)
    np.testing.assert_array_equal(q, tmp["q"])
    np.testing.assert_array_equal(scaling * F32(0.01), tmp["scaling"])


def test_vector_body_and_tail_round_differently() -> None:
    """On x86 the NEON-translated vector body computes ``trunc(p + 0.5f)``, which takes
    0.49999997f to 1; the scalar tail (the last n % 8 values) rounds it to 0 like ``std::round``.
    LiteRT shows both in one row; a plain ``round`` of the products would miss the first."""
    x = np.zeros((1, 12), F32)
    x[0, 0] = 127  # inverse scale 1
    x[0, 3] = x[0, 10] = NEAR_HALF  # vector body / tail
    x[0, 4] = x[0, 11] = -NEAR_HALF
    tmp = _fc_temporaries(x, np.ones((2, 12), np.int8), asymmetric=False)
    assert list(tmp["q"][0, [3, 4, 10, 11]]) == [1, -1, 0, 0]
    q, _ = symmetric_quantize_floats(x)
    np.testing.assert_array_equal(q, tmp["q"])
    assert not np.array_equal(round_away(x), q)


def test_asymmetric_offset_is_added_after_rounding() -> None:
    """Neon/x86: ``round(x / s) + offset``; the portable kernel rounds ``offset + x / s`` in
    float32, which differs on ties once the offset is odd (here -28 + 2.5)."""
    x = np.array([[-100, 155, 2.5, -3.5, 7.5, 0.5, 1.5, -0.5, 2.5, -3.5]], F32)
    tmp = _fc_temporaries(x, np.ones((2, 10), np.int8), asymmetric=True)
    q, _, offset = asymmetric_quantize_floats(x)
    assert int(offset[0]) == -28
    np.testing.assert_array_equal(q, tmp["q"])
    portable = np.clip(round_away((F32(-28) + x).astype(F32)), -128, 127)
    assert not np.array_equal(portable, q)


def test_row_sums_wrap_in_int16_lanes() -> None:
    """SseReductionSumVector sums long rows in int16 lanes that wrap: LiteRT's row sums are
    ours, and differ from the true sums."""
    rng = np.random.default_rng(1)
    w = int8_weights("saturated", (3, 4100), rng)
    tmp = _fc_temporaries(rng.normal(size=(1, 4100)).astype(F32), w, asymmetric=True)
    np.testing.assert_array_equal(sse_row_sums(w), tmp["row_sums"])
    assert not np.array_equal(w.astype(np.int64).sum(axis=1), tmp["row_sums"])


# -- FULLY_CONNECTED -----------------------------------------------------------------------------
@dataclass(frozen=True)
class HFC:
    in_shape: tuple[int, ...]
    units: int = 5
    per_channel: bool = False
    asymmetric: bool = False
    activation: str = "NONE"
    bias: bool = True
    wtype: str = "INT8"  # INT8 | INT4 | UINT8 (bytes read as int8)
    keep_num_dims: bool = False
    weights: str = "random"
    inputs: str = "normal"
    seed: int = 0

    @property
    def depth(self) -> int:
        return self.in_shape[-1]

    @property
    def id(self) -> str:
        parts = ["fully_connected-hybrid", self.wtype.lower(), "x".join(map(str, self.in_shape)),
                 f"u{self.units}", "per-channel" if self.per_channel else "per-tensor",
                 "asym" if self.asymmetric else "sym"]
        parts += [p for p, on in ((self.activation.lower(), self.activation != "NONE"),
                                  ("nobias", not self.bias), ("keep", self.keep_num_dims),
                                  (f"w-{self.weights}", self.weights != "random"),
                                  (f"x-{self.inputs}", self.inputs != "normal")) if on]
        return "-".join(parts)


def build_fc(c: HFC) -> tuple[bytes, list[np.ndarray]]:
    rng = np.random.default_rng(c.seed)
    mb = ModelBuilder(description=c.id)
    sg = mb.subgraph("main")
    x = sg.tensor("input", c.in_shape, "FLOAT32")
    lo, hi = (-8, 7) if c.wtype == "INT4" else (-127, 127)
    wdata = int8_weights(c.weights, (c.units, c.depth), rng, lo, hi)
    scales = rng.uniform(0.002, 0.05, c.units if c.per_channel else 1).astype(F32)
    w = weight_tensor(sg, (c.units, c.depth), c.wtype, wdata, scales, 0)
    b = (sg.tensor("bias", (c.units,), "FLOAT32", data=rng.uniform(-2, 2, c.units).astype(F32))
         if c.bias else None)
    batches = math.prod(c.in_shape) // c.depth
    out_shape = tuple(c.in_shape[:-1]) + (c.units,) if c.keep_num_dims else (batches, c.units)
    y = sg.tensor("output", out_shape, "FLOAT32")
    sg.operator("FULLY_CONNECTED", [x, w, b], [y],
                {"fused_activation_function": c.activation, "keep_num_dims": c.keep_num_dims,
                 "asymmetric_quantize_inputs": c.asymmetric})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build(), [float_rows(c.inputs, c.in_shape, rng, c.asymmetric)]


FC0 = HFC((2, 24))
FC_CASES = [
    FC0,
    replace(FC0, asymmetric=True),
    replace(FC0, per_channel=True),
    replace(FC0, per_channel=True, asymmetric=True, activation="RELU"),
    replace(FC0, in_shape=(2, 3, 40), keep_num_dims=True, activation="RELU6", asymmetric=True),
    replace(FC0, in_shape=(1, 2, 2, 8), units=3, activation="RELU_N1_TO_1"),
    replace(FC0, activation="TANH", per_channel=True),
    replace(FC0, activation="SIGN_BIT", asymmetric=True),
    replace(FC0, bias=False, units=7),
    replace(FC0, wtype="INT4", in_shape=(3, 32)),
    replace(FC0, wtype="INT4", in_shape=(3, 32), asymmetric=True, per_channel=True),
    replace(FC0, wtype="UINT8", in_shape=(2, 20)),
    replace(FC0, inputs="ties", in_shape=(2, 29)),
    replace(FC0, inputs="ties", in_shape=(2, 29), asymmetric=True),
    replace(FC0, inputs="negative", weights="minus128", in_shape=(2, 40)),
    replace(FC0, inputs="negative", weights="minus128", in_shape=(2, 40), asymmetric=True),
    replace(FC0, inputs="zeros"),
    replace(FC0, inputs="zeros", asymmetric=True, bias=False),
    replace(FC0, weights="saturated", in_shape=(1, 4100), asymmetric=True, units=3),
    replace(FC0, in_shape=(1, 640), units=128, activation="RELU"),  # ToyCar's first layer
]


@pytest.mark.parametrize("case", FC_CASES, ids=[c.id for c in FC_CASES])
def test_fully_connected_hybrid(case: HFC) -> None:
    model, inputs = build_fc(case)
    check(model, inputs)


def test_fully_connected_sign_wrap_is_litert_behaviour() -> None:
    """A -128 weight times a negative input comes out negated in LiteRT's SSE product; the
    case above that exercises it really differs from the exact dot product."""
    model, inputs = build_fc(replace(FC0, inputs="negative", weights="minus128",
                                     in_shape=(2, 40)))
    ref = run_litert(model, inputs)[3]
    it = ours(model)
    m = it.model.subgraphs[0]
    w = m.tensors[1].data.astype(np.int64)
    q, scaling = symmetric_quantize_floats(inputs[0])
    exact = (q.astype(np.int64) @ w.T).astype(F32) * (scaling * m.tensors[1].quantization.scale[0]
                                                        )[:, None] + m.tensors[2].data
    assert not np.array_equal(exact, ref)


@st.composite
def fc_cases(draw: st.DrawFn) -> HFC:
    rank = draw(st.integers(1, 3), label="rank")
    outer = tuple(draw(st.lists(st.integers(1, 3), min_size=rank - 1, max_size=rank - 1),
                       label="outer"))
    return HFC(outer + (draw(st.integers(1, 70), label="depth"),),
               draw(st.integers(1, 9), label="units"),
               per_channel=draw(st.booleans(), label="per-channel"),
               asymmetric=draw(st.booleans(), label="asymmetric"),
               activation=draw(st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1",
                                                "TANH", "SIGN_BIT"]), label="act"),
               bias=draw(st.booleans(), label="bias"),
               wtype=draw(st.sampled_from(["INT8", "INT8", "INT4", "UINT8"]), label="wtype"),
               keep_num_dims=draw(st.booleans(), label="keep"),
               weights=draw(st.sampled_from(["random", "minus128"]), label="weights"),
               inputs=draw(st.sampled_from(["normal", "ties", "negative"]), label="inputs"),
               seed=draw(st.integers(0, 2**16), label="seed"))


@given(case=fc_cases())
@settings(max_examples=60, deadline=None)
def test_fully_connected_hybrid_random(case: HFC) -> None:
    model, inputs = build_fc(case)
    check(model, inputs)


# -- CONV_2D / DEPTHWISE_CONV_2D -----------------------------------------------------------------
@dataclass(frozen=True)
class HConv:
    op: str  # CONV_2D | DEPTHWISE_CONV_2D
    in_shape: tuple[int, int, int, int]
    kernel: tuple[int, int] = (3, 3)
    channels: int = 4  # CONV_2D: filters; DEPTHWISE_CONV_2D: depth multiplier
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    per_channel: bool = False  # distinct scales (depthwise: always one per channel)
    groups: int = 1
    activation: str = "NONE"
    wtype: str = "INT8"
    weights: str = "random"
    inputs: str = "normal"
    seed: int = 0

    @property
    def out_channels(self) -> int:
        return self.channels if self.op == "CONV_2D" else self.in_shape[3] * self.channels

    @property
    def id(self) -> str:
        parts = [self.op.lower() + "-hybrid", self.wtype.lower(),
                 "x".join(map(str, self.in_shape)), "x".join(map(str, self.kernel)),
                 f"{'oc' if self.op == 'CONV_2D' else 'dm'}{self.channels}",
                 f"s{self.stride[0]}{self.stride[1]}", self.padding.lower()]
        if self.op == "CONV_2D":
            parts.append("per-channel" if self.per_channel else "per-tensor")
        parts += [p for p, on in ((f"d{self.dilation[0]}{self.dilation[1]}",
                                   self.dilation != (1, 1)),
                                  (f"g{self.groups}", self.groups != 1),
                                  (self.activation.lower(), self.activation != "NONE"),
                                  (f"w-{self.weights}", self.weights != "random"),
                                  (f"x-{self.inputs}", self.inputs != "normal")) if on]
        return "-".join(parts)

    def output_shape(self) -> tuple[int, int, int, int]:
        n, h, w, _ = self.in_shape
        dims = []
        for size, k, s, d in ((h, self.kernel[0], self.stride[0], self.dilation[0]),
                              (w, self.kernel[1], self.stride[1], self.dilation[1])):
            eff = (k - 1) * d + 1
            dims.append(-(-size // s) if self.padding == "SAME" else (size - eff + s) // s)
        return (n, dims[0], dims[1], self.out_channels)


def build_conv(c: HConv) -> tuple[bytes, list[np.ndarray]]:
    rng = np.random.default_rng(c.seed)
    mb = ModelBuilder(description=c.id)
    sg = mb.subgraph("main")
    x = sg.tensor("input", c.in_shape, "FLOAT32")
    oc = c.out_channels
    if c.op == "CONV_2D":
        wshape: tuple[int, ...] = (oc, *c.kernel, c.in_shape[3] // c.groups)
        qdim = 0
        many = c.per_channel or c.groups != 1
    else:
        wshape, qdim, many = (1, *c.kernel, oc), 3, True
    lo, hi = (-8, 7) if c.wtype == "INT4" else (-127, 127)
    wdata = int8_weights(c.weights, wshape, rng, lo, hi)
    if many:
        scales = (rng.uniform(0.002, 0.05, oc) if c.per_channel or c.op != "CONV_2D"
                  else np.full(oc, rng.uniform(0.002, 0.05)))
    else:
        scales = np.array([rng.uniform(0.002, 0.05)])
    w = weight_tensor(sg, wshape, c.wtype, wdata, scales.astype(F32), qdim)
    b = sg.tensor("bias", (oc,), "FLOAT32", data=rng.uniform(-1, 1, oc).astype(F32))
    y = sg.tensor("output", c.output_shape(), "FLOAT32")
    options: dict[str, Any] = {
        "padding": c.padding, "stride_h": c.stride[0], "stride_w": c.stride[1],
        "dilation_h_factor": c.dilation[0], "dilation_w_factor": c.dilation[1],
        "fused_activation_function": c.activation}
    if c.op == "DEPTHWISE_CONV_2D":
        options["depth_multiplier"] = c.channels
    sg.operator(c.op, [x, w, b], [y], options)
    sg.inputs, sg.outputs = [x], [y]
    return mb.build(), [float_rows(c.inputs, c.in_shape, rng, c.op != "CONV_2D"
                                   or c.per_channel or c.groups != 1)]


C0 = HConv("CONV_2D", (1, 8, 8, 3))
D0 = HConv("DEPTHWISE_CONV_2D", (1, 8, 8, 3), channels=1)
CONV_CASES = [
    C0,
    replace(C0, channels=3),  # filters % 4 != 0: the SSE product instead of ruy
    replace(C0, per_channel=True),
    replace(C0, per_channel=True, stride=(2, 2), activation="RELU"),
    replace(C0, in_shape=(2, 9, 7, 4), stride=(2, 1), padding="VALID", activation="RELU6"),
    replace(C0, kernel=(1, 1), channels=8),  # no im2col
    replace(C0, kernel=(2, 3), dilation=(2, 1), per_channel=True),
    replace(C0, kernel=(3, 3), dilation=(1, 2), activation="RELU_N1_TO_1"),
    replace(C0, in_shape=(1, 6, 6, 4), groups=2, channels=6),  # grouped: per-channel kernel
    replace(C0, in_shape=(1, 6, 6, 4), groups=2, channels=6, per_channel=True),
    replace(C0, wtype="INT4", per_channel=True),
    replace(C0, wtype="INT4"),
    replace(C0, wtype="UINT8", channels=5),
    replace(C0, wtype="UINT8", channels=5, per_channel=True),  # still the per-tensor kernel
    replace(C0, channels=3, weights="minus128", inputs="negative"),
    replace(C0, channels=4, weights="minus128", inputs="negative"),
    replace(C0, per_channel=True, weights="minus128", inputs="negative"),
    replace(C0, inputs="ties"),
    replace(C0, inputs="ties", per_channel=True),
    replace(C0, inputs="zeros", per_channel=True),
    replace(C0, in_shape=(1, 49, 10, 1), kernel=(10, 4), channels=64, stride=(2, 2),
            activation="RELU"),  # kws_ref_model_float32's first layer
    D0,
    replace(D0, channels=2, stride=(2, 2), activation="RELU"),
    replace(D0, in_shape=(2, 7, 9, 4), padding="VALID", activation="RELU6"),
    replace(D0, in_shape=(1, 6, 6, 1), channels=3, dilation=(2, 2)),
    replace(D0, in_shape=(1, 3, 3, 8), kernel=(3, 3), channels=1),  # few output pixels
    replace(D0, inputs="ties"),
    replace(D0, inputs="negative", weights="minus128"),
    replace(D0, inputs="zeros"),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[c.id for c in CONV_CASES])
def test_conv_hybrid(case: HConv) -> None:
    model, inputs = build_conv(case)
    check(model, inputs)


def test_conv_sign_wrap_depends_on_the_filter_count() -> None:
    """HybridConv runs ruy (exact) when the filter count is a multiple of 4, the SSE product
    (-128 weights negated for negative inputs) otherwise: LiteRT's outputs differ from the
    exact products only in the second case."""
    for channels, wrapped in ((3, True), (4, False)):
        model, inputs = build_conv(replace(C0, channels=channels, weights="minus128",
                                           inputs="negative"))
        ref = run_litert(model, inputs)[3]
        m = tflite_ref.load(model).subgraphs[0]
        w = m.tensors[1].data.astype(np.float64)
        q, scaling = symmetric_quantize_floats(inputs[0].reshape(1, -1))
        xp = np.pad(q.reshape(inputs[0].shape).astype(np.float64), ((0, 0), (1, 1), (1, 1),
                                                                     (0, 0)))
        win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))
        acc = np.einsum("nhwcyx,oyxc->nhwo", win, w).astype(F32)
        exact = acc * (scaling[0] * m.tensors[1].quantization.scale[0]) + m.tensors[2].data
        assert (not np.array_equal(exact, ref)) == wrapped, channels


@st.composite
def conv_cases(draw: st.DrawFn) -> HConv:
    op = draw(st.sampled_from(["CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D"]), label="op")
    groups = 1
    cin = draw(st.integers(1, 5), label="cin")
    if op == "CONV_2D" and draw(st.integers(0, 4), label="grouped") == 0:
        groups = draw(st.integers(2, 3), label="groups")
        cin *= groups
    kernel = (draw(st.integers(1, 4), label="kh"), draw(st.integers(1, 4), label="kw"))
    dilation = (draw(st.integers(1, 2), label="dh"), draw(st.integers(1, 2), label="dw"))
    padding = draw(st.sampled_from(["SAME", "VALID"]), label="padding")
    lo_h = (kernel[0] - 1) * dilation[0] + 1 if padding == "VALID" else 1
    lo_w = (kernel[1] - 1) * dilation[1] + 1 if padding == "VALID" else 1
    shape = (draw(st.integers(1, 2), label="n"), draw(st.integers(lo_h, lo_h + 7), label="h"),
             draw(st.integers(lo_w, lo_w + 7), label="w"), cin)
    channels = (draw(st.integers(1, 3), label="m") * groups if op == "CONV_2D"
                else draw(st.integers(1, 3), label="m"))
    if op == "CONV_2D":
        channels = groups * draw(st.integers(1, 4), label="filters per group")
    return HConv(op, shape, kernel, channels,
                 (draw(st.integers(1, 3), label="sh"), draw(st.integers(1, 3), label="sw")),
                 dilation, padding, per_channel=draw(st.booleans(), label="per-channel"),
                 groups=groups,
                 activation=draw(st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]),
                                 label="act"),
                 wtype=("INT8" if op != "CONV_2D"
                        else draw(st.sampled_from(["INT8", "INT8", "INT4", "UINT8"][:3 if
                                                   groups != 1 else 4]), label="wtype")),
                 weights=draw(st.sampled_from(["random", "minus128"]), label="weights"),
                 inputs=draw(st.sampled_from(["normal", "ties", "negative"]), label="inputs"),
                 seed=draw(st.integers(0, 2**16), label="seed"))


@given(case=conv_cases())
@settings(max_examples=60, deadline=None)
def test_conv_hybrid_random(case: HConv) -> None:
    model, inputs = build_conv(case)
    check(model, inputs)


def test_depthwise_hybrid_with_one_scale_is_refused() -> None:
    """LiteRT's Prepare lets a single scale on quantized_dimension 0 pass (dims[0] == 1), then
    reads one scale per output channel, past the end: refused instead of guessed.  The
    converter writes such filters when per-channel quantization is disabled
    (tests/models/hybrid/hybrid_cnn_per_tensor.tflite)."""
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", (1, 4, 4, 2), "FLOAT32")
    w = sg.tensor("w", (1, 3, 3, 2), "INT8", data=np.ones((1, 3, 3, 2), np.int8), scale=0.1)
    b = sg.tensor("b", (2,), "FLOAT32", data=np.zeros(2, F32))
    y = sg.tensor("y", (1, 4, 4, 2), "FLOAT32")
    sg.operator("DEPTHWISE_CONV_2D", [x, w, b], [y],
                {"padding": "SAME", "stride_w": 1, "stride_h": 1, "depth_multiplier": 1})
    sg.inputs, sg.outputs = [x], [y]
    with pytest.raises(ModelValidationError, match="one filter scale per output channel"):
        ours(mb.build())


def test_grouped_hybrid_conv_needs_a_scale_per_filter() -> None:
    """LiteRT 2.3.0 conv.cc Prepare: "scale->size != filter->dims->data[0] (1 != 4)"."""
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", (1, 4, 4, 4), "FLOAT32")
    w = sg.tensor("w", (4, 3, 3, 2), "INT8", data=np.ones((4, 3, 3, 2), np.int8), scale=0.1)
    b = sg.tensor("b", (4,), "FLOAT32", data=np.zeros(4, F32))
    y = sg.tensor("y", (1, 4, 4, 4), "FLOAT32")
    sg.operator("CONV_2D", [x, w, b], [y], {"padding": "SAME", "stride_w": 1, "stride_h": 1,
                                            "dilation_w_factor": 1, "dilation_h_factor": 1})
    sg.inputs, sg.outputs = [x], [y]
    model = mb.build()
    with pytest.raises(ModelValidationError, match="one filter scale per output channel"):
        ours(model)
    with pytest.raises(RuntimeError, match="scale->size"):
        run_litert(model, [np.ones((1, 4, 4, 4), F32)])


def test_grouped_hybrid_conv_needs_a_signed_filter() -> None:
    """LiteRT 2.3.0 conv.cc Prepare: "filter->type == kTfLiteInt8 || ... kTfLiteInt4"."""
    model, inputs = build_conv(replace(C0, in_shape=(1, 4, 4, 4), groups=2, wtype="UINT8"))
    with pytest.raises(ModelValidationError, match="INT8 or INT4 filter"):
        ours(model)
    with pytest.raises(RuntimeError, match="kTfLiteInt8"):
        run_litert(model, inputs)


# -- BATCH_MATMUL --------------------------------------------------------------------------------
@dataclass(frozen=True)
class HBmm:
    lhs_shape: tuple[int, ...]
    rhs_shape: tuple[int, ...]
    adj_x: bool = False
    adj_y: bool = False
    per_channel: bool = False
    asymmetric: bool = False
    inputs: str = "normal"
    seed: int = 0

    @property
    def id(self) -> str:
        parts = ["batch_matmul-hybrid", "x".join(map(str, self.lhs_shape)),
                 "x".join(map(str, self.rhs_shape)),
                 "per-channel" if self.per_channel else "per-tensor",
                 "asym" if self.asymmetric else "sym"]
        parts += [p for p, on in (("adj_x", self.adj_x), ("adj_y", self.adj_y),
                                  (f"x-{self.inputs}", self.inputs != "normal")) if on]
        return "-".join(parts)

    def output_shape(self) -> tuple[int, ...]:
        ls, rs = self.lhs_shape, self.rhs_shape
        rank = max(len(ls), len(rs))
        lx, rx = (1,) * (rank - len(ls)) + ls, (1,) * (rank - len(rs)) + rs
        batch = tuple(max(a, b) for a, b in zip(lx[:-2], rx[:-2]))
        return batch + (lx[-1] if self.adj_x else lx[-2], rx[-2] if self.adj_y else rx[-1])


def build_bmm(c: HBmm) -> tuple[bytes, list[np.ndarray]]:
    rng = np.random.default_rng(c.seed)
    mb = ModelBuilder(description=c.id)
    sg = mb.subgraph("main")
    x = sg.tensor("lhs", c.lhs_shape, "FLOAT32")
    units = c.rhs_shape[-2] if c.adj_y else c.rhs_shape[-1]
    scales = rng.uniform(0.002, 0.05, units if c.per_channel else 1).astype(F32)
    qdim = len(c.rhs_shape) - (2 if c.adj_y else 1)
    w = weight_tensor(sg, c.rhs_shape, "INT8", int8_weights("random", c.rhs_shape, rng, -128),
                      scales, qdim)
    y = sg.tensor("output", c.output_shape(), "FLOAT32")
    sg.operator("BATCH_MATMUL", [x, w], [y], {"adj_x": c.adj_x, "adj_y": c.adj_y,
                                              "asymmetric_quantize_inputs": c.asymmetric})
    sg.inputs, sg.outputs = [x], [y]
    lhs = float_rows(c.inputs, c.lhs_shape[:-2] + ((c.lhs_shape[-1], c.lhs_shape[-2])
                                                   if c.adj_x else c.lhs_shape[-2:]),
                     rng, c.asymmetric)
    return mb.build(), [np.ascontiguousarray(np.swapaxes(lhs, -1, -2)) if c.adj_x else lhs]


B0 = HBmm((3, 24), (24, 5))
BMM_CASES = [
    B0,
    replace(B0, asymmetric=True),
    replace(B0, per_channel=True),
    replace(B0, per_channel=True, asymmetric=True, adj_y=True, rhs_shape=(5, 24)),
    replace(B0, adj_x=True, lhs_shape=(24, 3), asymmetric=True),
    replace(B0, lhs_shape=(2, 3, 24), rhs_shape=(2, 24, 5), asymmetric=True),
    replace(B0, lhs_shape=(2, 3, 24), rhs_shape=(1, 24, 5)),  # squeezed to 6x24 x 24x5
    replace(B0, lhs_shape=(2, 3, 24), rhs_shape=(24, 5), per_channel=True),
    replace(B0, lhs_shape=(2, 3, 4, 24), rhs_shape=(24, 5), asymmetric=True),  # LiteRT's index
    replace(B0, lhs_shape=(2, 1, 4, 24), rhs_shape=(3, 24, 5), asymmetric=True),
    replace(B0, lhs_shape=(2, 3, 2, 4, 24), rhs_shape=(3, 1, 24, 5), asymmetric=True),
    replace(B0, inputs="ties", lhs_shape=(2, 29), rhs_shape=(29, 3)),
    replace(B0, inputs="ties", asymmetric=True, lhs_shape=(2, 29), rhs_shape=(29, 3)),
]


@pytest.mark.parametrize("case", BMM_CASES, ids=[c.id for c in BMM_CASES])
def test_batch_matmul_hybrid(case: HBmm) -> None:
    model, inputs = build_bmm(case)
    check(model, inputs)


def test_batch_matmul_hybrid_scale_index_is_litert_behaviour() -> None:
    """With two batch dimensions LiteRT's kernel steps its scaling-factor pointer by one
    matrix per step of either dimension: the rows of batch (1, 1) use those of (0, 2).  The
    outputs follow LiteRT, not the per-row arithmetic."""
    c = replace(B0, lhs_shape=(2, 3, 4, 24), rhs_shape=(24, 5), asymmetric=True)
    model, inputs = build_bmm(c)
    ref = run_litert(model, inputs)[2]
    m = tflite_ref.load(model).subgraphs[0]
    w = m.tensors[1].data.astype(np.int64)
    q, scaling, offset = asymmetric_quantize_floats(inputs[0].reshape(-1, 24))
    dot = (q.astype(np.int64) - offset[:, None]) @ w
    per_row = (dot.astype(F32) * (scaling * m.tensors[1].quantization.scale[0])[:, None])
    assert not np.array_equal(per_row.reshape(ref.shape), ref)
    np.testing.assert_array_equal(ours(model, inputs).get_tensor(2), ref)


@st.composite
def bmm_cases(draw: st.DrawFn) -> HBmm:
    m, k, n = (draw(st.integers(1, 6), label="m"), draw(st.integers(1, 50), label="k"),
               draw(st.integers(1, 6), label="n"))
    nb = draw(st.integers(0, 2), label="batch dims")
    lb = [draw(st.integers(1, 3), label="lhs batch") for _ in range(nb)]
    rb = [draw(st.sampled_from([1, b]), label="rhs batch") for b in lb]
    rb = rb[draw(st.integers(0, nb), label="rhs rank cut"):]
    adj_x, adj_y = draw(st.booleans(), label="adj_x"), draw(st.booleans(), label="adj_y")
    return HBmm(tuple(lb) + ((k, m) if adj_x else (m, k)), tuple(rb) + ((n, k) if adj_y
                                                                       else (k, n)),
                adj_x, adj_y, per_channel=draw(st.booleans(), label="per-channel"),
                asymmetric=draw(st.booleans(), label="asymmetric"),
                inputs=draw(st.sampled_from(["normal", "ties", "negative"]), label="inputs"),
                seed=draw(st.integers(0, 2**16), label="seed"))


@given(case=bmm_cases())
@settings(max_examples=50, deadline=None)
def test_batch_matmul_hybrid_random(case: HBmm) -> None:
    model, inputs = build_bmm(case)
    check(model, inputs)


# -- EMBEDDING_LOOKUP ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Emb:
    table: str  # the table's type
    output: str
    shape: tuple[int, ...] = (6, 3, 2)
    per_row: bool = False
    const_table: bool = True
    lookups: int = 5
    seed: int = 0

    @property
    def id(self) -> str:
        parts = ["embedding_lookup", f"{self.table.lower()}-{self.output.lower()}",
                 "x".join(map(str, self.shape)), f"l{self.lookups}"]
        parts += [p for p, on in (("per-row", self.per_row),
                                  ("runtime-table", not self.const_table)) if on]
        return "-".join(parts)

    @property
    def hybrid(self) -> bool:
        return self.table != self.output


NP_TYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT8": np.int8, "UINT8": np.uint8,
            "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_,
            "INT4": np.int8}


def build_embedding(c: Emb) -> tuple[bytes, list[np.ndarray]]:
    rng = np.random.default_rng(c.seed)
    dt = np.dtype(NP_TYPES[c.table])
    if c.table == "INT4":
        table = rng.integers(-8, 8, c.shape).astype(np.int8)
    elif dt.kind == "b":
        table = rng.integers(0, 2, c.shape).astype(bool)
    elif dt.kind == "f":
        table = rng.normal(0, 2, c.shape).astype(dt)
    else:
        info = np.iinfo(dt)
        table = rng.integers(info.min, info.max, c.shape, endpoint=True).astype(dt)
    mb = ModelBuilder(description=c.id)
    sg = mb.subgraph("main")
    ids = sg.tensor("ids", (c.lookups,), "INT32")
    quant: dict[str, Any] = {}
    if c.hybrid:
        scales = rng.uniform(0.01, 0.2, c.shape[0] if c.per_row else 1)
        quant = {"scale": [float(s) for s in scales], "zero_point": [0] * len(scales)}
    elif c.table in ("INT8", "UINT8"):
        quant = {"scale": 0.1, "zero_point": 3}
    v = sg.tensor("table", c.shape, c.table, data=table if c.const_table else None, **quant)
    y = sg.tensor("output", (c.lookups,) + c.shape[1:], c.output)
    sg.operator("EMBEDDING_LOOKUP", [ids, v], [y])
    sg.inputs, sg.outputs = [ids] + ([] if c.const_table else [v]), [y]
    inputs = [rng.integers(0, c.shape[0], c.lookups).astype(np.int32)]
    return mb.build(), inputs + ([] if c.const_table else [table])


E0 = Emb("INT8", "FLOAT32")
EMB_CASES = [
    E0,
    replace(E0, per_row=True),
    replace(E0, const_table=False, per_row=True),
    replace(E0, shape=(50, 16), lookups=12),
    replace(E0, table="UINT8"),  # LiteRT reads the bytes as int8
    replace(E0, table="UINT8", per_row=True),
    replace(E0, table="INT4", shape=(5, 7)),
    replace(E0, output="FLOAT16", per_row=True),
    replace(E0, table="FLOAT32"),
    replace(E0, table="FLOAT32", const_table=False, shape=(4, 2)),
    replace(E0, output="INT8"),
    replace(E0, table="UINT8", output="UINT8"),
    replace(E0, table="INT16", output="INT16"),
    replace(E0, table="INT32", output="INT32"),
    replace(E0, table="INT64", output="INT64"),
    replace(E0, table="BOOL", output="BOOL"),
    replace(E0, table="FLOAT16", output="FLOAT16"),
    replace(E0, lookups=0),
]


def tflm_runs_embedding(c: Emb) -> bool:
    """TFLM's embedding_lookup.cc Prepare takes float32 and int8 tables, and float32 or int8
    outputs; other combinations are LiteRT-only (not compared with TFLM)."""
    return c.table in ("FLOAT32", "INT8") and c.output in ("FLOAT32", "INT8")


@pytest.mark.parametrize("case", EMB_CASES, ids=[c.id for c in EMB_CASES])
def test_embedding_lookup(case: Emb) -> None:
    model, inputs = build_embedding(case)
    check(model, inputs)
    if not tflm_runs_embedding(case):
        with pytest.raises(UnsupportedOpError, match="TFLite Micro|emulation of 'tflm'"):
            ours(model, emulate="tflm")
    elif case.lookups:  # TFLM's allocator refuses an empty output ("dynamic tensor")
        assert_matches_tflm(model, inputs, rtol=0, atol=0)


def test_embedding_lookup_row_scales_differ_between_runtimes() -> None:
    """Per-row scales: LiteRT scales each row by its own, TFLM by the first for all."""
    model, inputs = build_embedding(replace(E0, per_row=True, lookups=6))
    a = ours(model, inputs).get_tensor(2)
    b = ours(model, inputs, emulate="tflm").get_tensor(2)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, run_litert(model, inputs)[2])
    np.testing.assert_array_equal(b, run_tflm(model, inputs)[0])


@pytest.mark.parametrize("bad", [6, -1])
def test_embedding_lookup_index_out_of_range(bad: int) -> None:
    model, inputs = build_embedding(E0)
    inputs[0][2] = bad
    with pytest.raises(KernelRuntimeError, match=r"EMBEDDING_LOOKUP.*lookup\[2\]"):
        ours(model, inputs)
    with pytest.raises(RuntimeError, match="out of bounds"):
        run_litert(model, inputs)


@given(data=st.data())
@settings(max_examples=30, deadline=None)
def test_embedding_lookup_random(data: st.DataObject) -> None:
    table = data.draw(st.sampled_from(["INT8", "UINT8", "FLOAT32", "INT32"]), label="table")
    output = (data.draw(st.sampled_from(["FLOAT32", table]), label="output")
              if table in ("INT8", "UINT8") else table)
    rank = data.draw(st.integers(2, 4), label="rank")
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank),
                            label="shape"))
    c = Emb(table, output, shape, per_row=data.draw(st.booleans(), label="per-row"),
            const_table=data.draw(st.booleans(), label="const"),
            lookups=data.draw(st.integers(1, 8), label="lookups"),
            seed=data.draw(st.integers(0, 2**16), label="seed"))
    model, inputs = build_embedding(c)
    check(model, inputs)
    if tflm_runs_embedding(c):
        assert_matches_tflm(model, inputs, rtol=0, atol=0)


# -- TFLite Micro refuses hybrid layers ----------------------------------------------------------
HYBRID_LAYERS = {"FULLY_CONNECTED": lambda: build_fc(FC0), "CONV_2D": lambda: build_conv(C0),
                 "DEPTHWISE_CONV_2D": lambda: build_conv(D0),
                 "BATCH_MATMUL": lambda: build_bmm(B0)}


@pytest.mark.parametrize("op", sorted(HYBRID_LAYERS))
def test_tflm_refuses_hybrid_layers(op: str) -> None:
    """TFLM's Prepare refuses float input with int8 weights; so does emulate="tflm"."""
    model, inputs = HYBRID_LAYERS[op]()
    with pytest.raises(RuntimeError):
        run_tflm(model, inputs)
    with pytest.raises(UnsupportedOpError, match="TFLite Micro refuses hybrid"):
        ours(model, emulate="tflm")


def test_hybrid_weights_must_be_constant() -> None:
    """LiteRT computes the asymmetric row sums once: weights fed at run time are refused."""
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", (2, 8), "FLOAT32")
    w = sg.tensor("w", (3, 8), "INT8", scale=0.1)
    y = sg.tensor("y", (2, 3), "FLOAT32")
    sg.operator("FULLY_CONNECTED", [x, w, None], [y], {"asymmetric_quantize_inputs": True})
    sg.inputs, sg.outputs = [x, w], [y]
    with pytest.raises(UnsupportedOpError, match="non-constant weights"):
        ours(mb.build())


# -- converter-made models -----------------------------------------------------------------------
def check_layers(content: bytes, inputs: list[np.ndarray]) -> tuple[int, list[str]]:
    """Each layer fed LiteRT's own inputs gives LiteRT's output exactly (float layers: to
    float32 rounding).  Returns (layers compared, refused layers' messages); the layers after a
    refused one are not compared (their LiteRT inputs are whatever it computed there)."""
    ref = run_litert(content, inputs)
    model = tflite_ref.load(content)
    sg = model.subgraphs[0]
    compared, refused = 0, []
    for op in sg.operators:
        if refused:
            break
        shapes = tuple(sg.tensors[i].shape if i >= 0 else None for i in op.inputs)
        ctx = OpContext(model=model, subgraph=sg, op=op, emulate="tflite", input_shapes=shapes)
        kernel = lookup(op, key_dtype(op, sg), ctx.describe_types(), "tflite")
        try:
            data = kernel.prepare(ctx)
        except ModelValidationError as exc:
            refused.append(str(exc))
            continue
        args = [None if i < 0 else ref[i] if i in ref else sg.tensors[i].data for i in op.inputs]
        out = np.asarray(kernel.eval(data, *args))
        want = ref[op.outputs[0]]
        hybrid = any(i >= 0 and sg.tensors[i].type_name in ("INT8", "INT4", "UINT8")
                     for i in op.inputs[1:2])
        if hybrid:
            np.testing.assert_array_equal(out, want, err_msg=op.locator)
        else:
            np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6, err_msg=op.locator)
        compared += 1
    return compared, refused


@pytest.mark.parametrize("name", ["hybrid_cnn", "hybrid_matmul"])
def test_converter_fixture_matches_litert(name: str) -> None:
    content = (FIXTURES / f"{name}.tflite").read_bytes()
    sg = tflite_ref.load(content).subgraphs[0]
    for seed in range(2):
        inputs = [float_rows("normal", tuple(sg.tensors[i].shape), np.random.default_rng(seed),
                             False) for i in sg.inputs]
        compared, refused = check_layers(content, inputs)
        assert compared == len(sg.operators) and not refused
        check(content, inputs)


def test_converter_per_tensor_depthwise_is_refused() -> None:
    """The converter without per-channel weights writes a one-scale depthwise filter, which
    LiteRT's hybrid depthwise kernel reads out of bounds (its output is garbage): that layer is
    refused; the per-tensor (symmetric) CONV_2D before it matches."""
    content = (FIXTURES / "hybrid_cnn_per_tensor.tflite").read_bytes()
    sg = tflite_ref.load(content).subgraphs[0]
    x = float_rows("normal", tuple(sg.tensors[sg.inputs[0]].shape), np.random.default_rng(0),
                   False)
    compared, refused = check_layers(content, [x])
    assert compared == 1 and sg.operators[0].opcode == "CONV_2D"
    assert len(refused) == 1 and "DEPTHWISE_CONV_2D" in refused[0]


@pytest.mark.parametrize("name", ["model_ToyCar_quant", "kws_ref_model_float32"])
def test_mlperf_hybrid_model_matches_litert(name: str) -> None:
    """The corpus' hybrid models, whole, every tensor (float layers to float32 rounding, which
    the hybrid layers' input quantization can amplify: 1e-5 of the tensor's magnitude)."""
    content = (CORPUS / "mlperf_tiny" / f"{name}.tflite").read_bytes()
    sg = tflite_ref.load(content).subgraphs[0]
    for seed in range(2):
        x = float_rows("normal", tuple(sg.tensors[sg.inputs[0]].shape),
                       np.random.default_rng(seed), False)
        assert assert_matches_litert(content, [x]) >= len(
            sg.operators)
        compared, refused = check_layers(content, [x])
        assert compared == len(sg.operators) and not refused
