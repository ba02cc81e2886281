"""One offline file for a reviewer of a converted model: ``tflite-ref report``.

:func:`build_report` runs the tools -- ``inspect`` (summary), the graph layout, ``micro`` (op
support and arena on an MCU target, with the memory plan), ``check`` (the differential test
against the native runtimes), ``qdebug`` (per-layer quantization error) and ``lint`` -- and
returns a :class:`Report` of their plain results.  A tool that cannot run on this model (an
operator without a kernel, a float model for qdebug) leaves its section empty with the reason in
:attr:`Report.sections`; the others still run.  ``fail_on`` rules (:data:`FAIL_ON`) turn findings
into an exit code for CI.

:func:`report_html` (self-contained: inline SVG and script, no network), :func:`report_markdown`
and :meth:`Report.to_dict` (JSON) only draw what the report holds.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tflite_ref.errors import TFLiteRefError, UsageError
from tflite_ref.graph import Graph, Layout, build_graph, graph_block, layout_graph
from tflite_ref.graph.html import GRAPH_CSS, GRAPH_JS
from tflite_ref.inspect import InspectReport, inspect_model, jsonable
from tflite_ref.lint import LintReport, lint
from tflite_ref.model.model import Model
from tflite_ref.trace import as_model

# --fail-on rules: name -> what fails.  "arena>SIZE" and "sqnr<DB" take a threshold.
FAIL_ON = {
    "lint-error": "a lint finding of severity error",
    "lint-warning": "a lint finding of severity warning or error",
    "check": "the differential check failed its policy",
    "micro": "TFLite Micro would not run the model on the target",
    "arena>SIZE": "the TFLite Micro arena is larger than SIZE bytes (k/M suffixes allowed)",
    "sqnr<DB": "the first output's SQNR (qdebug) is below DB decibels",
    "incomplete": "a section could not be produced (error, unsupported operator)",
}


@dataclass(frozen=True, slots=True)
class SectionStatus:
    name: str  # "summary", "graph", "micro", "check", "qdebug", "lint"
    status: str  # "ok", "skipped", "error", "unavailable"
    detail: str = ""


@dataclass(frozen=True)
class Report:
    model: str
    float_model: str | None
    target: str
    summary: InspectReport
    graph: Graph
    layout: Layout
    micro: Any  # tflite_ref.micro.MicroEstimate | None
    check: Any  # tflite_ref.check.CheckReport | None
    qdebug: Any  # tflite_ref.qdebug.QuantReport | None
    lint: LintReport
    sections: tuple[SectionStatus, ...]
    fail_on: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()  # the fail_on rules that fired, with the reason

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def section(self, name: str) -> SectionStatus:
        for s in self.sections:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "format_version": 1,
            "model": self.model, "float_model": self.float_model, "target": self.target,
            "sections": [dataclasses.asdict(s) for s in self.sections],
            "fail_on": list(self.fail_on), "failures": list(self.failures),
            "exit_code": self.exit_code,
            "summary": self.summary.to_dict(),
            "micro": _json_of(self.micro),
            "check": None if self.check is None else _check_dict(self.check),
            "qdebug": _json_of(self.qdebug),
            "lint": self.lint.to_dict(),
        }
        result: dict[str, Any] = jsonable(out)
        return result

    def _repr_html_(self) -> str:
        return report_html(self, standalone=False)


def _json_of(result: Any) -> Any:
    """The JSON view a tool's result offers (``to_json``, ``to_dict`` or ``as_dict``)."""
    if result is None:
        return None
    for name in ("to_json", "to_dict", "as_dict"):
        fn = getattr(result, name, None)
        if callable(fn):
            return fn()
    return jsonable(dataclasses.asdict(result))


def _check_dict(c: Any) -> dict[str, Any]:
    return {
        "passed": c.passed, "policy": c.policy, "emulate": c.emulate, "samples": c.samples,
        "runtimes": [{
            "runtime": r.runtime, "title": r.title, "version": r.version, "passed": r.passed,
            "exposes": r.exposes, "counts": dict(r.counts), "reasons": list(r.reasons),
            "first_divergence": None if r.first_divergence is None else {
                "tensor": r.first_divergence.index, "name": r.first_divergence.name,
                "operator": r.first_divergence.operator, "opcode": r.first_divergence.opcode,
                "class": r.first_divergence.cls, "max_abs": r.first_divergence.diff.max_abs},
            "findings": [{"kind": f.kind, "stage": f.stage, "message": f.message}
                         for f in r.findings]} for r in c.runtimes]}


