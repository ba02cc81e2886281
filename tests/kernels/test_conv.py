"""CONV_2D, DEPTHWISE_CONV_2D and TRANSPOSE_CONV (tflite_ref/kernels/conv.py).

Every case builds a one-operator model with tflite_ref's writer and compares tflite_ref with
LiteRT ``BUILTIN_REF`` on every tensor and, where TFLite Micro has the kernel, the output with
TFLM under ``emulate="tflm"`` -- all exactly: the float kernels add their float32 products in
the reference kernels' order, so floats are the runtimes' bits too.

Where a runtime is left out, on purpose:

* uint8 (legacy per-tensor quantization): TFLM has no uint8 conv kernels -> LiteRT only.
* TRANSPOSE_CONV with a run-time ``output_shape``, or int16 with an int32 bias: TFLM takes the
  output shape from the model and reads every 16x8 transpose-conv bias as int64 -> LiteRT only.

Quantization is realistic: the output scale is chosen from the accumulator's spread so the
outputs use the int8/int16 range (every effective multiplier is < 1) and :func:`check` fails a
case whose outputs collapse to a few values, so a test cannot pass on saturated tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness import assert_matches_litert, assert_matches_tflm, random_array, run_litert
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_ref
from tflite_ref.errors import (
    KernelRuntimeError,
    ModelValidationError,
    UnsupportedOpError,
)
from tflite_ref.kernels.conv import ExactFloatMBQM, Requantization
from tflite_ref.model.writer import ModelBuilder
from tflite_ref.quant.fixedpoint import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
)

NP = {"FLOAT32": np.float32, "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16,
      "INT32": np.int32, "INT64": np.int64}
QRANGE = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767)}


# -- model building ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One single-operator conv model; ``id`` is the pytest id."""

    op: str  # CONV_2D | DEPTHWISE_CONV_2D | TRANSPOSE_CONV
    dtype: str  # FLOAT32 | INT8 | INT16 | UINT8
    in_shape: tuple[int, int, int, int]
    kernel: tuple[int, int] = (3, 3)
    channels: int = 4  # CONV_2D / TRANSPOSE_CONV: output channels; DEPTHWISE: depth multiplier
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    activation: str = "NONE"
    groups: int = 1
    per_channel: bool = True
    bias: str | None = "default"  # None: no bias input; "INT32"/"INT64": explicit bias type
    bias_option: str | None = None  # quantized_bias_type option
    out_extra: tuple[int, int] = (0, 0)  # TRANSPOSE_CONV: output size beyond the minimum
    const_filter: bool = True
    const_bias: bool = True
    seed: int = 0

    @property
    def id(self) -> str:
        parts = [self.op.lower(), self.dtype.lower(), "x".join(map(str, self.in_shape)),
                 f"k{self.kernel[0]}x{self.kernel[1]}"]
        if self.op == "DEPTHWISE_CONV_2D":
            parts.append(f"dm{self.channels}")
        else:
            parts.append(f"oc{self.channels}")
        if self.stride != (1, 1):
            parts.append(f"s{self.stride[0]}x{self.stride[1]}")
        if self.dilation != (1, 1):
            parts.append(f"d{self.dilation[0]}x{self.dilation[1]}")
        parts.append(self.padding.lower())
        if self.groups > 1:
            parts.append(f"g{self.groups}")
        if self.activation != "NONE":
            parts.append(self.activation.lower())
        if self.dtype != "FLOAT32" and not self.per_channel:
            parts.append("per-tensor")
        if self.bias is None:
            parts.append("nobias")
        elif self.bias != "default":
            parts.append(f"bias-{self.bias.lower()}")
        if not self.const_filter:
            parts.append("runtime-filter")
        if not self.const_bias:
            parts.append("runtime-bias")
        return "-".join(parts)


