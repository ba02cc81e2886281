"""Kernel: EMBEDDING_LOOKUP.

``output[i] = value[lookup[i]]``: ``lookup`` is a 1-D int32 tensor of row numbers, ``value`` a
table of rank >= 2 whose first dimension is the row; the output has the lookup's length and the
table's other dimensions.  Two forms:

* a plain row copy when the output has the table's type (``EvalSimple``: raw bytes);
* a *hybrid* lookup when the table is quantized (int8, or in LiteRT uint8/int4) and the output is
  float: each copied row is dequantized, ``fl32(v · scale)``.  The zero point must be 0 (both
  runtimes check it in Prepare).

Where the runtimes differ (one place, :attr:`EmbeddingLookupData.row_scales`):

* LiteRT (``tflite/kernels/embedding_lookup.cc`` ``EvalHybrid``) uses the scale of the row it
  copies when the table has one scale per row (``quantized_dimension`` 0), and reads the table
  through ``int8_t*`` -- a uint8 table's bytes are taken as int8;
* TFLM (``tensorflow/lite/micro/kernels/embedding_lookup.cc``) keeps only the tensor's first
  scale (``params.scale``) for every row, and takes float32 and int8 tables only.

An index outside ``[0, rows)`` fails the invoke in both runtimes: :class:`KernelRuntimeError`
naming the operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tflite_ref.errors import KernelRuntimeError
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T

__all__ = ["EmbeddingLookupData", "prepare_embedding_lookup"]

# Tables LiteRT copies byte for byte (EvalSimple works on any type; these are the ones we test).
COPY_TYPES = (T.FLOAT32, T.FLOAT16, T.INT8, T.UINT8, T.INT16, T.INT32, T.INT64, T.BOOL)
HYBRID_TABLES = (T.INT8, T.UINT8, T.INT4)


@dataclass(frozen=True, slots=True)
class EmbeddingLookupData:
    """``row_scales``: the emulation difference -- ``"per_row"`` (LiteRT: ``scale[idx]`` when the
    table has one scale per row) or ``"first"`` (TFLM: ``scale[0]`` for every row); None for a
    plain copy.  ``table`` is the dequantized table of a constant hybrid lookup, made once."""

    locator: str
    rows: int
    output_dtype: np.dtype
    row_scales: str | None
    scales: NDArray[np.float32] | None  # (rows, 1, ...) or (1, 1, ...): broadcast over a row
    table: np.ndarray | None


def prepare_embedding_lookup(ctx: OpContext) -> EmbeddingLookupData:
    """embedding_lookup.cc Prepare (LiteRT; TFLM's adds the type restrictions)."""
    if ctx.num_inputs != 2 or ctx.num_outputs != 1:
        ctx.fail(f"takes 2 inputs and 1 output, has {ctx.num_inputs} and {ctx.num_outputs}")
    lookup_t, value_t, out_t = ctx.require_input(0), ctx.require_input(1), ctx.output(0)
    lookup_shape, value_shape = ctx.input_shape(0), ctx.input_shape(1)
    if len(lookup_shape) != 1 or lookup_t.type != T.INT32:
        ctx.fail(f"lookup must be a 1-D INT32 tensor (is {lookup_t.type_name} "
                 f"{list(lookup_shape)})")
    if len(value_shape) < 2:
        ctx.fail(f"value {list(value_shape)} must have rank >= 2")
    rows = value_shape[0]
    ctx.set_output_shape(0, (lookup_shape[0],) + tuple(value_shape[1:]))
    if rows == 0 and lookup_shape[0] > 0:
        # EvalSimple returns at once for an empty table and leaves the output unwritten.
        ctx.unsupported("a lookup into an empty table: the runtimes leave the output unwritten")
    hybrid = value_t.type != out_t.type and out_t.type in (T.FLOAT32, T.FLOAT16)
    if ctx.emulate == "tflm":
        if value_t.type not in (T.FLOAT32, T.INT8):
            ctx.unsupported(f"TFLite Micro's embedding_lookup.cc takes FLOAT32 and INT8 tables, "
                            f"not {value_t.type_name}")
        if out_t.type not in ((T.FLOAT32,) if value_t.type == T.FLOAT32 else (T.FLOAT32, T.INT8)):
            ctx.unsupported(f"TFLite Micro has no {value_t.type_name} -> {out_t.type_name} lookup")
        if out_t.type == T.FLOAT16:
            ctx.unsupported("TFLite Micro has no FLOAT16 lookup")
    if not hybrid:
        if value_t.type != out_t.type:
            ctx.fail(f"a {value_t.type_name} table with a {out_t.type_name} output")
        return EmbeddingLookupData(ctx.op.locator, rows, np.dtype(out_t.dtype), None, None, None)

    if value_t.type not in HYBRID_TABLES:
        ctx.unsupported(f"a {value_t.type_name} table with a {out_t.type_name} output (the "
                        f"hybrid lookup takes INT8, UINT8 or INT4 tables)")
    q = value_t.quantization
    if q is None or not q.is_quantized:
        ctx.fail("a hybrid lookup needs the table's quantization scale")
    if int(q.zero_point.reshape(-1)[0]) != 0:
        ctx.fail("hybrid lookups support only symmetric quantization (zero point 0)")
    scales = q.scale.astype(np.float32)
    # LiteRT Prepare: per-axis scales only along rows, one per row.
    if scales.size > 1 and (q.quantized_dimension != 0 or scales.size != rows
                            or q.zero_point.size not in (1, rows)):
        ctx.fail(f"per-axis table quantization needs quantized_dimension 0 and {rows} "
                 f"scales (has {scales.size} along {q.quantized_dimension})")
    row_scales = "per_row" if ctx.emulate == "tflite" else "first"
    if row_scales == "first" or scales.size == 1:
        scales = scales[:1]
    scales = scales.reshape((-1,) + (1,) * (len(value_shape) - 1))
    out_dtype = np.dtype(out_t.dtype)
    value = ctx.const(1)
    table = None if value is None else _dequantize(value, scales, out_dtype)
    return EmbeddingLookupData(ctx.op.locator, rows, out_dtype, row_scales, scales, table)


def _dequantize(value: np.ndarray, scales: NDArray[np.float32], dtype: np.dtype) -> np.ndarray:
    """``value_ptr[j] * scaling_factor`` in float32 (int8 reading of the bytes), then the
    output's type (float16: one more rounding, as ``half`` does)."""
    v = value.view(np.int8) if value.dtype == np.uint8 else value
    return (v.astype(np.float32) * scales).astype(dtype)


def _indices(data: EmbeddingLookupData, lookup: np.ndarray) -> NDArray[np.int64]:
    idx = np.asarray(lookup, dtype=np.int64).reshape(-1)
    bad = (idx < 0) | (idx >= data.rows)
    if bad.any():
        k = int(np.argmax(bad))
        raise KernelRuntimeError(f"{data.locator}: index out of bounds: lookup[{k}] = "
                                 f"{int(idx[k])}, and bounds are [0, {data.rows - 1}]")
    return idx


@register(Op.EMBEDDING_LOOKUP, T.FLOAT32, T.INT8, prepare=prepare_embedding_lookup)
@register(Op.EMBEDDING_LOOKUP, T.FLOAT16, T.UINT8, T.INT16, T.INT32, T.INT64, T.BOOL,
          prepare=prepare_embedding_lookup, emulations=("tflite",))
def embedding_lookup(data: EmbeddingLookupData, lookup: NDArray[np.int32], value: np.ndarray
                     ) -> np.ndarray:
    """``EvalSimple`` (row copy) or ``EvalHybrid`` (row copy, dequantized) of
    embedding_lookup.cc, as one fancy index over the rows."""
    idx = _indices(data, lookup)
    if data.row_scales is None:
        return value[idx]
    if data.table is not None:
        return data.table[idx]
    assert data.scales is not None
    scales = data.scales[idx] if data.scales.shape[0] > 1 else data.scales
    return _dequantize(value[idx], scales, data.output_dtype)
