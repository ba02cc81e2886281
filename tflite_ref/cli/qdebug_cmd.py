"""Where does the int8 model lose accuracy? Per-layer quantization error, from the file alone.

Runs the quantized model beside a real-valued reference -- the float model given with
``--float``, or else the float shadow of the quantized graph (the same operators on dequantized
weights and float activations) -- and measures, for every layer, the *accumulated* error (the
integer chain against the reference chain) and the *local* error (the layer alone: the reference
operator run on this layer's own inputs, dequantized). Culprits are ranked by local error (where
error is introduced) and by amplification (where inherited error grows); their tensor names are
what the TF converter takes in ``denylisted_nodes`` to keep those layers float.

How the figures line up with TensorFlow's QuantizationDebugger (its five ``layer_statistics``
are our first five metrics): its default, layer-by-layer debug model measures our *local* error
with ``--float``; built with ``enable_whole_model_verify=True`` it measures our *accumulated*
error with ``--float``.  Two exceptions in its layer mode: a layer reading the model's float
input through QUANTIZE is compared with the raw input (our accumulated figure there), and
same-scale ops such as AVERAGE_POOL_2D get a quantized "float" reference (it reports ~0).

Inputs: ``--inputs`` an .npz (keyed by input name or arr_0, arr_1, ...) or .npy of float
samples (a leading axis of samples is allowed), ``--inputs-dir`` a folder of .npy/.npz files or
images (images need Pillow), or ``--samples N`` random samples over each input's range.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from tflite_ref.cli.render import short_name
from tflite_ref.errors import UsageError
from tflite_ref.qdebug import METRIC_NAMES, ErrorMetrics, LayerReport, QuantReport, qdebug

HELP = "where does int8 lose accuracy: per-layer quantization error (local and accumulated)"
ROUNDING_NOISE = 1 / math.sqrt(12)  # rmse/scale of plain rounding


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the quantized .tflite model")
    p.add_argument("--float", dest="float_model", metavar="FLOAT_MODEL",
                   help="the float model it came from (default: compare with the float shadow "
                        "of the quantized graph)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--inputs", metavar="FILE", help="float samples: .npz (keyed by input name "
                     "or arr_0, arr_1, ...), .npy, or an image")
    src.add_argument("--inputs-dir", metavar="DIR", help="a folder of .npy/.npz files or images, "
                     "one sample each")
    p.add_argument("--samples", type=int, metavar="N", help="random samples to draw (default 8), "
                   "or at most N of the given ones")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the random samples")
    p.add_argument("--emulate", choices=("tflite", "tflm"), default="tflite",
                   help="whose integer arithmetic to run: LiteRT's reference kernels (default) "
                        "or TFLite Micro's")
    p.add_argument("--top", type=int, default=5, metavar="K", help="culprits to name (default 5)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--csv", metavar="FILE", help="write one row per layer to FILE")
    p.add_argument("--plot", metavar="FILE", help="per-layer SQNR, local vs accumulated: .html "
                   "(self-contained), .svg, or .png (needs matplotlib)")


def run(args: argparse.Namespace) -> int:
    if args.top < 0:
        raise UsageError("--top must be 0 or more")
    if args.plot:
        _check_plot_path(Path(args.plot))
    inputs = args.inputs if args.inputs is not None else args.inputs_dir
    if args.inputs_dir is not None and not Path(args.inputs_dir).is_dir():
        raise UsageError(f"--inputs-dir {args.inputs_dir}: not a directory")
    err = Console(stderr=True)
    kwargs: dict[str, Any] = {"inputs": inputs, "samples": args.samples, "seed": args.seed,
                              "emulate": args.emulate, "top": args.top}
    if err.is_terminal and not args.json:
        with Progress(TextColumn("measuring"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("samples"), TimeElapsedColumn(), console=err,
                      transient=True) as progress:
            task = progress.add_task("samples", total=None)
            report = qdebug(args.model, args.float_model, **kwargs,
                            progress=lambda done, total: progress.update(
                                task, completed=done, total=total))
    else:
        report = qdebug(args.model, args.float_model, **kwargs)
    if args.csv:
        write_csv(report, Path(args.csv))
    if args.plot:
        write_plot(report, Path(args.plot))
    if args.json:
        print(json.dumps(report.to_json(), indent=1, allow_nan=False))
    else:
        render_qdebug(report, Console(highlight=False))
        for what, path in (("CSV", args.csv), ("plot", args.plot)):
            if path:
                err.print(f"{what} written to {path}")
    return 0


# -- terminal --------------------------------------------------------------------------------------
def _db(v: float | None) -> str:
    if v is None or math.isnan(v):
        return "-"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{v:.1f}"


def _num(v: float | None, fmt: str = ".2f") -> str:
    return "-" if v is None or math.isnan(v) else format(v, fmt)


def _pct(v: float | None) -> str:
    if v is None or math.isnan(v):
        return "-"
    return "0" if v == 0 else f"{100 * v:.1f}%" if v >= 0.001 else "<0.1%"


def _scale(lr: LayerReport) -> str:
    if lr.scale is None:
        return "float"
    if isinstance(lr.scale, tuple):
        return f"{len(lr.scale)}ch"
    return f"{lr.scale:.3g} {lr.zero_point}"


def _tensor_label(name: str, width: int) -> str:
    """A tensor name for a narrow column: the first of the converter's fused names, and of it
    the trailing scopes that fit (``…/activation_3/Relu``), where layers differ."""
    first = name.split(";", 1)[0]
    if len(first) <= width:
        return first
    parts = first.split("/")
    for k in range(1, len(parts)):
        tail = "…/" + "/".join(parts[k:])
        if len(tail) <= width:
            return tail
    return short_name(first, width)


def _header(r: QuantReport) -> RenderableType:
    g = Table.grid(padding=(0, 2))
    g.add_column(style="bold")
    g.add_column(overflow="fold")
    g.add_row("quantized", r.quantized)
    # The label, not the path, says what the reference is: a long path folds across lines.
    if r.float_model:
        g.add_row("float model", r.float_model)
    else:
        g.add_row("reference",
                  "float shadow: the same graph on dequantized weights and float activations")
    if r.matched_tensors is not None:
        g.add_row("matched", f"{r.matched_tensors} tensors"
                  + (f", {len(r.unmatched_tensors)} without counterpart"
                     if r.unmatched_tensors else ""))
    g.add_row("samples", f"{r.samples}: {r.inputs}")
    g.add_row("arithmetic", "TFLite Micro" if r.emulate == "tflm" else "LiteRT reference kernels")
    for o in r.outputs:
        m = o.metrics
        text = Text(f"SQNR {_db(m.sqnr_db if m else None)} dB")
        if m is not None:
            text.append(f", cosine {m.cosine:.4f}")
        if o.top1_agreement is not None:
            style = "green" if o.top1_agreement == 1 else "yellow"
            text.append(f", top-1 agreement {100 * o.top1_agreement:.0f}%", style=style)
        g.add_row(f"output {short_name(o.tensor, 24)}", text)
    return g


def _layers_table(r: QuantReport, width: int) -> Table:
    local_bad = {c.tensor_index for c in r.culprits_local}
    amp_bad = {c.tensor_index for c in r.culprits_amplification}
    t = Table(title="layers in model order: SQNR in dB and RMS error in units of the scale (r/s), "
                    "local (the layer alone) and accumulated (the int8 chain so far)",
              title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
              padding=(0, 0, 0, 1), expand=True)
    for col, just in (("op", "right"), ("opcode", "left"), ("scale zp", "right"),
                      ("local", "right"), ("r/s", "right"), ("accum", "right"),
                      ("r/s", "right"), ("sat", "right"), ("amp", "right")):
        t.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    # The numbers keep their widths; the tensor name gets what is left (ratio), shortened in the
    # middle where TF scopes repeat rather than cut at the end.
    name_width = max(12, width - 80)
    t.add_column("tensor", no_wrap=True, overflow="ellipsis", ratio=1)
    for lr in r.layers:
        loc, acc = lr.local, lr.accumulated
        local_style = "bold red" if lr.tensor_index in local_bad else ""
        amp_style = "bold yellow" if lr.tensor_index in amp_bad else ""
        t.add_row(
            str(lr.operator), lr.opcode, _scale(lr),
            Text(_db(loc.sqnr_db if loc else None), style=local_style),
            Text(_num(loc.rmse_over_scale if loc else None), style=local_style),
            _db(acc.sqnr_db if acc else None),
            _num(acc.rmse_over_scale if acc else None),
            _pct(acc.saturated_fraction if acc else None),
            Text(_num(lr.amplification_db, "+.1f"), style=amp_style),
            _tensor_label(lr.tensor, name_width))
    return t


def _culprits(r: QuantReport) -> RenderableType:
    parts: list[RenderableType] = []
    if r.culprits_local:
        t = Table(title="where error is introduced (lowest local SQNR)", title_justify="left",
                  show_edge=False)
        for col in ("#", "op", "opcode", "local dB", "rmse/s", "sat", "tensor"):
            t.add_column(col, overflow="fold" if col == "tensor" else "ellipsis",
                         no_wrap=col != "tensor")
        for k, c in enumerate(r.culprits_local, 1):
            lr = r.layer(c.tensor_index)
            loc = lr.local
            t.add_row(str(k), str(c.operator), c.opcode, _db(c.value),
                      _num(loc.rmse_over_scale if loc else None),
                      _pct(loc.saturated_fraction if loc else None), c.tensor)
        parts.append(t)
    else:
        parts.append(Text("no layer adds error of its own", style="green"))
    if r.culprits_amplification:
        t = Table(title="where inherited error grows (amplification)", title_justify="left",
                  show_edge=False)
        for col in ("#", "op", "opcode", "amp dB", "tensor"):
            t.add_column(col, overflow="fold" if col == "tensor" else "ellipsis",
                         no_wrap=col != "tensor")
        for k, c in enumerate(r.culprits_amplification, 1):
            t.add_row(str(k), str(c.operator), c.opcode, f"{c.value:+.1f}", c.tensor)
        parts.append(t)
    if r.denylisted_nodes:
        parts.append(Text("to keep the local culprits float when converting:", style="bold"))
        names = ", ".join(json.dumps(n) for n in r.denylisted_nodes)
        parts.append(Text(f"tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=["
                          f"{names}])", style="cyan"))
    return Panel(Group(*parts), title="culprits", title_align="left", expand=False)


def render_qdebug(r: QuantReport, console: Console) -> None:
    console.print(Panel(_header(r), title="tflite-ref qdebug", title_align="left", expand=False))
    console.print(_layers_table(r, console.width))
    console.print(Text("SQNR: higher is better (∞: exact). r/s 0.29 = rounding alone. sat: share "
                       "clipped at the integer limits. amp (dB): how much more the layer's error "
                       "grew than inherited + local error would.", style="dim"))
    console.print(_culprits(r))
    for w in r.warnings:
        console.print(Text(f"warning: {w}", style="yellow"))
    for lr in r.layers:
        for n in lr.notes:
            console.print(Text(f"note: op {lr.operator} {short_name(lr.tensor, 40)}: {n}",
                               style="dim"))


# -- CSV -------------------------------------------------------------------------------------------
def csv_rows(r: QuantReport) -> list[dict[str, Any]]:
    rows = []
    for lr in r.layers:
        d = lr.as_dict()
        row: dict[str, Any] = {k: d[k] for k in ("tensor_index", "tensor", "operator", "opcode",
                                                  "dtype", "float_tensor", "amplification_db")}
        row["scale"] = (" ".join(map(str, d["scale"])) if isinstance(d["scale"], list)
                        else d["scale"])
        row["zero_point"] = (" ".join(map(str, d["zero_point"]))
                             if isinstance(d["zero_point"], list) else d["zero_point"])
        for which in ("local", "accumulated"):
            for m in METRIC_NAMES:
                row[f"{which}_{m}"] = None if d[which] is None else d[which][m]
        rows.append(row)
    return rows


def write_csv(r: QuantReport, path: Path) -> None:
    rows = csv_rows(r)
    fields = ["tensor_index", "tensor", "operator", "opcode", "dtype", "scale", "zero_point",
              "float_tensor", "amplification_db",
              *[f"{w}_{m}" for w in ("local", "accumulated") for m in METRIC_NAMES]]
    try:
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fields)
            w.writeheader()
            w.writerows(rows)
    except OSError as exc:
        raise UsageError(f"--csv {path}: {exc.strerror}") from None


# -- plots -----------------------------------------------------------------------------------------
_LOCAL, _ACC = "#e15759", "#4e79a7"


def _check_plot_path(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in (".svg", ".html", ".htm", ".png"):
        raise UsageError(f"--plot {path}: use a .html, .svg or .png file name")
    if suffix == ".png":
        try:
            import matplotlib  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
        except ImportError:
            raise UsageError("--plot .png needs matplotlib (pip install 'tflite-ref[plot]'); "
                             ".svg and .html need nothing") from None


def _bar_value(m: ErrorMetrics | None, cap: float) -> float | None:
    if m is None or math.isnan(m.sqnr_db):
        return None
    return cap if m.sqnr_db > cap else max(m.sqnr_db, 0.0)


def _plot_cap(r: QuantReport) -> float:
    finite = [m.sqnr_db for lr in r.layers for m in (lr.local, lr.accumulated)
              if m is not None and math.isfinite(m.sqnr_db)]
    top = max(finite, default=60.0)
    return float(math.ceil(min(max(top, 10.0), 120.0) / 10.0) * 10)


def plot_svg(r: QuantReport, title: str = "", height: int = 420) -> str:
    """Grouped bars, one pair per layer: local (red) and accumulated (blue) SQNR in dB; lower is
    worse, culprits' labels in red, infinite (exact) bars drawn to the top and marked ∞."""
    n = max(len(r.layers), 1)
    left, right, top, bottom = 60, 20, 40, 110
    slot = max(14.0, min(40.0, 900.0 / n))
    width = int(left + right + slot * n)
    ph = height - top - bottom
    cap = _plot_cap(r)
    culprits = {c.tensor_index for c in r.culprits_local}

    def y(v: float) -> float:
        return top + ph - ph * v / cap

    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'),
           f'<rect width="{width}" height="{height}" fill="white"/>',
           (f'<text x="{left}" y="20" font-size="14">{escape(title)} — SQNR per layer (dB, '
            'higher is better)</text>'),
           (f'<rect x="{width - 230}" y="8" width="10" height="10" fill="{_LOCAL}"/>'
            f'<text x="{width - 216}" y="17">local</text>'),
           (f'<rect x="{width - 170}" y="8" width="10" height="10" fill="{_ACC}"/>'
            f'<text x="{width - 156}" y="17">accumulated</text>')]
    for k in range(0, int(cap) + 1, 10 if cap <= 60 else 20):
        out.append(f'<line x1="{left}" y1="{y(k):.1f}" x2="{width - right}" y2="{y(k):.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(k) + 4:.1f}" text-anchor="end">{k}</text>')
    bw = slot * 0.38
    for i, lr in enumerate(r.layers):
        x0 = left + i * slot + slot * 0.1
        for j, (m, color, what) in enumerate(((lr.local, _LOCAL, "local"),
                                              (lr.accumulated, _ACC, "accumulated"))):
            v = _bar_value(m, cap)
            if v is None or m is None:
                continue
            x = x0 + j * bw
            label = "∞" if math.isinf(m.sqnr_db) else f"{m.sqnr_db:.1f}"
            out.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bw - 1:.1f}" '
                       f'height="{top + ph - y(v):.1f}" fill="{color}"><title>op {lr.operator} '
                       f'{lr.opcode} {escape(lr.tensor)}: {what} SQNR {label} dB, rmse/scale '
                       f'{_num(m.rmse_over_scale)}</title></rect>')
            if math.isinf(m.sqnr_db) and m.sqnr_db > 0:
                out.append(f'<text x="{x + bw / 2:.1f}" y="{top - 3}" text-anchor="middle" '
                           'font-size="9">∞</text>')
        cx = left + (i + 0.5) * slot
        color = "#c00" if lr.tensor_index in culprits else "#333"
        out.append(f'<text x="{cx:.1f}" y="{top + ph + 10}" text-anchor="end" fill="{color}" '
                   f'transform="rotate(-60 {cx:.1f} {top + ph + 10})">{lr.operator} '
                   f'{escape(lr.opcode[:16])}</text>')
    out.append(f'<line x1="{left}" y1="{top + ph}" x2="{width - right}" y2="{top + ph}" '
               'stroke="black"/>')
    out.append(f'<text x="14" y="{top + ph / 2}" transform="rotate(-90 14 {top + ph / 2})" '
               'text-anchor="middle">SQNR (dB)</text>')
    out.append("</svg>")
    return "\n".join(out)


