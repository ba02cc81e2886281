"""Schema bindings -> validated, immutable model view (and the writer for test models)."""

from __future__ import annotations

from tflite_ref.model.model import (
    Buffer,
    Metadata,
    Model,
    Operator,
    OperatorCode,
    Quantization,
    SignatureDef,
    Sparsity,
    Subgraph,
    Tensor,
)
from tflite_ref.model.reader import load

__all__ = ["Buffer", "Metadata", "Model", "Operator", "OperatorCode", "Quantization", "SignatureDef",
           "Sparsity", "Subgraph", "Tensor", "load"]
