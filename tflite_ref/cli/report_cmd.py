"""One offline file for a reviewer: summary, the graph, TFLite Micro support and arena (with the
memory plan), the differential check against the native runtimes, per-layer quantization error
with plots, and lint findings.

``-o report.html`` writes a self-contained page (no network needed), ``-o report.md`` Markdown,
``-o report.json`` JSON; ``--json`` / ``--markdown`` print to stdout instead. ``--fail-on`` rules
give CI an exit code: 0 when none fires, 1 when one does (2: a bad model or request).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from tflite_ref.cli.run_cmd import _model_path, _read_inputs
from tflite_ref.errors import UsageError
from tflite_ref.graph import ENGINES
from tflite_ref.report import (
    FAIL_ON,
    build_report,
    report_html,
    report_json,
    report_markdown,
)

HELP = "write one offline HTML/Markdown/JSON review report of a model (with --fail-on for CI)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="path to a .tflite file")
    p.add_argument("--example", action="store_true", help="report on the shipped example model")
    p.add_argument("--float", dest="float_model", metavar="FLOAT",
                   help="the float model this one was converted from (qdebug compares with it)")
    p.add_argument("--input", "--inputs", "-i", dest="input", action="append", default=[],
                   metavar="NAME=FILE.npy", help="an input value; repeatable (default: random)")
    p.add_argument("-o", "--output", metavar="FILE", help="FILE.html, FILE.md or FILE.json")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--markdown", action="store_true", help="print the report as Markdown")
    p.add_argument("--target", default="cortex-m", help="TFLite Micro target (default cortex-m)")
    p.add_argument("--against", metavar="RUNTIMES",
                   help="runtimes for the differential check, comma-separated (default: the "
                        "emulated one)")
    p.add_argument("--emulate", choices=("tflite", "tflm"), default="tflite")
    p.add_argument("--samples", type=int, default=4, metavar="N",
                   help="random input samples for check and qdebug (default 4)")
    p.add_argument("--random-seed", type=int, default=0, metavar="N")
    p.add_argument("--skip", action="append", default=[], choices=("micro", "check", "qdebug"),
                   help="leave a section out (repeatable)")
    p.add_argument("--engine", choices=ENGINES, default="auto", help="graph layout engine")
    p.add_argument("--fail-on", action="append", default=[], metavar="RULE",
                   help="exit 1 when RULE fires; repeatable or comma-separated: "
                        + ", ".join(FAIL_ON))


def run(args: argparse.Namespace) -> int:
    path = _model_path(args)
    if not (args.output or args.json or args.markdown):
        raise UsageError("say where the report goes: -o report.html (or .md, .json), --json or "
                         "--markdown")
    fmt = None
    if args.output:
        fmt = {".html": "html", ".htm": "html", ".md": "markdown", ".json": "json"}.get(
            Path(args.output).suffix.lower())
        if fmt is None:
            raise UsageError(f"cannot tell the format of {args.output!r}: name it .html, .md or "
                             ".json")
    inputs = _read_inputs(args.input) or None
    sections = [s for s in ("micro", "check", "qdebug") if s not in args.skip]
    report = build_report(path, args.float_model, inputs=inputs, target=args.target,
                          against=args.against, samples=args.samples, emulate=args.emulate,
                          engine=args.engine, seed=args.random_seed, fail_on=args.fail_on,
                          sections=sections)
    render = {"html": report_html, "markdown": report_markdown, "json": report_json}
    if args.output:
        assert fmt is not None
        try:
            Path(args.output).write_text(render[fmt](report), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    if args.json:
        sys.stdout.write(report_json(report))
    elif args.markdown:
        sys.stdout.write(report_markdown(report))
    err = Console(stderr=True, highlight=False)
    status = ", ".join(f"{s.name} {s.status}" for s in report.sections)
    where = f"wrote {escape(args.output)}: " if args.output else ""
    err.print(f"{where}{status}")
    for failure in report.failures:
        err.print(f"[bold red]fail:[/] {escape(failure)}")
    return report.exit_code
