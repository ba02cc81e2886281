"""FULLY_CONNECTED and BATCH_MATMUL (tflite_ref/kernels/fully_connected.py).

Each case is a one-operator model built with tflite_ref's writer, compared with LiteRT
``BUILTIN_REF`` on every tensor (integers exactly, floats within 1e-5 of the output's magnitude)
and with TFLite Micro (``emulate="tflm"``) on the outputs where TFLM has the kernel.

FULLY_CONNECTED is where the two runtimes differ on purpose: LiteRT's reference kernel
requantizes in double precision, TFLM with the integer multiplier (and, for 16x8 with an int64
bias, the 15-bit one).  :func:`test_fully_connected_emulations_differ` shows that the two
emulations really produce different outputs, each matching its own runtime.

Left out, on purpose: uint8 and int16 x int8 BATCH_MATMUL / int32 BATCH_MATMUL output against
TFLM (TFLM has no such kernels); per-channel INT4 weights against TFLM (its Prepare refuses
them).
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
from test_conv import check_corpus_layers, corpus_models

import tflite_ref
from tflite_ref.errors import ModelValidationError, UnsupportedOpError
from tflite_ref.model.writer import ModelBuilder

NP = {"FLOAT32": np.float32, "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16,
      "INT32": np.int32, "INT64": np.int64}
QRANGE = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767),
          "INT32": (-(2**31), 2**31 - 1)}


def litert_temporaries(model: bytes) -> range:
    """LiteRT lists its scratch tensors after the model's own; they have no counterpart here."""
    n = len(tflite_ref.load(model).subgraphs[0].tensors)
    return range(n, n + 1000)


def ours(model: bytes, inputs: list[np.ndarray] | None = None, emulate: str = "tflite"
         ) -> tflite_ref.Interpreter:
    it = tflite_ref.Interpreter(model_content=model, emulate=emulate)
    it.allocate_tensors()
    if inputs is not None:
        for d, x in zip(it.get_input_details(), inputs):
            it.set_tensor(d["index"], x)
        it.invoke()
    return it


def output_of(it: tflite_ref.Interpreter) -> np.ndarray:
    return it.get_tensor(it.get_output_details()[0]["index"])


