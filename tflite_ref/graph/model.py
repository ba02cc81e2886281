"""The graph of a model as drawable data: operators are nodes, tensors are edges.

Constants (weights, biases, shape vectors) are folded into the operator that reads them and listed
in its box; subgraph inputs and outputs become small terminal nodes; every subgraph is a cluster,
and control-flow operators (WHILE, IF, CALL, CALL_ONCE) get a dashed link to the subgraphs they
run.  Each node carries the details the HTML side panel shows.  Nothing here lays out or draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tflite_ref.model.model import Model, Operator, Subgraph, Tensor
from tflite_ref.model.validate import SUBGRAPH_OPTION_FIELDS

_SHORT = {"FLOAT32": "f32", "FLOAT16": "f16", "INT8": "i8", "UINT8": "u8", "INT16": "i16",
          "INT32": "i32", "INT64": "i64", "BOOL": "bool", "INT4": "i4", "UINT32": "u32",
          "UINT64": "u64", "STRING": "str", "RESOURCE": "res", "FLOAT64": "f64"}

# Colour families of operators (fill colours of the boxes).
CATEGORIES = {
    "conv": {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED",
             "BATCH_MATMUL", "CONV_3D"},
    "elementwise": {"ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE",
                    "FLOOR_DIV", "FLOOR_MOD", "POW", "ADD_N", "RSQRT", "SQRT", "EXP", "LOG",
                    "ABS", "NEG", "SQUARE", "SIN", "COS"},
    "activation": {"RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH", "SOFTMAX",
                   "LOG_SOFTMAX", "HARD_SWISH", "LEAKY_RELU", "PRELU", "ELU", "GELU"},
    "pooling": {"AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D", "MEAN", "SUM", "REDUCE_MAX",
                "REDUCE_MIN", "REDUCE_PROD"},
    "quantize": {"QUANTIZE", "DEQUANTIZE", "CAST"},
    "recurrent": {"UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "SVDF", "RNN",
                  "UNIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_RNN", "LSTM"},
    "control": {"WHILE", "IF", "CALL", "CALL_ONCE"},
}


def category(opcode: str) -> str:
    if opcode.startswith("CUSTOM"):
        return "custom"
    for name, ops in CATEGORIES.items():
        if opcode in ops:
            return name
    return "layout"


def short_dtype(name: str) -> str:
    return _SHORT.get(name, name.lower())


def shape_text(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "?"
    return "x".join("?" if d < 0 else str(d) for d in shape) if shape else "scalar"


def tensor_text(t: Tensor) -> str:
    """``1x25x5x64 i8`` (the shape signature's -1 shows as ``?``)."""
    shape = t.shape_signature if t.shape_signature is not None else t.shape
    return f"{shape_text(shape)} {short_dtype(t.type_name)}"


def quant_text(t: Tensor) -> str:
    q = t.quantization
    if q is None or not q.is_quantized:
        return ""
    if q.scale.size == 1:
        return f"s={float(q.scale[0]):.4g} z={int(q.zero_point[0])}"
    return f"{q.scale.size} scales (axis {q.quantized_dimension})"


# ------------------------------------------------------------------------------------------------
# The graph
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Node:
    id: str  # unique over the model: "s0:op3", "s0:in5", "s0:out7", "s0:var9"
    subgraph: int
    kind: str  # "op", "input", "output", "source" (a tensor nothing in the subgraph writes)
    title: str  # "CONV_2D", or the tensor name for terminals
    lines: tuple[str, ...]  # key options, then the folded constants
    category: str  # colour family ("conv", "activation", ... "io")
    details: dict[str, Any] = field(default_factory=dict)  # for the HTML side panel (JSON-ready)


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    subgraph: int
    tensor: int  # -1 for a control-flow link
    label: str  # "1x25x5x64 i8"
    kind: str = "tensor"  # or "call" (control flow: operator -> called subgraph)


@dataclass(frozen=True, slots=True)
class Cluster:
    subgraph: int
    name: str
    nodes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Graph:
    model: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    clusters: tuple[Cluster, ...]

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)


def _tensor_details(t: Tensor) -> dict[str, Any]:
    return {"index": t.index, "name": t.name, "type": t.type_name, "shape": list(t.shape),
            "quantization": quant_text(t), "constant": t.is_constant}


# What a constant input slot holds, for the box text ("filter 64x3x3x8 i8").
_ROLES: dict[str, dict[int, str]] = {
    "CONV_2D": {1: "filter", 2: "bias"}, "DEPTHWISE_CONV_2D": {1: "filter", 2: "bias"},
    "TRANSPOSE_CONV": {0: "output shape", 1: "filter", 3: "bias"},
    "FULLY_CONNECTED": {1: "weights", 2: "bias"}, "BATCH_MATMUL": {1: "rhs"},
    "RESHAPE": {1: "shape"}, "PAD": {1: "paddings", 2: "value"}, "PADV2": {1: "paddings",
                                                                         2: "value"},
    "TRANSPOSE": {1: "perm"}, "STRIDED_SLICE": {1: "begin", 2: "end", 3: "strides"},
    "GATHER": {1: "indices"}, "SPLIT": {0: "axis"}, "SPLIT_V": {1: "sizes", 2: "axis"},
    "SVDF": {1: "feature weights", 2: "time weights", 3: "bias"}, "PRELU": {1: "alpha"},
    **{op: {1: "axis"} for op in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD",
                                  "ARG_MAX", "ARG_MIN", "EXPAND_DIMS", "CUMSUM")},
}
MAX_CONSTANT_LINES = 5


