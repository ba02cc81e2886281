"""Fuzz tflite_ref with mutants of real models: no crash, no hang, no stray exception.

Each mutant of a model from the shared corpus is written to a file and handed to every entry
point a user has -- ``load`` (the API), ``tflite-ref inspect --json``, ``tflite-ref run --json``
and ``tflite-ref micro --json`` (when that command exists) -- each in a child process forked
from a warmed-up worker, under an address-space limit (``RLIMIT_AS``, 2 GiB) and a wall-clock
timeout (10 s).  Every run ends in one of these outcomes:

- ``accepted``: the command succeeded (for ``micro``, exit 1 = "TFLite Micro would not run it"
  is a verdict, also accepted);
- ``error <Type>``: a :class:`~tflite_ref.errors.TFLiteRefError` -- the expected way to refuse
  a bad file -- counted by type, with or without a locator (``error.locator``);
- ``uncaught``: any other exception (including :class:`InternalError`): a bug;
- ``crash``: the child died by a signal or without reporting;
- ``timeout`` / ``memory``: the child passed the time or the memory limit
  (a ``MemoryError`` anywhere in the exception chain);
- ``cli-output``: the CLI refused the file but not with one line and exit code 2, or
  ``inspect --json`` exited 0 without printing valid JSON.

Mutations (deterministic in ``--seed`` and the mutant's index, whatever the scheduling):

- ``truncate``, ``flip`` (1-8 random bytes), ``extreme`` (a word set to 0, -1, INT_MIN, ...),
  ``zero`` (a range of bytes);
- ``struct``: one structural word found by the verifier's walk of the schema
  (:func:`tflite_ref.model.verify.flatbuffer_sites`): a uoffset, vtable entry or size, a vector
  or string length, a union type, a scalar field, an element of an int32 vector;
- ``semantic``: the model is read, rebuilt with our writer with one edit -- an operand, a shape,
  a dtype, a buffer index, quantization parameters, an option value, constant data (indices),
  the operator order -- and written back.

Failures are minimized (the bytes that differ from the base model are reverted while the
failure stays the same) and can be saved (``--save-crashers DIR``) for regression tests.

    python benchmarks/fuzz.py --count 500                    # a quick run, table on stdout
    python benchmarks/fuzz.py --count 10000 --json out.json  # the long run, also as JSON
    python benchmarks/fuzz.py --reproduce 0:1234 -o m.tflite # write mutant 1234 of seed 0
"""

from __future__ import annotations

import os

# Before NumPy (and its BLAS) is imported: one BLAS thread per process (2 workers, 2 cores), and
# no per-thread arenas counting against the address-space limit.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import contextlib
import copy
import dataclasses
import gzip
import hashlib
import io
import json
import math
import multiprocessing
import random
import resource
import select
import signal
import statistics
import struct
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

import tflite_ref
from tflite_ref.errors import TFLiteRefError, UsageError
from tflite_ref.model import writer as W
from tflite_ref.model.model import Model
from tflite_ref.model.verify import Site, flatbuffer_sites

DEFAULT_CORPUS = ROOT.parent / "shared" / "models"
COMMANDS = ("load", "inspect", "run", "micro")
GiB = 1 << 30
FAILURES = ("uncaught", "crash", "timeout", "memory", "cli-output")
STRATEGIES = {"truncate": 10, "flip": 15, "extreme": 15, "zero": 10, "struct": 30, "semantic": 20}


# ==================================================================================================
# The corpus
# ==================================================================================================
@dataclass
class Base:
    """A corpus model and what mutations need from it, computed once per worker."""

    id: str
    path: Path
    data: bytes
    _sites: list[Site] | None = None
    _model: Model | None = None

    @property
    def sites(self) -> list[Site]:
        if self._sites is None:
            self._sites = flatbuffer_sites(self.data)
        return self._sites

    @property
    def model(self) -> Model:
        if self._model is None:
            self._model = tflite_ref.load(self.data)
        return self._model


def corpus(root: Path, max_bytes: int | None = None, names: Sequence[str] = ()) -> list[Base]:
    paths = sorted(root.glob("*/*.tflite"))
    out = []
    for p in paths:
        mid = f"{p.parent.name}/{p.stem}"
        if names and not any(n in mid for n in names):
            continue
        if max_bytes is not None and p.stat().st_size > max_bytes:
            continue
        out.append(Base(mid, p, p.read_bytes()))
    if not out:
        raise SystemExit(f"no models under {root} (filters: max_bytes={max_bytes}, {names})")
    return out


# ==================================================================================================
# Mutations
# ==================================================================================================
@dataclass
class Mutant:
    index: int
    base: str
    strategy: str
    detail: str
    data: bytes
    reference: bytes  # what the mutant differs from (the base file, or its rebuild)


_EXTREME32 = (0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0x7FFFFFF0, 0x10000, 0xFF)
_EXTREME16 = (0, 1, 2, 3, 0xFFFF, 0x7FFF, 0x8000, 0xFFFE)
_EXTREME8 = (0, 1, 0x7F, 0x80, 0xFF, 0xFE)


def _put(buf: bytearray, pos: int, size: int, value: int) -> None:
    if 0 <= pos and pos + size <= len(buf):
        buf[pos:pos + size] = (value % (1 << (8 * size))).to_bytes(size, "little")


def _get(buf: bytes, pos: int, size: int) -> int:
    return int.from_bytes(buf[pos:pos + size], "little")