# ------------------------------------------------------------------------------------------------
# Building
# ------------------------------------------------------------------------------------------------
def _size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)(?:i?B)?\s*", text)
    if not m:
        raise UsageError(f"--fail-on arena>SIZE: {text!r} is not a size (e.g. 256k, 1.5M)")
    mult = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


def parse_fail_on(rules: Sequence[str]) -> tuple[str, ...]:
    """Validate the ``--fail-on`` rules (comma-separated lists allowed)."""
    out = []
    for rule in rules:
        for part in (p.strip() for p in rule.split(",")):
            if not part:
                continue
            if part.startswith("arena>"):
                _size(part[6:])
            elif part.startswith("sqnr<"):
                try:
                    float(part[5:])
                except ValueError:
                    raise UsageError(f"--fail-on {part}: give a number of dB, e.g. sqnr<30") \
                        from None
            elif part not in FAIL_ON:
                raise UsageError(f"--fail-on {part!r}: choose from "
                                 + ", ".join(FAIL_ON))
            out.append(part)
    return tuple(out)


def _failures(r: Report) -> tuple[str, ...]:
    out = []
    for rule in r.fail_on:
        if rule == "lint-error" and r.lint.count("error"):
            out.append(f"lint-error: {r.lint.count('error')} lint error(s)")
        elif rule == "lint-warning" and (r.lint.count("error") or r.lint.count("warning")):
            out.append(f"lint-warning: {r.lint.count('error')} error(s), "
                       f"{r.lint.count('warning')} warning(s)")
        elif rule == "check" and r.check is not None and not r.check.passed:
            out.append("check: the differential check failed: " + "; ".join(
                reason for rt in r.check.runtimes for reason in rt.reasons[:1]))
        elif rule == "micro" and r.micro is not None and not r.micro.supported:
            why = [u.reason for u in r.micro.unsupported[:1]] + [
                h.message for h in r.micro.hazards[:1]]
            out.append(f"micro: TFLite Micro would not run it on {r.target}: "
                       + ("; ".join(why) or "see the micro section"))
        elif rule.startswith("arena>") and r.micro is not None and r.micro.arena is not None:
            limit = _size(rule[6:])
            if r.micro.arena.total > limit:
                out.append(f"{rule}: the arena needs {r.micro.arena.total} bytes")
        elif rule.startswith("sqnr<") and r.qdebug is not None and r.qdebug.sqnr_db is not None:
            if r.qdebug.sqnr_db < float(rule[5:]):
                out.append(f"{rule}: output SQNR {r.qdebug.sqnr_db:.1f} dB")
        elif rule == "incomplete":
            bad = [s for s in r.sections if s.status in ("error", "unavailable")]
            if bad:
                out.append("incomplete: " + ", ".join(f"{s.name} ({s.status})" for s in bad))
    return tuple(out)


def _section(status: list[SectionStatus], chosen: set[str], name: str,
             run: Callable[[Any], Any], detail: Callable[[Any], str], *,
             usage_error_skips: bool = False) -> Any:
    """One optional tool section (``tflite_ref.<name>``): its result, or None with the reason
    recorded in ``status`` -- not asked for, module unavailable, or the tool's one-line error."""
    if name not in chosen:
        status.append(SectionStatus(name, "skipped", "not asked for"))
        return None
    try:
        module = importlib.import_module(f"tflite_ref.{name}")
    except ImportError as exc:
        status.append(SectionStatus(name, "unavailable", f"tflite_ref.{name}: {exc}"))
        return None
    try:
        result = run(module)
    except TFLiteRefError as exc:
        skipped = usage_error_skips and isinstance(exc, UsageError)
        status.append(SectionStatus(name, "skipped" if skipped else "error", str(exc)))
        return None
    status.append(SectionStatus(name, "ok", detail(result)))
    return result


