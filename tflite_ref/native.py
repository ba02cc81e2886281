"""Run the native runtimes (LiteRT and TFLite Micro) in a child process and bring back tensors.

A native runtime can crash, abort, hang or exhaust memory on a model (LiteRT corrupts its heap on
an 8-bit-state SVDF; TFLite Micro aborts in some int8 SOFTMAX preparations). Each run therefore
happens in a child process with a timeout and an address-space limit; when the child dies, the
parent gets a :class:`NativeFailure` that says how (signal, exception, timeout, memory) and in
which stage (load, allocate, invoke of sample *k*). That is a finding about the runtime, never a
crash of tflite_ref.

This is the only module that knows about ``ai_edge_litert`` and ``tflite_micro``, and the parent
never imports them: it asks :func:`importlib.util.find_spec` whether they are installed and the
child imports them. The child is this very file, loaded by path with only the standard library
and NumPy (importing the ``tflite_ref`` package costs the child most of a second for nothing).

Runtimes:

- ``litert-ref``: LiteRT with ``OpResolverType.BUILTIN_REF`` (reference kernels, no delegate);
  the runtime ``emulate="tflite"`` reproduces.
- ``litert``: LiteRT's default, ``OpResolverType.AUTO`` (optimized kernels + XNNPACK).
- ``tflm``: the TFLite Micro Python interpreter; the runtime ``emulate="tflm"`` reproduces.

A child runs one interpreter, either plainly (graph outputs only) or with every tensor kept
(``preserve=True``: LiteRT's ``experimental_preserve_all_tensors=True``, TFLite Micro's
``InterpreterConfig.kPreserveAllTensors``), which exposes the intermediates. ``check`` starts
both and treats the plain run's outputs as authoritative: the flag has been reported to change
outputs in some LiteRT builds (tensorflow#79355, LiteRT#413), with XNNPACK it changes how the
graph is partitioned, and it changes the heap layout (LiteRT's SVDF overrun on
``keyword_scrambled_8bit`` crashes the plain interpreter but not always a preserve-all one).

Protocol (private to this module): the parent writes ``request.json`` and ``inputs.npz`` into a
fresh directory; the child appends the stage it enters to ``stage``, writes ``meta.json`` after
allocation and ``sample_<k>.npz`` (atomically, by rename) after each sample, or ``error.json``
when the runtime raised.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TIMEOUT = 300.0  # seconds for the whole child, all samples
DEFAULT_MEMORY_LIMIT = 4 << 30  # bytes of address space; LiteRT + XNNPACK need well under 1 GiB
DEFAULT_TFLM_ARENA = 256 << 20  # TFLite Micro's default (10x the model) is too small for many

_POLL = 0.01  # seconds between looks at the child
# What running out of address space looks like from the outside (Python, the loader, C++).
_OOM_MARKS = ("failed to map segment", "Cannot allocate memory", "std::bad_alloc")


@dataclass(frozen=True, slots=True)
class RuntimeSpec:
    """A native runtime that ``check`` can compare against."""

    name: str  # "litert-ref", "litert", "tflm"
    title: str  # what it is, for reports
    module: str  # import name
    package: str  # pip name


RUNTIMES: Mapping[str, RuntimeSpec] = {
    "litert-ref": RuntimeSpec("litert-ref", "LiteRT reference kernels (BUILTIN_REF)",
                              "ai_edge_litert", "ai-edge-litert"),
    "litert": RuntimeSpec("litert", "LiteRT default (AUTO: optimized kernels + XNNPACK)",
                          "ai_edge_litert", "ai-edge-litert"),
    "tflm": RuntimeSpec("tflm", "TFLite Micro (Python interpreter)", "tflite_micro",
                        "tflite-micro"),
}


@dataclass(frozen=True, slots=True)
class NativeFailure:
    """How a native runtime failed on the model: a finding, reported rather than raised.

    ``kind`` is ``crash`` (killed by a signal), ``refused`` (raised while loading or allocating),
    ``error`` (raised while running), ``timeout`` or ``out-of-memory``.
    """

    runtime: str
    kind: str
    stage: str  # "load", "allocate", "invoke sample 0", ...
    sample: int | None  # the sample being run, when the failure happened during one
    message: str
    signal: str | None = None  # "SIGSEGV" for a crash
    exit_code: int | None = None
    stderr_tail: str = ""


@dataclass(frozen=True, slots=True)
class NativeMeta:
    """What the child learnt at allocation time."""

    exposes_all: bool  # the run keeps (and returns) intermediates
    delegated: frozenset[int] = frozenset()  # tensors written by an XNNPACK (DELEGATE) node
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NativeSample:
    """One sample's results: the graph ``outputs`` and, from a preserve-all run, the fetched
    ``tensors`` by tensor index of subgraph 0."""

    outputs: tuple[np.ndarray, ...]
    tensors: Mapping[int, np.ndarray]


def runtime_version(name: str) -> str | None:
    """The installed version of the runtime's pip package, without importing it."""
    from importlib import metadata

    try:
        return metadata.version(RUNTIMES[name].package)
    except metadata.PackageNotFoundError:
        return None


