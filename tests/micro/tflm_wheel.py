"""Ask the ``tflite-micro`` wheel, in a child process, what it allocates for a model.

The truth for ``tflite_ref.micro`` comes from here, live, on every test run: the recording
allocator's ``Arena allocation total/head/tail`` lines (``RecordingMicroAllocator::
PrintAllocations``) with a large arena, and the smallest arena that works, found by bisection
over arena sizes in 16-byte steps. Nothing is cached between runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

WORKER = Path(__file__).with_name("tflm_worker.py")
LARGE_ARENA = 64 << 20  # what the shared doc measured with; untouched pages cost nothing
STEP = 16  # TFLM's arena alignment (micro_arena_constants.h); the bisection's granularity


@dataclass
class Attempt:
    size: int
    ok: bool
    total: int | None = None
    head: int | None = None
    tail: int | None = None
    error: str = ""


@dataclass
class WheelResult:
    allocates: bool
    total: int | None = None
    head: int | None = None
    tail: int | None = None
    minimum: int | None = None
    error: str = ""
    attempts: list[Attempt] = field(default_factory=list)


class WheelProbe:
    """One model, one child process that answers arena sizes; restarted after a crash."""

    def __init__(self, model_path: str | Path, timeout: float = 300) -> None:
        self.model_path = str(model_path)
        self.timeout = timeout
        self._proc: subprocess.Popen[str] | None = None
        self.attempts: list[Attempt] = []

    def __enter__(self) -> WheelProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def _child(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, str(WORKER), self.model_path], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return self._proc

    def try_size(self, size: int) -> Attempt:
        proc = self._child()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(f"{size}\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:  # the child died: TFLM aborted or crashed on this model at this size
            proc.wait(timeout=self.timeout)
            err = proc.stderr.read() if proc.stderr else ""
            how = (f"killed by signal {-proc.returncode}" if proc.returncode and
                   proc.returncode < 0 else f"exit code {proc.returncode}")
            self._proc = None
            tail = " | ".join(err.strip().splitlines()[-3:])
            attempt = Attempt(size, False, error=f"TFLM {how}: {tail}".strip())
        else:
            d = json.loads(line)
            error = d.get("error", "")
            if not d["ok"]:
                log = " | ".join(x.strip() for x in d.get("log", "").splitlines() if x.strip())
                error = f"{error}: {log}" if log else error
            attempt = Attempt(size, bool(d["ok"]), d.get("total"), d.get("head"),
                              d.get("tail"), error)
        self.attempts.append(attempt)
        return attempt

    def smallest_arena(self, guess: int, upper: int = LARGE_ARENA) -> int:
        """Smallest multiple of 16 that allocates, assuming a larger arena never fails.

        Starts from ``guess`` (a prediction): when it is right, two attempts settle it
        (``guess`` works, ``guess - 16`` does not). Otherwise it gallops outwards for a bracket
        and bisects.
        """
        guess = max(STEP, -(-guess // STEP) * STEP)
        if self.try_size(guess).ok:
            hi, step = guess, STEP
            lo = hi - step
            while lo > 0 and self.try_size(lo).ok:
                hi = lo
                step *= 2
                lo = max(0, hi - step)
        else:
            lo, step = guess, STEP
            hi = lo + step
            while not self.try_size(hi).ok:
                if hi >= upper:
                    raise RuntimeError(f"{self.model_path}: no arena up to {upper} bytes works")
                lo = hi
                step *= 2
                hi = min(upper, lo + step)
        # invariant: hi works, lo fails (or lo == 0)
        while hi - lo > STEP:
            mid = (lo + hi) // 2 // STEP * STEP
            if self.try_size(mid).ok:
                hi = mid
            else:
                lo = mid
        return hi


def measure(model_path: str | Path, guess_minimum: int | None = None) -> WheelResult:
    """Head/tail/total with a large arena, and the smallest working arena when it allocates."""
    with WheelProbe(model_path) as probe:
        big = probe.try_size(LARGE_ARENA)
        if not big.ok:
            return WheelResult(False, error=big.error, attempts=probe.attempts)
        assert big.total is not None
        minimum = probe.smallest_arena(guess_minimum or big.total)
        return WheelResult(True, big.total, big.head, big.tail, minimum, attempts=probe.attempts)
