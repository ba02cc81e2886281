"""Will it fit my microcontroller? TFLite Micro's verdict and arena for a model, from the file.

Predicts what TFLite Micro does with the model: whether its interpreter allocates (and why not),
the tensor arena it reports (head = the memory plan, tail = persistent allocations, total) and
the smallest ``tensor_arena`` that works, the ``MicroMutableOpResolver`` the model needs, flash,
MACs, and an operator order that would lower the head. ``--target host`` is the
``tflite-micro`` Python wheel (64-bit); ``--target cortex-m`` a 32-bit Arm firmware built with
arm-none-eabi-gcc.

Exit code 0 when TFLite Micro is predicted to run the model, 1 when it is not (a rejection,
a crash, or a failure at Invoke), 2 for a bad model or request.
"""

from __future__ import annotations

import argparse
import json
import struct
import zlib
from collections.abc import Sequence
from html import escape
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from tflite_ref.errors import UsageError
from tflite_ref.micro import KERNELS, TARGETS, MicroEstimate, estimate
from tflite_ref.micro.estimate import PlanEntry
from tflite_ref.model.reader import load

HELP = "will it fit a microcontroller: TFLite Micro's op support and arena, from the file"
PLAN_ROWS = 12  # largest buffers shown in the terminal; --json / --plot have them all


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="path to a .tflite file")
    p.add_argument("--example", action="store_true", help="use the example model shipped with "
                   "tflite_ref")
    p.add_argument("--target", choices=tuple(TARGETS), default="host",
                   help="host: the tflite-micro Python wheel, 64-bit (default); cortex-m: 32-bit "
                        "Arm, arm-none-eabi-gcc")
    p.add_argument("--kernels", choices=KERNELS, default="reference",
                   help="TFLM's reference kernels (default) or CMSIS-NN's (cortex-m only; sizes "
                        "read from source, for cores with the DSP extension)")
    p.add_argument("--allocator", choices=("recording", "plain"), default=None,
                   help="the allocator to model: recording (what the wheel uses) or plain (a "
                        "firmware MicroInterpreter); default: the target's")
    p.add_argument("--no-search", action="store_true",
                   help="skip the search for an operator order with a smaller head")
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    p.add_argument("--plot", metavar="FILE", help="draw the memory plan as a timeline: .svg, "
                   ".html or .png")


def run(args: argparse.Namespace) -> int:
    if args.example:
        from tflite_ref.examples import example_path

        args.model = str(example_path())
    if not args.model:
        raise UsageError("give a MODEL path (or --example)")
    model = load(args.model)
    est = estimate(model, target=args.target, kernels=args.kernels, allocator=args.allocator,
                   search=not args.no_search)
    if args.plot:
        write_plot(est, Path(args.plot), title=Path(args.model).name)
    if args.json:
        print(json.dumps(est.to_json(), indent=2))
    else:
        render_micro(est, Console(highlight=False), model_name=Path(args.model).name)
        if args.plot:
            Console(stderr=True).print(f"plot written to {args.plot}")
    return 0 if est.supported else 1


