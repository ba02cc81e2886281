"""Call the native runtimes in a child process (see ``native_worker.py``)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

WORKER = Path(__file__).with_name("native_worker.py")


@dataclass
class NativeResult:
    ok: bool
    tensors: dict[str, np.ndarray]
    error: str = ""  # what the child said or how it died


def run_native(mode: str, model_path: str | Path, inputs: Sequence[np.ndarray],
               timeout: float = 600) -> NativeResult:
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.npz"
        out = Path(tmp) / "out.npz"
        np.savez(inp, *inputs)
        proc = subprocess.run([sys.executable, str(WORKER), mode, str(model_path), str(inp),
                               str(out)], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not out.exists():
            how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                   else f"exit code {proc.returncode}")
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return NativeResult(False, {}, f"{mode} {how}: {' | '.join(tail)}")
        with np.load(out) as f:
            return NativeResult(True, {k: f[k] for k in f.files})