def require_runtime(name: str) -> RuntimeSpec:
    """The runtime's spec, or a :class:`~tflite_ref.errors.UsageError` saying what to install.

    The error is imported here, not at the top: the child loads this file without the package.
    """
    import importlib.util

    from tflite_ref.errors import UsageError

    spec = RUNTIMES.get(name)
    if spec is None:
        raise UsageError(f"unknown runtime {name!r}; choose from {', '.join(RUNTIMES)}")
    try:
        found = importlib.util.find_spec(spec.module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise UsageError(f"runtime {name!r} needs the {spec.package!r} package, which is not "
                         f"installed: pip install {spec.package}")
    return spec


class NativeRun:
    """A native runtime working through samples in a child process.

    Start it with :func:`start`; ask for each sample in order with :meth:`sample` (it waits for the
    child); :attr:`failure` says how the child failed, if it did. Always :meth:`close` it (or use it
    as a context manager): that kills a child still running and removes its directory.
    """

    def __init__(self, runtime: str, workdir: Path, proc: subprocess.Popen[bytes],
                 samples: int, timeout: float, memory_limit: int | None = None) -> None:
        self.runtime = runtime
        self.memory_limit = memory_limit
        self._dir = workdir
        self._proc = proc
        self._samples = samples
        self._timeout = timeout
        self._waited = 0.0  # time spent waiting for this child: what the timeout bounds
        self.failure: NativeFailure | None = None
        self._meta: NativeMeta | None = None

    def __enter__(self) -> NativeRun:  # noqa: PYI034 - a final class
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- waiting --------------------------------------------------------------------------------
    def _wait_for(self, path: Path) -> bool:
        """Wait until ``path`` exists (True) or the child has failed (False; :attr:`failure`).

        The timeout bounds the time spent waiting here, summed over calls: a child that is ahead
        and waits for the parent (see :meth:`_Child.save_sample`) does not use it up.
        """
        began = time.monotonic()
        try:
            while True:
                if path.exists():
                    return True
                if self.failure is not None:
                    return False
                code = self._proc.poll()
                if code is not None:
                    if path.exists():  # written just before a clean exit
                        return True
                    self.failure = self._failure_from_exit(code)
                    return False
                if self._waited + time.monotonic() - began > self._timeout:
                    self._kill()
                    stage = self._stage()
                    self.failure = NativeFailure(
                        self.runtime, "timeout", stage, _sample_of(stage),
                        f"{self.runtime} kept tflite-ref waiting more than {self._timeout:g} s "
                        f"({stage}); it was killed", stderr_tail=self._stderr_tail())
                    return False
                time.sleep(_POLL)
        finally:
            self._waited += time.monotonic() - began

    def meta(self) -> NativeMeta | None:
        """What the child reported after allocating, or None when it failed before."""
        if self._meta is None and self._wait_for(self._dir / "meta.json"):
            raw = json.loads((self._dir / "meta.json").read_text())
            self._meta = NativeMeta(bool(raw["exposes_all"]), frozenset(raw["delegated"]),
                                    tuple(raw["notes"]))
        return self._meta

    def sample(self, k: int) -> NativeSample | None:
        """Sample ``k``'s tensors, or None when the child failed before finishing it."""
        if not 0 <= k < self._samples:
            raise IndexError(k)
        path = self._dir / f"sample_{k}.npz"
        if not self._wait_for(path):
            return None
        with np.load(path, allow_pickle=False) as f:
            outputs = []
            tensors: dict[int, np.ndarray] = {}
            for key in f.files:
                if key.startswith("t"):
                    tensors[int(key[1:])] = f[key]
            j = 0
            while f"o{j}" in f.files:
                outputs.append(f[f"o{j}"])
                j += 1
        path.unlink()  # the parent reads each sample once; preserve-all samples can be large
        return NativeSample(tuple(outputs), tensors)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- diagnosis ------------------------------------------------------------------------------
    def _kill(self) -> None:
        try:  # the child leads its own process group (start_new_session): take its threads too
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._proc.wait()

    def _stage(self) -> str:
        try:
            lines = (self._dir / "stage").read_text().splitlines()
        except OSError:
            return "start"
        return lines[-1] if lines else "start"

    def _stderr_tail(self, lines: int = 6) -> str:
        try:
            text = (self._dir / "stderr").read_text(errors="replace")
        except OSError:
            return ""
        # LiteRT's banner lines say nothing about the failure
        kept = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("INFO: ")]
        return "\n".join(kept[-lines:])

    def _limit_note(self) -> str:
        if not self.memory_limit:
            return ""
        return f" (address-space limit {self.memory_limit >> 20} MiB)"

    def _failure_from_exit(self, code: int) -> NativeFailure:
        stage = self._stage()
        sample = _sample_of(stage)
        tail = self._stderr_tail()
        err_path = self._dir / "error.json"
        if err_path.exists():
            err = json.loads(err_path.read_text())
            raised = f"{err['type']}: {err['message']}" if err["message"] else err["type"]
            if err["type"] == "MemoryError" or any(m in err["message"] for m in _OOM_MARKS):
                kind, what = "out-of-memory", f"ran out of memory{self._limit_note()}"
            elif err["stage"].split()[0] in ("start", "load", "allocate"):
                kind, what = "refused", "refused the model"
            else:
                kind, what = "error", "failed"
            return NativeFailure(self.runtime, kind, err["stage"], _sample_of(err["stage"]),
                                 _one_line(f"{self.runtime} {what} during {err['stage']}: "
                                           f"{raised}"), exit_code=code, stderr_tail=tail)
        if code < 0:
            name = _signal_name(-code)
            oom = any(m in tail for m in _OOM_MARKS)
            what = (f"ran out of memory{self._limit_note()} and died of {name}" if oom
                    else f"was killed by {name}")
            return NativeFailure(self.runtime, "out-of-memory" if oom else "crash", stage, sample,
                                 f"{self.runtime} {what} during {stage}", signal=name,
                                 exit_code=code, stderr_tail=tail)
        last = tail.splitlines()[-1] if tail else "no message"
        return NativeFailure(self.runtime, "crash", stage, sample,
                             f"{self.runtime} exited with code {code} during {stage}: "
                             f"{_one_line(last)}", exit_code=code, stderr_tail=tail)


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _sample_of(stage: str) -> int | None:
    parts = stage.split()
    if len(parts) >= 3 and parts[-2] == "sample" and parts[-1].isdigit():
        return int(parts[-1])
    return None


