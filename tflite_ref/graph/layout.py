"""Where every box, edge and cluster of a :class:`~tflite_ref.graph.model.Graph` goes.

Two engines produce the same :class:`Layout`:

* ``"graphviz"``: Graphviz's ``dot`` (the ``graphviz`` Python package when installed, else the
  ``dot`` program on PATH) lays out the DOT text of :mod:`tflite_ref.graph.dot` with our box
  sizes; its JSON output (``-Tjson0``) gives centres, cluster boxes and edge splines.
* ``"builtin"``: a small layered (Sugiyama-style) layout in pure Python: longest-path layers
  (a TFLite graph is stored in execution order, so producers come first), dummy nodes on edges
  that skip layers, barycenter ordering sweeps, then x positions pulled toward the neighbours'
  mean without overlaps.  Good enough for the straight pipelines TFLite models mostly are.

``engine="auto"`` takes Graphviz when it is there.  Sizes are in SVG pixels (1 px = 1 point).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tflite_ref.errors import UsageError
from tflite_ref.graph.model import Edge, Graph, Node

FONT = 12  # px: operator text
CHAR_W = 6.8  # average width of a character at FONT (DejaVu Sans / Helvetica)
LINE_H = 15
PAD_X, PAD_Y = 10, 8
MAX_LINE = 44  # characters per line in a box before it is cut
LAYER_GAP = 46  # vertical space between layers (room for an edge label)
NODE_GAP = 28
CLUSTER_PAD = 18
CLUSTER_TITLE = 22
CLUSTER_GAP = 48
ENGINES = ("auto", "graphviz", "builtin")


@dataclass(frozen=True, slots=True)
class Box:
    x: float  # left
    y: float  # top
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass(frozen=True, slots=True)
class Route:
    """An edge's path: ``points`` is a polyline (``curve="smooth"``: drawn with vertical
    tangents) or cubic Bézier control points ``p0 c1 c2 p1 c1 c2 p2 ...`` (``"bezier"``)."""

    edge: int  # index in Graph.edges
    points: tuple[tuple[float, float], ...]
    curve: str
    label_at: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class Layout:
    engine: str  # "graphviz" or "builtin"
    width: float
    height: float
    boxes: dict[str, Box]
    routes: tuple[Route, ...]
    clusters: dict[int, Box]


def node_lines(node: Node) -> list[str]:
    return [cut(node.title)] + [cut(line) for line in node.lines]


def cut(text: str, width: int = MAX_LINE) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def node_size(node: Node) -> tuple[float, float]:
    lines = node_lines(node)
    # The first line is bold: about 12 % wider per character.
    w = max([len(lines[0]) * CHAR_W * 1.12] + [len(s) * CHAR_W for s in lines[1:]]) + 2 * PAD_X
    w = max(w, 70.0 if node.kind == "op" else 60.0)
    h = len(lines) * LINE_H + 2 * PAD_Y
    return round(w, 1), round(h, 1)


def graphviz_available() -> bool:
    try:
        import graphviz  # type: ignore[import-not-found,unused-ignore]  # noqa: F401

        return shutil.which("dot") is not None
    except ImportError:
        return shutil.which("dot") is not None


def layout_graph(graph: Graph, engine: str = "auto") -> Layout:
    if engine not in ENGINES:
        raise UsageError(f"unknown layout engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "graphviz" or (engine == "auto" and graphviz_available()):
        if not graphviz_available():
            raise UsageError("Graphviz is not installed: install the `dot` program (Debian: "
                             "apt-get install graphviz) or use --engine builtin")
        return _graphviz_layout(graph)
    return _builtin_layout(graph)


# ------------------------------------------------------------------------------------------------
# Graphviz
# ------------------------------------------------------------------------------------------------
def _run_dot(source: str) -> dict[str, Any]:
    try:
        import graphviz  # type: ignore[import-not-found,unused-ignore]

        out = graphviz.Source(source).pipe(format="json0", engine="dot")
    except ImportError:
        dot = shutil.which("dot")
        assert dot is not None
        proc = subprocess.run([dot, "-Tjson0"], input=source.encode(), capture_output=True,
                              timeout=120, check=False)
        if proc.returncode != 0:
            raise UsageError(f"dot failed: {proc.stderr.decode(errors='replace').strip()}")
        out = proc.stdout
    result: dict[str, Any] = json.loads(out)
    return result


def _graphviz_layout(graph: Graph) -> Layout:
    from tflite_ref.graph.dot import render_dot

    sizes = {n.id: node_size(n) for n in graph.nodes}
    data = _run_dot(render_dot(graph, sizes=sizes))
    height = float(data["bb"].split(",")[3])
    width = float(data["bb"].split(",")[2])
    ids = {n.id for n in graph.nodes}
    boxes: dict[str, Box] = {}
    clusters: dict[int, Box] = {}
    gvid_name: dict[int, str] = {}
    for obj in data.get("objects", []):
        name = obj.get("name", "")
        gvid_name[int(obj["_gvid"])] = name
        if name.startswith("cluster_") and "bb" in obj:
            x0, y0, x1, y1 = (float(v) for v in obj["bb"].split(","))
            clusters[int(name.split("_", 1)[1])] = Box(x0, height - y1, x1 - x0, y1 - y0)
        elif name in ids and "pos" in obj:
            cx, cy = (float(v) for v in obj["pos"].split(","))
            w, h = float(obj["width"]) * 72, float(obj["height"]) * 72
            boxes[name] = Box(cx - w / 2, height - cy - h / 2, w, h)
    index = {(e.source, e.target, e.tensor): k for k, e in enumerate(graph.edges)}
    routes = []
    for e in data.get("edges", []):
        key = e.get("id", "")
        k = int(key[1:]) if key.startswith("e") and key[1:].isdigit() else index.get(
            (gvid_name.get(int(e["tail"]), ""), gvid_name.get(int(e["head"]), ""), -1), -1)
        if k < 0 or "pos" not in e:
            continue
        pts, end = _spline(e["pos"], height)
        if end is not None:
            # dot stops the spline short of the box for its arrowhead: finish with a straight
            # cubic segment to the tip so our own arrowhead lands where dot's would.
            last = pts[-1]
            pts += [last, end, end]
        lp = e.get("lp")
        label_at = None
        if lp:
            lx, ly = (float(v) for v in lp.split(","))
            label_at = (lx, height - ly)
        routes.append(Route(k, tuple(pts), "bezier", label_at))
    return Layout("graphviz", width, height, boxes, tuple(routes), clusters)


def _spline(pos: str, height: float) -> tuple[list[tuple[float, float]],
                                               tuple[float, float] | None]:
    end = None
    pts: list[tuple[float, float]] = []
    for tok in pos.split():
        if tok.startswith("e,"):
            x, y = (float(v) for v in tok[2:].split(","))
            end = (x, height - y)
        elif tok.startswith("s,"):
            continue
        else:
            x, y = (float(v) for v in tok.split(","))
            pts.append((x, height - y))
    return pts, end


# ------------------------------------------------------------------------------------------------
# Built-in layered layout
# ------------------------------------------------------------------------------------------------
def _builtin_layout(graph: Graph) -> Layout:
    boxes: dict[str, Box] = {}
    clusters: dict[int, Box] = {}
    dummy_paths: dict[int, list[tuple[float, float]]] = {}
    x_offset = 0.0
    height = 0.0
    for cl in graph.clusters:
        members = set(cl.nodes)
        edges = [(k, e) for k, e in enumerate(graph.edges)
                 if e.kind == "tensor" and e.source in members and e.target in members]
        local, paths, w, h = _layered([graph.node(n) for n in cl.nodes], edges)
        ox, oy = x_offset + CLUSTER_PAD, CLUSTER_PAD + CLUSTER_TITLE
        for nid, b in local.items():
            boxes[nid] = Box(b.x + ox, b.y + oy, b.w, b.h)
        for k, pts in paths.items():
            dummy_paths[k] = [(x + ox, y + oy) for x, y in pts]
        cw, ch = w + 2 * CLUSTER_PAD, h + 2 * CLUSTER_PAD + CLUSTER_TITLE
        clusters[cl.subgraph] = Box(x_offset, 0.0, cw, ch)
        x_offset += cw + CLUSTER_GAP
        height = max(height, ch)
    # Edges leave and enter a box at ports spread along its bottom / top edge, in edge order.
    outgoing: dict[str, list[int]] = {}
    incoming: dict[str, list[int]] = {}
    for k, e in enumerate(graph.edges):
        if e.kind == "tensor":
            outgoing.setdefault(e.source, []).append(k)
            incoming.setdefault(e.target, []).append(k)
    routes = []
    for k, e in enumerate(graph.edges):
        if e.kind == "call":
            src = boxes.get(e.source)
            frame = clusters.get(int(e.target.split(":", 1)[1]))
            if src is None or frame is None:
                continue
            start = (src.x + src.w, src.y + src.h / 2)
            end = (frame.x, frame.y + CLUSTER_TITLE)
            routes.append(Route(k, (start, end), "line", ((start[0] + end[0]) / 2,
                                                          (start[1] + end[1]) / 2 - 4)))
            continue
        s, t = boxes.get(e.source), boxes.get(e.target)
        if s is None or t is None:
            continue
        pts = ([_port(s, k, outgoing[e.source], below=True)] + dummy_paths.get(k, [])
               + [_port(t, k, incoming[e.target], below=False)])
        mid = len(pts) // 2
        (ax, ay), (bx, by) = pts[mid - 1], pts[mid]
        routes.append(Route(k, tuple(pts), "smooth", ((ax + bx) / 2 + 4, (ay + by) / 2 + 4)))
    width = max(x_offset - CLUSTER_GAP, 1.0)
    return Layout("builtin", width, max(height, 1.0), boxes, tuple(routes), clusters)


def _port(box: Box, edge: int, edges: list[int], below: bool) -> tuple[float, float]:
    n = len(edges)
    x = box.cx if n <= 1 else box.x + box.w * (edges.index(edge) + 1) / (n + 1)
    return (x, box.y + box.h if below else box.y)


def _layered(nodes: list[Node], edges: list[tuple[int, Edge]]
             ) -> tuple[dict[str, Box], dict[int, list[tuple[float, float]]], float, float]:
    """Lay out one cluster; returns boxes (origin at the cluster's content corner), the dummy
    points of long edges, and the content size."""
    order = [n.id for n in nodes]
    pos = {nid: k for k, nid in enumerate(order)}
    preds: dict[str, list[str]] = {nid: [] for nid in order}
    succs: dict[str, list[str]] = {nid: [] for nid in order}
    for _, e in edges:
        preds[e.target].append(e.source)
        succs[e.source].append(e.target)
    kinds = {n.id: n.kind for n in nodes}
    # Longest-path layers.  Nodes are stored producers first; a back edge (not expected in a
    # valid TFLite subgraph) is ignored rather than looped on.
    layer: dict[str, int] = {}
    for nid in order:
        ps = [layer[p] for p in preds[nid] if p in layer]
        layer[nid] = (max(ps) + 1) if ps else 0
    for nid in order:  # variables/unwritten tensors sit just above their first reader
        if kinds[nid] == "source" and succs[nid]:
            layer[nid] = max(0, min(layer[s] for s in succs[nid]) - 1)
    n_layers = max(layer.values(), default=0) + 1
    rows: list[list[str]] = [[] for _ in range(n_layers)]
    for nid in sorted(order, key=lambda n: pos[n]):
        rows[layer[nid]].append(nid)
    # Dummy nodes on edges that skip layers.
    chains: dict[int, list[str]] = {}
    up: dict[str, list[str]] = {nid: [] for nid in order}
    down: dict[str, list[str]] = {nid: [] for nid in order}
    for k, e in edges:
        a, b = layer[e.source], layer[e.target]
        prev = e.source
        chain = []
        for lay in range(a + 1, b):
            d = f"~{k}:{lay}"
            rows[lay].append(d)
            up[d], down[d] = [prev], []
            down[prev].append(d)
            chain.append(d)
            prev = d
        down[prev].append(e.target)
        up[e.target].append(prev)
        chains[k] = chain
    # Barycenter ordering sweeps.
    for _ in range(4):
        for lay in range(1, n_layers):
            _sort_by(rows[lay], rows[lay - 1], up)
        for lay in range(n_layers - 2, -1, -1):
            _sort_by(rows[lay], rows[lay + 1], down)
    sizes = {n.id: node_size(n) for n in nodes}

    def width_of(nid: str) -> float:
        return sizes[nid][0] if nid in sizes else 8.0  # dummy nodes are thin

    # x: pack, then pull each node toward its neighbours' mean, keeping order and gaps.
    x: dict[str, float] = {}
    for row in rows:
        cur = 0.0
        for nid in row:
            x[nid] = cur + width_of(nid) / 2
            cur += width_of(nid) + NODE_GAP
    for it in range(8):
        sweep = range(1, n_layers) if it % 2 == 0 else range(n_layers - 2, -1, -1)
        nbrs = up if it % 2 == 0 else down
        for lay in sweep:
            row = rows[lay]
            want = [sum(x[p] for p in nbrs[nid]) / len(nbrs[nid]) if nbrs[nid] else x[nid]
                    for nid in row]
            _place(row, want, x, width_of)
    left = min((x[n] - width_of(n) / 2 for row in rows for n in row), default=0.0)
    for nid in x:
        x[nid] -= left
    # y: one band per layer.
    heights = [max((sizes[n][1] if n in sizes else 0.0) for n in row) if row else 0.0
               for row in rows]
    tops = []
    cur = 0.0
    for h in heights:
        tops.append(cur)
        cur += h + LAYER_GAP
    total_h = max(cur - LAYER_GAP, 0.0)
    boxes: dict[str, Box] = {}
    for lay, row in enumerate(rows):
        for nid in row:
            if nid in sizes:
                w, h = sizes[nid]
                boxes[nid] = Box(x[nid] - w / 2, tops[lay] + (heights[lay] - h) / 2, w, h)
    paths = {k: [(x[d], tops[layer_of(d)] + heights[layer_of(d)] / 2) for d in chain]
             for k, chain in chains.items() if chain}
    total_w = max((b.x + b.w for b in boxes.values()), default=0.0)
    total_w = max(total_w, max((x[d] for row in rows for d in row if d not in sizes),
                               default=0.0))
    return boxes, paths, total_w, total_h


def layer_of(dummy: str) -> int:
    return int(dummy.rsplit(":", 1)[1])


def _sort_by(row: list[str], ref: list[str], nbrs: dict[str, list[str]]) -> None:
    where = {n: k for k, n in enumerate(ref)}
    current = {n: k for k, n in enumerate(row)}

    def key(n: str) -> float:
        ps = [where[p] for p in nbrs[n] if p in where]
        return sum(ps) / len(ps) if ps else float(current[n])

    row.sort(key=lambda n: (key(n), current[n]))


def _place(row: list[str], want: list[float], x: dict[str, float],
           width_of: Callable[[str], float]) -> None:
    """Centres as close to ``want`` as the order and the gaps allow (two passes, averaged)."""
    n = len(row)
    if n == 0:
        return
    fwd = [0.0] * n
    for k in range(n):
        lo = fwd[k - 1] + (width_of(row[k - 1]) + width_of(row[k])) / 2 + NODE_GAP if k else None
        fwd[k] = want[k] if lo is None else max(want[k], lo)
    bwd = [0.0] * n
    for k in range(n - 1, -1, -1):
        hi = (bwd[k + 1] - (width_of(row[k + 1]) + width_of(row[k])) / 2 - NODE_GAP
              if k < n - 1 else None)
        bwd[k] = want[k] if hi is None else min(want[k], hi)
    avg = [(a + b) / 2 for a, b in zip(fwd, bwd)]
    for k in range(1, n):  # the average can still overlap: a last left-to-right push
        lo = avg[k - 1] + (width_of(row[k - 1]) + width_of(row[k])) / 2 + NODE_GAP
        avg[k] = max(avg[k], lo)
    for nid, v in zip(row, avg):
        x[nid] = v
