"""Rich rendering: shared formatting helpers and the ``inspect`` view.

Rendering never computes: everything drawn here is a field of a report dataclass (for
``inspect``: :class:`tflite_ref.inspect.InspectReport`). The helpers only format numbers, shapes
and names so that every subcommand writes them the same way.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from typing import Any, Iterable, Sequence

from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tflite_ref.inspect import (
    InspectReport,
    OperatorInfo,
    QuantInfo,
    SubgraphInfo,
    TensorInfo,
)

# Longest tensor name shown before it is shortened in the middle; the table folds the rest.
NAME_WIDTH = 48
MAX_WARNINGS = 20
MAX_SIZE_ROWS = 8
MAX_OP_WIDTH = 40  # narrow operator tables: widest op/options column
WIDE = 140  # console columns from which the operator table gets one column per aspect

_SHORT_DTYPES = {
    "FLOAT32": "f32", "FLOAT16": "f16", "FLOAT64": "f64", "BFLOAT16": "bf16", "INT4": "i4",
    "INT8": "i8", "INT16": "i16", "INT32": "i32", "INT64": "i64", "UINT8": "u8", "UINT16": "u16",
    "UINT32": "u32", "UINT64": "u64", "BOOL": "bool", "STRING": "str", "COMPLEX64": "c64",
    "COMPLEX128": "c128", "RESOURCE": "res", "VARIANT": "var",
}


# ------------------------------------------------------------------------------------------------
# Formatting helpers (shared by every subcommand)
# ------------------------------------------------------------------------------------------------
def short_dtype(name: str) -> str:
    """``i8`` for ``INT8``; unknown names (``TYPE_42``) pass through lower-cased."""
    return _SHORT_DTYPES.get(name, name.lower())


def fmt_shape(shape: Sequence[int] | None) -> str:
    """``1x16x16x1``; ``scalar`` for rank 0; ``?`` stands for a dynamic (-1) dimension."""
    if shape is None:
        return "-"
    if len(shape) == 0:
        return "scalar"
    return "x".join("?" if d < 0 else str(d) for d in shape)


def fmt_bytes(n: int) -> str:
    """``420 B``, ``12.3 KiB``, ``1.01 MiB``: binary units, three significant digits."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            if unit == "B":
                return f"{n} B"
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:.0f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def fmt_count(n: int) -> str:
    """``2.66M``, ``416k``, ``288``: for MACs and element counts."""
    for scale, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return str(n)