def check(model: bytes, inputs: list[np.ndarray], *, tflm: bool, quantized: bool,
          guard: bool = True) -> None:
    """tflite_ref vs LiteRT REF (every tensor) and, when ``tflm``, vs TFLM (outputs).

    ``guard``: a quantized output squeezed into a few values proves little, so such a test
    fails (drawn cases skip it: tiny shapes may legitimately have few outputs).
    """
    # Float FULLY_CONNECTED/BATCH_MATMUL sum in the reference kernels' order: the same bits.
    tol = {"rtol": 0.0, "atol": 0.0}  # floats too: the float kernels keep the runtimes' order
    assert assert_matches_litert(model, inputs, skip=litert_temporaries(model), **tol) >= 1
    if guard and quantized:
        y = output_of(ours(model, inputs))
        assert len(np.unique(y)) >= min(6, max(1, y.size // 3)), \
            f"degenerate test: the output has only the values {np.unique(y)}"
    if tflm:
        assert_matches_tflm(model, inputs, **tol)


def _act_input_scale(activation: str, s_w: float, acc_std: float) -> float | None:
    """For a bounded activation: an input scale giving real accumulators of std span/3."""
    span = {"RELU6": 6.0, "RELU_N1_TO_1": 2.0}.get(activation)
    return None if span is None else span / 3 / (s_w * acc_std)


# -- FULLY_CONNECTED ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FC:
    dtype: str  # FLOAT32 | INT8 | INT16 | UINT8
    in_shape: tuple[int, ...]
    units: int = 5
    keep_num_dims: bool = False
    activation: str = "NONE"
    per_channel: bool = False
    weights: str = "default"  # or "INT4"
    weight_zero_point: int = 0  # per-tensor weights only
    bias: str | None = "default"  # None: absent (-1); or "INT32"/"INT64"
    bias_option: str | None = None
    const_weights: bool = True
    const_bias: bool = True
    seed: int = 0

    @property
    def depth(self) -> int:
        return self.in_shape[-1]

    @property
    def id(self) -> str:
        parts = ["fully_connected", self.dtype.lower(), "x".join(map(str, self.in_shape)),
                 f"u{self.units}"]
        if self.dtype != "FLOAT32":
            parts.append("per-channel" if self.per_channel else "per-tensor")
        if self.weights != "default":
            parts.append(f"w-{self.weights.lower()}")
        if self.weight_zero_point:
            parts.append(f"wzp{self.weight_zero_point}")
        if self.keep_num_dims:
            parts.append("keep")
        if self.activation != "NONE":
            parts.append(self.activation.lower())
        if self.bias is None:
            parts.append("nobias")
        elif self.bias != "default":
            parts.append(f"bias-{self.bias.lower()}")
        if not self.const_weights:
            parts.append("runtime-weights")
        if not self.const_bias:
            parts.append("runtime-bias")
        return "-".join(parts)

    def output_shape(self) -> tuple[int, ...]:
        if self.keep_num_dims:
            return tuple(self.in_shape[:-1]) + (self.units,)
        return (math.prod(self.in_shape) // self.depth, self.units)


def build_fc(c: FC) -> tuple[bytes, list[np.ndarray]]:
    rng = np.random.default_rng(c.seed)
    mb = ModelBuilder(description=c.id)
    sg = mb.subgraph("main")
    wshape = (c.units, c.depth)
    if c.dtype == "FLOAT32":
        x = sg.tensor("input", c.in_shape, "FLOAT32")
        wdata = rng.uniform(-1, 1, wshape).astype(np.float32)
        w = sg.tensor("weights", wshape, "FLOAT32", data=wdata if c.const_weights else None)
        bdata = rng.uniform(-2, 2, c.units).astype(np.float32)
        b = (sg.tensor("bias", (c.units,), "FLOAT32", data=bdata if c.const_bias else None)
             if c.bias is not None else None)
        y = sg.tensor("output", c.output_shape(), "FLOAT32")
    else:
        lo, hi = QRANGE[c.dtype]
        wtype = {"UINT8": "UINT8"}.get(c.dtype, "INT4" if c.weights == "INT4" else "INT8")
        if wtype == "UINT8":
            wdata = rng.integers(0, 256, wshape).astype(np.uint8)
            z_w = c.weight_zero_point or int(rng.integers(110, 147))
            w_span = 255
        elif wtype == "INT4":
            wdata, z_w, w_span = rng.integers(-7, 8, wshape).astype(np.int8), 0, 15
        else:
            wdata, z_w, w_span = (rng.integers(-127, 128, wshape).astype(np.int8),
                                  c.weight_zero_point, 255)
        s_w = (rng.uniform(0.002, 0.02, c.units) if c.per_channel
               else np.array([rng.uniform(0.002, 0.02)]))
        acc_std = math.sqrt(c.depth) * (hi - lo) / math.sqrt(12) * w_span / math.sqrt(12)
        s_in = float(rng.uniform(0.01, 0.1))
        s_out = s_in * float(np.mean(s_w)) * acc_std / ((hi - lo) / 6)
        act_s_in = _act_input_scale(c.activation, float(np.mean(s_w)), acc_std)
        if act_s_in is not None:
            s_in, s_out = act_s_in, {"RELU6": 6.0, "RELU_N1_TO_1": 2.0}[c.activation] / (
                (hi - lo) / 2)
        z_in = {"INT8": int(rng.integers(-20, 21)), "UINT8": int(rng.integers(100, 157)),
                "INT16": 0}[c.dtype]
        z_out = {"INT8": int(rng.integers(-10, 11)), "UINT8": int(rng.integers(110, 147)),
                 "INT16": 0}[c.dtype]
        x = sg.tensor("input", c.in_shape, c.dtype, scale=s_in, zero_point=z_in)
        w = sg.tensor("weights", wshape, wtype, data=wdata if c.const_weights else None,
                      scale=list(s_w), zero_point=[z_w] * len(s_w), quantized_dimension=0)
        b = None
        if c.bias is not None:
            btype = c.bias if c.bias != "default" else ("INT64" if c.dtype == "INT16"
                                                        else "INT32")
            # Per-tensor weights get a per-tensor bias scale: LiteRT reads a multi-scale bias's
            # legacy scale as 0 and would fail its bias-scale check.
            bscale = [float(np.float32(s_in) * np.float32(s)) for s in s_w]
            bdata = rng.integers(-int(acc_std), int(acc_std) + 1, c.units).astype(NP[btype])
            b = sg.tensor("bias", (c.units,), btype, data=bdata if c.const_bias else None,
                          scale=bscale, zero_point=[0] * len(bscale))
        y = sg.tensor("output", c.output_shape(), c.dtype, scale=s_out, zero_point=z_out)
    options: dict[str, Any] = {"fused_activation_function": c.activation,
                               "keep_num_dims": c.keep_num_dims}
    if c.bias_option is not None:
        options["quantized_bias_type"] = c.bias_option
    sg.operator("FULLY_CONNECTED", [x, w, b], [y], options)
    sg.inputs = [x] + ([] if c.const_weights else [w])
    inputs = [random_array(c.in_shape, NP[c.dtype], rng)] + ([] if c.const_weights else [wdata])
    if not c.const_bias and b is not None:
        sg.inputs.append(b)
        inputs.append(bdata)
    sg.outputs = [y]
    return mb.build(), inputs


def run_fc(c: FC, guard: bool = True) -> None:
    model, inputs = build_fc(c)
    tflm = c.dtype != "UINT8" and not (c.weights == "INT4" and c.per_channel)
    check(model, inputs, tflm=tflm, quantized=c.dtype != "FLOAT32", guard=guard)


F = FC("INT8", (2, 16))
FC_CASES = [
    F,
    replace(F, per_channel=True),
    replace(F, in_shape=(2, 3, 24), keep_num_dims=True, per_channel=True, activation="RELU"),
    replace(F, in_shape=(2, 3, 24), activation="RELU6"),
    replace(F, in_shape=(1, 2, 2, 8), units=3, activation="RELU_N1_TO_1"),
    replace(F, bias=None, units=7),
    replace(F, in_shape=(4, 64), units=10, weight_zero_point=3),
    replace(F, weights="INT4", in_shape=(3, 32)),
    replace(F, weights="INT4", per_channel=True, in_shape=(3, 32)),
    replace(F, const_weights=False, per_channel=True),
    replace(F, const_weights=False, const_bias=False, in_shape=(3, 20)),
    replace(F, const_bias=False, dtype="INT16", per_channel=True),
    replace(F, dtype="FLOAT32"),
    replace(F, dtype="FLOAT32", in_shape=(2, 3, 7), keep_num_dims=True, activation="RELU6"),
    replace(F, dtype="FLOAT32", bias=None, in_shape=(1, 4, 6)),
    replace(F, dtype="FLOAT32", const_weights=False),
    replace(F, dtype="FLOAT32", const_bias=False),
    replace(F, dtype="INT16"),
    replace(F, dtype="INT16", per_channel=True, in_shape=(3, 40), keep_num_dims=True),
    replace(F, dtype="INT16", bias="INT32", bias_option="INT32", per_channel=True),
    replace(F, dtype="INT16", bias=None, activation="RELU"),
    replace(F, dtype="UINT8"),
    replace(F, dtype="UINT8", in_shape=(2, 2, 20), keep_num_dims=True, activation="RELU"),
]


@pytest.mark.parametrize("case", FC_CASES, ids=[c.id for c in FC_CASES])
def test_fully_connected(case: FC) -> None:
    run_fc(case)


@st.composite
def fc_cases(draw: st.DrawFn) -> FC:
    dtype = draw(st.sampled_from(["INT8", "INT8", "FLOAT32", "INT16", "UINT8"]), label="dtype")
    rank = draw(st.integers(1, 4), label="rank")
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank - 1, max_size=rank - 1),
                       label="outer dims")) + (draw(st.integers(1, 48), label="depth"),)
    per_channel = dtype in ("INT8", "INT16") and draw(st.booleans(), label="per-channel")
    weights = "INT4" if dtype == "INT8" and draw(st.integers(0, 4), label="int4") == 0 \
        else "default"
    return FC(dtype, shape, draw(st.integers(1, 12), label="units"),
              keep_num_dims=draw(st.booleans(), label="keep"),
              activation=draw(st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]),
                              label="act"),
              per_channel=per_channel, weights=weights,
              bias=draw(st.sampled_from(["default", "default", None]), label="bias"),
              seed=draw(st.integers(0, 2**16), label="seed"))


