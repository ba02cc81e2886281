"""The schema's enums as Python ``IntEnum`` types.

They are generated from ``schema/schema.fbs`` into ``_enums.py`` (explicit classes, so a type
checker knows every member); ``tests/test_schema.py`` checks the ``tflite`` bindings declare
exactly the same members and values.  Only ``tflite_ref.model`` imports the generated bindings;
everything downstream uses these enums.  Codes newer than the schema (a model from a newer
converter) have no member: use :func:`builtin_operator_name` / :func:`tensor_type_name`, which
fall back to the number.
"""

from __future__ import annotations

import numpy as np

from tflite_ref.model._enums import (
    ActivationFunctionType,
    BuiltinOperator,
    BuiltinOptions,
    BuiltinOptions2,
    Padding,
    TensorType,
)

__all__ = [
    "ActivationFunctionType",
    "BuiltinOperator",
    "BuiltinOptions",
    "BuiltinOptions2",
    "Padding",
    "TensorType",
    "builtin_operator_name",
    "tensor_type_name",
]

_BUILTIN_NAMES = {int(m): m.name for m in BuiltinOperator}
_TYPE_NAMES = {int(m): m.name for m in TensorType}


def builtin_operator_name(code: int) -> str:
    """``CONV_2D`` for 3; ``BUILTIN_<n>`` for a code the bindings do not know."""
    return _BUILTIN_NAMES.get(code, f"BUILTIN_{code}")


def tensor_type_name(code: int) -> str:
    """``INT8`` for 9; ``TYPE_<n>`` for a code the bindings do not know."""
    return _TYPE_NAMES.get(code, f"TYPE_{code}")


# TensorType -> NumPy dtype.  INT4 is stored packed (two values per byte) and unpacked to int8 by
# the reader; STRING, RESOURCE and VARIANT have no fixed-size NumPy equivalent.
NUMPY_DTYPES: dict[int, np.dtype] = {
    TensorType.FLOAT32: np.dtype(np.float32),
    TensorType.FLOAT16: np.dtype(np.float16),
    TensorType.FLOAT64: np.dtype(np.float64),
    TensorType.INT32: np.dtype(np.int32),
    TensorType.UINT8: np.dtype(np.uint8),
    TensorType.INT64: np.dtype(np.int64),
    TensorType.BOOL: np.dtype(np.bool_),
    TensorType.INT16: np.dtype(np.int16),
    TensorType.COMPLEX64: np.dtype(np.complex64),
    TensorType.INT8: np.dtype(np.int8),
    TensorType.COMPLEX128: np.dtype(np.complex128),
    TensorType.UINT64: np.dtype(np.uint64),
    TensorType.UINT32: np.dtype(np.uint32),
    TensorType.UINT16: np.dtype(np.uint16),
    TensorType.INT4: np.dtype(np.int8),
}
for _name in ("RESOURCE", "VARIANT", "STRING"):
    if hasattr(TensorType, _name):
        NUMPY_DTYPES[getattr(TensorType, _name)] = np.dtype(np.object_)

# Bytes per element as stored in a buffer (INT4: packed, handled separately).
STORAGE_ITEMSIZE: dict[int, int] = {
    code: dt.itemsize for code, dt in NUMPY_DTYPES.items() if dt != np.dtype(np.object_)
}
STORAGE_ITEMSIZE.pop(TensorType.INT4, None)