def fmt_share(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def fmt_number(x: float | None) -> str:
    """Scales and zero points: short, exact enough to recognise (``0.00392``, ``1.2e-05``)."""
    if x is None:
        return "nan"
    return f"{x:.3g}"


def short_name(name: str, width: int = NAME_WIDTH) -> str:
    """A tensor name that fits: converter-fused names (``a/Conv2D;a/BiasAdd;...``) keep their
    first part, and what is still too long loses its middle, where TF scopes repeat."""
    if ";" in name:
        name = name.split(";", 1)[0] + ";…"
    if len(name) <= width:
        return name
    keep = width - 1
    head = keep // 2
    return name[:head] + "…" + name[len(name) - (keep - head):]


def fmt_value(value: Any) -> str:
    """An option value: lists of ints as ``2x2``, bools lower-case, floats short."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            if len(value) == 2:
                return "x".join(str(v) for v in value)
            return f"[{', '.join(map(str, value))}]"
        return "[" + ", ".join(fmt_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def fmt_options(options: dict[str, Any]) -> str:
    """``stride=2x2 SAME RELU``: enum-valued padding and activation speak for themselves."""
    parts = []
    for key, value in options.items():
        if key in ("padding", "activation"):
            parts.append(str(value))
        else:
            parts.append(f"{key}={fmt_value(value)}")
    return " ".join(parts)


def fmt_quant(q: QuantInfo | None) -> str:
    """``s=0.0245 zp=-128``; per-channel ``64ch@3 s=0.0012..0.0041 zp=0``."""
    if q is None or not q.scale:
        if q is not None and (q.min or q.max):
            return f"min/max only ({len(q.min)})"
        return ""
    if not q.per_channel:
        zp = q.zero_point[0] if q.zero_point else 0
        return f"s={fmt_number(q.scale[0])} zp={zp}"
    finite = [s for s in q.scale if s is not None]
    lo, hi = (min(finite), max(finite)) if finite else (None, None)
    zps = sorted(set(q.zero_point))
    zps_text = str(zps[0]) if len(zps) == 1 else f"{zps[0]}..{zps[-1]}"
    return (f"{len(q.scale)}ch@{q.quantized_dimension} s={fmt_number(lo)}..{fmt_number(hi)} "
            f"zp={zps_text}")


def _grouped(items: Iterable[str]) -> str:
    """``20x28 i8 ×4, 20 i32 ×4``: repeated entries (LSTM gate weights) counted, order kept."""
    counts = Counter(items)
    seen: list[str] = []
    for item in counts:
        seen.append(item if counts[item] == 1 else f"{item} ×{counts[item]}")
    return ", ".join(seen)


# ------------------------------------------------------------------------------------------------
# inspect
# ------------------------------------------------------------------------------------------------
def _row(table: Table, *cells: RenderableType) -> None:
    """Add a row whose plain strings are literal text: names from a model file (``[ethos-u]``,
    ``x[0]``) must never be read as rich markup."""
    table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells))


def _kv_grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def _header(report: InspectReport) -> RenderableType:
    grid = _kv_grid()
    _row(grid, "file", report.file or "(bytes)")
    _row(grid, "size", f"{fmt_bytes(report.size_bytes)} ({report.size_bytes:,} bytes)")
    _row(grid, "schema version", str(report.version))
    _row(grid, "description", repr(report.description) if report.description else "-")
    _row(grid, "min runtime", report.min_runtime_version or "-")
    _row(grid, "subgraphs", str(report.subgraph_count))
    for s in report.signatures:
        ins = ", ".join(f"{k}→t{v}" for k, v in s.inputs.items())
        outs = ", ".join(f"{k}→t{v}" for k, v in s.outputs.items())
        _row(grid, "signature", f"{s.key!r} (subgraph {s.subgraph_index}): inputs {ins or '-'}; "
                                  f"outputs {outs or '-'}")
    if not report.signatures:
        _row(grid, "signatures", "-")
    conv = report.conversion_metadata
    if conv:
        env = conv.get("environment") or {}
        opts = conv.get("options") or {}
        parts = []
        if env.get("tensorflow_version"):
            parts.append(f"TensorFlow {env['tensorflow_version']}")
        if env.get("model_type") not in (None, "NONE"):
            parts.append(f"from {env['model_type']}")
        modes = opts.get("model_optimization_modes") or []
        if modes:
            parts.append("optimizations " + ", ".join(map(str, modes)))
        if opts.get("allow_custom_ops"):
            parts.append("custom ops allowed")
        if opts.get("enable_select_tf_ops") or opts.get("force_select_tf_ops"):
            parts.append("select TF ops")
        _row(grid, "conversion", ", ".join(parts) or "-")
    for m in report.metadata:
        if m.name in ("min_runtime_version", "CONVERSION_METADATA"):
            continue
        if m.decoded:
            value = fmt_value(m.value)
        else:
            v = m.value
            value = repr(v["utf8"]) if "utf8" in v else v.get("hex", "")
            value += "…" if v.get("truncated") else ""
        if len(value) > 120:
            value = value[:119] + "…"
        _row(grid, "metadata", f"{m.name!r} = {value} ({fmt_bytes(m.bytes)})")
    q = report.quantization
    _row(grid, "quantization", q.description)
    _row(grid, "MACs", f"{fmt_count(report.macs)} ({report.macs:,}) in conv, fully-connected and "
                       "matmul operators")
    return Panel(grid, title="[bold]tflite model[/]", title_align="left", box=box.ROUNDED)


def _tensor_label(sg: SubgraphInfo, idx: int) -> str:
    if idx < 0:
        return "-"
    t = sg.tensors[idx]
    return f"{fmt_shape(t.shape)}"


def _operators_table(sg: SubgraphInfo, wide: bool) -> Table:
    """One row per operator, in execution order.

    Wide consoles get a column per aspect; narrow ones (80 columns) put the options under the
    op name and the dtypes beside the shapes, so that no column is squeezed to nothing.
    """
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False, show_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    # Op names are single words, and rich breaks a word only when the table cannot fit
    # otherwise, so they stay whole. (No min_width: rich 13-15 then crops the last column.)
    # Narrow tables show a custom op by its code, marked "custom", to spare the "CUSTOM:" prefix.
    names = [op.opcode if wide else _custom_code(op) or op.opcode for op in sg.operators]
    tags = [f"custom v{op.version}" if _custom_code(op) else f"v{op.version}"
            for op in sg.operators]
    if wide:
        table.add_column("op", overflow="fold", style="bold")
        table.add_column("v", justify="right", no_wrap=True)
        table.add_column("in → out", overflow="fold")
        table.add_column("dtype", overflow="fold")
        table.add_column("weights", overflow="fold", style="dim")
        table.add_column("options", overflow="fold")
    else:
        # A fixed width: rich never narrows such a column, and otherwise narrows the widest
        # one first, which breaks long op names while other columns could have wrapped.
        longest = max([len(n) + 1 + len(t) for n, t in zip(names, tags)], default=2)
        op_width = min(max(longest, 28), MAX_OP_WIDTH)  # 28: "stride=2x2 filter=2x2 VALID"
        table.add_column("op / options", overflow="fold", width=op_width)
        table.add_column("in → out", overflow="fold")
        table.add_column("weights", overflow="fold", style="dim")
    has_macs = any(op.macs for op in sg.operators)
    if has_macs:  # an empty column would only take width from the others
        table.add_column("MACs", justify="right", no_wrap=True)
    for op, name, tag in zip(sg.operators, names, tags):
        macs = [fmt_count(op.macs) if op.macs else ""] if has_macs else []
        if wide:
            _row(table, str(op.index), op.opcode, str(op.version), _in_out(sg, op, False),
                 _dtypes(sg, op), _weights(sg, op), _op_options(op), *macs)
        else:
            cell = Text(name, style="bold")
            cell.append(("\n" if len(name) + 1 + len(tag) > op_width else " ") + tag, style="dim")
            options = _op_options(op)
            if options:
                cell.append("\n" + textwrap.fill(options, width=op_width))
            _row(table, str(op.index), cell, _in_out(sg, op, True), _weights(sg, op), *macs)
    return table


def _custom_code(op: OperatorInfo) -> str | None:
    return op.opcode.split(":", 1)[1] if op.opcode.startswith("CUSTOM:") else None


def _activation_inputs(sg: SubgraphInfo, op: OperatorInfo) -> list[TensorInfo]:
    return [sg.tensors[i] for i in op.inputs if i >= 0 and not sg.tensors[i].is_constant]


def _in_out(sg: SubgraphInfo, op: OperatorInfo, with_dtype: bool) -> str:
    def label(t: TensorInfo) -> str:
        return f"{fmt_shape(t.shape)} {short_dtype(t.dtype)}" if with_dtype else fmt_shape(t.shape)

    ins = ", ".join(label(t) for t in _activation_inputs(sg, op)) or "-"
    outs = ", ".join(label(sg.tensors[i]) for i in op.outputs) or "-"
    return f"{ins} → {outs}"


def _dtypes(sg: SubgraphInfo, op: OperatorInfo) -> str:
    ins = dict.fromkeys(short_dtype(t.dtype) for t in _activation_inputs(sg, op))
    outs = dict.fromkeys(short_dtype(sg.tensors[i].dtype) for i in op.outputs)
    return f"{','.join(ins) or '-'} → {','.join(outs) or '-'}"


def _weights(sg: SubgraphInfo, op: OperatorInfo) -> str:
    consts = [sg.tensors[i] for i in op.inputs if i >= 0 and sg.tensors[i].is_constant]
    # ``i8[64x3x3x1]`` has no space inside, so a narrow column breaks between tensors only.
    return _grouped(f"{short_dtype(t.dtype)}[{fmt_shape(t.shape) if t.shape else ''}]"
                    for t in consts)


def _op_options(op: OperatorInfo) -> str:
    text = fmt_options(op.key_options)
    if op.custom_options is not None:
        co = op.custom_options
        if "decoded" in co:
            extra = fmt_value(co["decoded"]) if co["decoded"] not in ({}, [], None) else ""
        elif co["bytes"]:
            extra = f"{co['bytes']} B of custom options"
        else:
            extra = ""
        if len(extra) > 80:
            extra = extra[:79] + "…"
        text = f"{text} {extra}".strip()
    return text


def _tensors_table(sg: SubgraphInfo) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("type", no_wrap=True)
    table.add_column("shape", overflow="fold")
    table.add_column("signature", overflow="fold")
    table.add_column("buf", justify="right", no_wrap=True)
    table.add_column("bytes", justify="right", no_wrap=True)
    table.add_column("quantization", overflow="fold")
    for t in sg.tensors:
        sig = "" if t.shape_signature is None or t.shape_signature == t.shape else fmt_shape(
            t.shape_signature)
        kind = " (var)" if t.is_variable else " (const)" if t.is_constant else ""
        name = Text(short_name(t.name) + kind, style="dim" if t.is_constant else "")
        quant = fmt_quant(t.quantization)
        if t.sparsity is not None:
            quant = f"{quant} sparse".strip()
        _row(table, str(t.index), name, short_dtype(t.dtype), fmt_shape(t.shape), sig,
                      str(t.buffer) if t.buffer else "", fmt_bytes(t.bytes), quant)
    return table


def _io_line(sg: SubgraphInfo, idxs: Sequence[int]) -> str:
    parts = []
    for i in idxs:
        t = sg.tensors[i]
        parts.append(f"t{i} {fmt_shape(t.shape)} {short_dtype(t.dtype)}")
    return "; ".join(parts) or "-"


def _subgraph(sg: SubgraphInfo, tensors: bool, wide: bool) -> RenderableType:
    grid = _kv_grid()
    _row(grid, "inputs", _io_line(sg, sg.inputs))
    _row(grid, "outputs", _io_line(sg, sg.outputs))
    parts: list[RenderableType] = [grid, Text(""), _operators_table(sg, wide)]
    if tensors:
        parts += [Text(""), Text("tensors", style="bold"), _tensors_table(sg)]
    name = f" {escape(repr(sg.name))}" if sg.name else ""
    title = (f"[bold]subgraph {sg.index}{name}[/]: {len(sg.operators)} operators, "
             f"{len(sg.tensors)} tensors, {fmt_count(sg.macs)} MACs")
    return Panel(Group(*parts), title=title, title_align="left", box=box.ROUNDED)


def _sizes(report: InspectReport) -> RenderableType:
    s = report.size
    grid = _kv_grid()

    def part(n: int) -> str:
        return f"{fmt_bytes(n)} ({fmt_share(n, s.file_bytes)})"

    _row(grid, "constants", part(s.constant_bytes))
    if s.metadata_bytes:
        _row(grid, "metadata", part(s.metadata_bytes))
    if s.unreferenced_buffer_bytes:
        _row(grid, "unreferenced buffers", part(s.unreferenced_buffer_bytes))
    _row(grid, "structure", part(s.structure_bytes) + " tables, names, shapes, quantization")
    parts: list[RenderableType] = [grid]
    for title, rows in (("constants by dtype", s.by_dtype),
                        ("constants by op (first consumer)", s.by_op)):
        if not rows:
            continue
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        table.add_column(title, overflow="fold")
        table.add_column("bytes", justify="right", no_wrap=True)
        table.add_column("of file", justify="right", no_wrap=True)
        table.add_column("tensors", justify="right", no_wrap=True)
        shown = rows[:MAX_SIZE_ROWS]
        for r in shown:
            _row(table, r.key, fmt_bytes(r.bytes), fmt_share(r.bytes, s.file_bytes), str(r.tensors))
        rest = rows[MAX_SIZE_ROWS:]
        if rest:
            b = sum(r.bytes for r in rest)
            _row(table, f"({len(rest)} more)", fmt_bytes(b), fmt_share(b, s.file_bytes),
                          str(sum(r.tensors for r in rest)))
        parts += [Text(""), table]
    return Panel(Group(*parts), title="[bold]size[/]", title_align="left", box=box.ROUNDED)


def _quantization(report: InspectReport) -> RenderableType:
    q = report.quantization
    grid = _kv_grid()
    _row(grid, "scheme", q.description)
    _row(grid, "operators", ", ".join(f"{k} ×{v}" for k, v in q.op_schemes.items()) or "-")
    _row(grid, "I/O", f"inputs {', '.join(q.input_dtypes) or '-'}; "
                        f"outputs {', '.join(q.output_dtypes) or '-'}")
    _row(grid, "weights", ", ".join(f"{k} ×{v}" for k, v in q.weight_dtypes.items()) or "-")
    _row(grid, "quantized tensors", f"{q.per_tensor} per-tensor, {q.per_channel} per-channel "
                                      f"(weights: {q.weights_per_tensor} per-tensor, "
                                      f"{q.weights_per_channel} per-channel)")
    return Panel(grid, title="[bold]quantization[/]", title_align="left", box=box.ROUNDED)


def _custom_ops(report: InspectReport) -> RenderableType:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("custom op", overflow="fold", style="bold")
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("operators", overflow="fold")
    table.add_column("options (first)", overflow="fold")
    for c in report.custom_ops:
        where = ", ".join(f"{s}:{o}" if report.subgraph_count > 1 else str(o)
                          for s, o in c.operators)
        opts = ""
        if c.options:
            opts = fmt_value(c.options["decoded"]) if c.options.get("decoded") else (
                f"{c.options['bytes']} B" if c.options["bytes"] and "decoded" not in c.options
                else "")
        if len(opts) > 100:
            opts = opts[:99] + "…"
        _row(table, c.code, str(c.count), where, opts)
    return Panel(table, title="[bold]custom ops[/]", title_align="left", box=box.ROUNDED)


def _warnings(report: InspectReport) -> RenderableType:
    lines = [Text(f"! {w}", style="yellow") for w in report.warnings[:MAX_WARNINGS]]
    rest = len(report.warnings) - MAX_WARNINGS
    if rest > 0:
        lines.append(Text(f"… and {rest} more (all of them in --json)", style="yellow"))
    return Panel(Group(*lines), title=f"[bold]warnings ({len(report.warnings)})[/]",
                 title_align="left", box=box.ROUNDED)


def render_inspect(report: InspectReport, console: Console, *, tensors: bool = False) -> None:
    """Draw an :class:`InspectReport`: header, one panel per subgraph (operators, optionally
    tensors), sizes, quantization, custom ops and warnings."""
    console.print(_header(report))
    for sg in report.subgraphs:
        console.print(_subgraph(sg, tensors, console.width >= WIDE))
    console.print(_sizes(report))
    console.print(_quantization(report))
    if report.custom_ops:
        console.print(_custom_ops(report))
    if report.warnings:
        console.print(_warnings(report))


__all__ = ["fmt_bytes", "fmt_count", "fmt_number", "fmt_options", "fmt_quant", "fmt_shape",
           "fmt_share", "fmt_value", "render_inspect", "short_dtype", "short_name"]
