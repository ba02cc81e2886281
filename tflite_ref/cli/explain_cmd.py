"""Explain one operator's computation with this model's actual numbers.

For a quantized CONV_2D: input/filter/output scales and zero points, each channel's effective
scale with its integer multiplier and shift, the padding arithmetic, the im2col/GEMM shapes, the
accumulator range the weights allow and its headroom, bias scale consistency, then one output
element computed step by step from its receptive field next to the interpreter's value. Every op
family has an explanation; the upstream file each formula follows is named.

Exit codes: 0 explained; 1 the step-by-step element disagrees with the interpreter (a bug in
tflite_ref -- please report it); 2 the operator has no kernel in tflite_ref (what the file holds
is still shown).
"""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tflite_ref.cli.run_cmd import _model_path, _read_inputs
from tflite_ref.errors import UsageError
from tflite_ref.explain import Explanation, explain

HELP = "write out one operator's arithmetic with the model's real numbers"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="path to a .tflite file")
    p.add_argument("--example", action="store_true", help="explain an operator of the shipped "
                   "example model")
    p.add_argument("--op", type=int, metavar="N", help="the operator to explain (its index)")
    p.add_argument("--subgraph", type=int, default=0, metavar="S",
                   help="the subgraph of the operator (default 0)")
    p.add_argument("--at", metavar="I,J,...",
                   help="the output element to work through (default: one near the middle)")
    p.add_argument("--input", "--inputs", "-i", dest="input", action="append", default=[],
                   metavar="NAME=FILE.npy", help="an input value; repeatable (default: random)")
    p.add_argument("--random-seed", type=int, default=0, metavar="N",
                   help="seed for the inputs not given (default 0)")
    p.add_argument("--emulate", choices=("tflite", "tflm"), default="tflite",
                   help="whose arithmetic to explain (default: LiteRT's reference kernels)")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")


def _parse_at(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v != "")
    except ValueError:
        raise UsageError(f"--at takes comma-separated integers (e.g. 0,3,2,7), not {text!r}") \
            from None


def run(args: argparse.Namespace) -> int:
    path = _model_path(args)
    if args.op is None:
        from tflite_ref.model.reader import load

        sg = load(path).subgraphs[args.subgraph if args.subgraph is not None else 0]
        listing = ", ".join(f"{op.index} {op.opcode}" for op in sg.operators[:12])
        more = ", …" if len(sg.operators) > 12 else ""
        raise UsageError(f"which operator? give --op N (operators: {listing}{more})")
    e = explain(path, args.op, subgraph=args.subgraph, inputs=_read_inputs(args.input) or None,
                at=_parse_at(args.at), emulate=args.emulate, seed=args.random_seed)
    if args.json:
        sys.stdout.write(json.dumps(e.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        render(e, Console(highlight=False))
    if e.unsupported:
        return 2
    if e.element is not None and not e.element.matches:
        return 1
    return 0


def render(e: Explanation, console: Console) -> None:
    console.print(f"[bold]subgraph {e.subgraph}, operator {e.operator}: "
                  f"[cyan]{escape(e.opcode)}[/] ({e.dtype})[/]  emulating {e.emulate}")
    if e.kernel:
        console.print(f"[dim]kernel {escape(e.kernel)}: {escape(e.mirrors)}[/]")
    console.print(f"\n  {escape(e.formula)}\n")
    if e.unsupported:
        console.print(f"[bold red]not supported:[/] {escape(e.unsupported)}\n")
    for s in e.sections:
        console.print(f"[bold]{escape(s.title)}[/]")
        if s.lines:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="dim", no_wrap=True)
            grid.add_column(overflow="fold")
            grid.add_column(style="dim", overflow="fold")
            for ln in s.lines:
                grid.add_row("  " + escape(ln.label), escape(ln.value), escape(ln.formula))
            console.print(grid)
        if s.table is not None:
            t = Table(box=None, padding=(0, 1), header_style="dim", pad_edge=False)
            for c in s.table.columns:
                t.add_column(escape(c), overflow="fold")
            for row in s.table.rows:
                t.add_row(*(escape(c) for c in row))
            console.print(t)
            if s.table.total_rows > len(s.table.rows):
                console.print(f"  [dim]({len(s.table.rows)} of {s.table.total_rows} rows; "
                              "all in --json)[/]")
        for note in s.notes:
            console.print(f"  [italic]{escape(note)}[/]")
        console.print()
    el = e.element
    if el is not None:
        console.print(f"[bold]Output {list(el.index)} of tensor {el.tensor} step by step[/]")
        for k, st in enumerate(el.steps, 1):
            value = "" if st.value == "-" else f" = [bold]{escape(str(st.value))}[/]"
            console.print(f"  {k:2d}. {escape(st.text)}{value}")
        if el.matches:
            how = "bit for bit" if el.exact else f"within {el.tolerance:.2g} (float sums)"
            console.print(f"  [green]✓[/] {el.computed} = the interpreter's {el.interpreter} "
                          f"({how})")
        else:
            console.print(f"  [bold red]✗ {el.computed} ≠ the interpreter's {el.interpreter}: "
                          "a bug in tflite_ref's explanation or kernel; please report it[/]")
    elif e.no_element:
        console.print(f"[italic]{escape(e.no_element)}[/]")
    if e.upstream:
        console.print("\n[dim]Follows " + escape("; ".join(e.upstream)) + "[/]")