@given(case=fc_cases())
@settings(max_examples=200, deadline=None)
def test_fully_connected_random(case: FC) -> None:
    run_fc(case, guard=False)


def test_fully_connected_emulations_differ() -> None:
    """LiteRT REF (double-precision requantization) and TFLM (integer multiplier; 15-bit for
    16x8) disagree on some outputs; tflite_ref reproduces each runtime exactly."""
    for c in (FC("INT16", (64, 40), 32, per_channel=True, seed=7),
              FC("INT16", (64, 40), 32, seed=8),
              FC("INT8", (256, 40), 32, per_channel=True, seed=9)):
        model, inputs = build_fc(c)
        check(model, inputs, tflm=True, quantized=True)
        a = output_of(ours(model, inputs, "tflite"))
        b = output_of(ours(model, inputs, "tflm"))
        assert np.count_nonzero(a != b) > 0, c.id


def test_fully_connected_int16_int32_bias_needs_the_option_in_litert() -> None:
    model, inputs = build_fc(FC("INT16", (2, 16), bias="INT32"))
    with pytest.raises(ModelValidationError, match="quantized_bias_type=INT32"):
        ours(model)
    assert_matches_tflm(model, inputs)  # TFLM goes by the bias type


def test_fully_connected_bias_scale_is_checked_for_per_tensor_weights() -> None:
    """GetQuantizedConvolutionMultipler: the bias scale must match s_in·s_w (both runtimes)."""
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", (1, 8), "INT8", scale=0.05)
    w = sg.tensor("w", (3, 8), "INT8", data=np.ones((3, 8), np.int8), scale=0.01)
    b = sg.tensor("b", (3,), "INT32", data=np.zeros(3, np.int32), scale=0.01)
    y = sg.tensor("y", (1, 3), "INT8", scale=0.1)
    sg.operator("FULLY_CONNECTED", [x, w, b], [y])
    sg.inputs, sg.outputs = [x], [y]
    model = mb.build()
    with pytest.raises(ModelValidationError, match="bias scale"):
        ours(model)
    with pytest.raises(RuntimeError):
        run_litert(model, [np.zeros((1, 8), np.int8)])


