"""One error hierarchy for tflite_ref.

Every error that is the model's or the user's fault derives from :class:`TFLiteRefError`; the CLI
prints such an error as one line and exits 2.  Anything else escaping the library is a bug in
tflite_ref (:class:`InternalError` or a plain exception) and keeps its traceback.

Messages carry a *locator*: the table and index of the offending thing, e.g.
``subgraph 0, operator 12 (CONV_2D): input 3 is tensor 977, but the subgraph has 212 tensors``.
"""

from __future__ import annotations


class TFLiteRefError(Exception):
    """Root of every error tflite_ref raises on purpose."""


class ModelError(TFLiteRefError, ValueError):
    """The model file is malformed or semantically invalid."""


class ModelFormatError(ModelError):
    """The bytes are not a well-formed TFLite FlatBuffer (truncated, bad offsets, wrong magic)."""


class ModelValidationError(ModelError):
    """The FlatBuffer parses, but the model it describes is inconsistent (indices, shapes, quantization)."""


class UnsupportedOpError(TFLiteRefError):
    """The model is valid, but tflite_ref has no kernel for an operator or dtype combination."""


UnsupportedError = UnsupportedOpError


class ResourceLimitError(TFLiteRefError):
    """A configured budget (file size, elements, bytes, iterations, time) would be exceeded."""


class KernelRuntimeError(TFLiteRefError):
    """A data-dependent fault while invoking (index out of range, integer division by zero)."""


class UsageError(TFLiteRefError, ValueError):
    """The caller asked for something invalid (wrong dtype or shape in set_tensor, bad index)."""


class InternalError(Exception):
    """A bug in tflite_ref itself. Not a TFLiteRefError: the CLI shows its traceback."""


def op_locator(subgraph: int, operator: int, opcode: str) -> str:
    """``subgraph 0, operator 12 (CONV_2D)``: how every operator-level message starts."""
    return f"subgraph {subgraph}, operator {operator} ({opcode})"


def tensor_locator(subgraph: int, tensor: int, name: str | None = None) -> str:
    """``subgraph 0, tensor 5 'conv/bias'``."""
    label = f" {name!r}" if name else ""
    return f"subgraph {subgraph}, tensor {tensor}{label}"
