"""Compare tflite_ref with the native runtimes tensor by tensor, and say where and why they differ.

tflite_ref runs the model emulating LiteRT's reference kernels (``--emulate tflite``, compared with
``litert-ref`` by default) or TFLite Micro (``--emulate tflm``, compared with ``tflm``); each
runtime of ``--against`` runs in a child process on the same inputs, so a runtime that crashes is
reported, not fatal. Every tensor both sides expose is compared, and each difference is classified:
exact, rounding (±1 LSB where the runtimes' arithmetic is known to round differently), known (a
known difference of algorithm), propagated (carried from an earlier tensor) or real.

Exit codes: 0 the policy holds; 1 it does not, or a runtime failed on the model; 2 a bad model, an
operator tflite_ref cannot run yet, or a runtime that is not installed.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.padding import Padding
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from tflite_ref import native
from tflite_ref.check import (
    CLASSES,
    DEFAULT_RTOL,
    EMULATED_RUNTIME,
    HIST_CLIP,
    POLICIES,
    CheckReport,
    DiffStats,
    RuntimeFinding,
    RuntimeReport,
    TensorDiff,
    check,
    split_samples,
)
from tflite_ref.errors import UsageError
from tflite_ref.model.reader import load

HELP = "compare tflite_ref with LiteRT / TFLite Micro tensor by tensor"
TOP = 12  # rows per runtime table unless --all
_STYLE = {"exact": "green", "tolerance": "green", "propagated": "yellow", "rounding": "cyan",
          "known": "magenta", "real": "bold red"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="path to a .tflite file")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--inputs", metavar="FILE.npz",
                     help="input values by input name (a leading sample axis on every array "
                          "gives several samples)")
    src.add_argument("--inputs-dir", metavar="DIR", help="one .npz file of inputs per sample")
    p.add_argument("--samples", type=int, metavar="N",
                   help="random input samples (default 1; not with --inputs/--inputs-dir)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed for the random inputs (default 0)")
    p.add_argument("--against", metavar="RUNTIMES",
                   help="comma-separated: litert-ref (LiteRT reference kernels), litert (LiteRT "
                        "default, XNNPACK), tflm (TFLite Micro); default: the emulated runtime")
    p.add_argument("--emulate", choices=tuple(EMULATED_RUNTIME), default="tflite",
                   help="whose arithmetic tflite_ref reproduces: LiteRT's reference kernels "
                        "(default) or TFLite Micro's")
    p.add_argument("--fail-on", choices=tuple(POLICIES), default="emulated", metavar="POLICY",
                   help="; ".join(f"{k}: {v}" for k, v in POLICIES.items())
                        + " (default: emulated)")
    p.add_argument("--rtol", type=float, default=DEFAULT_RTOL,
                   help=f"float tolerance, relative to the tensor's magnitude (default "
                        f"{DEFAULT_RTOL:g})")
    p.add_argument("--outputs-only", action="store_true",
                   help="compare graph outputs only (no preserve-all-tensors runs)")
    p.add_argument("--timeout", type=float, default=native.DEFAULT_TIMEOUT, metavar="SECONDS",
                   help="how long to wait for each runtime process, summed over the samples "
                        f"(default {native.DEFAULT_TIMEOUT:g})")
    p.add_argument("--memory-limit", type=int, default=native.DEFAULT_MEMORY_LIMIT >> 20,
                   metavar="MIB", help="address space per runtime process (default "
                                       f"{native.DEFAULT_MEMORY_LIMIT >> 20}; 0: none)")
    p.add_argument("--all", action="store_true", help="list every tensor, not the worst "
                                                     f"{TOP}")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            if isinstance(f, np.ndarray):  # a .npy file: the model's only input
                return {"0": f}
            return {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read inputs from {path}: {exc}") from None


def _inputs(args: argparse.Namespace, model: Any) -> list[dict[str, np.ndarray]] | None:
    if args.samples is not None and (args.inputs or args.inputs_dir):
        raise UsageError("--samples draws random inputs; it does not go with --inputs or "
                         "--inputs-dir")
    if args.inputs:
        return split_samples(model, _read_npz(Path(args.inputs)))
    if args.inputs_dir:
        files = sorted(Path(args.inputs_dir).glob("*.np[yz]"))
        if not files:
            raise UsageError(f"--inputs-dir: no .npz files in {args.inputs_dir}")
        out = []
        for f in files:
            out.extend(split_samples(model, _read_npz(f)))
        return out
    return None


def run(args: argparse.Namespace) -> int:
    model = load(args.model)
    inputs = _inputs(args, model)
    samples = args.samples if args.samples is not None else 1
    err = Console(stderr=True)
    kwargs: dict[str, Any] = {
        "against": args.against, "inputs": inputs, "emulate": args.emulate, "samples": samples,
        "seed": args.seed, "policy": args.fail_on, "rtol": args.rtol,
        "intermediates": not args.outputs_only, "timeout": args.timeout,
        "memory_limit": (args.memory_limit << 20) or None}
    total = len(inputs) if inputs is not None else samples
    if err.is_terminal and not args.json:
        with Progress(TextColumn("checking"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("samples"), TimeElapsedColumn(), console=err,
                      transient=True) as progress:
            task = progress.add_task("samples", total=total)
            report = check(model, **kwargs,
                           on_progress=lambda _s, done, _t: progress.update(task,
                                                                            completed=done))
    else:
        report = check(model, **kwargs)
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        render(report, Console(highlight=False), limit=None if args.all else TOP)
    return report.exit_code


# ------------------------------------------------------------------------------------------------
# JSON
# ------------------------------------------------------------------------------------------------
def _num(x: float | None) -> float | str | None:
    if x is None:
        return None
    if math.isinf(x):
        return "inf"
    return float(x)


def _stats_json(s: DiffStats | None, integer: bool) -> dict[str, Any] | None:
    if s is None:
        return None
    out: dict[str, Any] = {"elements": s.elements, "differing": s.differing,
                           "share": s.share, "max_abs": _num(s.max_abs)}
    if integer:
        out["max_lsb"] = s.max_lsb if not math.isinf(s.max_abs) else None
        out["histogram"] = {_bin(d).replace("+", ""): n for d, n in s.histogram}
    else:
        out["max_rel"] = _num(s.max_rel)
    return out


def _tensor_json(t: TensorDiff) -> dict[str, Any]:
    integer = t.numeric != "float"
    return {
        "index": t.index, "name": t.name, "dtype": t.dtype, "shape": list(t.shape),
        "operator": t.operator, "opcode": t.opcode, "role": t.role, "class": t.cls,
        "samples": t.samples, "diff": _stats_json(t.diff, integer),
        "local": _stats_json(t.local, integer), "explanation": t.explanation,
        "first_sample": t.first_sample,
        "inputs": [{"slot": i.slot, "index": i.index, "name": i.name, "state": i.state,
                    "max_abs": _num(i.max_abs)} for i in t.inputs],
        "note": t.note,
    }


def _finding_json(f: RuntimeFinding) -> dict[str, Any]:
    return {"run": f.run, "kind": f.kind, "stage": f.stage, "sample": f.sample,
            "message": f.message, "signal": f.signal, "stderr_tail": f.stderr_tail}


def report_json(report: CheckReport) -> dict[str, Any]:
    """The ``--json`` document, a contract for CI (kept by tests/test_check.py::test_json_contract).

    ``{model, emulate, policy, rtol, samples, seed, operators, passed, exit_code, runtimes: [
    {runtime, title, version, emulated, exposes, samples, passed, reasons, findings: [{run, kind,
    stage, sample, message, signal, stderr_tail}], counts: {class: n}, first_divergence: tensor |
    null, tensors: [tensor], notes}]}``, where a tensor is ``{index, name, dtype, shape,
    operator, opcode, role, class, samples, diff, local, explanation, first_sample, inputs:
    [{slot, index, name, state, max_abs}], note}`` and ``diff``/``local`` (the operator re-run
    on the runtime's inputs, or null) are ``{elements, differing, share, max_abs, max_lsb,
    histogram: {"-1": n, "1": n, ">=16": n}}`` for integer tensors, ``{elements, differing,
    share, max_abs, max_rel}`` for float ones. Infinite values are the string ``"inf"``.
    """
    return {
        "model": report.model, "emulate": report.emulate, "policy": report.policy,
        "rtol": report.rtol, "samples": report.samples, "seed": report.seed,
        "operators": report.operators, "passed": report.passed, "exit_code": report.exit_code,
        "runtimes": [{
            "runtime": r.runtime, "title": r.title, "version": r.version,
            "emulated": r.emulated, "exposes": r.exposes, "samples": r.samples,
            "passed": r.passed, "reasons": list(r.reasons),
            "findings": [_finding_json(f) for f in r.findings],
            "counts": dict(r.counts),
            "first_divergence": (_tensor_json(r.first_divergence)
                                 if r.first_divergence is not None else None),
            "tensors": [_tensor_json(t) for t in r.tensors],
            "notes": list(r.notes),
        } for r in report.runtimes],
    }


# ------------------------------------------------------------------------------------------------
# Rich
# ------------------------------------------------------------------------------------------------
def _n(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


_EMULATING = {"tflite": "LiteRT's reference kernels", "tflm": "TFLite Micro"}


def _pct(share: float) -> str:
    if share == 0:
        return "0"
    pct = 100 * share
    return f"{pct:.2g}%" if pct < 1 else f"{pct:.3g}%" if pct < 100 else "100%"


def _size(t: TensorDiff, s: DiffStats | None) -> str:
    """How big a difference is: LSB for integer tensors, relative for float ones."""
    if s is None:
        return "-"
    if math.isinf(s.max_abs):
        return "mismatch"
    if t.numeric == "float":
        return "0" if s.max_abs == 0 else f"{s.max_rel:.2g} rel" if s.max_rel is not None \
            else f"{s.max_abs:.3g}"
    return f"{s.max_lsb} LSB" if s.max_abs else "0"


def _hist(s: DiffStats, width: int = 6) -> str:
    """The ``width`` most frequent differences, in order; ±16 stands for ±16 and beyond."""
    if not s.histogram:
        return ""
    top = sorted(s.histogram, key=lambda dn: -dn[1])[:width]
    more = " …" if len(s.histogram) > width else ""
    return " ".join(f"{_bin(d)}:{n}" for d, n in sorted(top)) + more


def _bin(d: int) -> str:
    """A histogram bin's label: the edge bins pool everything beyond them."""
    return f"<={d:+d}" if d <= -HIST_CLIP else f">={d:+d}" if d >= HIST_CLIP else f"{d:+d}"