def mutate_bytes(rnd: random.Random, strategy: str, data: bytes) -> tuple[str, bytes]:
    buf = bytearray(data)
    n = len(buf)
    if strategy == "truncate":
        # Half the cuts near the front, where the tables live in converter output.
        cut = rnd.randrange(n) if rnd.random() < 0.5 else rnd.randrange(min(n, 4096))
        return f"cut at {cut}", bytes(buf[:cut])
    if strategy == "flip":
        k = rnd.randint(1, 8)
        where = sorted(rnd.randrange(n) for _ in range(k))
        for pos in where:
            buf[pos] = rnd.randrange(256)
        return f"{k} bytes at {where[:4]}{'...' if k > 4 else ''}", bytes(buf)
    if strategy == "extreme":
        size = rnd.choice((4, 4, 4, 2, 1, 8))
        pos = rnd.randrange(0, max(n - size, 1)) & ~(min(size, 4) - 1)
        value = rnd.choice({4: _EXTREME32, 2: _EXTREME16, 1: _EXTREME8,
                            8: (0, 2**64 - 1, 2**63, 2**63 - 1, n, n + 1)}[size])
        _put(buf, pos, size, value)
        return f"{size}-byte word at {pos} := {value:#x}", bytes(buf)
    if strategy == "zero":
        length = rnd.choice((4, 8, 16, 64, 256))
        pos = rnd.randrange(n)
        buf[pos:pos + length] = bytes(len(buf[pos:pos + length]))
        return f"{length} bytes at {pos} zeroed", bytes(buf)
    raise ValueError(strategy)