def test_fully_connected_per_channel_bias_scale_with_per_tensor_weights() -> None:
    """A per-channel bias next to per-tensor weights: LiteRT sees its legacy scale as 0 and
    fails the bias-scale check; TFLM reads the first scale and runs."""
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", (2, 8), "INT8", scale=0.05)
    w = sg.tensor("w", (3, 8), "INT8", data=np.arange(24, dtype=np.int8).reshape(3, 8) - 12,
                  scale=0.01)
    b = sg.tensor("b", (3,), "INT32", data=np.array([5, -7, 9], np.int32),
                  scale=[0.0005] * 3, zero_point=[0] * 3)
    y = sg.tensor("y", (2, 3), "INT8", scale=0.01)
    sg.operator("FULLY_CONNECTED", [x, w, b], [y])
    sg.inputs, sg.outputs = [x], [y]
    model = mb.build()
    with pytest.raises(ModelValidationError, match="bias scale"):
        ours(model)
    assert_matches_tflm(model, [random_array((2, 8), np.int8, np.random.default_rng(0))])


def test_fully_connected_uint8_is_tflite_only() -> None:
    model, _ = build_fc(FC("UINT8", (2, 8)))
    with pytest.raises(UnsupportedOpError, match="tflm"):
        ours(model, emulate="tflm")


