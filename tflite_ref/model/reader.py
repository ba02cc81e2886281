"""``.tflite`` bytes -> validated, immutable :class:`~tflite_ref.model.model.Model`.

Decoding goes through the ``tflite`` bindings; every field access is guarded so that a malformed
FlatBuffer becomes a :class:`ModelFormatError` naming the table path, never a ``struct.error``.
Semantic validation (indices, sizes, quantization, topology) follows in :mod:`validate`.

Compatibility rules that TFLite applies and the generated code does not know live here:
``max(builtin_code, deprecated_builtin_code)`` (``schema_utils.cc`` ``GetBuiltinCode``) and
buffers stored after the FlatBuffer (``Buffer.offset``/``size``, used for models over 2 GB).
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, TypeVar

import flatbuffers
import numpy as np
import tflite

from tflite_ref.errors import ModelFormatError, ModelValidationError, ResourceLimitError
from tflite_ref.model import metadata as metadata_mod
from tflite_ref.model import ops_table
from tflite_ref.model.verify import verify_flatbuffer
from tflite_ref.model.model import (
    Buffer,
    DimensionMetadata,
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
from tflite_ref.model.schema import (
    NUMPY_DTYPES,
    STORAGE_ITEMSIZE,
    TensorType,
    builtin_operator_name,
    tensor_type_name,
)

T = TypeVar("T")

MAX_FILE_BYTES = 2**31  # FlatBuffers' own limit (< 2 GiB); external buffers may lie beyond
MAX_TENSOR_ELEMENTS = 2**31 - 1  # TFLite's TfLiteIntArray / size_t math assumes int32 counts
MAX_RANK = 16
_CUSTOM = 32  # BuiltinOperator.CUSTOM
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127

_FLATBUFFER_ERRORS = (struct.error, IndexError, TypeError, ValueError, OverflowError,
                      UnicodeDecodeError, AttributeError, RecursionError, MemoryError)


def _guard(where: str, fn: Callable[[], T]) -> T:
    """Call a bindings accessor; turn the anonymous errors of a corrupt buffer into one that says where."""
    try:
        return fn()
    except ModelFormatError:
        raise
    except _FLATBUFFER_ERRORS as exc:
        raise ModelFormatError(f"{where}: malformed FlatBuffer ({type(exc).__name__}: {exc})") from None


def _decode_str(where: str, raw: bytes | None, warnings: list[str]) -> str:
    if raw is None:
        return ""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        warnings.append(f"{where}: not valid UTF-8; undecodable bytes replaced")
        return raw.decode("utf-8", errors="replace")


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def load(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> Model:
    """Read a ``.tflite`` file (path or bytes) into an immutable, validated :class:`Model`.

    Raises :class:`~tflite_ref.errors.ModelError` (a ``ValueError``) naming the table and index of
    the first problem found.
    """
    path: str | None = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        content = bytes(source)
    else:
        path = os.fspath(source)
        p = Path(path)
        if not p.exists():
            raise ModelFormatError(f"no such file: {path}")
        if p.is_dir():
            raise ModelFormatError(f"is a directory, not a .tflite file: {path}")
        size = p.stat().st_size
        if size >= MAX_FILE_BYTES * 2:
            raise ResourceLimitError(f"file is {size} bytes; the limit is {MAX_FILE_BYTES * 2}")
        try:
            content = p.read_bytes()
        except OSError as exc:
            raise ModelFormatError(f"cannot read {path}: {exc.strerror}") from None
    model = _Reader(content, path).read()
    from tflite_ref.model.validate import validate_model  # late: validate imports model types

    return validate_model(model)


class _Reader:
    def __init__(self, content: bytes, path: str | None) -> None:
        self.buf = content
        self.path = path
        self.warnings: list[str] = []

    # -- header ---------------------------------------------------------------------------------
    def read(self) -> Model:
        buf = self.buf
        if len(buf) < 8:
            raise ModelFormatError(f"file too short: {len(buf)} bytes (a .tflite file has at least 8)")
        if buf[4:8] != b"TFL3":
            if buf[:4] == b"\x89PNG" or buf[:2] in (b"PK", b"\x1f\x8b") or buf[:1] in (b"{", b"<"):
                raise ModelFormatError("not a .tflite file (no 'TFL3' identifier; looks like another format)")
            raise ModelFormatError(
                f"not a .tflite file: file identifier is {bytes(buf[4:8])!r}, expected b'TFL3'"
            )
        verify_flatbuffer(buf)  # every offset, vtable, vector and string, before any field is read
        m = _guard("model", lambda: tflite.Model.GetRootAs(buf, 0))
        version = _guard("model.version", m.Version)
        description = _decode_str("model.description", _guard("model.description", m.Description),
                                  self.warnings)
        buffers = self._buffers(m)
        opcodes = self._opcodes(m)
        n_sub = _guard("model.subgraphs", m.SubgraphsLength)
        subgraphs = tuple(self._subgraph(m, i, opcodes, buffers) for i in range(n_sub))
        metadata = self._metadata(m, buffers)
        signatures = self._signatures(m)
        return Model(
            version=version,
            description=description,
            operator_codes=opcodes,
            subgraphs=subgraphs,
            buffers=buffers,
            metadata=metadata,
            signatures=signatures,
            size_bytes=len(buf),
            warnings=tuple(self.warnings),
            content=buf,
            path=self.path,
        )

    # -- buffers --------------------------------------------------------------------------------
    def _buffers(self, m: Any) -> tuple[Buffer, ...]:
        out = []
        view = memoryview(self.buf).toreadonly()
        n = _guard("model.buffers", m.BuffersLength)
        for i in range(n):
            where = f"buffers[{i}]"
            b = _guard(where, lambda: m.Buffers(i))
            if b is None:
                raise ModelFormatError(f"{where}: missing table")
            offset = _guard(where + ".offset", b.Offset)
            size = _guard(where + ".size", b.Size)
            data: memoryview | None = None
            if offset > 1:
                # Stored after the FlatBuffer (converter's >2 GB layout). Python ints cannot wrap,
                # so this is the bounds check that uint64 arithmetic gets wrong (tensorflow#116632).
                if offset + size > len(self.buf):
                    raise ModelValidationError(
                        f"{where}: external data at offset {offset} with size {size} ends past the "
                        f"end of the file ({len(self.buf)} bytes)"
                    )
                data = view[offset : offset + size] if size else None
            else:
                length = _guard(where + ".data", b.DataLength)
                if length:
                    start = _guard(where + ".data", lambda: b._tab.Vector(
                        b._tab.Offset(4)))
                    if start + length > len(self.buf):
                        raise ModelFormatError(
                            f"{where}.data: length {length} at byte {start:#x} runs past the end of "
                            f"the file ({len(self.buf)} bytes)"
                        )
                    data = view[start : start + length]
                size = length
                offset = 0
            out.append(Buffer(index=i, size=size, offset=offset, data=data))
        return tuple(out)

    # -- operator codes -------------------------------------------------------------------------
    def _opcodes(self, m: Any) -> tuple[OperatorCode, ...]:
        out = []
        n = _guard("model.operator_codes", m.OperatorCodesLength)
        for i in range(n):
            where = f"operator_codes[{i}]"
            oc = _guard(where, lambda: m.OperatorCodes(i))
            if oc is None:
                raise ModelFormatError(f"{where}: missing table")
            dep = _guard(where, oc.DeprecatedBuiltinCode)
            code = _guard(where, lambda: _raw_builtin_code(oc))
            if code != 0 and dep != 0 and dep != min(code, _PLACEHOLDER_FOR_GREATER_OP_CODES):
                raise ModelValidationError(
                    f"{where}: builtin_code {code} ({builtin_operator_name(code)}) and "
                    f"deprecated_builtin_code {dep} ({builtin_operator_name(dep)}) disagree"
                )
            effective = max(code, dep)  # schema_utils.cc GetBuiltinCode
            custom_raw = _guard(where, oc.CustomCode)
            custom = _decode_str(where + ".custom_code", custom_raw, self.warnings) if custom_raw else None
            version = _guard(where, oc.Version)
            name = builtin_operator_name(effective)
            if name.startswith("BUILTIN_"):
                self.warnings.append(
                    f"{where}: builtin operator code {effective} is newer than this schema; shown by number"
                )
            out.append(OperatorCode(index=i, builtin_code=effective, name=name, custom_code=custom,
                                    version=version, deprecated_builtin_code=dep))
        return tuple(out)

    # -- subgraphs ------------------------------------------------------------------------------
    def _subgraph(self, m: Any, si: int, opcodes: tuple[OperatorCode, ...],
                  buffers: tuple[Buffer, ...]) -> Subgraph:
        where = f"subgraphs[{si}]"
        sg = _guard(where, lambda: m.Subgraphs(si))
        if sg is None:
            raise ModelFormatError(f"{where}: missing table")
        name = _decode_str(where + ".name", _guard(where, sg.Name), self.warnings)
        inputs = tuple(int(v) for v in _guard(where + ".inputs", lambda: _int_vector(sg, "Inputs")))
        outputs = tuple(int(v) for v in _guard(where + ".outputs", lambda: _int_vector(sg, "Outputs")))
        n_t = _guard(where + ".tensors", sg.TensorsLength)
        tensors = tuple(self._tensor(sg, si, ti, buffers) for ti in range(n_t))
        n_o = _guard(where + ".operators", sg.OperatorsLength)
        operators = tuple(self._operator(sg, si, oi, opcodes) for oi in range(n_o))
        return Subgraph(index=si, name=name, inputs=inputs, outputs=outputs, tensors=tensors,
                        operators=operators)

    def _tensor(self, sg: Any, si: int, ti: int, buffers: tuple[Buffer, ...]) -> Tensor:
        where = f"subgraph {si}, tensor {ti}"
        t = _guard(where, lambda: sg.Tensors(ti))
        if t is None:
            raise ModelFormatError(f"{where}: missing table")
        name = _decode_str(where + " name", _guard(where, t.Name), self.warnings)
        where = f"subgraph {si}, tensor {ti} {name!r}"
        ttype = _guard(where, t.Type)
        type_name = tensor_type_name(ttype)
        dtype = NUMPY_DTYPES.get(ttype)
        if type_name.startswith("TYPE_"):
            self.warnings.append(f"{where}: tensor type {ttype} is newer than this schema; shown by number")
        shape = tuple(int(v) for v in _guard(where + " shape", lambda: _int_vector(t, "Shape")))
        sig_none = _guard(where, t.ShapeSignatureIsNone)
        shape_signature = None if sig_none else tuple(
            int(v) for v in _guard(where + " shape_signature", lambda: _int_vector(t, "ShapeSignature")))
        if len(shape) > MAX_RANK:
            raise ModelValidationError(f"{where}: rank {len(shape)} exceeds the supported maximum {MAX_RANK}")
        for d in shape:
            if d < 0:
                raise ModelValidationError(f"{where}: negative dimension in shape {list(shape)} "
                                           "(only shape_signature may use -1)")
        n_elem = math.prod(shape)
        if n_elem > MAX_TENSOR_ELEMENTS:
            raise ResourceLimitError(
                f"{where}: shape {list(shape)} has {n_elem} elements, over the limit of {MAX_TENSOR_ELEMENTS}")
        if shape_signature is not None:
            if len(shape_signature) != len(shape):
                raise ModelValidationError(
                    f"{where}: shape_signature {list(shape_signature)} has rank {len(shape_signature)}, "
                    f"shape {list(shape)} has rank {len(shape)}")
            for d, s in zip(shape, shape_signature):
                if s != -1 and s != d or s < -1:
                    raise ModelValidationError(
                        f"{where}: shape_signature {list(shape_signature)} disagrees with shape {list(shape)}")
        bidx = _guard(where, t.Buffer)
        if not 0 <= bidx < len(buffers):
            raise ModelValidationError(
                f"{where}: buffer index {bidx}, but the model has {len(buffers)} buffers")
        is_variable = bool(_guard(where, t.IsVariable))
        has_rank = bool(_guard(where, t.HasRank))
        quant = self._quantization(t, where)
        sparsity = self._sparsity(t, where)
        buf = buffers[bidx]
        data = None
        if buf.data is not None and buf.size > 0:
            if bidx == 0:
                raise ModelValidationError(f"{where}: uses buffer 0, which must be the empty sentinel "
                                           f"but holds {buf.size} bytes")
            data = self._tensor_data(where, ttype, dtype, shape, buf, sparsity)
        return Tensor(index=ti, name=name, type=ttype, type_name=type_name, dtype=dtype, shape=shape,
                      shape_signature=shape_signature, buffer=bidx, is_variable=is_variable,
                      quantization=quant, sparsity=sparsity, data=data,
                      buffer_bytes=buf.size if buf.data is not None else 0, has_rank=has_rank)

    def _tensor_data(self, where: str, ttype: int, dtype: np.dtype | None, shape: tuple[int, ...],
                     buf: Buffer, sparsity: Sparsity | None) -> np.ndarray | None:
        assert buf.data is not None
        n = math.prod(shape)
        if sparsity is not None or dtype is None:
            # Sparse constants are densified by DENSIFY / the kernels; unknown types stay raw bytes.
            return _readonly(np.frombuffer(buf.data, dtype=np.uint8))
        if ttype == TensorType.STRING:
            return _readonly(np.frombuffer(buf.data, dtype=np.uint8))
        if ttype in (TensorType.RESOURCE, TensorType.VARIANT):
            return None
        if ttype == TensorType.INT4:
            need = (n + 1) // 2
            if buf.size != need:
                raise ModelValidationError(
                    f"{where}: buffer {buf.index} holds {buf.size} bytes, shape {list(shape)} INT4 "
                    f"(packed two per byte) needs {need}")
            packed = np.frombuffer(buf.data, dtype=np.uint8)
            low = (packed & 0x0F).astype(np.int8)
            high = (packed >> 4).astype(np.int8)
            vals = np.empty(packed.size * 2, dtype=np.int8)
            vals[0::2], vals[1::2] = low, high  # low nibble first (tensor_utils PackInt8IntoDenseInt)
            vals = np.where(vals > 7, vals - 16, vals).astype(np.int8)[:n]
            return _readonly(vals.reshape(shape))
        itemsize = STORAGE_ITEMSIZE.get(ttype)
        if itemsize is None:
            return None
        need = n * itemsize
        if buf.size != need:
            raise ModelValidationError(
                f"{where}: buffer {buf.index} holds {buf.size} bytes, shape {list(shape)} "
                f"{tensor_type_name(ttype)} needs {need}")
        arr = np.frombuffer(buf.data, dtype=dtype.newbyteorder("<"), count=n)
        if arr.dtype.byteorder not in ("=", "|") and not np.little_endian:
            arr = arr.astype(dtype)
        return _readonly(arr.reshape(shape).view(dtype) if arr.dtype == dtype else arr.reshape(shape))

    def _quantization(self, t: Any, where: str) -> Quantization | None:
        q = _guard(where + " quantization", t.Quantization)
        if q is None:
            return None
        w = where + " quantization"
        scale = np.array(_guard(w, lambda: _float_vector(q, "Scale")), dtype=np.float32)
        zp = np.array(_guard(w, lambda: _int_vector(q, "ZeroPoint")), dtype=np.int64)
        mins = tuple(float(v) for v in _guard(w, lambda: _float_vector(q, "Min")))
        maxs = tuple(float(v) for v in _guard(w, lambda: _float_vector(q, "Max")))
        qd = _guard(w, q.QuantizedDimension)
        details = _guard(w, q.DetailsType)
        if scale.size == 0 and zp.size == 0 and not mins and not maxs and details == 0:
            return None
        return Quantization(scale=_readonly(scale), zero_point=_readonly(zp), quantized_dimension=qd,
                            min=mins, max=maxs, details_type=details)

    def _sparsity(self, t: Any, where: str) -> Sparsity | None:
        s = _guard(where + " sparsity", t.Sparsity)
        if s is None:
            return None
        w = where + " sparsity"
        traversal = tuple(int(v) for v in _guard(w, lambda: _int_vector(s, "TraversalOrder")))
        block_map = tuple(int(v) for v in _guard(w, lambda: _int_vector(s, "BlockMap")))
        dims = []
        for k in range(_guard(w, s.DimMetadataLength)):
            dm = _guard(w, lambda: s.DimMetadata(k))
            fmt = _guard(w, dm.Format)
            dims.append(DimensionMetadata(
                format={0: "DENSE", 1: "SPARSE_CSR"}.get(fmt, f"FORMAT_{fmt}"),
                dense_size=_guard(w, dm.DenseSize),
                array_segments=_guard(w, lambda: _sparse_index_vector(dm, "ArraySegments")),
                array_indices=_guard(w, lambda: _sparse_index_vector(dm, "ArrayIndices")),
            ))
        return Sparsity(traversal_order=traversal, block_map=block_map, dim_metadata=tuple(dims))

    # -- operators ------------------------------------------------------------------------------
    def _operator(self, sg: Any, si: int, oi: int, opcodes: tuple[OperatorCode, ...]) -> Operator:
        where = f"subgraph {si}, operator {oi}"
        op = _guard(where, lambda: sg.Operators(oi))
        if op is None:
            raise ModelFormatError(f"{where}: missing table")
        opcode_index = _guard(where, op.OpcodeIndex)
        if not 0 <= opcode_index < len(opcodes):
            raise ModelValidationError(
                f"{where}: opcode_index {opcode_index}, but the model has {len(opcodes)} operator codes")
        oc = opcodes[opcode_index]
        label = f"CUSTOM:{oc.custom_code}" if oc.builtin_code == _CUSTOM else oc.name
        where = f"subgraph {si}, operator {oi} ({label})"
        inputs = tuple(int(v) for v in _guard(where + " inputs", lambda: _int_vector(op, "Inputs")))
        outputs = tuple(int(v) for v in _guard(where + " outputs", lambda: _int_vector(op, "Outputs")))
        intermediates = tuple(
            int(v) for v in _guard(where + " intermediates", lambda: _int_vector(op, "Intermediates")))
        mutating = tuple(bool(v) for v in _guard(
            where, lambda: _int_vector(op, "MutatingVariableInputs")))
        options_type, options = self._options(op, oc, where)
        custom_options: bytes | None = None
        custom_decoded: Any = None
        if _guard(where, op.CustomOptionsLength):
            custom_options = bytes(_guard(where + " custom_options", op.CustomOptionsAsNumpy).tobytes())
        else:
            large_off = _guard(where, op.LargeCustomOptionsOffset)
            large_size = _guard(where, op.LargeCustomOptionsSize)
            if large_off > 1 and large_size:
                if large_off + large_size > len(self.buf):
                    raise ModelValidationError(
                        f"{where}: large custom options at offset {large_off} with size {large_size} "
                        f"end past the end of the file")
                custom_options = self.buf[large_off : large_off + large_size]
        if custom_options:
            custom_decoded = _flexbuffer(custom_options)
        return Operator(index=oi, subgraph=si, opcode_index=opcode_index, builtin_code=oc.builtin_code,
                        name=oc.name, custom_code=oc.custom_code, version=oc.version, inputs=inputs,
                        outputs=outputs, intermediates=intermediates, options_type=options_type,
                        options=MappingProxyType(options), custom_options=custom_options,
                        custom_options_decoded=custom_decoded, mutating_variable_inputs=mutating)

    def _options(self, op: Any, oc: OperatorCode, where: str) -> tuple[str | None, dict[str, Any]]:
        expected = ops_table.OPTIONS_FOR_OP.get(oc.builtin_code)
        for union, type_getter, table_getter in (
            ("BuiltinOptions", op.BuiltinOptionsType, op.BuiltinOptions),
            ("BuiltinOptions2", op.BuiltinOptions2Type, op.BuiltinOptions2),
        ):
            code = _guard(where + " " + union, type_getter)
            if code == 0:
                continue
            member = ops_table.union_member_name(union, code)
            if member is None:
                self.warnings.append(f"{where}: {union} type {code} is newer than this schema; "
                                     "options not decoded")
                return f"{union}:{code}", {}
            if expected is not None and (union, member) != expected:
                raise ModelValidationError(
                    f"{where}: carries {member}, but {oc.name} takes {expected[1]}")
            table = _guard(where + " " + member, table_getter)
            if table is None:
                return member, {}
            return member, _guard(where + " " + member,
                                  lambda: ops_table.decode_options(table, union, member))
        if expected is not None:
            # Absent options: TFLite uses the defaults of the options table (ParseOpData).
            return expected[1], ops_table.default_options(*expected)
        return None, {}

    # -- metadata and signatures ----------------------------------------------------------------
    def _metadata(self, m: Any, buffers: tuple[Buffer, ...]) -> tuple[Metadata, ...]:
        out = []
        for i in range(_guard("model.metadata", m.MetadataLength)):
            where = f"metadata[{i}]"
            md = _guard(where, lambda: m.Metadata(i))
            name = _decode_str(where + ".name", _guard(where, md.Name), self.warnings)
            bidx = _guard(where, md.Buffer)
            if not 0 <= bidx < len(buffers):
                raise ModelValidationError(
                    f"{where} {name!r}: buffer index {bidx}, but the model has {len(buffers)} buffers")
            raw = bytes(buffers[bidx].data) if buffers[bidx].data is not None else b""
            value = metadata_mod.decode_metadata(name, raw, self.warnings, where)
            out.append(Metadata(name=name, buffer=bidx, value=value))
        return tuple(out)

    def _signatures(self, m: Any) -> tuple[SignatureDef, ...]:
        out = []
        for i in range(_guard("model.signature_defs", m.SignatureDefsLength)):
            where = f"signature_defs[{i}]"
            sd = _guard(where, lambda: m.SignatureDefs(i))
            key = _decode_str(where + ".signature_key", _guard(where, sd.SignatureKey), self.warnings)
            sub = _guard(where, sd.SubgraphIndex)
            maps = []
            for kind in ("Inputs", "Outputs"):
                entries: dict[str, int] = {}
                for j in range(_guard(where, getattr(sd, kind + "Length"))):
                    tm = _guard(where, lambda: getattr(sd, kind)(j))
                    nm = _decode_str(f"{where}.{kind.lower()}[{j}].name", _guard(where, tm.Name),
                                     self.warnings)
                    if nm in entries:
                        raise ModelValidationError(f"{where} {key!r}: duplicate {kind.lower()[:-1]} "
                                                   f"name {nm!r}")
                    entries[nm] = _guard(where, tm.TensorIndex)
                maps.append(MappingProxyType(entries))
            out.append(SignatureDef(key=key, subgraph_index=sub, inputs=maps[0], outputs=maps[1]))
        return tuple(out)


def _raw_builtin_code(oc: Any) -> int:
    """``OperatorCode.builtin_code`` as stored. The ``tflite`` 2.18 accessor substitutes
    ``deprecated_builtin_code`` for small values, which would hide a disagreement between them."""
    o = oc._tab.Offset(10)  # field 3 of OperatorCode (schema.fbs): builtin_code:BuiltinOperator
    return oc._tab.Get(flatbuffers.number_types.Int32Flags, o + oc._tab.Pos) if o else 0


def _int_vector(obj: Any, field: str) -> list[int]:
    if getattr(obj, field + "IsNone")():
        return []
    arr = getattr(obj, field + "AsNumpy")()
    if isinstance(arr, int):  # bindings return 0 for an absent vector
        return []
    return arr.tolist()


def _float_vector(obj: Any, field: str) -> list[float]:
    return _int_vector(obj, field)  # same accessor shape; values keep their float type


def _sparse_index_vector(dm: Any, field: str) -> np.ndarray | None:
    """DimensionMetadata.array_segments / array_indices: a union of Int32/Uint16/Uint8 vectors."""
    kind = getattr(dm, field + "Type")()
    table = getattr(dm, field)()
    if kind == 0 or table is None:
        return None
    cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}.get(kind)
    if cls is None:
        raise ModelValidationError(f"{field}: unknown SparseIndexVector type {kind}")
    vec = cls()
    vec.Init(table.Bytes, table.Pos)
    if vec.ValuesIsNone():
        return _readonly(np.zeros(0, dtype=np.int64))
    return _readonly(np.asarray(vec.ValuesAsNumpy()).astype(np.int64))


def _flexbuffer(raw: bytes) -> Any:
    """Decode custom options as a FlexBuffer when they are one; None otherwise (raw bytes stay)."""
    try:
        from flatbuffers import flexbuffers

        return flexbuffers.Loads(bytearray(raw))
    except Exception:  # noqa: BLE001 - not a FlexBuffer is an ordinary outcome, not an error
        return None


__all__ = ["load", "MAX_TENSOR_ELEMENTS", "MAX_RANK"]
