"""Small models written with tflite_ref's own writer for the teaching/auditing tests.

``single_op`` builds a one-operator model (in-memory bytes) for the explain tests of op families
the shared corpus cannot run (its int32 MUL/DIV/MINIMUM/CAST/STRIDED_SLICE/CONCATENATION sit in
models with custom operators); ``LINT_HAZARDS`` builds, for each lint rule, a model that carries
exactly that hazard -- next to ``clean_model()``, which carries none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_ref.model.writer import ModelBuilder, Quantization, SubgraphBuilder, TensorSpec


@dataclass
class T:
    """A tensor of a single-op model: constant when ``data`` is given."""

    shape: Sequence[int]
    dtype: str
    data: Any = None
    scale: float | Sequence[float] | None = None
    zero_point: int | Sequence[int] | None = None
    quantized_dimension: int = 0
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _add(sg: SubgraphBuilder, name: str, t: T) -> TensorSpec:
    return sg.tensor(t.name or name, list(t.shape), t.dtype, t.data, scale=t.scale,
                     zero_point=t.zero_point, quantized_dimension=t.quantized_dimension,
                     **t.extra)


def single_op(op: str, inputs: Sequence[T | None], outputs: Sequence[T],
              options: dict[str, Any] | None = None, signature: bool = True) -> bytes:
    mb = ModelBuilder(description=f"teaching: {op}")
    sg = mb.subgraph("main")
    ins = [None if t is None else _add(sg, f"in{k}", t) for k, t in enumerate(inputs)]
    outs = [_add(sg, f"out{k}", t) for k, t in enumerate(outputs)]
    sg.operator(op, ins, outs, options or {})
    sg.inputs = [t for t, spec in zip(ins, inputs) if t is not None and spec is not None
                 and spec.data is None]
    sg.outputs = outs
    if signature:
        mb.signature("serving_default", sg, inputs={t.name or f"x{k}": t
                                                    for k, t in enumerate(sg.inputs)},
                     outputs={t.name or f"y{k}": t for k, t in enumerate(outs)})
    return mb.build()


rng = np.random.default_rng(7)


def _i8(shape: Sequence[int]) -> np.ndarray:
    return rng.integers(-127, 128, size=shape).astype(np.int8)


# ------------------------------------------------------------------------------------------------
# Single-operator models for explain (name -> bytes)
# ------------------------------------------------------------------------------------------------
def explain_models() -> dict[str, bytes]:
    q = {"scale": 0.05, "zero_point": 3}
    qo = {"scale": 0.08, "zero_point": -5}
    m: dict[str, bytes] = {}
    m["mul_int32"] = single_op("MUL", [T([2, 3], "INT32"), T([3], "INT32", [3, -2, 7])],
                               [T([2, 3], "INT32")])
    m["div_int32"] = single_op("DIV", [T([2, 3], "INT32"), T([1, 3], "INT32", [[3, -2, 7]])],
                               [T([2, 3], "INT32")])
    m["maximum_int32"] = single_op("MAXIMUM", [T([2, 3], "INT32"), T([2, 3], "INT32")],
                                   [T([2, 3], "INT32")])
    m["minimum_int32"] = single_op("MINIMUM", [T([2, 3], "INT32"), T([1], "INT32", [4])],
                                   [T([2, 3], "INT32")])
    m["add_int32"] = single_op("ADD", [T([4], "INT32"), T([4], "INT32", [1, 2, 3, 4])],
                               [T([4], "INT32")])
    m["mul_int8"] = single_op("MUL", [T([1, 4, 4], "INT8", **q),
                                      T([4], "INT8", _i8([4]), scale=0.02, zero_point=1)],
                              [T([1, 4, 4], "INT8", **qo)], {"fused_activation_function": "RELU"})
    m["sub_int8"] = single_op("SUB", [T([1, 6], "INT8", **q), T([1, 6], "INT8", scale=0.03,
                                                                  zero_point=-2)],
                              [T([1, 6], "INT8", **qo)])
    m["add_float"] = single_op("ADD", [T([2, 2], "FLOAT32"), T([2, 2], "FLOAT32")],
                               [T([2, 2], "FLOAT32")], {"fused_activation_function": "RELU6"})
    m["div_int8"] = single_op("DIV", [T([1, 8], "INT8", **q),
                                      T([1, 8], "INT8", np.arange(1, 9, dtype=np.int8) * 9,
                                        scale=0.04, zero_point=0)],
                              [T([1, 8], "INT8", scale=0.1, zero_point=0)])
    m["cast_int32_float"] = single_op("CAST", [T([5], "INT32")], [T([5], "FLOAT32")])
    m["cast_float_int8"] = single_op("CAST", [T([5], "FLOAT32")], [T([5], "INT8")])
    m["strided_slice"] = single_op(
        "STRIDED_SLICE", [T([4, 6], "FLOAT32"), T([2], "INT32", [1, 0]), T([2], "INT32", [3, 6]),
                          T([2], "INT32", [1, 2])], [T([2, 3], "FLOAT32")])
    m["concatenation_int8"] = single_op(
        "CONCATENATION", [T([1, 2, 3], "INT8", **q), T([1, 2, 2], "INT8", **q)],
        [T([1, 2, 5], "INT8", **q)], {"axis": 2})
    m["transpose_int8"] = single_op("TRANSPOSE", [T([2, 3, 4], "INT8", **q),
                                                  T([3], "INT32", [2, 0, 1])],
                                    [T([4, 2, 3], "INT8", **q)])
    m["pad_int8"] = single_op("PAD", [T([1, 3, 3, 2], "INT8", **q),
                                      T([4, 2], "INT32", [[0, 0], [1, 1], [2, 0], [0, 0]])],
                              [T([1, 5, 5, 2], "INT8", **q)])
    m["reshape_float"] = single_op("RESHAPE", [T([2, 6], "FLOAT32"), T([3], "INT32", [3, 2, 2])],
                                   [T([3, 2, 2], "FLOAT32")])
    m["split_float"] = single_op("SPLIT", [T([], "INT32", np.array(1, np.int32)),
                                           T([2, 6], "FLOAT32")],
                                 [T([2, 3], "FLOAT32"), T([2, 3], "FLOAT32")],
                                 {"num_splits": 2})
    m["relu_int8"] = single_op("RELU", [T([1, 10], "INT8", **q)], [T([1, 10], "INT8", **qo)])
    m["relu6_float"] = single_op("RELU6", [T([1, 10], "FLOAT32")], [T([1, 10], "FLOAT32")])
    m["tanh_int8"] = single_op("TANH", [T([1, 10], "INT8", **q)],
                               [T([1, 10], "INT8", scale=1 / 128, zero_point=0)])
    m["logistic_int8"] = single_op("LOGISTIC", [T([1, 10], "INT8", **q)],
                                   [T([1, 10], "INT8", scale=1 / 256, zero_point=-128)])
    m["logistic_float"] = single_op("LOGISTIC", [T([1, 10], "FLOAT32")],
                                    [T([1, 10], "FLOAT32")])
    m["softmax_float"] = single_op("SOFTMAX", [T([2, 5], "FLOAT32")], [T([2, 5], "FLOAT32")],
                                   {"beta": 1.0})
    m["softmax_int8"] = single_op("SOFTMAX", [T([2, 7], "INT8", scale=0.1, zero_point=0)],
                                  [T([2, 7], "INT8", scale=1 / 256, zero_point=-128)],
                                  {"beta": 1.0})
    m["max_pool_int8"] = single_op("MAX_POOL_2D", [T([1, 5, 5, 2], "INT8", **q)],
                                   [T([1, 3, 3, 2], "INT8", **q)],
                                   {"padding": "SAME", "stride_w": 2, "stride_h": 2,
                                    "filter_width": 3, "filter_height": 3})
    m["avg_pool_float"] = single_op("AVERAGE_POOL_2D", [T([1, 4, 4, 1], "FLOAT32")],
                                    [T([1, 2, 2, 1], "FLOAT32")],
                                    {"padding": "VALID", "stride_w": 2, "stride_h": 2,
                                     "filter_width": 2, "filter_height": 2})
    m["quantize_float_int8"] = single_op("QUANTIZE", [T([1, 8], "FLOAT32")],
                                         [T([1, 8], "INT8", scale=0.02, zero_point=-10)])
    m["requantize_int8"] = single_op("QUANTIZE", [T([1, 8], "INT8", **q)],
                                     [T([1, 8], "INT8", scale=0.03, zero_point=7)])
    m["dequantize_int8"] = single_op("DEQUANTIZE", [T([1, 8], "INT8", **q)],
                                     [T([1, 8], "FLOAT32")])
    m["mean_float"] = single_op("MEAN", [T([1, 3, 3, 4], "FLOAT32"), T([2], "INT32", [1, 2])],
                                [T([1, 4], "FLOAT32")])
    m["sum_int8"] = single_op("SUM", [T([1, 3, 4], "INT8", **q), T([1], "INT32", [1])],
                              [T([1, 4], "INT8", scale=0.3, zero_point=0)])
    m["reduce_max_int8"] = single_op("REDUCE_MAX", [T([2, 5], "INT8", **q), T([1], "INT32", [1])],
                                     [T([2], "INT8", **q)])
    # Convolutions with dilation, padding and a depth multiplier; an FC with per-channel weights.
    m["conv_dilated_int8"] = single_op(
        "CONV_2D", [T([1, 7, 7, 3], "INT8", **q), T([4, 3, 3, 3], "INT8", _i8([4, 3, 3, 3]),
                                                   scale=[0.01, 0.02, 0.015, 0.03],
                                                   zero_point=[0] * 4),
                    T([4], "INT32", [10, -20, 300, 0], scale=[0.0005, 0.001, 0.00075, 0.0015],
                      zero_point=[0] * 4)],
        [T([1, 4, 4, 4], "INT8", **qo)],
        {"padding": "SAME", "stride_w": 2, "stride_h": 2, "dilation_w_factor": 2,
         "dilation_h_factor": 2, "fused_activation_function": "RELU6"})
    m["depthwise_m2_int8"] = single_op(
        "DEPTHWISE_CONV_2D",
        [T([1, 5, 5, 2], "INT8", **q), T([1, 3, 3, 4], "INT8", _i8([1, 3, 3, 4]),
                                         scale=[0.01, 0.02, 0.015, 0.03], zero_point=[0] * 4,
                                         quantized_dimension=3),
         T([4], "INT32", [1, 2, 3, 4], scale=[0.0005, 0.001, 0.00075, 0.0015],
           zero_point=[0] * 4)],
        [T([1, 5, 5, 4], "INT8", **qo)],
        {"padding": "SAME", "stride_w": 1, "stride_h": 1, "depth_multiplier": 2})
    m["fc_per_channel_int8"] = single_op(
        "FULLY_CONNECTED", [T([2, 6], "INT8", **q), T([3, 6], "INT8", _i8([3, 6]),
                                                      scale=[0.01, 0.02, 0.03],
                                                      zero_point=[0] * 3),
                            T([3], "INT32", [5, 6, 7], scale=[0.0005, 0.001, 0.0015],
                              zero_point=[0] * 3)],
        [T([2, 3], "INT8", **qo)])
    m["fc_float"] = single_op(
        "FULLY_CONNECTED", [T([1, 6], "FLOAT32"), T([3, 6], "FLOAT32",
                                                    rng.normal(size=(3, 6)).astype(np.float32)),
                            T([3], "FLOAT32", np.array([0.1, -0.2, 0.3], np.float32))],
        [T([1, 3], "FLOAT32")])
    return m


# ------------------------------------------------------------------------------------------------
# Lint hazards: rule -> builder of a model carrying exactly that hazard
# ------------------------------------------------------------------------------------------------
def _fc_model(bias_quant: Quantization | None = None, *, bias_scale: float = 0.005 * 0.05,
              w_scale: Any = 0.05, signature: bool = True,
              extra: Callable[[ModelBuilder, SubgraphBuilder], None] | None = None,
              in_signature: Sequence[int] | None = None) -> bytes:
    """``y = FC(x)`` int8 with a per-tensor bias: the base the hazards are written into."""
    mb = ModelBuilder(description="teaching: lint base")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 4], "INT8", scale=0.005, zero_point=0,
                  shape_signature=in_signature)
    per_channel = isinstance(w_scale, (list, tuple))
    w = sg.tensor("w", [2, 4], "INT8", data=_i8([2, 4]), scale=w_scale,
                  zero_point=[0] * len(w_scale) if per_channel else 0)
    if bias_quant is None:
        bias_quant = Quantization(scale=[bias_scale], zero_point=[0])
    b = sg.tensor("b", [2], "INT32", data=np.array([3, -4], np.int32), quantization=bias_quant)
    y = sg.tensor("y", [1, 2], "INT8", scale=0.01, zero_point=0)
    sg.operator("FULLY_CONNECTED", [x, w, b], [y])
    sg.inputs, sg.outputs = [x], [y]
    if extra is not None:
        extra(mb, sg)
    if signature:
        mb.signature("serving_default", sg, inputs={"x": x}, outputs={"y": y})
    return mb.build()


def clean_model() -> bytes:
    return _fc_model()


def _float_island() -> bytes:
    mb = ModelBuilder(description="teaching: float island")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 4], "INT8", scale=0.02, zero_point=0)
    w = sg.tensor("w", [4, 4], "INT8", data=_i8([4, 4]), scale=0.01, zero_point=0)
    b = sg.tensor("b", [4], "INT32", data=np.zeros(4, np.int32), scale=0.0002, zero_point=0)
    h = sg.tensor("h", [1, 4], "INT8", scale=0.05, zero_point=0)
    hf = sg.tensor("h_float", [1, 4], "FLOAT32")
    e = sg.tensor("e", [1, 4], "FLOAT32")
    y = sg.tensor("y", [1, 4], "INT8", scale=0.05, zero_point=0)
    sg.operator("FULLY_CONNECTED", [x, w, b], [h])
    sg.operator("DEQUANTIZE", [h], [hf])
    sg.operator("EXP", [hf], [e])  # a float op the converter could not quantize
    sg.operator("QUANTIZE", [e], [y])
    sg.inputs, sg.outputs = [x], [y]
    mb.signature("serving_default", sg, inputs={"x": x}, outputs={"y": y})
    return mb.build()


def _mcu_dtype() -> bytes:
    def extra(mb: ModelBuilder, sg: SubgraphBuilder) -> None:
        y = sg.outputs[0]
        axis = sg.tensor("axis", [], "INT32", data=np.array(1, np.int32))
        idx = sg.tensor("argmax", [1], "INT64")
        sg.operator("ARG_MAX", [y, axis], [idx], {"output_type": "INT64"})
        sg.outputs = [y, idx]
    return _fc_model(extra=extra)


def _unused_tensor() -> bytes:
    def extra(mb: ModelBuilder, sg: SubgraphBuilder) -> None:
        sg.tensor("leftover", [16], "FLOAT32", data=np.arange(16, dtype=np.float32))
    return _fc_model(extra=extra)


def _unused_buffer() -> bytes:
    def extra(mb: ModelBuilder, sg: SubgraphBuilder) -> None:
        mb.buffer(b"\x01" * 64)
    return _fc_model(extra=extra)


def _duplicate_buffer() -> bytes:
    def extra(mb: ModelBuilder, sg: SubgraphBuilder) -> None:
        y = sg.outputs[0]
        big = np.arange(32, dtype=np.int8).reshape(1, 32)
        a = sg.tensor("a", [1, 32], "INT8", data=big, scale=0.01, zero_point=0)
        b = sg.tensor("b_copy", [1, 32], "INT8", data=big.copy(), scale=0.01, zero_point=0)
        s = sg.tensor("s", [1, 32], "INT8", scale=0.02, zero_point=0)
        sg.operator("ADD", [a, b], [s])
        sg.outputs = [y, s]
    return _fc_model(extra=extra)


def _zero_scale() -> bytes:
    def extra(mb: ModelBuilder, sg: SubgraphBuilder) -> None:
        y = sg.outputs[0]
        z = sg.tensor("z", [1, 2], "INT8", scale=0.0, zero_point=0)
        sg.operator("RELU", [y], [z])
        sg.outputs = [y, z]
    return _fc_model(extra=extra)


LINT_HAZARDS: dict[str, Callable[[], bytes]] = {
    # LiteRT refuses a single scale whose quantized_dimension is outside the rank; TFLM runs it.
    "quantized-dimension": lambda: _fc_model(Quantization(scale=[0.005 * 0.05], zero_point=[0],
                                                          quantized_dimension=3)),
    "float-island": _float_island,
    "mcu-dtype": _mcu_dtype,
    "dynamic-shape": lambda: _fc_model(in_signature=[-1, 4]),
    "unused-tensor": _unused_tensor,
    "unused-buffer": _unused_buffer,
    "duplicate-buffer": _duplicate_buffer,
    "scale": lambda: _fc_model(w_scale=[1e-7, 0.05]),  # per-channel scales spread 5e5x
    "scale-zero": _zero_scale,
    # the bias scale is 10x s_in·s_w: LiteRT's per-tensor FULLY_CONNECTED refuses it
    "bias-scale": lambda: _fc_model(bias_scale=0.005 * 0.05 * 10),
    "softmax-logistic": lambda: single_op(
        "SOFTMAX", [T([1, 4], "INT8", scale=1e-9, zero_point=0)],
        [T([1, 4], "INT8", scale=1 / 256, zero_point=-128)], {"beta": 1.0}),
    "softmax-scale-tflm": lambda: single_op(
        "SOFTMAX", [T([1, 4], "INT8", scale=0.1, zero_point=0)],
        [T([1, 4], "INT8", scale=(1 / 256) * (1 + 2e-4), zero_point=-128)], {"beta": 1.0}),
    "missing-signature": lambda: _fc_model(signature=False),
}
# The rule each hazard model must trigger (several models exercise one rule).
HAZARD_RULE = {name: name for name in LINT_HAZARDS}
HAZARD_RULE.update({"scale-zero": "scale", "softmax-scale-tflm": "softmax-logistic"})