# -- BATCH_MATMUL ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BMM:
    lhs: str  # operand types: FLOAT32 | INT8 | INT16
    rhs: str
    out: str
    lhs_shape: tuple[int, ...]
    rhs_shape: tuple[int, ...]
    adj_x: bool = False
    adj_y: bool = False
    const_rhs: bool = True
    seed: int = 0

    @property
    def id(self) -> str:
        types = self.lhs.lower() if self.lhs == self.rhs == self.out else \
            f"{self.lhs.lower()}x{self.rhs.lower()}-{self.out.lower()}"
        parts = ["batch_matmul", types, "x".join(map(str, self.lhs_shape)),
                 "x".join(map(str, self.rhs_shape))]
        if self.adj_x:
            parts.append("adjx")
        if self.adj_y:
            parts.append("adjy")
        if not self.const_rhs:
            parts.append("runtime-rhs")
        return "-".join(parts)

    def output_shape(self) -> tuple[int, ...]:
        rank = max(len(self.lhs_shape), len(self.rhs_shape))
        lx = (1,) * (rank - len(self.lhs_shape)) + self.lhs_shape
        rx = (1,) * (rank - len(self.rhs_shape)) + self.rhs_shape
        batch = tuple(max(a, b) for a, b in zip(lx[:-2], rx[:-2]))
        return batch + (lx[-1] if self.adj_x else lx[-2], rx[-2] if self.adj_y else rx[-1])

    @property
    def depth(self) -> int:
        return self.lhs_shape[-2] if self.adj_x else self.lhs_shape[-1]


def build_bmm(c: BMM) -> tuple[bytes, list[np.ndarray]]:
    rng = np.random.default_rng(c.seed)
    mb = ModelBuilder(description=c.id)
    sg = mb.subgraph("main")

    def quant(t: str, zp: int, scale: float) -> dict[str, Any]:
        if t == "FLOAT32":
            return {}
        return {"scale": scale, "zero_point": zp if c.lhs == "INT8" else 0}

    s_l, s_r = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.01, 0.1))
    lhs = sg.tensor("lhs", c.lhs_shape, c.lhs, **quant(c.lhs, int(rng.integers(-9, 10)), s_l))
    rdata = random_array(c.rhs_shape, NP[c.rhs], rng)
    rhs = sg.tensor("rhs", c.rhs_shape, c.rhs, data=rdata if c.const_rhs else None,
                    **quant(c.rhs, int(rng.integers(-9, 10)), s_r))
    oq: dict[str, Any] = {}
    if c.out in ("INT8", "INT16"):
        span_l = QRANGE[c.lhs][1] - QRANGE[c.lhs][0]
        span_r = QRANGE[c.rhs][1] - QRANGE[c.rhs][0]
        acc_std = math.sqrt(c.depth) * span_l * span_r / 12
        lo, hi = QRANGE[c.out]
        oq = {"scale": s_l * s_r * acc_std / ((hi - lo) / 6),
              "zero_point": int(rng.integers(-10, 11)) if c.out == "INT8" else 0}
    y = sg.tensor("output", c.output_shape(), c.out, **oq)
    sg.operator("BATCH_MATMUL", [lhs, rhs], [y], {"adj_x": c.adj_x, "adj_y": c.adj_y})
    sg.inputs = [lhs] if c.const_rhs else [lhs, rhs]
    sg.outputs = [y]
    inputs = [random_array(c.lhs_shape, NP[c.lhs], rng)]
    if not c.const_rhs:
        inputs.append(rdata)
    return mb.build(), inputs