def mutate_structure(rnd: random.Random, base: Base) -> tuple[str, bytes]:
    buf = bytearray(base.data)
    n = len(buf)
    site = rnd.choice(base.sites)
    old = _get(buf, site.pos, 4 if site.kind == "vector_data" else site.size)
    k = site.kind
    if k == "uoffset":
        others = [s.pos for s in base.sites if s.kind == "soffset"]
        target = rnd.choice(others) if others else 0
        value = rnd.choice((0, 0xFFFFFFFF, old + 4, old - 4, old + 1, old + 2, n - site.pos,
                            n - site.pos - 2, 0x7FFFFFFF, (target - site.pos) % 2**32))
    elif k == "soffset":
        value = rnd.choice((0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, old + 2, old - 2, old + 1,
                            old + 4096, (old - site.pos) % 2**32))
    elif k in ("vtable_size", "table_size", "vtable_entry"):
        value = rnd.choice((0, 1, 2, 3, 4, 0xFFFF, 0xFFFE, old + 2, old - 2, old + 1, old * 2))
    elif k in ("vector_length", "string_length"):
        value = rnd.choice((0, old + 1, old - 1, old * 2, 0x7FFFFFFF, 0xFFFFFFFF, 0x40000000,
                            (n - site.pos) // 4, n - site.pos))
    elif k == "union_type":
        value = rnd.choice((0, 1, 2, 5, 17, 127, 128, 200, 255, old + 1))
    elif k == "scalar":
        value = rnd.choice({1: _EXTREME8, 2: _EXTREME16, 4: _EXTREME32,
                            8: (0, 2**64 - 1, 2**63, n, n - 1, 2**32)}[site.size]
                           + (old + 1, old - 1))
    elif k == "vector_data":
        pos = site.pos + 4 * rnd.randrange(site.size)
        old = _get(buf, pos, 4)
        value = rnd.choice((-1, -2, 0, 1, old + 1, old * 2 + 1, 2**31 - 1, -(2**31), 1 << 20,
                            255, 65535, 4096))
        _put(buf, pos, 4, value)
        return f"{k} {site.path}[{(pos - site.pos) // 4}] @{pos:#x}: {old} -> {value}", bytes(buf)
    else:
        raise ValueError(k)
    size = 4 if k in ("uoffset", "soffset", "vector_length", "string_length") else site.size
    _put(buf, site.pos, size, value)
    return f"{k} {site.path} @{site.pos:#x}: {old:#x} -> {value % (1 << (8 * size)):#x}", \
        bytes(buf)


# -- semantic edits: read, rebuild with the writer, edit one thing -----------------------------------
def builder_from_model(model: Model) -> W.ModelBuilder:
    """A :class:`ModelBuilder` that writes ``model`` back (buffers and indices as they are)."""
    mb = W.ModelBuilder(model.description or None, version=model.version)
    for b in model.buffers[1:]:
        mb.buffer(bytes(b.data) if b.data is not None else None)
    if model.buffers and model.buffers[0].data is not None:
        mb._buffers[0].data = bytes(model.buffers[0].data)
    for sg in model.subgraphs:
        sb = mb.subgraph(sg.name or None)
        for t in sg.tensors:
            q = None
            if t.quantization is not None:
                tq = t.quantization
                q = W.Quantization(
                    scale=[float(s) for s in tq.scale] if tq.scale.size else None,
                    zero_point=[int(z) for z in tq.zero_point] if tq.zero_point.size else None,
                    quantized_dimension=tq.quantized_dimension,
                    min=list(tq.min) or None, max=list(tq.max) or None)
            sp = None
            if t.sparsity is not None:
                sp = W.Sparsity(list(t.sparsity.traversal_order), list(t.sparsity.block_map), [
                    W.DimensionMetadata(d.format if not d.format.startswith("FORMAT_")
                                        else int(d.format[7:]), d.dense_size,
                                        None if d.array_segments is None
                                        else d.array_segments.astype(np.int32),
                                        None if d.array_indices is None
                                        else d.array_indices.astype(np.int32))
                    for d in t.sparsity.dim_metadata])
            sb.tensors.append(W.TensorSpec(
                subgraph=sg.index, index=t.index, name=t.name, shape=t.shape, dtype=t.type,
                buffer=t.buffer, quantization=q, shape_signature=t.shape_signature,
                is_variable=t.is_variable, has_rank=t.has_rank, sparsity=sp))
        for op in sg.operators:
            union = member = None
            if op.options_type is not None and ":" not in op.options_type:
                member = op.options_type
                union = next(u for u, e in W.ops_table.UNIONS.items() if member in e.__members__)
            sb.operators.append(W.OperatorSpec(
                index=op.index, builtin_code=op.builtin_code, custom_code=op.custom_code,
                version=op.version, inputs=list(op.inputs), outputs=list(op.outputs),
                options_union=union, options_member=member, options=dict(op.options),
                custom_options=op.custom_options,
                intermediates=list(op.intermediates) or None,
                mutating_variable_inputs=list(op.mutating_variable_inputs) or None))
        sb.inputs, sb.outputs = list(sg.inputs), list(sg.outputs)
    for md in model.metadata:
        mb._metadata.append((md.name, md.buffer))
    for sd in model.signatures:
        mb.signature(sd.key, sd.subgraph_index, dict(sd.inputs), dict(sd.outputs))
    return mb


_TYPES = (0, 1, 2, 3, 4, 6, 7, 9, 10, 17, 30, 120)  # FLOAT32 .. INT8, INT4, unknown codes
_BAD_INDEX = (-1, -2, 2**31 - 1, -(2**31))


def _edit(rnd: random.Random, mb: W.ModelBuilder) -> str:
    """Apply one semantic edit to ``mb``; returns what it did."""
    sgs = [sg for sg in mb.subgraphs if sg.tensors]
    sg = rnd.choice(sgs)
    nt = len(sg.tensors)
    ops = sg.operators
    kind = rnd.choice(("operand", "operand", "shape", "shape", "dtype", "buffer", "quant", "quant",
                       "option", "option", "option", "data", "data", "order", "io", "variable",
                       "opcode", "signature"))
    if kind == "operand" and ops:
        op = rnd.choice(ops)
        slots = [("inputs", k) for k in range(len(op.inputs))] + \
                [("outputs", k) for k in range(len(op.outputs))]
        if slots:
            which, k = rnd.choice(slots)
            value = rnd.choice((*_BAD_INDEX, nt, rnd.randrange(nt), rnd.randrange(nt)))
            getattr(op, which)[k] = value
            return f"subgraph {sg.index} operator {op.index} {which}[{k}] := {value}"
    if kind == "shape":
        t = rnd.choice(sg.tensors)
        shape = list(t.shape or ())
        how = rnd.choice(("dim", "dim", "dim", "rank+", "rank-", "none", "signature"))
        if how == "dim" and shape:
            k = rnd.randrange(len(shape))
            shape[k] = rnd.choice((0, -1, 1, 2, shape[k] + 1, shape[k] * 2, 2**31 - 1, 1 << 20,
                                   65536, 3))
        elif how == "rank+":
            shape.insert(rnd.randrange(len(shape) + 1), rnd.choice((1, 2, 7)))
        elif how == "rank-" and shape:
            shape.pop(rnd.randrange(len(shape)))
        elif how == "signature":
            t.shape_signature = tuple(-1 if rnd.random() < 0.5 else d for d in shape)
            return f"subgraph {sg.index} tensor {t.index} shape_signature := {t.shape_signature}"
        t.shape = None if how == "none" else tuple(shape)
        return f"subgraph {sg.index} tensor {t.index} shape := {t.shape}"
    if kind == "dtype":
        t = rnd.choice(sg.tensors)
        t.dtype = rnd.choice(_TYPES)
        return f"subgraph {sg.index} tensor {t.index} type := {t.dtype}"
    if kind == "buffer":
        t = rnd.choice(sg.tensors)
        nb = len(mb._buffers)
        t.buffer = rnd.choice((0, nb, rnd.randrange(nb), rnd.randrange(nb), 2**31))
        return f"subgraph {sg.index} tensor {t.index} buffer := {t.buffer}"
    if kind == "quant":
        cands = [t for t in sg.tensors if t.quantization is not None] or sg.tensors
        t = rnd.choice(cands)
        q = copy.deepcopy(t.quantization) or W.Quantization(scale=[0.1], zero_point=[0])
        how = rnd.choice(("scale", "scale", "zp", "zp", "count", "dim"))
        if how == "scale" and q.scale:
            scales = list(q.scale)
            k = rnd.randrange(len(scales))
            scales[k] = rnd.choice((0.0, -1.0, float("nan"), float("inf"), 1e30, 1e-30, 2.0,
                                    1e-45, 65536.0))
            q.scale = scales
        elif how == "zp" and q.zero_point:
            zps = list(q.zero_point)
            k = rnd.randrange(len(zps))
            zps[k] = rnd.choice((-129, 128, 255, 256, -32769, 2**31, -(2**40), 127, -128))
            q.zero_point = zps
        elif how == "count" and q.scale:
            q.scale = list(q.scale) * 2 if rnd.random() < 0.5 else list(q.scale)[:-1]
        else:
            q.quantized_dimension = rnd.choice((-1, 1, 3, 4, 2**31 - 1))
        t.quantization = q
        return f"subgraph {sg.index} tensor {t.index} quantization {how}: {q}"
    if kind == "option":
        cands = [op for op in ops if op.options]
        if cands:
            op = rnd.choice(cands)
            key = rnd.choice(sorted(op.options))
            old = op.options[key]
            if isinstance(old, bool):
                value: Any = not old
            elif isinstance(old, int):
                value = rnd.choice((0, -1, 1, 2, old + 1, -old, 2**31 - 1, -(2**31), 127, -128,
                                    1 << 20, 100))
            elif isinstance(old, float):
                value = rnd.choice((0.0, -1.0, float("nan"), float("inf"), 1e30))
            elif isinstance(old, str):
                value = rnd.choice((0, 1, 2, 3, 5, 6, 7, 100, 127))  # enum by number
            elif isinstance(old, list):
                value = [rnd.choice((0, -1, 2**31 - 1, 3)) for _ in range(rnd.randint(0, 4))]
            else:
                value = 0
            op.options[key] = value
            return f"subgraph {sg.index} operator {op.index} option {key}: {old!r} -> {value!r}"
    if kind == "data":
        cands = [t for t in sg.tensors if 0 < t.buffer < len(mb._buffers)
                 and mb._buffers[t.buffer].data]
        if cands:
            t = rnd.choice(cands)
            entry = mb._buffers[t.buffer]
            raw = bytearray(entry.data or b"")
            size = 8 if len(raw) % 8 == 0 and rnd.random() < 0.2 else \
                4 if len(raw) % 4 == 0 else 1
            count = max(1, min(len(raw) // size, rnd.choice((1, 1, 2, 16))))
            value = rnd.choice({1: (0x80, 0xFF, 0x7F, 0), 4: (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000,
                                                            0x7FC00000, 0x7F800000, 0, 1000, 1),
                                8: (2**64 - 1, 2**63, 2**63 - 1, 0x7FF8000000000000)}[size])
            for _ in range(count):
                _put(raw, size * rnd.randrange(len(raw) // size), size, value)
            entry.data = bytes(raw)
            return f"buffer {t.buffer} (tensor {t.index}): {count} {size}-byte words := {value:#x}"
    if kind == "order" and len(ops) >= 2:
        i, j = rnd.sample(range(len(ops)), 2)
        ops[i], ops[j] = ops[j], ops[i]
        return f"subgraph {sg.index} operators {i} and {j} swapped"
    if kind == "io":
        which = rnd.choice(("inputs", "outputs"))
        lst = getattr(sg, which)
        if lst:
            k = rnd.randrange(len(lst))
            lst[k] = rnd.choice((-1, nt, rnd.randrange(nt)))
            return f"subgraph {sg.index} {which}[{k}] := {lst[k]}"
    if kind == "variable":
        t = rnd.choice(sg.tensors)
        t.is_variable = not t.is_variable
        return f"subgraph {sg.index} tensor {t.index} is_variable := {t.is_variable}"
    if kind == "opcode" and ops:
        op = rnd.choice(ops)
        op.builtin_code = rnd.choice((0, 3, 4, 9, 22, 25, 32, 40, 61, 200))
        op.options_union = op.options_member = None
        op.options = {}
        if op.builtin_code == 32:
            op.custom_code = "fuzz"
        return f"subgraph {sg.index} operator {op.index} builtin code := {op.builtin_code}"
    if kind == "signature" and mb._signatures:
        sig = rnd.choice(mb._signatures)
        if sig.inputs and rnd.random() < 0.5:
            name, _ = sig.inputs[0]
            sig.inputs[0] = (name, rnd.choice((nt, 2**31, rnd.randrange(nt))))
        else:
            sig.subgraph = rnd.choice((1, 5, 2**31 - 1))
        return f"signature {sig.key!r} edited"
    # Nothing of that kind to edit here: the fallback that always applies.
    t = rnd.choice(sg.tensors)
    t.dtype = rnd.choice(_TYPES)
    return f"subgraph {sg.index} tensor {t.index} type := {t.dtype}"


def mutate_semantic(rnd: random.Random, base: Base) -> tuple[str, bytes, bytes]:
    """(detail, mutant, reference): the reference is the unedited rebuild."""
    reference = builder_from_model(base.model).build()
    for _ in range(8):
        mb = builder_from_model(base.model)
        detail = _edit(rnd, mb)
        try:
            return detail, mb.build(), reference
        except (UsageError, ValueError, OverflowError, struct.error, TypeError, KeyError):
            continue  # the writer cannot encode that value in its field: draw another edit
    return "no encodable edit", reference, reference


def make_mutant(seed: int, index: int, bases: Sequence[Base]) -> Mutant:
    rnd = random.Random(f"tflite_ref-fuzz:{seed}:{index}")
    base = bases[rnd.randrange(len(bases))]
    strategy = rnd.choices(list(STRATEGIES), weights=list(STRATEGIES.values()))[0]
    if strategy == "struct":
        detail, data = mutate_structure(rnd, base)
        return Mutant(index, base.id, strategy, detail, data, base.data)
    if strategy == "semantic":
        detail, data, reference = mutate_semantic(rnd, base)
        return Mutant(index, base.id, strategy, detail, data, reference)
    detail, data = mutate_bytes(rnd, strategy, base.data)
    return Mutant(index, base.id, strategy, detail, data, base.data)


# ==================================================================================================
# Running one command in a child process
# ==================================================================================================
def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _classify(exc: BaseException) -> dict[str, Any]:
    if any(isinstance(e, MemoryError) for e in _chain(exc)):
        return {"outcome": "memory", "type": type(exc).__name__, "message": str(exc)[:300]}
    if isinstance(exc, TFLiteRefError):
        loc = exc.locator
        return {"outcome": "error", "type": type(exc).__name__, "message": str(exc)[:300],
                "locator": str(loc) if loc is not None else None, "cve": exc.cve_class}
    tb = traceback.extract_tb(exc.__traceback__)
    frames = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in tb[-4:]]
    inner = [e for e in _chain(exc)][-1]
    return {"outcome": "uncaught", "type": type(exc).__name__, "message": str(exc)[:300],
            "cause": f"{type(inner).__name__}: {str(inner)[:200]}", "frames": frames}


def _run_load(path: str) -> dict[str, Any]:
    try:
        tflite_ref.load(path)
    except BaseException as exc:
        return _classify(exc)
    return {"outcome": "accepted"}


def _run_cli(command: str, path: str, out_path: str, err_path: str) -> dict[str, Any]:
    from tflite_ref.cli import main as cli

    refused: list[BaseException] = []
    original_fail = cli.fail

    def recording_fail(message: str, code: int = 2) -> Any:
        exc = sys.exc_info()[1]  # the TFLiteRefError main() is rendering
        if exc is not None:
            refused.append(exc)
        return original_fail(message, code)

    cli.fail = recording_fail  # type: ignore[assignment]
    argv = [command, path, "--json"]
    if command == "micro":
        argv.append("--no-search")  # the order search is an optimisation, not an input check
    try:
        try:
            rc = cli.main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 2
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
    except BaseException as exc:
        return _classify(exc)
    err = Path(err_path).read_text(errors="replace")
    if refused:
        rec = _classify(refused[0])
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if rc != 2 or len(lines) != 1 or "Traceback" in err:
            return {"outcome": "cli-output", "type": rec.get("type"), "exit": rc,
                    "message": f"exit {rc}, stderr has {len(lines)} lines: {err[:300]!r}"}
        return rec
    if rc in (0, 1):
        if command == "inspect" and rc == 0:
            try:
                with open(out_path, encoding="utf-8") as f:
                    json.load(f)
            except ValueError as exc:
                return {"outcome": "cli-output", "exit": rc,
                        "message": f"inspect --json printed invalid JSON: {exc}"}
        return {"outcome": "accepted", "exit": rc}
    return {"outcome": "cli-output", "exit": rc, "message": f"exit {rc}: {err[:300]!r}"}


def _allocate_too_much() -> dict[str, Any]:
    try:
        bytearray(4 * GiB)
    except BaseException as exc:  # noqa: BLE001
        return _classify(exc)
    return {"outcome": "accepted"}


# Commands that misbehave on purpose, to test the harness's own classification.
_SELF_TEST: dict[str, Callable[[], dict[str, Any]]] = {
    "_crash": lambda: os.kill(os.getpid(), signal.SIGSEGV) or {},  # type: ignore[func-returns-value]
    "_hang": lambda: time.sleep(3600) or {},  # type: ignore[func-returns-value]
    "_memory": _allocate_too_much,
    "_exit": lambda: os._exit(0),
}


def _default_warnings() -> None:
    """Warnings as a fresh ``tflite-ref`` process shows them (on stderr, once per place): the
    parent may record them instead (pytest does), and a warning the CLI prints is part of what
    the harness checks."""
    import warnings

    warnings.resetwarnings()  # also forgets which warnings were already shown
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                     ResourceWarning):
        warnings.filterwarnings("ignore", category=category)

    def show(msg: warnings.WarningMessage) -> None:
        sys.stderr.write(warnings.formatwarning(msg.message, msg.category, msg.filename,
                                                msg.lineno, msg.line))

    warnings._showwarnmsg_impl = show  # type: ignore[attr-defined]
    warnings.showwarning = warnings._showwarning_orig  # type: ignore[attr-defined]


def _send(fd: int, obj: dict[str, Any]) -> None:
    view = memoryview(json.dumps(obj).encode() + b"\n")
    while view:
        view = view[os.write(fd, view):]


def _child(commands: Sequence[str], path: str, workdir: str, write_fd: int,
           memory: int | None) -> None:
    """Runs in the forked child: for each command, a ``{"start": command}`` line, then its
    record, on ``write_fd``.  Never returns."""
    status = 0
    try:
        limit_blas_threads()  # before the limit: dlopen and the pool's shutdown need room
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        out_path, err_path = os.path.join(workdir, "stdout"), os.path.join(workdir, "stderr")
        for command in commands:
            for fd, p in ((1, out_path), (2, err_path)):
                f = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(f, fd)
                os.close(f)
            # New file objects on fds 1 and 2: the inherited sys.stdout/sys.stderr may be
            # someone else's (pytest's capture writes to a file of its own).
            sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
            _default_warnings()
            _send(write_fd, {"start": command})
            start = time.perf_counter()
            if command == "load":
                rec = _run_load(path)
            elif command in _SELF_TEST:
                rec = _SELF_TEST[command]()
            else:
                rec = _run_cli(command, path, out_path, err_path)
            rec["seconds"] = time.perf_counter() - start
            rec["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            _send(write_fd, rec)
    except BaseException:  # noqa: BLE001 - report by dying: the parent records a crash
        status = 3
    finally:
        os._exit(status)


def run_commands(commands: Sequence[str], path: str, workdir: str, timeout: float,
                 memory: int | None) -> list[dict[str, Any]]:
    """Run ``commands`` on ``path`` in forked children (one child for all of them, a new one
    after a command that crashed or timed out) and classify how each ended.  Each command has
    ``timeout`` seconds; the child's address space is limited to ``memory`` bytes."""
    results: list[dict[str, Any]] = []
    todo = list(commands)
    while todo:
        got = _run_in_child(todo, path, workdir, timeout, memory)  # at least one record
        results.extend(got)
        todo = todo[len(got):]
    return results


def _run_in_child(commands: list[str], path: str, workdir: str, timeout: float,
                  memory: int | None) -> list[dict[str, Any]]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(r)
        _child(commands, path, workdir, w, memory)
    os.close(w)
    out: list[dict[str, Any]] = []
    pending = b""
    current: str | None = None
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    timed_out = eof = False
    while not eof:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([r], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(r, 1 << 16)
        eof = not chunk
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            msg = json.loads(line)
            if "start" in msg:
                current, started = msg["start"], time.perf_counter()
                deadline = time.monotonic() + timeout
            else:
                msg.update(command=current, wall=time.perf_counter() - started)
                out.append(msg)
                current = None
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os.close(r)
    _, status, usage = os.wait4(pid, 0)
    if len(out) < len(commands):
        # The command that was running (or, if none had started, the next one) did not finish.
        command = current or commands[len(out)]
        if timed_out:
            rec: dict[str, Any] = {"outcome": "timeout",
                                   "message": f"no result after {timeout:g} s"}
        elif os.WIFSIGNALED(status):
            rec = {"outcome": "crash",
                   "message": f"killed by {signal.Signals(os.WTERMSIG(status)).name}"}
        else:
            rec = {"outcome": "crash",
                   "message": f"exited with status {os.WEXITSTATUS(status)} without a result"}
        rec.update(command=command, wall=time.perf_counter() - started,
                   rss=usage.ru_maxrss * 1024)
        out.append(rec)
    return out


def run_command(command: str, path: str, workdir: str, timeout: float,
                memory: int | None) -> dict[str, Any]:
    """One command in a child of its own (minimization, regression tests)."""
    return _run_in_child([command], path, workdir, timeout, memory)[0]


def failure_key(rec: dict[str, Any]) -> tuple[str, str, str]:
    """What must stay the same while minimizing: command, outcome, exception type."""
    return rec["command"], rec["outcome"], rec.get("type") or ""


# ==================================================================================================
# Workers
# ==================================================================================================
@dataclass
class Config:
    seed: int = 0
    corpus: str = str(DEFAULT_CORPUS)
    max_bytes: int | None = None
    names: tuple[str, ...] = ()
    commands: tuple[str, ...] = COMMANDS
    timeout: float = 10.0
    memory: int | None = 2 * GiB
    minimize: bool = True


_STATE: dict[str, Any] = {}


def _init_worker(cfg: Config) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C
    _STATE["cfg"] = cfg
    _STATE["bases"] = corpus(Path(cfg.corpus), cfg.max_bytes, cfg.names)
    _STATE["tmp"] = tempfile.mkdtemp(prefix="tflite_ref-fuzz-")
    warm_up(min(_STATE["bases"], key=lambda b: len(b.data)).path, cfg.commands)


def limit_blas_threads() -> bool:
    """One OpenBLAS thread from now on, even if NumPy was imported before the environment
    variable was set (under pytest).  A child under ``RLIMIT_AS`` that lets OpenBLAS start its
    thread pool can fail to map the threads' stacks and buffers and die in C, which would be
    counted as a crash of tflite_ref.  Returns whether an OpenBLAS was found."""
    import ctypes

    with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
        libs = sorted({ln.split()[-1] for ln in f if "openblas" in ln.lower() and ".so" in ln})
    found = False
    for lib in libs:
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads"):
            fn = getattr(handle, name, None)
            if fn is not None:
                fn(1)
                found = True
                break
    return found


def warm_up(path: Path, commands: Sequence[str]) -> None:
    """Run every command once in this process, so that each fork starts with every lazy import
    done, then move all objects out of the collector's reach: a collection in a child would
    touch (and so copy) every page of the parent's heap."""
    import gc

    from tflite_ref.cli import main as cli

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        for command in commands:
            with contextlib.suppress(BaseException):
                if command == "load":
                    tflite_ref.load(path)
                else:
                    cli.main([command, str(path), "--json"])
    gc.collect()
    gc.freeze()


def available_commands(commands: Sequence[str]) -> tuple[str, ...]:
    micro = (ROOT / "tflite_ref" / "cli" / "micro_cmd.py").exists()
    return tuple(c for c in commands if c != "micro" or micro)


def run_case(index: int) -> dict[str, Any]:
    cfg: Config = _STATE["cfg"]
    bases: list[Base] = _STATE["bases"]
    workdir: str = _STATE["tmp"]
    try:
        m = make_mutant(cfg.seed, index, bases)
    except Exception as exc:
        return {"index": index, "harness_error": f"{type(exc).__name__}: {exc}"}
    path = os.path.join(workdir, "case.tflite")
    with open(path, "wb") as f:
        f.write(m.data)
    results = run_commands(cfg.commands, path, workdir, cfg.timeout, cfg.memory)
    case: dict[str, Any] = {"index": index, "base": m.base, "strategy": m.strategy,
                            "detail": m.detail, "bytes": len(m.data), "results": results}
    failed = [r for r in results if r["outcome"] in FAILURES]
    if failed and cfg.minimize:
        case["minimized"] = minimize(m, failed[0], path, workdir, cfg)
    return case


# ==================================================================================================
# Minimization
# ==================================================================================================
def _diff(reference: bytes, data: bytes) -> list[int]:
    n = min(len(reference), len(data))
    a = np.frombuffer(reference[:n], np.uint8)
    b = np.frombuffer(data[:n], np.uint8)
    return np.flatnonzero(a != b).tolist()


def _apply(reference: bytes, data: bytes, keep: Sequence[int]) -> bytes:
    out = bytearray(reference[:len(data)])
    if len(data) > len(reference):
        out += data[len(reference):]
    for pos in keep:
        out[pos] = data[pos]
    return bytes(out)


def minimize(m: Mutant, failure: dict[str, Any], path: str, workdir: str, cfg: Config,
             budget: int = 48) -> dict[str, Any]:
    """Revert differing bytes to the reference while the failure (command, outcome, type)
    stays; ddmin-style halving over at most ``budget`` runs."""
    key = failure_key(failure)
    positions = _diff(m.reference, m.data)
    runs = 0

    def fails(keep: Sequence[int]) -> bool:
        nonlocal runs
        runs += 1
        with open(path, "wb") as f:
            f.write(_apply(m.reference, m.data, keep))
        rec = run_command(key[0], path, workdir, cfg.timeout, cfg.memory)
        return failure_key(rec) == key

    keep = positions
    chunk = max(len(keep) // 2, 1)
    while keep and runs < budget:
        reduced = False
        for start in range(0, len(keep), chunk):
            trial = keep[:start] + keep[start + chunk:]
            if runs >= budget:
                break
            if fails(trial):
                keep, reduced = trial, True
                break
        if not reduced:
            if chunk == 1:
                break
            chunk = max(chunk // 2, 1)
    data = _apply(m.reference, m.data, keep)
    return {"patches": [[p, data[p]] for p in keep], "length": len(data),
            "reference_length": len(m.reference), "runs": runs, "key": list(key),
            "data_sha256": hashlib.sha256(data).hexdigest()}


def minimized_bytes(m: Mutant, info: dict[str, Any]) -> bytes:
    out = bytearray(m.reference[:info["length"]])
    if info["length"] > len(out):
        out += m.data[len(out):info["length"]]
    for pos, value in info["patches"]:
        out[pos] = value
    return bytes(out)


# ==================================================================================================
# The campaign
# ==================================================================================================
@dataclass
class Summary:
    config: dict[str, Any]
    mutants: int
    models: int
    commands: tuple[str, ...]
    strategies: dict[str, int]
    outcomes: dict[str, dict[str, int]]  # outcome -> command -> count
    errors: int
    errors_with_locator: int
    max_rss: int
    max_rss_case: str
    seconds_mean: float
    seconds_p99: float
    seconds_max: float
    seconds_max_case: str
    wall_seconds: float
    failures: list[dict[str, Any]] = field(default_factory=list)
    without_locator: list[dict[str, Any]] = field(default_factory=list)
    harness_errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failure_count(self) -> int:
        return sum(sum(by_cmd.values()) for name, by_cmd in self.outcomes.items()
                   if name in FAILURES)

    @property
    def locator_share(self) -> float:
        return self.errors_with_locator / self.errors if self.errors else 1.0


def campaign(count: int, cfg: Config, workers: int = 2, start: int = 0,
             progress: Callable[[int, int], None] | None = None) -> Summary:
    cfg = dataclasses.replace(cfg, commands=available_commands(cfg.commands))
    bases = corpus(Path(cfg.corpus), cfg.max_bytes, cfg.names)
    t0 = time.perf_counter()
    cases: list[dict[str, Any]] = []
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(min(workers, 2), initializer=_init_worker, initargs=(cfg,)) as pool:
        for case in pool.imap_unordered(run_case, range(start, start + count), chunksize=4):
            cases.append(case)
            if progress is not None:
                progress(len(cases), count)
    cases.sort(key=lambda c: c["index"])
    return summarize(cases, cfg, len(bases), time.perf_counter() - t0)


def summarize(cases: list[dict[str, Any]], cfg: Config, n_models: int,
              wall: float) -> Summary:
    outcomes: dict[str, Counter[str]] = {}
    strategies: Counter[str] = Counter()
    errors = with_loc = 0
    failures, without, harness = [], [], []
    max_rss, max_rss_case = 0, ""
    per_case: list[tuple[float, str]] = []
    for case in cases:
        if "harness_error" in case:
            harness.append(case)
            continue
        strategies[case["strategy"]] += 1
        total = 0.0
        for rec in case["results"]:
            name = rec["outcome"] if rec["outcome"] != "error" else f"error {rec['type']}"
            outcomes.setdefault(name, Counter())[rec["command"]] += 1
            total += rec["wall"]
            if rec["rss"] > max_rss:
                max_rss, max_rss_case = rec["rss"], f"mutant {case['index']} {rec['command']}"
            if rec["outcome"] == "error":
                errors += 1
                if rec.get("locator"):
                    with_loc += 1
                else:
                    without.append(_brief(case, rec))
            if rec["outcome"] in FAILURES:
                failures.append(_brief(case, rec) | {"minimized": case.get("minimized")})
        per_case.append((total, f"mutant {case['index']} ({case['base']}, {case['strategy']})"))
    secs = sorted(t for t, _ in per_case) or [0.0]
    worst = max(per_case, default=(0.0, ""))
    return Summary(
        config={k: v for k, v in dataclasses.asdict(cfg).items()},
        mutants=len(cases), models=n_models, commands=tuple(cfg.commands),
        strategies=dict(strategies),
        outcomes={k: dict(v) for k, v in sorted(outcomes.items(), key=_outcome_order)},
        errors=errors, errors_with_locator=with_loc, max_rss=max_rss,
        max_rss_case=max_rss_case, seconds_mean=statistics.fmean(secs),
        seconds_p99=secs[min(len(secs) - 1, math.ceil(0.99 * len(secs)) - 1)],
        seconds_max=worst[0], seconds_max_case=worst[1], wall_seconds=wall,
        failures=failures, without_locator=without, harness_errors=harness)


def _outcome_order(item: tuple[str, Any]) -> tuple[int, str]:
    name = item[0]
    rank = 0 if name == "accepted" else 1 if name.startswith("error") else 2
    return rank, name


def _brief(case: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
    return {"mutant": case["index"], "base": case["base"], "strategy": case["strategy"],
            "detail": case["detail"], "command": rec["command"], "outcome": rec["outcome"],
            "type": rec.get("type"), "message": rec.get("message"),
            "cause": rec.get("cause"), "frames": rec.get("frames")}


def render(s: Summary, out: io.TextIOBase | Any = sys.stdout) -> None:
    cfg = s.config
    mem = "off" if cfg["memory"] is None else f"{cfg['memory'] / GiB:g} GiB"
    print(f"tflite_ref fuzz: {s.mutants} mutants of {s.models} models, seed {cfg['seed']}, "
          f"timeout {cfg['timeout']:g} s, memory limit {mem}", file=out)
    print("strategies: " + ", ".join(f"{k} {v}" for k, v in sorted(s.strategies.items())),
          file=out)
    cmds = list(s.commands)
    width = max([len(k) for k in s.outcomes] + [len("cli-output"), 24])
    print(f"{'outcome':<{width}} " + " ".join(f"{c:>8}" for c in cmds) + f" {'all':>8}",
          file=out)
    rows = dict(s.outcomes)
    for name in FAILURES:
        rows.setdefault(name, {})
    for name, by_cmd in sorted(rows.items(), key=_outcome_order):
        total = sum(by_cmd.values())
        print(f"{name:<{width}} " + " ".join(f"{by_cmd.get(c, 0):>8}" for c in cmds)
              + f" {total:>8}", file=out)
    share = 100 * s.locator_share
    # Never round 99.97% up to 100%: the criterion is "every error".
    text = "100%" if s.errors_with_locator == s.errors else f"{math.floor(share * 100) / 100:.2f}%"
    print(f"errors with a locator: {text} ({s.errors_with_locator} of {s.errors})", file=out)
    print(f"max RSS of a child: {s.max_rss / 2**20:.0f} MiB ({s.max_rss_case}); "
          f"time per mutant (all commands): mean {s.seconds_mean:.3f} s, "
          f"p99 {s.seconds_p99:.3f} s, max {s.seconds_max:.2f} s ({s.seconds_max_case})",
          file=out)
    print(f"wall time {s.wall_seconds:.0f} s", file=out)
    if s.harness_errors:
        print(f"harness errors: {len(s.harness_errors)} (first: "
              f"{s.harness_errors[0]['harness_error']})", file=out)
    for title, items in (("failures", s.failures), ("errors without a locator",
                                                     s.without_locator)):
        if not items:
            continue
        print(f"\n{title} ({len(items)}):", file=out)
        for f in items[:40]:
            print(f"  mutant {f['mutant']} {f['base']} [{f['strategy']}: {f['detail'][:90]}]",
                  file=out)
            print(f"    {f['command']}: {f['outcome']} {f['type'] or ''}: "
                  f"{(f['message'] or '')[:200]}", file=out)
            if f.get("cause") and f["cause"] != f"{f['type']}: {f['message']}"[:len(f["cause"])]:
                print(f"    cause: {f['cause'][:200]}", file=out)
            if f.get("frames"):
                print(f"    at: {' <- '.join(reversed(f['frames']))}", file=out)


def save_crashers(s: Summary, cfg: Config, directory: Path) -> list[Path]:
    """Write each minimized failure as ``<key>.tflite.gz`` plus a JSON description."""
    directory.mkdir(parents=True, exist_ok=True)
    bases = {b.id: b for b in corpus(Path(cfg.corpus), cfg.max_bytes, cfg.names)}
    written = []
    seen: set[tuple[str, ...]] = set()
    for f in s.failures:
        sig = (f["command"], f["outcome"], f["type"] or "", f["base"])
        if sig in seen:
            continue
        seen.add(sig)
        m = make_mutant(cfg.seed, f["mutant"], list(bases.values()))
        info = f.get("minimized")
        data = minimized_bytes(m, info) if info else m.data
        stem = f"{f['command']}-{f['outcome']}-{(f['type'] or 'none').lower()}-" \
               f"{f['base'].replace('/', '_')}-{cfg.seed}-{f['mutant']}"
        path = directory / f"{stem}.tflite.gz"
        path.write_bytes(gzip.compress(data, mtime=0))
        (directory / f"{stem}.json").write_text(json.dumps(f, indent=2) + "\n")
        written.append(path)
    return written


# ==================================================================================================
# CLI
# ==================================================================================================
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=500, help="mutants to run (default 500)")
    p.add_argument("--start", type=int, default=0, help="index of the first mutant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    p.add_argument("--models", nargs="*", default=(), help="substrings of model ids to use")
    p.add_argument("--max-bytes", type=int, default=None, help="skip larger models")
    p.add_argument("--commands", default=",".join(COMMANDS))
    p.add_argument("--workers", type=int, default=2, help="worker processes (at most 2)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per command")
    p.add_argument("--memory", type=float, default=2.0, help="GiB of address space per child")
    p.add_argument("--no-minimize", action="store_true")
    p.add_argument("--json", metavar="FILE", help="also write the summary as JSON ('-': stdout)")
    p.add_argument("--save-crashers", metavar="DIR", help="write minimized failures here")
    p.add_argument("--reproduce", metavar="SEED:INDEX", help="write one mutant and exit")
    p.add_argument("-o", "--output", default="mutant.tflite", help="file for --reproduce")
    p.add_argument("--progress", action="store_true", help="progress on stderr")
    args = p.parse_args(argv)
    cfg = Config(seed=args.seed, corpus=args.corpus, max_bytes=args.max_bytes,
                 names=tuple(args.models), commands=tuple(args.commands.split(",")),
                 timeout=args.timeout, memory=None if args.memory <= 0 else int(args.memory * GiB),
                 minimize=not args.no_minimize)
    if args.reproduce:
        seed, _, index = args.reproduce.partition(":")
        m = make_mutant(int(seed), int(index), corpus(Path(cfg.corpus), cfg.max_bytes, cfg.names))
        Path(args.output).write_bytes(m.data)
        print(f"{args.output}: mutant {index} of seed {seed}: {m.base} [{m.strategy}: {m.detail}]")
        return 0

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"{done}/{total}", file=sys.stderr, flush=True)

    s = campaign(args.count, cfg, args.workers, args.start, progress if args.progress else None)
    if args.json != "-":
        render(s)
    if args.json:
        text = json.dumps(dataclasses.asdict(s) | {"failure_count": s.failure_count,
                                                   "locator_share": s.locator_share}, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    if args.save_crashers and s.failures:
        for path in save_crashers(s, cfg, Path(args.save_crashers)):
            print(f"saved {path}", file=sys.stderr)
    return 1 if s.failure_count else 0


if __name__ == "__main__":
    sys.exit(main())
