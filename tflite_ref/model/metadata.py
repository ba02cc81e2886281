"""Decoders for the metadata entries TFLite itself defines.

- ``min_runtime_version``: a NUL-padded ASCII version string (written by the converter).
- ``CONVERSION_METADATA``: a small FlatBuffer, ``conversion_metadata.fbs`` in
  tensorflow/compiler/mlir/lite/schema (no generated bindings exist in the ``tflite`` package,
  so it is read field by field here).
- ``OfflineMemoryAllocation``: int32 words ``[version, subgraph, n, offset_0 .. offset_{n-1}]``
  (TFLM ``micro_allocator.cc``; -1 = plan this tensor online).

Any other entry is returned as bytes. A malformed known entry never fails the load: it stays bytes
and a warning says why.
"""

from __future__ import annotations

import struct
from typing import Any

from flatbuffers.table import Table

MODEL_TYPES = {0: "NONE", 1: "TF_SAVED_MODEL", 2: "KERAS_MODEL", 3: "TF_CONCRETE_FUNCTIONS",
               4: "TF_GRAPH_DEF", 5: "TF_SESSION", 6: "JAX", 7: "PYTORCH"}
OPTIMIZATION_MODES = {1001: "PTQ_FLOAT16", 1002: "PTQ_DYNAMIC_RANGE", 1003: "PTQ_FULL_INTEGER",
                      1004: "PTQ_INT16", 2000: "QUANTIZATION_AWARE_TRAINING",
                      3001: "RANDOM_SPARSITY", 3002: "BLOCK_SPARSITY", 3003: "STRUCTURED_SPARSITY"}


def decode_metadata(name: str, raw: bytes, warnings: list[str], where: str) -> Any:
    try:
        if name == "min_runtime_version":
            return raw.split(b"\0", 1)[0].decode("ascii")
        if name == "CONVERSION_METADATA":
            return decode_conversion_metadata(raw)
        if name == "OfflineMemoryAllocation":
            return decode_offline_memory_allocation(raw)
    except (ValueError, struct.error, IndexError, UnicodeDecodeError, TypeError) as exc:
        warnings.append(f"{where} {name!r}: could not be decoded ({exc}); kept as bytes")
    return raw


def decode_offline_memory_allocation(raw: bytes) -> dict[str, Any]:
    if len(raw) % 4 or len(raw) < 12:
        raise ValueError(f"{len(raw)} bytes is not a whole [version, subgraph, count, offsets...] array")
    words = struct.unpack(f"<{len(raw) // 4}i", raw)
    version, subgraph, count = words[:3]
    offsets = list(words[3:])
    if count != len(offsets):
        raise ValueError(f"says {count} offsets but holds {len(offsets)}")
    return {"version": version, "subgraph": subgraph, "offsets": offsets}


def _table(buf: bytes, pos: int) -> Table:
    if pos + 4 > len(buf):
        raise ValueError(f"table offset {pos} outside {len(buf)} bytes")
    return Table(bytearray(buf), pos)


def _sub_table(t: Table, slot: int) -> Table | None:
    o = t.Offset(4 + 2 * slot)
    if not o:
        return None
    return Table(t.Bytes, t.Indirect(t.Pos + o))


def _string(t: Table, slot: int) -> str | None:
    o = t.Offset(4 + 2 * slot)
    return t.String(t.Pos + o).decode("utf-8") if o else None


def _scalar(t: Table, slot: int, fmt: str, default: Any) -> Any:
    o = t.Offset(4 + 2 * slot)
    if not o:
        return default
    return struct.unpack_from("<" + fmt, t.Bytes, t.Pos + o)[0]


def _vector(t: Table, slot: int) -> tuple[int, int]:
    """(start, length) of a vector field, or (0, 0)."""
    o = t.Offset(4 + 2 * slot)
    if not o:
        return 0, 0
    return t.Vector(o), t.VectorLen(o)


def decode_conversion_metadata(raw: bytes) -> dict[str, Any]:
    root = _table(raw, struct.unpack_from("<I", raw, 0)[0])
    out: dict[str, Any] = {}
    env = _sub_table(root, 0)
    if env is not None:
        out["environment"] = {
            "tensorflow_version": _string(env, 0),
            "api_version": _scalar(env, 1, "I", 0),
            "model_type": MODEL_TYPES.get(_scalar(env, 2, "i", 0), _scalar(env, 2, "i", 0)),
            "model_hash": _scalar(env, 3, "Q", 0),
        }
    opts = _sub_table(root, 1)
    if opts is not None:
        start, n = _vector(opts, 0)
        modes = [struct.unpack_from("<i", opts.Bytes, start + 4 * k)[0] for k in range(n)]
        blocks_start, nb = _vector(opts, 4)
        blocks = []
        for k in range(nb):
            bt = Table(opts.Bytes, opts.Indirect(blocks_start + 4 * k))
            vs, vn = _vector(bt, 0)
            blocks.append([struct.unpack_from("<I", bt.Bytes, vs + 4 * j)[0] for j in range(vn)])
        out["options"] = {
            "model_optimization_modes": [OPTIMIZATION_MODES.get(m, m) for m in modes],
            "allow_custom_ops": bool(_scalar(opts, 1, "B", 0)),
            "enable_select_tf_ops": bool(_scalar(opts, 2, "B", 0)),
            "force_select_tf_ops": bool(_scalar(opts, 3, "B", 0)),
            "sparsity_block_sizes": blocks,
        }
    return out
