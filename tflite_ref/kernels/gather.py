"""Kernels: GATHER, GATHER_ND.

Both are byte moves selected by integer indices, so one kernel serves every dtype. The only
arithmetic is the index check, and that is where TFLite and TFLite Micro differ:

* GATHER: LiteRT fails the invoke on a negative index (``gather.cc``) or one >= the axis size
  (``reference/gather.h``). TFLM only DCHECKs (undefined behaviour); we fail the same way.
* GATHER_ND: LiteRT checks every coordinate against its dimension
  (``reference_ops::GatherNd`` in ``reference/reference_ops.h``, negatives rejected up front in
  ``gather_nd.cc``). TFLM (``micro/kernels/gather_nd.cc``) checks only that the flattened slice
  lies inside the tensor, so ``[0, 5]`` into a 3x3 tensor reads element 5.

A failed check raises :class:`KernelRuntimeError` naming the operator, the offending index value
and its position in the indices tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tflite_ref.errors import KernelRuntimeError
from tflite_ref.kernels.layout import check_tflm
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T

INDEX_TYPES = (T.INT16, T.INT32, T.INT64)
GATHER_TYPES = (T.FLOAT32, T.FLOAT16, T.UINT8, T.INT8, T.INT16, T.INT32, T.INT64, T.BOOL)


def first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


# -- GATHER -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GatherData:
    axis: int
    batch_dims: int
    output_shape: tuple[int, ...]
    locator: str


def prepare_gather(ctx: OpContext) -> GatherData:
    """gather.cc Prepare: axis and batch_dims wrap once; batch dims of input and indices agree."""
    check_tflm(ctx, (T.FLOAT32, T.INT8), "gather.cc")
    x, pos = ctx.require_input(0), ctx.require_input(1)
    if pos.type not in ((T.INT32,) if ctx.emulate == "tflm" else INDEX_TYPES):
        ctx.unsupported(f"positions of type {pos.type_name} are not supported")
    ctx.require(ctx.output(0).type == x.type, "output type differs from input")
    in_shape, pos_shape = ctx.input_shape(0), ctx.input_shape(1)
    rank = len(in_shape)
    axis = int(ctx.options.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    ctx.require(0 <= axis < rank, f"axis {ctx.options.get('axis')} is out of range for rank {rank}")
    batch_dims = int(ctx.options.get("batch_dims", 0))
    batch_dims = batch_dims + len(pos_shape) if batch_dims < 0 else batch_dims
    ctx.require(0 <= batch_dims <= axis and batch_dims < rank and batch_dims <= len(pos_shape),
                f"batch_dims {ctx.options.get('batch_dims')} must be in [0, axis {axis}]")
    ctx.require(in_shape[:batch_dims] == pos_shape[:batch_dims],
                f"the first {batch_dims} dims of input {list(in_shape)} and positions "
                f"{list(pos_shape)} must agree")
    out = (*in_shape[:axis], *pos_shape[batch_dims:], *in_shape[axis + 1:])
    ctx.set_output_shape(0, out)
    return GatherData(axis, batch_dims, out, ctx.op.locator)


@register(Op.GATHER, *GATHER_TYPES, prepare=prepare_gather)
def gather(data: GatherData, x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """reference_ops::Gather (reference/gather.h) as one fancy index over a 4-D view.

    The input is viewed as [batch, outer, axis, inner] and the positions as [batch, coords];
    ``out[b, o, c, i] = x[b, o, positions[b, c], i]``.
    """
    a, bd = data.axis, data.batch_dims
    batch = math.prod(x.shape[:bd])
    outer = math.prod(x.shape[bd:a])
    axis_size = x.shape[a]
    inner = math.prod(x.shape[a + 1:])
    idx = positions.astype(np.int64)
    # gather.cc rejects any negative position before looking at anything else; the reference
    # kernel then checks the upper bound inside its batch/outer loops (so only if they run).
    bad = idx < 0
    if batch * outer > 0:
        bad |= idx >= axis_size
    if bad.any():
        where = first_bad(bad)
        raise KernelRuntimeError(
            f"{data.locator}: gather index {int(idx[where])} at position {list(where)} of the "
            f"indices is out of range [0, {axis_size}) for axis {a}")
    coords = idx.reshape(batch, -1) if batch else idx.reshape(0, 0)
    view = x.reshape(batch, outer, axis_size, inner)
    out = view[np.arange(batch)[:, None, None], np.arange(outer)[None, :, None],
               coords[:, None, :]]
    return out.reshape(data.output_shape)


# -- GATHER_ND ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GatherNdData:
    index_depth: int  # indices.shape[-1]
    output_shape: tuple[int, ...]
    # "per_coordinate" (LiteRT: each coordinate in [0, dim)) or "flat_slice" (TFLM: only the
    # flattened slice must lie inside the tensor).
    bounds_check: str
    locator: str


def prepare_gather_nd(ctx: OpContext) -> GatherNdData:
    """gather_nd.cc Prepare: output = indices.shape[:-1] + params.shape[indices.shape[-1]:]."""
    check_tflm(ctx, (T.FLOAT32, T.INT8), "gather_nd.cc")
    params, indices = ctx.require_input(0), ctx.require_input(1)
    if indices.type not in ((T.INT32,) if ctx.emulate == "tflm" else INDEX_TYPES):
        ctx.unsupported(f"indices of type {indices.type_name} are not supported")
    ctx.require(ctx.output(0).type == params.type, "output type differs from params")
    p_shape, i_shape = ctx.input_shape(0), ctx.input_shape(1)
    ctx.require(len(p_shape) >= 1, "params must be at least a vector")
    ctx.require(len(i_shape) >= 1, "indices must be at least a vector")
    nd = i_shape[-1]
    ctx.require(0 <= nd <= len(p_shape),
                f"index depth {nd} must be in [0, params rank {len(p_shape)}]")
    if ctx.emulate == "tflm":
        ctx.require(nd <= 5, "TFLite Micro's gather_nd.cc takes at most 5 index dimensions")
    out = (*i_shape[:-1], *p_shape[nd:])
    ctx.set_output_shape(0, out)
    bounds = "flat_slice" if ctx.emulate == "tflm" else "per_coordinate"
    return GatherNdData(nd, out, bounds, ctx.op.locator)


@register(Op.GATHER_ND, *GATHER_TYPES, prepare=prepare_gather_nd)
def gather_nd(data: GatherNdData, params: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """reference_ops::GatherNd: each index row picks a contiguous slice of the flat params."""
    nd = data.index_depth
    fail = f"{data.locator}: gather_nd index"
    if params.size == 0 and indices.size != 0 and data.bounds_check == "per_coordinate":
        raise KernelRuntimeError(f"{fail}: params are empty but indices are not")
    n_slices = math.prod(indices.shape[:-1])
    if n_slices == 0:
        return np.zeros(data.output_shape, params.dtype)
    if nd == 0 and data.bounds_check == "per_coordinate":
        # reference_ops::GatherNd returns an error for a null indices buffer, which is what an
        # empty [..., 0] indices tensor has in LiteRT.
        raise KernelRuntimeError(f"{fail} tensor is empty (depth 0); TFLite's kernel rejects it")
    idx = indices.astype(np.int64).reshape(n_slices, nd)
    dims = np.array(params.shape[:nd], np.int64)
    slice_size = math.prod(params.shape[nd:])
    # Elements per step of each indexed dim (GatherNdHelper's dims_to_count).
    stride = np.array([math.prod(params.shape[k + 1:]) for k in range(nd)], np.int64)
    from_pos = idx @ stride if nd else np.zeros(n_slices, np.int64)
    if data.bounds_check == "per_coordinate":
        bad = (idx < 0) | (idx >= dims)
    else:
        bad = ((from_pos < 0) | (from_pos + slice_size > params.size))[:, None]
    if bad.any():
        row, col = first_bad(bad)
        where = [int(w) for w in np.unravel_index(row, indices.shape[:-1])] + [col]
        raise KernelRuntimeError(
            f"{fail} {int(idx[row, col])} at position {where} of the "
            f"indices is out of range for params of shape {list(params.shape)}")
    flat = params.reshape(-1)
    out: np.ndarray = flat[from_pos[:, None] + np.arange(slice_size, dtype=np.int64)[None, :]]
    return out.reshape(data.output_shape)
