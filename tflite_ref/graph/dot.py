"""The graph as Graphviz DOT text: a file for the user (``tflite-ref graph -o model.dot``), and
the input of the Graphviz layout engine (``sizes=``: boxes of fixed size, no text, so that dot
places the boxes our SVG writer draws)."""

from __future__ import annotations

from tflite_ref.graph.model import Graph, Node

# Fill colours per operator family (also used by the SVG writer).
COLOURS = {
    "conv": "#cfe2ff", "elementwise": "#d1f0d8", "activation": "#ffe5c2", "pooling": "#e3dcf5",
    "quantize": "#f5d5e6", "recurrent": "#fff3b0", "control": "#e0e0e0", "layout": "#eef1f4",
    "custom": "#ffd0d0", "io": "#ffffff",
}


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _label(node: Node) -> str:
    return "\n".join([node.title, *node.lines])


def render_dot(graph: Graph, sizes: dict[str, tuple[float, float]] | None = None) -> str:
    """DOT text.  ``sizes`` (node id -> (width, height) in points) writes the layout input:
    fixed-size empty boxes, edge labels kept so dot leaves room for them."""
    layout = sizes is not None
    out = ["digraph model {",
           "  compound=true; rankdir=TB; nodesep=0.35; ranksep=0.45;",
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
           '  edge [fontname="Helvetica", fontsize=10, color="#555555"];']
    by_id = {n.id: n for n in graph.nodes}
    for cl in graph.clusters:
        out.append(f"  subgraph cluster_{cl.subgraph} {{")
        out.append(f"    label={_q(f'subgraph {cl.subgraph}: {cl.name}')}; "
                   'style="rounded"; color="#999999"; fontname="Helvetica";')
        for nid in cl.nodes:
            n = by_id[nid]
            attrs = []
            if layout:
                assert sizes is not None
                w, h = sizes[nid]
                attrs += [f"width={w / 72:.4f}", f"height={h / 72:.4f}", "fixedsize=true",
                          'label=""']
            else:
                attrs.append(f"label={_q(_label(n))}")
                attrs.append(f'fillcolor="{COLOURS.get(n.category, "#ffffff")}"')
                if n.kind != "op":
                    attrs.append("shape=box" if n.kind == "source" else "shape=oval")
            attrs.append(f"id={_q(nid)}")
            out.append(f"    {_q(nid)} [{', '.join(attrs)}];")
        out.append("  }")
    first = {cl.subgraph: cl.nodes[0] for cl in graph.clusters if cl.nodes}
    for k, e in enumerate(graph.edges):
        if e.kind == "call":
            callee = int(e.target.split(":", 1)[1])
            if callee not in first:
                continue
            out.append(f"  {_q(e.source)} -> {_q(first[callee])} [lhead=cluster_{callee}, "
                       f'style=dashed, label={_q(e.label)}, id="e{k}"];')
        else:
            out.append(f"  {_q(e.source)} -> {_q(e.target)} [label={_q(e.label)}, id=\"e{k}\"];")
    out.append("}")
    return "\n".join(out) + "\n"
