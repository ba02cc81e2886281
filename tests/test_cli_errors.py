"""``tflite-ref`` on bad input: exactly one line ``error: <file>: <message>`` on stderr, nothing on
stdout, exit code 2; ``--debug`` shows the traceback instead.

Most cases run the real process (``python -m tflite_ref``), since what is checked is what a
user's terminal shows; truncation at many offsets runs in-process to stay fast.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from tflite_ref.cli.main import main
from tflite_ref.examples import example_path
from tflite_ref.model.writer import ModelBuilder

EXAMPLE_BYTES = example_path().read_bytes()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tflite_ref", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def _missing(tmp: Path) -> Path:
    return tmp / "missing.tflite"


def _directory(tmp: Path) -> Path:
    (tmp / "models.tflite").mkdir()
    return tmp / "models.tflite"


def _png(tmp: Path) -> Path:
    path = tmp / "picture.tflite"  # the extension does not make it a model
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    return path


def _text(tmp: Path) -> Path:
    path = tmp / "notes.txt"
    path.write_text("this is not a model\n")
    return path


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.tflite"
    path.write_bytes(b"")
    return path


def _truncated(tmp: Path) -> Path:
    path = tmp / "truncated.tflite"
    path.write_bytes(EXAMPLE_BYTES[: len(EXAMPLE_BYTES) // 2])
    return path


def _invalid(tmp: Path) -> Path:
    """A well-formed FlatBuffer whose operator reads a tensor the subgraph does not have."""
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", [2], "FLOAT32")
    y = sg.tensor("y", [2], "FLOAT32")
    sg.operator("RELU", [7], [y])
    sg.inputs, sg.outputs = [x], [y]
    path = tmp / "invalid.tflite"
    path.write_bytes(mb.build())
    return path


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (_missing, "no such file"),
    "directory": (_directory, "is a directory"),
    "png": (_png, "not a .tflite file"),
    "text": (_text, "not a .tflite file"),
    "empty": (_empty, "file too short"),
    "truncated": (_truncated, "outside the file"),
    "invalid": (_invalid, "operator 0 (RELU): input 0 is tensor 7, but the subgraph has 2"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_model_is_one_line_exit_2(case: str, tmp_path: Path) -> None:
    make, message = CASES[case]
    path = make(tmp_path)
    arg = path.name  # relative, as typed
    proc = run_cli("inspect", arg, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {arg}: "), lines[0]
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = _truncated(tmp_path)
    proc = run_cli("inspect", "--debug", path.name, cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback (most recent call last)" in proc.stderr
    assert "ModelFormatError" in proc.stderr
    assert proc.stdout == ""


def test_json_errors_are_not_json(tmp_path: Path) -> None:
    """--json does not change where errors go: stdout stays empty for a consumer to detect."""
    proc = run_cli("inspect", "--json", "missing.tflite", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith("error: missing.tflite: no such file")


def test_no_model_given(tmp_path: Path) -> None:
    proc = run_cli("inspect", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "no model given" in proc.stderr and "--example" in proc.stderr


def test_example_runs_as_a_process(tmp_path: Path) -> None:
    proc = run_cli("inspect", "--example", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "CONV_2D" in proc.stdout and proc.stderr == ""


@pytest.mark.parametrize("keep", [0, 4, 8, 16, 100, 1000, 3000, len(EXAMPLE_BYTES) - 1])
def test_truncated_in_process(keep: int, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cut.tflite"
    path.write_bytes(EXAMPLE_BYTES[:keep])
    with pytest.raises(SystemExit) as exc:
        main(["inspect", str(path)])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"error: {path}: ")


def test_valid_model_after_errors_still_inspects(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Errors leave no state behind (the CLI is also used as a library through main())."""
    with pytest.raises(SystemExit):
        main(["inspect", str(_png(tmp_path))])
    capsys.readouterr()
    assert main(["inspect", "--json", str(example_path())]) == 0
    assert '"CONV_2D"' in capsys.readouterr().out


def test_file_name_with_brackets_is_printed_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "model[v2].tflite"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    proc = run_cli("inspect", path.name, cwd=tmp_path)
    assert proc.stderr.startswith("error: model[v2].tflite: ")
