"""A FlatBuffer verifier for ``.tflite`` files, run before any field is read.

The Python FlatBuffers runtime checks nothing: a bad offset surfaces as ``struct.error``, a string
whose length runs past the end comes back silently truncated. This pass proves, for every table
reachable from the root through the schema (``_layout.py``, generated from ``schema/schema.fbs``),
what the C++ ``flatbuffers::Verifier`` proves — offsets inside the file and aligned, vtables
well-formed, every field inside its table, vectors and strings inside the file, strings
NUL-terminated — and names the schema path and byte offset of the first violation.

Budgets guard against aliasing bombs (one table referenced from thousands of places): a table
position is verified once per type (the result is memoised), but the *logical* number of tables a
reader would decode is counted through the aliases and capped, as is the nesting depth.
"""

from __future__ import annotations

import struct
from typing import Any

from tflite_ref.errors import ModelFormatError, ResourceLimitError
from tflite_ref.model._layout import LAYOUT

MAX_TABLES = 1_000_000  # the C++ Verifier's default max_tables
MAX_DEPTH = 64  # the C++ Verifier's default max_depth

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U16 = struct.Struct("<H")

_TABLES: dict[str, list[tuple[int, str, tuple[Any, ...]]]] = LAYOUT["tables"]
_UNIONS: dict[str, dict[int, str]] = LAYOUT["unions"]


def _elem_size(kind: tuple[Any, ...]) -> int:
    if kind[0] in ("scalar", "struct"):
        return int(kind[1])
    return 4  # offsets to strings and tables


class _Verifier:
    def __init__(self, buf: bytes, max_tables: int, max_depth: int) -> None:
        self.buf = buf
        self.n = len(buf)
        self.max_tables = max_tables
        self.max_depth = max_depth
        self.subtree: dict[tuple[int, str], int] = {}  # memo: (pos, table) -> logical table count

    def fail(self, path: str, pos: int, msg: str) -> ModelFormatError:
        return ModelFormatError(f"{path} @{pos:#x}: {msg} (file is {self.n} bytes)")

    def u32(self, pos: int, path: str) -> int:
        if pos < 0 or pos + 4 > self.n:
            raise self.fail(path, pos, "offset field lies outside the file")
        return _U32.unpack_from(self.buf, pos)[0]

    def offset_target(self, field_pos: int, path: str) -> int:
        """Follow a uoffset; the target must be inside the file and 4-byte aligned."""
        off = self.u32(field_pos, path)
        target = field_pos + off
        if off == 0 or target + 4 > self.n:
            raise self.fail(path, field_pos, f"uoffset {off:#x} points outside the file")
        if target % 4:
            raise self.fail(path, target, "misaligned offset target")
        return target

    def string(self, pos: int, path: str) -> None:
        length = self.u32(pos, path)
        end = pos + 4 + length
        if end + 1 > self.n:
            raise self.fail(path, pos, f"string length {length} exceeds the remaining "
                                       f"{max(self.n - pos - 4, 0)} bytes")
        if self.buf[end] != 0:
            raise self.fail(path, end, "string is not NUL-terminated")

    def vector(self, pos: int, elem: tuple[Any, ...], path: str, depth: int) -> int:
        length = self.u32(pos, path)
        size = _elem_size(elem)
        if length * size > self.n - pos - 4:
            raise self.fail(path, pos, f"vector length {length} exceeds the remaining "
                                       f"{self.n - pos - 4} bytes")
        count = 0
        if elem[0] in ("table", "string"):
            for k in range(length):
                item = pos + 4 + 4 * k
                where = f"{path}[{k}]"
                target = self.offset_target(item, where)
                if elem[0] == "string":
                    self.string(target, where)
                else:
                    count += self.table(target, elem[1], where, depth + 1)
                    if count > self.max_tables:
                        raise ResourceLimitError(
                            f"{path}: more than {self.max_tables:,} tables (table visit budget "
                            "exceeded; an aliasing bomb?)")
        return count

    def table(self, pos: int, name: str, path: str, depth: int) -> int:
        """Verify the table at ``pos``; returns the logical number of tables in its subtree."""
        memo = self.subtree.get((pos, name))
        if memo is not None:
            return memo
        if depth > self.max_depth:
            raise ResourceLimitError(f"{path}: tables nest deeper than {self.max_depth}")
        buf = self.buf
        if pos + 4 > self.n:
            raise self.fail(path, pos, "table lies outside the file")
        vt = pos - _I32.unpack_from(buf, pos)[0]
        if vt < 0 or vt + 4 > self.n or vt % 2:
            raise self.fail(path, pos, f"{name} table: vtable offset out of range ({vt:#x})")
        vt_size, t_size = _U16.unpack_from(buf, vt)[0], _U16.unpack_from(buf, vt + 2)[0]
        if vt_size < 4 or vt_size % 2 or vt + vt_size > self.n:
            raise self.fail(path, vt, f"{name} table: vtable size {vt_size} is invalid")
        if t_size < 4 or pos + t_size > self.n:
            raise self.fail(path, pos, f"{name} table: inline size {t_size} runs past the file")
        count = 1
        fields = _TABLES[name]
        union_types: dict[str, int] = {}
        for slot, fname, kind in fields:
            vo = 4 + 2 * slot
            if vo + 2 > vt_size:
                break  # fields beyond the vtable are absent (older writer)
            fo = _U16.unpack_from(buf, vt + vo)[0]
            if fo == 0:
                continue
            where = f"{path}.{fname}"
            size = 1 if kind[0] == "union_type" else _elem_size(kind) if kind[0] in (
                "scalar", "struct") else 4
            if fo + size > t_size:
                raise self.fail(where, pos + fo, f"field lies outside its {name} table "
                                                 f"(inline size {t_size})")
            fpos = pos + fo
            k = kind[0]
            if k == "union_type":
                union_types[fname[: -len("_type")]] = buf[fpos]
            elif k == "string":
                self.string(self.offset_target(fpos, where), where)
            elif k == "vector":
                count += self.vector(self.offset_target(fpos, where), kind[1], where, depth)
            elif k == "table":
                count += self.table(self.offset_target(fpos, where), kind[1], where, depth + 1)
            elif k == "union":
                code = union_types.get(fname, 0)
                member = _UNIONS[kind[1]].get(code)
                target = self.offset_target(fpos, where)
                # An unknown member (a newer converter's options) cannot be verified further; the
                # reader will not decode it either.
                if member is not None and member in _TABLES:
                    count += self.table(target, member, f"{where}<{member}>", depth + 1)
            if count > self.max_tables:
                raise ResourceLimitError(f"{path}: more than {self.max_tables:,} tables (table "
                                         "visit budget exceeded; an aliasing bomb?)")
        self.subtree[(pos, name)] = count
        return count


def verify_flatbuffer(buf: bytes, max_tables: int = MAX_TABLES, max_depth: int = MAX_DEPTH) -> int:
    """Verify the whole model FlatBuffer; returns the number of tables a reader would decode."""
    n = len(buf)
    if n < 8:
        raise ModelFormatError(f"file too short: {n} bytes (a .tflite file has at least 8)")
    v = _Verifier(buf, max_tables, max_depth)
    root = v.offset_target(0, "model")
    return v.table(root, LAYOUT["root"], "model", 1)
