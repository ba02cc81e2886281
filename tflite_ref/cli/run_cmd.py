"""Run a model with tflite_ref's reference kernels and show what it computed.

Inputs default to random values (seeded); give real ones with ``--input NAME=file.npy`` (float
values for a quantized input are quantized with the input's own parameters). ``--save DIR`` writes
every tensor of the graph, intermediates included, as ``DIR/<index>_<name>.npy``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tflite_ref.errors import UsageError
from tflite_ref.model.model import Model
from tflite_ref.model.reader import load
from tflite_ref.runner import RunResult, TensorSummary, run_model

HELP = "run a model with the reference kernels (random or given inputs)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="path to a .tflite file")
    p.add_argument("--example", action="store_true", help="run the small example model shipped "
                   "with tflite_ref")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy",
                   help="an input value (tensor or signature name, or its position); repeatable")
    p.add_argument("--random-seed", type=int, default=0, metavar="N",
                   help="seed for the random inputs (default 0)")
    p.add_argument("--emulate", choices=("tflite", "tflm"), default="tflite",
                   help="whose arithmetic to reproduce: LiteRT's reference kernels (default) or "
                        "TFLite Micro's")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--save", metavar="DIR", help="write every tensor as DIR/<index>_<name>.npy")


def _model_path(args: argparse.Namespace) -> str:
    if args.example:
        from tflite_ref.examples import example_path

        args.model = str(example_path())
    path: str | None = args.model
    if not path:
        raise UsageError("give a MODEL path (or --example)")
    return path


def _read_inputs(specs: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--input takes NAME=FILE.npy, not {spec!r}")
        try:
            out[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--input {name}: cannot read {path}: {exc}") from None
    return out


def run(args: argparse.Namespace) -> int:
    path = _model_path(args)
    model = load(path)
    inputs = _read_inputs(args.input)
    err = Console(stderr=True)
    show_progress = err.is_terminal and not args.json and len(model.subgraphs[0].operators) > 1
    if show_progress:
        with Progress(TextColumn("running"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as progress:
            task = progress.add_task("ops", total=len(model.subgraphs[0].operators))
            result = run_model(model, inputs, args.random_seed, args.emulate,
                               on_operator=lambda done, _t: progress.update(task, completed=done))
    else:
        result = run_model(model, inputs, args.random_seed, args.emulate)
    if args.save:
        _save(result, model, Path(args.save))
    if args.json:
        print(json.dumps(_as_json(result, args.save), indent=2))
    else:
        render(result, Console(), args.save)
    return 0


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "tensor"


def _save(result: RunResult, model: Model, directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--save: cannot create {directory}: {exc.strerror}") from None
    sg = model.subgraphs[0]
    for ti, value in result.tensors.items():
        np.save(directory / f"{ti:04d}_{_safe(sg.tensors[ti].name)}.npy", value)


def _summary_json(s: TensorSummary) -> dict[str, Any]:
    return {"index": s.index, "name": s.name, "dtype": s.dtype, "shape": list(s.shape),
            "min": s.min, "max": s.max, "mean": s.mean, "dequantized": s.dequantized,
            "top5": [{"class": c, "value": v} for c, v in s.top5]}


def _as_json(result: RunResult, saved: str | None) -> dict[str, Any]:
    return {"model": result.model, "emulate": result.emulate, "seed": result.seed,
            "inputs": [_summary_json(s) for s in result.inputs],
            "outputs": [_summary_json(s) for s in result.outputs],
            "saved": {"directory": saved, "tensors": len(result.tensors)} if saved else None}


def render(result: RunResult, console: Console, saved: str | None = None) -> None:
    console.print(f"[bold]{result.model}[/]  emulating [cyan]{result.emulate}[/]"
                  + (f"  (random inputs, seed {result.seed})" if result.seed is not None else ""))
    for title, rows in (("inputs", result.inputs), ("outputs", result.outputs)):
        columns = ["#", "name", "dtype", "shape", "min", "max", "mean"]
        if title == "outputs" and any(s.top5 for s in rows):
            columns.append("top-5 (class: value)")
        table = Table(title=title, title_justify="left", show_edge=False)
        for col in columns:
            table.add_column(col, overflow="fold")
        for s in rows:
            cells = [str(s.index), s.name[-48:], s.dtype, str(list(s.shape)), _num(s.min),
                     _num(s.max), _num(s.mean)]
            if len(columns) > 7:
                cells.append(", ".join(f"{c}: {v:.4g}" for c, v in s.top5))
            table.add_row(*cells)
        console.print(table)
    if any(s.dequantized for s in result.inputs + result.outputs):
        console.print("[dim]quantized tensors are shown in real units: scale × (q − zero_point)[/]")
    if saved:
        console.print(f"saved {len(result.tensors)} tensors to {saved}/")


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


