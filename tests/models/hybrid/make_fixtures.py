"""Dev-only: convert small Keras models with dynamic-range ("hybrid") quantization.

    python tests/models/hybrid/make_fixtures.py [OUT_DIR]      # needs tensorflow(-cpu)

Not a test dependency: ``tests/kernels/test_hybrid.py`` reads the committed outputs.  The
converter (``TFLiteConverter`` with ``optimizations=[tf.lite.Optimize.DEFAULT]`` and no
representative dataset) stores int8 weights and keeps float activations, so LiteRT quantizes
each layer's input at run time -- the path these fixtures exist to exercise.  Weights are seeded
random; each quantized weight tensor has at least 1024 elements (the converter leaves smaller
ones float).

What it writes:

- ``hybrid_cnn.tflite``: 1x8x8x8 -> Conv2D (32 filters 3x3, stride 2, ReLU; per-channel int8
  filter, so LiteRT's asymmetric per-channel kernel) -> DepthwiseConv2D (5x5, depth multiplier
  2; per-channel) -> Flatten -> Dense (24, ReLU; asymmetric input quantization) -> Dense (10;
  float, too small to quantize).
- ``hybrid_matmul.tflite``: 2x5x48 -> ``tf.matmul`` with a constant 2x48x32 (BATCH_MATMUL with
  a per-tensor int8 rhs, asymmetric input quantization) -> Dense (40) on the last axis
  (FULLY_CONNECTED with keep_num_dims, per-channel) -> TANH.
- ``hybrid_cnn_per_tensor.tflite``: ``hybrid_cnn`` converted with per-tensor weight
  quantization (``_experimental_disable_per_channel``): LiteRT's symmetric conv kernel.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _convert(model, per_channel: bool = True) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if not per_channel:
        conv._experimental_disable_per_channel = True
    return bytes(conv.convert())


def _seed_weights(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in ws])


def cnn():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((8, 8, 8), batch_size=1)
    x = tf.keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(inp)
    x = tf.keras.layers.DepthwiseConv2D(5, depth_multiplier=2, padding="same")(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Dense(24, activation="relu")(x)
    out = tf.keras.layers.Dense(10)(x)
    model = tf.keras.Model(inp, out)
    _seed_weights(model, 1)
    return model


def matmul():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    rhs = np.random.default_rng(2).normal(0, 0.3, (2, 48, 32)).astype(np.float32)
    inp = tf.keras.Input((5, 48), batch_size=2)
    x = tf.keras.layers.Lambda(lambda t: tf.matmul(t, tf.constant(rhs)))(inp)
    out = tf.keras.layers.Dense(40, activation="tanh")(x)
    model = tf.keras.Model(inp, out)
    _seed_weights(model, 3)
    return model


def build(out_dir: Path) -> dict[str, bytes]:
    models = {
        "hybrid_cnn.tflite": _convert(cnn()),
        "hybrid_cnn_per_tensor.tflite": _convert(cnn(), per_channel=False),
        "hybrid_matmul.tflite": _convert(matmul()),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in models.items():
        (out_dir / name).write_bytes(content)
    return models


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
