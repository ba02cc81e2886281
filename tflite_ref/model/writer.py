"""Write ``.tflite`` bytes without TensorFlow: a small declarative builder.

Made for tests and tools that need models the converter cannot (or will not) produce::

    mb = ModelBuilder(description="conv test")
    sg = mb.subgraph(name="main")
    x = sg.tensor("x", [1, 8, 8, 3], "INT8", scale=0.05, zero_point=-3)
    w = sg.tensor("w", [4, 3, 3, 3], "INT8", data=weights, scale=[0.1] * 4, zero_point=[0] * 4,
                  quantized_dimension=0)
    b = sg.tensor("b", [4], "INT32", data=bias, scale=[0.005] * 4, zero_point=[0] * 4)
    y = sg.tensor("y", [1, 8, 8, 4], "INT8", scale=0.1, zero_point=2)
    sg.operator("CONV_2D", [x, w, b], [y], {"padding": "SAME", "stride_w": 1, "stride_h": 1})
    sg.inputs, sg.outputs = [x], [y]
    mb.signature("serving_default", sg, inputs={"x": x}, outputs={"y": y})
    data = mb.build()

What it writes, as the converter does: file identifier ``TFL3``, schema version 3, buffer 0 the
empty sentinel, one buffer per constant tensor with its data 16-byte aligned, operator codes
deduplicated by (builtin code, custom code, version) with ``deprecated_builtin_code =
min(code, 127)``, and optionally (``build(external_buffers=True)``) the buffer data appended
after the FlatBuffer and referenced by ``Buffer.offset``/``size`` as for models over 2 GB.

The writer checks only what it needs to produce a well-formed FlatBuffer (numbers that fit their
fields, known option keys).  It does not check the model: tensor references may be raw ints (out
of range, -1, from another subgraph), buffer indices arbitrary, data need not match the shape.
Catching those is the reader's job, and tests of it need such files.

Options dicts use the keys and values of :func:`tflite_ref.model.ops_table.decode_options`
(snake_case field names, enum member names or ints).  A :class:`SubgraphBuilder` given as an
option value stands for its index (``{"then_subgraph_index": then_sg}``).
"""

from __future__ import annotations

import importlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Union

import flatbuffers
import flatbuffers.number_types as fbn
import numpy as np

from tflite_ref.errors import InternalError, UsageError, op_locator
from tflite_ref.model import ops_table
from tflite_ref.model.schema import NUMPY_DTYPES, BuiltinOperator, TensorType

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
BUFFER_ALIGNMENT = 16  # LiteRT maps constant data in place and expects this alignment
_PLACEHOLDER_OP = 127  # BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES


def _fb(name: str) -> ModuleType:
    # The package __init__ re-exports every class under its module's name, so ``tflite.Model``
    # is the class; the builder functions live in the module.
    return importlib.import_module(f"tflite.{name}")


_M = {name: _fb(name) for name in (
    "Model", "SubGraph", "Tensor", "Buffer", "Operator", "OperatorCode", "QuantizationParameters",
    "CustomQuantization", "SparsityParameters", "DimensionMetadata", "Int32Vector",
    "Uint16Vector", "Uint8Vector", "Metadata", "SignatureDef", "TensorMap")}


# --------------------------------------------------------------------------------------------
# Declarative records
# --------------------------------------------------------------------------------------------
@dataclass
class Quantization:
    """``QuantizationParameters``: per-tensor (one scale) or per-axis (``quantized_dimension``).

    Fields left None are not written.  ``custom`` writes ``CustomQuantization`` details.
    """

    scale: Sequence[float] | None = None
    zero_point: Sequence[int] | None = None
    quantized_dimension: int = 0
    min: Sequence[float] | None = None
    max: Sequence[float] | None = None
    custom: bytes | None = None


@dataclass
class DimensionMetadata:
    """One dimension of ``SparsityParameters``: DENSE (``dense_size``) or SPARSE_CSR.

    The index arrays' NumPy dtype picks the ``SparseIndexVector`` member: int32 ->
    Int32Vector, uint16 -> Uint16Vector, uint8 -> Uint8Vector (lists: int32).
    """

    format: str | int = "DENSE"
    dense_size: int = 0
    array_segments: Any = None
    array_indices: Any = None


@dataclass
class Sparsity:
    """``SparsityParameters`` of a tensor (the TACO-style format of the schema)."""

    traversal_order: Sequence[int] | None = None
    block_map: Sequence[int] | None = None
    dim_metadata: Sequence[DimensionMetadata] | None = None


@dataclass(eq=False)
class TensorSpec:
    """A tensor of a subgraph; what :meth:`SubgraphBuilder.tensor` returns and operators take."""

    subgraph: int
    index: int
    name: str | None
    shape: tuple[int, ...] | None
    dtype: int
    buffer: int
    quantization: Quantization | None = None
    shape_signature: tuple[int, ...] | None = None
    is_variable: bool = False
    has_rank: bool = True
    sparsity: Sparsity | None = None


TensorRef = Union[TensorSpec, int, None]
_OpKey = tuple[int, Union[str, None], int]  # (builtin code, custom code, version)


