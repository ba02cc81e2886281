"""Shared test configuration: the harness on sys.path and the shared model corpus."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))

# The model corpus lies beside the repository (CI lays ../shared next to the clone).
SHARED_MODELS = ROOT.parent / "shared" / "models"
SHARED_MODEL_FILES = sorted(SHARED_MODELS.glob("*/*.tflite"))

if not SHARED_MODEL_FILES:  # a missing corpus must fail loudly, not shrink the suite to nothing
    raise RuntimeError(f"no models under {SHARED_MODELS}: lay ../shared beside the repository")


def model_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"