def _finding(f: RuntimeFinding) -> RenderableType:
    runs = {"both": "plain and preserve-all runs", "plain": "plain run",
            "preserve-all": "preserve-all run"}[f.run]
    lines: list[RenderableType] = [
        Text.assemble(("finding ", "bold red"), (f"({f.kind}, {runs}): ", "red"), f.message)]
    if f.stderr_tail:
        lines.append(Padding(Text(f.stderr_tail, style="dim"), (0, 0, 0, 2)))
    return Group(*lines)


def _first(r: RuntimeReport) -> RenderableType:
    t = r.first_divergence
    if t is None:
        what = "no divergence" if r.samples else "nothing compared"
        return Text.assemble(("first divergence: ", "bold"), what)
    d = t.diff
    head = Text.assemble(
        ("first divergence: ", "bold"), f"tensor {t.index} ", (repr(t.name) if t.name else
                                                               "(unnamed)", "bold"),
        f" ({t.dtype} {list(t.shape)}) ← operator {t.operator} ", (t.opcode or "?", "bold"),
        f", sample {t.first_sample}: ", (t.cls, _STYLE[t.cls]))
    size = Text(f"  {_size(t, d)}, {d.differing:,} of {d.elements:,} elements differ "
                f"({_pct(d.share)})" + (f"; histogram {_hist(d)}" if d.histogram else ""))
    parts: list[RenderableType] = [head, size]
    if t.local is not None:
        parts.append(Text(f"  re-run on {r.runtime}'s inputs: {_size(t, t.local)}, "
                          f"{_pct(t.local.share)} of elements differ"))
    if t.inputs:
        shown = ", ".join(
            f"#{i.index} {i.state}" + (f" ({i.max_abs:g})" if i.max_abs is not None else "")
            for i in t.inputs if i.state != "absent")
        parts.append(Text(f"  inputs: {shown}"))
    if t.explanation:
        parts.append(Text(f"  why: {t.explanation}", style=_STYLE[t.cls]))
    if t.note:
        parts.append(Text(f"  note: {t.note}"))
    return Group(*parts)