@dataclass(eq=False)
class OperatorSpec:
    """An operator of a subgraph, as recorded by :meth:`SubgraphBuilder.operator`."""

    index: int
    builtin_code: int
    custom_code: str | None
    version: int
    inputs: list[int]
    outputs: list[int]
    options_union: str | None = None  # "BuiltinOptions" | "BuiltinOptions2" | None
    options_member: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    custom_options: bytes | None = None
    custom_options_format: int = 0
    intermediates: list[int] | None = None
    mutating_variable_inputs: list[bool] | None = None
    opcode_index: int | None = None  # explicit index into operator_codes (raw)


@dataclass
class _OperatorCode:
    builtin_code: int
    custom_code: str | None
    version: int
    deprecated_builtin_code: int


@dataclass
class _BufferEntry:
    data: bytes | None
    may_be_external: bool = True


# --------------------------------------------------------------------------------------------
# Tensor data
# --------------------------------------------------------------------------------------------
_NUMPY_TO_TYPE = {
    np.dtype(np.float32): TensorType.FLOAT32, np.dtype(np.float16): TensorType.FLOAT16,
    np.dtype(np.float64): TensorType.FLOAT64, np.dtype(np.int32): TensorType.INT32,
    np.dtype(np.uint8): TensorType.UINT8, np.dtype(np.int64): TensorType.INT64,
    np.dtype(np.bool_): TensorType.BOOL, np.dtype(np.int16): TensorType.INT16,
    np.dtype(np.complex64): TensorType.COMPLEX64, np.dtype(np.int8): TensorType.INT8,
    np.dtype(np.complex128): TensorType.COMPLEX128, np.dtype(np.uint64): TensorType.UINT64,
    np.dtype(np.uint32): TensorType.UINT32, np.dtype(np.uint16): TensorType.UINT16,
}


def tensor_type(dtype: str | int | np.dtype | type) -> int:
    """TensorType code of ``"INT8"`` / ``"int8"`` / ``TensorType.INT8`` / ``9`` / ``np.int8``.

    Plain ints are taken as they are (unknown codes included, for hostile test files).
    """
    if isinstance(dtype, str):
        name = dtype.upper()
        if name not in TensorType.__members__:
            raise UsageError(f"unknown tensor type {dtype!r}; expected one of "
                             f"{', '.join(TensorType.__members__)}")
        return int(TensorType[name])
    if isinstance(dtype, bool):  # an int to Python, but neither a type code nor a dtype
        raise UsageError(f"cannot map {dtype!r} to a TFLite tensor type")
    if isinstance(dtype, (int, np.integer)):
        return int(dtype)
    try:
        return int(_NUMPY_TO_TYPE[np.dtype(dtype)])
    except (KeyError, TypeError):
        raise UsageError(f"cannot map {dtype!r} to a TFLite tensor type") from None


def pack_int4(values: Any) -> bytes:
    """Two signed 4-bit values per byte, the first in the low nibble (TFLite's INT4 layout)."""
    flat = np.asarray(values).reshape(-1)
    if flat.size and (flat.min() < -8 or flat.max() > 7):
        raise UsageError("INT4 data must lie in [-8, 7]")
    nibbles = (flat.astype(np.int64) & 0xF).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).tobytes()


def pack_strings(values: Iterable[str | bytes]) -> bytes:
    """TFLite's STRING buffer: int32 count, count+1 int32 offsets from the buffer start, bytes."""
    items = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
    header = 4 * (len(items) + 2)
    offsets = [header]
    for item in items:
        offsets.append(offsets[-1] + len(item))
    return np.array([len(items), *offsets], dtype="<i4").tobytes() + b"".join(items)


def _float_to_bfloat16_bits(values: np.ndarray) -> np.ndarray:
    # Round to nearest even on the upper 16 bits of the float32 pattern (NaN kept as NaN).
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(np.asarray(values, dtype=np.float32))
    return np.where(nan, (bits >> 16) | 0x40, rounded).astype(np.uint16)


