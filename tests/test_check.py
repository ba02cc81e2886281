"""``tflite-ref check``: tflite_ref against the real runtimes, live, in child processes.

The truth is what LiteRT and TFLite Micro compute on this machine; nothing here is a pasted
number. Most cases call the CLI in-process (``main([...])``) so that a kernel can be monkeypatched
(the runtimes run in child processes and never see the patch); the crash case runs the real
``python -m tflite_ref`` process, since what is checked is that a runtime dying does not take
tflite-ref with it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED_MODEL_FILES, model_id
from rich.console import Console

import tflite_ref
from tflite_ref import native
from tflite_ref.check import CLASSES, DIVERGENT, check, input_samples, known_divergence
from tflite_ref.cli.check_cmd import render, report_json
from tflite_ref.cli.main import main
from tflite_ref.kernels import registry
from tflite_ref.model.schema import BuiltinOperator, TensorType

MODELS = {model_id(p): p for p in SHARED_MODEL_FILES}
MOBILENET = MODELS["tflm/mobilenet_v2_quantized_1x3x224x224"]

# Models tflite_ref does not run yet: `check` stops with exit 2 and says which operator.
NOT_YET = {
    "tflm/person_detect_vela": "ethos-u",  # an Ethos-U NPU command stream
}
# Hybrid models (float activations, int8 weights): TFLite Micro refuses them at Prepare, and so
# does our TFLM emulation (exit 2, before any runtime starts); against LiteRT they are compared.
NOT_FOR_TFLM = {"mlperf_tiny/kws_ref_model_float32": "hybrid",
                "mlperf_tiny/model_ToyCar_quant": "hybrid"}
# tflite_ref refuses to emulate LiteRT on an 8-bit SVDF state (LiteRT reads it as int16 and
# overruns its buffer, see test_runtime_crash_is_a_finding); it emulates TFLite Micro there.
NOT_FOR_LITERT = {"tflm/keyword_scrambled_8bit": "SVDF",
                  # TFLite Micro's signal-processing custom ops: LiteRT has no kernels for them,
                  # so tflite_ref runs them only under emulate="tflm".
                  "tflm/audio_preprocessor_float": "Signal",
                  "tflm/audio_preprocessor_int8": "Signal"}
# LiteRT refuses this file (per-axis bias quantization with quantized_dimension 3 on rank-1
# tensors): a finding about LiteRT, exit 1.
LITERT_REFUSES = {"tflm/person_detect"}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any] | str]:
    """Run ``tflite-ref check ... --json`` in-process: (exit code, parsed JSON or stderr)."""
    try:
        code = main(["check", *args, "--json"])
    except SystemExit as exc:  # errors go through fail(): one line on stderr, exit 2
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else err)


def _params(skip_ours: dict[str, str], refused: set[str]) -> list[Any]:
    out = []
    for mid, path in MODELS.items():
        expected = 2 if mid in NOT_YET or mid in skip_ours else 1 if mid in refused else 0
        out.append(pytest.param(path, expected, id=mid))
    return out


def _assert_outcome(code: int, doc: dict[str, Any] | str, expected: int, mid: str) -> None:
    if expected == 2:
        assert code == 2 and isinstance(doc, str)
        assert (NOT_YET | NOT_FOR_LITERT | NOT_FOR_TFLM)[mid] in doc, doc
        return
    assert isinstance(doc, dict), doc
    rt = doc["runtimes"][0]
    if expected == 1:  # the runtime refused the model: a finding, nothing compared
        assert code == 1 and rt["findings"] and rt["findings"][0]["kind"] == "refused", rt
        return
    first = rt["first_divergence"]
    assert code == 0, (f"first divergence: {first and (first['index'], first['opcode'])}, "
                       f"{first and first['class']}; {rt['reasons']}")
    assert rt["exposes"] == "all tensors" and rt["findings"] == []
    assert all(t["class"] in ("exact", "tolerance") for t in rt["tensors"])
    n_ops = doc["operators"]
    assert len(rt["tensors"]) >= n_ops  # every operator's output was compared


@pytest.mark.parametrize(("path", "expected"), _params(NOT_FOR_LITERT, LITERT_REFUSES))
def test_check_against_litert_ref(path: Path, expected: int,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _cli(capsys, str(path), "--against", "litert-ref")
    _assert_outcome(code, doc, expected, model_id(path))


@pytest.mark.parametrize(("path", "expected"), _params(NOT_FOR_TFLM, set()))
def test_check_against_tflm(path: Path, expected: int, capsys: pytest.CaptureFixture[str]
                            ) -> None:
    code, doc = _cli(capsys, str(path), "--against", "tflm", "--emulate", "tflm")
    _assert_outcome(code, doc, expected, model_id(path))


# ------------------------------------------------------------------------------------------------
# LiteRT's default (XNNPACK) against its reference kernels
# ------------------------------------------------------------------------------------------------
def _raw_tensors(runtime: str, model: tflite_ref.Model, feeds: list[list[np.ndarray]],
                 fetch: list[int]) -> dict[int, np.ndarray]:
    sg = model.subgraphs[0]
    with native.start(runtime, model.path or model.content, feeds, input_indices=sg.inputs,
                      num_outputs=len(sg.outputs), preserve=True, fetch=fetch) as run:
        sample = run.sample(0)
        assert sample is not None, run.failure
        return dict(sample.tensors)


def test_mobilenet_xnnpack_rounding_is_classified() -> None:
    model = tflite_ref.load(MOBILENET)
    sg = model.subgraphs[0]
    report = check(model, against="litert-ref,litert")
    ref, auto = report.runtimes
    assert ref.passed and ref.first_divergence is None  # bit-exact against the reference
    assert report.exit_code == 0  # the default policy: explained differences elsewhere are fine

    # The truth, straight from the runtimes: the first operator output (in execution order)
    # where LiteRT's default and its reference kernels disagree, and by how much overall.
    order = [ti for op in sg.operators for ti in op.outputs]
    feeds = input_samples(model, None)
    a = _raw_tensors("litert-ref", model, feeds, order)
    b = _raw_tensors("litert", model, feeds, order)
    first = next(ti for ti in order if not np.array_equal(a[ti], b[ti]))
    worst = max(int(np.abs(a[ti].astype(np.int64) - b[ti]).max()) for ti in order)
    assert worst > 1  # "a few LSB": the rounding differences add up through the network

    fd = auto.first_divergence
    assert fd is not None and fd.index == first
    producer = next(op for op in sg.operators if first in op.outputs)
    assert (fd.operator, fd.opcode) == (producer.index, producer.opcode)
    assert fd.cls == "rounding" and fd.diff.max_lsb == 1
    assert fd.explanation is not None and "XNNPACK" in fd.explanation
    assert {i.state for i in fd.inputs} <= {"exact", "constant"}  # its own difference
    assert max(t.diff.max_lsb for t in auto.tensors) == worst
    # Every difference is explained: rounding at the operator, or carried from an earlier one.
    assert {t.cls for t in auto.tensors} <= {"exact", "rounding", "propagated"}
    assert all(t.local is None or t.local.max_lsb <= 1 for t in auto.tensors)
    # "propagated" was measured: each such operator was re-run on XNNPACK's own inputs
    assert all(t.local is not None for t in auto.tensors if t.cls == "propagated")
    assert auto.passed and not check(model, against="litert", policy="any").passed

    text = _render(report)
    assert f"first divergence: tensor {first} " in text and "XNNPACK" in text


def _render(report: Any, width: int = 100) -> str:
    buf = io.StringIO()
    render(report, Console(file=buf, width=width, color_system=None))
    return buf.getvalue()


def test_known_divergences_between_runtimes() -> None:
    assert known_divergence("litert-ref", "litert-ref", "FULLY_CONNECTED", "INT8") is None
    assert known_divergence("tflm", "tflm", "RELU6", "INT8") is None
    kd = known_divergence("litert-ref", "litert", "CONV_2D", "INT8")
    assert kd is not None and kd.max_lsb == 1 and "XNNPACK" in kd.reason
    assert known_divergence("litert-ref", "litert", "CONV_2D", "FLOAT32") is None
    relu6 = known_divergence("tflm", "litert-ref", "RELU6", "INT8")
    assert relu6 is not None and relu6.max_lsb is None  # a different algorithm, any size
    both = known_divergence("tflm", "litert", "FULLY_CONNECTED", "INT8")  # via the reference
    assert both is not None and both.max_lsb == 1
    assert "XNNPACK" in both.reason and "TFLite Micro" in both.reason


# ------------------------------------------------------------------------------------------------
# A deliberately broken kernel
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("opcode", ["DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D"])
def test_broken_kernel_is_the_first_divergence(opcode: str, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = MODELS["mlperf_tiny/vww_96_int8"]
    sg = tflite_ref.load(path).subgraphs[0]
    victim = next(op for op in sg.operators if op.opcode == opcode)
    assert victim.index > 0  # not simply the first operator
    key = (int(BuiltinOperator[opcode]), int(TensorType.INT8))
    kernel = registry._REGISTRY[key]

    def off_by_one(data: Any, *inputs: Any) -> np.ndarray:
        out = kernel.eval(data, *inputs)
        return np.clip(out.astype(np.int16) + 1, -128, 127).astype(np.int8)

    # In this process only: the runtimes in their child processes keep their own kernels.
    monkeypatch.setitem(registry._REGISTRY, key, dataclasses.replace(kernel, eval=off_by_one))
    code, doc = _cli(capsys, str(path), "--against", "litert-ref,tflm")
    assert code == 1 and isinstance(doc, dict)
    for rt in doc["runtimes"]:
        fd = rt["first_divergence"]
        assert (fd["operator"], fd["opcode"]) == (victim.index, opcode), fd
        assert fd["index"] == victim.outputs[0] and fd["class"] == "real"
        assert all(i["state"] in ("exact", "constant") for i in fd["inputs"])
        assert fd["diff"]["histogram"].get("1", 0) > 0
        assert not rt["passed"]
        later = [t for t in rt["tensors"] if t["class"] == "propagated"]
        assert later and all(t["opcode"] != opcode for t in later)


# ------------------------------------------------------------------------------------------------
# Runtime failures are findings
# ------------------------------------------------------------------------------------------------
def test_runtime_crash_is_a_finding(tmp_path: Path) -> None:
    """LiteRT's SVDF reads an 8-bit state as int16 and corrupts its heap: the child dies."""
    path = MODELS["tflm/keyword_scrambled_8bit"]
    proc = subprocess.run([sys.executable, "-m", "tflite_ref", "check", str(path), "--emulate",
                           "tflm", "--against", "litert-ref", "--json"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    findings = doc["runtimes"][0]["findings"]
    assert findings and any(f["kind"] == "crash" and f["signal"] for f in findings), findings
    crash = next(f for f in findings if f["kind"] == "crash")
    assert crash["stage"].endswith("sample 0") and crash["sample"] == 0
    assert crash["signal"] in crash["message"]
    assert not doc["passed"] and doc["exit_code"] == 1


_SUICIDE = "import os, signal, sys; os.kill(os.getpid(), signal.SIGSEGV)\n"
_HANG = "import time; time.sleep(600)\n"


def test_killed_child_is_a_finding(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(native, "_BOOTSTRAP", _SUICIDE)
    code, doc = _cli(capsys, str(MODELS["tflm/hello_world_int8"]))
    assert code == 1 and isinstance(doc, dict)
    (finding,) = doc["runtimes"][0]["findings"]
    assert (finding["kind"], finding["signal"], finding["run"]) == ("crash", "SIGSEGV", "both")
    assert doc["runtimes"][0]["samples"] == 0


def test_hung_child_is_killed_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "_BOOTSTRAP", _HANG)
    model = tflite_ref.load(MODELS["tflm/hello_world_int8"])
    sg = model.subgraphs[0]
    run = native.start("tflm", model.path or "", input_samples(model, None),
                       input_indices=sg.inputs, num_outputs=1, timeout=0.5)
    try:
        assert run.sample(0) is None
        assert run.failure is not None and run.failure.kind == "timeout"
        assert run._proc.poll() is not None  # killed, not left behind
    finally:
        run.close()


def test_memory_limit_is_a_finding(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _cli(capsys, str(MODELS["tflm/hello_world_int8"]), "--against", "tflm",
                     "--memory-limit", "32")
    assert code == 1 and isinstance(doc, dict)
    (finding,) = doc["runtimes"][0]["findings"]
    assert finding["kind"] == "out-of-memory" and "32 MiB" in finding["message"]


def test_missing_runtime_is_exit_2(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tflite_micro" else real(name, *a))
    code, err = _cli(capsys, str(MODELS["tflm/hello_world_int8"]), "--against", "tflm")
    assert code == 2 and isinstance(err, str)
    assert "pip install tflite-micro" in err and err.count("\n") == 1


# ------------------------------------------------------------------------------------------------
# The JSON contract, inputs, rendering
# ------------------------------------------------------------------------------------------------
def test_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The --json document CI scripts rely on: keys, types, and the exit code inside."""
    path = MODELS["tflm/hello_world_int8"]
    model = tflite_ref.load(path)
    x = np.arange(-3, 3, dtype=np.int8).reshape(6, 1, 1)  # 6 samples of a [1, 1] input
    np.savez(tmp_path / "in.npz", **{model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]]
                                     .name: x})
    code, doc = _cli(capsys, str(path), "--inputs", str(tmp_path / "in.npz"),
                     "--against", "litert-ref,tflm")
    assert code == 0 and isinstance(doc, dict)
    assert set(doc) == {"model", "emulate", "policy", "rtol", "samples", "seed", "operators",
                        "passed", "exit_code", "runtimes"}
    assert (doc["samples"], doc["seed"], doc["emulate"], doc["policy"]) == (6, None, "tflite",
                                                                            "emulated")
    assert doc["passed"] is True and doc["exit_code"] == 0
    assert [r["runtime"] for r in doc["runtimes"]] == ["litert-ref", "tflm"]
    for rt in doc["runtimes"]:
        assert set(rt) == {"runtime", "title", "version", "emulated", "exposes", "samples",
                           "passed", "reasons", "findings", "counts", "first_divergence",
                           "tensors", "notes"}
        assert set(rt["counts"]) == set(CLASSES) and rt["samples"] == 6
        assert isinstance(rt["version"], str) and rt["emulated"] == (rt["runtime"] == "litert-ref")
        for t in rt["tensors"]:
            assert set(t) == {"index", "name", "dtype", "shape", "operator", "opcode", "role",
                              "class", "samples", "diff", "local", "explanation",
                              "first_sample", "inputs", "note"}
            assert t["class"] in CLASSES and t["samples"] == 6
            assert set(t["diff"]) == {"elements", "differing", "share", "max_abs", "max_lsb",
                                      "histogram"}
            assert t["diff"]["elements"] == 6 * int(np.prod(t["shape"]))
    json.dumps(report_json(check(path)))  # plain data all the way down


def test_divergence_json_and_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """A divergent tensor in JSON and in the rich view: histogram, inputs, explanation."""
    key = (int(BuiltinOperator.FULLY_CONNECTED), int(TensorType.INT8))
    kernel = registry._REGISTRY[key]
    monkeypatch.setitem(registry._REGISTRY, key, dataclasses.replace(
        kernel, eval=lambda d, *xs: np.clip(kernel.eval(d, *xs).astype(np.int16) - 2, -128,
                                            127).astype(np.int8)))
    report = check(MODELS["tflm/hello_world_int8"], samples=3, seed=7)
    assert report.exit_code == 1
    rt = report.runtimes[0]
    fd = rt.first_divergence
    assert fd is not None and fd.cls in DIVERGENT and fd.first_sample == 0
    doc = report_json(report)["runtimes"][0]["first_divergence"]
    assert doc["diff"]["max_lsb"] == 2 and set(doc["diff"]["histogram"]) <= {"-2", "-1"}
    assert doc["explanation"].startswith("no known arithmetic difference")
    text = _render(report)
    assert "FAIL" in text and f"tensor {fd.index}" in text and "FULLY_CONNECTED" in text
    assert "real" in text and "-2:" in text


def test_outputs_only_and_samples(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[int] = []
    report = check(MODELS["mlperf_tiny/ad01_int8"], against="litert-ref,litert,tflm", samples=3,
                   intermediates=False, on_progress=lambda _s, done, _t: seen.append(done))
    assert seen == [1, 2, 3]
    for rt in report.runtimes:
        assert rt.exposes == "outputs" and rt.samples == 3
        assert [t.role for t in rt.tensors] == ["output"]
    code, doc = _cli(capsys, str(MODELS["mlperf_tiny/ad01_int8"]), "--samples", "2",
                     "--inputs-dir", "x")
    assert code == 2 and "--samples" in str(doc)
