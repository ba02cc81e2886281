"""Draw a laid-out graph as SVG text (no dependencies; the same drawing for both layout engines).

Operators are rounded boxes coloured by family (title in bold, then the key options and the
folded constants), inputs and outputs are pills, tensors are arrows labelled with shape and
dtype, subgraphs are framed clusters.  Every node is a ``<g class="node" data-id="...">`` so the
HTML page can make it clickable.
"""

from __future__ import annotations

import itertools
from html import escape

from tflite_ref.graph.dot import COLOURS
from tflite_ref.graph.layout import FONT, LINE_H, PAD_Y, Box, Layout, Route, node_lines
from tflite_ref.graph.model import Graph, Node

MARGIN = 10

_STYLE = """
svg.tflite-ref-graph .cluster rect { fill: #fbfbfc; stroke: #b8bec6; stroke-width: 1; }
svg.tflite-ref-graph .cluster text { font-size: 12px; fill: #555; font-weight: bold; }
svg.tflite-ref-graph .edge path { fill: none; stroke: #6b7280; stroke-width: 1.2; }
svg.tflite-ref-graph .edge.call path { stroke-dasharray: 5 4; stroke: #9ca3af; }
svg.tflite-ref-graph .edge text { font-size: 10px; fill: #374151; paint-order: stroke;
    stroke: #ffffff; stroke-width: 3px; stroke-linejoin: round; }
svg.tflite-ref-graph .node rect { stroke: #4b5563; stroke-width: 1; }
svg.tflite-ref-graph .node text { font-size: 12px; fill: #111827; }
svg.tflite-ref-graph .node text.title { font-weight: bold; }
svg.tflite-ref-graph .node:hover rect { stroke: #2563eb; stroke-width: 2; }
svg.tflite-ref-graph .node.selected rect { stroke: #dc2626; stroke-width: 2.5; }
"""


def dom_id(node_id: str) -> str:
    """A node id usable as an XML/HTML id and CSS selector."""
    return "n-" + "".join(c if c.isalnum() else "-" for c in node_id)


def _path(route: Route) -> str:
    pts = route.points
    if route.curve == "bezier" and len(pts) >= 4:
        d = [f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"]
        k = 1
        while k + 2 < len(pts):
            (x1, y1), (x2, y2), (x3, y3) = pts[k], pts[k + 1], pts[k + 2]
            d.append(f"C{x1:.1f},{y1:.1f} {x2:.1f},{y2:.1f} {x3:.1f},{y3:.1f}")
            k += 3
        return " ".join(d)
    if route.curve == "smooth" and len(pts) >= 2:
        d = [f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"]
        for (ax, ay), (bx, by) in itertools.pairwise(pts):
            dy = (by - ay) / 2
            d.append(f"C{ax:.1f},{ay + dy:.1f} {bx:.1f},{by - dy:.1f} {bx:.1f},{by:.1f}")
        return " ".join(d)
    return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts)


def _node(node: Node, box: Box) -> str:
    fill = COLOURS.get(node.category, "#ffffff")
    rx = box.h / 2 if node.kind in ("input", "output") else 6
    lines = node_lines(node)
    tip = escape(node.details.get("title", node.title)) if node.details else escape(node.title)
    parts = [(f'<g class="node {escape(node.category)} {escape(node.kind)}" '
             f'id="{dom_id(node.id)}" data-id="{escape(node.id)}"><title>{tip}</title>'),
             (f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
             f'rx="{rx:.1f}" fill="{fill}"/>')]
    y = box.y + PAD_Y + FONT - 1
    for k, line in enumerate(lines):
        cls = ' class="title"' if k == 0 else ""
        parts.append(f'<text x="{box.cx:.1f}" y="{y:.1f}" text-anchor="middle"{cls}>'
                     f"{escape(line)}</text>")
        y += LINE_H
    parts.append("</g>")
    return "".join(parts)


def render_svg(graph: Graph, layout: Layout, *, title: str | None = None) -> str:
    """The whole picture as one ``<svg>`` element (usable as a file or inlined in HTML)."""
    w, h = layout.width + 2 * MARGIN, layout.height + 2 * MARGIN
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="tflite-ref-graph" '
           f'viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" height="{h:.0f}" '
           'font-family="Helvetica, Arial, DejaVu Sans, sans-serif">'),
           f"<title>{escape(title or graph.model)}</title>",
           f"<style>{_STYLE}</style>",
           ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'fill="#6b7280"/></marker></defs>'),
           f'<rect class="background" width="{w:.0f}" height="{h:.0f}" fill="#ffffff"/>',
           f'<g class="viewport" transform="translate({MARGIN},{MARGIN})">']
    for cl in graph.clusters:
        box = layout.clusters.get(cl.subgraph)
        if box is None:
            continue
        out.append(f'<g class="cluster" data-subgraph="{cl.subgraph}"><rect x="{box.x:.1f}" '
                   f'y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="8"/>'
                   f'<text x="{box.x + 8:.1f}" y="{box.y + 15:.1f}">subgraph {cl.subgraph}: '
                   f"{escape(cl.name)}</text></g>")
    for route in layout.routes:
        e = graph.edges[route.edge]
        cls = "edge call" if e.kind == "call" else "edge"
        out.append(f'<g class="{cls}" data-tensor="{e.tensor}"><path d="{_path(route)}" '
                   'marker-end="url(#arrow)"/>')
        if route.label_at is not None and e.label:
            lx, ly = route.label_at
            anchor = "middle" if layout.engine == "graphviz" else "start"
            out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">'
                       f"{escape(e.label)}</text>")
        out.append("</g>")
    for node in graph.nodes:
        box = layout.boxes.get(node.id)
        if box is not None:
            out.append(_node(node, box))
    out.append("</g></svg>")
    return "\n".join(out) + "\n"