def start(runtime: str, model: bytes | str | os.PathLike[str],
          samples: Sequence[Sequence[np.ndarray]], *, input_indices: Sequence[int],
          num_outputs: int, preserve: bool = False, fetch: Sequence[int] = (),
          timeout: float = DEFAULT_TIMEOUT, memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
          tflm_arena: int = DEFAULT_TFLM_ARENA) -> NativeRun:
    """Start ``runtime`` on ``samples`` (each a list of input arrays in the order of subgraph 0's
    inputs, whose tensor indices are ``input_indices``) in a child process.

    ``preserve``: keep every tensor and bring back those listed in ``fetch`` (tensor indices of
    subgraph 0) besides the outputs. Raises :class:`~tflite_ref.errors.UsageError` when the
    runtime is not installed; everything the runtime itself does wrong comes back as
    :attr:`NativeRun.failure`.
    """
    require_runtime(runtime)
    workdir = Path(tempfile.mkdtemp(prefix=f"tflite-ref-{runtime}-"))
    try:
        if isinstance(model, (bytes, bytearray, memoryview)):
            model_path = workdir / "model.tflite"
            model_path.write_bytes(bytes(model))
        else:
            model_path = Path(model).resolve()
        arrays = {f"s{k}_i{j}": np.asarray(x) for k, xs in enumerate(samples)
                  for j, x in enumerate(xs)}
        np.savez(workdir / "inputs.npz", **arrays)  # type: ignore[arg-type]  # numpy stubs
        request = {
            "runtime": runtime, "model": str(model_path), "samples": len(samples),
            "inputs": len(input_indices), "input_indices": [int(i) for i in input_indices],
            "num_outputs": int(num_outputs), "fetch": [int(i) for i in fetch],
            "preserve": bool(preserve),
            "memory_limit": memory_limit, "tflm_arena": int(tflm_arena),
        }
        (workdir / "request.json").write_text(json.dumps(request))
        stderr = open(workdir / "stderr", "wb")  # noqa: SIM115 - the child owns it
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, str(Path(__file__).resolve()), str(workdir)],
                cwd=workdir, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                start_new_session=True)
        finally:
            stderr.close()
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return NativeRun(runtime, workdir, proc, len(samples), timeout, memory_limit)


