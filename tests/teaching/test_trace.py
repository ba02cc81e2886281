"""``trace``: one step per operator, with the interpreter's own values, on every corpus model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_MODEL_FILES, model_id
from teaching_fixtures import T, single_op

import tflite_ref
from tflite_ref.cli.main import main
from tflite_ref.errors import UnsupportedOpError, UsageError
from tflite_ref.model.reader import load
from tflite_ref.runner import run_model
from tflite_ref.trace import TraceStep, tensor_stats, trace

HELLO = next(p for p in SHARED_MODEL_FILES if p.stem == "hello_world_int8")


@pytest.mark.parametrize("path", SHARED_MODEL_FILES, ids=model_id)
def test_trace_every_model(path: Path) -> None:
    """Every operator appears once, in order, and the last steps' outputs are the model's
    outputs as ``run`` computes them; a model tflite_ref cannot run says which operator."""
    m = load(path)
    n_ops = len(m.subgraphs[0].operators)
    try:
        result = trace(m)
    except UnsupportedOpError as exc:
        assert "operator" in str(exc) and "subgraph 0" in str(exc)
        return
    assert result.error is None and result.stopped_after is None
    assert [s.index for s in result] == list(range(n_ops))
    assert [s.opcode for s in result] == [op.opcode for op in m.subgraphs[0].operators]
    expected = run_model(m, seed=0)
    produced = {t.index: t for s in result for t in s.outputs}
    for out in expected.outputs:
        stats = produced[out.index]
        assert stats.shape == out.shape
        assert stats.mean == pytest.approx(float(expected.tensors[out.index].astype(
            np.float64).mean()), rel=1e-12, abs=1e-12)


def test_package_level_trace_yields_steps() -> None:
    steps = list(tflite_ref.trace(HELLO))
    assert all(isinstance(s, TraceStep) for s in steps) and len(steps) == 3


def test_until_op_and_values() -> None:
    t = trace(HELLO, until=1, values=4)
    assert [s.index for s in t] == [0, 1] and t.stopped_after == 1
    assert all(0 < len(x.values) <= 4 for s in t for x in s.outputs)
    only = trace(HELLO, op=2)
    assert [s.index for s in only] == [2]
    with pytest.raises(UsageError, match="--until 9"):
        trace(HELLO, until=9)


def test_inputs_by_name_real_values_are_quantized() -> None:
    m = load(HELLO)
    name = m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]].name
    t = trace(m, {name: np.array([[1.5]], np.float32)})
    q = m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]].quantization
    want = round(1.5 / float(q.scale[0])) + int(q.zero_point[0])
    assert t.inputs[0].values == () and t.inputs[0].min == want


def test_tensor_stats_saturation_and_real_values() -> None:
    m = load(HELLO)
    out = m.subgraphs[0].tensors[m.subgraphs[0].operators[0].outputs[0]]  # RELU, z = -128
    s = tensor_stats(out, np.array([[-128, 0, 127, 5]], np.int8), values=2)
    assert (s.at_min, s.at_max) == (0.25, 0.25)
    assert s.saturation == 0.25  # -128 is the ReLU's real zero here, not a clipped value
    scale, zp = out.quantization.scale[0], out.quantization.zero_point[0]
    assert s.real_max == pytest.approx(float(scale) * (127 - int(zp)))
    assert s.values == (-128, 0)


def test_error_mid_run_keeps_the_steps_and_exits_2(tmp_path: Path, capsys) -> None:
    """An operator that fails at run time ends the trace there; the CLI shows the steps."""
    data = single_op("DIV", [T([3], "INT32"), T([3], "INT32", [1, 0, 2])], [T([3], "INT32")])
    t = trace(data)
    assert t.steps == () and t.error is not None and "division by zero" in t.error
    path = tmp_path / "div0.tflite"
    path.write_bytes(data)
    assert main(["trace", str(path)]) == 2
    assert "division by zero" in capsys.readouterr().out


def test_cli_text_and_json(capsys) -> None:
    assert main(["trace", str(HELLO), "--until", "1", "--values", "3"]) == 0
    text = capsys.readouterr().out
    assert "op 0" in text and "op 1" in text and "op 2" not in text
    assert "FULLY_CONNECTED" in text and "stopped after operator 1" in text
    assert main(["trace", str(HELLO), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["operator"] for s in doc["steps"]] == [0, 1, 2]
    assert doc["steps"][0]["outputs"][0]["quantization"]["zero_point"]


def test_cli_unsupported_model_names_the_operator(capsys) -> None:
    vela = next(p for p in SHARED_MODEL_FILES if p.stem == "person_detect_vela")
    with pytest.raises(SystemExit) as exc:
        main(["trace", str(vela)])
    assert exc.value.code == 2
    assert "ethos-u" in capsys.readouterr().err


def test_step_html() -> None:
    html = trace(HELLO, op=0)[0]._repr_html_()
    assert "FULLY_CONNECTED" in html and "<table>" in html