def build_report(model: Model | str | os.PathLike[str] | bytes,
                 float_model: Model | str | os.PathLike[str] | bytes | None = None, *,
                 inputs: Mapping[str, Any] | None = None, target: str = "cortex-m",
                 against: str | Sequence[str] | None = None, samples: int = 4,
                 emulate: str = "tflite", engine: str = "auto", seed: int = 0,
                 fail_on: Sequence[str] = (), sections: Sequence[str] | None = None) -> Report:
    """Run every tool on ``model`` and collect the results.

    ``inputs``: input name -> array (real values for quantized inputs are quantized), used by
    check and qdebug; None draws ``samples`` random samples.  ``against``: the runtimes of the
    differential check (default: the emulated one).  ``sections``: run only these of
    micro/check/qdebug (summary, graph and lint always run).
    """
    m = as_model(model)
    fm = as_model(float_model) if float_model is not None else None
    rules = parse_fail_on(fail_on)
    chosen = set(sections) if sections is not None else {"micro", "check", "qdebug"}
    status: list[SectionStatus] = []
    summary = inspect_model(m, m.path)
    status.append(SectionStatus("summary", "ok"))
    graph = build_graph(m)
    layout = layout_graph(graph, engine)
    status.append(SectionStatus("graph", "ok", f"{layout.engine} layout"))

    micro = _section(status, chosen, "micro", lambda mod: mod.estimate(m, target=target),
                     lambda _: target)
    check_report = _section(
        status, chosen, "check",
        lambda mod: mod.check(m, against=against, inputs=inputs, emulate=emulate,
                              samples=1 if inputs is not None else max(1, min(samples, 2)),
                              seed=seed),
        lambda r: "passed" if r.passed else "failed")
    # qdebug of a float model is a usage error: nothing to debug, so the section is skipped.
    quant = _section(status, chosen, "qdebug",
                     lambda mod: mod.qdebug(m, fm, inputs=inputs,
                                            samples=None if inputs else samples, seed=seed,
                                            emulate=emulate),
                     lambda q: q.reference, usage_error_skips=True)

    findings = lint(m)
    status.append(SectionStatus("lint", "ok", f"{len(findings)} finding(s)"))
    report = Report(m.path or "<bytes>", None if fm is None else (fm.path or "<bytes>"), target,
                    summary, graph, layout, micro, check_report, quant, findings, tuple(status),
                    rules)
    return dataclasses.replace(report, failures=_failures(report))


# ------------------------------------------------------------------------------------------------
# Plots (inline SVG)
# ------------------------------------------------------------------------------------------------
_esc = html.escape