def _out_size(size: int, k: int, s: int, d: int, padding: str) -> int:
    eff = (k - 1) * d + 1
    return -(-size // s) if padding == "SAME" else (size + s - eff) // s


def output_shape(c: Case) -> tuple[int, int, int, int]:
    n, h, w, ch = c.in_shape
    if c.op == "TRANSPOSE_CONV":
        (kh, kw), (sh, sw) = c.kernel, c.stride
        if c.padding == "SAME":
            oh, ow = sh * (h - 1) + 1 + c.out_extra[0], sw * (w - 1) + 1 + c.out_extra[1]
        else:
            oh, ow = sh * (h - 1) + kh + c.out_extra[0], sw * (w - 1) + kw + c.out_extra[1]
        return (n, oh, ow, c.channels)
    oc = c.channels if c.op == "CONV_2D" else ch * c.channels
    return (n, _out_size(h, c.kernel[0], c.stride[0], c.dilation[0], c.padding),
            _out_size(w, c.kernel[1], c.stride[1], c.dilation[1], c.padding), oc)


def _filter_shape(c: Case) -> tuple[int, int, int, int]:
    kh, kw = c.kernel
    ch = c.in_shape[3]
    if c.op == "CONV_2D":
        return (c.channels, kh, kw, ch // c.groups)
    if c.op == "DEPTHWISE_CONV_2D":
        return (1, kh, kw, ch * c.channels)
    return (c.channels, kh, kw, ch)


def _taps_per_output(c: Case) -> float:
    """Products summed into one accumulator (for choosing a realistic output scale)."""
    f = _filter_shape(c)
    if c.op == "CONV_2D":
        return f[1] * f[2] * f[3]
    if c.op == "DEPTHWISE_CONV_2D":
        return f[1] * f[2]
    return math.ceil(f[1] / c.stride[0]) * math.ceil(f[2] / c.stride[1]) * f[3]


def build(c: Case) -> tuple[bytes, list[np.ndarray]]:
    """The model bytes and its random inputs."""
    rng = np.random.default_rng(c.seed)
    mb = ModelBuilder(description=c.id)
    sg = mb.subgraph("main")
    fshape = _filter_shape(c)
    out_shape = output_shape(c)
    n_out = out_shape[3]
    qdim = 3 if c.op == "DEPTHWISE_CONV_2D" else 0
    if c.dtype == "FLOAT32":
        x = sg.tensor("input", c.in_shape, "FLOAT32")
        wdata = rng.uniform(-1, 1, fshape).astype(np.float32)
        w = sg.tensor("filter", fshape, "FLOAT32", data=wdata if c.const_filter else None)
        bdata = rng.uniform(-2, 2, n_out).astype(np.float32)
        b = (sg.tensor("bias", (n_out,), "FLOAT32", data=bdata if c.const_bias else None)
             if c.bias is not None else None)
        y = sg.tensor("output", out_shape, "FLOAT32")
    else:
        lo, hi = QRANGE[c.dtype]
        s_in = float(rng.uniform(0.01, 0.1))
        z_in = {"INT8": int(rng.integers(-20, 21)), "UINT8": int(rng.integers(100, 157)),
                "INT16": 0}[c.dtype]
        wtype = "UINT8" if c.dtype == "UINT8" else "INT8"
        z_w = int(rng.integers(110, 147)) if wtype == "UINT8" else 0
        wdata = (rng.integers(0, 256, fshape) if wtype == "UINT8"
                 else rng.integers(-127, 128, fshape)).astype(NP[wtype])
        s_w = (rng.uniform(0.002, 0.02, n_out) if c.per_channel
               else np.array([rng.uniform(0.002, 0.02)]))
        # Accumulator spread for uniform inputs and weights; aim the outputs' std at 1/6 of
        # the output range, so every effective multiplier s_in·s_w/s_out is below 1.
        x_std, w_std = (hi - lo) / math.sqrt(12), 255 / math.sqrt(12)
        acc_std = math.sqrt(_taps_per_output(c)) * x_std * w_std
        s_out = s_in * float(np.mean(s_w)) * acc_std / ((hi - lo) / 6)
        span = {"RELU6": 6.0, "RELU_N1_TO_1": 2.0}.get(c.activation)
        if span is not None:
            # A bounded activation: real accumulators of std span/3, and an output scale that
            # spreads the clamped range over half the output type.
            s_in = span / 3 / (float(np.mean(s_w)) * acc_std)
            s_out = span / ((hi - lo) / 2)
        z_out = {"INT8": int(rng.integers(-10, 11)), "UINT8": int(rng.integers(110, 147)),
                 "INT16": 0}[c.dtype]
        x = sg.tensor("input", c.in_shape, c.dtype, scale=s_in, zero_point=z_in)
        w = sg.tensor("filter", fshape, wtype, data=wdata if c.const_filter else None,
                      scale=list(s_w), zero_point=[z_w] * len(s_w), quantized_dimension=qdim)
        b = None
        if c.bias is not None:
            btype = c.bias if c.bias != "default" else ("INT64" if c.dtype == "INT16"
                                                        else "INT32")
            bscale = [float(np.float32(s_in) * np.float32(s)) for s in s_w]
            bdata = rng.integers(-int(acc_std), int(acc_std) + 1, n_out).astype(NP[btype])
            b = sg.tensor("bias", (n_out,), btype, data=bdata if c.const_bias else None,
                          scale=bscale, zero_point=[0] * len(bscale))
        y = sg.tensor("output", out_shape, c.dtype, scale=s_out, zero_point=z_out)
    options: dict[str, Any] = {"padding": c.padding, "stride_h": c.stride[0],
                               "stride_w": c.stride[1], "fused_activation_function": c.activation}
    if c.op != "TRANSPOSE_CONV":
        options.update(dilation_h_factor=c.dilation[0], dilation_w_factor=c.dilation[1])
    if c.op == "DEPTHWISE_CONV_2D":
        options["depth_multiplier"] = c.channels
    if c.bias_option is not None:
        options["quantized_bias_type"] = c.bias_option
    if c.op == "TRANSPOSE_CONV":
        shape_t = sg.tensor("output_shape", (4,), "INT32", data=np.array(out_shape, np.int32))
        ins = [shape_t, w, x] + ([b] if b is not None else [])
    else:
        ins = [x, w] + ([b] if b is not None else [])  # no bias: no slot (-1 is refused)
    sg.operator(c.op, ins, [y], options)
    sg.inputs = [x] + ([] if c.const_filter else [w])
    inputs = [random_array(c.in_shape, NP[c.dtype], rng)] + ([] if c.const_filter else [wdata])
    if not c.const_bias and b is not None:
        sg.inputs.append(b)
        inputs.append(bdata)
    sg.outputs = [y]
    return mb.build(), inputs


def litert_temporaries(model: bytes) -> range:
    """LiteRT lists its scratch tensors after the model's own; they have no counterpart here."""
    n = len(tflite_ref.load(model).subgraphs[0].tensors)
    return range(n, n + 1000)


def check(model: bytes, inputs: list[np.ndarray], *, tflm: bool, dtype: str,
          litert: bool = True, guard: bool = True) -> None:
    """tflite_ref vs LiteRT REF (every tensor) and, when ``tflm``, vs TFLM (outputs).

    ``guard`` fails a quantized case whose output holds only a few distinct values (drawn
    cases may legitimately have every tap in the padding, so they skip it).
    """
    # Exact, floats too: CONV_2D, DEPTHWISE_CONV_2D (the reference's gather order) and
    # TRANSPOSE_CONV (its scatter order) add their float32 products as the reference kernels do.
    tol = {"rtol": 0.0, "atol": 0.0}
    if litert:
        compared = assert_matches_litert(model, inputs, skip=litert_temporaries(model), **tol)
        assert compared >= 1
    if guard and dtype != "FLOAT32":
        # Guard the test itself: outputs squeezed into a few values would prove little.
        out = ours(model, "tflite" if litert else "tflm")
        for d, v in zip(out.get_input_details(), inputs):
            out.set_tensor(d["index"], v)
        out.invoke()
        y = out.get_tensor(out.get_output_details()[0]["index"])
        assert len(np.unique(y)) >= min(6, max(1, y.size // 3)), \
            f"degenerate test: the output has only the values {np.unique(y)}"
    if tflm:
        assert_matches_tflm(model, inputs, **tol)


def run_case(c: Case, guard: bool = True) -> None:
    """LiteRT and TFLM as the runtimes allow (see the module docstring)."""
    model, inputs = build(c)
    tflm = c.dtype != "UINT8"
    if c.op == "CONV_2D" and c.bias is None:
        # LiteRT's CONV_2D requires a bias (conv.cc Prepare); TFLM runs without one.
        with pytest.raises(ModelValidationError, match="requires a bias"):
            ours(model, "tflite")
        if tflm:
            check(model, inputs, tflm=True, dtype=c.dtype, litert=False, guard=guard)
        return
    check(model, inputs, tflm=tflm, dtype=c.dtype, guard=guard)


def ours(model: bytes, emulate: str = "tflite") -> tflite_ref.Interpreter:
    it = tflite_ref.Interpreter(model_content=model, emulate=emulate)
    it.allocate_tensors()
    return it


# -- CONV_2D -----------------------------------------------------------------------------------
C = Case("CONV_2D", "INT8", (1, 8, 8, 3))
CONV_CASES = [
    C,
    replace(C, stride=(2, 2)),
    replace(C, padding="VALID", stride=(2, 1)),
    replace(C, dilation=(2, 2), activation="RELU6"),
    replace(C, in_shape=(2, 9, 7, 6), kernel=(2, 3), padding="VALID", dilation=(1, 2),
            activation="RELU"),
    replace(C, in_shape=(1, 6, 6, 6), groups=3, channels=6),
    replace(C, in_shape=(2, 5, 5, 8), groups=2, channels=4, stride=(2, 2), per_channel=False),
    replace(C, kernel=(1, 1), in_shape=(1, 6, 6, 16), channels=8),
    replace(C, kernel=(1, 1), in_shape=(1, 7, 7, 5), stride=(2, 2), bias=None),
    replace(C, in_shape=(1, 4, 4, 2), kernel=(5, 5), activation="RELU_N1_TO_1"),
    replace(C, const_filter=False, seed=3),
    replace(C, const_bias=False, stride=(2, 2)),
    replace(C, const_filter=False, const_bias=False, in_shape=(1, 6, 6, 4), groups=2),
    replace(C, dtype="FLOAT32"),
    replace(C, dtype="FLOAT32", stride=(2, 2), dilation=(1, 2), activation="RELU6"),
    replace(C, dtype="FLOAT32", in_shape=(1, 6, 6, 4), groups=2, padding="VALID", bias=None),
    replace(C, dtype="FLOAT32", kernel=(1, 1), activation="RELU"),
    replace(C, dtype="FLOAT32", const_filter=False),
    replace(C, dtype="FLOAT32", const_filter=False, const_bias=False),
    replace(C, dtype="INT16"),
    replace(C, dtype="INT16", stride=(2, 2), padding="VALID", activation="RELU"),
    replace(C, dtype="INT16", in_shape=(1, 6, 6, 4), groups=2, per_channel=False),
    replace(C, dtype="INT16", bias="INT32", bias_option="INT32"),
    replace(C, dtype="INT16", bias=None),
    replace(C, dtype="UINT8", per_channel=False),
    replace(C, dtype="UINT8", per_channel=False, stride=(2, 2), activation="RELU6"),
    replace(C, dtype="UINT8", per_channel=False, in_shape=(1, 5, 5, 4), groups=2,
            padding="VALID"),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[c.id for c in CONV_CASES])
def test_conv_2d(case: Case) -> None:
    run_case(case)


@st.composite
def conv_cases(draw: st.DrawFn, op: str) -> Case:
    dtype = draw(st.sampled_from(["INT8", "INT8", "FLOAT32", "INT16", "UINT8"]), label="dtype")
    n = draw(st.integers(1, 2), label="batch")
    kh, kw = draw(st.integers(1, 4), label="kh"), draw(st.integers(1, 4), label="kw")
    sh, sw = draw(st.integers(1, 3), label="sh"), draw(st.integers(1, 3), label="sw")
    dh, dw = draw(st.integers(1, 3), label="dh"), draw(st.integers(1, 3), label="dw")
    padding = draw(st.sampled_from(["SAME", "VALID"]), label="padding")
    # VALID needs the dilated filter to fit the image.
    h = draw(st.integers((kh - 1) * dh + 1 if padding == "VALID" else 1, 10), label="h")
    w = draw(st.integers((kw - 1) * dw + 1 if padding == "VALID" else 1, 10), label="w")
    if op == "CONV_2D":
        groups = draw(st.sampled_from([1, 1, 2, 3]), label="groups")
        cin = groups * draw(st.integers(1, 3), label="cin/group")
        channels = groups * draw(st.integers(1, 3), label="oc/group")
    else:
        groups, cin = 1, draw(st.integers(1, 6), label="cin")
        channels = draw(st.integers(1, 3), label="depth multiplier")
    return Case(op, dtype, (n, h, w, cin), (kh, kw), channels, (sh, sw), (dh, dw), padding,
                draw(st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]), label="act"),
                groups, per_channel=dtype != "UINT8" and draw(st.booleans(), label="per-ch"),
                bias=draw(st.sampled_from(["default", "default", None]), label="bias"),
                seed=draw(st.integers(0, 2**16), label="seed"))


@given(case=conv_cases("CONV_2D"))
@settings(max_examples=250, deadline=None)
def test_conv_2d_random(case: Case) -> None:
    run_case(case, guard=False)


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_empty_output(op: str) -> None:
    """VALID with a filter taller than the image: out_h = (2 + 3 - 4) / 3 = 0 (C truncation);
    LiteRT returns an empty tensor (TFLM is not asked: it cannot allocate one)."""
    c = Case(op, "INT8", (1, 2, 5, 3), kernel=(4, 3), padding="VALID", stride=(3, 1),
             channels=4 if op == "CONV_2D" else 1)
    assert output_shape(c)[1] == 0
    model, inputs = build(c)
    assert_matches_litert(model, inputs, skip=litert_temporaries(model))


def test_conv_2d_follows_resize_tensor_input() -> None:
    """The output shape comes from the input shape at allocate_tensors (batch 1 -> 3)."""
    model, _ = build(replace(C, stride=(2, 2)))
    it = ours(model)
    it.resize_tensor_input(it.get_input_details()[0]["index"], [3, 8, 8, 3])
    it.allocate_tensors()
    x = random_array((3, 8, 8, 3), np.int8, np.random.default_rng(5))
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    ref = Interpreter(model_content=model,
                      experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ref.resize_tensor_input(ref.get_input_details()[0]["index"], [3, 8, 8, 3])
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], x)
    ref.invoke()
    out = it.get_output_details()[0]["index"]
    np.testing.assert_array_equal(it.get_tensor(out), ref.get_tensor(out))
    assert it.get_tensor(out).shape == (3, 4, 4, 4)


def test_conv_2d_int16_int32_bias_needs_the_option_in_litert() -> None:
    """LiteRT reads a 16x8 bias as int64 unless quantized_bias_type=INT32: we refuse that model
    under emulate="tflite"; TFLM decides by the bias type and accumulates in int32."""
    model, inputs = build(replace(C, dtype="INT16", bias="INT32"))
    with pytest.raises(ModelValidationError, match="quantized_bias_type=INT32"):
        ours(model, "tflite")
    assert_matches_tflm(model, inputs)


def test_conv_2d_int16_accumulators_differ() -> None:
    """The int64 accumulator's 15-bit multiplier and the int32 one give different results, and
    each matches its runtime (so the two int16 paths are really exercised)."""
    base = replace(C, dtype="INT16", in_shape=(1, 8, 8, 8), channels=8, seed=11)
    m64, x64 = build(replace(base, bias="INT64"))
    m32, x32 = build(replace(base, bias="INT32", bias_option="INT32"))
    check(m64, x64, tflm=True, dtype="INT16")
    check(m32, x32, tflm=True, dtype="INT16")
    y64, y32 = (run_litert(m, x)[tflite_ref.load(m).subgraphs[0].outputs[0]]
                for m, x in ((m64, x64), (m32, x32)))
    assert np.count_nonzero(y64 != y32) > 0


def test_conv_2d_uint8_is_tflite_only() -> None:
    model, _ = build(replace(C, dtype="UINT8", per_channel=False))
    with pytest.raises(UnsupportedOpError, match="tflm"):
        ours(model, "tflm")


def test_conv_2d_groups_must_divide_channels() -> None:
    """6 input channels and a 4-deep filter: not a grouped conv (conv.cc Prepare)."""
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", (1, 6, 6, 6), "FLOAT32")
    w = sg.tensor("w", (4, 3, 3, 4), "FLOAT32", data=np.ones((4, 3, 3, 4), np.float32))
    y = sg.tensor("y", (1, 6, 6, 4), "FLOAT32")
    sg.operator("CONV_2D", [x, w, None], [y], {"padding": "SAME"})
    sg.inputs, sg.outputs = [x], [y]
    with pytest.raises(ModelValidationError, match="multiple of filter depth"):
        ours(mb.build())


# -- DEPTHWISE_CONV_2D -------------------------------------------------------------------------
D = Case("DEPTHWISE_CONV_2D", "INT8", (1, 8, 8, 4), channels=1)
DEPTHWISE_CASES = [
    D,
    replace(D, channels=2, stride=(2, 2)),
    replace(D, channels=3, in_shape=(2, 7, 9, 2), padding="VALID", activation="RELU6"),
    replace(D, dilation=(2, 3), kernel=(2, 2), activation="RELU"),
    replace(D, per_channel=False, bias=None),
    replace(D, in_shape=(1, 1, 1, 8), kernel=(1, 1)),
    replace(D, const_filter=False, channels=2),
    replace(D, const_bias=False, in_shape=(1, 12, 12, 4)),
    replace(D, dtype="FLOAT32"),
    replace(D, dtype="FLOAT32", channels=2, stride=(1, 2), dilation=(2, 1), padding="VALID"),
    replace(D, dtype="FLOAT32", bias=None, activation="RELU_N1_TO_1"),
    replace(D, dtype="INT16"),
    replace(D, dtype="INT16", channels=2, stride=(2, 2), per_channel=False),
    replace(D, dtype="UINT8", per_channel=False),
    replace(D, dtype="UINT8", per_channel=False, channels=2, padding="VALID",
            activation="RELU"),
    # Larger images: the per-tap loop (the cases above mostly take the small-image einsum).
    replace(D, in_shape=(1, 20, 20, 5), stride=(2, 2)),
    replace(D, in_shape=(1, 17, 13, 3), channels=2, dilation=(2, 3), activation="RELU6"),
    replace(D, in_shape=(2, 12, 11, 6), stride=(3, 2), padding="VALID", dilation=(1, 2)),
    replace(D, dtype="FLOAT32", in_shape=(1, 20, 20, 5), stride=(2, 1), channels=2),
    replace(D, dtype="INT16", in_shape=(1, 16, 12, 4), stride=(1, 2)),
    replace(D, dtype="UINT8", per_channel=False, in_shape=(1, 12, 12, 4), stride=(2, 2)),
    # One input channel: an im2col GEMM (micro_speech's 10x8 depthwise).
    replace(D, in_shape=(1, 49, 40, 1), kernel=(10, 8), channels=8, stride=(2, 2)),
    replace(D, dtype="FLOAT32", in_shape=(1, 9, 9, 1), kernel=(4, 3), channels=3),
]


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=[c.id for c in DEPTHWISE_CASES])
def test_depthwise_conv_2d(case: Case) -> None:
    run_case(case)