# -- terminal --------------------------------------------------------------------------------------
def _b(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 10 * 1024:
        return f"{n:,} B"
    if n < 10 * 1024 * 1024:
        return f"{n:,} B ({n / 1024:.1f} KiB)"
    return f"{n:,} B ({n / 1024 / 1024:.2f} MiB)"


def _grid() -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    return t


def _verdict(est: MicroEstimate) -> RenderableType:
    if est.supported:
        return Text("supported: TFLite Micro allocates this model", style="bold green")
    if est.allocates:
        return Text("allocates, but Invoke is predicted to fail (see hazards)", style="bold yellow")
    return Text("NOT supported: TFLite Micro's AllocateTensors fails", style="bold red")


def _arena(est: MicroEstimate) -> RenderableType:
    a = est.arena
    if a is None:
        return Text("no arena: AllocateTensors fails before planning", style="dim")
    g = _grid()
    g.add_row("head", f"{_b(a.head)}  non-persistent: the memory plan of activations and "
                      "scratch buffers")
    g.add_row("tail", f"{_b(a.tail)}  persistent: structs, kernel data, variables")
    g.add_row("total", f"{_b(a.total)}  what TFLM reports (head + tail)")
    g.add_row("minimum", f"{_b(a.minimum)}  smallest tensor_arena that works")
    if a.dominates == "total":
        why = "total dominates: the arena needs nothing beyond what stays allocated"
    else:
        why = (f"minimum > total by {a.minimum - a.total:,} B: {a.minimum_reason} needs "
               "temporary room between head and tail")
    g.add_row("", Text(why, style="italic"))
    g.add_row("declare", Text(f"alignas(16) uint8_t tensor_arena[{a.minimum}];", style="cyan"))
    return g


def _problems(est: MicroEstimate) -> RenderableType | None:
    if not est.unsupported and not est.hazards:
        return None
    t = Table(title="why not", title_justify="left", expand=False)
    t.add_column("op", justify="right")
    t.add_column("opcode")
    t.add_column("v", justify="right")
    t.add_column("reason", overflow="fold")
    for u in est.unsupported:
        where = "-" if u.operator < 0 else (f"{u.subgraph}:{u.operator}" if u.subgraph
                                            else str(u.operator))
        t.add_row(where, u.opcode or "(model)", str(u.version or ""), u.reason)
    for h in est.hazards:
        where = f"{h.subgraph}:{h.operator}" if h.subgraph else str(h.operator)
        style = "red" if h.aborts else "yellow"
        t.add_row(where, h.opcode, "", Text(("crash: " if h.aborts else "invoke: ") + h.message,
                                            style=style))
    return t


def _operators(est: MicroEstimate) -> Table:
    t = Table(title="operators", title_justify="left")
    for col, just in (("op", "right"), ("opcode", "left"), ("v", "right"), ("MACs", "right"),
                      ("builtin", "right"), ("init", "right"), ("prepare", "right"),
                      ("scratch", "right"), ("TFLM", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    multi = any(o.subgraph for o in est.operators)
    for o in est.operators:
        t.add_row(f"{o.subgraph}:{o.index}" if multi else str(o.index), o.opcode, str(o.version),
                  "-" if o.macs is None else f"{o.macs:,}",
                  str(o.builtin_data or ""), "+".join(map(str, o.init)),
                  "+".join(map(str, o.persistent)), "+".join(map(str, o.scratch)),
                  Text("ok", style="green") if o.supported else Text("no", style="red"))
    return t


def _tail(est: MicroEstimate) -> RenderableType | None:
    if est.arena is None:
        return None
    groups: dict[str, int] = {}
    for item in est.arena.tail_items:
        key = _tail_group(item.what)
        groups[key] = groups.get(key, 0) + item.bytes
    t = Table(title="tail, by kind (alignment padding included)", title_justify="left")
    t.add_column("what")
    t.add_column("bytes", justify="right")
    for k, v in groups.items():
        t.add_row(k, f"{v:,}")
    return t


def _tail_group(what: str) -> str:
    for prefix, group in (("Recording", "allocator objects"), ("SingleArena", "allocator objects"),
                          ("GreedyMemoryPlanner", "allocator objects"),
                          ("MicroAllocator", "allocator objects"),
                          ("MicroBuiltinDataAllocator", "allocator objects"),
                          ("SubgraphAllocations", "allocator objects"),
                          ("MicroResource", "resource variables"),
                          ("resource variable", "resource variables"),
                          ("TfLiteEvalTensor", "TfLiteEvalTensor structs"),
                          ("NodeAndRegistration", "node and registration structs"),
                          ("ScratchBufferHandle", "scratch buffer handles"),
                          ("variable", "variable tensors"), ("input", "input/output tensors"),
                          ("output", "input/output tensors")):
        if what.startswith(prefix):
            return group
    if what.endswith("builtin data"):
        return "builtin data (op params)"
    if what.endswith("init"):
        return "kernel op data (init)"
    if what.endswith("prepare"):
        return "kernel buffers (prepare)"
    return what


def _plan(est: MicroEstimate) -> RenderableType | None:
    if not est.plan:
        return None
    t = Table(title=f"memory plan: {len(est.plan)} buffers, largest first (all with --json / "
                    "--plot)", title_justify="left")
    for col in ("buffer", "offset", "size", "ops"):
        t.add_column(col, justify="left" if col == "buffer" else "right")
    for p in sorted(est.plan, key=lambda p: (-p.size, p.offset))[:PLAN_ROWS]:
        span = "-" if p.first_op < -1 else (
            "input" if p.last_op < 0 else f"{max(p.first_op, 0)}..{p.last_op}")
        t.add_row(p.tensor[:48] + (" (offline)" if p.offline else ""), f"{p.offset:,}",
                  f"{p.size:,}", span)
    return t


def _order(est: MicroEstimate) -> RenderableType | None:
    o = est.order_search
    if o is None or est.arena is None:
        return None
    if o.saved <= 0:
        return Text(f"operator order: no valid order with a smaller head found "
                    f"({o.evaluated} tried)", style="dim")
    return Text(f"operator order: running subgraph 0 as {list(o.order)} would cut the head from "
                f"{est.arena.head:,} to {o.head:,} B (−{o.saved:,} B). TFLM runs operators in "
                "file order: reorder them in the model to get it.", style="magenta")


def _flash(est: MicroEstimate) -> RenderableType:
    f = est.flash
    g = _grid()
    g.add_row("flash", f"{_b(f.model_bytes)}  the model, read in place")
    consts = ", ".join(f"{k} {v:,}" for k, v in f.constants.items()) or "none"
    g.add_row("constants", f"{_b(f.constant_bytes)}  ({consts})")
    g.add_row("metadata", _b(f.metadata_bytes))
    g.add_row("structure", f"{_b(f.other_bytes)}  flatbuffer tables, names, quantization")
    g.add_row("MACs", "-" if est.macs is None else f"{est.macs:,}")
    return g


def render_micro(est: MicroEstimate, console: Console, model_name: str = "") -> None:
    head = _grid()
    head.add_row("model", model_name)
    head.add_row("target", f"{est.target}, {est.kernels} kernels, {est.allocator} allocator")
    head.add_row("tables", est.tflm_version)
    parts: list[RenderableType | None] = [head, _verdict(est), _problems(est), _arena(est),
                                          _order(est), _flash(est)]
    console.print(Panel(Group(*[p for p in parts if p is not None]), title="tflite-ref micro",
                        expand=False))
    for extra in (_operators(est), _tail(est), _plan(est)):
        if extra is not None:
            console.print(extra)
    console.print(Text("resolver", style="bold"))
    console.print(Syntax(est.resolver, "cpp", theme="ansi_dark", background_color="default"))
    for n in est.notes:
        console.print(Text(f"note: {n}", style="dim"))


# -- plots -----------------------------------------------------------------------------------------
_PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
            "#ff9da7", "#9c755f", "#bab0ac"]


def _steps(est: MicroEstimate) -> int:
    return max(len(est.schedule), 1)


def _span(p: PlanEntry, steps: int) -> tuple[int, int]:
    """Columns a buffer occupies: -1 (before the first op) .. steps-1."""
    if p.first_op < -1 or p.last_op < -1:
        return -1, steps - 1  # never marked by TFLM: lives "always" on top of others
    return p.first_op, max(p.first_op, p.last_op)


def plot_svg(est: MicroEstimate, title: str = "", width: int = 960, height: int = 540) -> str:
    """The plan as an SVG timeline: x = execution step, y = arena offset (head), one rectangle per
    buffer; hover a rectangle for its tensor, bytes and operator range."""
    head = est.arena.head if est.arena else 0
    steps = _steps(est)
    left, top, right, bottom = 70, 40, 20, 50
    pw, ph = width - left - right, height - top - bottom
    cols = steps + 1
    cw = pw / cols
    scale = ph / head if head else 0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14">{escape(title)} — TFLM head {head:,} B '
           f'({est.target}), {len(est.plan)} buffers</text>']
    for i, p in enumerate(est.plan):
        a, b = _span(p, steps)
        x = left + (a + 1) * cw
        w = (b - a + 1) * cw
        y = top + ph - (p.offset + p.size) * scale
        h = max(p.size * scale, 0.5)
        color = "#999999" if p.kind == "scratch" else _PALETTE[i % len(_PALETTE)]
        out.append(f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(w - 1, 1):.2f}" '
                   f'height="{h:.2f}" fill="{color}" fill-opacity="0.8" stroke="#333" '
                   f'stroke-width="0.3"><title>{escape(p.tensor)}: {p.bytes:,} B '
                   f'(reserved {p.size:,}) at offset {p.offset:,}, ops {a}..{b}</title></rect>')
    # axes
    out.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" '
               'stroke="black"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>')
    tick = max(1, cols // 20)
    for c in range(0, cols, tick):
        label = "in" if c == 0 else str(c - 1)
        out.append(f'<text x="{left + (c + 0.5) * cw:.1f}" y="{top + ph + 15}" '
                   f'text-anchor="middle">{label}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 10}" text-anchor="middle">'
               'execution step (operator)</text>')
    for k in range(5):
        v = head * k // 4
        y = top + ph - v * scale
        out.append(f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end">{v:,}</text>')
    out.append(f'<text x="15" y="{top + ph / 2}" transform="rotate(-90 15 {top + ph / 2})" '
               'text-anchor="middle">arena offset (bytes)</text>')
    out.append("</svg>")
    return "\n".join(out)


def plot_html(est: MicroEstimate, title: str = "") -> str:
    rows = "\n".join(
        f"<tr><td>{escape(p.tensor)}</td><td>{p.kind}</td><td>{p.offset:,}</td>"
        f"<td>{p.size:,}</td><td>{p.first_op}</td><td>{p.last_op}</td></tr>"
        for p in sorted(est.plan, key=lambda p: (p.offset, -p.size)))
    a = est.arena
    summary = ("not allocated" if a is None else
               f"head {a.head:,} B · tail {a.tail:,} B · total {a.total:,} B · "
               f"minimum arena {a.minimum:,} B")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:1.5em}td,th{padding:2px 8px;"
            "text-align:right}td:first-child{text-align:left}</style></head><body>"
            f"<h2>{escape(title)} — TFLite Micro memory plan ({escape(est.target)})</h2>"
            f"<p>{summary} · {escape(est.tflm_version)}</p>{plot_svg(est, title)}"
            "<table><tr><th>buffer</th><th>kind</th><th>offset</th><th>size</th>"
            f"<th>first op</th><th>last op</th></tr>{rows}</table></body></html>")


def plot_png(est: MicroEstimate, width: int = 960, height: int = 540) -> bytes:
    """The same timeline rasterised (no text: use .svg or .html for labels), as a PNG written
    with zlib alone."""
    bg = (255, 255, 255)
    pixels = [bytearray(bg * width) for _ in range(height)]
    head = est.arena.head if est.arena else 0
    steps = _steps(est)
    left, top, right, bottom = 40, 20, 20, 30
    pw, ph = width - left - right, height - top - bottom
    cw = pw / (steps + 1)
    scale = ph / head if head else 0

    def fill(x0: float, y0: float, x1: float, y1: float, rgb: Sequence[int]) -> None:
        xa, xb = max(int(x0), 0), min(int(x1), width)
        ya, yb = max(int(y0), 0), min(max(int(y1), int(y0) + 1), height)
        for y in range(ya, yb):
            row = pixels[y]
            row[xa * 3:xb * 3] = bytes(rgb) * (xb - xa)

    for i, p in enumerate(est.plan):
        a, b = _span(p, steps)
        color = "#999999" if p.kind == "scratch" else _PALETTE[i % len(_PALETTE)]
        rgb = tuple(int(color[k:k + 2], 16) for k in (1, 3, 5))
        x0 = left + (a + 1) * cw
        x1 = left + (b + 2) * cw - 1
        y1 = top + ph - p.offset * scale
        y0 = top + ph - (p.offset + p.size) * scale
        fill(x0, y0, x1, y1, (40, 40, 40))
        fill(x0 + 1, y0 + 1, x1 - 1, y1 - 1, rgb)
    fill(left, top + ph, left + pw, top + ph + 1, (0, 0, 0))
    fill(left - 1, top, left, top + ph, (0, 0, 0))
    raw = b"".join(b"\x00" + bytes(r) for r in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0,
                                                             0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def write_plot(est: MicroEstimate, path: Path, title: str = "") -> None:
    suffix = path.suffix.lower()
    if suffix == ".svg":
        path.write_text(plot_svg(est, title), encoding="utf-8")
    elif suffix in (".html", ".htm"):
        path.write_text(plot_html(est, title), encoding="utf-8")
    elif suffix == ".png":
        path.write_bytes(plot_png(est))
    else:
        raise UsageError(f"--plot {path}: use a .svg, .html or .png file name")


__all__ = [
    "HELP",
    "add_arguments",
    "plot_html",
    "plot_png",
    "plot_svg",
    "render_micro",
    "run",
    "write_plot",
]

