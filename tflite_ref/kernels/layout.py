"""Kernels: shape and layout: RESHAPE, SQUEEZE, EXPAND_DIMS, TRANSPOSE, CONCATENATION, SPLIT,
SPLIT_V, PACK, UNPACK, STRIDED_SLICE, SLICE, TILE, BROADCAST_TO, REVERSE_V2, DEPTH_TO_SPACE,
SPACE_TO_DEPTH, BATCH_TO_SPACE_ND, SPACE_TO_BATCH_ND, SHAPE, FILL, ZEROS_LIKE, RANGE, ONE_HOT.

Layout operators move bytes: quantized tensors keep their integer values, so one kernel serves
every dtype. Where TFLite's Prepare insists that input and output quantization be equal (PACK,
UNPACK, EXPAND_DIMS, int8 CONCATENATION, the *_TO_* ops, FILL) prepare checks it the same way;
elsewhere a mismatch is the model's business, as it is for TFLite. The one op here that does
arithmetic is uint8 CONCATENATION with differing input scales (``ConcatenationWithScaling``).

Parameters that decide an output shape (``axis``, ``perm``, ``begin``/``end``, ``multiples``...)
are read in prepare when they are constant, as TFLite does; when they are computed at run time
the output is declared dynamic and the same planning function runs at eval, failing with
:class:`KernelRuntimeError` instead of :class:`ModelValidationError`.

Sources (read, not copied): LiteRT ``tflite/kernels/<op>.cc`` and
``tflite/kernels/internal/reference/*.h``; TFLite Micro ``tensorflow/lite/micro/kernels/<op>.cc``.
TFLM-only preconditions (constant parameter tensors, fewer dtypes, lower rank limits) are checked
in prepare when ``ctx.emulate == "tflm"``; TILE, RANGE and ONE_HOT have no TFLM kernel at all.

``ONES_LIKE`` is not implemented: the TFLite schema has no such builtin operator (the converter
lowers ``tf.ones_like`` to FILL), so no model can contain it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from tflite_ref.errors import KernelRuntimeError
from tflite_ref.kernels.common import legacy_quant_params
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.model.model import Tensor
from tflite_ref.quant.fixedpoint import round_away

# Every fixed-size type: RESHAPE, SQUEEZE and EXPAND_DIMS copy whatever the bytes are.
ALL_TYPES = (T.FLOAT32, T.FLOAT16, T.FLOAT64, T.INT8, T.UINT8, T.INT16, T.UINT16, T.INT32,
             T.UINT32, T.INT64, T.UINT64, T.BOOL, T.COMPLEX64, T.COMPLEX128)
# Ops that switch on TfLiteTypeGetSizeBits (8/16/32/64) take every fixed-size numeric type.
SIZED_TYPES = (T.FLOAT32, T.FLOAT16, T.INT8, T.UINT8, T.INT16, T.INT32, T.UINT32, T.INT64,
               T.BOOL)

Fail = Callable[[str], NoReturn]


# -- shared helpers -----------------------------------------------------------------------------
def runtime_fail(locator: str) -> Fail:
    """The eval-time counterpart of ``ctx.fail``: a data-dependent fault names the operator."""

    def fail(message: str) -> NoReturn:
        raise KernelRuntimeError(f"{locator}: {message}")

    return fail


def require_same_quant(ctx: OpContext, a: Tensor | None, b: Tensor | None, what: str, *,
                       tflm_checks_too: bool = False) -> None:
    """LiteRT's equal-quantization ENSURE; TFLM makes it only where ``tflm_checks_too``."""
    if ctx.emulate == "tflm" and not tflm_checks_too:
        return
    qa, qb = legacy_quant_params(a), legacy_quant_params(b)
    if qa != qb:
        ctx.fail(f"{what} must share scale and zero point (TFLite requires it): "
                 f"{qa[0]:.9g}/{qa[1]} vs {qb[0]:.9g}/{qb[1]}")


def check_tflm(ctx: OpContext, types: Sequence[int], source: str, *,
               const_inputs: Sequence[int] = (), max_rank: int | None = None) -> None:
    """TFLite Micro's stricter Prepare for this op; a no-op when emulating TFLite.

    ``types`` are the dtypes TFLM's Eval switch takes (of output 0), ``const_inputs`` the input
    slots TFLM requires constant (it cannot resize outputs at run time), ``max_rank`` its limit
    on the rank of input 0. ``source`` names the TFLM file the rule comes from.
    """
    if ctx.emulate != "tflm":
        return
    out = ctx.output(0)
    if out.type not in {int(t) for t in types}:
        ctx.unsupported(f"TFLite Micro's {source} has no {out.type_name} kernel")
    for i in const_inputs:
        if ctx.input(i) is not None and ctx.const(i) is None:
            ctx.unsupported(f"TFLite Micro's {source} requires input {i} to be constant")
    if max_rank is not None and len(ctx.input_shape(0)) > max_rank:
        ctx.fail(f"TFLite Micro's {source} takes at most {max_rank} dimensions, input 0 has "
                 f"{len(ctx.input_shape(0))}")


def as_ints(a: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(a).reshape(-1)]


def scalar_int(a: np.ndarray, what: str, fail: Fail) -> int:
    flat = np.asarray(a).reshape(-1)
    if flat.size != 1:
        fail(f"{what} must hold exactly one value, it has {flat.size}")
    return int(flat[0])


def normalize_axis(axis: int, rank: int, what: str, fail: Fail) -> int:
    """``axis < 0 ? axis + rank : axis`` then the range check every TFLite kernel makes."""
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        fail(f"{what} {axis} is out of range for rank {rank}")
    return a


def param_input(ctx: OpContext, i: int) -> np.ndarray | None:
    """Constant value of parameter input ``i``; None (and output 0 dynamic) when computed."""
    value = ctx.const(i)
    if value is None:
        ctx.set_dynamic_output(0)
    return value


# -- RESHAPE ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReshapeData:
    output_shape: tuple[int, ...] | None  # None: read from the shape input at every invoke
    locator: str


def resolve_reshape(requested: Sequence[int], in_shape: Sequence[int], fail: Fail
                    ) -> tuple[int, ...]:
    """tflite/kernels/internal/reshape_utils.h ``ResolveOutputShape``: one -1 is inferred.

    The inferred size divides the product of the *non-zero* dims, and is 0 when the input is
    empty but the known output dims are not.
    """
    n_in = math.prod(in_shape)
    nz_in = math.prod(d for d in in_shape if d != 0)
    stretch = [k for k, d in enumerate(requested) if d == -1]
    if len(stretch) > 1 or any(d < -1 for d in requested):
        fail(f"new shape {list(requested)} may hold one -1 and no other negative size")
    shape = list(requested)
    known = math.prod(d for d in requested if d != -1)
    if stretch:
        nz_out = math.prod(d for d in requested if d not in (-1, 0))
        shape[stretch[0]] = 0 if n_in == 0 and known != 0 else nz_in // nz_out
    if math.prod(shape) != n_in:
        fail(f"cannot reshape {n_in} elements ({list(in_shape)}) to {list(requested)}")
    return tuple(shape)


def prepare_reshape(ctx: OpContext) -> ReshapeData:
    in_shape = ctx.input_shape(0)
    # reshape.cc / reshape_common.cc: TF_LITE_ENSURE_TYPES_EQ(input->type, output->type).
    x, y = ctx.require_input(0), ctx.output(0)
    ctx.require(x.type == y.type, f"input is {x.type_name} but output is {y.type_name}; RESHAPE "
                                  "moves bytes and keeps the type")
    shape_t = ctx.input(1)
    if ctx.emulate == "tflm":
        # micro/kernels/reshape_common.cc ReshapeOutput: TFLM never reads the shape input; it
        # resolves the -1 of the output tensor's own shape.
        requested = list(ctx.output(0).shape)
        if shape_t is None and requested == [0]:
            requested = []  # legacy scalar
    elif shape_t is not None and len(ctx.input_shape(1)) == 1 and shape_t.type == T.INT32:
        # reshape.cc GetOutputShape: an int32 vector shape input wins over the options.
        value = param_input(ctx, 1)
        if value is None:
            return ReshapeData(None, ctx.op.locator)
        requested = as_ints(value)
    else:
        # ParseOpData leaves num_dimensions = 0 without new_shape: a scalar unless [0] (legacy).
        requested = list(ctx.options.get("new_shape") or [])
        if requested == [0]:
            requested = []
    shape = resolve_reshape(requested, in_shape, ctx.fail)
    ctx.set_output_shape(0, shape)
    return ReshapeData(shape, ctx.op.locator)


