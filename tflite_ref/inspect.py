"""``inspect``: what is inside a ``.tflite`` model, as a plain report.

:func:`inspect_model` turns a :class:`~tflite_ref.model.Model` into an :class:`InspectReport`:
every table of the FlatBuffer (header, signatures, metadata, subgraphs, tensors, operators) plus
what an engineer asks next (MACs per operator, where the bytes go, which quantization scheme the
model uses, which custom ops it needs). Nothing here renders: ``cli/render.py`` draws the report
with rich, and :meth:`InspectReport.to_dict` is the JSON view (``tflite-ref inspect --json``).

:func:`operator_macs` is public because the TFLite Micro tool reuses it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from tflite_ref.errors import ModelFormatError, ResourceLimitError, UsageError
from tflite_ref.model import Model, Operator, Subgraph, Tensor, load
from tflite_ref.model import ops_table
from tflite_ref.model.reader import MAX_FILE_BYTES

# Keys of the JSON view that other tools and tests rely on; bump when one changes meaning.
JSON_FORMAT_VERSION = 1

# Raw bytes (unknown metadata, undecodable custom options) are shown, not dumped: a metadata
# entry can hold megabytes (e.g. an embedded vocabulary).
BYTES_PREVIEW = 48

_MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL")

# Operators that only convert between representations; they say nothing about the scheme.
_CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE", "CAST")
_FLOAT_TYPES = ("FLOAT32", "FLOAT16", "FLOAT64")
_LOW_BIT_WEIGHTS = ("INT8", "UINT8", "INT4")


# ------------------------------------------------------------------------------------------------
# Report dataclasses
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuantInfo:
    """A tensor's quantization, as plain numbers (non-finite scales become None, as in JSON)."""

    scale: tuple[float | None, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int
    min: tuple[float | None, ...] = ()
    max: tuple[float | None, ...] = ()
    details_type: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass(frozen=True, slots=True)
class TensorInfo:
    index: int
    name: str
    dtype: str  # TFLite type name: "INT8", "FLOAT32", "TYPE_<n>" for codes newer than the schema
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    buffer: int
    bytes: int  # size at runtime: shape x element size (INT4 packed two per byte)
    buffer_bytes: int  # bytes stored in the file (0 for activations; differs when sparse)
    is_variable: bool
    is_constant: bool
    quantization: QuantInfo | None
    sparsity: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class OperatorInfo:
    index: int
    opcode: str  # "CONV_2D", or "CUSTOM:<code>"
    version: int
    inputs: tuple[int, ...]  # -1 = absent optional input
    outputs: tuple[int, ...]
    intermediates: tuple[int, ...]
    options_type: str | None
    options: dict[str, Any]  # every field, JSON-ready
    key_options: dict[str, Any]  # the few that matter for reading the graph (see key_options())
    macs: int  # 0 for operators without a MAC formula (see operator_macs)
    scheme: str  # "float", "int8", "int16x8", "hybrid", "fp16", "conversion", "custom", ...
    custom_options: dict[str, Any] | None  # {"bytes", "decoded" or "preview"} for custom ops


@dataclass(frozen=True, slots=True)
class SubgraphInfo:
    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]
    macs: int


@dataclass(frozen=True, slots=True)
class SignatureInfo:
    key: str
    subgraph_index: int
    inputs: dict[str, int]
    outputs: dict[str, int]


@dataclass(frozen=True, slots=True)
class MetadataInfo:
    name: str
    buffer: int
    bytes: int
    decoded: bool  # True when the value is a decoded known entry; False: a bytes preview
    value: Any  # JSON-ready


@dataclass(frozen=True, slots=True)
class SizeShare:
    key: str  # a dtype name or an opcode
    bytes: int
    tensors: int