def _timeline_svg(micro: Any, width: int = 900, height: int = 240) -> str:
    """The TFLite Micro memory plan: one rectangle per buffer, x = operator steps it lives
    through, y = its offset in the arena head."""
    plan = micro.plan
    if not plan:
        return "<p>No planned buffers.</p>"
    steps = max(max(p.last_op for p in plan) + 1, 1)
    head = max(max(p.offset + p.size for p in plan), 1)
    left, bottom, top, right = 64, 28, 10, 10
    w, h = width - left - right, height - top - bottom
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {width} {height}"'
           f' width="{width}" height="{height}" font-family="sans-serif" font-size="11">'),
           (f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fafafa" '
           'stroke="#ccc"/>')]
    for p in plan:
        x0 = left + w * (p.first_op + 1) / (steps + 1)
        x1 = left + w * (p.last_op + 2) / (steps + 1)
        y0 = top + h - h * (p.offset + p.size) / head
        hh = max(h * p.size / head, 1.0)
        colour = "#f59e0b" if p.kind == "scratch" else ("#8b5cf6" if p.offline else "#3b82f6")
        out.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{max(x1 - x0, 1):.1f}" '
                   f'height="{hh:.1f}" fill="{colour}" fill-opacity="0.55" stroke="{colour}">'
                   f"<title>{_esc(p.tensor)}: {p.size} bytes at offset {p.offset}, "
                   f"operators {p.first_op}..{p.last_op}</title></rect>")
    out.append(f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{head:,} B</text>')
    out.append(f'<text x="{left - 6}" y="{top + h}" text-anchor="end">0</text>')
    out.append(f'<text x="{left + w / 2}" y="{height - 6}" text-anchor="middle">operator '
               f"(execution step 0..{steps - 1}); blue: tensors, orange: scratch</text>")
    out.append("</svg>")
    return "".join(out)


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _sqnr_svg(q: Any, width: int = 900, height: int = 260) -> str:
    """Per-layer SQNR: accumulated (line) and local (bars), in dB."""
    layers = q.layers
    acc = [_finite(lr.accumulated.sqnr_db) if lr.accumulated else None for lr in layers]
    loc = [_finite(lr.local.sqnr_db) if lr.local else None for lr in layers]
    vals = [v for v in acc + loc if v is not None]
    if not vals:
        return "<p>No finite SQNR values to plot.</p>"
    lo, hi = min(0.0, min(vals)), max(vals) + 5
    left, bottom, top, right = 48, 34, 10, 10
    w, h = width - left - right, height - top - bottom
    n = len(layers)

    def y(v: float) -> float:
        return top + h - h * (v - lo) / (hi - lo)

    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {width} {height}"'
           f' width="{width}" height="{height}" font-family="sans-serif" font-size="11">'),
           f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fafafa" stroke="#ccc"/>']
    for tick in range(int(lo // 10) * 10, int(hi) + 1, 10):
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                   f'stroke="#e5e7eb"/><text x="{left - 4}" y="{y(tick) + 4:.1f}" '
                   f'text-anchor="end">{tick}</text>')
    bw = w / max(n, 1)
    for k, lr in enumerate(layers):
        v = loc[k]
        if v is not None:
            out.append(f'<rect x="{left + k * bw + bw * 0.15:.1f}" y="{y(v):.1f}" '
                       f'width="{bw * 0.7:.1f}" height="{max(y(lo) - y(v), 0):.1f}" '
                       f'fill="#93c5fd"><title>op {lr.operator} {_esc(lr.opcode)}: local '
                       f"{v:.1f} dB</title></rect>")
    pts = [(left + (k + 0.5) * bw, y(v)) for k, v in enumerate(acc) if v is not None]
    if pts:
        out.append('<polyline fill="none" stroke="#dc2626" stroke-width="2" points="'
                   + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
        for (a, b), lr, v in zip(pts, [lr for lr, v in zip(layers, acc) if v is not None],
                                 [v for v in acc if v is not None]):
            out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="#dc2626"><title>op '
                       f"{lr.operator} {_esc(lr.opcode)}: accumulated {v:.1f} dB</title>"
                       "</circle>")
    out.append(f'<text x="{left + w / 2}" y="{height - 8}" text-anchor="middle">layers in '
               "execution order: red line = accumulated SQNR (dB), blue bars = local SQNR"
               "</text></svg>")
    return "".join(out)


# ------------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------------
_CSS = """
body { font: 14px/1.45 -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 0;
       color: #1f2328; }
header { background: #24292f; color: #fff; padding: 14px 24px; }
header h1 { margin: 0; font-size: 20px; }
header .verdict { margin-top: 4px; }
main { padding: 8px 24px 40px; max-width: 1400px; }
nav a { margin-right: 14px; }
section { margin-top: 26px; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 4px; font-size: 18px; }
table.data { border-collapse: collapse; margin: 6px 0 12px; }
table.data th, table.data td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left;
                               vertical-align: top; font-size: 13px; }
table.data th { background: #f6f8fa; }
.ok { color: #1a7f37; font-weight: bold; } .bad { color: #cf222e; font-weight: bold; }
.warn { color: #9a6700; font-weight: bold; } .muted { color: #57606a; }
.pill { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px;
        border: 1px solid #d0d7de; }
code { background: #f6f8fa; padding: 0 3px; border-radius: 3px; }
"""


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    th = "".join(f"<th>{_esc(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else _esc(str(c))}</td>"
                                    for c in r) + "</tr>" for r in rows)
    return f'<table class="data"><tr>{th}</tr>{body}</table>'


def _short(name: str, width: int = 60) -> str:
    """Converter-fused tensor names (``a/Relu;a/BiasAdd;...``) keep their first part."""
    if ";" in name:
        name = name.split(";", 1)[0] + ";…"
    return name if len(name) <= width else name[: width - 1] + "…"


