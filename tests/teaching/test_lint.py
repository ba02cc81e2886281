"""``lint``: each rule fires on a model written with tflite_ref's writer to carry that hazard, a
clean model has no findings, and where the rule claims a runtime refuses or aborts, the runtime
(LiteRT REF / TFLite Micro, each in a child process) is asked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_MODEL_FILES, model_id
from teaching_fixtures import HAZARD_RULE, LINT_HAZARDS, clean_model

from tflite_ref import native
from tflite_ref.cli.main import main
from tflite_ref.errors import ModelValidationError, UsageError
from tflite_ref.interpreter import Interpreter
from tflite_ref.lint import RULES, lint
from tflite_ref.model.reader import load
from tflite_ref.runner import random_input


def native_outcome(runtime: str, data: bytes) -> str:
    """``"ran"``, or how the runtime failed (``refused``, ``crash``, ...)."""
    m = load(data)
    sg = m.subgraphs[0]
    rng = np.random.default_rng(0)
    feed = [random_input(sg.tensors[i], sg.tensors[i].shape, rng) for i in sg.inputs]
    with native.start(runtime, data, [feed], input_indices=list(sg.inputs),
                      num_outputs=len(sg.outputs), timeout=60) as run:
        run.sample(0)
        return "ran" if run.failure is None else run.failure.kind


def test_clean_model_has_no_findings() -> None:
    assert lint(clean_model()).findings == ()


@pytest.mark.parametrize("hazard", sorted(LINT_HAZARDS))
def test_rule_fires_on_its_hazard(hazard: str) -> None:
    report = lint(LINT_HAZARDS[hazard]())
    rule = HAZARD_RULE[hazard]
    hits = report.rule(rule)
    assert hits, f"{rule} did not fire: {[(f.rule, f.message) for f in report]}"
    f = hits[0]
    assert f.severity in ("error", "warning", "info") and f.message and f.fix
    assert f.where != "model" or rule == "missing-signature"  # names what is affected
    # and the other rules stay quiet on the clean base (the bias-scale rule also sees the
    # spread-scale model: its weights are per-channel, its bias per-tensor)
    others = {x.rule for x in report} - {rule, "bias-scale", "unused-tensor"}
    assert not others, others


def test_every_rule_has_a_hazard_model() -> None:
    assert set(RULES) - set(HAZARD_RULE.values()) == set()


def test_quantized_dimension_litert_refuses_tflm_runs() -> None:
    data = LINT_HAZARDS["quantized-dimension"]()
    assert native_outcome("litert-ref", data) == "refused"
    assert native_outcome("tflm", data) == "ran"


def test_softmax_scale_hazards_on_the_runtimes() -> None:
    tiny = LINT_HAZARDS["softmax-logistic"]()
    assert "abort" in lint(tiny).rule("softmax-logistic")[0].message
    for runtime in ("litert-ref", "tflm"):
        assert native_outcome(runtime, tiny) in ("crash", "refused"), runtime
    with pytest.raises(ModelValidationError):
        Interpreter(model_content=tiny).allocate_tensors()
    near = LINT_HAZARDS["softmax-scale-tflm"]()
    assert "TFLite Micro refuses" in lint(near).rule("softmax-logistic")[0].message
    assert native_outcome("litert-ref", near) == "ran"
    assert native_outcome("tflm", near) in ("refused", "crash")


def test_per_tensor_bias_scale_is_refused_by_litert() -> None:
    data = LINT_HAZARDS["bias-scale"]()
    assert "LiteRT refuses" in lint(data).rule("bias-scale")[0].message
    assert native_outcome("litert-ref", data) == "refused"


def test_float_island_names_the_float_operators() -> None:
    (f,) = lint(LINT_HAZARDS["float-island"]()).rule("float-island")
    assert f.operator == 1 and "2 EXP" in f.message and "QUANTIZE" in f.message


def test_corpus_findings() -> None:
    person = next(p for p in SHARED_MODEL_FILES if p.stem == "person_detect")
    (f,) = lint(person).rule("quantized-dimension")
    assert f.severity == "error" and "13 more" in f.message
    vww = next(p for p in SHARED_MODEL_FILES if p.stem == "vww_96_int8")
    assert lint(vww).rule("scale")


@pytest.mark.parametrize("path", SHARED_MODEL_FILES, ids=model_id)
def test_lint_every_model(path: Path) -> None:
    report = lint(path)
    json.dumps(report.to_dict(), allow_nan=False)
    assert all(f.rule in RULES for f in report)


def test_inspect_lint_cli(tmp_path: Path, capsys) -> None:
    path = tmp_path / "island.tflite"
    path.write_bytes(LINT_HAZARDS["float-island"]())
    assert main(["inspect", str(path), "--lint"]) == 0
    out = capsys.readouterr().out
    assert "lint:" in out and "float-island" in out
    assert main(["inspect", str(path), "--lint", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["lint"]["counts"]["warning"] == 1
    assert [f["rule"] for f in doc["lint"]["findings"]] == ["float-island"]


def test_unknown_rule() -> None:
    with pytest.raises(UsageError, match="unknown lint rule"):
        lint(clean_model(), rules=["nope"])