# Loads this file as a free-standing module in the child: importing the tflite_ref package would
# cost most of a second, and running the file as a script would put tflite_ref/ first on sys.path,
# where tflite_ref/inspect.py would shadow the standard library's inspect.
_BOOTSTRAP = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('_tflite_ref_native_child', sys.argv[1])\n"
    "mod = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = mod\n"
    "spec.loader.exec_module(mod)\n"
    "sys.exit(mod._child_main(sys.argv[2]))\n"
)


# ================================================================================================
# The child side. Runs with the standard library, NumPy and the runtime only.
# ================================================================================================
@dataclass
class _Child:
    workdir: Path
    request: dict[str, Any]
    stage_fd: int = -1
    stage_name: str = "start"
    parent: int = field(default_factory=os.getppid)
    inputs: list[list[np.ndarray]] = field(default_factory=list)

    def stage(self, name: str) -> None:
        # os.write, not a buffered file: the line must be on disk before the runtime can crash
        self.stage_name = name
        os.write(self.stage_fd, (name + "\n").encode())

    def save_meta(self, exposes_all: bool, delegated: Sequence[int] = (),
                  notes: Sequence[str] = ()) -> None:
        self._atomic_json("meta.json", {"exposes_all": exposes_all,
                                        "delegated": sorted(int(i) for i in delegated),
                                        "notes": list(notes)})

    def save_sample(self, k: int, outputs: Sequence[np.ndarray],
                    tensors: Mapping[int, np.ndarray]) -> None:
        # At most two unread samples on disk: a preserve-all sample of a large model is tens of
        # megabytes, and the parent (tflite_ref's NumPy kernels) is usually the slower side.
        ahead = self.workdir / f"sample_{k - 2}.npz"
        while k >= 2 and ahead.exists():
            if os.getppid() != self.parent:  # orphaned: nobody will read it
                raise SystemExit(4)
            time.sleep(_POLL)
        arrays = {f"o{j}": np.asarray(x) for j, x in enumerate(outputs)}
        arrays.update({f"t{i}": np.asarray(x) for i, x in tensors.items()})
        tmp = self.workdir / f"sample_{k}.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy stubs
        os.replace(tmp, self.workdir / f"sample_{k}.npz")

    def _atomic_json(self, name: str, value: Any) -> None:
        tmp = self.workdir / (name + ".tmp")
        tmp.write_text(json.dumps(value))
        os.replace(tmp, self.workdir / name)