@dataclass(frozen=True, slots=True)
class SizeBreakdown:
    """Where the file's bytes go. Constants are counted once per buffer (shared buffers too)."""

    file_bytes: int
    constant_bytes: int
    metadata_bytes: int
    unreferenced_buffer_bytes: int  # buffers no tensor and no metadata entry points at
    structure_bytes: int  # the rest: FlatBuffer tables, names, shapes, quantization, padding
    by_dtype: tuple[SizeShare, ...]  # largest first
    by_op: tuple[SizeShare, ...]  # by the opcode of the first consumer; "(unused)" if none

    def share(self, nbytes: int) -> float:
        return nbytes / self.file_bytes if self.file_bytes else 0.0


@dataclass(frozen=True, slots=True)
class QuantSummary:
    scheme: str  # "float", "int8", "int16x8", "hybrid", "fp16 weights", "uint8", "mixed", "none"
    description: str  # one line for people, e.g. "int8 (per-channel weights), float32 I/O"
    op_schemes: dict[str, int]  # per-operator classification -> count
    input_dtypes: tuple[str, ...]
    output_dtypes: tuple[str, ...]
    weight_dtypes: dict[str, int]  # constant, non-bias tensors by dtype
    per_tensor: int  # quantized tensors with one scale
    per_channel: int  # quantized tensors with a scale per slice
    weights_per_tensor: int  # the same, counting constant weights only (not biases)
    weights_per_channel: int


@dataclass(frozen=True, slots=True)
class CustomOpInfo:
    code: str
    count: int
    operators: tuple[tuple[int, int], ...]  # (subgraph, operator)
    options: dict[str, Any] | None  # of the first instance


@dataclass(frozen=True, slots=True)
class InspectReport:
    file: str | None
    size_bytes: int
    version: int
    description: str
    min_runtime_version: str | None
    conversion_metadata: dict[str, Any] | None
    signatures: tuple[SignatureInfo, ...]
    metadata: tuple[MetadataInfo, ...]
    subgraphs: tuple[SubgraphInfo, ...]
    subgraph_count: int  # in the model (``subgraphs`` may be filtered)
    size: SizeBreakdown
    quantization: QuantSummary
    custom_ops: tuple[CustomOpInfo, ...]
    warnings: tuple[str, ...]
    macs: int

    def select_subgraph(self, index: int) -> InspectReport:
        """The same report with only subgraph ``index`` (model-wide summaries unchanged)."""
        chosen = tuple(sg for sg in self.subgraphs if sg.index == index)
        if not chosen:
            n = self.subgraph_count
            raise UsageError(f"--subgraph {index}: the model has {n} subgraph"
                             f"{'s' if n != 1 else ''} (0..{n - 1})")
        return dataclasses.replace(self, subgraphs=chosen)

    def to_dict(self) -> dict[str, Any]:
        """The JSON view: plain dicts/lists/str/int/float/bool/None, no NaN or infinity."""
        metadata: dict[str, Any] = {}
        for k, m in enumerate(self.metadata):
            key = m.name if m.name not in metadata else f"{m.name} [{k}]"
            metadata[key] = m.value
        out = {
            "format_version": JSON_FORMAT_VERSION,
            "file": self.file,
            "size_bytes": self.size_bytes,
            "version": self.version,
            "description": self.description,
            "min_runtime_version": self.min_runtime_version,
            "conversion_metadata": self.conversion_metadata,
            "subgraph_count": self.subgraph_count,
            "macs": self.macs,
            "subgraphs": [_subgraph_dict(sg) for sg in self.subgraphs],
            "signatures": [dataclasses.asdict(s) for s in self.signatures],
            "metadata": metadata,
            "metadata_entries": [
                {"name": m.name, "buffer": m.buffer, "bytes": m.bytes, "decoded": m.decoded}
                for m in self.metadata
            ],
            "size": _size_dict(self.size),
            "quantization": dataclasses.asdict(self.quantization),
            "custom_ops": [dataclasses.asdict(c) for c in self.custom_ops],
            "warnings": list(self.warnings),
        }
        result: dict[str, Any] = jsonable(out)
        return result


def _subgraph_dict(sg: SubgraphInfo) -> dict[str, Any]:
    return {
        "index": sg.index,
        "name": sg.name,
        "inputs": list(sg.inputs),
        "outputs": list(sg.outputs),
        "macs": sg.macs,
        "tensors": [dataclasses.asdict(t) for t in sg.tensors],
        "operators": [dataclasses.asdict(op) for op in sg.operators],
    }


