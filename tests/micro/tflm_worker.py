"""Child process that allocates a model with the ``tflite-micro`` wheel, one arena size at a time.

    python tflm_worker.py MODEL

Reads one arena size per line on stdin and answers one JSON line per size on stdout:
``{"size": N, "ok": true, "total": T, "head": H, "tail": L}`` or ``{"size": N, "ok": false,
"error": "..."}``. TFLM can abort or crash on a model (e.g. an int8 SOFTMAX whose scale makes
its fixed-point preprocessing fail a check); the parent sees the child die and says so.

``print_allocations()`` writes through MicroPrintf to file descriptor 2 (stderr), not through
Python, so the descriptor itself is redirected to a file around each attempt.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile

_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def main() -> None:
    model_path = sys.argv[1]
    from tflite_micro.python.tflite_micro import runtime

    with open(model_path, "rb") as f:
        model_data = f.read()
    # Answers go to a private copy of stdout; fds 1 and 2 go to a capture file while TFLM runs.
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    capture = tempfile.TemporaryFile()
    saved = os.dup(2)
    for line in sys.stdin:
        size = int(line)
        capture.seek(0)
        capture.truncate()
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        result: dict[str, object] = {"size": size}
        try:
            it = runtime.Interpreter.from_bytes(model_data, arena_size=size)
            it.print_allocations()
            result["ok"] = True
            del it
        except Exception as exc:  # noqa: BLE001 - the wheel raises RuntimeError/ValueError
            result["ok"] = False
            result["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.dup2(saved, 1)
        capture.seek(0)
        text = capture.read().decode("utf-8", "replace")
        for key, value in _LINE.findall(text):
            result[key] = int(value)
        result["log"] = text[-2000:]
        reply.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
