"""``report``: one offline file per model, every section present or explained, --fail-on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED_MODEL_FILES, model_id
from teaching_fixtures import LINT_HAZARDS
from test_graph import assert_self_contained

from tflite_ref.cli.main import main
from tflite_ref.errors import UsageError
from tflite_ref.model.reader import load
from tflite_ref.report import (
    build_report,
    parse_fail_on,
    report_html,
    report_json,
    report_markdown,
)

KWS = next(p for p in SHARED_MODEL_FILES if p.stem == "kws_ref_model")
PERSON = next(p for p in SHARED_MODEL_FILES if p.stem == "person_detect")
AUDIO = next(p for p in SHARED_MODEL_FILES if p.stem == "audio_preprocessor_int8")
FLOAT = next(p for p in SHARED_MODEL_FILES if p.stem == "hello_world_float")


@pytest.mark.parametrize("path", SHARED_MODEL_FILES, ids=model_id)
def test_report_every_model(path: Path) -> None:
    r = build_report(path, samples=1, engine="builtin")
    names = [s.name for s in r.sections]
    assert names == ["summary", "graph", "micro", "check", "qdebug", "lint"]
    for s in r.sections:
        assert s.status in ("ok", "skipped", "error"), (s.name, s.status, s.detail)
        if s.status != "ok":
            assert s.detail  # an empty section says why
    assert r.section("summary").status == r.section("graph").status == "ok"
    assert r.section("micro").status == r.section("lint").status == "ok"
    runnable = not any(op.opcode.startswith("CUSTOM") for op in load(path).subgraphs[0].operators)
    if runnable and model_id(path) != "tflm/keyword_scrambled_8bit":
        # (LiteRT's integer SVDF reads an 8-bit state as 16-bit: tflite_ref refuses to emulate)
        assert r.check is not None
    html = report_html(r)
    assert_self_contained(html)
    for anchor in ('id="summary"', 'id="graph"', 'id="micro"', 'id="check"', 'id="qdebug"',
                   'id="lint"'):
        assert anchor in html
    doc = json.loads(report_json(r))
    assert doc["exit_code"] == 0 and doc["summary"]["file"]
    md = report_markdown(r)
    assert md.startswith("# tflite-ref report") and "## Lint" in md


def test_report_contents_for_a_quantized_model() -> None:
    r = build_report(KWS, samples=1, engine="builtin")
    assert r.micro is not None and r.micro.arena is not None and r.micro.plan
    assert r.check is not None and r.check.passed
    assert r.qdebug is not None and r.qdebug.layers
    html = report_html(r)
    assert "Memory plan" in html and "accumulated SQNR" in html and "<polyline" in html
    assert html.count('class="plot"') == 2  # plan timeline and SQNR per layer


def test_float_model_skips_qdebug_with_a_reason() -> None:
    r = build_report(FLOAT, samples=1, engine="builtin", sections=("qdebug",))
    s = r.section("qdebug")
    assert s.status == "skipped" and "quantized" in s.detail
    assert r.section("check").status == "skipped"


def test_fail_on_rules() -> None:
    r = build_report(PERSON, samples=1, engine="builtin", sections=("micro",),
                     fail_on=["lint-error", "arena>100M"])
    assert r.exit_code == 1 and len(r.failures) == 1
    assert r.failures[0].startswith("lint-error")
    r = build_report(KWS, samples=1, engine="builtin", sections=("micro",),
                     fail_on=["arena>1k"])
    assert r.failures and "arena" in r.failures[0]
    r = build_report(AUDIO, samples=1, engine="builtin", sections=("check",),
                     fail_on=["incomplete"])
    assert r.failures and "check (error)" in r.failures[0]
    with pytest.raises(UsageError, match="--fail-on"):
        parse_fail_on(["sqnr<x"])
    with pytest.raises(UsageError):
        parse_fail_on(["lints"])
    assert parse_fail_on(["check,micro", "sqnr<25"]) == ("check", "micro", "sqnr<25")


def test_cli(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(KWS), "-o", str(out), "--samples", "1", "--engine", "builtin",
                 "--fail-on", "lint-error,check,micro"]) == 0
    assert_self_contained(out.read_text())
    assert "wrote" in capsys.readouterr().err
    island = tmp_path / "island.tflite"
    island.write_bytes(LINT_HAZARDS["float-island"]())
    assert main(["report", str(island), "--json", "--skip", "check", "--skip", "qdebug",
                 "--fail-on", "lint-warning"]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["exit_code"] == 1 and doc["failures"][0].startswith("lint-warning")
    assert "fail:" in captured.err
    assert main(["report", str(island), "-o", str(tmp_path / "r.md"), "--skip", "check",
                 "--skip", "qdebug", "--skip", "micro"]) == 0
    assert (tmp_path / "r.md").read_text().startswith("# tflite-ref report")
    with pytest.raises(SystemExit) as exc:
        main(["report", str(KWS)])
    assert exc.value.code == 2


def test_report_repr_html_is_a_fragment() -> None:
    r = build_report(KWS, engine="builtin", sections=())
    html = r._repr_html_()
    assert html.startswith("<div>") and "<html" not in html and "graph-wrap" in html
