"""Kernel families. Importing this package registers every kernel (explicitly, family by family)."""

from __future__ import annotations

from tflite_ref.kernels import (  # noqa: F401 - imported for their registrations
    activations,
    control,
    conv,
    detection,
    elementwise,
    embedding,
    fully_connected,
    gather,
    layout,
    logical,
    lstm,
    pad,
    pooling,
    quantize,
    reduce,
    resize,
    rnn,
    signal,
    sparse,
    svdf,
    unary,
    variables,
)
from tflite_ref.kernels.registry import OpContext, lookup, register, registered

__all__ = ["OpContext", "lookup", "register", "registered"]