@given(case=conv_cases("DEPTHWISE_CONV_2D"))
@settings(max_examples=150, deadline=None)
def test_depthwise_conv_2d_random(case: Case) -> None:
    run_case(case, guard=False)


@pytest.mark.parametrize("case", [
    replace(D, dtype="FLOAT32", in_shape=(1, 20, 20, 5), stride=(2, 1), channels=2),
    replace(D, dtype="FLOAT32", in_shape=(2, 25, 5, 16), activation="RELU"),
    replace(D, dtype="FLOAT32", in_shape=(1, 14, 11, 3), kernel=(2, 4), dilation=(2, 1),
            padding="VALID", activation="RELU6", bias=None),
], ids=lambda c: c.id)
def test_depthwise_conv_2d_float_per_tap_is_bit_exact(case: Case) -> None:
    """The per-tap strategy adds the products in float32 in reference_ops::DepthwiseConv's
    order (filter_y, filter_x, then the bias), so LiteRT REF's float output is reproduced bit
    for bit, not just to float32 rounding."""
    model, inputs = build(case)
    assert assert_matches_litert(model, inputs, rtol=0.0, atol=0.0) >= 1


def test_depthwise_conv_2d_depth_multiplier_option() -> None:
    """TFLM (and LiteRT's int16 kernel) loop over the *option*; a wrong option is refused
    there, while LiteRT's int8 kernel computes the multiplier from the shapes."""
    model, inputs = _with_depthwise_option(replace(D, channels=2), 1)
    assert tflite_ref.load(model).subgraphs[0].operators[0].options["depth_multiplier"] == 1
    check(model, inputs, tflm=False, dtype="INT8")
    with pytest.raises(ModelValidationError, match="depth_multiplier"):
        ours(model, "tflm")