def encode_tensor_data(data: Any, dtype: int) -> bytes:
    """Buffer bytes of ``data`` for a tensor of TensorType ``dtype``.

    ``bytes``-like data is written verbatim.  Arrays and lists are converted to the type's
    little-endian storage (INT4 packed, STRING in TFLite's string format, BFLOAT16 from floats
    or uint16 bit patterns).  A float array for an integer type is refused rather than
    silently truncated.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if dtype == TensorType.STRING:
        return pack_strings(np.asarray(data, dtype=object).reshape(-1).tolist())
    if dtype == TensorType.INT4:
        arr = np.asarray(data)
        if arr.dtype.kind not in "iub":
            raise UsageError(f"INT4 data must be integers, got {arr.dtype}")
        return pack_int4(arr)
    if dtype == getattr(TensorType, "BFLOAT16", -1):
        arr = np.asarray(data)
        if arr.dtype == np.uint16:
            return arr.astype("<u2").tobytes()
        return _float_to_bfloat16_bits(arr).astype("<u2").tobytes()
    target = NUMPY_DTYPES.get(dtype)
    if target is None or target == np.dtype(np.object_):
        raise UsageError(f"give data for tensor type {dtype} as bytes")
    arr = np.asarray(data)
    if arr.dtype != target and not np.can_cast(arr.dtype, target, casting="same_kind"):
        raise UsageError(f"cannot store {arr.dtype} data in a {TensorType(dtype).name} tensor "
                         f"without loss; convert it first")
    return np.ascontiguousarray(arr, dtype=target.newbyteorder("<")).tobytes()


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    if isinstance(value, np.ndarray):
        items: list[Any] = value.reshape(-1).tolist()
        return items
    if isinstance(value, (int, float, np.integer, np.floating)):
        return [value]
    return list(value)


def _resolve_op(op: str | int) -> tuple[int, str | None]:
    if isinstance(op, str):
        if op.upper().startswith("CUSTOM:"):
            return int(BuiltinOperator.CUSTOM), op.split(":", 1)[1]
        if op.upper() not in BuiltinOperator.__members__:
            raise UsageError(f"unknown builtin operator {op!r}; for a custom op write "
                             f"'CUSTOM:<name>' or pass custom_code=")
        return int(BuiltinOperator[op.upper()]), None
    if isinstance(op, (int, np.integer)) and not isinstance(op, bool):
        return int(op), None
    raise UsageError(f"operator must be a name or a code, got {op!r}")


def _op_name(code: int, custom_code: str | None) -> str:
    if custom_code is not None:
        return f"CUSTOM:{custom_code}"
    try:
        return BuiltinOperator(code).name
    except ValueError:
        return f"BUILTIN_{code}"


def default_version(op: str | int) -> int:
    """The operator version the writer uses when none is given: 1.

    LiteRT's builtin resolvers register each kernel for a range of versions starting at 1 and
    pick the code path from the tensor types, not the version, so version 1 loads; pass
    ``version=`` to write what a converter would (``op_version.cc``'s rules are not
    reproduced here).
    """
    _resolve_op(op)
    return 1


def _option_value(value: Any) -> Any:
    if isinstance(value, SubgraphBuilder):
        return value.index
    if isinstance(value, dict):
        return {k: _option_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_option_value(v) for v in value]
    return value


class SubgraphBuilder:
    """Tensors and operators of one subgraph.  Create with :meth:`ModelBuilder.subgraph`."""

    def __init__(self, model: ModelBuilder, index: int, name: str | None) -> None:
        self._model = model
        self.index = index
        self.name = name
        self.tensors: list[TensorSpec] = []
        self.operators: list[OperatorSpec] = []
        #: Subgraph inputs/outputs: tensor handles or raw ints.
        self.inputs: list[TensorRef] = []
        self.outputs: list[TensorRef] = []

    def __repr__(self) -> str:
        return (f"SubgraphBuilder(index={self.index}, name={self.name!r}, "
                f"{len(self.tensors)} tensors, {len(self.operators)} operators)")

    def tensor(
        self,
        name: str | None,
        shape: Sequence[int] | None,
        dtype: str | int | np.dtype | type,
        data: Any = None,
        *,
        scale: float | Sequence[float] | None = None,
        zero_point: int | Sequence[int] | None = None,
        quantized_dimension: int = 0,
        quant_min: float | Sequence[float] | None = None,
        quant_max: float | Sequence[float] | None = None,
        quantization: Quantization | None = None,
        shape_signature: Sequence[int] | None = None,
        is_variable: bool = False,
        has_rank: bool = True,
        buffer: int | None = None,
        sparsity: Sparsity | None = None,
    ) -> TensorSpec:
        """Add a tensor; returns its handle (``.index`` is its index in this subgraph).

        ``data`` (array, list or raw bytes) makes it a constant with a buffer of its own;
        ``buffer=`` instead points it at an existing buffer index (shared or deliberately
        wrong); neither leaves it at the empty buffer 0.  ``scale``/``zero_point`` (scalars
        for per-tensor, lists for per-axis along ``quantized_dimension``) and
        ``quant_min``/``quant_max`` write its quantization; ``quantization=`` gives it whole.
        A scale without zero points gets zeros.  ``shape=None`` omits the shape vector.
        """
        code = tensor_type(dtype)
        if data is not None and buffer is not None:
            raise UsageError(f"tensor {name!r}: give data= or buffer=, not both")
        if quantization is not None and (scale is not None or zero_point is not None
                                         or quant_min is not None or quant_max is not None):
            raise UsageError(f"tensor {name!r}: give quantization= or scale/zero_point, not both")
        if quantization is None and (scale is not None or zero_point is not None
                                     or quant_min is not None or quant_max is not None):
            scales = None if scale is None else [float(s) for s in _as_list(scale)]
            zps = None if zero_point is None else [int(z) for z in _as_list(zero_point)]
            if zps is None and scales is not None:
                zps = [0] * len(scales)
            quantization = Quantization(
                scale=scales, zero_point=zps, quantized_dimension=int(quantized_dimension),
                min=None if quant_min is None else [float(v) for v in _as_list(quant_min)],
                max=None if quant_max is None else [float(v) for v in _as_list(quant_max)])
        if data is not None:
            buffer = self._model.buffer(encode_tensor_data(data, code))
        elif buffer is None:
            buffer = 0
        spec = TensorSpec(
            subgraph=self.index, index=len(self.tensors), name=name,
            shape=None if shape is None else tuple(int(d) for d in shape), dtype=code,
            buffer=int(buffer), quantization=quantization,
            shape_signature=None if shape_signature is None else tuple(
                int(d) for d in shape_signature),
            is_variable=bool(is_variable), has_rank=bool(has_rank), sparsity=sparsity)
        self.tensors.append(spec)
        return spec

    def operator(
        self,
        op: str | int,
        inputs: Sequence[TensorRef],
        outputs: Sequence[TensorRef],
        options: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
        custom_code: str | None = None,
        custom_options: bytes | None = None,
        custom_options_format: int = 0,
        intermediates: Sequence[TensorRef] | None = None,
        mutating_variable_inputs: Sequence[bool] | None = None,
        options_member: str | None = None,
        opcode_index: int | None = None,
    ) -> OperatorSpec:
        """Append an operator (execution order = call order).

        ``op``: a builtin name (``"CONV_2D"``), a code (unknown codes allowed), or
        ``"CUSTOM:<name>"`` / ``"CUSTOM"`` with ``custom_code=``.  Inputs/outputs are tensor
        handles, raw ints, or None for an omitted optional input (written as -1).
        ``options`` fill the op's options table (see :mod:`ops_table`); ops that take one get
        it even when ``options`` is None (all defaults), as the converter writes it.
        ``options_member`` overrides the member (another table, or ``"NONE"`` for none).
        ``opcode_index`` bypasses the operator-code table (raw, for hostile files).
        """
        code, custom = _resolve_op(op)
        if custom_code is not None:
            if custom is not None and custom != custom_code:
                raise UsageError(f"operator {op!r} and custom_code={custom_code!r} disagree")
            custom = custom_code
        where = op_locator(self.index, len(self.operators), _op_name(code, custom))
        if options_member is None:
            entry = None if custom is not None else ops_table.OPTIONS_FOR_OP.get(code)
        elif options_member == "NONE":
            entry = None
        else:
            union = next((u for u, enum in ops_table.UNIONS.items()
                          if options_member in enum.__members__), None)
            if union is None or options_member == "NONE":
                raise UsageError(f"{where}: {options_member!r} is not an options table")
            entry = (union, options_member)
        opts = {k: _option_value(v) for k, v in (options or {}).items()}
        if entry is None and opts:
            raise UsageError(f"{where}: takes no builtin options, got {sorted(opts)}")
        if entry is not None:
            # Fail here, where the caller can see which operator, not at build().
            try:
                ops_table.encode_options(flatbuffers.Builder(64), entry[0], entry[1], opts)
            except UsageError as exc:
                raise UsageError(f"{where}: {exc}") from None
        if custom_options is not None and not isinstance(custom_options,
                                                         (bytes, bytearray, memoryview)):
            raise UsageError(f"{where}: custom_options must be bytes")
        spec = OperatorSpec(
            index=len(self.operators), builtin_code=code, custom_code=custom,
            version=default_version(code) if version is None else int(version),
            inputs=[_tensor_index(t) for t in inputs], outputs=[_tensor_index(t) for t in outputs],
            options_union=None if entry is None else entry[0],
            options_member=None if entry is None else entry[1], options=opts,
            custom_options=None if custom_options is None else bytes(custom_options),
            custom_options_format=int(custom_options_format),
            intermediates=None if intermediates is None else [
                _tensor_index(t) for t in intermediates],
            mutating_variable_inputs=None if mutating_variable_inputs is None else [
                bool(v) for v in mutating_variable_inputs],
            opcode_index=opcode_index)
        self.operators.append(spec)
        return spec


def _tensor_index(ref: TensorRef) -> int:
    if ref is None:
        return -1
    if isinstance(ref, TensorSpec):
        return ref.index
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        return int(ref)
    raise UsageError(f"expected a tensor handle, an int or None, got {ref!r}")


@dataclass
class _Signature:
    key: str
    subgraph: int
    inputs: list[tuple[str, int]]
    outputs: list[tuple[str, int]]


class ModelBuilder:
    """A whole model: subgraphs, buffers, signatures, metadata.  :meth:`build` writes it."""

    def __init__(self, description: str | None = None, *, version: int = SCHEMA_VERSION) -> None:
        self.description = description
        self.version = version
        self.subgraphs: list[SubgraphBuilder] = []
        self._buffers: list[_BufferEntry] = [_BufferEntry(None, may_be_external=False)]
        self._metadata: list[tuple[str, int]] = []
        self._signatures: list[_Signature] = []
        self._raw_opcodes: list[_OperatorCode] = []

    def subgraph(self, name: str | None = None) -> SubgraphBuilder:
        """Add a subgraph; the first one is subgraph 0, the model's main graph."""
        sg = SubgraphBuilder(self, len(self.subgraphs), name)
        self.subgraphs.append(sg)
        return sg

    def buffer(self, data: bytes | None) -> int:
        """Append a raw buffer (None: a buffer without a data vector); returns its index."""
        self._buffers.append(_BufferEntry(None if data is None else bytes(data)))
        return len(self._buffers) - 1

    def metadata(self, name: str, data: bytes | str) -> int:
        """Add a metadata entry; ``data`` goes into a buffer of its own, whose index is returned."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        # Metadata stays inside the FlatBuffer even with external buffers, as the converter
        # writes it: runtime readers (e.g. of min_runtime_version) only look at Buffer.data.
        self._buffers.append(_BufferEntry(raw, may_be_external=False))
        index = len(self._buffers) - 1
        self._metadata.append((name, index))
        return index

    def signature(
        self,
        key: str,
        subgraph: SubgraphBuilder | int = 0,
        inputs: Mapping[str, TensorRef] | None = None,
        outputs: Mapping[str, TensorRef] | None = None,
    ) -> None:
        """Add a SignatureDef mapping names to tensors of ``subgraph`` (in the given order)."""
        sg_index = subgraph.index if isinstance(subgraph, SubgraphBuilder) else int(subgraph)
        self._signatures.append(_Signature(
            key, sg_index,
            [(n, _tensor_index(t)) for n, t in (inputs or {}).items()],
            [(n, _tensor_index(t)) for n, t in (outputs or {}).items()]))

    def operator_code(self, builtin_code: int, *, custom_code: str | None = None, version: int = 1,
                      deprecated_builtin_code: int | None = None) -> int:
        """Add a raw operator code (not deduplicated, any field values); returns its index
        for ``SubgraphBuilder.operator(..., opcode_index=)``.  Raw codes come first in
        ``operator_codes``, before those collected from the operators."""
        dep = _deprecated_code(builtin_code) if deprecated_builtin_code is None else int(
            deprecated_builtin_code)
        self._raw_opcodes.append(_OperatorCode(int(builtin_code), custom_code, int(version), dep))
        return len(self._raw_opcodes) - 1

    # -- writing ---------------------------------------------------------------------------------
    def _collect_opcodes(self) -> tuple[list[_OperatorCode], dict[_OpKey, int]]:
        codes: list[_OperatorCode] = list(self._raw_opcodes)
        index: dict[_OpKey, int] = {}
        for sg in self.subgraphs:
            for op in sg.operators:
                if op.opcode_index is not None:
                    continue
                key = (op.builtin_code, op.custom_code, op.version)
                if key not in index:
                    index[key] = len(codes)
                    codes.append(_OperatorCode(op.builtin_code, op.custom_code, op.version,
                                               _deprecated_code(op.builtin_code)))
        return codes, index

    def build(self, *, external_buffers: bool = False) -> bytes:
        """The ``.tflite`` bytes.

        ``external_buffers=True`` stores every non-empty tensor buffer (and custom options)
        after the FlatBuffer, 16-byte aligned, referenced by ``Buffer.offset``/``size`` (and
        ``Operator.large_custom_options_offset``/``size``), the layout the converter uses for
        models over 2 GB.  Offsets count from the start of the file.
        """
        if not self.subgraphs:
            raise UsageError("the model has no subgraph; call ModelBuilder.subgraph() first")
        if not external_buffers:
            return _Writer(self, None).write()
        # Pass 1 with placeholder offsets fixes the FlatBuffer's size; pass 2 writes the real
        # offsets, which changes no field's presence or width and so no byte position.
        placeholder = _Writer(self, _ExternalLayout.placeholder(self)).write()
        layout = _ExternalLayout.after(self, len(placeholder))
        flat = _Writer(self, layout).write()
        if len(flat) != len(placeholder):
            raise InternalError("external-buffer layout changed size between passes")
        return layout.append_to(flat)


def _deprecated_code(code: int) -> int:
    # The old int8 field: codes past 126 are marked by the placeholder and read from
    # builtin_code (what the converter writes).
    return code if -128 <= code < _PLACEHOLDER_OP else _PLACEHOLDER_OP


@dataclass
class _ExternalLayout:
    """Where each externalised blob goes: buffer index / (subgraph, op) -> (offset, data)."""

    buffers: dict[int, tuple[int, bytes]]
    custom_options: dict[tuple[int, int], tuple[int, bytes]]

    @staticmethod
    def _blobs(mb: ModelBuilder) -> tuple[list[tuple[int, bytes]],
                                          list[tuple[tuple[int, int], bytes]]]:
        bufs = [(i, b.data) for i, b in enumerate(mb._buffers) if b.may_be_external and b.data]
        customs = [((sg.index, op.index), op.custom_options) for sg in mb.subgraphs
                   for op in sg.operators if op.custom_options]
        return bufs, customs

    @classmethod
    def placeholder(cls, mb: ModelBuilder) -> _ExternalLayout:
        bufs, customs = cls._blobs(mb)
        return cls({i: (2, d) for i, d in bufs}, {k: (2, d) for k, d in customs})

    @classmethod
    def after(cls, mb: ModelBuilder, flat_size: int) -> _ExternalLayout:
        bufs, customs = cls._blobs(mb)
        pos = _align(flat_size)
        out_b: dict[int, tuple[int, bytes]] = {}
        out_c: dict[tuple[int, int], tuple[int, bytes]] = {}
        for i, d in bufs:
            out_b[i] = (pos, d)
            pos = _align(pos + len(d))
        for k, d in customs:
            out_c[k] = (pos, d)
            pos = _align(pos + len(d))
        return cls(out_b, out_c)

    def append_to(self, flat: bytes) -> bytes:
        out = bytearray(flat)
        for offset, data in sorted([*self.buffers.values(), *self.custom_options.values()],
                                   key=lambda item: item[0]):
            out += bytes(offset - len(out))
            out += data
        out += bytes(_align(len(out)) - len(out))
        return bytes(out)


def _align(n: int) -> int:
    return (n + BUFFER_ALIGNMENT - 1) // BUFFER_ALIGNMENT * BUFFER_ALIGNMENT


class _Writer:
    """One serialisation of a ModelBuilder (FlatBuffers are built bottom-up, children first)."""

    def __init__(self, mb: ModelBuilder, external: _ExternalLayout | None) -> None:
        self.mb = mb
        self.external = external
        self.b = flatbuffers.Builder(1024)

    # -- primitives ----------------------------------------------------------------------------
    def _vector(self, flags: Any, values: Sequence[Any], where: str) -> int:
        b = self.b
        b.StartVector(flags.bytewidth, len(values), flags.bytewidth)
        try:
            for v in reversed(values):
                b.Prepend(flags, v)
        except (TypeError, ValueError, OverflowError, struct.error) as exc:
            raise UsageError(
                f"{where}: value out of range for {flags.__name__[:-5]} ({exc})") from None
        end: int = b.EndVector()
        return end

    def _ints(self, values: Sequence[int], where: str) -> int:
        for v in values:
            if not -(2**31) <= v < 2**31:
                raise UsageError(f"{where}: {v} does not fit int32")
        return self._vector(fbn.Int32Flags, [int(v) for v in values], where)

    def _bytes(self, data: bytes, alignment: int = 1) -> int:
        b = self.b
        b.StartVector(1, len(data), alignment)
        b.head -= len(data)
        b.Bytes[b.head : b.head + len(data)] = data
        end: int = b.EndVector()
        return end

    def _offsets(self, offsets: Sequence[int]) -> int:
        b = self.b
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        end: int = b.EndVector()
        return end

    def _string(self, s: str | None) -> int | None:
        return None if s is None else self.b.CreateString(s)

    # -- tables --------------------------------------------------------------------------------
    def _buffer(self, index: int, entry: _BufferEntry) -> int:
        m, b = _M["Buffer"], self.b
        ext = None if self.external is None else self.external.buffers.get(index)
        data = None
        if ext is None and entry.data is not None:
            data = self._bytes(entry.data, BUFFER_ALIGNMENT)
        m.BufferStart(b)
        if data is not None:
            m.BufferAddData(b, data)
        if ext is not None:
            m.BufferAddOffset(b, ext[0])
            m.BufferAddSize(b, len(ext[1]))
        end: int = m.BufferEnd(b)
        return end

    def _quantization(self, q: Quantization, where: str) -> int:
        m, b = _M["QuantizationParameters"], self.b
        qmin = None if q.min is None else self._vector(fbn.Float32Flags, list(q.min), where)
        qmax = None if q.max is None else self._vector(fbn.Float32Flags, list(q.max), where)
        scale = None if q.scale is None else self._vector(fbn.Float32Flags, list(q.scale), where)
        zp = None if q.zero_point is None else self._vector(
            fbn.Int64Flags, [int(z) for z in q.zero_point], where)
        details = None
        if q.custom is not None:
            cq = _M["CustomQuantization"]
            custom = self._bytes(bytes(q.custom), 16)
            cq.CustomQuantizationStart(b)
            cq.CustomQuantizationAddCustom(b, custom)
            details = cq.CustomQuantizationEnd(b)
        m.QuantizationParametersStart(b)
        if qmin is not None:
            m.QuantizationParametersAddMin(b, qmin)
        if qmax is not None:
            m.QuantizationParametersAddMax(b, qmax)
        if scale is not None:
            m.QuantizationParametersAddScale(b, scale)
        if zp is not None:
            m.QuantizationParametersAddZeroPoint(b, zp)
        if details is not None:
            m.QuantizationParametersAddDetailsType(b, 1)  # QuantizationDetails.CustomQuantization
            m.QuantizationParametersAddDetails(b, details)
        m.QuantizationParametersAddQuantizedDimension(b, int(q.quantized_dimension))
        end: int = m.QuantizationParametersEnd(b)
        return end

    def _index_vector(self, values: Any, where: str) -> tuple[int, int]:
        arr = np.asarray(values)
        if arr.dtype == np.uint8:
            name, flags, member = "Uint8Vector", fbn.Uint8Flags, 3
        elif arr.dtype == np.uint16:
            name, flags, member = "Uint16Vector", fbn.Uint16Flags, 2
        else:
            name, flags, member = "Int32Vector", fbn.Int32Flags, 1
        m, b = _M[name], self.b
        vec = self._vector(flags, arr.reshape(-1).tolist(), where)
        getattr(m, f"{name}Start")(b)
        getattr(m, f"{name}AddValues")(b, vec)
        return member, getattr(m, f"{name}End")(b)

    def _sparsity(self, sp: Sparsity, where: str) -> int:
        m, dm, b = _M["SparsityParameters"], _M["DimensionMetadata"], self.b
        dims = []
        for d in sp.dim_metadata or []:
            segs = None if d.array_segments is None else self._index_vector(d.array_segments, where)
            idx = None if d.array_indices is None else self._index_vector(d.array_indices, where)
            fmt = d.format if isinstance(d.format, int) else {"DENSE": 0, "SPARSE_CSR": 1}[d.format]
            dm.DimensionMetadataStart(b)
            dm.DimensionMetadataAddFormat(b, fmt)
            dm.DimensionMetadataAddDenseSize(b, int(d.dense_size))
            if segs is not None:
                dm.DimensionMetadataAddArraySegmentsType(b, segs[0])
                dm.DimensionMetadataAddArraySegments(b, segs[1])
            if idx is not None:
                dm.DimensionMetadataAddArrayIndicesType(b, idx[0])
                dm.DimensionMetadataAddArrayIndices(b, idx[1])
            dims.append(dm.DimensionMetadataEnd(b))
        order = None if sp.traversal_order is None else self._ints(list(sp.traversal_order), where)
        bmap = None if sp.block_map is None else self._ints(list(sp.block_map), where)
        dims_vec = None if sp.dim_metadata is None else self._offsets(dims)
        m.SparsityParametersStart(b)
        if order is not None:
            m.SparsityParametersAddTraversalOrder(b, order)
        if bmap is not None:
            m.SparsityParametersAddBlockMap(b, bmap)
        if dims_vec is not None:
            m.SparsityParametersAddDimMetadata(b, dims_vec)
        end: int = m.SparsityParametersEnd(b)
        return end

    def _tensor(self, t: TensorSpec) -> int:
        m, b = _M["Tensor"], self.b
        where = f"subgraph {t.subgraph}, tensor {t.index} {t.name!r}"
        shape = None if t.shape is None else self._ints(list(t.shape), where + " shape")
        sig = None if t.shape_signature is None else self._ints(
            list(t.shape_signature), where + " shape_signature")
        name = self._string(t.name)
        quant = None if t.quantization is None else self._quantization(t.quantization, where)
        sparsity = None if t.sparsity is None else self._sparsity(t.sparsity, where)
        if not 0 <= t.buffer < 2**32:
            raise UsageError(f"{where}: buffer index {t.buffer} does not fit uint32")
        if not -128 <= t.dtype < 128:
            raise UsageError(f"{where}: tensor type {t.dtype} does not fit int8")
        m.TensorStart(b)
        if shape is not None:
            m.TensorAddShape(b, shape)
        m.TensorAddType(b, t.dtype)
        m.TensorAddBuffer(b, t.buffer)
        if name is not None:
            m.TensorAddName(b, name)
        if quant is not None:
            m.TensorAddQuantization(b, quant)
        m.TensorAddIsVariable(b, t.is_variable)
        if sparsity is not None:
            m.TensorAddSparsity(b, sparsity)
        if sig is not None:
            m.TensorAddShapeSignature(b, sig)
        m.TensorAddHasRank(b, t.has_rank)
        end: int = m.TensorEnd(b)
        return end

    def _operator(self, sg: SubgraphBuilder, op: OperatorSpec, opcode_index: int) -> int:
        m, b = _M["Operator"], self.b
        where = op_locator(sg.index, op.index, _op_name(op.builtin_code, op.custom_code))
        inputs = self._ints(op.inputs, where + " inputs")
        outputs = self._ints(op.outputs, where + " outputs")
        inter = None if op.intermediates is None else self._ints(op.intermediates, where)
        mut = None if op.mutating_variable_inputs is None else self._vector(
            fbn.BoolFlags, op.mutating_variable_inputs, where)
        ext = None
        if self.external is not None:
            ext = self.external.custom_options.get((sg.index, op.index))
        custom = None
        if op.custom_options is not None and ext is None:
            custom = self._bytes(op.custom_options)
        options = None
        if op.options_member is not None:
            options = ops_table.encode_options(b, str(op.options_union), op.options_member,
                                               op.options)
        if not 0 <= opcode_index < 2**32:
            raise UsageError(f"{where}: opcode index {opcode_index} does not fit uint32")
        m.OperatorStart(b)
        m.OperatorAddOpcodeIndex(b, opcode_index)
        m.OperatorAddInputs(b, inputs)
        m.OperatorAddOutputs(b, outputs)
        if options is not None:
            code = ops_table.union_type_code(str(op.options_union), str(op.options_member))
            if op.options_union == "BuiltinOptions":
                m.OperatorAddBuiltinOptionsType(b, code)
                m.OperatorAddBuiltinOptions(b, options)
            else:
                m.OperatorAddBuiltinOptions2Type(b, code)
                m.OperatorAddBuiltinOptions2(b, options)
        if custom is not None:
            m.OperatorAddCustomOptions(b, custom)
        if op.custom_options_format:
            m.OperatorAddCustomOptionsFormat(b, op.custom_options_format)
        if mut is not None:
            m.OperatorAddMutatingVariableInputs(b, mut)
        if inter is not None:
            m.OperatorAddIntermediates(b, inter)
        if ext is not None:
            m.OperatorAddLargeCustomOptionsOffset(b, ext[0])
            m.OperatorAddLargeCustomOptionsSize(b, len(ext[1]))
        end: int = m.OperatorEnd(b)
        return end

    def _subgraph(self, sg: SubgraphBuilder, opcode_index: dict[_OpKey, int]) -> int:
        m, b = _M["SubGraph"], self.b
        tensors = self._offsets([self._tensor(t) for t in sg.tensors])
        ops = []
        for op in sg.operators:
            idx = op.opcode_index
            if idx is None:
                idx = opcode_index[(op.builtin_code, op.custom_code, op.version)]
            ops.append(self._operator(sg, op, idx))
        operators = self._offsets(ops)
        where = f"subgraph {sg.index}"
        inputs = self._ints([_tensor_index(t) for t in sg.inputs], where + " inputs")
        outputs = self._ints([_tensor_index(t) for t in sg.outputs], where + " outputs")
        name = self._string(sg.name)
        m.SubGraphStart(b)
        m.SubGraphAddTensors(b, tensors)
        m.SubGraphAddInputs(b, inputs)
        m.SubGraphAddOutputs(b, outputs)
        m.SubGraphAddOperators(b, operators)
        if name is not None:
            m.SubGraphAddName(b, name)
        end: int = m.SubGraphEnd(b)
        return end

    def _operator_code(self, oc: _OperatorCode) -> int:
        m, b = _M["OperatorCode"], self.b
        custom = self._string(oc.custom_code)
        m.OperatorCodeStart(b)
        m.OperatorCodeAddDeprecatedBuiltinCode(b, oc.deprecated_builtin_code)
        if custom is not None:
            m.OperatorCodeAddCustomCode(b, custom)
        m.OperatorCodeAddVersion(b, oc.version)
        m.OperatorCodeAddBuiltinCode(b, oc.builtin_code)
        end: int = m.OperatorCodeEnd(b)
        return end

    def _tensor_map(self, name: str, index: int, where: str) -> int:
        m, b = _M["TensorMap"], self.b
        s = b.CreateString(name)
        if not 0 <= index < 2**32:
            raise UsageError(f"{where}: tensor index {index} does not fit uint32")
        m.TensorMapStart(b)
        m.TensorMapAddName(b, s)
        m.TensorMapAddTensorIndex(b, index)
        end: int = m.TensorMapEnd(b)
        return end

    def _signature(self, sig: _Signature) -> int:
        m, b = _M["SignatureDef"], self.b
        where = f"signature {sig.key!r}"
        inputs = self._offsets([self._tensor_map(n, i, where) for n, i in sig.inputs])
        outputs = self._offsets([self._tensor_map(n, i, where) for n, i in sig.outputs])
        key = b.CreateString(sig.key)
        m.SignatureDefStart(b)
        m.SignatureDefAddInputs(b, inputs)
        m.SignatureDefAddOutputs(b, outputs)
        m.SignatureDefAddSignatureKey(b, key)
        m.SignatureDefAddSubgraphIndex(b, sig.subgraph)
        end: int = m.SignatureDefEnd(b)
        return end

    def _metadata(self, name: str, buffer: int) -> int:
        m, b = _M["Metadata"], self.b
        s = b.CreateString(name)
        m.MetadataStart(b)
        m.MetadataAddName(b, s)
        m.MetadataAddBuffer(b, buffer)
        end: int = m.MetadataEnd(b)
        return end

    def write(self) -> bytes:
        mb, b, m = self.mb, self.b, _M["Model"]
        codes, opcode_index = mb._collect_opcodes()
        # Buffers first: their data is the bulk, and building it first keeps the tables that
        # reference it close together at the front of the file.
        buffers = self._offsets([self._buffer(i, e) for i, e in enumerate(mb._buffers)])
        subgraphs = self._offsets([self._subgraph(sg, opcode_index) for sg in mb.subgraphs])
        operator_codes = self._offsets([self._operator_code(oc) for oc in codes])
        signatures = metadata = None
        if mb._signatures:
            signatures = self._offsets([self._signature(s) for s in mb._signatures])
        if mb._metadata:
            metadata = self._offsets([self._metadata(n, i) for n, i in mb._metadata])
        description = self._string(mb.description)
        m.ModelStart(b)
        m.ModelAddVersion(b, mb.version)
        m.ModelAddOperatorCodes(b, operator_codes)
        m.ModelAddSubgraphs(b, subgraphs)
        if description is not None:
            m.ModelAddDescription(b, description)
        m.ModelAddBuffers(b, buffers)
        if metadata is not None:
            m.ModelAddMetadata(b, metadata)
        if signatures is not None:
            m.ModelAddSignatureDefs(b, signatures)
        b.Finish(m.ModelEnd(b), file_identifier=FILE_IDENTIFIER)
        return bytes(b.Output())


__all__ = [
    "BUFFER_ALIGNMENT", "DimensionMetadata", "FILE_IDENTIFIER", "ModelBuilder", "OperatorSpec",
    "Quantization", "SCHEMA_VERSION", "Sparsity", "SubgraphBuilder", "TensorRef", "TensorSpec",
    "default_version", "encode_tensor_data", "pack_int4", "pack_strings", "tensor_type",
]
