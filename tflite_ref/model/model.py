"""The immutable, typed view of a ``.tflite`` model that the rest of tflite_ref works on.

Everything here is plain Python and NumPy: no FlatBuffer objects leak out of ``tflite_ref.model``.
Constant data are read-only NumPy views into the file's bytes (zero copy), except packed INT4,
which is unpacked to int8 once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from tflite_ref.model.schema import TensorType


@dataclass(frozen=True, slots=True)
class Quantization:
    """A tensor's quantization parameters: ``real = scale * (q - zero_point)``.

    ``scale``/``zero_point`` have one entry per tensor, or one per slice along
    ``quantized_dimension`` (per-axis / per-channel).
    """

    scale: np.ndarray  # float32, read-only
    zero_point: np.ndarray  # int64, read-only
    quantized_dimension: int
    min: tuple[float, ...] = ()
    max: tuple[float, ...] = ()
    details_type: int = 0  # QuantizationDetails union (CustomQuantization); 0 = none

    @property
    def per_axis(self) -> bool:
        return self.scale.size > 1

    @property
    def is_quantized(self) -> bool:
        """True when there is at least one scale, i.e. the integer values carry a real meaning."""
        return self.scale.size > 0


@dataclass(frozen=True, slots=True)
class DimensionMetadata:
    """One dimension of a sparse tensor (schema ``DimensionMetadata``)."""

    format: str  # "DENSE" or "SPARSE_CSR"
    dense_size: int
    array_segments: np.ndarray | None
    array_indices: np.ndarray | None


@dataclass(frozen=True, slots=True)
class Sparsity:
    """Schema ``SparsityParameters``: how a sparse constant is laid out in its buffer."""

    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dim_metadata: tuple[DimensionMetadata, ...]


@dataclass(frozen=True, slots=True)
class Tensor:
    index: int
    name: str
    type: int  # TensorType code (may be a code newer than the bindings)
    type_name: str  # "INT8", or "TYPE_<n>" for unknown codes
    dtype: np.dtype | None  # NumPy dtype of the unpacked values (None for unknown types)
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    buffer: int
    is_variable: bool
    quantization: Quantization | None
    sparsity: Sparsity | None
    data: np.ndarray | None  # constant value, read-only; None for activations
    buffer_bytes: int = 0  # size of the stored constant in bytes (packed / sparse as stored)
    has_rank: bool = True

    @property
    def is_constant(self) -> bool:
        return self.data is not None or self.sparsity is not None and self.buffer_bytes > 0

    @property
    def num_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Bytes of the dense tensor at runtime (shape x element size)."""
        if self.type == TensorType.INT4:
            return (self.num_elements + 1) // 2
        if self.dtype is None or self.dtype == np.dtype(object):
            return 0
        return self.num_elements * self.dtype.itemsize


@dataclass(frozen=True, slots=True)
class OperatorCode:
    index: int
    builtin_code: int  # max(builtin_code, deprecated_builtin_code), as TFLite's GetBuiltinCode
    name: str  # "CONV_2D", "CUSTOM", or "BUILTIN_<n>" for codes newer than the bindings
    custom_code: str | None
    version: int
    deprecated_builtin_code: int


@dataclass(frozen=True, slots=True)
class Operator:
    index: int
    subgraph: int
    opcode_index: int
    builtin_code: int
    name: str  # builtin name ("CONV_2D", "CUSTOM")
    custom_code: str | None
    version: int
    inputs: tuple[int, ...]  # -1 = absent optional input, kept as in the file
    outputs: tuple[int, ...]
    intermediates: tuple[int, ...]
    options_type: str | None  # union member name, e.g. "Conv2DOptions"
    options: Mapping[str, Any]
    custom_options: bytes | None
    custom_options_decoded: Any = None  # FlexBuffer value when the custom options parse as one
    mutating_variable_inputs: tuple[bool, ...] = ()

    @property
    def opcode(self) -> str:
        """``CONV_2D``, or ``CUSTOM:<code>`` for custom operators."""
        return f"CUSTOM:{self.custom_code}" if self.name == "CUSTOM" else self.name

    @property
    def locator(self) -> str:
        return f"subgraph {self.subgraph}, operator {self.index} ({self.opcode})"


@dataclass(frozen=True, slots=True)
class Subgraph:
    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]


@dataclass(frozen=True, slots=True)
class Buffer:
    index: int
    size: int  # bytes of data (inline or external)
    offset: int  # >1 when the data is stored after the FlatBuffer; 0 otherwise
    data: memoryview | None  # read-only view of the bytes, None when empty


@dataclass(frozen=True, slots=True)
class SignatureDef:
    key: str
    subgraph_index: int
    inputs: Mapping[str, int]  # signature name -> tensor index in that subgraph
    outputs: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Metadata:
    name: str
    buffer: int
    value: Any  # decoded value for known names, else bytes


@dataclass(frozen=True)
class Model:
    version: int
    description: str
    operator_codes: tuple[OperatorCode, ...]
    subgraphs: tuple[Subgraph, ...]
    buffers: tuple[Buffer, ...]
    metadata: tuple[Metadata, ...]
    signatures: tuple[SignatureDef, ...]
    size_bytes: int
    warnings: tuple[str, ...] = ()
    content: bytes = field(default=b"", repr=False)  # the file's bytes (kept for zero-copy views)
    path: str | None = None

    @property
    def metadata_dict(self) -> Mapping[str, Any]:
        return MappingProxyType({m.name: m.value for m in self.metadata})

    @property
    def min_runtime_version(self) -> str | None:
        value = self.metadata_dict.get("min_runtime_version")
        return value if isinstance(value, str) else None

    def tensor(self, subgraph: int, index: int) -> Tensor:
        return self.subgraphs[subgraph].tensors[index]

    @property
    def main(self) -> Subgraph:
        return self.subgraphs[0]

    def _repr_html_(self) -> str:
        """Jupyter: the model's graph (drawn by :mod:`tflite_ref.graph`, imported only here)."""
        from tflite_ref.graph import notebook_html

        return notebook_html(self)