class _Raw(str):
    """Already-escaped HTML in a table cell."""


def _status_line(r: Report, name: str) -> str:
    s = r.section(name)
    if s.status == "ok":
        return ""
    return f'<p class="warn">{_esc(name)}: {_esc(s.status)} &mdash; {_esc(s.detail)}</p>'


def _summary_html(r: Report) -> str:
    s = r.summary
    sg = s.subgraphs[0] if s.subgraphs else None
    ops = sum(len(x.operators) for x in s.subgraphs)
    rows = [("file", s.file or r.model), ("size", f"{s.size_bytes:,} bytes"),
            ("quantization", s.quantization.description), ("operators", ops),
            ("MACs", f"{s.macs:,}"), ("subgraphs", s.subgraph_count),
            ("signatures", ", ".join(x.key for x in s.signatures) or "none")]
    if r.float_model:
        rows.append(("float model", r.float_model))
    io = []
    if sg is not None:
        tensors = {t.index: t for t in sg.tensors}
        for role, idx in (("input", sg.inputs), ("output", sg.outputs)):
            for i in idx:
                t = tensors[i]
                q = t.quantization
                qt = (f"s={q.scale[0]:.4g} z={q.zero_point[0]}" if q and len(q.scale) == 1
                      else "")
                io.append((role, i, _short(t.name), t.dtype, "x".join(map(str, t.shape)), qt))
    ops_count: dict[str, int] = {}
    for x in s.subgraphs:
        for o in x.operators:
            ops_count[o.opcode] = ops_count.get(o.opcode, 0) + 1
    op_rows = sorted(ops_count.items(), key=lambda kv: -kv[1])
    sections = "".join(
        f'<span class="pill">{_esc(x.name)}: '
        f'<span class="{"ok" if x.status == "ok" else "muted" if x.status == "skipped" else "bad"}">'
        f"{_esc(x.status)}</span></span> " for x in r.sections)
    return (_table(("", ""), rows) + "<b>Inputs and outputs</b>"
            + _table(("", "#", "name", "type", "shape", "quantization"), io)
            + "<b>Operators</b>" + _table(("opcode", "count"), op_rows)
            + f"<p>Sections: {sections}</p>")


def _micro_html(r: Report) -> str:
    e = r.micro
    if e is None:
        return _status_line(r, "micro")
    verdict = ('<span class="ok">runs</span>' if e.supported else
               '<span class="bad">would not run</span>')
    rows = [("target", (f"{e.target} ({e.kernels} kernels, {e.allocator} allocator, TFLM "
                       f"{e.tflm_version})")), ("verdict", _Raw(verdict)),
            ("flash (model)", f"{e.flash.model_bytes:,} bytes")]
    if e.arena is not None:
        a = e.arena
        rows += [("arena", f"{a.total:,} bytes (head {a.head:,} + tail {a.tail:,})"),
                 ("smallest arena", f"{a.minimum:,} bytes ({a.minimum_reason})")]
    if e.order_search is not None and e.order_search.saved:
        rows.append(("reordering", (f"another operator order saves {e.order_search.saved:,} "
                                   "bytes of head")))
    out = _table(("", ""), rows)
    if e.unsupported:
        out += "<b>Unsupported</b>" + _table(("op", "opcode", "reason"), [
            (u.operator, u.opcode, u.reason) for u in e.unsupported])
    if e.hazards:
        out += "<b>Hazards</b>" + _table(("op", "opcode", "aborts", "message"), [
            (h.operator, h.opcode, "yes" if h.aborts else "no", h.message) for h in e.hazards])
    if e.plan:
        out += "<b>Memory plan (arena head over the operator timeline)</b>" + _timeline_svg(e)
    return out


