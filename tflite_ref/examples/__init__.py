"""Small example models shipped with tflite_ref, so every command can be tried without a model.

``tiny_cnn_int8.tflite``: an int8 CNN with seeded random weights (input 1x16x16x1 -> CONV_2D
per-channel with RELU -> DEPTHWISE_CONV_2D -> AVERAGE_POOL_2D -> RESHAPE -> FULLY_CONNECTED ->
SOFTMAX), with a ``serving_default`` signature and ``min_runtime_version`` metadata. It is built
by our own writer: regenerate it with ``python tests/models/build_fixtures.py``.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent
TINY_CNN_INT8 = "tiny_cnn_int8.tflite"


def example_path(name: str = TINY_CNN_INT8) -> Path:
    """Path of a shipped example model (the package data lives beside this module)."""
    path = EXAMPLES_DIR / name
    if not path.is_file():
        # Not a user error: the package was installed without its data files.
        raise FileNotFoundError(f"example model {name!r} is missing from {EXAMPLES_DIR}; "
                                "reinstall tflite-ref, or run tests/models/build_fixtures.py")
    return path


__all__ = ["EXAMPLES_DIR", "TINY_CNN_INT8", "example_path"]
