"""``tflite-ref run``: random or given inputs, a summary of the outputs, every tensor saved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from harness import run_litert

from tflite_ref.cli.main import main
from tflite_ref.examples import example_path


def test_run_example_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--example", "--json", "--random-seed", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["emulate"] == "tflite" and out["seed"] == 3
    (o,) = out["outputs"]
    assert o["shape"] == [1, 10] and o["dtype"] == "INT8" and len(o["top5"]) == 5
    assert abs(sum(t["value"] for t in o["top5"])) <= 1.01  # softmax probabilities


def test_saved_tensors_match_litert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every tensor --save writes equals LiteRT's value of it, for the same input."""
    x = np.random.default_rng(5).integers(-128, 128, size=(1, 16, 16, 1)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    save = tmp_path / "tensors"
    assert main(["run", "--example", "--input", f"input={tmp_path / 'x.npy'}",
                 "--save", str(save)]) == 0
    assert "softmax" in capsys.readouterr().out
    ref = run_litert(example_path().read_bytes(), [x])
    files = sorted(save.glob("*.npy"))
    assert len(files) == 14
    for f in files:
        index = int(f.name.split("_", 1)[0])
        np.testing.assert_array_equal(np.load(f), ref[index], err_msg=f.name)


def test_float_input_for_quantized_model_is_quantized(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "x.npy", np.full((1, 16, 16, 1), 0.5, np.float32))
    assert main(["run", "--example", "--json", "--input", f"0={tmp_path / 'x.npy'}"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["inputs"][0]["min"] == pytest.approx(0.5, abs=0.01)


def test_emulate_tflm(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--example", "--emulate", "tflm", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["emulate"] == "tflm"


def test_unknown_input_name_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 16, 16, 1), np.int8))
    with pytest.raises(SystemExit) as info:
        main(["run", "--example", "--input", f"nope={tmp_path / 'x.npy'}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the model has no input named 'nope'") and err.count("\n") == 1
