"""Regenerate the shipped example model and the test fixture models with our own writer.

Run from the repository root (dev-only; the outputs are committed)::

    python tests/models/build_fixtures.py

Everything is deterministic (fixed seeds, no clock, no converter): running it twice writes the
same bytes, and ``tests/test_inspect.py`` checks that the committed files are what this script
writes today.

Models
------
``tflite_ref/examples/tiny_cnn_int8.tflite`` (shipped; ``tflite-ref inspect --example``)
    A full-integer int8 CNN with seeded random weights, built the way the TFLite converter
    lays out such a model: input 1x16x16x1 int8 -> CONV_2D (8 filters 3x3, stride 2, SAME,
    per-channel weights, RELU) -> DEPTHWISE_CONV_2D (3x3, per-channel, RELU6) ->
    AVERAGE_POOL_2D (2x2) -> RESHAPE (1x128) -> FULLY_CONNECTED (10 units) -> SOFTMAX.
    Activation scales are calibrated on random inputs with a float NumPy forward pass, so the
    int8 model produces non-trivial outputs. Operator versions are those the converter
    assigns for int8 (CONV_2D v3, FULLY_CONNECTED v4, ...), min_runtime_version 1.14.0
    accordingly, and a ``serving_default`` signature.

``tests/models/inspect_mac_ops_f32.tflite`` (test fixture)
    Float32 operators whose MAC formulas the shared corpus does not exercise, a second
    subgraph and an undecodable metadata entry, for ``tests/test_inspect.py``: subgraph 0 runs
    CONV_2D -> TRANSPOSE_CONV -> RESHAPE -> FULLY_CONNECTED (keep_num_dims, 2 batches, no
    bias) and BATCH_MATMUL (adj_x) on two more inputs; subgraph 1 ('aux') is one ADD. LiteRT
    allocates and runs it, which is how the test knows the declared shapes (and so the MACs
    derived from them) are the runtime's.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tflite_ref.model.writer import ModelBuilder  # noqa: E402

EXAMPLE = ROOT / "tflite_ref" / "examples" / "tiny_cnn_int8.tflite"
MAC_OPS = ROOT / "tests" / "models" / "inspect_mac_ops_f32.tflite"
SEED = 20240611


# ------------------------------------------------------------------------------------------------
# Float reference pieces used only for calibration (NHWC activations, OHWI filters)
# ------------------------------------------------------------------------------------------------
def _pad_same(x: np.ndarray, k: int, stride: int) -> tuple[np.ndarray, int]:
    h = x.shape[1]
    out = math.ceil(h / stride)
    total = max((out - 1) * stride + k - h, 0)
    before = total // 2  # TFLite's SAME puts the odd pixel after (ComputePaddingHeightWidth)
    return np.pad(x, ((0, 0), (before, total - before), (before, total - before), (0, 0))), out


def conv2d_same(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    k = w.shape[1]
    xp, out = _pad_same(x, k, stride)
    y = np.zeros((x.shape[0], out, out, w.shape[0]), dtype=np.float64)
    for i in range(out):
        for j in range(out):
            patch = xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            y[:, i, j, :] = np.einsum("nhwc,ohwc->no", patch, w)
    return y + b


def depthwise_same(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    k = w.shape[1]
    xp, out = _pad_same(x, k, 1)
    y = np.zeros(x.shape, dtype=np.float64)
    for i in range(out):
        for j in range(out):
            y[:, i, j, :] = np.einsum("nhwc,hwc->nc", xp[:, i:i + k, j:j + k, :], w[0])
    return y + b


def avgpool2(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


# ------------------------------------------------------------------------------------------------
# Quantization helpers (TFLite's conventions: symmetric int8 weights, int32 bias with scale
# input_scale * weight_scale, asymmetric int8 activations)
# ------------------------------------------------------------------------------------------------
def quantize_weights(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 in [-127, 127]; one scale per slice along ``axis`` (None: per tensor)."""
    if axis is None:
        scale = np.array([np.abs(w).max() / 127.0])
        q = np.round(w / scale[0])
    else:
        other = tuple(d for d in range(w.ndim) if d != axis)
        scale = np.abs(w).max(axis=other) / 127.0
        shape = [1] * w.ndim
        shape[axis] = -1
        q = np.round(w / scale.reshape(shape))
    return np.clip(q, -127, 127).astype(np.int8), scale.astype(np.float32)


def dequantize_weights(q: np.ndarray, scale: np.ndarray, axis: int | None) -> np.ndarray:
    if axis is None:
        return q.astype(np.float64) * float(scale[0])
    shape = [1] * q.ndim
    shape[axis] = -1
    return q.astype(np.float64) * scale.astype(np.float64).reshape(shape)


