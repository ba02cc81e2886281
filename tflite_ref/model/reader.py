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
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import flatbuffers
import numpy as np
import tflite

from tflite_ref import budgets as budgets_mod
from tflite_ref.budgets import Budgets
from tflite_ref.errors import (
    Locator,
    ModelFormatError,
    ModelValidationError,
    TFLiteRefError,
)
from tflite_ref.model import metadata as metadata_mod
from tflite_ref.model import ops_table
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
from tflite_ref.model.verify import verify_flatbuffer

T = TypeVar("T")

MAX_FILE_BYTES = 2**31  # FlatBuffers' own limit (< 2 GiB); external buffers may lie beyond
MAX_TENSOR_ELEMENTS = 2**31 - 1  # default of Budgets.tensor_elements (TFLite's int32 counts)
# Above every kernel's limit (TFLite's are 4-6; RESHAPE and friends allow 8) and far above any
# converter's output; a bound so that per-dimension loops stay small.
MAX_RANK = 16
_CUSTOM = 32  # BuiltinOperator.CUSTOM
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127

_FLATBUFFER_ERRORS = (struct.error, IndexError, TypeError, ValueError, OverflowError,
                      UnicodeDecodeError, AttributeError, RecursionError, MemoryError)


def _guard(where: str, fn: Callable[[], T], loc: Locator | None = None) -> T:
    """Call a bindings accessor; turn the anonymous errors of a corrupt buffer into one that says where.

    After :func:`verify_flatbuffer` these should not happen; the guard is the second line of
    defence, and it also prefixes errors of helpers (``ops_table``) that do not know the locator.
    """
    try:
        return fn()
    except TFLiteRefError as exc:
        if exc.locator is not None:
            raise
        raise type(exc)(f"{where}: {exc}", locator=loc, cve_class=exc.cve_class) from None
    except _FLATBUFFER_ERRORS as exc:
        raise ModelFormatError(f"{where}: malformed FlatBuffer ({type(exc).__name__}: {exc})",
                               locator=loc, cve_class="A") from None


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


def load(source: str | os.PathLike[str] | bytes | bytearray | memoryview, *,
         budgets: Budgets | None = None) -> Model:
    """Read a ``.tflite`` file (path or bytes) into an immutable, validated :class:`Model`.

    Raises :class:`~tflite_ref.errors.ModelError` (a ``ValueError``) naming the table and index of
    the first problem found, with the locator also on ``error.locator``, or
    :class:`~tflite_ref.errors.ResourceLimitError` when the file exceeds ``budgets`` (None: the
    current budgets, :func:`tflite_ref.budgets.current`).
    """
    b = budgets_mod.resolve(budgets)
    path: str | None = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        content = bytes(source)
    else:
        path = os.fspath(source)
        content = _read_file(path, b)
    with budgets_mod.use(b):
        model = _Reader(content, path, b).read()
        from tflite_ref.model.validate import validate_model  # late: validate imports model types

        return validate_model(model)


def _read_file(path: str, b: Budgets) -> bytes:
    p = Path(path)
    file_loc = Locator(path="file")
    try:
        if not p.exists():
            raise ModelFormatError(f"no such file: {path}", locator=file_loc)
        if p.is_dir():
            raise ModelFormatError(f"is a directory, not a .tflite file: {path}", locator=file_loc)
        st = p.stat()
        budgets_mod.check_file_size(st.st_size, b)
        with p.open("rb") as f:
            if stat.S_ISREG(st.st_mode) or b.file_bytes is None:
                content = f.read()
            else:
                # A pipe or a device has no size (st_size 0) and may never end (/dev/zero):
                # read in chunks up to one byte past the budget. (f.read(n) would allocate n.)
                chunks, total = [], 0
                while total <= b.file_bytes:
                    chunk = f.read(min(1 << 20, b.file_bytes + 1 - total))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    total += len(chunk)
                content = b"".join(chunks)
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror or exc}",
                               locator=file_loc) from None
    budgets_mod.check_file_size(len(content), b)
    return content


