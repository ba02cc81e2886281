"""The model graph as a picture: SVG, self-contained HTML (pan/zoom, details panel) or DOT.

    from tflite_ref.graph import write_graph
    write_graph("model.tflite", "model.html")       # engine="auto": Graphviz when present

:func:`build_graph` (:mod:`.model`) turns a Model into nodes and edges, :func:`layout_graph`
(:mod:`.layout`) places them with Graphviz or the built-in layered layout, and the writers
(:mod:`.svg`, :mod:`.html`, :mod:`.dot`) draw the result.
"""

from __future__ import annotations

import os
from pathlib import Path

from tflite_ref.errors import UsageError
from tflite_ref.graph.dot import render_dot
from tflite_ref.graph.html import graph_block, render_html
from tflite_ref.graph.layout import ENGINES, Layout, graphviz_available, layout_graph
from tflite_ref.graph.model import Cluster, Edge, Graph, Node, build_graph
from tflite_ref.graph.svg import render_svg
from tflite_ref.model.model import Model

FORMATS = ("svg", "html", "dot")


def graph_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The output format: given, or from the file's suffix."""
    chosen = fmt or Path(path).suffix.lower().lstrip(".")
    if chosen == "htm":
        chosen = "html"
    if chosen not in FORMATS:
        raise UsageError(f"cannot tell the format of {os.fspath(path)!r}: name it .svg, .html "
                         "or .dot (or give --format)")
    return chosen


def render_graph(model: Model, fmt: str, engine: str = "auto") -> tuple[str, Layout | None]:
    """The text of the picture in ``fmt``; DOT needs no layout (None)."""
    graph = build_graph(model)
    if fmt == "dot":
        return render_dot(graph), None
    layout = layout_graph(graph, engine)
    title = Path(model.path).name if model.path else None
    if fmt == "svg":
        return render_svg(graph, layout, title=title), layout
    return render_html(graph, layout, title=title), layout


def notebook_html(model: Model, engine: str = "auto") -> str:
    """What Jupyter shows for a Model (``Model._repr_html_``): a one-line summary and the graph
    as static inline SVG (notebooks need not run the page's script), scrollable."""
    from html import escape

    graph = build_graph(model)
    layout = layout_graph(graph, engine)
    n_ops = sum(len(sg.operators) for sg in model.subgraphs)
    name = Path(model.path).name if model.path else "model"
    svg = render_svg(graph, layout, title=name)
    return (f"<div><b>{escape(name)}</b>: {n_ops} operators, {len(model.subgraphs)} "
            f"subgraph(s), {model.size_bytes:,} bytes"
            f'<div style="max-height:640px;overflow:auto;border:1px solid #ddd">{svg}</div></div>')


def write_graph(model: Model | str | os.PathLike[str] | bytes, path: str | os.PathLike[str],
                fmt: str | None = None, engine: str = "auto") -> Layout | None:
    """Write the picture of ``model`` to ``path``; returns the layout used (None for DOT)."""
    from tflite_ref.trace import as_model

    m = as_model(model)
    text, layout = render_graph(m, graph_format(path, fmt), engine)
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {os.fspath(path)}: {exc.strerror}") from None
    return layout


__all__ = [
    "ENGINES",
    "FORMATS",
    "Cluster",
    "Edge",
    "Graph",
    "Layout",
    "Node",
    "build_graph",
    "graph_block",
    "graph_format",
    "graphviz_available",
    "layout_graph",
    "render_dot",
    "render_graph",
    "render_html",
    "render_svg",
    "write_graph",
]