def _check_html(r: Report) -> str:
    c = r.check
    if c is None:
        return _status_line(r, "check")
    out = [f"<p>Policy <code>{_esc(c.policy)}</code>, emulating {_esc(c.emulate)}, "
           f"{c.samples} sample(s): " + ('<span class="ok">passed</span>' if c.passed else
                                        '<span class="bad">failed</span>') + "</p>"]
    rows = []
    for rt in c.runtimes:
        counts = ", ".join(f"{k} {v}" for k, v in rt.counts.items() if v)
        first = rt.first_divergence
        rows.append((f"{rt.title} {rt.version or ''}",
                     _Raw('<span class="ok">passed</span>' if rt.passed else
                          '<span class="bad">failed</span>'), counts,
                     "-" if first is None else f"tensor {first.index} ({first.opcode}, "
                     f"{first.cls}, max {first.diff.max_abs:g})",
                     "; ".join(list(rt.reasons) + [f.message for f in rt.findings])))
    out.append(_table(("runtime", "result", "tensors by class", "first divergence", "notes"),
                      rows))
    for rt in c.runtimes:
        worst = [t for t in rt.worst(10) if t.divergent]
        if worst:
            out.append(f"<b>{_esc(rt.title)}: divergent tensors</b>")
            out.append(_table(("tensor", "name", "op", "class", "max |diff|", "share"), [
                (t.index, _short(t.name), f"{t.operator} {t.opcode}", t.cls, f"{t.diff.max_abs:g}",
                 f"{100 * t.diff.share:.2f}%") for t in worst]))
    return "".join(out)


def _qdebug_html(r: Report) -> str:
    q = r.qdebug
    if q is None:
        return _status_line(r, "qdebug")
    out = [(f"<p>Reference: {_esc(q.reference)}; {q.samples} sample(s) from "
           f"{_esc(q.inputs)}.</p>")]
    out.append(_table(("output", "SQNR (dB)", "top-1 agreement"), [
        (_short(o.tensor), "-" if o.metrics is None else f"{o.metrics.sqnr_db:.1f}",
         "-" if o.top1_agreement is None else f"{100 * o.top1_agreement:.0f}%")
        for o in q.outputs]))
    out.append(_sqnr_svg(q))
    out.append(_table(("op", "opcode", "tensor", "accumulated SQNR", "local SQNR",
                       "amplification (dB)"), [
        (lr.operator, lr.opcode, _short(lr.tensor),
         "-" if lr.accumulated is None else f"{lr.accumulated.sqnr_db:.1f}",
         "-" if lr.local is None else f"{lr.local.sqnr_db:.1f}",
         "-" if lr.amplification_db is None else f"{lr.amplification_db:+.1f}")
        for lr in q.layers]))
    if q.culprits_local:
        out.append("<b>Layers adding the most error</b>" + _table(
            ("op", "opcode", "tensor", "local SQNR (dB)"),
            [(c.operator, c.opcode, _short(c.tensor), f"{c.value:.1f}")
             for c in q.culprits_local]))
    return "".join(out)


def _lint_html(r: Report) -> str:
    cls = {"error": "bad", "warning": "warn", "info": "muted"}
    return _table(("severity", "rule", "where", "finding", "what to do"), [
        (_Raw(f'<span class="{cls[f.severity]}">{f.severity}</span>'), f.rule, f.where,
         f.message, f.fix) for f in r.lint.findings])


def report_html(r: Report, *, standalone: bool = True) -> str:
    """The report as one HTML page (``standalone``) or a fragment (Jupyter)."""
    name = Path(r.model).name
    if r.failures:
        verdict = ('<div class="verdict">&#10007; fails: ' + _esc("; ".join(r.failures))
                   + "</div>")
    elif r.fail_on:
        verdict = '<div class="verdict">&#10003; passes ' + _esc(", ".join(r.fail_on)) + "</div>"
    else:
        verdict = ""
    parts = [
        f"<header><h1>tflite-ref report: {_esc(name)}</h1>{verdict}</header><main>",
        ('<nav><a href="#summary">Summary</a><a href="#graph">Graph</a>'
        '<a href="#micro">TFLite Micro</a><a href="#check">Differential check</a>'
        '<a href="#qdebug">Quantization error</a><a href="#lint">Lint</a></nav>'),
        f'<section id="summary"><h2>Summary</h2>{_summary_html(r)}</section>',
        (f'<section id="graph"><h2>Graph</h2>{graph_block(r.graph, r.layout, title=name)}'
        "</section>"),
        (f'<section id="micro"><h2>TFLite Micro on {_esc(r.target)}</h2>{_micro_html(r)}'
        "</section>"),
        f'<section id="check"><h2>Differential check</h2>{_check_html(r)}</section>',
        (f'<section id="qdebug"><h2>Per-layer quantization error</h2>{_qdebug_html(r)}'
        "</section>"),
        (f'<section id="lint"><h2>Lint ({r.lint.count("error")} errors, '
        f'{r.lint.count("warning")} warnings, {r.lint.count("info")} notes)</h2>'
        f"{_lint_html(r)}</section>"),
        '<p class="muted">Generated by tflite-ref; this file needs no network.</p></main>',
    ]
    body = "".join(parts)
    if not standalone:
        return f"<div><style>{GRAPH_CSS}</style>{body}<script>{GRAPH_JS}</script></div>"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'
            f"<title>tflite-ref report: {_esc(name)}</title><style>{_CSS}{GRAPH_CSS}</style>"
            f"</head><body>{body}<script>{GRAPH_JS}</script></body></html>\n")


