"""Dev-only: build the QuantizationDebugger fixtures in this folder with TensorFlow.

    python tests/models/qdebug/make_fixtures.py [OUT_DIR]      # needs tensorflow(-cpu)

Not a test dependency: CI reads the committed outputs. ``tests/test_qdebug.py`` also calls
:func:`build` (skipped without TensorFlow) to check that a fresh conversion still agrees.

What it writes (a small random-weight CNN with conv, depthwise conv, a residual ADD, pooling,
a dense layer and softmax; 16 representative samples, fixed seeds):

- ``float.tflite``: the float model (``TFLiteConverter`` without optimizations).
- ``quant.tflite``: the ordinary int8 model (float input/output) from the same calibration,
  ``QuantizationDebugger.get_nondebug_quantized_model()``.
- ``debug_layer.tflite``: the debug-mode model QuantizationDebugger builds by default
  (``mlir_quantize(enable_numeric_verify=True)``): beside each quantized op, the float op on the
  dequantized quantized inputs, and a ``NumericVerify`` op taking the difference.
- ``debug_whole.tflite``: the same with ``enable_whole_model_verify=True``: the float ops form
  a whole float model running beside the quantized one.
- ``samples.npz``: ``arr_0``, the samples, shape (N, 1, H, W, C), float32.
- ``expected.json``: what ``QuantizationDebugger.layer_statistics`` reported for both debug
  models, keyed by the quantized tensor's name in ``quant.tflite``, with scale/zero point, the
  TensorFlow version, and whether ``denylisted_nodes=[name]`` kept that layer float.  Each
  twice: as the debugger runs out of the box (``tf.lite.Interpreter`` with its default,
  optimized kernels: ``*_default``), and with the debugger's interpreter switched to TFLite's
  reference kernels (``OpResolverType.BUILTIN_REF``: ``*_builtin_ref``), the kernels tflite_ref
  reproduces.  The difference between the two is the optimized kernels' own rounding.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N_SAMPLES = 16
SHAPE = (16, 16, 3)


def _samples() -> np.ndarray:
    rng = np.random.default_rng(2024)
    # A smooth image-like field plus noise, so that layers see structure, not just noise.
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]] / SHAPE[0]
    out = []
    for _ in range(N_SAMPLES):
        a, b, c = rng.uniform(-2, 2, 3)
        base = np.sin(a * xx * 3 + b * yy * 3 + c)[..., None] * rng.uniform(0.5, 1.5, 3)
        out.append(base + rng.normal(0, 0.2, SHAPE))
    return np.asarray(out, dtype=np.float32)[:, None]  # (N, 1, H, W, C)


def _keras_model(tf: Any) -> Any:
    tf.keras.utils.set_random_seed(7)
    L = tf.keras.layers
    x = inp = L.Input(SHAPE, batch_size=1, name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem")(x)
    y = L.DepthwiseConv2D(3, padding="same", activation="relu6", name="dw")(x)
    y = L.Conv2D(8, 1, name="project")(y)
    x = L.Add(name="residual")([x, y])
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="expand")(x)
    x = L.AveragePooling2D(4, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(4, name="logits")(x)
    out = L.Softmax(name="probs")(x)
    return tf.keras.Model(inp, out)


def _ops(tf: Any, content: bytes) -> list[dict[str, Any]]:
    it = tf.lite.Interpreter(model_content=content)
    return it._get_ops_details()


def _stats_by_name(tf: Any, debugger: Any, debug_model: bytes,
                   quant_model: bytes) -> dict[str, dict[str, float]]:
    """``layer_statistics`` keyed by the name of the same tensor in ``quant.tflite``.

    The debug model renames the quantized tensors (a digit is appended to keep names unique)
    and QuantizationDebugger's own ``tensor_name`` strips one digit back, which is not always
    the name in the ordinary model.  So layers are matched by position instead: the k-th
    verified operator of a type in the debug model is the k-th operator of that type in the
    ordinary model.
    """
    debugger._get_numeric_verify_tensor_details()
    producer = {o: op for op in _ops(tf, debug_model) for o in op["outputs"]}
    quant_ops = [op for op in _ops(tf, quant_model)
                 if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE")]
    qit = tf.lite.Interpreter(model_content=quant_model)
    qnames = {d["index"]: d["name"] for d in qit.get_tensor_details()}
    seen: dict[str, int] = {}
    out = {}
    verified = sorted(debugger._numeric_verify_op_details.items(),
                      key=lambda item: item[1]["index"])
    for nv_name, nv_op in verified:
        op = producer[nv_op["inputs"][0]]
        k = seen.get(op["op_name"], 0)
        seen[op["op_name"]] = k + 1
        same = [q for q in quant_ops if q["op_name"] == op["op_name"]]
        name = qnames[same[k]["outputs"][0]]
        out[name] = {m: float(v) for m, v in debugger.layer_statistics[nv_name].items()}
    return out


def _run(tf: Any, make: Callable[[], Any], builtin_ref: bool) -> Any:
    """Run a QuantizationDebugger made by ``make``, optionally on the reference kernels."""
    from tensorflow.lite.python import interpreter as interpreter_mod
    from tensorflow.lite.tools.optimize.debugging.python import debugger as debugger_mod

    original = debugger_mod._interpreter.Interpreter

    class ReferenceKernels(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["experimental_op_resolver_type"] = \
                interpreter_mod.OpResolverType.BUILTIN_REF
            super().__init__(*args, **kwargs)

    if builtin_ref:
        debugger_mod._interpreter.Interpreter = ReferenceKernels
    try:
        debugger = make()
        debugger.run()
        return debugger
    finally:
        debugger_mod._interpreter.Interpreter = original


def build(out_dir: Path) -> dict[str, Any]:
    import tensorflow as tf
    from tensorflow.lite.python import convert

    out_dir.mkdir(parents=True, exist_ok=True)
    samples = _samples()

    def dataset() -> Iterator[list[np.ndarray]]:
        for s in samples:
            yield [s]

    model = _keras_model(tf)
    float_model = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter,
                                                         debug_dataset=dataset)
    quant_model = debugger.get_nondebug_quantized_model()
    debug_layer = debugger.get_debug_quantized_model()
    debug_whole = convert.mlir_quantize(debugger.calibrated_model, enable_numeric_verify=True,
                                        enable_whole_model_verify=True)
    stats = {}
    for key, content in (("layer_statistics", debug_layer),
                         ("whole_model_layer_statistics", debug_whole)):
        for kernels in ("default", "builtin_ref"):
            run = _run(tf, lambda c=content: tf.lite.experimental.QuantizationDebugger(
                quant_debug_model_content=c, debug_dataset=dataset), kernels == "builtin_ref")
            stats[f"{key}_{kernels}"] = _stats_by_name(tf, run, content, quant_model)

    # Scale and zero point of each layer, from the ordinary quantized model.
    qit = tf.lite.Interpreter(model_content=quant_model)
    qparams = {d["name"]: d["quantization"] for d in qit.get_tensor_details()}

    # Does the converter keep a layer float when given the name we report?
    denylist_check = {}
    for name in list(stats["layer_statistics_default"])[1:3]:
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=[name])
        kept = debugger.get_nondebug_quantized_model()
        kit = tf.lite.Interpreter(model_content=kept)
        dtype = next((d["dtype"] for d in kit.get_tensor_details() if d["name"] == name), None)
        denylist_check[name] = None if dtype is None else np.dtype(dtype).name

    (out_dir / "float.tflite").write_bytes(float_model)
    (out_dir / "quant.tflite").write_bytes(quant_model)
    (out_dir / "debug_layer.tflite").write_bytes(debug_layer)
    (out_dir / "debug_whole.tflite").write_bytes(debug_whole)
    np.savez(out_dir / "samples.npz", samples)
    expected = {
        "tensorflow": tf.__version__,
        "generator": "tests/models/qdebug/make_fixtures.py",
        "samples": len(samples),
        "quantization": {name: {"scale": float(qparams[name][0]),
                                "zero_point": int(qparams[name][1])}
                         for name in stats["layer_statistics_default"]},
        **stats,
        "denylisted_nodes_check": denylist_check,
    }
    (out_dir / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    return expected


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    result = build(target)
    print(json.dumps({k: v for k, v in result.items() if "statistics" not in k}, indent=1))
