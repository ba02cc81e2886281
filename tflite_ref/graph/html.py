"""A self-contained, offline HTML page for the graph: the SVG inline, pan (drag) and zoom (wheel,
buttons), and a side panel with a clicked node's details.  No CDN, no external file, no network:
the CSS and the JavaScript are written into the page.

:func:`graph_block` is the embeddable part (the report puts it in its own page); the page script
(:data:`GRAPH_JS`) initialises every ``.graph-wrap`` element it finds.
"""

from __future__ import annotations

import json
from html import escape

from tflite_ref.graph.layout import Layout
from tflite_ref.graph.model import Graph
from tflite_ref.graph.svg import dom_id, render_svg

GRAPH_CSS = """
.graph-wrap { display: flex; border: 1px solid #d0d7de; border-radius: 6px; height: 78vh;
              min-height: 360px; background: #fff; position: relative; overflow: hidden; }
.graph-canvas { flex: 1; position: relative; overflow: hidden; cursor: grab; }
.graph-canvas:active { cursor: grabbing; }
.graph-canvas svg { width: 100%; height: 100%; display: block; user-select: none; }
.graph-toolbar { position: absolute; top: 8px; left: 8px; z-index: 2; display: flex; gap: 4px; }
.graph-toolbar button { font: 13px sans-serif; padding: 2px 9px; border: 1px solid #bbb;
                        background: #fff; border-radius: 4px; cursor: pointer; }
.graph-panel { width: 330px; border-left: 1px solid #d0d7de; padding: 10px 12px;
               overflow: auto; font: 13px/1.4 sans-serif; background: #f8f9fb; }
.graph-panel h3 { margin: 0 0 6px; font-size: 15px; }
.graph-panel table { border-collapse: collapse; width: 100%; margin: 4px 0 10px; }
.graph-panel td, .graph-panel th { border-bottom: 1px solid #e3e6ea; padding: 2px 4px;
                                   text-align: left; vertical-align: top; font-size: 12px;
                                   word-break: break-word; }
.graph-panel .hint { color: #666; }
"""

