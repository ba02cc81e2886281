"""A FlatBuffer verifier for ``.tflite`` files, run before any field is read.

The Python FlatBuffers runtime checks nothing: a bad offset surfaces as ``struct.error``, a string
whose length runs past the end comes back silently truncated. This pass proves, for every table
reachable from the root through the schema (``_layout.py``, generated from ``schema/schema.fbs``),
what the C++ ``flatbuffers::Verifier`` proves — offsets inside the file and aligned, vtables
well-formed, every field inside its table, vectors and strings inside the file, strings
NUL-terminated — plus that a table and its vtable do not overlap, and names the schema path and
byte offset of the first violation (:class:`~tflite_ref.errors.Locator` ``path``/``byte_offset``).

Budgets guard against aliasing bombs (one table referenced from thousands of places): a table
position is verified once per type (the result is memoised), but the *logical* number of tables a
reader would decode is counted through the aliases and capped (``Budgets.tables``), as is the
nesting depth (``Budgets.depth``).

For the fuzzing harness, :func:`flatbuffer_sites` lists the structural words of a verified file
(offsets, vtable entries, vector and string lengths, union types, scalar fields) with their
positions, so that mutations can aim at structure instead of at constant data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, cast

from tflite_ref.budgets import Budgets, resolve
from tflite_ref.errors import Locator, ModelFormatError, ResourceLimitError, locator_from_path
from tflite_ref.model._layout import LAYOUT

MAX_TABLES = Budgets().tables  # the C++ Verifier's default max_tables (the default budget)
MAX_DEPTH = Budgets().depth  # the C++ Verifier's default max_depth

# Below this many logical tables aliasing is not worth checking (and small models share their
# few empty options tables at ratios a fixed factor would trip over).
ALIASING_FLOOR = 10_000

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U16 = struct.Struct("<H")

_TABLES = cast("dict[str, list[tuple[int, str, tuple[Any, ...]]]]", LAYOUT["tables"])
_UNIONS = cast("dict[str, dict[int, str]]", LAYOUT["unions"])
_ROOT = cast(str, LAYOUT["root"])


def _elem_size(kind: tuple[Any, ...]) -> int:
    if kind[0] in ("scalar", "struct"):
        return int(kind[1])
    return 4  # offsets to strings and tables


@dataclass(frozen=True, slots=True)
class Site:
    """A structural word of the file: ``kind`` at ``pos`` (``size`` bytes), reached by ``path``.

    Kinds: ``uoffset`` (a uoffset field or vector element), ``soffset`` (a table's vtable
    offset), ``vtable_size``, ``table_size``, ``vtable_entry`` (a field's offset in the vtable),
    ``vector_length``, ``string_length``, ``union_type``, ``scalar`` (a scalar field of
    ``size`` bytes), ``vector_data`` (the elements of a vector of 4-byte scalars -- int32,
    uint32 or float32; ``size`` is the element count).
    """

    kind: str
    pos: int
    size: int
    path: str


class _Verifier:
    def __init__(self, buf: bytes, max_tables: int | None, max_depth: int | None,
                 sites: list[Site] | None = None) -> None:
        self.buf = buf
        self.n = len(buf)
        self.max_tables = max_tables
        self.max_depth = max_depth
        self.subtree: dict[tuple[int, str], int] = {}  # memo: (pos, table) -> logical table count
        self.sites = sites

    def fail(self, path: str, pos: int, msg: str) -> ModelFormatError:
        return ModelFormatError(f"{path} @{pos:#x}: {msg} (file is {self.n} bytes)",
                                locator=locator_from_path(path, pos), cve_class="A")

    def over_budget(self, path: str, pos: int) -> ResourceLimitError:
        return ResourceLimitError(
            f"{path} @{pos:#x}: more than {self.max_tables:,} tables (table visit budget "
            "exceeded; an aliasing bomb?)", locator=locator_from_path(path, pos), cve_class="M")

    def site(self, kind: str, pos: int, size: int, path: str) -> None:
        if self.sites is not None:
            self.sites.append(Site(kind, pos, size, path))

    def u32(self, pos: int, path: str) -> int:
        if pos < 0 or pos + 4 > self.n:
            raise self.fail(path, pos, "offset field lies outside the file")
        return int(_U32.unpack_from(self.buf, pos)[0])

    def offset_target(self, field_pos: int, path: str) -> int:
        """Follow a uoffset; the target must be inside the file and 4-byte aligned."""
        off = self.u32(field_pos, path)
        self.site("uoffset", field_pos, 4, path)
        target = field_pos + off
        if off == 0 or target + 4 > self.n:
            raise self.fail(path, field_pos, f"uoffset {off:#x} points outside the file")
        if target % 4:
            raise self.fail(path, target, "misaligned offset target")
        return target

    def string(self, pos: int, path: str) -> None:
        length = self.u32(pos, path)
        self.site("string_length", pos, 4, path)
        end = pos + 4 + length
        if end + 1 > self.n:
            raise self.fail(path, pos, f"string length {length} exceeds the remaining "
                                       f"{max(self.n - pos - 4, 0)} bytes")
        if self.buf[end] != 0:
            raise self.fail(path, end, "string is not NUL-terminated")

    def vector(self, pos: int, elem: tuple[Any, ...], path: str, depth: int) -> int:
        length = self.u32(pos, path)
        self.site("vector_length", pos, 4, path)
        size = _elem_size(elem)
        if length * size > self.n - pos - 4:
            raise self.fail(path, pos, f"vector length {length} exceeds the remaining "
                                       f"{self.n - pos - 4} bytes")
        if self.sites is not None and elem == ("scalar", 4) and length:
            self.site("vector_data", pos + 4, length, path)
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
                    if self.max_tables is not None and count > self.max_tables:
                        raise self.over_budget(where, target)
        return count

    def table(self, pos: int, name: str, path: str, depth: int) -> int:
        """Verify the table at ``pos``; returns the logical number of tables in its subtree."""
        memo = self.subtree.get((pos, name))
        if memo is not None:
            return memo
        if self.max_depth is not None and depth > self.max_depth:
            raise ResourceLimitError(f"{path} @{pos:#x}: tables nest deeper than "
                                     f"{self.max_depth}", locator=locator_from_path(path, pos),
                                     cve_class="M")
        buf = self.buf
        if pos + 4 > self.n:
            raise self.fail(path, pos, "table lies outside the file")
        self.site("soffset", pos, 4, path)
        vt = pos - _I32.unpack_from(buf, pos)[0]
        if vt < 0 or vt + 4 > self.n or vt % 2:
            raise self.fail(path, pos, f"{name} table: vtable offset out of range ({vt:#x})")
        vt_size, t_size = _U16.unpack_from(buf, vt)[0], _U16.unpack_from(buf, vt + 2)[0]
        self.site("vtable_size", vt, 2, path)
        self.site("table_size", vt + 2, 2, path)
        if vt_size < 4 or vt_size % 2 or vt + vt_size > self.n:
            raise self.fail(path, vt, f"{name} table: vtable size {vt_size} is invalid")
        if t_size < 4 or pos + t_size > self.n:
            raise self.fail(path, pos, f"{name} table: inline size {t_size} runs past the file")
        if vt < pos + t_size and pos < vt + vt_size:
            raise self.fail(path, vt, f"{name} table: its vtable [{vt:#x}, {vt + vt_size:#x}) "
                                      f"overlaps the table [{pos:#x}, {pos + t_size:#x})")
        count = 1
        fields = _TABLES[name]
        union_types: dict[str, int] = {}
        for slot, fname, kind in fields:
            vo = 4 + 2 * slot
            if vo + 2 > vt_size:
                break  # fields beyond the vtable are absent (older writer)
            fo = _U16.unpack_from(buf, vt + vo)[0]
            where = f"{path}.{fname}"
            self.site("vtable_entry", vt + vo, 2, where)
            if fo == 0:
                continue
            size = 1 if kind[0] == "union_type" else _elem_size(kind) if kind[0] in (
                "scalar", "struct") else 4
            if fo < 4 or fo + size > t_size:
                raise self.fail(where, pos + fo, f"field lies outside its {name} table "
                                                 f"(inline size {t_size})")
            fpos = pos + fo
            k = kind[0]
            if k == "union_type":
                self.site("union_type", fpos, 1, where)
                union_types[fname[: -len("_type")]] = buf[fpos]
            elif k == "scalar":
                self.site("scalar", fpos, size, where)
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
            if self.max_tables is not None and count > self.max_tables:
                raise self.over_budget(path, pos)
        self.subtree[(pos, name)] = count
        return count


def verify_flatbuffer(buf: bytes, max_tables: int | None = None, max_depth: int | None = None,
                      *, budgets: Budgets | None = None) -> int:
    """Verify the whole model FlatBuffer; returns the number of tables a reader would decode.

    ``max_tables``/``max_depth`` override ``budgets.tables``/``budgets.depth`` (default: the
    current budgets, :func:`tflite_ref.budgets.current`).
    """
    b = resolve(budgets)
    n = len(buf)
    if n < 8:
        raise ModelFormatError(f"file too short: {n} bytes (a .tflite file has at least 8)",
                               locator=Locator(path="file", byte_offset=n), cve_class="A")
    v = _Verifier(buf, b.tables if max_tables is None else max_tables,
                  b.depth if max_depth is None else max_depth)
    root = v.offset_target(0, "model")
    logical = v.table(root, _ROOT, "model", 1)
    distinct = len(v.subtree)
    if (b.table_aliasing is not None and logical > ALIASING_FLOOR
            and logical > b.table_aliasing * distinct):
        raise ResourceLimitError(
            f"model: {logical:,} tables to decode from {distinct:,} distinct ones: aliasing "
            f"multiplies the work {logical / distinct:,.0f}x > the table_aliasing budget of "
            f"{b.table_aliasing:g}x (an aliasing bomb?)", locator=Locator(path="model"),
            cve_class="M")
    return logical


def flatbuffer_sites(buf: bytes) -> list[Site]:
    """The structural words of a file that verifies (for structure-aware mutation).

    Memoised aliases are listed once.  Raises what :func:`verify_flatbuffer` raises.
    """
    sites: list[Site] = []
    v = _Verifier(buf, None, None, sites)
    root = v.offset_target(0, "model")
    v.table(root, _ROOT, "model", 1)
    return sites


__all__ = ["MAX_DEPTH", "MAX_TABLES", "Site", "flatbuffer_sites", "verify_flatbuffer"]