@register(Op.RESHAPE, *ALL_TYPES, prepare=prepare_reshape)
def reshape(data: ReshapeData, x: np.ndarray, shape: np.ndarray | None = None) -> np.ndarray:
    if data.output_shape is not None:
        return x.reshape(data.output_shape)
    assert shape is not None
    return x.reshape(resolve_reshape(as_ints(shape), x.shape, runtime_fail(data.locator)))


# -- SQUEEZE ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SqueezeData:
    output_shape: tuple[int, ...]


def prepare_squeeze(ctx: OpContext) -> SqueezeData:
    """squeeze.cc: listed dims (negative allowed) must be 1; no list squeezes every 1."""
    in_shape = ctx.input_shape(0)
    rank = len(in_shape)
    ctx.require(rank <= 8, f"SQUEEZE takes at most 8 dimensions, input has {rank}")
    dims = ctx.options.get("squeeze_dims") or []
    if not dims:
        drop = {k for k, d in enumerate(in_shape) if d == 1}
    else:
        drop = set()
        for d in dims:
            k = normalize_axis(int(d), rank, "squeeze dim", ctx.fail)
            ctx.require(in_shape[k] == 1, f"cannot squeeze dim {d} of size {in_shape[k]}")
            drop.add(k)
    shape = tuple(d for k, d in enumerate(in_shape) if k not in drop)
    ctx.set_output_shape(0, shape)
    return SqueezeData(shape)


@register(Op.SQUEEZE, *ALL_TYPES, prepare=prepare_squeeze)
def squeeze(data: SqueezeData, x: np.ndarray) -> np.ndarray:
    return x.reshape(data.output_shape)


# -- EXPAND_DIMS --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ExpandDimsData:
    output_shape: tuple[int, ...] | None  # None: axis is read at every invoke
    locator: str


def expand_dims_shape(in_shape: Sequence[int], axis: int, fail: Fail) -> tuple[int, ...]:
    a = axis + len(in_shape) + 1 if axis < 0 else axis  # expand_dims.cc ExpandTensorDim
    if not 0 <= a <= len(in_shape):
        fail(f"axis {axis} is out of range for a rank-{len(in_shape)} input")
    return (*in_shape[:a], 1, *in_shape[a:])


def prepare_expand_dims(ctx: OpContext) -> ExpandDimsData:
    check_tflm(ctx, (T.FLOAT32, T.INT8, T.INT16), "expand_dims.cc", const_inputs=(1,))
    axis_t = ctx.require_input(1)
    if axis_t.type not in (T.INT32, T.INT64):
        ctx.fail(f"axis must be INT32 or INT64, not {axis_t.type_name}")
    if ctx.emulate == "tflm" and axis_t.type != T.INT32:
        ctx.unsupported("TFLite Micro's expand_dims.cc reads an INT32 axis only")
    if ctx.emulate == "tflite":  # expand_dims.cc Prepare
        require_same_quant(ctx, ctx.input(0), ctx.output(0), "input and output")
        if ctx.output(0).type == T.INT16:
            ctx.require(legacy_quant_params(ctx.input(0))[1] == 0, "int16 zero point must be 0")
    value = param_input(ctx, 1)
    if value is None:
        return ExpandDimsData(None, ctx.op.locator)
    shape = expand_dims_shape(ctx.input_shape(0), scalar_int(value, "axis", ctx.fail), ctx.fail)
    ctx.set_output_shape(0, shape)
    return ExpandDimsData(shape, ctx.op.locator)


@register(Op.EXPAND_DIMS, *ALL_TYPES, prepare=prepare_expand_dims)
def expand_dims(data: ExpandDimsData, x: np.ndarray, axis: np.ndarray) -> np.ndarray:
    if data.output_shape is not None:
        return x.reshape(data.output_shape)
    fail = runtime_fail(data.locator)
    return x.reshape(expand_dims_shape(x.shape, scalar_int(axis, "axis", fail), fail))


# -- TRANSPOSE ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TransposeData:
    perm: tuple[int, ...] | None  # None: read from the perm input at every invoke
    locator: str


def transpose_perm(perm: Sequence[int], rank: int, fail: Fail) -> tuple[int, ...]:
    """transpose.cc ResizeOutputTensor: ``perm`` has one entry per dim, each in [-rank, rank)."""
    if len(perm) != rank:
        fail(f"perm {list(perm)} must have {rank} entries")
    out = tuple(p + rank if p < 0 else p for p in perm)
    if any(not 0 <= p < rank for p in out) or len(set(out)) != rank:
        # TFLite checks the range only; a repeated axis would make it copy a different layout.
        fail(f"perm {list(perm)} is not a permutation of {rank} axes")
    return out


def prepare_transpose(ctx: OpContext) -> TransposeData:
    # micro/kernels/transpose_common.cc: constant perm, at most 5-D, no negative entries.
    check_tflm(ctx, (T.FLOAT32, T.INT8, T.INT16), "transpose.cc", const_inputs=(1,), max_rank=5)
    rank = len(ctx.input_shape(0))
    ctx.require(rank <= 8, f"TRANSPOSE takes at most 8 dimensions, input has {rank}")
    perm_t = ctx.require_input(1)
    if perm_t.type != T.INT32:
        ctx.unsupported(f"perm is {perm_t.type_name}; TFLite reads it as INT32")
    value = param_input(ctx, 1)
    if value is None:
        return TransposeData(None, ctx.op.locator)
    if ctx.emulate == "tflm" and any(p < 0 for p in as_ints(value)):
        ctx.fail("TFLite Micro's transpose.cc rejects negative perm entries")
    perm = transpose_perm(as_ints(value), rank, ctx.fail)
    in_shape = ctx.input_shape(0)
    ctx.set_output_shape(0, [in_shape[p] for p in perm])
    return TransposeData(perm, ctx.op.locator)


@register(Op.TRANSPOSE, *SIZED_TYPES, prepare=prepare_transpose)
def transpose(data: TransposeData, x: np.ndarray, perm: np.ndarray) -> np.ndarray:
    p = data.perm
    if p is None:
        p = transpose_perm(as_ints(perm), x.ndim, runtime_fail(data.locator))
    return np.ascontiguousarray(np.transpose(x, p))


# -- CONCATENATION ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConcatenationData:
    axis: int
    output_shape: tuple[int, ...]
    # uint8 only (reference_ops::ConcatenationWithScaling): per input, None for a plain copy or
    # (float32 scale, float32 bias, output zero point).
    rescale: tuple[tuple[np.float32, np.float32, int] | None, ...]


