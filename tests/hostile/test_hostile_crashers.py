"""Crashers: files on which some entry point let a foreign exception out, minimized, kept.

``crashers/*.json`` describe fuzzer-found files (``found_by`` gives the seed and mutant of
``benchmarks/fuzz.py``, the bytes are ``*.tflite.gz``); the cases below them are hand-written
reductions of fuzzer findings.  Each runs in a forked child under the fuzzer's own limits
(2 GiB of address space, a timeout) and must end as an accepted file or a
:class:`~tflite_ref.errors.TFLiteRefError` *with a locator* -- not ``InternalError``, not
``UsageError`` (that is for the caller's mistakes, not the model's), not a crash.  A crasher
whose fix belongs to a kernel's owner is ``xfail(strict=True)`` with the kernel and the fix; the
strictness makes the fixed kernel's owner remove the mark.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT
from hostile_models import invoke_isolated, one_op

sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzz  # noqa: E402

CRASHERS = Path(__file__).parent / "crashers"
EXPECTED_ERRORS = {"ModelFormatError", "ModelValidationError", "UnsupportedOpError",
                   "ResourceLimitError", "KernelRuntimeError"}


def _cases() -> list[Any]:
    out = []
    for meta_path in sorted(CRASHERS.glob("*.json")):
        meta = json.loads(meta_path.read_text())
        marks = [pytest.mark.xfail(strict=True, reason=meta["xfail"])] if meta.get("xfail") else []
        out.append(pytest.param(meta, id=meta_path.stem, marks=marks))
    return out


@pytest.mark.parametrize("meta", _cases())
def test_fuzzer_crasher(meta: dict[str, Any], tmp_path: Path) -> None:
    data = gzip.decompress((CRASHERS / meta["file"]).read_bytes())
    path = tmp_path / "crasher.tflite"
    path.write_bytes(data)
    rec = fuzz.run_command(meta["command"], str(path), str(tmp_path), timeout=30.0,
                           memory=2 * fuzz.GiB)
    assert rec["outcome"] in ("accepted", "error"), rec
    if rec["outcome"] == "error":
        assert rec["type"] in EXPECTED_ERRORS, rec
        assert rec["locator"], rec


def _reshape_type_mismatch() -> tuple[bytes, dict[int, Any]]:
    data = one_op("RESHAPE", [dict(name="x", shape=[1, 4], dtype="FLOAT16"),
                              dict(name="s", shape=[1], dtype="INT32",
                                   data=np.array([4], np.int32))],
                  [dict(name="y", shape=[4], dtype="INT8")])
    return data, {0: np.ones((1, 4), np.float16)}


def _conv_int8_tiny_output_scale() -> tuple[bytes, dict[int, Any]]:
    data = one_op(
        "CONV_2D",
        [dict(name="x", shape=[1, 3, 3, 1], dtype="INT8", scale=0.5, zero_point=0),
         dict(name="w", shape=[1, 1, 1, 1], dtype="INT8", data=np.ones((1, 1, 1, 1), np.int8),
              scale=[0.5], zero_point=[0]),
         dict(name="b", shape=[1], dtype="INT32", data=np.zeros(1, np.int32), scale=[0.25],
              zero_point=[0])],
        [dict(name="y", shape=[1, 3, 3, 1], dtype="INT8", scale=1e-12, zero_point=0)],
        {"padding": "VALID", "stride_w": 1, "stride_h": 1})
    return data, {0: np.ones((1, 3, 3, 1), np.int8)}


@pytest.mark.parametrize("build", [
    pytest.param(_reshape_type_mismatch, id="RESHAPE-type-mismatch"),
    pytest.param(_conv_int8_tiny_output_scale, id="CONV_2D-int8-tiny-output-scale"),
])
def test_reduced_crasher(build: Any) -> None:
    data, inputs = build()
    got = invoke_isolated(data, inputs)
    assert got["outcome"] in ("ok", "error"), got
    if got["outcome"] == "error":
        assert got["type"] in EXPECTED_ERRORS and got["locator"], got


def _depthwise_with_rank2_filter() -> bytes:
    return one_op("DEPTHWISE_CONV_2D", [dict(name="x", shape=[1, 8], dtype="FLOAT32"),
                                        dict(name="w", shape=[4, 8], dtype="FLOAT32",
                                             data=np.ones((4, 8), np.float32))],
                  [dict(name="y", shape=[1, 4], dtype="FLOAT32")],
                  {"padding": "VALID", "stride_w": 1, "stride_h": 1, "depth_multiplier": 1})


def _conv_int8_zero_output_scale() -> bytes:
    data = one_op(
        "CONV_2D",
        [dict(name="x", shape=[1, 3, 3, 1], dtype="INT8", scale=0.5, zero_point=0),
         dict(name="w", shape=[1, 1, 1, 1], dtype="INT8", data=np.ones((1, 1, 1, 1), np.int8),
              scale=[0.5], zero_point=[0]),
         dict(name="b", shape=[1], dtype="INT32", data=np.zeros(1, np.int32), scale=[0.25],
              zero_point=[0])],
        [dict(name="y", shape=[1, 3, 3, 1], dtype="INT8", scale=0.0, zero_point=0)],
        {"padding": "VALID", "stride_w": 1, "stride_h": 1})
    return data


@pytest.mark.parametrize("build,command", [
    pytest.param(_depthwise_with_rank2_filter, "micro", id="micro-DEPTHWISE-rank2-filter"),
    pytest.param(_conv_int8_zero_output_scale, "run", id="run-CONV_2D-int8-zero-output-scale"),
])
def test_reduced_cli_crasher(build: Any, command: str, tmp_path: Path) -> None:
    path = tmp_path / "crasher.tflite"
    path.write_bytes(build())
    rec = fuzz.run_command(command, str(path), str(tmp_path), timeout=30.0, memory=2 * fuzz.GiB)
    assert rec["outcome"] in ("accepted", "error"), rec
    if rec["outcome"] == "error":
        assert rec["type"] in EXPECTED_ERRORS and rec["locator"], rec
