"""The float shadow of a quantized model, and a Model -> ModelBuilder copy to make it with.

The shadow is a real ``.tflite`` model written with our writer: the quantized graph with every
quantized tensor turned into FLOAT32 (constants dequantized, activations unquantized), and the
QUANTIZE / DEQUANTIZE operators between quantized and float tensors removed, their consumers
wired to the operator's input (they are identities in real numbers).  Tensor indices are kept, so
tensor ``i`` of the shadow is the real-valued counterpart of tensor ``i`` of the quantized model;
``alias`` maps the outputs of removed operators to the tensor that now carries their value.

Why a written model rather than rewritten kernels or an in-memory edit: the shadow then runs on
the ordinary :class:`~tflite_ref.Interpreter` with the ordinary float kernels, the reader
validates it like any file (a wrong rewrite fails loudly at load, not deep in a kernel), and the
same bytes run in LiteRT, which is how the tests check the shadow and how a user can look at it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_ref.errors import UnsupportedOpError
from tflite_ref.model.model import Model, Operator, Subgraph, Tensor
from tflite_ref.model.reader import load
from tflite_ref.model.schema import TensorType
from tflite_ref.model.writer import ModelBuilder, Quantization, SubgraphBuilder

_IDENTITY_OPS = ("QUANTIZE", "DEQUANTIZE")
_FLOAT32 = int(getattr(TensorType, "FLOAT32"))  # noqa: B009 - the enum is built at run time


# ------------------------------------------------------------------------------------------------
# Quantization helpers shared by the package
# ------------------------------------------------------------------------------------------------
def is_quantized(t: Tensor) -> bool:
    """An integer tensor whose values mean ``scale · (q - zero_point)`` (a non-zero scale)."""
    q = t.quantization
    return (q is not None and q.is_quantized and t.dtype is not None and t.dtype.kind in "iu"
            and bool(np.all(q.scale != 0)))


def _broadcast(values: np.ndarray, t: Tensor, rank: int) -> np.ndarray:
    """Per-axis parameters shaped to broadcast along ``quantized_dimension``."""
    q = t.quantization
    assert q is not None
    if values.size == 1 or rank == 0:
        return values.reshape(()) if values.size == 1 else values
    dim = q.quantized_dimension
    if not 0 <= dim < rank:
        # Seen in real files (person_detect: dimension 3 on rank-1 biases); TFLM reads such a
        # tensor along its only axis of matching length.
        dim = next((d for d in range(rank - 1, -1, -1) if t.shape[d] == values.size), rank - 1)
    shape = [1] * rank
    shape[dim] = values.size
    return values.reshape(shape)


def dequantize(t: Tensor, q: np.ndarray) -> np.ndarray:
    """``reference_ops::Dequantize``: ``(float)(double(scale) · (q - zero_point))``, float32.

    The product of a float32 scale and an integer below 2^24 is exact in double, so this is one
    rounding, the value LiteRT's DEQUANTIZE (and NumericVerify) computes.
    """
    qp = t.quantization
    assert qp is not None
    q = np.asarray(q)
    scale = _broadcast(qp.scale.astype(np.float64), t, q.ndim)
    zps = qp.zero_point if qp.zero_point.size else np.zeros(1, np.int64)
    if zps.size != qp.scale.size:
        zps = np.full(qp.scale.size, zps.reshape(-1)[0])
    zp = _broadcast(zps.astype(np.int64), t, q.ndim)
    out: np.ndarray = ((q.astype(np.int64) - zp).astype(np.float64) * scale).astype(np.float32)
    return out


def quantize(t: Tensor, x: np.ndarray) -> np.ndarray:
    """``reference_ops::AffineQuantize`` into tensor ``t``'s type: a float32 division by the
    scale, rounding half away from zero (``TfLiteRound``), the zero point, then clamping."""
    from tflite_ref.quant.fixedpoint import round_away

    qp = t.quantization
    assert qp is not None and t.dtype is not None
    x = np.asarray(x, dtype=np.float32)
    scale = _broadcast(qp.scale.astype(np.float32), t, x.ndim)
    zps = qp.zero_point if qp.zero_point.size else np.zeros(1, np.int64)
    if zps.size != qp.scale.size:
        zps = np.full(qp.scale.size, zps.reshape(-1)[0])
    zp = _broadcast(zps.astype(np.int64), t, x.ndim)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        r = np.asarray(round_away(x / scale), dtype=np.float64)
    info = np.iinfo(t.dtype)
    r = np.nan_to_num(r, nan=0.0, posinf=float(info.max), neginf=float(info.min))
    out: np.ndarray = np.clip(np.clip(r, -(2.0**40), 2.0**40).astype(np.int64) + zp,
                              info.min, info.max).astype(t.dtype)
    return out


def real_range(t: Tensor) -> tuple[float, float]:
    """The real values a per-tensor quantized tensor can hold: [dequant(qmin), dequant(qmax)]."""
    assert t.dtype is not None
    info = np.iinfo(t.dtype)
    lo, hi = dequantize(t, np.array([info.min, info.max], dtype=t.dtype)).tolist()
    return float(lo), float(hi)


# ------------------------------------------------------------------------------------------------
# Model -> ModelBuilder
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TensorEdit:
    """How :func:`builder_from_model` writes one tensor: new type, data, quantization."""

    type: int
    data: np.ndarray | None  # dense constant data (None: copy the original buffer or none)
    quantization: Quantization | None


TensorHook = Callable[[Subgraph, Tensor], "TensorEdit | None"]
OpFilter = Callable[[Subgraph, Operator], bool]


def _quantization_spec(t: Tensor) -> Quantization | None:
    q = t.quantization
    if q is None:
        return None
    return Quantization(scale=q.scale.tolist() if q.scale.size else None,
                        zero_point=q.zero_point.tolist() if q.zero_point.size else None,
                        quantized_dimension=q.quantized_dimension,
                        min=list(q.min) if q.min else None, max=list(q.max) if q.max else None)


def builder_from_model(model: Model, tensor_hook: TensorHook | None = None,
                       keep_op: OpFilter | None = None,
                       alias: Mapping[tuple[int, int], int] | None = None) -> ModelBuilder:
    """A :class:`ModelBuilder` holding a copy of ``model``, optionally edited on the way.

    ``tensor_hook(subgraph, tensor)`` may return a :class:`TensorEdit` to change a tensor's type,
    constant data or quantization; ``keep_op(subgraph, op)`` False drops an operator; ``alias``
    maps ``(subgraph, tensor)`` to the tensor that replaces it wherever operators, subgraph
    inputs/outputs and signatures refer to it.  Tensor indices and order are kept; constant
    buffers are copied byte for byte (shared buffers stay shared); metadata is not copied.
    """
    alias = alias or {}

    def resolve(si: int, i: int) -> int:
        seen = 0
        while (si, i) in alias and seen < 10000:  # chains: DEQUANTIZE(QUANTIZE(x))
            i, seen = alias[(si, i)], seen + 1
        return i

    mb = ModelBuilder(description=model.description or None)
    buffer_map: dict[int, int] = {}
    builders: list[SubgraphBuilder] = []
    for sg in model.subgraphs:
        sb = mb.subgraph(sg.name or None)
        builders.append(sb)

        def ref(i: int, si: int = sg.index) -> int:
            return resolve(si, i)

        for t in sg.tensors:
            edit = tensor_hook(sg, t) if tensor_hook is not None else None
            kwargs: dict[str, Any] = {"shape_signature": t.shape_signature,
                                      "is_variable": t.is_variable, "has_rank": t.has_rank}
            if edit is not None:
                if edit.data is not None:
                    sb.tensor(t.name, t.shape, edit.type, edit.data,
                              quantization=edit.quantization, **kwargs)
                    continue
                quant, ttype = edit.quantization, edit.type
            else:
                quant, ttype = _quantization_spec(t), t.type
            buffer = 0
            if t.buffer and t.buffer < len(model.buffers) and model.buffers[t.buffer].data:
                if t.sparsity is not None and edit is not None and ttype != t.type:
                    raise UnsupportedOpError(f"tensor {t.index} {t.name!r}: sparse constants "
                                             "cannot be converted here")
                if t.buffer not in buffer_map:
                    buffer_map[t.buffer] = mb.buffer(bytes(model.buffers[t.buffer].data or b""))
                buffer = buffer_map[t.buffer]
            sb.tensor(t.name, t.shape, ttype, quantization=quant, buffer=buffer,
                      sparsity=None if t.sparsity is None else _sparsity_spec(t), **kwargs)
        for op in sg.operators:
            if keep_op is not None and not keep_op(sg, op):
                continue
            member = op.options_type
            if member is not None and ":" in member:
                raise UnsupportedOpError(f"{op.locator}: its options ({member}) are newer than "
                                         "the schema tflite_ref writes")
            sb.operator(
                op.builtin_code if op.name != "CUSTOM" else "CUSTOM",
                [ref(i) if i >= 0 else None for i in op.inputs],
                [ref(i) for i in op.outputs],
                dict(op.options) if member is not None else None,
                version=op.version, custom_code=op.custom_code,
                custom_options=op.custom_options,
                intermediates=list(op.intermediates) if op.intermediates else None,
                mutating_variable_inputs=list(op.mutating_variable_inputs)
                if op.mutating_variable_inputs else None,
                options_member=member if member is not None else "NONE")
        sb.inputs = [ref(i) for i in sg.inputs]
        sb.outputs = [ref(i) for i in sg.outputs]
    for sd in model.signatures:
        si = sd.subgraph_index
        mb.signature(sd.key, si,
                     {n: resolve(si, i) for n, i in sd.inputs.items()},
                     {n: resolve(si, i) for n, i in sd.outputs.items()})
    return mb


def _sparsity_spec(t: Tensor):  # type: ignore[no-untyped-def]
    from tflite_ref.model.writer import DimensionMetadata, Sparsity

    sp = t.sparsity
    assert sp is not None
    return Sparsity(traversal_order=list(sp.traversal_order), block_map=list(sp.block_map),
                    dim_metadata=[DimensionMetadata(d.format, d.dense_size, d.array_segments,
                                                    d.array_indices) for d in sp.dim_metadata])


# ------------------------------------------------------------------------------------------------
# The float shadow
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FloatShadow:
    """The shadow model, its bytes, and which removed-operator outputs alias which tensor."""

    model: Model
    content: bytes
    alias: Mapping[int, int]  # subgraph 0: tensor index -> tensor that carries its value
    removed_ops: frozenset[int]  # subgraph 0 operators that became identities

    def source(self, tensor_index: int) -> int:
        """The shadow tensor whose value is the real-valued counterpart of ``tensor_index``."""
        seen = 0
        while tensor_index in self.alias and seen < 10000:
            tensor_index, seen = self.alias[tensor_index], seen + 1
        return tensor_index


def _is_identity(sg: Subgraph, op: Operator) -> bool:
    """QUANTIZE/DEQUANTIZE between a quantized tensor and anything: identity on real values."""
    if op.name not in _IDENTITY_OPS or len(op.inputs) != 1 or len(op.outputs) != 1:
        return False
    x, y = sg.tensors[op.inputs[0]], sg.tensors[op.outputs[0]]
    if x.data is not None and not is_quantized(x):
        return False  # e.g. DEQUANTIZE of a float16 constant: a real float op, kept
    return is_quantized(x) or is_quantized(y)


def float_shadow(model: Model) -> FloatShadow:
    """The float twin of ``model``: same operators, dequantized weights, float activations."""

    def hook(sg: Subgraph, t: Tensor) -> TensorEdit | None:
        if not is_quantized(t):
            return None
        if t.data is not None and not t.is_variable:
            return TensorEdit(_FLOAT32, dequantize(t, t.data), None)
        if t.sparsity is not None:
            raise UnsupportedOpError(f"tensor {t.index} {t.name!r}: a sparse quantized constant; "
                                     "qdebug cannot dequantize it")
        return TensorEdit(_FLOAT32, None, None)

    alias: dict[tuple[int, int], int] = {}
    removed: set[int] = set()
    for sg in model.subgraphs:
        for op in sg.operators:
            if _is_identity(sg, op):
                alias[(sg.index, op.outputs[0])] = op.inputs[0]
                if sg.index == 0:
                    removed.add(op.index)
    mb = builder_from_model(model, hook, keep_op=lambda sg, op: (sg.index, op.outputs[0])
                            not in alias if op.outputs else True, alias=alias)
    content = mb.build()
    shadow = load(content)
    return FloatShadow(shadow, content, {i: s for (si, i), s in alias.items() if si == 0},
                       frozenset(removed))


__all__ = ["FloatShadow", "TensorEdit", "builder_from_model", "dequantize", "float_shadow",
           "is_quantized", "quantize", "real_range"]