# ------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------
def _md_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return "_none_\n"

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def report_markdown(r: Report) -> str:
    s = r.summary
    out = [f"# tflite-ref report: {Path(r.model).name}", ""]
    if r.failures:
        out += ["**Fails:** " + "; ".join(r.failures), ""]
    elif r.fail_on:
        out += ["**Passes:** " + ", ".join(r.fail_on), ""]
    out += ["## Summary", "", _md_table(("", ""), [
        ("file", s.file or r.model), ("size", f"{s.size_bytes:,} bytes"),
        ("quantization", s.quantization.description),
        ("operators", sum(len(x.operators) for x in s.subgraphs)), ("MACs", f"{s.macs:,}")]),
        _md_table(("section", "status", "detail"),
                  [(x.name, x.status, x.detail) for x in r.sections])]
    out += ["## TFLite Micro", ""]
    e = r.micro
    if e is not None:
        rows = [("target", e.target), ("runs", "yes" if e.supported else "no")]
        if e.arena is not None:
            rows.append(("arena", (f"{e.arena.total:,} bytes (head {e.arena.head:,}, tail "
                                  f"{e.arena.tail:,})")))
        out.append(_md_table(("", ""), rows))
        if e.unsupported:
            out.append(_md_table(("op", "opcode", "reason"),
                                 [(u.operator, u.opcode, u.reason) for u in e.unsupported]))
    else:
        out.append(f"_{r.section('micro').status}: {r.section('micro').detail}_\n")
    out += ["## Differential check", ""]
    c = r.check
    if c is not None:
        out.append(_md_table(("runtime", "result", "tensors by class", "notes"), [
            (rt.title, "passed" if rt.passed else "FAILED",
             ", ".join(f"{k} {v}" for k, v in rt.counts.items() if v),
             "; ".join(rt.reasons)) for rt in c.runtimes]))
    else:
        out.append(f"_{r.section('check').status}: {r.section('check').detail}_\n")
    out += ["## Per-layer quantization error", ""]
    q = r.qdebug
    if q is not None:
        out.append(_md_table(("output", "SQNR (dB)"), [
            (o.tensor, "-" if o.metrics is None else f"{o.metrics.sqnr_db:.1f}")
            for o in q.outputs]))
        out.append(_md_table(("op", "opcode", "accumulated SQNR", "local SQNR"), [
            (lr.operator, lr.opcode,
             "-" if lr.accumulated is None else f"{lr.accumulated.sqnr_db:.1f}",
             "-" if lr.local is None else f"{lr.local.sqnr_db:.1f}") for lr in q.layers]))
    else:
        out.append(f"_{r.section('qdebug').status}: {r.section('qdebug').detail}_\n")
    out += ["## Lint", "", _md_table(("severity", "rule", "where", "finding", "what to do"), [
        (f.severity, f.rule, f.where, f.message, f.fix) for f in r.lint.findings])]
    return "\n".join(out)


def report_json(r: Report) -> str:
    return json.dumps(r.to_dict(), indent=2, allow_nan=False) + "\n"


__all__ = ["FAIL_ON", "Report", "SectionStatus", "build_report", "parse_fail_on",
           "report_html", "report_json", "report_markdown"]
