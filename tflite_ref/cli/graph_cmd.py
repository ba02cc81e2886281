"""Draw the model's graph: operators as boxes (op name, key options, the constants they read),
tensors as arrows labelled with shape and dtype, subgraphs as clusters.

``-o model.svg`` writes a picture, ``-o model.html`` a self-contained page that works offline
(pan, zoom, click an operator for its details), ``-o model.dot`` Graphviz source. Graphviz lays
the graph out when it is installed (the ``dot`` program, or ``pip install tflite-ref[graphviz]``
with it); otherwise a built-in layered layout does (``--engine`` chooses).
"""

from __future__ import annotations

import argparse

from rich.console import Console

from tflite_ref.cli.run_cmd import _model_path
from tflite_ref.errors import UsageError
from tflite_ref.graph import ENGINES, FORMATS, graph_format, write_graph
from tflite_ref.model.reader import load

HELP = "draw the model graph as SVG, self-contained HTML or DOT"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="path to a .tflite file")
    p.add_argument("--example", action="store_true", help="draw the shipped example model")
    p.add_argument("-o", "--output", metavar="FILE", help="FILE.svg, FILE.html or FILE.dot")
    p.add_argument("--format", choices=FORMATS, help="the output format (default: from FILE)")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="layout: Graphviz, the built-in layered layout, or auto (Graphviz when "
                        "installed)")


def run(args: argparse.Namespace) -> int:
    path = _model_path(args)
    if not args.output:
        raise UsageError("give the picture's file name: -o model.svg, -o model.html or "
                         "-o model.dot")
    fmt = graph_format(args.output, args.format)
    layout = write_graph(load(path), args.output, fmt, args.engine)
    how = f", {layout.engine} layout" if layout is not None else ""
    Console(stderr=True, highlight=False).print(f"wrote {args.output} ({fmt}{how})")
    return 0