def _with_depthwise_option(c: Case, option: int) -> tuple[bytes, list[np.ndarray]]:
    model, inputs = build(c)
    m = tflite_ref.load(model)
    sg = m.subgraphs[0]
    mb = ModelBuilder()
    out = mb.subgraph()
    handles = []
    for t in sg.tensors:
        q = t.quantization
        kw: dict[str, Any] = {}
        if q is not None and q.scale.size:
            kw = {"scale": list(q.scale), "zero_point": list(q.zero_point),
                  "quantized_dimension": q.quantized_dimension}
        handles.append(out.tensor(t.name, t.shape, t.type_name, data=t.data, **kw))
    op = sg.operators[0]
    opts = dict(op.options)
    opts["depth_multiplier"] = option
    out.operator(op.name, [handles[i] if i >= 0 else None for i in op.inputs],
                 [handles[i] for i in op.outputs], opts)
    out.inputs = [handles[i] for i in sg.inputs]
    out.outputs = [handles[i] for i in sg.outputs]
    return mb.build(), inputs


# -- TRANSPOSE_CONV ----------------------------------------------------------------------------
TC = Case("TRANSPOSE_CONV", "INT8", (1, 4, 5, 3), channels=4, stride=(2, 2))
TRANSPOSE_CASES = [
    TC,
    replace(TC, padding="VALID"),
    replace(TC, stride=(1, 1), kernel=(2, 3), padding="VALID", activation="RELU"),
    replace(TC, stride=(3, 2), kernel=(2, 2), out_extra=(2, 1)),
    replace(TC, kernel=(1, 1), stride=(2, 2), out_extra=(1, 0)),
    replace(TC, in_shape=(2, 3, 3, 2), kernel=(4, 4), per_channel=False, bias=None),
    replace(TC, const_filter=False),
    replace(TC, const_filter=False, const_bias=False, dtype="INT16"),
    replace(TC, dtype="FLOAT32"),
    replace(TC, dtype="FLOAT32", padding="VALID", stride=(1, 2), activation="RELU6"),
    replace(TC, dtype="FLOAT32", bias=None, out_extra=(1, 1)),
    replace(TC, dtype="INT16"),
    replace(TC, dtype="INT16", padding="VALID", per_channel=False, bias=None),
    replace(TC, dtype="UINT8", per_channel=False),
    replace(TC, dtype="UINT8", per_channel=False, padding="VALID", bias=None),
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=[c.id for c in TRANSPOSE_CASES])
def test_transpose_conv(case: Case) -> None:
    run_case(case)