def run_bmm(c: BMM, guard: bool = True) -> None:
    model, inputs = build_bmm(c)
    # TFLM's BATCH_MATMUL needs one type for operands and output.
    check(model, inputs, tflm=c.lhs == c.rhs == c.out, quantized=c.out != "FLOAT32",
          guard=guard)


B = BMM("INT8", "INT8", "INT8", (2, 3, 5, 8), (8, 6))
BMM_CASES = [
    B,
    replace(B, lhs_shape=(3, 8, 5), rhs_shape=(1, 6, 8), adj_x=True, adj_y=True),
    replace(B, lhs_shape=(2, 1, 4, 8), rhs_shape=(1, 3, 8, 6)),
    replace(B, lhs_shape=(4, 7), rhs_shape=(7, 3), const_rhs=False),
    replace(B, lhs_shape=(2, 3, 4, 7), rhs_shape=(2, 1, 7, 5)),
    replace(B, lhs_shape=(1, 2, 1, 3, 6), rhs_shape=(2, 1, 2, 6, 4)),
    replace(B, lhs="FLOAT32", rhs="FLOAT32", out="FLOAT32"),
    replace(B, lhs="FLOAT32", rhs="FLOAT32", out="FLOAT32", lhs_shape=(3, 8, 5), adj_x=True,
            const_rhs=False),
    replace(B, lhs="INT16", rhs="INT16", out="INT16"),
    replace(B, lhs="INT16", rhs="INT16", out="INT16", lhs_shape=(2, 8, 4), rhs_shape=(6, 8),
            adj_x=True, adj_y=True, const_rhs=False),
    replace(B, lhs="INT16", rhs="INT8", out="INT16"),
    replace(B, out="INT32"),
    replace(B, out="INT32", lhs_shape=(2, 4, 9), rhs_shape=(2, 3, 9), adj_y=True,
            const_rhs=False),
]


@pytest.mark.parametrize("case", BMM_CASES, ids=[c.id for c in BMM_CASES])
def test_batch_matmul(case: BMM) -> None:
    run_bmm(case)


@st.composite
def bmm_cases(draw: st.DrawFn) -> BMM:
    types = draw(st.sampled_from([("INT8", "INT8", "INT8"), ("INT8", "INT8", "INT8"),
                                  ("FLOAT32",) * 3, ("INT16",) * 3, ("INT16", "INT8", "INT16"),
                                  ("INT8", "INT8", "INT32")]), label="types")
    rank_l, rank_r = draw(st.integers(2, 5), label="lhs rank"), draw(st.integers(2, 5),
                                                                     label="rhs rank")
    rank = max(rank_l, rank_r)
    batch = [draw(st.integers(1, 3), label=f"batch {i}") for i in range(rank - 2)]
    lb = [d if draw(st.booleans(), label="lhs broadcast") else 1 for d in batch]
    rb = [d if draw(st.booleans(), label="rhs broadcast") else 1 for d in batch]
    m, k, n = (draw(st.integers(1, 6), label="rows"), draw(st.integers(1, 24), label="depth"),
               draw(st.integers(1, 6), label="cols"))
    adj_x, adj_y = draw(st.booleans(), label="adj_x"), draw(st.booleans(), label="adj_y")
    lhs = tuple(lb[len(lb) - (rank_l - 2):] if rank_l > 2 else []) + ((k, m) if adj_x
                                                                     else (m, k))
    rhs = tuple(rb[len(rb) - (rank_r - 2):] if rank_r > 2 else []) + ((n, k) if adj_y
                                                                     else (k, n))
    return BMM(*types, lhs, rhs, adj_x, adj_y, const_rhs=draw(st.booleans(), label="const"),
               seed=draw(st.integers(0, 2**16), label="seed"))


@given(case=bmm_cases())
@settings(max_examples=150, deadline=None)
def test_batch_matmul_random(case: BMM) -> None:
    run_bmm(case, guard=False)