def _table(r: RuntimeReport, limit: int | None, width: int) -> Table | None:
    rows = r.worst(limit) if limit is None else tuple(
        t for t in r.worst(limit) if t.cls != "exact")
    if not rows:
        return None
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    wide = width >= 100  # below that, the histogram stays in the first divergence and JSON
    # Numbers keep their width; the tensor name and the histogram give way on narrow consoles.
    table.add_column("#", justify="right", no_wrap=True, min_width=3)
    table.add_column("tensor", overflow="ellipsis", no_wrap=True, max_width=24 if wide else 18)
    table.add_column("operator", no_wrap=True, min_width=12)
    table.add_column("class", no_wrap=True, min_width=10)
    table.add_column("max", justify="right", no_wrap=True, min_width=6)
    table.add_column("share", justify="right", no_wrap=True, min_width=6)
    table.add_column("own", justify="right", no_wrap=True, min_width=5)  # re-run on their inputs
    if wide:
        table.add_column("histogram", overflow="ellipsis", no_wrap=True, ratio=1)
    for t in rows:
        op = f"{t.operator} {t.opcode}" if t.operator is not None else "-"
        name = escape(t.name or "(unnamed)") + (" (out)" if t.role == "output" else "")
        cells: list[RenderableType] = [
            str(t.index), name, op, Text(t.cls, style=_STYLE[t.cls]), _size(t, t.diff),
            _pct(t.diff.share), _size(t, t.local) if t.local else ""]
        table.add_row(*cells, *([_hist(t.diff, 3)] if wide else []))
    return table