def plot_html(r: QuantReport, title: str = "") -> str:
    def cell(v: str, cls: str = "") -> str:
        return f"<td class='{cls}'>{escape(v)}</td>"

    local_bad = {c.tensor_index for c in r.culprits_local}
    rows = []
    for lr in r.layers:
        loc, acc = lr.local, lr.accumulated
        cls = "bad" if lr.tensor_index in local_bad else ""
        rows.append("<tr>" + "".join([
            cell(str(lr.operator)), cell(lr.opcode), f"<td class='name'>{escape(lr.tensor)}</td>",
            cell(_scale(lr)), cell(_db(loc.sqnr_db if loc else None), cls),
            cell(_num(loc.rmse_over_scale if loc else None), cls),
            cell(_db(acc.sqnr_db if acc else None)),
            cell(_num(acc.rmse_over_scale if acc else None)),
            cell(_num(acc.cosine if acc else None, ".4f")),
            cell(_pct(acc.saturated_fraction if acc else None)),
            cell(_num(lr.amplification_db, "+.1f"))]) + "</tr>")
    outs = "; ".join(
        f"{escape(o.tensor)}: SQNR {_db(o.metrics.sqnr_db if o.metrics else None)} dB"
        + (f", top-1 agreement {100 * o.top1_agreement:.0f}%" if o.top1_agreement is not None
           else "") for o in r.outputs)
    deny = escape(json.dumps(list(r.denylisted_nodes)))
    ref = (f"float model {escape(r.float_model)}" if r.float_model
           else "float shadow (dequantized weights, float activations)")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>qdebug {escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #eee}"
        "td.name{text-align:left;max-width:40em;overflow-wrap:anywhere}"
        "td.bad{color:#c00;font-weight:bold}code{background:#f4f4f4;padding:2px}"
        "</style></head><body>"
        f"<h2>{escape(title)} — where int8 loses accuracy</h2>"
        f"<p>reference: {ref} · {r.samples} samples ({escape(r.inputs)}) · {outs}</p>"
        f"{plot_svg(r, title)}"
        f"<p>keep the local culprits float: <code>QuantizationDebugOptions(denylisted_nodes="
        f"{deny})</code></p>"
        "<table><tr><th>op</th><th>opcode</th><th>tensor</th><th>scale zp</th>"
        "<th>local dB</th><th>local rmse/s</th><th>accum dB</th><th>accum rmse/s</th>"
        "<th>cosine</th><th>saturated</th><th>amp dB</th></tr>"
        + "\n".join(rows) + "</table></body></html>")