def _child_main(workdir_arg: str) -> int:
    workdir = Path(workdir_arg)
    request = json.loads((workdir / "request.json").read_text())
    child = _Child(workdir, request)
    child.stage_fd = os.open(workdir / "stage", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    limit = request.get("memory_limit")
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
    try:
        with np.load(workdir / "inputs.npz", allow_pickle=False) as f:
            child.inputs = [[f[f"s{k}_i{j}"] for j in range(request["inputs"])]
                            for k in range(request["samples"])]
        if request["runtime"] in ("litert-ref", "litert"):
            _child_litert(child)
        elif request["runtime"] == "tflm":
            _child_tflm(child)
        else:
            raise ValueError(f"unknown runtime {request['runtime']!r}")
    except BaseException as exc:  # noqa: BLE001 - everything the runtime raises is the finding
        (workdir / "error.json").write_text(json.dumps({
            "stage": child.stage_name, "type": type(exc).__name__, "message": str(exc),
            "traceback": traceback.format_exc()[-4000:]}))
        return 3
    return 0


def _child_litert(child: _Child) -> None:
    import warnings

    # LiteRT warns that preserve_all_tensors is for debugging: that is what it is used for here.
    warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
    req = child.request
    child.stage("load")
    from ai_edge_litert.interpreter import (  # type: ignore[import-untyped]
        Interpreter,
        OpResolverType,
    )

    resolver = (OpResolverType.BUILTIN_REF if req["runtime"] == "litert-ref"
                else OpResolverType.AUTO)
    keep = bool(req["preserve"])
    it = Interpreter(model_path=req["model"], experimental_op_resolver_type=resolver,
                     experimental_preserve_all_tensors=keep)
    for ti, x in zip(req["input_indices"], child.inputs[0] if child.inputs else []):
        if tuple(np.shape(x)) != _details_shape(it, ti):
            it.resize_tensor_input(ti, list(np.shape(x)))
    child.stage("allocate")
    it.allocate_tensors()
    delegated: list[int] = []
    if keep:
        try:  # with preserve_all_tensors, XNNPACK takes nodes one by one: each DELEGATE node
            for op in it._get_ops_details():  # writes exactly its original's outputs
                if op.get("op_name") == "DELEGATE":
                    delegated.extend(int(i) for i in op["outputs"])
        except Exception:  # noqa: BLE001, S110 - a private API; without it only a detail is lost
            pass
    child.save_meta(keep, delegated)
    outputs = [d["index"] for d in it.get_output_details()]
    for k, xs in enumerate(child.inputs):
        child.stage(f"invoke sample {k}")
        if k:
            it.reset_all_variables()  # every sample starts from the initial state
        for ti, x in zip(req["input_indices"], xs):
            it.set_tensor(ti, x)
        it.invoke()
        child.stage(f"read sample {k}")
        tensors: dict[int, np.ndarray] = {}
        for ti in req["fetch"] if keep else ():
            try:
                tensors[ti] = np.array(it.get_tensor(ti))
            except ValueError:  # a tensor with no data (freed or never written)
                continue
        child.save_sample(k, [np.array(it.get_tensor(ti)) for ti in outputs], tensors)
    child.stage("done")


def _details_shape(it: Any, ti: int) -> tuple[int, ...]:
    for d in it.get_input_details():
        if d["index"] == ti:
            return tuple(int(v) for v in d["shape"])
    return ()


def _child_tflm(child: _Child) -> None:
    req = child.request
    child.stage("load")
    from tflite_micro.python.tflite_micro import runtime  # type: ignore[import-untyped]

    data = Path(req["model"]).read_bytes()
    arena = int(req["tflm_arena"])
    keep = bool(req["preserve"])
    notes: list[str] = []
    config = getattr(runtime, "InterpreterConfig", None)
    keep_all = getattr(config, "kPreserveAllTensors", None) if config is not None else None
    if keep and (keep_all is None or not hasattr(runtime.Interpreter, "GetTensor")):
        keep = False
        notes.append("this tflite-micro build cannot keep intermediates: outputs only")
    child.stage("allocate")  # TFLite Micro allocates (and runs every Prepare) when it loads
    if keep:
        it = runtime.Interpreter.from_bytes(data, arena_size=arena, intrepreter_config=keep_all)
    else:
        it = runtime.Interpreter.from_bytes(data, arena_size=arena)
    child.save_meta(keep, (), notes)
    for k, xs in enumerate(child.inputs):
        child.stage(f"invoke sample {k}")
        if k:
            it.reset()  # every sample starts from the initial state
        for j, x in enumerate(xs):
            it.set_input(x, j)
        it.invoke()
        child.stage(f"read sample {k}")
        # GetTensor does not check its index (one past the end is a segfault): the parent asks
        # only for tensors that subgraph 0 declares.
        tensors = {ti: np.array(it.GetTensor(ti, 0)["tensor_data"])
                   for ti in (req["fetch"] if keep else ())}
        child.save_sample(k, [np.array(it.get_output(j)) for j in range(req["num_outputs"])],
                          tensors)
    child.stage("done")


__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_TFLM_ARENA",
    "DEFAULT_TIMEOUT",
    "RUNTIMES",
    "NativeFailure",
    "NativeMeta",
    "NativeRun",
    "NativeSample",
    "RuntimeSpec",
    "require_runtime",
    "runtime_version",
    "start",
]