def test_batch_matmul_incompatible_batch_dims_fail() -> None:
    model, _ = build_bmm(replace(B, lhs_shape=(2, 4, 8), rhs_shape=(3, 8, 6)))
    with pytest.raises(ModelValidationError, match="broadcast"):
        ours(model)


# -- where the runtimes' per-tensor multipliers differ -------------------------------------------
def _multiplier_sensitive_cases(count: int) -> list[tuple[float, float, float, int]]:
    """(s_lhs, s_rhs, s_out, acc): scales whose float32-product and double-product multipliers
    requantize ``acc`` to different int8 outputs (found by a seeded search)."""
    from tflite_ref.quant.fixedpoint import multiply_by_quantized_multiplier
    from tflite_ref.quant.multipliers import (
        conv_effective_scales,
        fc_per_tensor_effective_scale,
        quantize_multiplier,
    )

    rng = np.random.default_rng(1234)
    acc = np.arange(-16000, 16000, dtype=np.int64)
    found: list[tuple[float, float, float, int]] = []
    while len(found) < count:
        sl, sr = np.float32(rng.uniform(0.01, 0.1)), np.float32(rng.uniform(0.01, 0.1))
        so = np.float32(sl * sr / rng.uniform(0.005, 0.02))
        m32 = quantize_multiplier(fc_per_tensor_effective_scale(sl, sr, so))
        m64 = quantize_multiplier(float(conv_effective_scales(sl, [sr], so)[0]))
        if m32 == m64:
            continue
        a = multiply_by_quantized_multiplier(acc, *m32)
        b = multiply_by_quantized_multiplier(acc, *m64)
        idx = np.nonzero((a != b) & (np.abs(a) < 120) & (np.abs(acc) < 127 * 128))[0]
        if idx.size:
            found.append((float(sl), float(sr), float(so), int(acc[idx[0]])))
    return found


@pytest.mark.parametrize("op", ["BATCH_MATMUL", "FULLY_CONNECTED"])
def test_per_tensor_multiplier_product_precision(op: str) -> None:
    """GetQuantizedConvolutionMultipler: LiteRT's BATCH_MATMUL multiplies the scales in float32,
    TFLM (BATCH_MATMUL and per-tensor FULLY_CONNECTED) in double.  Accumulators chosen where the
    two multipliers round differently pin down which one each runtime uses."""
    for sl, sr, so, acc in _multiplier_sensitive_cases(4):
        q, rem = divmod(acc, 127)
        lhs = np.array([[127, 1]], np.int8)
        rhs = np.array([[q], [rem]], np.int8)
        mb = ModelBuilder()
        sg = mb.subgraph()
        x = sg.tensor("lhs", (1, 2), "INT8", scale=sl)
        y = sg.tensor("out", (1, 1), "INT8", scale=so)
        if op == "BATCH_MATMUL":
            r = sg.tensor("rhs", (2, 1), "INT8", scale=sr)
            sg.operator(op, [x, r], [y])
            sg.inputs, inputs = [x, r], [lhs, rhs]
        else:
            r = sg.tensor("weights", (1, 2), "INT8", data=rhs.reshape(1, 2), scale=sr)
            sg.operator(op, [x, r, None], [y])
            sg.inputs, inputs = [x], [lhs]
        sg.outputs = [y]
        model = mb.build()
        check(model, inputs, tflm=True, quantized=True, guard=False)


# -- converter-made layers of the shared model corpus ------------------------------------------
FC_OPS = {"FULLY_CONNECTED", "BATCH_MATMUL"}


@pytest.mark.parametrize("path", corpus_models(FC_OPS), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_fully_connected_layers(path: Path) -> None:
    """Every FULLY_CONNECTED layer of the corpus, fed LiteRT's own inputs, gives LiteRT's output
    (hybrid float x int8 layers included)."""
    check_corpus_layers(path, FC_OPS)
