"""Step through a model operator by operator and show what flowed in and out of each one.

For every operator: its inputs and outputs with shape, dtype, quantization, the range and mean of
the stored values and (for quantized tensors) of the real values, and the share of saturated
elements. ``--values`` adds the first values, ``--until N`` stops after operator N, ``--op N``
shows only operator N. Inputs are random (seeded) unless given with ``--input NAME=FILE.npy``.
"""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tflite_ref.cli.render import fmt_number, fmt_options, fmt_shape, short_dtype, short_name
from tflite_ref.cli.run_cmd import _model_path, _read_inputs
from tflite_ref.trace import DEFAULT_VALUES, TensorStats, Trace, trace

HELP = "execute op by op and show every operator's inputs and outputs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="path to a .tflite file")
    p.add_argument("--example", action="store_true", help="trace the shipped example model")
    p.add_argument("--input", "--inputs", "-i", dest="input", action="append", default=[],
                   metavar="NAME=FILE.npy",
                   help="an input value (tensor or signature name, or its position); repeatable")
    p.add_argument("--random-seed", type=int, default=0, metavar="N",
                   help="seed for the inputs not given (default 0)")
    p.add_argument("--emulate", choices=("tflite", "tflm"), default="tflite",
                   help="whose arithmetic to reproduce (default: LiteRT's reference kernels)")
    p.add_argument("--until", type=int, metavar="N", help="stop after operator N")
    p.add_argument("--op", type=int, metavar="N", help="show only operator N")
    p.add_argument("--values", type=int, nargs="?", const=DEFAULT_VALUES, default=0,
                   metavar="K", help=f"show the first K values of each tensor "
                                     f"(default K={DEFAULT_VALUES})")
    p.add_argument("--json", action="store_true", help="print the trace as JSON")


def run(args: argparse.Namespace) -> int:
    path = _model_path(args)
    result = trace(path, _read_inputs(args.input) or None, until=args.until, op=args.op,
                   values=args.values, emulate=args.emulate, seed=args.random_seed)
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        render(result, Console(highlight=False))
    return 2 if result.error else 0


def _quant(t: TensorStats) -> str:
    if not t.scale:
        return ""
    if len(t.scale) > 1:
        return f"{len(t.scale)} scales"
    return f"s={fmt_number(t.scale[0])} z={t.zero_point[0] if t.zero_point else 0}"


def _range_mean(t: TensorStats) -> tuple[str, str]:
    """Real values when the tensor has one scale; else the stored ones (``q`` marks integers
    that have per-channel scales, so no single real range)."""
    if t.real_min is not None and t.real_max is not None and t.real_mean is not None:
        return f"[{t.real_min:.4g}, {t.real_max:.4g}]", f"{t.real_mean:.4g}"
    if t.min is None or t.max is None or t.mean is None:
        return "", ""
    q = "q" if t.scale else ""
    return f"{q}[{t.min:.4g}, {t.max:.4g}]", f"{t.mean:.4g}"


def _cells(role: str, t: TensorStats, with_values: bool) -> list[str]:
    sat = "" if t.saturation is None else f"{100 * t.saturation:.1f}%"
    rng, mean = _range_mean(t)
    cells = [role, f"{t.index} {short_name(t.name, 40)}",
             f"{short_dtype(t.dtype)} {fmt_shape(t.shape)}", _quant(t), rng, mean, sat]
    if with_values:
        cells.append(" ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in t.values))
    return cells


_COLUMNS = ("", "tensor", "type", "quantization", "min..max", "mean", "sat")


def render(result: Trace, console: Console) -> None:
    """One header line per operator, then one line per tensor; the columns keep one width over
    the whole trace so that the blocks line up."""
    shown = f"{len(result.steps)} of {result.operators} operators"
    if result.stopped_after is not None:
        shown += f", stopped after operator {result.stopped_after}"
    seed = f", random inputs seed {result.seed}" if result.seed is not None else ""
    console.print(f"[bold]{escape(result.model)}[/]  emulating {result.emulate}{seed}  ({shown})")
    with_values = any(t.values for s in result.steps for t in s.outputs)
    columns = _COLUMNS + (("values",) if with_values else ())
    rows = [[_cells("const" if t.constant else "in", t, with_values)
             for t in step.inputs if t is not None]
            + [_cells("out", t, with_values) for t in step.outputs] for step in result.steps]
    widths = [len(c) for c in columns]
    for block in rows:
        for cells in block:
            widths = [max(w, len(c)) for w, c in zip(widths, cells)]
    # When the console is narrow the first values give way first, then the names.
    gaps = 2 * (len(widths) - 1)
    flexible = {1} | ({len(widths) - 1} if with_values else set())
    fixed = sum(w for k, w in enumerate(widths) if k not in flexible) + gaps
    room = max(console.width - fixed, 12)
    if with_values:
        widths[-1] = min(widths[-1], max(room - min(widths[1], 28), 8))
        room -= widths[-1]
    widths[1] = max(12, min(widths[1], room))
    for k, (step, block) in enumerate(zip(result.steps, rows)):
        opts = escape(fmt_options(dict(step.options)))
        console.print(f"[bold]op {step.index}[/]  [bold cyan]{step.opcode}[/] {opts}  "
                      f"[dim]{step.seconds * 1e3:.2f} ms[/]")
        table = Table(box=None, show_header=k == 0, pad_edge=False, header_style="dim",
                      padding=(0, 2, 0, 0))
        for c, w in zip(columns, widths):
            table.add_column(c, width=w, no_wrap=True, overflow="ellipsis")
        for cells in block:
            table.add_row(*(escape(c) for c in cells), style="dim" if cells[0] == "const" else None)
        console.print(table)
    if result.error:
        console.print(f"[bold red]error:[/] {escape(result.error)}")
