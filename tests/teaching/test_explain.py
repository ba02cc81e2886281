"""``explain``: every operator of every corpus model, every op family, and the worked element
recomputed step by step equal to the interpreter's output element."""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import SHARED_MODEL_FILES, model_id
from teaching_fixtures import explain_models

from tflite_ref.cli.main import main
from tflite_ref.errors import UsageError
from tflite_ref.explain import EXPLAINERS, explain, explain_all, family_of
from tflite_ref.model.reader import load

KWS = next(p for p in SHARED_MODEL_FILES if p.stem == "kws_ref_model")
HELLO = next(p for p in SHARED_MODEL_FILES if p.stem == "hello_world_int8")
VELA = next(p for p in SHARED_MODEL_FILES if p.stem == "person_detect_vela")
AUDIO = next(p for p in SHARED_MODEL_FILES if p.stem == "audio_preprocessor_int8")
WHILE_MODEL = Path(__file__).resolve().parents[1] / "micro" / "models" / "while_float.tflite"


@functools.cache
def _explained(path: Path) -> tuple:
    return tuple(explain_all(load(path)))


def _corpus_opcodes() -> set[str]:
    return {op.opcode for p in SHARED_MODEL_FILES for sg in load(p).subgraphs
            for op in sg.operators}


def test_every_op_family_in_the_corpus_has_an_explanation() -> None:
    missing = sorted(op for op in _corpus_opcodes()
                     if not op.startswith("CUSTOM") and op not in EXPLAINERS)
    assert not missing, f"op families without an explanation module: {missing}"
    assert family_of("CUSTOM:ethos-u") == "custom"


@pytest.mark.parametrize("path", SHARED_MODEL_FILES, ids=model_id)
def test_explain_every_operator(path: Path) -> None:
    """One run per model explains every operator; each worked element equals the
    interpreter's value; an operator without a kernel is said to be unsupported."""
    m = load(path)
    explanations = _explained(path)
    assert len(explanations) == len(m.subgraphs[0].operators)
    for e in explanations:
        assert e.formula and e.sections
        if e.opcode.startswith("CUSTOM"):
            # ethos-u has no kernel at all; TFLM's Signal ops have only a TFLM emulation
            assert e.unsupported and ("no kernel" in e.unsupported
                                      or "no emulation of 'tflite' (only tflm)" in e.unsupported)
            continue
        if e.element is not None:
            el = e.element
            assert el.matches, (f"{model_id(path)} op {e.operator} {e.opcode}: step by step "
                                f"{el.computed} != interpreter {el.interpreter}")
        else:
            assert e.no_element, f"op {e.operator} {e.opcode}: neither element nor reason"


def test_worked_elements_cover_the_corpus_families() -> None:
    """Across the corpus, each family that computes has elements checked against the
    interpreter (recurrent ops are explained by their gate arithmetic only)."""
    seen: Counter[str] = Counter()
    for path in SHARED_MODEL_FILES:
        for e in _explained(path):
            if e.element is not None and e.element.matches:
                seen[e.family] += 1
    for family in ("conv", "fully_connected", "elementwise", "pooling", "activations",
                   "quantize", "reduce", "layout"):
        assert seen[family] > 0, f"no worked element for {family}: {dict(seen)}"


@pytest.mark.parametrize("emulate", ["tflite", "tflm"])
@pytest.mark.parametrize("name", sorted(explain_models()))
def test_single_op_models(name: str, emulate: str) -> None:
    """Families the corpus cannot run (its int32 ops sit beside custom ops) and variants it
    lacks (dilation, depth multiplier, per-channel FC, int8 DIV...), in both emulations."""
    data = explain_models()[name]
    (e,) = explain_all(data, emulate=emulate)
    assert e.family != "generic"
    if name == "sum_int8" and emulate == "tflite":
        # LiteRT's reference SUM reads int8 bytes as uint8: not written out step by step.
        assert e.element is None and "SUM" in (e.no_element or "")
        return
    assert e.element is not None, e.no_element
    assert e.element.matches, (e.element.computed, e.element.interpreter)


def test_conv_explanation_has_the_issue_contents(capsys) -> None:
    assert main(["explain", str(KWS), "--op", "0"]) == 0
    text = capsys.readouterr().out
    for needle in ("Scales, multipliers and shifts", "zero point", "Geometry (padding.h)",
                   "padding", "im2col / GEMM", "(1·25·5, 40) @ (40, 64)", "headroom",
                   "bias scale", "receptive field", "SaturatingRoundingDoublingHighMul",
                   "RoundingDivideByPOT", "✓", "integer_ops/conv.h"):
        assert needle in text, needle


def test_numbers_come_from_the_prepared_op_data() -> None:
    """The multipliers shown are the kernel's own (from prepare), per output channel."""
    from tflite_ref.explain import _prepare_alone

    m = load(KWS)
    e = explain(m, 0)
    _kernel, data = _prepare_alone(m, 0, m.subgraphs[0].operators[0], "tflite")
    oc = data.out_channels
    assert e.numbers["multipliers"] == [int(v) for v in data.requant.multiplier[:oc]]
    assert e.numbers["shifts"] == [int(v) for v in data.requant.shift[:oc]]
    assert e.numbers["padding"] == [data.window.pad_top, data.window.pad_left]


def test_fc_requantization_differs_per_emulation() -> None:
    lite = explain(HELLO, 2, emulate="tflite")
    micro = explain(HELLO, 2, emulate="tflm")
    assert any("round_away(acc" in s.text for s in lite.element.steps)
    assert any("SaturatingRoundingDoublingHighMul" in s.text for s in micro.element.steps)
    assert lite.element.matches and micro.element.matches


def test_at_picks_the_element_and_is_checked() -> None:
    e = explain(KWS, 0, at=(0, 0, 0, 5))
    assert e.element.index == (0, 0, 0, 5) and e.element.matches
    # a corner: taps fall in the padding
    assert "in the padding" in e.element.steps[0].text
    with pytest.raises(UsageError, match="--at"):
        explain(KWS, 0, at=(0, 99, 0, 0))


def test_unsupported_operator_and_unrunnable_model(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(["explain", str(VELA), "--op", "0"]))
    assert exc.value.code == 2
    out = capsys.readouterr().out
    assert "not supported" in out and "ethos-u" in out
    # The RESHAPE of a model that cannot run (custom signal ops): explained without values.
    m = load(AUDIO)
    k = next(op.index for op in m.subgraphs[0].operators if op.opcode == "RESHAPE")
    e = explain(m, k)
    assert e.unsupported is None and e.element is None
    assert "cannot run" in (e.no_element or "")


def test_other_subgraph_is_explained_without_values() -> None:
    m = load(WHILE_MODEL)
    assert len(m.subgraphs) > 1
    e = explain(m, 0, subgraph=1)
    assert e.element is None and "subgraph 0 only" in (e.no_element or "")


def test_cli_json_and_missing_op(capsys) -> None:
    assert main(["explain", str(HELLO), "--op", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["element"]["matches"] and doc["family"] == "fully_connected"
    assert doc["upstream"] and doc["numbers"]["multipliers"]
    with pytest.raises(SystemExit) as exc:
        main(["explain", str(HELLO)])
    assert exc.value.code == 2
    assert "--op" in capsys.readouterr().err


def test_explanation_html() -> None:
    html = explain(HELLO, 0)._repr_html_()
    assert "step by step" in html and "matches" in html
