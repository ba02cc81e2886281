"""Decoders for the opaque blobs a model carries: metadata entries and custom options.

Metadata entries TFLite itself defines:

- ``min_runtime_version``: a NUL-padded ASCII version string (written by the converter).
- ``CONVERSION_METADATA``: a small FlatBuffer, ``conversion_metadata.fbs`` in
  tensorflow/compiler/mlir/lite/schema (no generated bindings exist in the ``tflite`` package,
  so it is read field by field here, every offset and length checked).
- ``OfflineMemoryAllocation``: int32 words ``[version, subgraph, n, offset_0 .. offset_{n-1}]``
  (TFLM ``micro_allocator.cc``; -1 = plan this tensor online).

Any other entry is returned as bytes. A malformed known entry never fails the load: it stays bytes
and a warning says why.

Custom options: :func:`decode_flexbuffer` checks a FlexBuffer's structure (every offset inside
the blob, depth, and the total work including aliases) before handing it to the ``flatbuffers``
decoder, which checks nothing: negative offsets wrap around silently, and a few hundred bytes of
vectors whose elements all point at the next vector decode to 2^N values.
"""

from __future__ import annotations

import re
import struct
from typing import Any

MODEL_TYPES = {0: "NONE", 1: "TF_SAVED_MODEL", 2: "KERAS_MODEL", 3: "TF_CONCRETE_FUNCTIONS",
               4: "TF_GRAPH_DEF", 5: "TF_SESSION", 6: "JAX", 7: "PYTORCH"}
OPTIMIZATION_MODES = {1001: "PTQ_FLOAT16", 1002: "PTQ_DYNAMIC_RANGE", 1003: "PTQ_FULL_INTEGER",
                      1004: "PTQ_INT16", 2000: "QUANTIZATION_AWARE_TRAINING",
                      3001: "RANDOM_SPARSITY", 3002: "BLOCK_SPARSITY", 3003: "STRUCTURED_SPARSITY"}

MAX_VERSION_CHARS = 64  # "2.17.0-rc1" is 10; anything long is garbage, kept as bytes
_VERSION = re.compile(r"\d+(\.\d+)*([-+][0-9A-Za-z.\-+]*)?")
_DECODE_ERRORS = (ValueError, struct.error, IndexError, UnicodeDecodeError, TypeError,
                  OverflowError, RecursionError, KeyError)


def decode_metadata(name: str, raw: bytes, warnings: list[str], where: str) -> Any:
    try:
        if name == "min_runtime_version":
            return decode_min_runtime_version(raw)
        if name == "CONVERSION_METADATA":
            return decode_conversion_metadata(raw)
        if name == "OfflineMemoryAllocation":
            return decode_offline_memory_allocation(raw)
    except _DECODE_ERRORS as exc:
        text = str(exc)
        text = text if len(text) <= 120 else text[:117] + "..."
        warnings.append(f"{where} {name!r}: could not be decoded ({text}); kept as bytes")
    return raw


def decode_min_runtime_version(raw: bytes) -> str:
    text = raw.split(b"\0", 1)[0].decode("ascii")
    if len(text) > MAX_VERSION_CHARS or not _VERSION.fullmatch(text):
        shown = text[:MAX_VERSION_CHARS] + ("..." if len(text) > MAX_VERSION_CHARS else "")
        raise ValueError(f"{shown!r} is not a version number")
    return text


def decode_offline_memory_allocation(raw: bytes) -> dict[str, Any]:
    if len(raw) % 4 or len(raw) < 12:
        raise ValueError(f"{len(raw)} bytes is not a whole [version, subgraph, count, offsets...] array")
    words = struct.unpack(f"<{len(raw) // 4}i", raw)
    version, subgraph, count = words[:3]
    offsets = list(words[3:])
    if count != len(offsets):
        raise ValueError(f"says {count} offsets but holds {len(offsets)}")
    return {"version": version, "subgraph": subgraph, "offsets": offsets}


