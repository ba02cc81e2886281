"""Show what is inside a .tflite model: header, operators (shapes, dtypes, options, MACs), sizes,
quantization, custom ops and warnings; --tensors adds every tensor, --json the machine view."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from tflite_ref.errors import UsageError

HELP = "show what is inside a .tflite model (operators, tensors, sizes, quantization)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", metavar="MODEL", help="path of a .tflite file")
    parser.add_argument("--example", action="store_true",
                        help="inspect the shipped example model (tiny int8 CNN) instead of MODEL")
    parser.add_argument("--json", action="store_true",
                        help="print the machine view as JSON (every table, no truncation)")
    parser.add_argument("--tensors", action="store_true", help="add the table of tensors")
    parser.add_argument("--subgraph", type=int, metavar="N", default=None,
                        help="show only subgraph N (summaries stay model-wide)")
    parser.add_argument("--lint", action="store_true",
                        help="add lint findings (runtime disagreements, hazards, dead weight)")


def run(args: argparse.Namespace) -> int:
    from tflite_ref.inspect import inspect_file

    if args.example:
        if args.model:
            raise UsageError("give either MODEL or --example, not both")
        from tflite_ref.examples import example_path

        args.model = str(example_path())  # so an error message names the file
    elif not args.model:
        raise UsageError("no model given: tflite-ref inspect MODEL.tflite (or --example for the "
                         "shipped example model)")
    report = inspect_file(args.model)
    if args.subgraph is not None:
        report = report.select_subgraph(args.subgraph)
    findings = None
    if args.lint:
        from tflite_ref.lint import lint

        findings = lint(args.model)
    if args.json:
        out = report.to_dict()
        if findings is not None:
            out["lint"] = findings.to_dict()
        # allow_nan=False: to_dict() already maps non-finite floats to null; fail loudly if not.
        sys.stdout.write(json.dumps(out, indent=2, allow_nan=False) + "\n")
        return 0
    from tflite_ref.cli.render import render_inspect

    render_inspect(report, Console(highlight=False), tensors=args.tensors)
    if findings is not None:
        Console(highlight=False).print(findings)
    return 0
