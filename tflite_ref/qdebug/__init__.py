"""``tflite-ref qdebug``: where does the int8 model lose accuracy, layer by layer.

From the quantized file alone (against its float shadow: the same graph on dequantized weights
and float activations) or from a float/quantized pair (against the float model)::

    from tflite_ref.qdebug import qdebug
    report = qdebug("model_int8.tflite", "model_float.tflite", inputs="samples.npz")
    for layer in report.layers:
        print(layer.tensor, layer.local.sqnr_db, layer.accumulated.sqnr_db)
    print(report.denylisted_nodes)     # for QuantizationDebugOptions(denylisted_nodes=...)

See :mod:`tflite_ref.qdebug.core` for what *local* and *accumulated* error mean and how they
relate to TensorFlow's QuantizationDebugger, and :mod:`tflite_ref.qdebug.report` for the metrics.
"""

from __future__ import annotations

from tflite_ref.qdebug.core import qdebug
from tflite_ref.qdebug.report import (
    METRIC_NAMES,
    QD_METRICS,
    Culprit,
    ErrorMetrics,
    LayerReport,
    OutputReport,
    QuantReport,
)
from tflite_ref.qdebug.shadow import FloatShadow, builder_from_model, float_shadow

__all__ = [
    "METRIC_NAMES",
    "QD_METRICS",
    "Culprit",
    "ErrorMetrics",
    "FloatShadow",
    "LayerReport",
    "OutputReport",
    "QuantReport",
    "builder_from_model",
    "float_shadow",
    "qdebug",
]
