"""Builders of hostile ``.tflite`` files, one family per bad-input class of
``shared/docs/hostile-models.md``, shared by the class tests and the CLI tests.

Structural damage edits the bytes of a valid file at a position found by the verifier's own walk
(:func:`~tflite_ref.model.verify.flatbuffer_sites`), so a test names the schema path it breaks
instead of a magic offset; semantic damage is written with our writer, which checks nothing
semantic on purpose.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

import numpy as np

from tflite_ref.model.verify import Site, flatbuffer_sites
from tflite_ref.model.writer import ModelBuilder, SubgraphBuilder


def add_model(hook: Callable[[ModelBuilder, SubgraphBuilder], None] | None = None) -> bytes:
    """A valid float32 ``y = x + c`` model; ``hook`` damages it before building."""
    mb = ModelBuilder()
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 4], "FLOAT32")
    c = sg.tensor("c", [1, 4], "FLOAT32", data=np.arange(4, dtype=np.float32).reshape(1, 4))
    y = sg.tensor("y", [1, 4], "FLOAT32")
    sg.operator("ADD", [x, c], [y])
    sg.inputs, sg.outputs = [x], [y]
    if hook is not None:
        hook(mb, sg)
    return mb.build()


def one_op(op: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]],
           options: dict[str, Any] | None = None, graph_inputs: list[int] | None = None,
           **op_kwargs: Any) -> bytes:
    """A model of one operator.  Each tensor is a dict of :meth:`SubgraphBuilder.tensor`
    arguments; inputs without ``data`` become graph inputs (or those of ``graph_inputs``)."""
    mb = ModelBuilder()
    sg = mb.subgraph("main")
    ins = [sg.tensor(**spec) for spec in inputs]
    outs = [sg.tensor(**spec) for spec in outputs]
    sg.operator(op, ins, outs, options, **op_kwargs)
    if graph_inputs is None:
        sg.inputs = [t for t, spec in zip(ins, inputs) if spec.get("data") is None]
    else:
        sg.inputs = [ins[i] for i in graph_inputs]
    sg.outputs = outs
    return mb.build()


def site(data: bytes, kind: str, path: str) -> Site:
    """The structural word of ``kind`` at schema ``path`` (exact match)."""
    for s in flatbuffer_sites(data):
        if s.kind == kind and s.path == path:
            return s
    raise LookupError(f"no {kind} at {path}")


def poke(data: bytes, pos: int, fmt: str, value: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into("<" + fmt, buf, pos, value)
    return bytes(buf)


def target(data: bytes, s: Site) -> int:
    """Where the uoffset at site ``s`` points."""
    return s.pos + struct.unpack_from("<I", data, s.pos)[0]


def flexbuffer_bomb(levels: int) -> bytes:
    """A FlexBuffer of ``levels`` nested 2-element vectors whose elements both point at the next
    level: about 8 bytes per level, 2^levels values for a naive decoder."""
    # Built by hand, back to front: level 0 is a vector [null, null]; level k is a vector whose
    # two elements are offsets to level k-1.  Byte width 1 throughout (offsets < 256 would limit
    # the depth, so use width 2).
    w = 2
    out = bytearray()
    # level 0: size, two inline nulls, two packed types (NULL, width 1)
    out += (2).to_bytes(w, "little")
    start = len(out)
    out += bytes(2 * w) + bytes([0, 0])
    prev = start
    vec_type = (10 << 2) | 1  # VECTOR, child byte width 2
    for _ in range(levels):
        out += (2).to_bytes(w, "little")
        start = len(out)
        for k in range(2):
            pos = start + k * w
            out += (pos - prev).to_bytes(w, "little")
        out += bytes([vec_type, vec_type])
        prev = start
    # root: offset to the last vector, its packed type, root byte width
    pos = len(out)
    out += (pos - prev).to_bytes(w, "little") + bytes([vec_type, w])
    return bytes(out)


def invoke_isolated(data: bytes, inputs: dict[int, Any], memory: int = 2 << 30,
                    timeout: float = 60.0) -> dict[str, Any]:
    """Load, allocate, set ``inputs`` (by position among the graph inputs) and invoke in a
    forked child limited to ``memory`` bytes of address space; returns how it ended:
    ``{"outcome": "ok"}``, ``{"outcome": "error", "type", "message", "locator"}`` for an
    exception (``locator`` is the :class:`Locator` as a dict, or None) or ``{"outcome": "crash"}``.

    Kernels that would allocate what a hostile model asks for must not do it in the test process.
    """
    import json
    import os
    import resource
    import select
    import signal

    import tflite_ref

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            _limit_blas_threads()
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            rec: dict[str, Any] = {"outcome": "ok"}
            try:
                it = tflite_ref.Interpreter(model_content=data)
                it.allocate_tensors()
                details = it.get_input_details()
                for k, value in inputs.items():
                    it.set_tensor(details[k]["index"], value)
                it.invoke()
            except BaseException as exc:  # noqa: BLE001 - the outcome is what is tested
                loc = getattr(exc, "locator", None)
                rec = {"outcome": "error", "type": type(exc).__name__, "message": str(exc)[:500],
                       "locator": loc.as_dict() if loc is not None else None}
            os.write(w, json.dumps(rec).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        ready, _, _ = select.select([r], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            break
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    if not chunks:
        return {"outcome": "crash"}
    result: dict[str, Any] = json.loads(b"".join(chunks))
    return result


def _limit_blas_threads() -> None:
    """See ``benchmarks/fuzz.py`` ``limit_blas_threads``: children under RLIMIT_AS must not
    start OpenBLAS's thread pool."""
    import sys
    from pathlib import Path

    bench = str(Path(__file__).resolve().parents[2] / "benchmarks")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    import fuzz

    fuzz.limit_blas_threads()