def prepare_concatenation(ctx: OpContext) -> ConcatenationData:
    """concatenation.cc Prepare (LiteRT) / micro/kernels/concatenation.cc."""
    check_tflm(ctx, (T.FLOAT32, T.INT8, T.INT16, T.INT32, T.INT64, T.BOOL), "concatenation.cc")
    if ctx.emulate == "tflm":
        ctx.require(ctx.num_inputs <= 10, "TFLite Micro concatenates at most 10 inputs")
    # Both runtimes ENSURE activation == NONE ("Activation function parameter is ignored");
    # a fused activation is rejected rather than applied.
    act = ctx.options.get("fused_activation_function", "NONE")
    ctx.require(act == "NONE", f"fused activation {act} is not supported by TFLite's kernel")
    out = ctx.output(0)
    shapes = [ctx.input_shape(i) for i in range(ctx.num_inputs)]
    for i in range(ctx.num_inputs):
        t = ctx.require_input(i)
        ctx.require(t.type == out.type, f"input {i} is {t.type_name}, output is {out.type_name}")
    rank = len(shapes[0])
    axis = int(ctx.options.get("axis", 0))
    if rank == 0:
        # Constant scalars concatenate into a vector (done in Prepare); anything else is refused.
        consts = all(ctx.const(i) is not None for i in range(ctx.num_inputs))
        ctx.require(ctx.emulate == "tflite" and consts and axis in (0, -1) and
                    all(len(s) == 0 for s in shapes), "cannot concatenate non-constant scalars")
        ctx.set_output_shape(0, (ctx.num_inputs,))
        return ConcatenationData(0, (ctx.num_inputs,), (None,) * ctx.num_inputs)
    axis = normalize_axis(axis, rank, "axis", ctx.fail)
    total = 0
    for i, s in enumerate(shapes):
        ctx.require(len(s) == rank and all(s[d] == shapes[0][d] for d in range(rank) if d != axis),
                    f"input {i} has shape {list(s)}, incompatible with {list(shapes[0])} "
                    f"along axis {axis}")
        total += s[axis]
    oq = legacy_quant_params(out)
    rescale: list[tuple[np.float32, np.float32, int] | None] = [None] * ctx.num_inputs
    for i in range(ctx.num_inputs):
        t_in = ctx.input(i)
        if out.type == T.INT8:  # "no re-scaling needed for Int8 quantized kernel"
            require_same_quant(ctx, t_in, out, f"int8 input {i} and the output",
                               tflm_checks_too=True)
        elif out.type == T.INT16:
            ctx.require(legacy_quant_params(t_in)[1] == 0 and oq[1] == 0,
                        "int16 zero points must be 0")
        elif out.type == T.UINT8:
            s_in, z_in = legacy_quant_params(t_in)
            if (s_in, z_in) != oq:
                # reference/concatenation.h: scale = s_in * (1.f / s_out); bias = -z_in * scale.
                scale = np.float32(s_in) * (np.float32(1.0) / np.float32(oq[0]))
                rescale[i] = (scale, np.float32(-z_in) * scale, oq[1])
    shape = tuple(total if d == axis else shapes[0][d] for d in range(rank))
    ctx.set_output_shape(0, shape)
    return ConcatenationData(axis, shape, tuple(rescale))


@register(Op.CONCATENATION, T.FLOAT32, T.FLOAT16, T.INT8, T.UINT8, T.INT16, T.INT32, T.UINT32,
          T.INT64, T.BOOL, prepare=prepare_concatenation)
def concatenation(data: ConcatenationData, *xs: np.ndarray) -> np.ndarray:
    parts = []
    for x, rs in zip(xs, data.rescale):
        if rs is None:
            parts.append(x.reshape(x.shape or (1,)))
            continue
        scale, bias, z_out = rs
        # float32 multiply-add, TfLiteRound (half away), + z_out, clamp to [0, 255].
        v = np.asarray(round_away(x.astype(np.float32) * scale + bias)).astype(np.int64) + z_out
        parts.append(np.clip(v, 0, 255).astype(np.uint8))
    return np.concatenate(parts, axis=data.axis).reshape(data.output_shape)


# -- SPLIT, SPLIT_V -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SplitData:
    axis: int | None  # None: computed at eval from the axis / size_splits inputs
    sizes: tuple[int, ...] | None
    num_outputs: int
    locator: str


SPLIT_TYPES = (T.FLOAT32, T.UINT8, T.INT8, T.INT16, T.INT32, T.INT64)
TFLM_SPLIT_TYPES = (T.FLOAT32, T.INT8, T.INT16, T.INT32)


def split_sizes(in_shape: Sequence[int], axis: int, num: int, fail: Fail) -> tuple[int, int]:
    """split.cc ResizeOutputTensors: an even split along a normalized axis."""
    a = normalize_axis(axis, len(in_shape), "axis", fail)
    if num == 0 or in_shape[a] % num:
        fail(f"dimension {a} of size {in_shape[a]} does not split evenly into {num}")
    return a, in_shape[a] // num


def split_v_sizes(in_shape: Sequence[int], axis: int, sizes: Sequence[int], fail: Fail
                  ) -> tuple[int, tuple[int, ...]]:
    """split_v.cc ResizeOutputTensors: one -1 takes the remainder; otherwise the sizes sum up."""
    a = normalize_axis(axis, len(in_shape), "axis", fail)
    out = list(sizes)
    minus = [k for k, s in enumerate(out) if s == -1]
    if len(minus) > 1:
        fail("size_splits contains more than one -1")
    known = sum(s for s in out if s != -1)
    if minus:
        if known > in_shape[a]:
            fail(f"size_splits {list(sizes)} exceed dimension {a} of size {in_shape[a]}")
        out[minus[0]] = in_shape[a] - known
    elif known != in_shape[a]:
        fail(f"size_splits {list(sizes)} must sum to dimension {a} of size {in_shape[a]}")
    if any(s < 0 for s in out):
        fail(f"size_splits {list(sizes)} holds a negative size")
    return a, tuple(out)


def set_split_shapes(ctx: OpContext, in_shape: Sequence[int], axis: int, sizes: Sequence[int]
                     ) -> None:
    for j, s in enumerate(sizes):
        ctx.set_output_shape(j, [s if d == axis else n for d, n in enumerate(in_shape)])


def dynamic_outputs(ctx: OpContext) -> None:
    for j in range(ctx.num_outputs):
        ctx.set_dynamic_output(j)


def prepare_split(ctx: OpContext) -> SplitData:
    check_tflm(ctx, TFLM_SPLIT_TYPES, "split.cc", const_inputs=(0,))
    num = int(ctx.options.get("num_splits", 0))
    ctx.require(num == ctx.num_outputs, f"num_splits {num} != {ctx.num_outputs} outputs")
    axis_value = ctx.const(0)
    if axis_value is None:
        dynamic_outputs(ctx)
        return SplitData(None, None, num, ctx.op.locator)
    in_shape = ctx.input_shape(1)
    axis, size = split_sizes(in_shape, scalar_int(axis_value, "axis", ctx.fail), num, ctx.fail)
    set_split_shapes(ctx, in_shape, axis, [size] * num)
    return SplitData(axis, (size,) * num, num, ctx.op.locator)


def split_along(x: np.ndarray, axis: int, sizes: Sequence[int]) -> tuple[np.ndarray, ...]:
    bounds = np.cumsum(sizes)[:-1]
    return tuple(np.ascontiguousarray(p) for p in np.split(x, bounds, axis=axis))


