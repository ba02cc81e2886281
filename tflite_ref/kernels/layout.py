"""Kernels: shape and layout: RESHAPE, SQUEEZE, EXPAND_DIMS, TRANSPOSE, CONCATENATION, SPLIT,
SPLIT_V, PACK, UNPACK, STRIDED_SLICE, SLICE, TILE, BROADCAST_TO, REVERSE_V2, DEPTH_TO_SPACE,
SPACE_TO_DEPTH, BATCH_TO_SPACE_ND, SPACE_TO_BATCH_ND, SHAPE, FILL, ZEROS_LIKE, ONES_LIKE, RANGE,
ONE_HOT.

Layout operators move bytes: quantized tensors keep their integer values (TFLite requires equal
input and output quantization where it matters), so one kernel serves every dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T

# Every fixed-size type: layout ops copy values whatever they mean.
ALL_TYPES = (T.FLOAT32, T.FLOAT16, T.FLOAT64, T.INT8, T.UINT8, T.INT16, T.UINT16, T.INT32,
             T.UINT32, T.INT64, T.UINT64, T.BOOL, T.COMPLEX64, T.COMPLEX128)


# -- RESHAPE ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReshapeData:
    output_shape: tuple[int, ...]


def _resolve_new_shape(ctx: OpContext, new_shape: list[int], n_in: int) -> tuple[int, ...]:
    """One -1 is inferred from the element count (tflite/kernels/reshape.cc GetOutputShape)."""
    unknown = [k for k, d in enumerate(new_shape) if d == -1]
    if len(unknown) > 1 or any(d < -1 for d in new_shape):
        ctx.fail(f"new shape {new_shape} may hold at most one -1 and no other negative size")
    known = math.prod(d for d in new_shape if d != -1)
    shape = list(new_shape)
    if unknown:
        if known == 0 or n_in % known:
            ctx.fail(f"cannot reshape {n_in} elements to {new_shape}")
        shape[unknown[0]] = n_in // known
    if math.prod(shape) != n_in:
        ctx.fail(f"cannot reshape {n_in} elements to {new_shape}")
    return tuple(shape)


def prepare_reshape(ctx: OpContext) -> ReshapeData:
    n_in = math.prod(ctx.input_shape(0))
    shape_input = ctx.const(1)
    if shape_input is not None and shape_input.ndim == 1:
        # The shape tensor wins over the options (reshape.cc: "the new shape is the second input").
        new_shape = [int(d) for d in shape_input]
    elif ctx.input(1) is None or shape_input is not None:
        new_shape = list(ctx.options.get("new_shape") or ctx.output(0).shape)
    else:
        # A shape computed at run time: the converter still records the static output shape.
        new_shape = list(ctx.output(0).shape)
    shape = _resolve_new_shape(ctx, new_shape, n_in)
    ctx.set_output_shape(0, shape)
    return ReshapeData(shape)


@register(Op.RESHAPE, *ALL_TYPES, prepare=prepare_reshape)
def reshape(data: ReshapeData, x: np.ndarray, shape: np.ndarray | None = None) -> np.ndarray:
    return x.reshape(data.output_shape)
