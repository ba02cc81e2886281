"""tflite_ref: a pure-Python inspector and bit-exact NumPy reference interpreter for TFLite models."""

from __future__ import annotations

from tflite_ref.errors import (
    InternalError,
    KernelRuntimeError,
    ModelError,
    ModelFormatError,
    ModelValidationError,
    ResourceLimitError,
    TFLiteRefError,
    UnsupportedError,
    UnsupportedOpError,
    UsageError,
)
from tflite_ref.interpreter import Interpreter, SignatureRunner
from tflite_ref.model import Model, load
from tflite_ref.plugins import custom_kernels, register_kernel, unregister_kernel
from tflite_ref.trace import trace  # the function: `for step in tflite_ref.trace(model): ...`

# The tools' entry points as functions at package level, as the issues name them:
# tflite_ref.check(model, against=...), tflite_ref.qdebug(model, ...). Their modules stay
# importable (`from tflite_ref.check import CheckReport`); `tflite_ref.micro` is the package
# holding `estimate`.
from tflite_ref.check import CheckReport, check  # noqa: E402
from tflite_ref.qdebug import QuantReport, qdebug  # noqa: E402
from tflite_ref import micro  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Interpreter", "InternalError", "KernelRuntimeError", "SignatureRunner", "Model", "ModelError", "ModelFormatError",
    "ModelValidationError", "ResourceLimitError", "TFLiteRefError", "UnsupportedError",
    "UnsupportedOpError", "UsageError", "load", "__version__",
    "register_kernel", "unregister_kernel", "custom_kernels",
    "trace", "check", "CheckReport", "qdebug", "QuantReport", "micro",
]