def render(report: CheckReport, console: Console, limit: int | None = TOP) -> None:
    """Draw ``report``: a header, then per runtime its findings, first divergence and the worst
    tensors; the verdict last. Computes nothing."""
    kind = "random" if report.seed is not None else "given"
    inputs = _n(report.samples, f"{kind} sample") + (
        f" (seed {report.seed})" if report.seed is not None else "")
    console.print(Text.assemble(("tflite-ref check ", "bold"), report.model))
    console.print(f"tflite_ref emulating {_EMULATING[report.emulate]} ({report.emulate}) · "
                  f"{inputs} · {_n(report.operators, 'operator')}")
    console.print(Text(f"policy {report.policy}: {POLICIES[report.policy]}", style="dim"))
    for r in report.runtimes:
        version = f" {r.version}" if r.version else ""
        tag = " (emulated)" if r.emulated else ""
        console.print(Rule(Text.assemble((r.runtime, "bold"), f"{tag}: {r.title}{version}"),
                           align="left"))
        for f in r.findings:
            console.print(_finding(f))
        if r.samples:
            counts = " · ".join(f"{n} {c}" for c in CLASSES if (n := r.counts.get(c, 0)))
            console.print(f"compared {_n(len(r.tensors), 'tensor')} ({r.exposes} exposed) over "
                          f"{_n(r.samples, 'sample')}: {counts}")
            console.print(_first(r))
            table = _table(r, limit, console.width)
            if table is not None:
                console.print(Text(f"worst tensors first ({table.row_count} of "
                                   f"{len(r.tensors)}; own: the operator re-run on "
                                   f"{r.runtime}'s inputs):", style="dim"))
                console.print(table)
        for note in r.notes:
            console.print(Text(f"note: {note}", style="dim"))
        verdict = Text("pass", style="bold green") if r.passed else Text("FAIL", style="bold red")
        console.print(Text.assemble(verdict, f" against {r.runtime}"
                                    + (": " + "; ".join(r.reasons) if r.reasons else "")))
    console.print(Rule(style="dim"))
    if report.passed:
        console.print(Text("PASS", style="bold green"),
                      f"(exit 0): the {report.policy} policy holds against every runtime")
    else:
        failed = ", ".join(r.runtime for r in report.runtimes if not r.passed)
        console.print(Text("FAIL", style="bold red"), f"(exit 1) against {failed}")