@st.composite
def transpose_cases(draw: st.DrawFn) -> Case:
    dtype = draw(st.sampled_from(["INT8", "INT8", "FLOAT32", "INT16", "UINT8"]), label="dtype")
    kh, kw = draw(st.integers(1, 4), label="kh"), draw(st.integers(1, 4), label="kw")
    sh, sw = draw(st.integers(1, 3), label="sh"), draw(st.integers(1, 3), label="sw")
    padding = draw(st.sampled_from(["SAME", "VALID"]), label="padding")
    extra = (draw(st.integers(0, sh - 1), label="extra h"),
             draw(st.integers(0, sw - 1), label="extra w"))
    shape = (draw(st.integers(1, 2), label="n"), draw(st.integers(1, 5), label="h"),
             draw(st.integers(1, 5), label="w"), draw(st.integers(1, 4), label="cin"))
    return Case("TRANSPOSE_CONV", dtype, shape, (kh, kw), draw(st.integers(1, 4), label="oc"),
                (sh, sw), padding=padding,
                activation=draw(st.sampled_from(["NONE", "RELU", "RELU6"]), label="act"),
                per_channel=dtype != "UINT8" and draw(st.booleans(), label="per-ch"),
                bias=draw(st.sampled_from(["default", None]), label="bias"), out_extra=extra,
                seed=draw(st.integers(0, 2**16), label="seed"))