def _folded(t: Tensor) -> bool:
    """Constants drawn inside their reader's box, not as edges."""
    return t.is_constant and not t.is_variable


def _options_text(op: Operator) -> str:
    from tflite_ref.inspect import key_options  # late: inspect is larger than the graph needs

    parts = []
    for k, v in key_options(op).items():
        if k in ("padding", "activation"):
            parts.append(str(v))
        elif isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v):
            parts.append(f"{k} {v[0]}x{v[1]}")
        elif isinstance(v, float):
            parts.append(f"{k} {v:.4g}")
        else:
            parts.append(f"{k} {v}")
    return " ".join(parts)


def _callees(op: Operator, n_subgraphs: int) -> list[int]:
    out = []
    for name in SUBGRAPH_OPTION_FIELDS:
        v = op.options.get(name)
        if isinstance(v, int) and 0 <= v < n_subgraphs and v not in out:
            out.append(v)
    return out


def _subgraph_nodes(model: Model, sg: Subgraph, nodes: list[Node], edges: list[Edge]) -> list[str]:
    si = sg.index
    ids: list[str] = []
    producer: dict[int, str] = {}
    for ti in sg.inputs:
        t = sg.tensors[ti]
        nid = f"s{si}:in{ti}"
        nodes.append(Node(nid, si, "input", t.name or f"input {ti}", (tensor_text(t),
                          quant_text(t)) if quant_text(t) else (tensor_text(t),), "io",
                          {"title": f"input tensor {ti}", "tensor": _tensor_details(t)}))
        ids.append(nid)
        producer[ti] = nid
    for op in sg.operators:
        nid = f"s{si}:op{op.index}"
        consts = []
        roles = _ROLES.get(op.opcode, {})
        for slot, ti in enumerate(op.inputs):
            if ti >= 0 and _folded(sg.tensors[ti]):
                consts.append(f"{roles.get(slot, f'in{slot}')} {tensor_text(sg.tensors[ti])}")
        if len(consts) > MAX_CONSTANT_LINES:
            consts[MAX_CONSTANT_LINES - 1:] = [(f"+ {len(consts) - MAX_CONSTANT_LINES + 1} more "
                                               "constants")]
        opts = _options_text(op)
        lines = tuple(x for x in ([opts] if opts else []) + consts)
        callees = _callees(op, len(model.subgraphs))
        details = {
            "title": f"operator {op.index}: {op.opcode}",
            "subgraph": si, "operator": op.index, "opcode": op.opcode, "version": op.version,
            "options": {k: _jsonable(v) for k, v in op.options.items()},
            "inputs": [None if ti < 0 else _tensor_details(sg.tensors[ti]) for ti in op.inputs],
            "outputs": [_tensor_details(sg.tensors[ti]) for ti in op.outputs],
            "calls": callees,
        }
        if op.custom_code is not None:
            details["custom_code"] = op.custom_code
        nodes.append(Node(nid, si, "op", op.opcode, lines, category(op.opcode), details))
        ids.append(nid)
        for ti in op.inputs:
            if ti < 0 or _folded(sg.tensors[ti]):
                continue
            src = producer.get(ti)
            if src is None:  # a variable or a tensor nothing writes: draw where it comes from
                t = sg.tensors[ti]
                src = f"s{si}:var{ti}"
                kind = "variable" if t.is_variable else "unwritten tensor"
                nodes.append(Node(src, si, "source", t.name or f"tensor {ti}",
                                  (f"{kind} {tensor_text(t)}",), "io",
                                  {"title": f"{kind} {ti}", "tensor": _tensor_details(t)}))
                ids.append(src)
                producer[ti] = src
            edges.append(Edge(src, nid, si, ti, tensor_text(sg.tensors[ti])))
        for ti in op.outputs:
            producer[ti] = nid
        for callee in callees:
            edges.append(Edge(nid, f"cluster:{callee}", si, -1, f"runs subgraph {callee}",
                              "call"))
    for ti in sg.outputs:
        t = sg.tensors[ti]
        nid = f"s{si}:out{ti}"
        nodes.append(Node(nid, si, "output", t.name or f"output {ti}", (tensor_text(t),), "io",
                          {"title": f"output tensor {ti}", "tensor": _tensor_details(t)}))
        ids.append(nid)
        src = producer.get(ti)
        if src is not None:
            edges.append(Edge(src, nid, si, ti, tensor_text(t)))
    return ids


def short_name(name: str, width: int = 28) -> str:
    """Converter-fused names keep their last path component of the first part:
    ``model/conv2d/Conv2D;...`` -> ``Conv2D``; long ones lose their middle."""
    first = name.split(";", 1)[0]
    base = first.rsplit("/", 1)[-1] or first
    if len(base) > width:
        keep = width - 1
        base = base[: keep // 2] + "…" + base[len(base) - (keep - keep // 2):]
    return base


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


def build_graph(model: Model) -> Graph:
    """The drawable graph of every subgraph of ``model``."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    clusters = []
    for sg in model.subgraphs:
        ids = _subgraph_nodes(model, sg, nodes, edges)
        clusters.append(Cluster(sg.index, sg.name or f"subgraph {sg.index}", tuple(ids)))
    return Graph(model.path or "<bytes>", tuple(nodes), tuple(edges), tuple(clusters))