def activation_params(values: np.ndarray) -> tuple[float, int]:
    """Asymmetric int8 scale and zero point covering [min(values, 0), max(values, 0)]."""
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    zero_point = int(np.clip(round(-128 - lo / scale), -128, 127))
    return float(np.float32(scale)), zero_point


def quantize_bias(b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.round(b / scale.astype(np.float64)).astype(np.int32)


# ------------------------------------------------------------------------------------------------
# The shipped example
# ------------------------------------------------------------------------------------------------
def tiny_cnn_int8() -> bytes:
    rng = np.random.default_rng(SEED)
    calib = rng.random((64, 16, 16, 1))  # "images" in [0, 1)

    in_scale, in_zp = float(np.float32(1.0 / 255.0)), -128
    x_f = np.clip(np.round(calib / in_scale) + in_zp, -128, 127)
    x_f = (x_f - in_zp) * in_scale  # what the int8 model actually sees

    w1 = rng.normal(0.0, 0.5, size=(8, 3, 3, 1))
    w1_q, w1_s = quantize_weights(w1, axis=0)
    b1 = rng.normal(0.0, 0.1, size=8)
    y1 = np.maximum(conv2d_same(x_f, dequantize_weights(w1_q, w1_s, 0), b1, stride=2), 0.0)
    s1, z1 = activation_params(y1)

    w2 = rng.normal(0.0, 0.4, size=(1, 3, 3, 8))
    w2_q, w2_s = quantize_weights(w2, axis=3)
    b2 = rng.normal(0.0, 0.1, size=8)
    y2 = np.clip(depthwise_same(y1, dequantize_weights(w2_q, w2_s, 3), b2), 0.0, 6.0)
    s2, z2 = activation_params(y2)

    y3 = avgpool2(y2).reshape(len(calib), -1)  # pooling and reshape keep y2's scale
    w4 = rng.normal(0.0, 0.2, size=(10, 128))
    w4_q, w4_s = quantize_weights(w4, axis=None)
    b4 = rng.normal(0.0, 0.1, size=10)
    y4 = y3 @ dequantize_weights(w4_q, w4_s, None).T + b4
    s4, z4 = activation_params(y4)

    mb = ModelBuilder(description="tflite_ref example: tiny int8 CNN (seeded random weights)")
    sg = mb.subgraph(name="main")
    x = sg.tensor("input", [1, 16, 16, 1], "INT8", scale=in_scale, zero_point=in_zp,
                  shape_signature=[-1, 16, 16, 1])
    conv_w = sg.tensor("conv/weights", [8, 3, 3, 1], "INT8", data=w1_q, scale=w1_s.tolist(),
                       zero_point=[0] * 8, quantized_dimension=0)
    conv_b_s = (np.float32(in_scale) * w1_s).astype(np.float32)
    conv_b = sg.tensor("conv/bias", [8], "INT32", data=quantize_bias(b1, conv_b_s),
                       scale=conv_b_s.tolist(), zero_point=[0] * 8)
    conv_y = sg.tensor("conv/Relu", [1, 8, 8, 8], "INT8", scale=s1, zero_point=z1,
                       shape_signature=[-1, 8, 8, 8])
    sg.operator("CONV_2D", [x, conv_w, conv_b], [conv_y],
                {"padding": "SAME", "stride_w": 2, "stride_h": 2,
                 "fused_activation_function": "RELU"}, version=3)

    dw_w = sg.tensor("depthwise/weights", [1, 3, 3, 8], "INT8", data=w2_q, scale=w2_s.tolist(),
                     zero_point=[0] * 8, quantized_dimension=3)
    dw_b_s = (np.float32(s1) * w2_s).astype(np.float32)
    dw_b = sg.tensor("depthwise/bias", [8], "INT32", data=quantize_bias(b2, dw_b_s),
                     scale=dw_b_s.tolist(), zero_point=[0] * 8)
    dw_y = sg.tensor("depthwise/Relu6", [1, 8, 8, 8], "INT8", scale=s2, zero_point=z2,
                     shape_signature=[-1, 8, 8, 8])
    sg.operator("DEPTHWISE_CONV_2D", [conv_y, dw_w, dw_b], [dw_y],
                {"padding": "SAME", "stride_w": 1, "stride_h": 1, "depth_multiplier": 1,
                 "fused_activation_function": "RELU6"}, version=3)

    pool_y = sg.tensor("pool/AvgPool", [1, 4, 4, 8], "INT8", scale=s2, zero_point=z2,
                       shape_signature=[-1, 4, 4, 8])
    sg.operator("AVERAGE_POOL_2D", [dw_y], [pool_y],
                {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2,
                 "filter_height": 2}, version=2)

    shape_c = sg.tensor("flatten/shape", [2], "INT32", data=np.array([-1, 128], np.int32))
    flat = sg.tensor("flatten/Reshape", [1, 128], "INT8", scale=s2, zero_point=z2,
                     shape_signature=[-1, 128])
    sg.operator("RESHAPE", [pool_y, shape_c], [flat], {"new_shape": [-1, 128]})

    fc_w = sg.tensor("dense/weights", [10, 128], "INT8", data=w4_q, scale=float(w4_s[0]),
                     zero_point=0)
    fc_b_s = float(np.float32(s2) * w4_s[0])
    fc_b = sg.tensor("dense/bias", [10], "INT32", data=quantize_bias(b4, np.array([fc_b_s])),
                     scale=fc_b_s, zero_point=0)
    logits = sg.tensor("dense/BiasAdd", [1, 10], "INT8", scale=s4, zero_point=z4,
                       shape_signature=[-1, 10])
    sg.operator("FULLY_CONNECTED", [flat, fc_w, fc_b], [logits], version=4)

    # int8 SOFTMAX: LiteRT and TFLM require output scale 1/256 and zero point -128.
    probs = sg.tensor("softmax", [1, 10], "INT8", scale=1.0 / 256.0, zero_point=-128,
                      shape_signature=[-1, 10])
    sg.operator("SOFTMAX", [logits], [probs], {"beta": 1.0}, version=2)

    sg.inputs, sg.outputs = [x], [probs]
    mb.signature("serving_default", sg, inputs={"input": x}, outputs={"output": probs})
    # The converter writes the version NUL-padded to 16 bytes (tflite::GetMinimumRuntimeVersion).
    mb.metadata("min_runtime_version", b"1.14.0".ljust(16, b"\0"))
    return mb.build()


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------
def inspect_mac_ops_f32() -> bytes:
    rng = np.random.default_rng(SEED + 1)

    def const(sg, name: str, shape: list[int]):  # noqa: ANN001, ANN202
        return sg.tensor(name, shape, "FLOAT32",
                         data=rng.normal(0, 0.1, size=shape).astype(np.float32))

    mb = ModelBuilder(description="tflite_ref fixture: MAC formulas, two subgraphs")
    sg = mb.subgraph(name="main")
    x = sg.tensor("x", [1, 9, 7, 3], "FLOAT32")
    c = sg.tensor("conv", [1, 5, 4, 6], "FLOAT32")
    sg.operator("CONV_2D", [x, const(sg, "conv/w", [6, 3, 2, 3]), const(sg, "conv/b", [6])], [c],
                {"padding": "SAME", "stride_w": 2, "stride_h": 2})
    out_shape = sg.tensor("tconv/output_shape", [4], "INT32",
                          data=np.array([1, 10, 8, 5], np.int32))
    t = sg.tensor("tconv", [1, 10, 8, 5], "FLOAT32")
    sg.operator("TRANSPOSE_CONV", [out_shape, const(sg, "tconv/w", [5, 3, 3, 6]), c,
                                   const(sg, "tconv/b", [5])], [t],
                {"padding": "SAME", "stride_w": 2, "stride_h": 2}, version=3)
    r = sg.tensor("flat", [2, 200], "FLOAT32")
    sg.operator("RESHAPE", [t, sg.tensor("flat/shape", [2], "INT32",
                                         data=np.array([2, 200], np.int32))], [r],
                {"new_shape": [2, 200]})
    fc = sg.tensor("fc", [2, 7], "FLOAT32")
    sg.operator("FULLY_CONNECTED", [r, const(sg, "fc/w", [7, 200]), None], [fc],
                {"keep_num_dims": True})
    a = sg.tensor("a", [3, 4, 6], "FLOAT32")  # adj_x: a is [batch, K, M]
    b = sg.tensor("b", [3, 4, 5], "FLOAT32")
    mm = sg.tensor("matmul", [3, 6, 5], "FLOAT32")
    sg.operator("BATCH_MATMUL", [a, b], [mm], {"adj_x": True})
    sg.inputs, sg.outputs = [x, a, b], [fc, mm]
    mb.signature("serving_default", sg, inputs={"x": x, "a": a, "b": b},
                 outputs={"fc": fc, "matmul": mm})

    aux = mb.subgraph(name="aux")
    p = aux.tensor("p", [4], "FLOAT32")
    q = aux.tensor("q", [4], "FLOAT32")
    s = aux.tensor("sum", [4], "FLOAT32")
    aux.operator("ADD", [p, q], [s], {"fused_activation_function": "RELU"})
    aux.inputs, aux.outputs = [p, q], [s]
    mb.metadata("min_runtime_version", b"2.3.0".ljust(16, b"\0"))
    mb.metadata("notes", b"\x00\x01binary\xff" * 20)  # undecodable bytes: shown as a preview
    return mb.build()


OUTPUTS = {EXAMPLE: tiny_cnn_int8, MAC_OPS: inspect_mac_ops_f32}


def main() -> int:
    for path, build in OUTPUTS.items():
        data = build()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path.relative_to(ROOT)} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