class _Reader:
    def __init__(self, content: bytes, path: str | None, budgets: Budgets) -> None:
        self.buf = content
        self.path = path
        self.budgets = budgets
        self.warnings: list[str] = []
        # Work proportional to a buffer's size is done once per buffer, however many tensors
        # or metadata entries share it (an amplification a 4-byte index makes cheap to ask for).
        self._int4: dict[tuple[int, int], np.ndarray] = {}
        self._raw: dict[int, bytes] = {}

    # -- header ---------------------------------------------------------------------------------
    def read(self) -> Model:
        buf = self.buf
        budgets_mod.check_file_size(len(buf), self.budgets)
        if len(buf) < 8:
            raise ModelFormatError(
                f"file too short: {len(buf)} bytes (a .tflite file has at least 8)",
                locator=Locator(path="file", byte_offset=len(buf)), cve_class="A")
        if buf[4:8] != b"TFL3":
            ident = Locator(path="file identifier", byte_offset=4)
            if buf[:4] == b"\x89PNG" or buf[:2] in (b"PK", b"\x1f\x8b") or buf[:1] in (b"{", b"<"):
                raise ModelFormatError(
                    "not a .tflite file (no 'TFL3' identifier; looks like another format)",
                    locator=ident, cve_class="A")
            raise ModelFormatError(
                f"not a .tflite file: file identifier is {bytes(buf[4:8])!r}, expected b'TFL3'",
                locator=ident, cve_class="A")
        # Every offset, vtable, vector and string, before any field is read.
        verify_flatbuffer(buf, budgets=self.budgets)
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
            loc = Locator(table="buffers", index=i, buffer=i)
            b = _guard(where, lambda: m.Buffers(i), loc)
            if b is None:
                raise ModelFormatError(f"{where}: missing table", locator=loc, cve_class="A")
            offset = _guard(where + ".offset", b.Offset, loc)
            size = _guard(where + ".size", b.Size, loc)
            data: memoryview | None = None
            if offset > 1:
                # Stored after the FlatBuffer (converter's >2 GB layout). Python ints cannot wrap,
                # so this is the bounds check that uint64 arithmetic gets wrong (tensorflow#116632).
                if offset + size > len(self.buf):
                    raise ModelValidationError(
                        f"{where}: external data at offset {offset} with size {size} ends past the "
                        f"end of the file ({len(self.buf)} bytes)",
                        locator=loc.with_(byte_offset=offset), cve_class="G")
                data = view[offset : offset + size] if size else None
            else:
                length = _guard(where + ".data", b.DataLength, loc)
                if length:
                    start = _guard(where + ".data", lambda: b._tab.Vector(
                        b._tab.Offset(4)), loc)
                    if start + length > len(self.buf):
                        raise ModelFormatError(
                            f"{where}.data: length {length} at byte {start:#x} runs past the end of "
                            f"the file ({len(self.buf)} bytes)",
                            locator=loc.with_(byte_offset=start), cve_class="A")
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
            loc = Locator(table="operator_codes", index=i)
            oc = _guard(where, lambda: m.OperatorCodes(i), loc)
            if oc is None:
                raise ModelFormatError(f"{where}: missing table", locator=loc, cve_class="A")
            dep = _guard(where, oc.DeprecatedBuiltinCode, loc)
            code = _guard(where, lambda: _raw_builtin_code(oc), loc)
            if code != 0 and dep != 0 and dep != min(code, _PLACEHOLDER_FOR_GREATER_OP_CODES):
                raise ModelValidationError(
                    f"{where}: builtin_code {code} ({builtin_operator_name(code)}) and "
                    f"deprecated_builtin_code {dep} ({builtin_operator_name(dep)}) disagree",
                    locator=loc.with_(slot="builtin_code"), cve_class="B")
            effective = max(code, dep)  # schema_utils.cc GetBuiltinCode
            custom_raw = _guard(where, oc.CustomCode, loc)
            custom = (_decode_str(where + ".custom_code", custom_raw, self.warnings)
                      if custom_raw else None)
            version = _guard(where, oc.Version, loc)
            name = builtin_operator_name(effective)
            if name.startswith("BUILTIN_"):
                self.warnings.append(
                    f"{where}: builtin operator code {effective} is newer than this schema; "
                    "shown by number")
            out.append(OperatorCode(index=i, builtin_code=effective, name=name, custom_code=custom,
                                    version=version, deprecated_builtin_code=dep))
        return tuple(out)

    # -- subgraphs ------------------------------------------------------------------------------
    def _subgraph(self, m: Any, si: int, opcodes: tuple[OperatorCode, ...],
                  buffers: tuple[Buffer, ...]) -> Subgraph:
        where = f"subgraphs[{si}]"
        loc = Locator(subgraph=si)
        sg = _guard(where, lambda: m.Subgraphs(si), loc)
        if sg is None:
            raise ModelFormatError(f"{where}: missing table", locator=loc, cve_class="A")
        name = _decode_str(where + ".name", _guard(where, sg.Name, loc), self.warnings)
        inputs = tuple(_guard(where + ".inputs", lambda: _int_vector(sg, "Inputs"), loc))
        outputs = tuple(_guard(where + ".outputs", lambda: _int_vector(sg, "Outputs"), loc))
        n_t = _guard(where + ".tensors", sg.TensorsLength, loc)
        tensors = tuple(self._tensor(sg, si, ti, buffers) for ti in range(n_t))
        n_o = _guard(where + ".operators", sg.OperatorsLength, loc)
        operators = tuple(self._operator(sg, si, oi, opcodes) for oi in range(n_o))
        return Subgraph(index=si, name=name, inputs=inputs, outputs=outputs, tensors=tensors,
                        operators=operators)

    def _tensor(self, sg: Any, si: int, ti: int, buffers: tuple[Buffer, ...]) -> Tensor:
        where = f"subgraph {si}, tensor {ti}"
        loc = Locator(subgraph=si, tensor=ti)
        t = _guard(where, lambda: sg.Tensors(ti), loc)
        if t is None:
            raise ModelFormatError(f"{where}: missing table", locator=loc, cve_class="A")
        name = _decode_str(where + " name", _guard(where, t.Name, loc), self.warnings)
        where = f"subgraph {si}, tensor {ti} {name!r}"
        loc = loc.with_(tensor_name=name)
        ttype = _guard(where, t.Type, loc)
        type_name = tensor_type_name(ttype)
        dtype = NUMPY_DTYPES.get(ttype)
        if type_name.startswith("TYPE_"):
            self.warnings.append(f"{where}: tensor type {ttype} is newer than this schema; "
                                 "shown by number")
        shape = tuple(_guard(where + " shape", lambda: _int_vector(t, "Shape"), loc))
        sig_none = _guard(where, t.ShapeSignatureIsNone, loc)
        shape_signature = None if sig_none else tuple(
            _guard(where + " shape_signature", lambda: _int_vector(t, "ShapeSignature"), loc))
        if len(shape) > MAX_RANK:
            raise ModelValidationError(
                f"{where}: rank {len(shape)} exceeds the supported maximum {MAX_RANK}",
                locator=loc.with_(slot="shape"), cve_class="E")
        for d in shape:
            if d < 0:
                raise ModelValidationError(
                    f"{where}: negative dimension in shape {list(shape)} "
                    "(only shape_signature may use -1)", locator=loc.with_(slot="shape"),
                    cve_class="E")
        # Python ints never wrap (NumPy's prod does); checked dim by dim against the budget.
        budgets_mod.element_count(shape, where, self.budgets)
        if shape_signature is not None:
            if len(shape_signature) != len(shape):
                raise ModelValidationError(
                    f"{where}: shape_signature {list(shape_signature)} has rank "
                    f"{len(shape_signature)}, shape {list(shape)} has rank {len(shape)}",
                    locator=loc.with_(slot="shape_signature"), cve_class="E")
            for d, s in zip(shape, shape_signature):
                if s != -1 and s != d or s < -1:
                    raise ModelValidationError(
                        f"{where}: shape_signature {list(shape_signature)} disagrees with shape "
                        f"{list(shape)}", locator=loc.with_(slot="shape_signature"),
                        cve_class="E")
        bidx = _guard(where, t.Buffer, loc)
        if not 0 <= bidx < len(buffers):
            raise ModelValidationError(
                f"{where}: buffer index {bidx}, but the model has {len(buffers)} buffers",
                locator=loc.with_(slot="buffer", buffer=bidx), cve_class="B")
        loc = loc.with_(buffer=bidx)
        is_variable = bool(_guard(where, t.IsVariable, loc))
        has_rank = bool(_guard(where, t.HasRank, loc))
        quant = self._quantization(t, where, loc)
        sparsity = self._sparsity(t, where, loc)
        buf = buffers[bidx]
        data = None
        if buf.data is not None and buf.size > 0:
            if bidx == 0:
                raise ModelValidationError(
                    f"{where}: uses buffer 0, which must be the empty sentinel but holds "
                    f"{buf.size} bytes", locator=loc, cve_class="B")
            data = self._tensor_data(where, loc, ttype, dtype, shape, buf, sparsity)
        return Tensor(index=ti, name=name, type=ttype, type_name=type_name, dtype=dtype, shape=shape,
                      shape_signature=shape_signature, buffer=bidx, is_variable=is_variable,
                      quantization=quant, sparsity=sparsity, data=data,
                      buffer_bytes=buf.size if buf.data is not None else 0, has_rank=has_rank)

    def _tensor_data(self, where: str, loc: Locator, ttype: int, dtype: np.dtype | None,
                     shape: tuple[int, ...], buf: Buffer, sparsity: Sparsity | None
                     ) -> np.ndarray | None:
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
                    f"(packed two per byte) needs {need}", locator=loc.with_(slot="data"),
                    cve_class="E")
            return self._unpack_int4(buf, n).reshape(shape)
        itemsize = STORAGE_ITEMSIZE.get(ttype)
        if itemsize is None:
            return None
        need = n * itemsize
        if buf.size != need:
            raise ModelValidationError(
                f"{where}: buffer {buf.index} holds {buf.size} bytes, shape {list(shape)} "
                f"{tensor_type_name(ttype)} needs {need}", locator=loc.with_(slot="data"),
                cve_class="E")
        arr = np.frombuffer(buf.data, dtype=dtype.newbyteorder("<"), count=n)
        if arr.dtype.byteorder not in ("=", "|") and not np.little_endian:
            arr = arr.astype(dtype)
        return _readonly(arr.reshape(shape).view(dtype) if arr.dtype == dtype else arr.reshape(shape))

    def _unpack_int4(self, buf: Buffer, n: int) -> np.ndarray:
        """Packed INT4 -> int8, once per buffer (tensors sharing a buffer share the array)."""
        cached = self._int4.get((buf.index, n))
        if cached is not None:
            return cached
        assert buf.data is not None
        packed = np.frombuffer(buf.data, dtype=np.uint8)
        low = (packed & 0x0F).astype(np.int8)
        high = (packed >> 4).astype(np.int8)
        vals = np.empty(packed.size * 2, dtype=np.int8)
        vals[0::2], vals[1::2] = low, high  # low nibble first (tensor_utils PackInt8IntoDenseInt)
        vals = np.where(vals > 7, vals - 16, vals).astype(np.int8)[:n]
        self._int4[(buf.index, n)] = out = _readonly(vals)
        return out

    def _quantization(self, t: Any, where: str, loc: Locator) -> Quantization | None:
        w = where + " quantization"
        q = _guard(w, t.Quantization, loc)
        if q is None:
            return None
        scale = np.array(_guard(w, lambda: _float_vector(q, "Scale"), loc), dtype=np.float32)
        zp = np.array(_guard(w, lambda: _int_vector(q, "ZeroPoint"), loc), dtype=np.int64)
        mins = tuple(float(v) for v in _guard(w, lambda: _float_vector(q, "Min"), loc))
        maxs = tuple(float(v) for v in _guard(w, lambda: _float_vector(q, "Max"), loc))
        qd = _guard(w, q.QuantizedDimension, loc)
        details = _guard(w, q.DetailsType, loc)
        if scale.size == 0 and zp.size == 0 and not mins and not maxs and details == 0:
            return None
        return Quantization(scale=_readonly(scale), zero_point=_readonly(zp), quantized_dimension=qd,
                            min=mins, max=maxs, details_type=details)

    def _sparsity(self, t: Any, where: str, loc: Locator) -> Sparsity | None:
        w = where + " sparsity"
        loc = loc.with_(slot="sparsity")
        s = _guard(w, t.Sparsity, loc)
        if s is None:
            return None
        traversal = tuple(_guard(w, lambda: _int_vector(s, "TraversalOrder"), loc))
        block_map = tuple(_guard(w, lambda: _int_vector(s, "BlockMap"), loc))
        dims = []
        for k in range(_guard(w, s.DimMetadataLength, loc)):
            wk = f"{w}: dim_metadata[{k}]"
            dm = _guard(wk, lambda: s.DimMetadata(k), loc)
            fmt = _guard(wk, dm.Format, loc)
            dims.append(DimensionMetadata(
                format={0: "DENSE", 1: "SPARSE_CSR"}.get(fmt, f"FORMAT_{fmt}"),
                dense_size=_guard(wk, dm.DenseSize, loc),
                array_segments=_guard(wk, lambda: _sparse_index_vector(dm, "ArraySegments"), loc),
                array_indices=_guard(wk, lambda: _sparse_index_vector(dm, "ArrayIndices"), loc),
            ))
        return Sparsity(traversal_order=traversal, block_map=block_map, dim_metadata=tuple(dims))

    # -- operators ------------------------------------------------------------------------------
    def _operator(self, sg: Any, si: int, oi: int, opcodes: tuple[OperatorCode, ...]) -> Operator:
        where = f"subgraph {si}, operator {oi}"
        loc = Locator(subgraph=si, operator=oi)
        op = _guard(where, lambda: sg.Operators(oi), loc)
        if op is None:
            raise ModelFormatError(f"{where}: missing table", locator=loc, cve_class="A")
        opcode_index = _guard(where, op.OpcodeIndex, loc)
        if not 0 <= opcode_index < len(opcodes):
            raise ModelValidationError(
                f"{where}: opcode_index {opcode_index}, but the model has {len(opcodes)} operator "
                "codes", locator=loc.with_(slot="opcode_index"), cve_class="B")
        oc = opcodes[opcode_index]
        label = f"CUSTOM:{oc.custom_code}" if oc.builtin_code == _CUSTOM else oc.name
        where = f"subgraph {si}, operator {oi} ({label})"
        loc = loc.with_(opcode=label)
        inputs = tuple(_guard(where + " inputs", lambda: _int_vector(op, "Inputs"), loc))
        outputs = tuple(_guard(where + " outputs", lambda: _int_vector(op, "Outputs"), loc))
        intermediates = tuple(
            _guard(where + " intermediates", lambda: _int_vector(op, "Intermediates"), loc))
        mutating = tuple(bool(v) for v in _guard(
            where, lambda: _int_vector(op, "MutatingVariableInputs"), loc))
        options_type, options = self._options(op, oc, where, loc)
        custom_options: bytes | None = None
        custom_decoded: Any = None
        if _guard(where, op.CustomOptionsLength, loc):
            custom_options = bytes(_guard(where + " custom_options", op.CustomOptionsAsNumpy,
                                          loc).tobytes())
        else:
            large_off = _guard(where, op.LargeCustomOptionsOffset, loc)
            large_size = _guard(where, op.LargeCustomOptionsSize, loc)
            if large_off > 1 and large_size:
                if large_off + large_size > len(self.buf):
                    raise ModelValidationError(
                        f"{where}: large custom options at offset {large_off} with size "
                        f"{large_size} end past the end of the file ({len(self.buf)} bytes)",
                        locator=loc.with_(slot="large_custom_options", byte_offset=large_off),
                        cve_class="G")
                custom_options = self.buf[large_off : large_off + large_size]
        if custom_options:
            try:
                custom_decoded = metadata_mod.decode_flexbuffer(custom_options)
            except ValueError as exc:
                # Not every custom op uses FlexBuffers (ethos-u passes raw bytes): kept as bytes;
                # a kernel that needs the options decodes them strictly and fails with its locator.
                if oc.builtin_code != _CUSTOM:
                    self.warnings.append(f"{where}: custom_options are not a FlexBuffer ({exc})")
        return Operator(index=oi, subgraph=si, opcode_index=opcode_index, builtin_code=oc.builtin_code,
                        name=oc.name, custom_code=oc.custom_code, version=oc.version, inputs=inputs,
                        outputs=outputs, intermediates=intermediates, options_type=options_type,
                        options=MappingProxyType(options), custom_options=custom_options,
                        custom_options_decoded=custom_decoded, mutating_variable_inputs=mutating)

    def _options(self, op: Any, oc: OperatorCode, where: str, loc: Locator
                 ) -> tuple[str | None, dict[str, Any]]:
        expected = ops_table.OPTIONS_FOR_OP.get(oc.builtin_code)
        for union, type_getter, table_getter in (
            ("BuiltinOptions", op.BuiltinOptionsType, op.BuiltinOptions),
            ("BuiltinOptions2", op.BuiltinOptions2Type, op.BuiltinOptions2),
        ):
            code = _guard(where + " " + union, type_getter, loc)
            if code == 0:
                continue
            member = ops_table.union_member_name(union, code)
            if member is None:
                self.warnings.append(f"{where}: {union} type {code} is newer than this schema; "
                                     "options not decoded")
                return f"{union}:{code}", {}
            if expected is not None and (union, member) != expected:
                raise ModelValidationError(
                    f"{where}: carries {member}, but {oc.name} takes {expected[1]}",
                    locator=loc.with_(slot=union.lower()), cve_class="B")
            table = _guard(where + " " + member, table_getter, loc)
            if table is None:
                return member, {}
            return member, _guard(where + " " + member,
                                  lambda: ops_table.decode_options(table, union, member), loc)
        if expected is not None:
            # Absent options: TFLite uses the defaults of the options table (ParseOpData).
            return expected[1], ops_table.default_options(*expected)
        return None, {}

    # -- metadata and signatures ----------------------------------------------------------------
    def _metadata(self, m: Any, buffers: tuple[Buffer, ...]) -> tuple[Metadata, ...]:
        out = []
        for i in range(_guard("model.metadata", m.MetadataLength)):
            where = f"metadata[{i}]"
            loc = Locator(table="metadata", index=i)
            md = _guard(where, lambda: m.Metadata(i), loc)
            if md is None:
                raise ModelFormatError(f"{where}: missing table", locator=loc, cve_class="A")
            name = _decode_str(where + ".name", _guard(where, md.Name, loc), self.warnings)
            bidx = _guard(where, md.Buffer, loc)
            if not 0 <= bidx < len(buffers):
                raise ModelValidationError(
                    f"{where} {name!r}: buffer index {bidx}, but the model has {len(buffers)} "
                    "buffers", locator=loc.with_(slot="buffer", buffer=bidx), cve_class="B")
            raw = self._raw.get(bidx)
            if raw is None:
                data = buffers[bidx].data
                raw = self._raw[bidx] = bytes(data) if data is not None else b""
            value = metadata_mod.decode_metadata(name, raw, self.warnings, where)
            out.append(Metadata(name=name, buffer=bidx, value=value))
        return tuple(out)

    def _signatures(self, m: Any) -> tuple[SignatureDef, ...]:
        out = []
        for i in range(_guard("model.signature_defs", m.SignatureDefsLength)):
            where = f"signature_defs[{i}]"
            loc = Locator(table="signature_defs", index=i)
            sd = _guard(where, lambda: m.SignatureDefs(i), loc)
            if sd is None:
                raise ModelFormatError(f"{where}: missing table", locator=loc, cve_class="A")
            key = _decode_str(where + ".signature_key", _guard(where, sd.SignatureKey, loc),
                              self.warnings)
            sub = _guard(where, sd.SubgraphIndex, loc)
            maps = []
            for kind in ("Inputs", "Outputs"):
                entries: dict[str, int] = {}
                for j in range(_guard(where, getattr(sd, kind + "Length"), loc)):
                    slot = f"{kind.lower()}[{j}]"
                    tm = _guard(where, lambda: getattr(sd, kind)(j), loc)
                    if tm is None:
                        raise ModelFormatError(f"{where}.{slot}: missing table",
                                               locator=loc.with_(slot=slot), cve_class="A")
                    nm = _decode_str(f"{where}.{slot}.name", _guard(where, tm.Name, loc),
                                     self.warnings)
                    if nm in entries:
                        raise ModelValidationError(
                            f"{where} {key!r}: duplicate {kind.lower()[:-1]} name {nm!r}",
                            locator=loc.with_(slot=slot))
                    entries[nm] = _guard(where, tm.TensorIndex, loc)
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
    return [int(v) for v in arr.tolist()]


def _float_vector(obj: Any, field: str) -> list[float]:
    if getattr(obj, field + "IsNone")():
        return []
    arr = getattr(obj, field + "AsNumpy")()
    if isinstance(arr, int):
        return []
    return [float(v) for v in arr.tolist()]


def _sparse_index_vector(dm: Any, field: str) -> np.ndarray | None:
    """DimensionMetadata.array_segments / array_indices: a union of Int32/Uint16/Uint8 vectors."""
    kind = getattr(dm, field + "Type")()
    table = getattr(dm, field)()
    if kind == 0 or table is None:
        return None
    cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}.get(kind)
    if cls is None:
        raise ModelValidationError(f"{field}: unknown SparseIndexVector type {kind}",
                                   cve_class="K")
    vec = cls()
    vec.Init(table.Bytes, table.Pos)
    if vec.ValuesIsNone():
        return _readonly(np.zeros(0, dtype=np.int64))
    return _readonly(np.asarray(vec.ValuesAsNumpy()).astype(np.int64))


__all__ = ["MAX_RANK", "MAX_TENSOR_ELEMENTS", "load"]