@register(Op.SPLIT, *SPLIT_TYPES, prepare=prepare_split)
def split(data: SplitData, axis: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
    if data.axis is not None and data.sizes is not None:
        return split_along(x, data.axis, data.sizes)
    fail = runtime_fail(data.locator)
    a, size = split_sizes(x.shape, scalar_int(axis, "axis", fail), data.num_outputs, fail)
    return split_along(x, a, [size] * data.num_outputs)


def prepare_split_v(ctx: OpContext) -> SplitData:
    check_tflm(ctx, TFLM_SPLIT_TYPES, "split_v.cc", const_inputs=(1, 2))
    num = int(ctx.options.get("num_splits", 0))
    ctx.require(num == ctx.num_outputs, f"num_splits {num} != {ctx.num_outputs} outputs")
    sizes_t = ctx.require_input(1)
    ctx.require(sizes_t.type in (T.INT32, T.INT64), "size_splits must be INT32 or INT64")
    ctx.require(len(ctx.input_shape(1)) == 1 and ctx.input_shape(1)[0] == num,
                f"size_splits must be a vector of {num} sizes")
    sizes_value, axis_value = ctx.const(1), ctx.const(2)
    if sizes_value is None or axis_value is None:
        dynamic_outputs(ctx)
        return SplitData(None, None, num, ctx.op.locator)
    in_shape = ctx.input_shape(0)
    axis, sizes = split_v_sizes(in_shape, scalar_int(axis_value, "axis", ctx.fail),
                                as_ints(sizes_value), ctx.fail)
    set_split_shapes(ctx, in_shape, axis, sizes)
    return SplitData(axis, sizes, num, ctx.op.locator)


@register(Op.SPLIT_V, *SPLIT_TYPES, prepare=prepare_split_v)
def split_v(data: SplitData, x: np.ndarray, size_splits: np.ndarray, axis: np.ndarray
            ) -> tuple[np.ndarray, ...]:
    if data.axis is not None and data.sizes is not None:
        return split_along(x, data.axis, data.sizes)
    fail = runtime_fail(data.locator)
    a, sizes = split_v_sizes(x.shape, scalar_int(axis, "axis", fail), as_ints(size_splits), fail)
    return split_along(x, a, sizes)


# -- PACK, UNPACK -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AxisData:
    axis: int


def prepare_pack(ctx: OpContext) -> AxisData:
    """pack.cc Prepare: equal shapes, types and quantization; axis in [-(rank+1), rank]."""
    check_tflm(ctx, (T.FLOAT32, T.INT8, T.INT16, T.INT32, T.INT64), "pack.cc")
    n = int(ctx.options.get("values_count", 0))
    ctx.require(n == ctx.num_inputs, f"values_count {n} != {ctx.num_inputs} inputs")
    s0 = ctx.input_shape(0)
    axis = int(ctx.options.get("axis", 0))
    axis = normalize_axis(axis, len(s0) + 1, "axis", ctx.fail)
    out = ctx.output(0)
    for i in range(n):
        ctx.require(ctx.input_shape(i) == s0, f"input {i} has shape {list(ctx.input_shape(i))}, "
                                               f"input 0 has {list(s0)}")
        ctx.require(ctx.require_input(i).type == out.type, f"input {i} type differs from output")
        require_same_quant(ctx, ctx.input(i), out, f"input {i} and the output")
    ctx.set_output_shape(0, (*s0[:axis], n, *s0[axis:]))
    return AxisData(axis)


@register(Op.PACK, T.FLOAT32, T.UINT8, T.INT8, T.INT16, T.INT32, T.UINT32, T.INT64,
          prepare=prepare_pack)
def pack(data: AxisData, *xs: np.ndarray) -> np.ndarray:
    return np.stack(xs, axis=data.axis)


def prepare_unpack(ctx: OpContext) -> AxisData:
    """unpack.cc Prepare: ``num`` outputs, one per slice along ``axis``."""
    check_tflm(ctx, (T.FLOAT32, T.INT8, T.INT16, T.INT32), "unpack.cc")
    shape = ctx.input_shape(0)
    ctx.require(math.prod(shape) > 0, "UNPACK of an empty tensor")
    axis = normalize_axis(int(ctx.options.get("axis", 0)), len(shape), "axis", ctx.fail)
    num = int(ctx.options.get("num", 0))
    ctx.require(num == ctx.num_outputs and num == shape[axis],
                f"num {num} must equal the {ctx.num_outputs} outputs and dimension {axis} "
                f"of size {shape[axis]}")
    for j in range(num):
        ctx.require(ctx.output(j).type == ctx.require_input(0).type, f"output {j} type differs")
        require_same_quant(ctx, ctx.input(0), ctx.output(j), f"the input and output {j}")
        ctx.set_output_shape(j, shape[:axis] + shape[axis + 1:])
    return AxisData(axis)


@register(Op.UNPACK, T.FLOAT32, T.FLOAT16, T.UINT8, T.INT8, T.INT16, T.INT32, T.BOOL,
          prepare=prepare_unpack)
def unpack(data: AxisData, x: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(np.ascontiguousarray(p) for p in np.moveaxis(x, data.axis, 0))


# -- STRIDED_SLICE ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SlicePlan:
    """A gather along every axis of a reshaped input: ``x.reshape(view)[ix_(*index)]``."""

    view_shape: tuple[int, ...]  # the input with new axes inserted
    index: tuple[np.ndarray, ...]  # int64 source indices per axis of view_shape
    output_shape: tuple[int, ...]


def apply_slice_plan(x: np.ndarray, plan: SlicePlan) -> np.ndarray:
    out: np.ndarray = x.reshape(plan.view_shape)[np.ix_(*plan.index)]
    return out.reshape(plan.output_shape)


@dataclass(frozen=True, slots=True)
class StridedSliceData:
    plan: SlicePlan | None  # None: begin/end/strides are read at every invoke
    options: tuple[int, int, int, int, int, bool]  # begin, end, ellipsis, new_axis, shrink; offset
    locator: str


def _clamp(v: int, lo: int, hi: int) -> int:
    return hi if hi < v else lo if v < lo else v


def strided_count(extent: int, stride: int) -> int:
    """strided_slice.cc ResizeOutputTensor: elements in ``extent`` at ``stride`` (C division)."""
    if (extent < 0) != (stride < 0):
        return 0
    if stride < 0:
        return (-(extent + 1)) // -stride + 1  # both operands >= 0: floor == C truncation
    return 0 if extent == 0 else (extent - 1) // stride + 1


def strided_slice_plan(in_shape: Sequence[int], begin: Sequence[int], end: Sequence[int],
                       strides: Sequence[int], masks: tuple[int, int, int, int, int, bool],
                       fail: Fail) -> SlicePlan:
    """strided_slice.cc BuildStridedSliceParams + reference StartForAxis/EndForAxis.

    Ellipsis and new axes are first expanded into an "effective" input (new axes are size-1
    dims), then each effective axis gets TFLite's clamped start/stop, and the C loop
    ``for (i = start; stride > 0 ? i < stop : i > stop; i += stride)`` becomes ``np.arange``.
    """
    begin_mask, end_mask, ellipsis_mask, new_axis_mask, shrink_mask, offset = masks
    rank = len(in_shape)
    n = len(begin)
    if not len(end) == len(strides) == n:
        fail("begin, end and strides must have the same length")
    if n > 31:
        fail("StridedSlice supports at most 31 indices")

    def bit(mask: int, i: int) -> bool:
        return bool(mask >> i & 1)

    num_add = sum(1 for i in range(n) if not bit(ellipsis_mask, i) and bit(new_axis_mask, i))
    eff = rank + num_add
    # Expand the ellipsis over the dims it stands for; shift new_axis bits past it.
    eff_ellipsis: set[int] = set()
    eff_new_axis: set[int] = set()
    ellipsis_start, expanded = eff, 0
    i = 0
    while i < eff:
        if bit(ellipsis_mask, i):
            ellipsis_start = i
            stop = max(i + 1, min(i + 1 + num_add + rank - n, eff))
            expanded = stop - ellipsis_start - 1
            eff_ellipsis.update(range(i, stop))
            i = stop
            continue
        if bit(new_axis_mask, i - expanded):
            eff_new_axis.add(i)
        i += 1
    view, index, out_shape = [], [], []
    added_ellipsis = added_axes = 0
    for i in range(eff):
        if i in eff_ellipsis or (i not in eff_new_axis and i >= n + expanded):
            added_ellipsis = max(0, i - ellipsis_start) if i in eff_ellipsis else added_ellipsis
            size = in_shape[i - added_axes]
            view.append(size)
            index.append(np.arange(size, dtype=np.int64))
            out_shape.append(size)
            continue
        if i in eff_new_axis:
            added_axes += 1
            view.append(1)
            index.append(np.zeros(1, np.int64))
            out_shape.append(1)
            continue
        k = i - added_ellipsis  # position in begin/end/strides
        size = in_shape[i - added_axes]
        stride = strides[k]
        if stride == 0:
            fail("stride value has to be non-zero")
        if stride <= -(2**31):
            fail("stride value INT32_MIN is not supported")
        # reference_ops::StartForAxis: wrap negatives, clamp, then the begin mask wins.
        start = begin[k] + size if begin[k] < 0 else begin[k]
        start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
        if bit(begin_mask, k):
            start = 0 if stride > 0 else size - 1
        shrink = bit(shrink_mask, k)
        if shrink:
            stop = start if start >= size else start + 1
        else:
            stop = end[k] + start if offset else end[k]
            stop = stop + size if stop < 0 else stop
            stop = _clamp(stop, 0, size) if stride > 0 else _clamp(stop, -1, size - 1)
            if bit(end_mask, k):
                stop = size if stride > 0 else -1
        idx = np.arange(start, stop, stride, dtype=np.int64)
        view.append(size)
        index.append(idx)
        if shrink:
            if idx.size != 1:
                # TFLite declares the axis gone but its loop writes no element there.
                fail(f"shrink_axis on axis {k}: begin {begin[k]} with stride {stride} selects "
                     f"{idx.size} elements of {size}")
            continue
        if offset and strided_count(end[k], stride) != idx.size:
            # ResizeOutputTensor sizes an offset slice by end[] itself (a size, not a bound);
            # TFLite's loop then stops at the clamped bound and leaves the rest unwritten.
                fail(f"offset slice on axis {k} (begin {begin[k]}, size {end[k]}) runs past "
                     f"the dimension of size {size}")
        out_shape.append(int(idx.size))
    return SlicePlan(tuple(view), tuple(index), tuple(out_shape))


def prepare_strided_slice(ctx: OpContext) -> StridedSliceData:
    o = ctx.options
    masks = (int(o.get("begin_mask", 0)), int(o.get("end_mask", 0)),
             int(o.get("ellipsis_mask", 0)), int(o.get("new_axis_mask", 0)),
             int(o.get("shrink_axis_mask", 0)), bool(o.get("offset", False)))
    for i in (1, 2, 3):
        t = ctx.require_input(i)
        ctx.require(t.type == T.INT32, f"input {i} must be INT32, not {t.type_name}")
        ctx.require(len(ctx.input_shape(i)) == 1, f"input {i} must be a vector")
    in_shape = ctx.input_shape(0)
    if ctx.emulate == "tflm":
        # micro/kernels/strided_slice_common.cc: constant begin/end/strides, at most 4-D, one
        # entry per input dim; ellipsis/new_axis masks and `offset` are ignored (zeroed).
        check_tflm(ctx, (T.FLOAT32, T.INT8, T.INT16, T.INT32, T.BOOL), "strided_slice.cc",
                   const_inputs=(1, 2, 3), max_rank=4)
        if masks[2] or masks[3]:
            ctx.unsupported("TFLite Micro ignores ellipsis_mask and new_axis_mask")
        ctx.require(ctx.input_shape(1)[0] == len(in_shape),
                    "TFLite Micro needs one begin/end/stride per input dimension")
        masks = (masks[0], masks[1], 0, 0, masks[4], False)
    elif masks[5] and (masks[2] or masks[3] or ctx.input_shape(1)[0] != len(in_shape)):
        # ResizeOutputTensor indexes end[] by the effective axis; with ellipsis/new axes or a
        # short begin it would read the wrong entries.
        ctx.unsupported("offset=true with ellipsis/new axes or fewer indices than dims")
    values = [ctx.const(i) for i in (1, 2, 3)]
    if any(v is None for v in values):
        ctx.set_dynamic_output(0)
        return StridedSliceData(None, masks, ctx.op.locator)
    b, e, s = (as_ints(v) for v in values)  # type: ignore[arg-type]
    plan = strided_slice_plan(in_shape, b, e, s, masks, ctx.fail)
    ctx.set_output_shape(0, plan.output_shape)
    return StridedSliceData(plan, masks, ctx.op.locator)


@register(Op.STRIDED_SLICE, *SIZED_TYPES, prepare=prepare_strided_slice)
def strided_slice(data: StridedSliceData, x: np.ndarray, begin: np.ndarray, end: np.ndarray,
                  strides: np.ndarray) -> np.ndarray:
    plan = data.plan
    if plan is None:
        plan = strided_slice_plan(x.shape, as_ints(begin), as_ints(end), as_ints(strides),
                                  data.options, runtime_fail(data.locator))
    return apply_slice_plan(x, plan)


# -- SLICE --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SliceData:
    slices: tuple[slice, ...] | None
    locator: str


def slice_plan(in_shape: Sequence[int], begin: Sequence[int], size: Sequence[int], fail: Fail
               ) -> tuple[slice, ...]:
    """slice.cc CalculateOutputShapeVector: size -1 means "to the end"."""
    if len(begin) != len(in_shape) or len(size) != len(in_shape):
        fail(f"begin {list(begin)} and size {list(size)} need one entry per input dim "
             f"({len(in_shape)})")
    out = []
    for d, (n, b, s) in enumerate(zip(in_shape, begin, size)):
        if s < -1:
            fail(f"invalid size {s} on dim {d}")
        if not 0 <= b <= n:
            fail(f"begin {b} is out of range for dim {d} of size {n}")
        if s == -1:
            s = n - b
        elif b + s > n:
            fail(f"begin {b} + size {s} exceeds dim {d} of size {n}")
        out.append(slice(b, b + s))
    return tuple(out)


def prepare_slice(ctx: OpContext) -> SliceData:
    check_tflm(ctx, (T.FLOAT32, T.INT8, T.INT16, T.INT32, T.BOOL), "slice.cc", max_rank=5)
    for i in (1, 2):
        t = ctx.require_input(i)
        ctx.require(t.type in (T.INT32, T.INT64), f"input {i} must be INT32 or INT64")
        ctx.require(len(ctx.input_shape(i)) == 1, f"input {i} must be a vector")
    begin, size = ctx.const(1), ctx.const(2)
    if begin is None or size is None:
        ctx.set_dynamic_output(0)
        return SliceData(None, ctx.op.locator)
    slices = slice_plan(ctx.input_shape(0), as_ints(begin), as_ints(size), ctx.fail)
    ctx.set_output_shape(0, [s.stop - s.start for s in slices])
    return SliceData(slices, ctx.op.locator)


@register(Op.SLICE, *SIZED_TYPES, prepare=prepare_slice)
def slice_(data: SliceData, x: np.ndarray, begin: np.ndarray, size: np.ndarray) -> np.ndarray:
    slices = data.slices
    if slices is None:
        slices = slice_plan(x.shape, as_ints(begin), as_ints(size), runtime_fail(data.locator))
    return np.ascontiguousarray(x[slices])


# -- TILE ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TileData:
    multiples: tuple[int, ...] | None
    locator: str


def tile_multiples(in_shape: Sequence[int], multiples: Sequence[int], fail: Fail
                   ) -> tuple[int, ...]:
    """tile.cc MultiplyShapeDims: one non-negative multiplier per dim; dims stay < 2^31."""
    if len(multiples) != len(in_shape):
        fail(f"multiples {list(multiples)} need one entry per input dim ({len(in_shape)})")
    for d, m in zip(in_shape, multiples):
        if m < 0:
            fail(f"multiples must be non-negative, got {list(multiples)}")
        if d * m > 2**31 - 1:
            fail(f"tiled dimension {d}x{m} exceeds INT32_MAX")
    return tuple(multiples)


def prepare_tile(ctx: OpContext) -> TileData:
    t = ctx.require_input(1)
    ctx.require(t.type in (T.INT32, T.INT64),
                f"multiples must be INT32 or INT64, not {t.type_name}")
    value = param_input(ctx, 1)
    if value is None:
        return TileData(None, ctx.op.locator)
    in_shape = ctx.input_shape(0)
    mult = tile_multiples(in_shape, as_ints(value), ctx.fail)
    ctx.set_output_shape(0, [d * m for d, m in zip(in_shape, mult)])
    return TileData(mult, ctx.op.locator)


# TFLM has no TILE kernel.
@register(Op.TILE, *SIZED_TYPES, prepare=prepare_tile, emulations=("tflite",))
def tile(data: TileData, x: np.ndarray, multiples: np.ndarray) -> np.ndarray:
    mult = data.multiples
    if mult is None:
        mult = tile_multiples(x.shape, as_ints(multiples), runtime_fail(data.locator))
    return np.tile(x, mult) if x.ndim else x.copy()


# -- BROADCAST_TO -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BroadcastToData:
    output_shape: tuple[int, ...] | None
    locator: str


def broadcast_to_shape(in_shape: Sequence[int], shape: Sequence[int], fail: Fail
                       ) -> tuple[int, ...]:
    """broadcast_to.cc ResizeOutputTensor: the input aligns right; its dims are 1 or equal."""
    extra = len(shape) - len(in_shape)
    if extra < 0 or any(d != 1 and d != shape[extra + k] for k, d in enumerate(in_shape)):
        fail(f"shape {list(shape)} is not broadcastable from {list(in_shape)}")
    if any(d < 0 for d in shape):
        fail(f"shape {list(shape)} holds a negative size")
    return tuple(shape)


def prepare_broadcast_to(ctx: OpContext) -> BroadcastToData:
    check_tflm(ctx, SIZED_TYPES, "broadcast_to.cc", const_inputs=(1,), max_rank=5)
    t = ctx.require_input(1)
    ctx.require(t.type in (T.INT32, T.INT64), f"shape must be INT32 or INT64, not {t.type_name}")
    ctx.require(len(ctx.input_shape(1)) == 1, "shape must be a vector")
    value = param_input(ctx, 1)
    if value is None:
        return BroadcastToData(None, ctx.op.locator)
    shape = broadcast_to_shape(ctx.input_shape(0), as_ints(value), ctx.fail)
    if ctx.emulate == "tflm":
        ctx.require(len(shape) <= 5, "TFLite Micro's broadcast_to.cc takes at most 5 dimensions")
    ctx.set_output_shape(0, shape)
    return BroadcastToData(shape, ctx.op.locator)


@register(Op.BROADCAST_TO, *SIZED_TYPES, prepare=prepare_broadcast_to)
def broadcast_to(data: BroadcastToData, x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    out = data.output_shape
    if out is None:
        out = broadcast_to_shape(x.shape, as_ints(shape), runtime_fail(data.locator))
    return np.ascontiguousarray(np.broadcast_to(x, out))


# -- REVERSE_V2 ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReverseData:
    axes: tuple[int, ...] | None
    locator: str


def reverse_axes(axes: Sequence[int], rank: int, fail: Fail) -> tuple[int, ...]:
    """reverse.cc Eval: axes wrap once, must be in range and, sorted, contiguous."""
    out = sorted(normalize_axis(a, rank, "axis", fail) for a in axes)
    if any(b != a + 1 for a, b in zip(out, out[1:])):
        fail(f"axes {list(axes)} are not contiguous (TFLite supports contiguous axes only)")
    return tuple(out)


def prepare_reverse_v2(ctx: OpContext) -> ReverseData:
    check_tflm(ctx, (T.FLOAT32, T.UINT8, T.INT8, T.INT16, T.INT32, T.INT64, T.BOOL), "reverse.cc")
    rank = len(ctx.input_shape(0))
    t = ctx.require_input(1)
    ctx.require(t.type == T.INT32, f"axis must be INT32, not {t.type_name}")
    ctx.require(len(ctx.input_shape(1)) == 1 and ctx.input_shape(1)[0] <= rank <= 8,
                "axis must be a vector of at most rank (<= 8) entries")
    ctx.set_output_shape(0, ctx.input_shape(0))
    value = ctx.const(1)  # the output shape never depends on it
    axes = None if value is None else reverse_axes(as_ints(value), rank, ctx.fail)
    return ReverseData(axes, ctx.op.locator)


@register(Op.REVERSE_V2, T.FLOAT32, T.FLOAT16, T.UINT8, T.INT8, T.INT16, T.INT32, T.INT64,
          T.BOOL, prepare=prepare_reverse_v2)
def reverse_v2(data: ReverseData, x: np.ndarray, axis: np.ndarray) -> np.ndarray:
    axes = data.axes
    if axes is None:
        axes = reverse_axes(as_ints(axis), x.ndim, runtime_fail(data.locator))
    return np.ascontiguousarray(np.flip(x, axes)) if axes else x.copy()


# -- DEPTH_TO_SPACE, SPACE_TO_DEPTH -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BlockData:
    block: int


SPACE_DEPTH_TYPES = (T.FLOAT32, T.UINT8, T.INT8, T.INT32, T.INT64)


def prepare_depth_to_space(ctx: OpContext) -> BlockData:
    """depth_to_space.cc Prepare: 4-D NHWC, C divisible by block^2."""
    check_tflm(ctx, (T.FLOAT32, T.INT8), "depth_to_space.cc")
    shape = ctx.input_shape(0)
    ctx.require(len(shape) == 4, f"input must be 4-D, not {list(shape)}")
    bs = int(ctx.options.get("block_size", 0))
    ctx.require(bs > 0, f"block_size must be positive, not {bs}")
    n, h, w, c = shape
    ctx.require(c % (bs * bs) == 0, f"depth {c} is not divisible by block_size^2 = {bs * bs}")
    ctx.set_output_shape(0, (n, h * bs, w * bs, c // (bs * bs)))
    return BlockData(bs)


@register(Op.DEPTH_TO_SPACE, *SPACE_DEPTH_TYPES, prepare=prepare_depth_to_space)
def depth_to_space(data: BlockData, x: np.ndarray) -> np.ndarray:
    # reference_ops::DepthToSpace: in_d = out_d + ((out_h % bs) * bs + out_w % bs) * out_depth,
    # i.e. the input depth splits as (dy, dx, c).
    n, h, w, c = x.shape
    bs = data.block
    y = x.reshape(n, h, w, bs, bs, c // (bs * bs)).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(y).reshape(n, h * bs, w * bs, c // (bs * bs))


def prepare_space_to_depth(ctx: OpContext) -> BlockData:
    check_tflm(ctx, (T.FLOAT32, T.INT8), "space_to_depth.cc")
    shape = ctx.input_shape(0)
    ctx.require(len(shape) == 4, f"input must be 4-D, not {list(shape)}")
    bs = int(ctx.options.get("block_size", 0))
    ctx.require(bs > 0, f"block_size must be positive, not {bs}")
    n, h, w, c = shape
    ctx.require(h % bs == 0 and w % bs == 0, f"{h}x{w} is not divisible by block_size {bs}")
    ctx.set_output_shape(0, (n, h // bs, w // bs, c * bs * bs))
    return BlockData(bs)


@register(Op.SPACE_TO_DEPTH, *SPACE_DEPTH_TYPES, prepare=prepare_space_to_depth)
def space_to_depth(data: BlockData, x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    bs = data.block
    y = x.reshape(n, h // bs, bs, w // bs, bs, c).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(y).reshape(n, h // bs, w // bs, c * bs * bs)


# -- SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SpaceBatchPlan:
    block: tuple[int, int]  # (block_h, block_w); block_w = 1 for 3-D inputs
    pads: tuple[int, int, int, int]  # top, bottom, left, right (paddings or crops)
    output_shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SpaceBatchData:
    plan: SpaceBatchPlan | None
    pad_value: int  # SPACE_TO_BATCH_ND fill value
    locator: str


def space_batch_plan(in_shape: Sequence[int], block: Sequence[int], pads: Sequence[int],
                     to_batch: bool, fail: Fail) -> SpaceBatchPlan:
    """space_to_batch_nd.cc / batch_to_space_nd.cc ResizeOutputTensor (3-D is NHC as NH1C)."""
    spatial = len(in_shape) - 2
    if len(block) != spatial or len(pads) != 2 * spatial:
        fail(f"block_shape needs {spatial} entries and paddings/crops {spatial}x2")
    if any(b <= 0 for b in block) or any(p < 0 for p in pads):
        fail(f"block_shape {list(block)} must be positive and paddings/crops {list(pads)} "
             "non-negative")
    out = list(in_shape)
    batch = in_shape[0]
    for d in range(spatial):
        size = in_shape[d + 1]
        if to_batch:
            full = size + pads[2 * d] + pads[2 * d + 1]
            if full % block[d]:
                fail(f"padded dim {d + 1} of size {full} is not divisible by {block[d]}")
            out[d + 1] = full // block[d]
            batch *= block[d]
        else:
            if batch % block[d]:
                fail(f"batch {batch} is not divisible by block {block[d]}")
            batch //= block[d]
            out[d + 1] = size * block[d] - pads[2 * d] - pads[2 * d + 1]
            if out[d + 1] < 0:
                fail(f"crops {list(pads)} exceed dim {d + 1}")
    out[0] = batch
    bh, bw = block[0], block[1] if spatial == 2 else 1
    p = (pads[0], pads[1], pads[2], pads[3]) if spatial == 2 else (pads[0], pads[1], 0, 0)
    return SpaceBatchPlan((bh, bw), p, tuple(out))


def prepare_space_batch(ctx: OpContext, to_batch: bool) -> SpaceBatchData:
    name = "space_to_batch_nd.cc" if to_batch else "batch_to_space_nd.cc"
    check_tflm(ctx, (T.FLOAT32, T.INT8), name)
    shape = ctx.input_shape(0)
    ctx.require(3 <= len(shape) <= 4, f"input must be 3-D or 4-D, not {list(shape)}")
    x, out = ctx.input(0), ctx.output(0)
    if out.type in (T.UINT8, T.INT8, T.INT16):
        require_same_quant(ctx, x, out, "input and output")
    if out.type == T.INT16 and ctx.emulate == "tflite":
        ctx.require(legacy_quant_params(out)[1] == 0, "int16 zero point must be 0")
    for i in (1, 2):
        t = ctx.require_input(i)
        if t.type != T.INT32:  # both kernels read block_shape/paddings as int32
            ctx.unsupported(f"input {i} is {t.type_name}; TFLite reads it as INT32")
    ctx.require(ctx.input_shape(1) == (len(shape) - 2,)
                and ctx.input_shape(2) == (len(shape) - 2, 2),
                "block_shape must be [spatial dims] and paddings/crops [spatial dims, 2]")
    # The reference SpaceToBatchND memsets padding with params.output_offset. LiteRT sets it to
    # the output zero point for 8/16-bit types (int16's is 0) and 0 otherwise
    # (space_to_batch_nd.cc Eval); TFLM never sets it (a zeroed persistent SpaceToBatchParams in
    # micro/kernels/space_to_batch_nd.cc), so int8 padding is 0 there whatever the zero point.
    tflite_pads_with_zero_point = ctx.emulate == "tflite" and out.type in (T.UINT8, T.INT8,
                                                                           T.INT16)
    pad_value = legacy_quant_params(out)[1] if tflite_pads_with_zero_point else 0
    block, pads = ctx.const(1), ctx.const(2)
    if block is None or pads is None:
        ctx.set_dynamic_output(0)
        return SpaceBatchData(None, pad_value, ctx.op.locator)
    plan = space_batch_plan(shape, as_ints(block), as_ints(pads), to_batch, ctx.fail)
    ctx.set_output_shape(0, plan.output_shape)
    return SpaceBatchData(plan, pad_value, ctx.op.locator)


def prepare_space_to_batch_nd(ctx: OpContext) -> SpaceBatchData:
    return prepare_space_batch(ctx, to_batch=True)


def prepare_batch_to_space_nd(ctx: OpContext) -> SpaceBatchData:
    return prepare_space_batch(ctx, to_batch=False)


SPACE_BATCH_TYPES = (T.FLOAT32, T.UINT8, T.INT8, T.INT16, T.INT32, T.INT64)


def as_nhwc(x: np.ndarray) -> np.ndarray:
    return x if x.ndim == 4 else x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])


@register(Op.SPACE_TO_BATCH_ND, *SPACE_BATCH_TYPES, prepare=prepare_space_to_batch_nd)
def space_to_batch_nd(data: SpaceBatchData, x: np.ndarray, block: np.ndarray,
                      paddings: np.ndarray) -> np.ndarray:
    plan = data.plan or space_batch_plan(x.shape, as_ints(block), as_ints(paddings), True,
                                         runtime_fail(data.locator))
    (bh, bw), (pt, pb, pl, pr) = plan.block, plan.pads
    v = as_nhwc(x)
    n, _, _, c = v.shape
    padded = np.pad(v, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=data.pad_value)
    ho, wo = padded.shape[1] // bh, padded.shape[2] // bw
    # reference SpaceToBatchND: out_b = (shift_h * bw + shift_w) * N + b, in row out_h*bh+shift_h.
    y = padded.reshape(n, ho, bh, wo, bw, c).transpose(2, 4, 0, 1, 3, 5)
    return np.ascontiguousarray(y).reshape(plan.output_shape)


@register(Op.BATCH_TO_SPACE_ND, *SPACE_BATCH_TYPES, prepare=prepare_batch_to_space_nd)
def batch_to_space_nd(data: SpaceBatchData, x: np.ndarray, block: np.ndarray, crops: np.ndarray
                      ) -> np.ndarray:
    plan = data.plan or space_batch_plan(x.shape, as_ints(block), as_ints(crops), False,
                                         runtime_fail(data.locator))
    (bh, bw), (ct, cb, cl, cr) = plan.block, plan.pads
    v = as_nhwc(x)
    nb, h, w, c = v.shape
    n = nb // (bh * bw)
    # reference BatchToSpaceND: in_b = (shift_h * bw + shift_w) * N_out + b.
    y = np.ascontiguousarray(v.reshape(bh, bw, n, h, w, c).transpose(2, 3, 0, 4, 1, 5))
    y = y.reshape(n, h * bh, w * bw, c)[:, ct:h * bh - cb, cl:w * bw - cr]
    return np.ascontiguousarray(y).reshape(plan.output_shape)


# -- SHAPE --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ShapeData:
    dtype: np.dtype


def prepare_shape(ctx: OpContext) -> ShapeData:
    """shape.cc Prepare: out_type INT32 or INT64 decides the output type."""
    check_tflm(ctx, (T.INT32,), "shape.cc")
    out_type = ctx.options.get("out_type", "INT32")
    out = ctx.output(0)
    if out_type not in ("INT32", "INT64"):
        ctx.fail(f"out_type must be INT32 or INT64, not {out_type}")
    ctx.require(out.type_name == out_type, f"out_type {out_type} but the output is {out.type_name}")
    ctx.set_output_shape(0, (len(ctx.input_shape(0)),))
    return ShapeData(np.dtype(np.int32 if out_type == "INT32" else np.int64))


@register(Op.SHAPE, T.INT32, T.INT64, prepare=prepare_shape)
def shape(data: ShapeData, x: np.ndarray) -> np.ndarray:
    return np.array(x.shape, dtype=data.dtype)


# -- FILL, ZEROS_LIKE ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FillData:
    output_shape: tuple[int, ...] | None
    locator: str


def fill_shape(dims: Sequence[int], fail: Fail) -> tuple[int, ...]:
    if any(d < 0 for d in dims):
        fail(f"fill dimensions must be >= 0, got {list(dims)}")
    return tuple(dims)


def prepare_fill(ctx: OpContext) -> FillData:
    """fill.cc Prepare: int32/int64 dims vector, scalar value of the output's type and quant."""
    check_tflm(ctx, (T.FLOAT32, T.INT8, T.INT32), "fill.cc", const_inputs=(0,))
    dims_t, value_t, out = ctx.require_input(0), ctx.require_input(1), ctx.output(0)
    ctx.require(dims_t.type in (T.INT32, T.INT64), "dims must be INT32 or INT64")
    ctx.require(len(ctx.input_shape(0)) == 1, "dims must be a vector")
    ctx.require(len(ctx.input_shape(1)) == 0, "value must be a scalar")
    ctx.require(value_t.type == out.type, f"value is {value_t.type_name}, output {out.type_name}")
    require_same_quant(ctx, value_t, out, "value and output")
    if out.type == T.INT16 and ctx.emulate == "tflite":
        ctx.require(legacy_quant_params(out)[1] == 0, "int16 zero point must be 0")
    dims = param_input(ctx, 0)
    if dims is None:
        return FillData(None, ctx.op.locator)
    shape_ = fill_shape(as_ints(dims), ctx.fail)
    ctx.set_output_shape(0, shape_)
    return FillData(shape_, ctx.op.locator)


@register(Op.FILL, *SIZED_TYPES, prepare=prepare_fill)
def fill(data: FillData, dims: np.ndarray, value: np.ndarray) -> np.ndarray:
    out = data.output_shape
    if out is None:
        out = fill_shape(as_ints(dims), runtime_fail(data.locator))
    return np.full(out, value.reshape(()), dtype=value.dtype)


def prepare_zeros_like(ctx: OpContext) -> None:
    check_tflm(ctx, (T.FLOAT32, T.INT8, T.INT32, T.INT64), "zeros_like.cc")
    ctx.require(ctx.require_input(0).type == ctx.output(0).type, "input and output types differ")
    ctx.set_output_shape(0, ctx.input_shape(0))


@register(Op.ZEROS_LIKE, T.FLOAT32, T.INT32, T.INT64, prepare=prepare_zeros_like)
def zeros_like(data: None, x: np.ndarray) -> np.ndarray:
    return np.zeros_like(x)


# zeros_like.cc in LiteRT has no int8 case; TFLM's has.
register(Op.ZEROS_LIKE, T.INT8, prepare=prepare_zeros_like, emulations=("tflm",))(zeros_like)


# -- RANGE --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RangeData:
    value: np.ndarray | None  # computed once when start/limit/delta are constant
    locator: str


def range_values(start: np.ndarray, limit: np.ndarray, delta: np.ndarray, fail: Fail
                 ) -> np.ndarray:
    """range.cc GetSize + CalculateRange: ``value += delta`` accumulates in the output type."""
    dt = start.dtype
    s, lim, d = start.reshape(()), limit.reshape(()), delta.reshape(())
    if d == 0:
        fail("delta must be non-zero")
    if not ((s >= lim and d < 0) or (s <= lim and d > 0)):
        fail(f"range from {s} to {lim} never arrives with delta {d}")
    if dt.kind == "f":
        n = int(np.ceil(np.abs((lim - s) / d)))  # float32 arithmetic as in the C++
    else:
        n = int((abs(int(lim) - int(s)) + abs(int(d)) - 1) // abs(int(d)))
    steps = np.full(n, d, dtype=dt)
    if n:
        steps[0] = s
    # np.cumsum is a sequential left-to-right sum: it repeats the C loop's rounding (floats) and
    # wrap-around (integers) exactly.
    return np.cumsum(steps, dtype=dt)


def prepare_range(ctx: OpContext) -> RangeData:
    dtype = ctx.require_input(0).type
    ctx.require(dtype in (T.FLOAT32, T.INT32, T.INT64), f"RANGE of {ctx.dtype_name(ctx.input(0))}")
    for i in range(3):
        ctx.require(ctx.require_input(i).type == dtype, "start, limit and delta differ in type")
        ctx.require(len(ctx.input_shape(i)) == 0, f"input {i} must be a scalar")
    ctx.require(ctx.output(0).type == dtype, "output type differs from start")
    start, limit, delta = (ctx.const(i) for i in range(3))
    if start is None or limit is None or delta is None:
        ctx.set_dynamic_output(0)
        return RangeData(None, ctx.op.locator)
    value = range_values(start, limit, delta, ctx.fail)
    ctx.set_output_shape(0, value.shape)
    return RangeData(value, ctx.op.locator)


# TFLM has no RANGE kernel.
@register(Op.RANGE, T.FLOAT32, T.INT32, T.INT64, prepare=prepare_range, emulations=("tflite",))
def range_(data: RangeData, start: np.ndarray, limit: np.ndarray, delta: np.ndarray
           ) -> np.ndarray:
    if data.value is not None:
        value: np.ndarray = data.value.copy()
        return value
    return range_values(start, limit, delta, runtime_fail(data.locator))


# -- ONE_HOT ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OneHotData:
    axis: int
    depth: int | None  # None: read from the depth input at every invoke
    locator: str


def one_hot_shape(in_shape: Sequence[int], axis: int, depth: int, fail: Fail) -> tuple[int, ...]:
    if depth < 0:
        fail(f"depth must be >= 0, got {depth}")
    return (*in_shape[:axis], depth, *in_shape[axis:])


def prepare_one_hot(ctx: OpContext) -> OneHotData:
    """one_hot.cc Prepare: axis -1 means last; on/off values are scalars of the output type."""
    indices = ctx.require_input(0)
    ctx.require(indices.type in (T.INT32, T.INT64), "indices must be INT32 or INT64")
    out = ctx.output(0)
    rank = len(ctx.input_shape(0))
    axis = int(ctx.options.get("axis", -1))
    axis = rank if axis == -1 else axis
    ctx.require(0 <= axis <= rank, f"axis {axis} is out of range for {rank}-D indices")
    depth_t = ctx.require_input(1)
    ctx.require(depth_t.type == T.INT32, "depth must be INT32 (TFLite reads data.i32)")
    for i in (1, 2, 3):
        ctx.require(math.prod(ctx.input_shape(i)) == 1, f"input {i} must hold one value")
    for i in (2, 3):
        ctx.require(ctx.require_input(i).type == out.type, f"input {i} type differs from output")
    depth = param_input(ctx, 1)
    if depth is None:
        return OneHotData(axis, None, ctx.op.locator)
    d = scalar_int(depth, "depth", ctx.fail)
    ctx.set_output_shape(0, one_hot_shape(ctx.input_shape(0), axis, d, ctx.fail))
    return OneHotData(axis, d, ctx.op.locator)


# INT16 passes one_hot.cc Prepare but has no Eval case, so it is not registered. No TFLM kernel.
@register(Op.ONE_HOT, T.FLOAT32, T.INT32, T.INT64, T.INT8, T.UINT8, T.BOOL,
          prepare=prepare_one_hot, emulations=("tflite",))
def one_hot(data: OneHotData, indices: np.ndarray, depth: np.ndarray, on: np.ndarray,
            off: np.ndarray) -> np.ndarray:
    d = data.depth
    if d is None:
        d = scalar_int(depth, "depth", runtime_fail(data.locator))
    shape_ = one_hot_shape(indices.shape, data.axis, d, runtime_fail(data.locator))
    prefix = math.prod(indices.shape[:data.axis])
    if prefix == 0 or indices.size == 0:
        return np.full(shape_, off.reshape(()), dtype=off.dtype)
    # OneHotComputeImpl compares static_cast<int>(index) == j: int64 indices wrap to int32.
    idx = indices.astype(np.int64).astype(np.int32).reshape(prefix, 1, -1)
    hot = idx == np.arange(d, dtype=np.int32).reshape(1, d, 1)
    return np.where(hot, on.reshape(()), off.reshape(())).astype(on.dtype).reshape(shape_)


__all__ = ["ALL_TYPES", "SIZED_TYPES", "runtime_fail", "require_same_quant", "check_tflm",
           "as_ints", "resolve_reshape"]