GRAPH_JS = r"""
(function () {
  "use strict";
  function el(tag, text) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function table(rows, head) {
    var t = el("table");
    if (head) {
      var tr = el("tr");
      head.forEach(function (h) { tr.appendChild(el("th", h)); });
      t.appendChild(tr);
    }
    rows.forEach(function (r) {
      var tr = el("tr");
      r.forEach(function (c) { tr.appendChild(el("td", c)); });
      t.appendChild(tr);
    });
    return t;
  }
  function tensorRows(list) {
    return list.map(function (t, k) {
      if (t === null) { return [String(k), "(absent)", "", "", ""]; }
      return [String(t.index), t.name + (t.constant ? " (const)" : ""), t.type,
              "[" + t.shape.join(", ") + "]", t.quantization];
    });
  }
  function show(panel, d) {
    panel.innerHTML = "";
    panel.appendChild(el("h3", d.title));
    if (d.opcode) {
      panel.appendChild(table([["opcode", d.opcode], ["version", d.version],
                               ["subgraph", d.subgraph]]));
      var opts = Object.keys(d.options || {}).map(function (k) {
        return [k, JSON.stringify(d.options[k])];
      });
      if (opts.length) { panel.appendChild(el("b", "options")); panel.appendChild(table(opts)); }
      panel.appendChild(el("b", "inputs"));
      panel.appendChild(table(tensorRows(d.inputs), ["#", "name", "type", "shape", "quant"]));
      panel.appendChild(el("b", "outputs"));
      panel.appendChild(table(tensorRows(d.outputs), ["#", "name", "type", "shape", "quant"]));
      if (d.calls && d.calls.length) {
        panel.appendChild(el("p", "runs subgraph(s) " + d.calls.join(", ")));
      }
      if (d.custom_code) { panel.appendChild(el("p", "custom code: " + d.custom_code)); }
    } else if (d.tensor) {
      panel.appendChild(table(tensorRows([d.tensor]), ["#", "name", "type", "shape", "quant"]));
    }
  }
  function init(wrap) {
    var svg = wrap.querySelector("svg");
    var dataEl = wrap.querySelector("script.graph-details");
    var panel = wrap.querySelector(".graph-panel");
    if (!svg || !dataEl || !panel) { return; }
    var details = JSON.parse(dataEl.textContent);
    var full = svg.viewBox.baseVal;
    var home = { x: full.x, y: full.y, w: full.width, h: full.height };
    var vb = { x: home.x, y: home.y, w: home.w, h: home.h };
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    function apply() { svg.setAttribute("viewBox", vb.x + " " + vb.y + " " + vb.w + " " + vb.h); }
    function fitWidth() {
      // The graph's width across the canvas, but never enlarged past its natural size.
      var r = svg.getBoundingClientRect();
      var aspect = r.width > 0 ? r.height / r.width : 1;
      var w = Math.max(home.w, r.width || home.w);
      vb = { x: home.x - (w - home.w) / 2, y: home.y, w: w, h: Math.max(w * aspect, 1) };
      apply();
    }
    function scale() {
      var r = svg.getBoundingClientRect();
      return r.width > 0 ? Math.max(vb.w / r.width, vb.h / Math.max(r.height, 1)) : 1;
    }
    function zoom(k, cx, cy) {
      vb.x = cx - (cx - vb.x) * k; vb.y = cy - (cy - vb.y) * k; vb.w *= k; vb.h *= k; apply();
    }
    function toSvg(ev) {
      var p = svg.createSVGPoint();
      p.x = ev.clientX; p.y = ev.clientY;
      var m = svg.getScreenCTM();
      return m ? p.matrixTransform(m.inverse()) : { x: vb.x + vb.w / 2, y: vb.y + vb.h / 2 };
    }
    svg.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var p = toSvg(ev);
      zoom(ev.deltaY < 0 ? 0.85 : 1 / 0.85, p.x, p.y);
    }, { passive: false });
    var drag = null;
    svg.addEventListener("mousedown", function (ev) {
      drag = { x: ev.clientX, y: ev.clientY, moved: false };
    });
    window.addEventListener("mousemove", function (ev) {
      if (!drag) { return; }
      var s = scale();
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) { drag.moved = true; }
      vb.x -= dx * s; vb.y -= dy * s; drag.x = ev.clientX; drag.y = ev.clientY; apply();
    });
    window.addEventListener("mouseup", function () {
      setTimeout(function () { drag = null; }, 0);
    });
    var selected = null;
    svg.querySelectorAll("g.node").forEach(function (g) {
      g.addEventListener("click", function () {
        if (drag && drag.moved) { return; }
        var d = details[g.getAttribute("data-id")];
        if (!d) { return; }
        if (selected) { selected.classList.remove("selected"); }
        selected = g;
        g.classList.add("selected");
        show(panel, d);
      });
    });
    var buttons = wrap.querySelectorAll(".graph-toolbar button");
    buttons.forEach(function (b) {
      b.addEventListener("click", function () {
        var a = b.getAttribute("data-action");
        if (a === "in") { zoom(0.8, vb.x + vb.w / 2, vb.y + vb.h / 2); }
        else if (a === "out") { zoom(1.25, vb.x + vb.w / 2, vb.y + vb.h / 2); }
        else if (a === "all") { vb = { x: home.x, y: home.y, w: home.w, h: home.h }; apply(); }
        else { fitWidth(); }
      });
    });
    fitWidth();
  }
  function start() { document.querySelectorAll(".graph-wrap").forEach(init); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else { start(); }
})();
"""


def _json_script(data: object) -> str:
    """JSON safe inside ``<script>``: ``</`` and ``<!--`` cannot end or confuse the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def graph_block(graph: Graph, layout: Layout, *, title: str | None = None) -> str:
    """The interactive graph as an HTML fragment (needs GRAPH_CSS and GRAPH_JS on the page)."""
    details = {n.id: n.details for n in graph.nodes}
    return (
        '<div class="graph-wrap">'
        '<div class="graph-toolbar"><button type="button" data-action="in">+</button>'
        '<button type="button" data-action="out">&minus;</button>'
        '<button type="button" data-action="width">fit width</button>'
        '<button type="button" data-action="all">whole graph</button></div>'
        f'<div class="graph-canvas">{render_svg(graph, layout, title=title)}</div>'
        '<aside class="graph-panel"><p class="hint">Click an operator for its details. Drag to '
        'pan, scroll to zoom.</p></aside>'
        f'<script type="application/json" class="graph-details">{_json_script(details)}'
        "</script></div>")


def render_html(graph: Graph, layout: Layout, *, title: str | None = None) -> str:
    """A complete page that works offline (file://), with nothing fetched from anywhere."""
    name = title or graph.model
    n_ops = sum(1 for n in graph.nodes if n.kind == "op")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(name)}</title><style>body {{ font: 14px sans-serif; margin: 12px; }}"
        f"{GRAPH_CSS}</style></head><body>"
        f"<h2 style=\"margin:4px 0 8px\">{escape(name)}</h2>"
        f"<p style=\"margin:0 0 8px;color:#555\">{n_ops} operators in "
        f"{len(graph.clusters)} subgraph(s); layout: {escape(layout.engine)}</p>"
        f"{graph_block(graph, layout, title=title)}"
        f"<script>{GRAPH_JS}</script></body></html>\n")


__all__ = ["GRAPH_CSS", "GRAPH_JS", "dom_id", "graph_block", "render_html"]
