"""Kernels: comparisons and selection: LESS, LESS_EQUAL, GREATER, GREATER_EQUAL, EQUAL, NOT_EQUAL,
LOGICAL_AND, LOGICAL_OR, LOGICAL_NOT, SELECT, SELECT_V2, WHERE.

Comparisons output BOOL, so they register under ``TensorType.BOOL`` and prepare looks at the
input type. Quantized comparisons bring both sides to a common fixed-point scale first
(``ComparisonWithScaling`` in ``tflite/kernels/internal/reference/comparisons.h``): each input is
offset by its zero point, shifted left by 8 and multiplied by its *own scale* as a fixed-point
multiplier, so ``s1·(q1 - z1)`` is compared with ``s2·(q2 - z2)`` to about 2^-8 of a unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tflite_ref.kernels.common import is_quantized, per_tensor_quant_params
from tflite_ref.kernels.elementwise import (
    broadcast_shape,
    require_num_io,
    require_same_input_types,
)
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.quant.fixedpoint import multiply_by_quantized_multiplier_smaller_than_one_exp
from tflite_ref.quant.multipliers import quantize_multiplier_smaller_than_one_exp

_COMPARE: dict[int, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    Op.LESS: np.less,
    Op.LESS_EQUAL: np.less_equal,
    Op.GREATER: np.greater,
    Op.GREATER_EQUAL: np.greater_equal,
    Op.EQUAL: np.equal,
    Op.NOT_EQUAL: np.not_equal,
}

# Input types each runtime compares (comparisons.cc; micro/kernels/comparisons.cc).
_TFLITE_TYPES: dict[int, tuple[int, ...]] = {
    Op.EQUAL: (T.BOOL, T.FLOAT32, T.INT8, T.UINT8, T.INT16, T.INT32, T.INT64),
    Op.NOT_EQUAL: (T.BOOL, T.FLOAT32, T.INT8, T.UINT8, T.INT16, T.INT32, T.INT64),
    Op.LESS: (T.FLOAT32, T.INT8, T.UINT8, T.INT16, T.INT32, T.INT64),
    Op.LESS_EQUAL: (T.FLOAT32, T.INT8, T.UINT8, T.INT16, T.INT32, T.INT64),
    Op.GREATER: (T.FLOAT32, T.INT8, T.UINT8, T.INT16, T.INT32, T.INT64),
    Op.GREATER_EQUAL: (T.FLOAT32, T.INT8, T.UINT8, T.INT16, T.INT32, T.INT64),
}
_TFLM_TYPES: dict[int, tuple[int, ...]] = {
    Op.EQUAL: (T.BOOL, T.FLOAT32, T.INT8, T.INT32, T.INT64),
    Op.NOT_EQUAL: (T.BOOL, T.FLOAT32, T.INT8, T.INT32, T.INT64),
    Op.LESS: (T.FLOAT32, T.INT8, T.INT32, T.INT64),
    Op.LESS_EQUAL: (T.FLOAT32, T.INT8, T.INT32, T.INT64),
    # TFLM's GREATER also takes int16 through the scaling path, but its prepare fills the
    # scaling parameters for int8 only, so int16 compares zeros: not reproduced.
    Op.GREATER: (T.FLOAT32, T.INT8, T.INT32, T.INT64),
    Op.GREATER_EQUAL: (T.FLOAT32, T.INT8, T.INT32, T.INT64),
}


# ================================================================================================
# Comparisons
# ================================================================================================
@dataclass(frozen=True, slots=True)
class ComparisonScaling:
    """``ComparisonParams``: per input ``offset = -z``, ``(multiplier, shift)`` of its scale."""

    left_shift: int
    input1_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int


@dataclass(frozen=True, slots=True)
class ComparisonData:
    output_shape: tuple[int, ...]
    compare: Callable[[np.ndarray, np.ndarray], np.ndarray]
    scaling: ComparisonScaling | None  # None: compare the raw values


def _scale_multiplier(ctx: OpContext, scale: float) -> tuple[int, int]:
    """The fixed-point multiplier of an input's own scale (``QuantizeMultiplierSmallerThanOneExp``).

    For a scale >= 1 TFLite's comparisons.cc switches to QuantizeMultiplierGreaterThanOne but
    still applies the result as smaller-than-one (a negative right shift: undefined), and TFLM
    CHECK-fails; neither is reproduced.
    """
    if scale <= 0.0:
        ctx.fail(f"input scale {scale} must be positive")
    if not scale < 1.0:
        ctx.unsupported(f"quantized comparison of an input with scale {scale} >= 1")
    return quantize_multiplier_smaller_than_one_exp(scale)


def prepare_comparison(ctx: OpContext) -> ComparisonData:
    require_num_io(ctx, 2)
    require_same_input_types(ctx)
    op = ctx.op.builtin_code
    t = ctx.require_input(0)
    allowed = (_TFLM_TYPES if ctx.emulate == "tflm" else _TFLITE_TYPES)[op]
    if t.type not in allowed:
        runtime = "TFLite Micro" if ctx.emulate == "tflm" else "TFLite"
        ctx.unsupported(f"{runtime}'s {ctx.op.name} does not take {t.type_name} inputs")
    if op == Op.NOT_EQUAL and t.type == T.INT16 and not is_quantized(t):
        # comparisons.cc NotEqualEval handles int16 only when quantized and otherwise leaves
        # the output unwritten: there is nothing to reproduce.
        ctx.unsupported("TFLite's NOT_EQUAL computes nothing for unquantized INT16 inputs")
    shape = broadcast_shape(ctx, ctx.input_shape(0), ctx.input_shape(1))
    ctx.set_output_shape(0, shape)
    compare = _COMPARE[op]
    # Which inputs are rescaled: 8-bit always (uint8/int8 are quantized types here); int16 only
    # for EQUAL/NOT_EQUAL with quantization -- TFLite's LESS/GREATER(_EQUAL) compare int16 raw.
    rescaled = t.type in (T.INT8, T.UINT8) or (
        t.type == T.INT16 and op in (Op.EQUAL, Op.NOT_EQUAL) and is_quantized(t))
    if not rescaled:
        return ComparisonData(shape, compare, None)
    s1, z1 = per_tensor_quant_params(ctx, ctx.input(0), "input 0")
    s2, z2 = per_tensor_quant_params(ctx, ctx.input(1), "input 1")
    m1, sh1 = _scale_multiplier(ctx, s1)
    m2, sh2 = _scale_multiplier(ctx, s2)
    return ComparisonData(shape, compare, ComparisonScaling(8, -z1, m1, sh1, -z2, m2, sh2))


def _rescale(x: np.ndarray, offset: int, left_shift: int, m: int, shift: int) -> np.ndarray:
    shifted = (x.astype(np.int64) + offset) << left_shift
    return np.asarray(multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, m, shift))


@register(Op.LESS, T.BOOL, prepare=prepare_comparison)
@register(Op.LESS_EQUAL, T.BOOL, prepare=prepare_comparison)
@register(Op.GREATER, T.BOOL, prepare=prepare_comparison)
@register(Op.GREATER_EQUAL, T.BOOL, prepare=prepare_comparison)
@register(Op.EQUAL, T.BOOL, prepare=prepare_comparison)
@register(Op.NOT_EQUAL, T.BOOL, prepare=prepare_comparison)
def comparison(data: ComparisonData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_ops::ComparisonImpl / ComparisonWithScaling (and their broadcast forms)."""
    s = data.scaling
    if s is not None:
        x = _rescale(x, s.input1_offset, s.left_shift, s.input1_multiplier, s.input1_shift)
        y = _rescale(y, s.input2_offset, s.left_shift, s.input2_multiplier, s.input2_shift)
    return np.broadcast_to(data.compare(x, y), data.output_shape).astype(np.bool_)