@given(case=transpose_cases())
@settings(max_examples=150, deadline=None)
def test_transpose_conv_random(case: Case) -> None:
    run_case(case, guard=False)


def test_transpose_conv_int16_int32_bias_litert_only() -> None:
    """int32 bias with quantized_bias_type=INT32: LiteRT accumulates in int32; TFLM's kernel
    reads 16x8 biases as int64, so tflite_ref refuses the model under emulate="tflm"."""
    model, inputs = build(replace(TC, dtype="INT16", bias="INT32", bias_option="INT32"))
    check(model, inputs, tflm=False, dtype="INT16")
    with pytest.raises(UnsupportedOpError, match="INT64"):
        ours(model, "tflm")


def _tconv_runtime_shape_model(out_shape: tuple[int, ...]) -> bytes:
    mb = ModelBuilder()
    sg = mb.subgraph()
    shape_t = sg.tensor("output_shape", (4,), "INT32")
    w = sg.tensor("w", (2, 3, 3, 2), "FLOAT32",
                  data=np.random.default_rng(0).uniform(-1, 1, (2, 3, 3, 2)).astype(np.float32))
    x = sg.tensor("x", (1, 3, 3, 2), "FLOAT32")
    y = sg.tensor("y", out_shape, "FLOAT32")
    sg.operator("TRANSPOSE_CONV", [shape_t, w, x], [y],
                {"padding": "SAME", "stride_h": 2, "stride_w": 2})
    sg.inputs, sg.outputs = [shape_t, x], [y]
    return mb.build()