def plot_png(r: QuantReport, path: Path, title: str = "") -> None:
    import matplotlib  # type: ignore[import-not-found, unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    cap = _plot_cap(r)
    n = len(r.layers)
    xs = list(range(n))
    loc = [_bar_value(lr.local, cap) or 0.0 for lr in r.layers]
    acc = [_bar_value(lr.accumulated, cap) or 0.0 for lr in r.layers]
    fig, ax = plt.subplots(figsize=(max(8.0, 0.3 * n + 2), 4.5))
    ax.bar([x - 0.2 for x in xs], loc, 0.4, color=_LOCAL, label="local")
    ax.bar([x + 0.2 for x in xs], acc, 0.4, color=_ACC, label="accumulated")
    for x, lr in zip(xs, r.layers):  # exact layers are drawn to the top: say so
        for dx, m in ((-0.2, lr.local), (0.2, lr.accumulated)):
            if m is not None and math.isinf(m.sqnr_db) and m.sqnr_db > 0:
                ax.text(x + dx, cap, "∞", ha="center", va="bottom", fontsize=8)
    culprits = {c.tensor_index for c in r.culprits_local}
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{lr.operator} {lr.opcode[:16]}" for lr in r.layers], rotation=60,
                       ha="right", fontsize=7)
    for tick, lr in zip(ax.get_xticklabels(), r.layers):
        if lr.tensor_index in culprits:
            tick.set_color("#c00")
    ax.set_ylabel("SQNR (dB), higher is better")
    ax.set_ylim(0, cap)
    ax.set_title(f"{title} — SQNR per layer")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_plot(r: QuantReport, path: Path) -> None:
    _check_plot_path(path)
    title = Path(r.quantized).name
    suffix = path.suffix.lower()
    try:
        if suffix == ".svg":
            path.write_text(plot_svg(r, title), encoding="utf-8")
        elif suffix in (".html", ".htm"):
            path.write_text(plot_html(r, title), encoding="utf-8")
        else:
            plot_png(r, path, title)
    except OSError as exc:
        raise UsageError(f"--plot {path}: {exc.strerror}") from None


__all__: Sequence[str] = ["HELP", "add_arguments", "csv_rows", "plot_html", "plot_svg",
                          "render_qdebug", "run", "write_csv", "write_plot"]
