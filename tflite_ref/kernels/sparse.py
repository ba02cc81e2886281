"""Kernel: DENSIFY, and the sparse-to-dense conversion of TFLite's sparsity metadata.

Upstream (read, not copied): LiteRT ``tflite/kernels/densify.cc``,
``kernels/internal/reference/densify.h``, ``kernels/internal/utils/sparsity_format_converter.cc``
(``FormatConverter::InitSparseToDenseConverter``, ``Populate``, ``SparseToDense``).  TFLite Micro
has no DENSIFY.

A sparse constant (``Tensor.sparsity``, schema ``SparsityParameters``) stores its non-zero values
in the order of a traversal of an *expanded* shape: the tensor's dimensions, each divided by its
block size where ``block_map`` names it, followed by one dimension per block.  ``traversal_order``
lists the expanded dimensions outermost first, and ``dim_metadata[k]`` describes the k-th
traversed dimension: DENSE (every index ``0 .. dense_size-1``) or SPARSE_CSR (for each position of
the enclosing levels, ``array_segments`` delimits the run of ``array_indices`` present).  The
reader hands the buffer over as raw bytes; DENSIFY turns it into the dense tensor once, in
prepare, and returns that constant on every invoke (densify.cc fills it once too).

The conversion walks the levels breadth-first with NumPy instead of recursing per element, but
visits the stored values in the order ``Populate`` does and writes every value where it does, so
duplicated coordinates end with the later value, and positions no value reaches hold 0 (not the
zero point).  Where ``Populate`` would read or write out of bounds (hostile-models class 20/K)
we raise instead:

* the first ``rank`` traversed dimensions must be the tensor's own (``Populate`` indexes the
  original coordinates with them), the block dimensions dense and traversed in block order with
  ``block_map`` ascending (``InitSparseToDenseConverter`` assumes both when it reads the block
  sizes);
* a DENSE level's ``dense_size`` must equal its expanded dimension, and SPARSE_CSR indices must
  lie inside it (else the written coordinate leaves the tensor);
* the traversal must not reach more values than the buffer holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflite_ref.errors import ModelValidationError, UnsupportedOpError
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.model.model import Sparsity, Tensor

_DENSIFY_TYPES = (T.FLOAT32, T.FLOAT16, T.INT8)  # densify.cc Eval's switch


def sparse_to_dense(shape: tuple[int, ...], sparsity: Sparsity, values: np.ndarray,
                    where: str) -> np.ndarray:
    """The dense array of ``shape`` that ``values`` (1-D, stored order) and ``sparsity`` describe.

    Raises :class:`ModelValidationError` (or :class:`UnsupportedOpError` for layouts LiteRT's
    converter mishandles) prefixed with ``where``.
    """
    rank = len(shape)
    order = [int(d) for d in sparsity.traversal_order]
    block_map = [int(d) for d in sparsity.block_map]
    levels = sparsity.dim_metadata
    n_levels = len(order)
    if sorted(order) != list(range(n_levels)) or len(levels) != n_levels:
        raise ModelValidationError(f"{where}: traversal_order {order} with {len(levels)} "
                                   "dim_metadata entries does not describe the expanded shape")
    if n_levels != rank + len(block_map) or sorted(order[:rank]) != list(range(rank)):
        raise ModelValidationError(
            f"{where}: traversal_order {order} must list the tensor's {rank} dimensions first and "
            f"then its {len(block_map)} block dimensions")
    if block_map != sorted(set(block_map)) or any(not 0 <= d < rank for d in block_map):
        raise UnsupportedOpError(
            f"{where}: block_map {block_map} is not strictly ascending within rank {rank}; "
            "LiteRT's converter (sparsity_format_converter.cc) assigns block sizes assuming it is")
    if order[rank:] != list(range(rank, n_levels)):
        raise UnsupportedOpError(
            f"{where}: block dimensions traversed in the order {order[rank:]}; LiteRT's converter "
            "reads each block's size from the dim_metadata at the block's own index, so only "
            "block order is meaningful")
    block_size = []
    for k in range(len(block_map)):
        dm = levels[rank + k]
        if dm.format != "DENSE" or dm.dense_size <= 0:
            raise ModelValidationError(f"{where}: dim_metadata[{rank + k}] (block dimension {k}) "
                                       "must be DENSE with a positive dense_size")
        block_size.append(int(dm.dense_size))
    expanded = list(shape)
    for k, d in enumerate(block_map):
        expanded[d] = shape[d] // block_size[k]  # C++ integer division, as the converter
    expanded += block_size

    values_count = values.size
    prev = np.zeros(1, dtype=np.int64)  # Populate's prev_idx, one per path through the levels
    coords: list[np.ndarray] = []
    for level, dm in enumerate(levels):
        size = expanded[order[level]]
        if dm.format == "DENSE":
            if dm.dense_size != size:
                raise ModelValidationError(
                    f"{where}: dim_metadata[{level}] is DENSE of size {dm.dense_size}, but the "
                    f"dimension it traverses has {size} entries")
            coords = [np.repeat(c, size) for c in coords]
            i = np.tile(np.arange(size, dtype=np.int64), prev.size)
            prev = np.repeat(prev, size) * size + i
            coords.append(i)
            continue
        seg = np.asarray(dm.array_segments, dtype=np.int64).reshape(-1)
        idx = np.asarray(dm.array_indices, dtype=np.int64).reshape(-1)
        # Populate visits a level only `if (prev_idx + 1 < segments.size())`, and within the
        # run only the positions `i < indices.size()`.
        has_run = prev + 1 < seg.size
        lo = np.where(has_run, seg[np.minimum(prev, seg.size - 1)] if seg.size else 0, 0)
        hi = np.where(has_run, seg[np.minimum(prev + 1, seg.size - 1)] if seg.size else 0, 0)
        counts = np.maximum(hi - lo, 0)
        total = int(counts.sum())
        # Well-formed segments give each prefix its own run; more positions than the levels so
        # far can hold means overlapping runs (and a NumPy allocation we refuse to make).
        reach = int(np.prod([expanded[order[v]] for v in range(level + 1)], dtype=np.int64))
        if total > reach:
            raise ModelValidationError(f"{where}: dim_metadata[{level}] segments address {total} "
                                       f"positions; the dimensions traversed so far hold {reach}")
        path = np.repeat(np.arange(prev.size, dtype=np.int64), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        i = lo[path] + (np.arange(total, dtype=np.int64) - first)
        keep = i < idx.size
        path, i = path[keep], i[keep]
        at = idx[i]
        if at.size and (at.min() < 0 or at.max() >= size):
            raise ModelValidationError(
                f"{where}: dim_metadata[{level}] array_indices reach {int(at.max())}, outside "
                f"the {size} entries of the dimension it traverses")
        coords = [c[path] for c in coords]
        coords.append(at)
        prev = i
    leaves = prev.size
    if leaves > values_count:
        raise ModelValidationError(f"{where}: the sparsity metadata addresses {leaves} values; "
                                   f"the buffer holds {values_count}")
    # Back to the tensor's coordinates: block k refines dimension block_map[k].
    orig = [np.zeros(leaves, dtype=np.int64)] * rank
    for level in range(rank):
        orig[order[level]] = coords[level]
    for k, d in enumerate(block_map):
        orig[d] = orig[d] * block_size[k] + coords[rank + k]
    flat = np.zeros(leaves, dtype=np.int64)
    for d in range(rank):
        flat = flat * shape[d] + orig[d]
    dense = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=values.dtype)
    if leaves:
        # A coordinate written twice keeps the later value, as Populate's sequential writes do.
        rev = flat[::-1]
        _, last = np.unique(rev, return_index=True)
        pick = leaves - 1 - last
        dense[flat[pick]] = values[pick]
    return dense.reshape(shape)


def stored_values(t: Tensor) -> np.ndarray:
    """The values a sparse constant stores, in traversal order (the reader keeps raw bytes)."""
    assert t.data is not None and t.dtype is not None
    raw = np.ascontiguousarray(t.data).view(np.uint8).reshape(-1)
    item = t.dtype.itemsize
    usable = raw.size - raw.size % item
    return np.frombuffer(raw[:usable].tobytes(), dtype=t.dtype.newbyteorder("<")).astype(t.dtype)


# =============================================================================================
# DENSIFY
# =============================================================================================
@dataclass(frozen=True, slots=True)
class DensifyData:
    dense: np.ndarray  # read-only; the same array every invoke


def prepare_densify(ctx: OpContext) -> DensifyData:
    if ctx.num_inputs != 1 or ctx.num_outputs != 1:
        ctx.fail("DENSIFY takes 1 input and 1 output")
    x = ctx.require_input(0)
    if x.sparsity is None:
        ctx.fail(f"input 0 (tensor {x.index} {x.name!r}) has no sparsity parameters")
    if x.data is None:
        ctx.fail(f"input 0 (tensor {x.index} {x.name!r}) is not a constant")
    if x.type not in _DENSIFY_TYPES:
        ctx.unsupported(f"input 0 is {x.type_name}; DENSIFY takes FLOAT32, FLOAT16 or INT8")
    out = ctx.output(0)
    if out.type != x.type:
        ctx.fail(f"output 0 is {out.type_name}, the input {x.type_name}; DENSIFY keeps the type")
    where = f"{ctx.op.locator}: tensor {x.index} {x.name!r} sparsity"
    dense = sparse_to_dense(ctx.input_shape(0), x.sparsity, stored_values(x), where)
    dense.flags.writeable = False
    ctx.set_output_shape(0, dense.shape)
    return DensifyData(dense)


@register(Op.DENSIFY, *_DENSIFY_TYPES, prepare=prepare_densify, emulations=("tflite",))
def densify(data: DensifyData, _sparse: np.ndarray | None) -> np.ndarray:
    """densify.cc: the dense weights, computed once."""
    return data.dense


__all__ = ["DensifyData", "sparse_to_dense", "stored_values"]