def test_transpose_conv_runtime_output_shape() -> None:
    """output_shape computed at run time (LiteRT makes the output dynamic; TFLM cannot)."""
    model = _tconv_runtime_shape_model((1, 6, 5, 2))
    x = random_array((1, 3, 3, 2), np.float32, np.random.default_rng(1))
    assert assert_matches_litert(model, [np.array([1, 6, 5, 2], np.int32), x],
                                 rtol=0.0, atol=0.0, skip=litert_temporaries(model)) >= 1


def test_transpose_conv_bad_runtime_output_shape_is_a_runtime_error() -> None:
    model = _tconv_runtime_shape_model((1, 6, 5, 2))
    it = ours(model)
    it.set_tensor(it.get_input_details()[0]["index"], np.array([1, 9, 5, 2], np.int32))
    it.set_tensor(it.get_input_details()[1]["index"], np.zeros((1, 3, 3, 2), np.float32))
    with pytest.raises(KernelRuntimeError, match="TRANSPOSE_CONV"):
        it.invoke()


def test_transpose_conv_inconsistent_output_shape_fails_in_prepare() -> None:
    c = replace(TC, dtype="FLOAT32")
    mb = ModelBuilder()
    sg = mb.subgraph()
    shape_t = sg.tensor("output_shape", (4,), "INT32", data=np.array([1, 20, 10, 4], np.int32))
    w = sg.tensor("w", (4, 3, 3, 3), "FLOAT32", data=np.ones((4, 3, 3, 3), np.float32))
    x = sg.tensor("x", c.in_shape, "FLOAT32")
    y = sg.tensor("y", (1, 20, 10, 4), "FLOAT32")
    sg.operator("TRANSPOSE_CONV", [shape_t, w, x], [y], {"padding": "SAME", "stride_h": 2,
                                                         "stride_w": 2})
    sg.inputs, sg.outputs = [x], [y]
    with pytest.raises(ModelValidationError, match="needs an input of 10"):
        ours(mb.build())


# -- the float64 requantization path -----------------------------------------------------------
@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_exact_float_requantization_equals_int64_reference(data: st.DataObject) -> None:
    """ExactFloatMBQM (used when prepare bounds |acc|) is bit-identical to the int64 reference
    MultiplyByQuantizedMultiplier of tflite_ref.quant plus the zero point, rounding ties,
    extremes and all three modes included."""
    accumulator = data.draw(st.sampled_from(["int32", "int64"]), label="accumulator")
    channels = data.draw(st.integers(1, 5), label="channels")
    mult = np.array(data.draw(st.lists(st.integers(1 << 30, (1 << 31) - 1), min_size=channels,
                                       max_size=channels), label="m"), np.int64)
    lo_shift = -31 if accumulator == "int32" else -20
    shift = np.array(data.draw(st.lists(st.integers(lo_shift, 4), min_size=channels,
                                        max_size=channels), label="shift"), np.int64)
    bound = data.draw(st.sampled_from([100, 1 << 16, 1 << 22, (1 << 31) - (1 << 17)]),
                      label="bound")
    zero_point = data.draw(st.sampled_from([0, -128, 5, 127]), label="zero point")
    plan = ExactFloatMBQM.plan(mult, shift, accumulator, float(bound), zero_point)
    if plan is None:  # the bound does not allow the fast path for these shifts
        return
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    x = rng.integers(-bound, bound + 1, (64, channels))
    x[0], x[1], x[2] = bound, -bound, 0
    # Exact rounding ties of the final shift: t = SRDHM(x, m) = ±2^(right-1)·(2k+1).
    got = plan(x.astype(np.float64))
    if accumulator == "int32":
        want = multiply_by_quantized_multiplier(x, mult, shift)
    else:
        want = multiply_by_quantized_multiplier_int64(x, mult, shift)
    np.testing.assert_array_equal(got, np.asarray(want) + zero_point)


