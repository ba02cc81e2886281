"""``python -m tflite_ref`` is the same as the ``tflite-ref`` console script."""

from __future__ import annotations

from tflite_ref.cli.main import entry

entry()