def _size_dict(s: SizeBreakdown) -> dict[str, Any]:
    d = dataclasses.asdict(s)
    d["constant_share"] = round(s.share(s.constant_bytes), 6)
    return d


# ------------------------------------------------------------------------------------------------
# JSON helpers
# ------------------------------------------------------------------------------------------------
def bytes_preview(raw: bytes, limit: int = BYTES_PREVIEW) -> dict[str, Any]:
    """``{"bytes": n, "utf8"|"hex": <first limit bytes>, "truncated": bool}``.

    Text that decodes as printable UTF-8 is shown as text (``vela_version`` is ``b"3.11.0"``);
    anything else as hex.
    """
    head = raw[:limit]
    out: dict[str, Any] = {"bytes": len(raw)}
    try:
        text = head.decode("utf-8")
        if not text.isprintable():
            raise UnicodeDecodeError("utf-8", head, 0, len(head), "not printable")
        out["utf8"] = text
    except UnicodeDecodeError:
        out["hex"] = head.hex()
    out["truncated"] = len(raw) > limit
    return out


def jsonable(value: Any) -> Any:
    """Plain JSON-native values: numpy scalars and arrays unwrapped, bytes previewed, non-finite
    floats as None (``json.dumps`` would otherwise write ``NaN``, which is not JSON)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes_preview(bytes(value))
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return str(value)  # anything exotic from a FlexBuffer: say what it is rather than fail


def _finite(values: Sequence[float] | np.ndarray) -> tuple[float | None, ...]:
    return tuple(float(v) if math.isfinite(float(v)) else None for v in values)


# ------------------------------------------------------------------------------------------------
# MACs
# ------------------------------------------------------------------------------------------------
def _shape(sg: Subgraph, op: Operator, k: int, kind: str = "in") -> tuple[int, ...] | None:
    idxs = op.inputs if kind == "in" else op.outputs
    if k >= len(idxs) or idxs[k] < 0:
        return None
    return sg.tensors[idxs[k]].shape


def operator_macs(model: Model, subgraph: Subgraph | int, op: Operator | int) -> int:
    """Multiply-accumulates one invocation of ``op`` performs; 0 for operators without a formula.

    Formulas (shapes as stored in the model; NHWC activations, OHWI filters):

    * CONV_2D: output elements x kh x kw x (input channels / groups), where the filter's last
      dimension already is input channels / groups;
    * DEPTHWISE_CONV_2D: output elements x kh x kw;
    * FULLY_CONNECTED: batches x N x K = output elements x K (weights are [N, K]);
    * TRANSPOSE_CONV: input elements x kh x kw x output channels (weights [O, kh, kw, I]);
    * BATCH_MATMUL: batch x M x N x K = output elements x K (K from x, honouring ``adj_x``).

    Bias additions and fused activations are not counted, as in the usual MAC tables.
    """
    sg = model.subgraphs[subgraph] if isinstance(subgraph, int) else subgraph
    if isinstance(op, int):
        op = sg.operators[op]
    name = op.opcode
    if name not in _MAC_OPS:
        return 0
    out = _shape(sg, op, 0, "out")
    if out is None:
        return 0
    out_elements = math.prod(out)
    if name == "TRANSPOSE_CONV":
        # Inputs: (output_shape, weights, input[, bias]).
        w, x = _shape(sg, op, 1), _shape(sg, op, 2)
        if w is None or x is None or len(w) != 4:
            return 0
        return math.prod(x) * w[1] * w[2] * w[0]
    w = _shape(sg, op, 1)
    if w is None or not w:
        return 0
    if name == "CONV_2D":
        return out_elements * w[1] * w[2] * w[3] if len(w) == 4 else 0
    if name == "DEPTHWISE_CONV_2D":
        return out_elements * w[1] * w[2] if len(w) == 4 else 0
    if name == "FULLY_CONNECTED":
        return out_elements * w[-1]
    # BATCH_MATMUL
    x = _shape(sg, op, 0)
    if x is None or len(x) < 2:
        return 0
    k = x[-2] if op.options.get("adj_x") else x[-1]
    return out_elements * k


# ------------------------------------------------------------------------------------------------
# Options worth showing in a one-line operator view
# ------------------------------------------------------------------------------------------------
# Fields that matter even at their default value (padding SAME is the schema default, but a
# reader of the graph wants to see it).
_ALWAYS = ("padding", "axis", "keep_dims", "new_shape")
# Values that differ from the schema default yet are what every converter writes (the schema's
# default depth_multiplier and beta are 0): showing them on every row would hide the unusual.
_USUAL: dict[str, tuple[Any, ...]] = {"depth_multiplier": (0, 1), "beta": (1.0,)}


def key_options(op: Operator) -> dict[str, Any]:
    """The options a reader of the graph wants on one line, in a stable order.

    Pairs are folded (``stride_h``/``stride_w`` -> ``stride: [h, w]``; also ``dilation``,
    ``filter``), a fused activation NONE is dropped, and other fields appear only when they
    differ from the schema default, so a plain op shows little and an unusual one stands out.
    """
    opts = dict(op.options)
    if not opts:
        return {}
    defaults: dict[str, Any] = {}
    expected = ops_table.options_for_op(op.builtin_code)
    if expected is not None:
        defaults = ops_table.default_options(*expected)
    out: dict[str, Any] = {}
    pairs = (("stride", "stride_h", "stride_w", True), ("dilation", "dilation_h_factor",
             "dilation_w_factor", False), ("filter", "filter_height", "filter_width", True))
    for label, h, w, always in pairs:
        if h in opts and w in opts:
            hv, wv = opts.pop(h), opts.pop(w)
            if always or (hv, wv) != (1, 1):
                out[label] = [hv, wv]
    act = opts.pop("fused_activation_function", None)
    for key, value in opts.items():
        if value is None:  # an absent vector (e.g. RESHAPE new_shape given as an input)
            continue
        if key in _ALWAYS or (value != defaults.get(key) and value not in _USUAL.get(key, ())):
            out[key] = value
    if act not in (None, "NONE"):
        out["activation"] = act
    return out


# ------------------------------------------------------------------------------------------------
# Quantization classification
# ------------------------------------------------------------------------------------------------
def _is_weight(t: Tensor) -> bool:
    """A constant that is not a bias / shape / index: what 'weights' means in a summary."""
    return t.is_constant and not t.is_variable and t.type_name not in ("INT32", "INT64", "BOOL",
                                                                        "STRING")


def _fp16_dequantized(sg: Subgraph) -> set[int]:
    """Outputs of DEQUANTIZE operators that expand FLOAT16 constants (fp16-weight models)."""
    out: set[int] = set()
    for op in sg.operators:
        if op.name == "DEQUANTIZE" and op.inputs and op.inputs[0] >= 0:
            src = sg.tensors[op.inputs[0]]
            if src.is_constant and src.type_name == "FLOAT16":
                out.update(op.outputs)
    return out


def operator_scheme(sg: Subgraph, op: Operator, fp16_outputs: set[int] | None = None) -> str:
    """How an operator computes: float, int8, int16x8, hybrid, fp16, uint8, conversion, custom,
    or other (unquantized integer arithmetic: shapes, indices, raw audio samples; bool).

    Decided by the data input (the first input that is neither constant nor a variable; output 0
    when there is none), not by every input: SVDF and LSTM keep int16 state in int8 models, and
    an int8 SOFTMAX may write int16.
    """
    if op.name == "CUSTOM":
        return "custom"
    if op.name in _CONVERSION_OPS:
        return "conversion"
    ins = [sg.tensors[i] for i in op.inputs if i >= 0]
    data = next((t for t in ins if not t.is_constant and not t.is_variable), None)
    if data is None and op.outputs:
        data = sg.tensors[op.outputs[0]]
    if data is None:
        return "other"
    if data.type_name in _FLOAT_TYPES:
        weights = [t for t in ins if _is_weight(t)]
        if any(t.type_name in _LOW_BIT_WEIGHTS and t.quantization is not None for t in weights):
            return "hybrid"
        if fp16_outputs and any(i in fp16_outputs for i in op.inputs):
            return "fp16"
        return "float"
    if data.quantization is None or not data.quantization.is_quantized:
        return "other"
    return {"INT16": "int16x8", "INT8": "int8", "UINT8": "uint8"}.get(data.type_name, "other")


_SCHEME_WORDS = {
    "float": "float32",
    "int8": "int8",
    "int16x8": "int16x8 (int16 activations, int8 weights)",
    "hybrid": "hybrid (float activations, int8 weights)",
    "fp16 weights": "float32 with fp16 weights",
    "uint8": "uint8 (legacy asymmetric)",
    "none": "no float or quantized arithmetic",
}


def _model_scheme(op_schemes: Counter[str]) -> str:
    core = {s for s in op_schemes if s not in ("conversion", "custom", "other")}
    if not core:
        return "none"
    if core == {"fp16"} or core == {"fp16", "float"}:
        return "fp16 weights"
    if "hybrid" in core and core <= {"hybrid", "float"}:
        return "hybrid"
    if len(core) == 1:
        return next(iter(core))
    return "mixed"


def _quant_summary(model: Model) -> QuantSummary:
    op_schemes: Counter[str] = Counter()
    weight_dtypes: Counter[str] = Counter()
    per_tensor = per_channel = w_tensor = w_channel = 0
    for sg in model.subgraphs:
        fp16 = _fp16_dequantized(sg)
        for op in sg.operators:
            op_schemes[operator_scheme(sg, op, fp16)] += 1
        for t in sg.tensors:
            q = t.quantization
            weight = _is_weight(t)
            if weight:
                weight_dtypes[t.type_name] += 1
            if q is None or not q.is_quantized:
                continue
            if q.per_axis:
                per_channel += 1
                w_channel += weight
            else:
                per_tensor += 1
                w_tensor += weight
    main = model.subgraphs[0]
    ins = tuple(main.tensors[i].type_name for i in main.inputs)
    outs = tuple(main.tensors[i].type_name for i in main.outputs)
    scheme = _model_scheme(op_schemes)
    if scheme == "mixed":
        parts = sorted((s for s in op_schemes if s not in ("conversion", "custom", "other")),
                       key=lambda s: -op_schemes[s])
        words = "mixed: " + ", ".join(f"{s} ({op_schemes[s]} ops)" for s in parts)
    else:
        words = _SCHEME_WORDS.get(scheme, scheme)
    if w_channel or w_tensor:
        granularity = ("per-channel" if not w_tensor else "per-tensor" if not w_channel
                       else "per-channel and per-tensor")
        words += f"; {granularity} quantized weights"
    if op_schemes.get("custom"):
        words += f"; {op_schemes['custom']} custom ops"
    if ins or outs:
        io = sorted(set(ins) | set(outs))
        words += f"; I/O {'/'.join(io)}"
    return QuantSummary(
        scheme=scheme, description=words, op_schemes=dict(op_schemes.most_common()),
        input_dtypes=ins, output_dtypes=outs, weight_dtypes=dict(weight_dtypes.most_common()),
        per_tensor=per_tensor, per_channel=per_channel, weights_per_tensor=w_tensor,
        weights_per_channel=w_channel,
    )


# ------------------------------------------------------------------------------------------------
# Sizes
# ------------------------------------------------------------------------------------------------
def _size_breakdown(model: Model) -> SizeBreakdown:
    by_dtype: dict[str, list[int]] = {}
    by_op: dict[str, list[int]] = {}
    seen: set[int] = set()
    for sg in model.subgraphs:
        first_consumer: dict[int, str] = {}
        for op in sg.operators:  # execution order: the first consumer wins
            for i in op.inputs:
                if i >= 0:
                    first_consumer.setdefault(i, op.opcode)
        for t in sg.tensors:
            if t.buffer_bytes <= 0 or t.buffer in seen:
                continue
            seen.add(t.buffer)
            for table, key in ((by_dtype, t.type_name),
                               (by_op, first_consumer.get(t.index, "(unused)"))):
                entry = table.setdefault(key, [0, 0])
                entry[0] += t.buffer_bytes
                entry[1] += 1
    metadata_buffers = {m.buffer for m in model.metadata}
    metadata_bytes = sum(model.buffers[b].size for b in metadata_buffers
                         if model.buffers[b].data is not None and b not in seen)
    referenced = seen | metadata_buffers
    unreferenced = sum(b.size for b in model.buffers
                       if b.index not in referenced and b.data is not None)
    constant = sum(v[0] for v in by_dtype.values())
    structure = max(0, model.size_bytes - constant - metadata_bytes - unreferenced)

    def shares(table: dict[str, list[int]]) -> tuple[SizeShare, ...]:
        rows = [SizeShare(key=k, bytes=v[0], tensors=v[1]) for k, v in table.items()]
        return tuple(sorted(rows, key=lambda r: (-r.bytes, r.key)))

    return SizeBreakdown(file_bytes=model.size_bytes, constant_bytes=constant,
                         metadata_bytes=metadata_bytes, unreferenced_buffer_bytes=unreferenced,
                         structure_bytes=structure, by_dtype=shares(by_dtype), by_op=shares(by_op))


# ------------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------------
def _quant_info(t: Tensor) -> QuantInfo | None:
    q = t.quantization
    if q is None:
        return None
    return QuantInfo(scale=_finite(q.scale), zero_point=tuple(int(z) for z in q.zero_point),
                     quantized_dimension=int(q.quantized_dimension), min=_finite(q.min),
                     max=_finite(q.max), details_type=int(q.details_type))


def _sparsity_info(t: Tensor) -> dict[str, Any] | None:
    sp = t.sparsity
    if sp is None:
        return None
    dims = []
    for dm in sp.dim_metadata:
        d: dict[str, Any] = {"format": dm.format, "dense_size": dm.dense_size}
        if dm.array_segments is not None:
            d["array_segments"] = int(dm.array_segments.size)
        if dm.array_indices is not None:
            d["array_indices"] = int(dm.array_indices.size)
        dims.append(d)
    return {"traversal_order": list(sp.traversal_order), "block_map": list(sp.block_map),
            "dim_metadata": dims}


def _tensor_info(t: Tensor) -> TensorInfo:
    return TensorInfo(
        index=t.index, name=t.name, dtype=t.type_name, shape=tuple(t.shape),
        shape_signature=None if t.shape_signature is None else tuple(t.shape_signature),
        buffer=t.buffer, bytes=t.nbytes, buffer_bytes=t.buffer_bytes, is_variable=t.is_variable,
        is_constant=t.is_constant, quantization=_quant_info(t), sparsity=_sparsity_info(t),
    )


def _custom_options(op: Operator) -> dict[str, Any] | None:
    if op.name != "CUSTOM":
        return None
    raw = op.custom_options or b""
    out: dict[str, Any] = {"bytes": len(raw)}
    if op.custom_options_decoded is not None:
        out["decoded"] = jsonable(op.custom_options_decoded)
    elif raw:
        out["preview"] = bytes_preview(raw)
    return out


def _operator_info(model: Model, sg: Subgraph, op: Operator, fp16: set[int]) -> OperatorInfo:
    return OperatorInfo(
        index=op.index, opcode=op.opcode, version=op.version, inputs=tuple(op.inputs),
        outputs=tuple(op.outputs), intermediates=tuple(op.intermediates),
        options_type=op.options_type, options=jsonable(dict(op.options)),
        key_options=jsonable(key_options(op)), macs=operator_macs(model, sg, op),
        scheme=operator_scheme(sg, op, fp16), custom_options=_custom_options(op),
    )


def _subgraph_info(model: Model, sg: Subgraph) -> SubgraphInfo:
    fp16 = _fp16_dequantized(sg)
    ops = tuple(_operator_info(model, sg, op, fp16) for op in sg.operators)
    return SubgraphInfo(index=sg.index, name=sg.name, inputs=tuple(sg.inputs),
                        outputs=tuple(sg.outputs),
                        tensors=tuple(_tensor_info(t) for t in sg.tensors),
                        operators=ops, macs=sum(o.macs for o in ops))


def _metadata_info(model: Model) -> tuple[MetadataInfo, ...]:
    out = []
    for m in model.metadata:
        buf = model.buffers[m.buffer]
        decoded = not isinstance(m.value, (bytes, bytearray, memoryview))
        out.append(MetadataInfo(name=m.name, buffer=m.buffer, bytes=buf.size, decoded=decoded,
                                value=jsonable(m.value)))
    return tuple(out)


def _custom_ops(subgraphs: Sequence[SubgraphInfo]) -> tuple[CustomOpInfo, ...]:
    found: dict[str, list[tuple[int, int]]] = {}
    first: dict[str, dict[str, Any] | None] = {}
    for sg in subgraphs:
        for op in sg.operators:
            if op.opcode.startswith("CUSTOM:"):
                code = op.opcode.split(":", 1)[1]
                found.setdefault(code, []).append((sg.index, op.index))
                first.setdefault(code, op.custom_options)
    return tuple(CustomOpInfo(code=c, count=len(v), operators=tuple(v), options=first[c])
                 for c, v in found.items())


def inspect_model(model: Model, file: str | os.PathLike[str] | None = None) -> InspectReport:
    """Everything ``tflite-ref inspect`` shows, computed once from a loaded model."""
    subgraphs = tuple(_subgraph_info(model, sg) for sg in model.subgraphs)
    conversion = model.metadata_dict.get("CONVERSION_METADATA")
    if file is None:
        file = model.path
    return InspectReport(
        file=None if file is None else os.fspath(file),
        size_bytes=model.size_bytes,
        version=model.version,
        description=model.description,
        min_runtime_version=model.min_runtime_version,
        conversion_metadata=jsonable(conversion) if isinstance(conversion, Mapping) else None,
        signatures=tuple(SignatureInfo(key=s.key, subgraph_index=s.subgraph_index,
                                       inputs=dict(s.inputs), outputs=dict(s.outputs))
                         for s in model.signatures),
        metadata=_metadata_info(model),
        subgraphs=subgraphs,
        subgraph_count=len(subgraphs),
        size=_size_breakdown(model),
        quantization=_quant_summary(model),
        custom_ops=_custom_ops(subgraphs),
        warnings=tuple(model.warnings),
        macs=sum(sg.macs for sg in subgraphs),
    )


def read_model_file(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, or a :class:`ModelFormatError` whose message does not repeat the path
    (the CLI prefixes it: ``error: <file>: <message>``)."""
    p = Path(path)
    if not p.exists():
        raise ModelFormatError("no such file")
    if p.is_dir():
        raise ModelFormatError("is a directory, not a .tflite file")
    try:
        size = p.stat().st_size
        # Same budget as model.load(path): FlatBuffer < 2 GiB plus buffers stored after it.
        if size >= 2 * MAX_FILE_BYTES:
            raise ResourceLimitError(f"file is {size} bytes; the limit is {2 * MAX_FILE_BYTES}")
        return p.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"cannot read the file: {exc.strerror or exc}") from None


def inspect_file(path: str | os.PathLike[str]) -> InspectReport:
    """Load and inspect ``path``; model errors are :class:`~tflite_ref.errors.TFLiteRefError`."""
    return inspect_model(load(read_model_file(path)), file=path)


__all__ = [
    "CustomOpInfo", "InspectReport", "MetadataInfo", "OperatorInfo", "QuantInfo", "QuantSummary",
    "SignatureInfo", "SizeBreakdown", "SizeShare", "SubgraphInfo", "TensorInfo", "inspect_file",
    "inspect_model", "jsonable", "key_options", "operator_macs", "operator_scheme",
]