def test_exact_float_requantization_ties() -> None:
    """Accumulators whose SRDHM lands exactly halfway between two outputs, both signs."""
    m, s = np.array([1 << 30], np.int64), np.array([-3], np.int64)  # real multiplier 2^-4
    plan = ExactFloatMBQM.plan(m, s, "int32", 1000.0, 0)
    assert plan is not None and plan.mode == "one_product"
    x = np.arange(-1000, 1001, dtype=np.int64).reshape(-1, 1)  # SRDHM = x/2 -> ties at /8
    np.testing.assert_array_equal(plan(x.astype(np.float64)),
                                  multiply_by_quantized_multiplier(x, m, s))


def test_requantization_falls_back_to_int64_when_unbounded() -> None:
    m, s = np.array([1 << 30], np.int64), np.array([3], np.int64)
    rq = Requantization.build(m, s, "int32", 0, -128, 127, np.dtype(np.int8), float(1 << 30))
    assert rq.exact_float is None  # x·2^3 could wrap int32: the reference path runs
    acc = np.array([[1 << 29], [-(1 << 29)], [12345]], np.int64)
    want = np.clip(multiply_by_quantized_multiplier(acc, m, s), -128, 127)
    np.testing.assert_array_equal(rq.apply(acc), want.astype(np.int8))


# -- converter-made layers of the shared model corpus ------------------------------------------
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "models"
# LiteRT crashes on keyword_scrambled_8bit (double free, which would take pytest down) and
# refuses person_detect (single-scale tensors with quantized_dimension 3); person_detect is
# compared with TFLM instead (test_person_detect_matches_tflm).
CORPUS_EXCLUDED = {"keyword_scrambled_8bit", "person_detect"}


def corpus_models(ops: set[str]) -> list[Path]:
    """The corpus models that contain one of ``ops`` and that LiteRT loads."""
    out = []
    for path in sorted(CORPUS.glob("*/*.tflite")):
        if path.stem in CORPUS_EXCLUDED:
            continue
        try:
            model = tflite_ref.load(path)
        except Exception:  # noqa: BLE001, S112 - a model the reader refuses has no layers to check
            continue
        if ops & {op.opcode for op in model.subgraphs[0].operators}:
            out.append(path)
    return out


def check_corpus_layers(path: Path, ops: set[str]) -> int:
    """Each ``ops`` layer of a real model, fed LiteRT's own input tensors, reproduces LiteRT's
    output tensor (so a difference elsewhere in the model cannot hide or fake one here).
    Returns how many layers were compared (hybrid float x int8 layers included)."""
    from harness import assert_tensor_matches, random_inputs

    from tflite_ref.kernels.registry import OpContext, key_dtype, lookup

    content = path.read_bytes()
    ref = run_litert(content, random_inputs(content, np.random.default_rng(0)))
    model = tflite_ref.load(content)
    sg = model.subgraphs[0]
    compared = 0
    for op in sg.operators:
        if op.opcode not in ops:
            continue
        shapes = tuple(sg.tensors[i].shape if i >= 0 else None for i in op.inputs)
        ctx = OpContext(model=model, subgraph=sg, op=op, emulate="tflite", input_shapes=shapes)
        kernel = lookup(op, key_dtype(op, sg), ctx.describe_types(), "tflite")
        data = kernel.prepare(ctx)
        inputs = [None if i < 0 else ref[i] if i in ref else sg.tensors[i].data
                  for i in op.inputs]
        out = kernel.eval(data, *inputs)
        assert_tensor_matches(np.asarray(out), ref[op.outputs[0]],
                              f"{path.parent.name}/{path.name} {op.locator}")
        compared += 1
    return compared


CONV_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"}


@pytest.mark.parametrize("path", corpus_models(CONV_OPS),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_conv_layers(path: Path) -> None:
    check_corpus_layers(path, CONV_OPS)


def test_person_detect_matches_tflm() -> None:
    """TFLM's own person-detection model (14 CONV_2D, 14 DEPTHWISE_CONV_2D; int8, filters
    with quantized_dimension 3 that LiteRT refuses), whole model, vs TFLM."""
    from harness import random_inputs

    content = (CORPUS / "tflm" / "person_detect.tflite").read_bytes()
    assert_matches_tflm(content, random_inputs(content, np.random.default_rng(0)))