# -- a checked reader for small FlatBuffers (CONVERSION_METADATA) --------------------------------
class _Tables:
    """Table access into ``raw`` where every offset, vtable and length is checked and the total
    number of values read is capped (aliased vectors cannot multiply the work)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.n = len(raw)
        self.budget = 4 * self.n + 64  # values read; each costs at least one distinct byte

    def spend(self, k: int) -> None:
        self.budget -= k
        if self.budget < 0:
            raise ValueError("aliased vectors: more values than the bytes can hold")

    def u32(self, pos: int) -> int:
        if pos < 0 or pos + 4 > self.n:
            raise ValueError(f"offset {pos} outside {self.n} bytes")
        return int(struct.unpack_from("<I", self.raw, pos)[0])

    def table(self, pos: int) -> int:
        if pos < 0 or pos + 4 > self.n or pos % 4:
            raise ValueError(f"table at {pos} outside {self.n} bytes or misaligned")
        return pos

    def field(self, t: int, slot: int) -> int:
        """Absolute position of field ``slot`` of the table at ``t``, or 0 when absent."""
        vt = t - struct.unpack_from("<i", self.raw, t)[0]
        if vt < 0 or vt + 4 > self.n:
            raise ValueError(f"vtable of the table at {t} outside {self.n} bytes")
        vt_size, t_size = struct.unpack_from("<HH", self.raw, vt)
        if vt + vt_size > self.n or t + t_size > self.n:
            raise ValueError(f"table at {t} runs past {self.n} bytes")
        vo = 4 + 2 * slot
        if vo + 2 > vt_size:
            return 0
        fo = struct.unpack_from("<H", self.raw, vt + vo)[0]
        if fo and (fo < 4 or fo + 1 > t_size):
            raise ValueError(f"field {slot} of the table at {t} lies outside it")
        return t + fo if fo else 0

    def indirect(self, pos: int) -> int:
        return self.table(pos + self.u32(pos))

    def sub_table(self, t: int, slot: int) -> int | None:
        f = self.field(t, slot)
        return self.indirect(f) if f else None

    def string(self, t: int, slot: int) -> str | None:
        f = self.field(t, slot)
        if not f:
            return None
        s = f + self.u32(f)
        length = self.u32(s)
        if s + 4 + length > self.n:
            raise ValueError(f"string of {length} bytes runs past {self.n} bytes")
        self.spend(1)
        text = self.raw[s + 4 : s + 4 + length].decode("utf-8")
        return text if len(text) <= 256 else text[:256] + "..."

    def scalar(self, t: int, slot: int, fmt: str, default: Any) -> Any:
        f = self.field(t, slot)
        if not f:
            return default
        if f + struct.calcsize(fmt) > self.n:
            raise ValueError(f"scalar at {f} runs past {self.n} bytes")
        return struct.unpack_from("<" + fmt, self.raw, f)[0]

    def vector(self, t: int, slot: int, elem_size: int) -> tuple[int, int]:
        """(start, length) of a vector field, or (0, 0); the elements lie inside the blob."""
        f = self.field(t, slot)
        if not f:
            return 0, 0
        v = f + self.u32(f)
        length = self.u32(v)
        if length * elem_size > self.n - v - 4:
            raise ValueError(f"vector of {length} elements runs past {self.n} bytes")
        self.spend(length + 1)
        return v + 4, length


def decode_conversion_metadata(raw: bytes) -> dict[str, Any]:
    tb = _Tables(raw)
    root = tb.indirect(0)
    out: dict[str, Any] = {}
    env = tb.sub_table(root, 0)
    if env is not None:
        model_type = tb.scalar(env, 2, "i", 0)
        out["environment"] = {
            "tensorflow_version": tb.string(env, 0),
            "api_version": tb.scalar(env, 1, "I", 0),
            "model_type": MODEL_TYPES.get(model_type, model_type),
            "model_hash": tb.scalar(env, 3, "Q", 0),
        }
    opts = tb.sub_table(root, 1)
    if opts is not None:
        start, n = tb.vector(opts, 0, 4)
        modes = [struct.unpack_from("<i", raw, start + 4 * k)[0] for k in range(n)]
        blocks_start, nb = tb.vector(opts, 4, 4)
        blocks = []
        for k in range(nb):
            bt = tb.indirect(blocks_start + 4 * k)
            vs, vn = tb.vector(bt, 0, 4)
            blocks.append([struct.unpack_from("<I", raw, vs + 4 * j)[0] for j in range(vn)])
        out["options"] = {
            "model_optimization_modes": [OPTIMIZATION_MODES.get(m, m) for m in modes],
            "allow_custom_ops": bool(tb.scalar(opts, 1, "B", 0)),
            "enable_select_tf_ops": bool(tb.scalar(opts, 2, "B", 0)),
            "force_select_tf_ops": bool(tb.scalar(opts, 3, "B", 0)),
            "sparsity_block_sizes": blocks,
        }
    return out


# -- FlexBuffers (custom options) -----------------------------------------------------------------
# Type codes of flexbuffers.h.
_NULL, _INT, _UINT, _FLOAT, _KEY, _STRING = 0, 1, 2, 3, 4, 5
_INDIRECT_INT, _INDIRECT_UINT, _INDIRECT_FLOAT, _MAP, _VECTOR = 6, 7, 8, 9, 10
_TYPED_FIRST, _TYPED_LAST = 11, 15  # VECTOR_INT .. VECTOR_STRING_DEPRECATED (size-prefixed)
_FIXED_FIRST, _FIXED_LAST = 16, 24  # VECTOR_INT2 .. VECTOR_FLOAT4 (size in the type)
_BLOB, _BOOL, _VECTOR_BOOL = 25, 26, 36
_INLINE = (_NULL, _INT, _UINT, _FLOAT, _BOOL)
FLEX_MAX_DEPTH = 64


class _Flex:
    """Structural check of a FlexBuffer: what ``flexbuffers.Loads`` will touch, bounded."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.n = len(raw)
        # Values Loads would produce, counting aliases; Loads costs about this much work.
        self.budget = 8 * self.n + 256

    def uint(self, pos: int, width: int) -> int:
        if width not in (1, 2, 4, 8) or pos < 0 or pos + width > self.n:
            raise ValueError(f"a {width}-byte word at {pos} lies outside {self.n} bytes")
        return int.from_bytes(self.raw[pos : pos + width], "little")

    def target(self, pos: int, width: int) -> int:
        off = self.uint(pos, width)
        t = pos - off
        if t < 0 or t >= self.n:
            raise ValueError(f"offset {off} at {pos} points outside the buffer")
        return t

    def spend(self, k: int) -> None:
        self.budget -= k
        if self.budget < 0:
            raise ValueError("aliased values: decoding would take more than the bytes allow")

    def sized(self, t: int, width: int, elem_bytes: int) -> int:
        """Length of the size-prefixed object at ``t``; its elements must lie in the buffer."""
        size = self.uint(t - width, width)
        if size * elem_bytes > self.n - t:
            raise ValueError(f"length {size} at {t} runs past {self.n} bytes")
        return size

    def key(self, t: int) -> None:
        end = self.raw.find(b"\0", t)
        if end < 0:
            raise ValueError(f"key at {t} is not NUL-terminated")
        self.spend(1 + (end - t) // 64)
        self.raw[t:end].decode("ascii")

    def ref(self, pos: int, parent_width: int, packed: int, depth: int) -> None:
        if depth > FLEX_MAX_DEPTH:
            raise ValueError(f"nested deeper than {FLEX_MAX_DEPTH}")
        self.spend(1)
        width, kind = 1 << (packed & 3), packed >> 2
        if kind in _INLINE:
            self.uint(pos, parent_width)
            return
        t = self.target(pos, parent_width)
        if kind == _KEY:
            self.key(t)
        elif kind in (_STRING, _BLOB):
            size = self.sized(t, width, 1)
            self.spend(size // 64)
            if kind == _STRING:
                self.raw[t : t + size].decode("utf-8")
        elif kind in (_INDIRECT_INT, _INDIRECT_UINT, _INDIRECT_FLOAT):
            self.uint(t, width)
        elif kind in (_VECTOR, _MAP):
            size = self.sized(t, width, width + 1)
            self.spend(size)
            for k in range(size):
                self.ref(t + k * width, width, self.raw[t + size * width + k], depth + 1)
            if kind == _MAP:
                keys = self.target(t - 3 * width, width)
                key_width = self.uint(t - 2 * width, width)
                if self.sized(keys, key_width, key_width) != size:
                    raise ValueError(f"map at {t}: keys and values differ in number")
                for k in range(size):
                    self.key(self.target(keys + k * key_width, key_width))
        elif _TYPED_FIRST <= kind <= _TYPED_LAST or kind == _VECTOR_BOOL:
            size = self.sized(t, width, width)
            self.spend(size)
            if kind in (_KEY + _TYPED_FIRST - 1, 15):  # VECTOR_KEY, VECTOR_STRING_DEPRECATED
                for k in range(size):
                    self.key(self.target(t + k * width, width))
        elif _FIXED_FIRST <= kind <= _FIXED_LAST:
            size = 2 + (kind - _FIXED_FIRST) // 3
            if t + size * width > self.n:
                raise ValueError(f"fixed vector at {t} runs past {self.n} bytes")
            self.spend(size)
        else:
            raise ValueError(f"unknown FlexBuffer type {kind}")


def decode_flexbuffer(raw: bytes) -> Any:
    """The value of a FlexBuffer blob (as ``flexbuffers.Loads``), after a bounded structural
    check; ``ValueError`` (with a short reason) when ``raw`` is not a well-formed FlexBuffer."""
    from flatbuffers import flexbuffers

    if len(raw) < 3:
        raise ValueError(f"{len(raw)} bytes is too short for a FlexBuffer")
    root_width = raw[-1]
    if root_width not in (1, 2, 4, 8) or len(raw) < 2 + root_width:
        raise ValueError(f"root byte width {root_width} is invalid")
    check = _Flex(raw)
    try:
        check.ref(len(raw) - 2 - root_width, root_width, raw[-2], 0)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed FlexBuffer ({type(exc).__name__})") from None
    try:
        return flexbuffers.Loads(bytearray(raw))
    except _DECODE_ERRORS as exc:
        raise ValueError(f"malformed FlexBuffer ({type(exc).__name__}: {exc})") from None


__all__ = ["decode_conversion_metadata", "decode_flexbuffer", "decode_metadata",
           "decode_min_runtime_version", "decode_offline_memory_allocation"]
