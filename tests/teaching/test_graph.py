"""``graph``: SVG with and without Graphviz, self-contained HTML and DOT, for every corpus model.

Graphviz (the ``dot`` program, Debian package ``graphviz``) is installed by ``.ci/run``; on CI
(``CI=true``) its absence fails the Graphviz tests instead of skipping them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import SHARED_MODEL_FILES, model_id

from tflite_ref.cli.main import main
from tflite_ref.errors import UsageError
from tflite_ref.graph import (
    build_graph,
    graphviz_available,
    layout_graph,
    render_dot,
    render_html,
    render_svg,
    write_graph,
)
from tflite_ref.model.reader import load

SVG_NS = "{http://www.w3.org/2000/svg}"
WHILE_MODEL = Path(__file__).resolve().parents[1] / "micro" / "models" / "while_float.tflite"
KWS = next(p for p in SHARED_MODEL_FILES if p.stem == "kws_ref_model")


def need_graphviz() -> None:
    if graphviz_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("Graphviz (`dot`) is missing on CI: .ci/run must apt-get install graphviz")
    pytest.skip("Graphviz is not installed here (apt-get install graphviz); CI installs it")


def _nodes(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)  # well-formed XML
    return [g for g in root.iter(f"{SVG_NS}g") if "node" in (g.get("class") or "").split()]


def _ops(model_path: Path) -> int:
    return sum(len(sg.operators) for sg in load(model_path).subgraphs)


def assert_self_contained(html: str) -> None:
    """Nothing fetched from anywhere: no external src/href, no @import, no url(http...)."""
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html)
    external = [r for r in refs if not (r.startswith(("#", "data:")))]
    assert not external, external
    assert "@import" not in html and "url(http" not in html
    assert "<script src" not in html and "<link rel=\"stylesheet\"" not in html


@pytest.mark.parametrize("path", SHARED_MODEL_FILES, ids=model_id)
def test_builtin_svg_and_html_every_model(path: Path) -> None:
    m = load(path)
    graph = build_graph(m)
    layout = layout_graph(graph, "builtin")
    svg = render_svg(graph, layout)
    ops = [n for n in _nodes(svg) if "op" in n.get("class", "").split()]
    assert len(ops) == _ops(path)
    html = render_html(graph, layout)
    assert_self_contained(html)
    assert html.count('class="graph-wrap"') == 1 and "graph-details" in html
    dot = render_dot(graph)
    assert dot.startswith("digraph") and dot.count("->") >= len(graph.edges) - 1


@pytest.mark.parametrize("path", SHARED_MODEL_FILES, ids=model_id)
def test_graphviz_svg_every_model(path: Path) -> None:
    need_graphviz()
    graph = build_graph(load(path))
    layout = layout_graph(graph, "graphviz")
    assert layout.engine == "graphviz"
    assert set(layout.boxes) == {n.id for n in graph.nodes}
    svg = render_svg(graph, layout)
    assert len([n for n in _nodes(svg) if "op" in n.get("class", "").split()]) == _ops(path)
    assert len(layout.routes) == len(graph.edges)


def test_dot_file_is_valid_graphviz(tmp_path: Path) -> None:
    need_graphviz()
    out = tmp_path / "kws.dot"
    write_graph(KWS, out)
    subprocess.run([shutil.which("dot") or "dot", "-Tsvg", str(out), "-o",
                    str(tmp_path / "kws.svg")], check=True, timeout=60)
    assert (tmp_path / "kws.svg").stat().st_size > 1000


def test_boxes_carry_options_and_folded_constants() -> None:
    graph = build_graph(load(KWS))
    conv = graph.node("s0:op0")
    assert conv.title == "CONV_2D"
    assert any("stride 2x2" in line and "SAME" in line for line in conv.lines)
    assert any(line.startswith("filter 64x10x4x1 i8") for line in conv.lines)
    assert any(line.startswith("bias 64 i32") for line in conv.lines)
    # constants are folded: no edge starts at a constant tensor
    consts = {t.index for t in load(KWS).subgraphs[0].tensors if t.is_constant}
    assert not [e for e in graph.edges if e.tensor in consts]
    edge = next(e for e in graph.edges if e.target == "s0:op1")
    assert edge.label == "?x25x5x64 i8"  # shape (signature) and dtype


def test_builtin_layout_has_no_overlapping_boxes() -> None:
    for path in SHARED_MODEL_FILES[:12]:
        layout = layout_graph(build_graph(load(path)), "builtin")
        boxes = list(layout.boxes.values())
        for k, a in enumerate(boxes):
            for b in boxes[k + 1:]:
                overlap = (a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h
                           and b.y < a.y + a.h)
                assert not overlap, (model_id(path), a, b)


def test_subgraphs_are_clusters_with_call_links() -> None:
    m = load(WHILE_MODEL)
    graph = build_graph(m)
    assert len(graph.clusters) == len(m.subgraphs) > 1
    calls = [e for e in graph.edges if e.kind == "call"]
    assert calls and all(e.target.startswith("cluster:") for e in calls)
    layout = layout_graph(graph, "builtin")
    assert set(layout.clusters) == {c.subgraph for c in graph.clusters}
    svg = render_svg(graph, layout)
    assert svg.count('class="cluster"') == len(m.subgraphs)


def test_cli_formats_and_engines(tmp_path: Path, capsys) -> None:
    for name in ("g.svg", "g.html", "g.dot"):
        assert main(["graph", str(KWS), "-o", str(tmp_path / name), "--engine", "builtin"]) == 0
    assert (tmp_path / "g.svg").read_text().startswith("<svg")
    assert_self_contained((tmp_path / "g.html").read_text())
    with pytest.raises(SystemExit) as exc:
        main(["graph", str(KWS), "-o", str(tmp_path / "g.png")])
    assert exc.value.code == 2
    assert ".svg, .html or .dot" in capsys.readouterr().err


def test_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        layout_graph(build_graph(load(KWS)), "neato")


def test_model_repr_html_is_the_graph() -> None:
    html = load(KWS)._repr_html_()
    assert "<svg" in html and "CONV_2D" in html and "13 operators" in html