# ================================================================================================
# LOGICAL_AND, LOGICAL_OR, LOGICAL_NOT
# ================================================================================================
@dataclass(frozen=True, slots=True)
class LogicalData:
    output_shape: tuple[int, ...]


def prepare_logical_binary(ctx: OpContext) -> LogicalData:
    require_num_io(ctx, 2)
    for i in range(2):
        if ctx.require_input(i).type != T.BOOL:
            ctx.fail(f"input {i} must be BOOL, is {ctx.require_input(i).type_name}")
    shape = broadcast_shape(ctx, ctx.input_shape(0), ctx.input_shape(1))
    ctx.set_output_shape(0, shape)
    return LogicalData(shape)


def prepare_logical_not(ctx: OpContext) -> LogicalData:
    require_num_io(ctx, 1)
    if ctx.require_input(0).type != T.BOOL:
        ctx.fail(f"input 0 must be BOOL, is {ctx.require_input(0).type_name}")
    shape = tuple(ctx.input_shape(0))
    ctx.set_output_shape(0, shape)
    return LogicalData(shape)


@register(Op.LOGICAL_AND, T.BOOL, prepare=prepare_logical_binary)
def logical_and(data: LogicalData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.broadcast_to(np.logical_and(x, y), data.output_shape).copy()
    return out


@register(Op.LOGICAL_OR, T.BOOL, prepare=prepare_logical_binary)
def logical_or(data: LogicalData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.broadcast_to(np.logical_or(x, y), data.output_shape).copy()
    return out


@register(Op.LOGICAL_NOT, T.BOOL, prepare=prepare_logical_not)
def logical_not(data: LogicalData, x: np.ndarray) -> np.ndarray:
    return np.asarray(np.logical_not(x), dtype=np.bool_)


# ================================================================================================
# SELECT and SELECT_V2
# ================================================================================================
SELECT_TYPES = (T.FLOAT32, T.INT8, T.UINT8, T.INT16, T.INT32, T.INT64, T.BOOL, T.FLOAT16,
                T.UINT32, T.UINT16, T.FLOAT64, T.UINT64)


@dataclass(frozen=True, slots=True)
class SelectData:
    """``rank_one``: SELECT (v1) with a scalar condition, or a vector condition choosing whole
    rows of x/y (``RankOneSelect``); otherwise elementwise with broadcasting."""

    output_shape: tuple[int, ...]
    rank_one: bool


def _prepare_select(ctx: OpContext, v2: bool) -> SelectData:
    require_num_io(ctx, 3)
    cond, x, y = ctx.require_input(0), ctx.require_input(1), ctx.require_input(2)
    if cond.type != T.BOOL:
        ctx.fail(f"the condition must be BOOL, is {cond.type_name}")
    if x.type != y.type or ctx.output(0).type != x.type:
        ctx.fail(f"x ({x.type_name}), y ({y.type_name}) and the output "
                 f"({ctx.output(0).type_name}) must have one type")
    if ctx.emulate == "tflm":
        if not v2:
            ctx.unsupported("TFLite Micro has SELECT_V2 only")
        if x.type not in (T.FLOAT32, T.INT8, T.INT16):
            ctx.unsupported(f"TFLite Micro's SELECT_V2 has no {x.type_name} kernel")
    cs, xs, ys = (tuple(ctx.input_shape(i)) for i in range(3))
    if all(math.prod(s) == 1 for s in (cs, xs, ys, ctx.output(0).shape)):
        # select.cc: with one element everywhere the output keeps the shape the model declares.
        shape = tuple(ctx.output(0).shape)
        ctx.set_output_shape(0, shape)
        return SelectData(shape, False)
    rank_one = False
    if cs == xs == ys:
        shape = xs
    elif not v2:
        # SELECT: a scalar condition, or a vector as long as x's first dimension; x == y.
        rank_one = len(cs) == 0 or len(cs) == 1 and len(xs) >= 1 and cs[0] == xs[0]
        if not rank_one or xs != ys:
            ctx.fail(f"SELECT needs equal shapes, or a scalar/rank-1 condition matching x's "
                     f"first dimension; got {list(cs)}, {list(xs)}, {list(ys)}")
        shape = xs
    else:
        shape = broadcast_shape(ctx, cs, xs, ys)
    ctx.set_output_shape(0, shape)
    return SelectData(shape, rank_one)


def prepare_select(ctx: OpContext) -> SelectData:
    return _prepare_select(ctx, v2=False)


def prepare_select_v2(ctx: OpContext) -> SelectData:
    return _prepare_select(ctx, v2=True)


def _select(data: SelectData, cond: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_ops::Select / RankOneSelect / BroadcastSelect5DSlow: raw values, no rescaling."""
    if data.rank_one and cond.ndim == 1:
        cond = cond.reshape(cond.shape + (1,) * (x.ndim - 1))
    out = np.where(cond, x, y)
    return np.broadcast_to(out, data.output_shape).reshape(data.output_shape).astype(x.dtype)


@register(Op.SELECT, *SELECT_TYPES, prepare=prepare_select)
def select(data: SelectData, cond: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _select(data, cond, x, y)


@register(Op.SELECT_V2, *SELECT_TYPES, prepare=prepare_select_v2)
def select_v2(data: SelectData, cond: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _select(data, cond, x, y)


# ================================================================================================
# WHERE
# ================================================================================================
@dataclass(frozen=True, slots=True)
class WhereData:
    rank: int


WHERE_CONDITION_TYPES = (T.BOOL, T.FLOAT32, T.INT64, T.INT32, T.INT8, T.UINT8, T.UINT32)


def prepare_where(ctx: OpContext) -> WhereData:
    """where.cc: the output is int64 ``[number of non-zero elements, rank]``, known in prepare
    only when the condition is constant; otherwise it is decided per invoke."""
    require_num_io(ctx, 1)
    if ctx.emulate == "tflm":
        ctx.unsupported("TFLite Micro has no WHERE kernel")
    cond = ctx.require_input(0)
    if cond.type not in WHERE_CONDITION_TYPES:
        ctx.unsupported(f"WHERE does not take a {cond.type_name} condition")
    if ctx.output(0).type != T.INT64:
        ctx.fail(f"the output must be INT64, is {ctx.output(0).type_name}")
    rank = len(ctx.input_shape(0))
    if rank == 0:  # LiteRT: "Where op requires condition w/ rank > 0" (at invoke)
        ctx.fail("the condition must have rank > 0")
    const = ctx.const(0)
    if const is not None:
        ctx.set_output_shape(0, (int(np.count_nonzero(const)), rank))
    else:
        ctx.set_dynamic_output(0)
    return WhereData(rank)


@register(Op.WHERE, T.INT64, prepare=prepare_where)
def where(data: WhereData, cond: np.ndarray) -> np.ndarray:
    """reference_ops::SelectTrueCoords: the row-major coordinates of every non-zero element."""
    return np.argwhere(cond != 0).astype(np.int64).reshape(-1, data.rank)
