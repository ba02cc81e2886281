"""Kernels: MEAN, SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_PROD, REDUCE_ANY, REDUCE_ALL, ARG_MAX,
ARG_MIN, CUMSUM, TOPK_V2.

Upstream (read, not copied):

* LiteRT ``tflite/kernels/reduce.cc`` with ``internal/reference/reduce.h`` (``ReduceGeneric``,
  ``Mean``, ``QuantizedMeanOrSum``, ``QuantizedReduceProd``); TFLM
  ``micro/kernels/reduce_common.cc`` runs the same reference functions.
* ``arg_min_max.cc`` / ``reference/arg_min_max.h``, ``cumsum.cc`` / ``reference/cumsum.h``,
  ``topk_v2.cc`` (LiteRT) and the TFLM files of the same names.

How the reference kernels walk the data decides the float results: ``Reduce`` visits the input in
row-major order and accumulates into the output element, so each output is a *sequential* sum of
its inputs in increasing flat index.  We reproduce that by moving the reduced axes (in ascending
order) to the end and running ``np.cumsum``/``np.cumprod`` (sequential, unlike ``np.sum``'s
pairwise sum) along the last axis.  Integer sums are order-free and use an int64 ``np.sum``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import numpy.typing as npt

from tflite_ref.errors import KernelRuntimeError
from tflite_ref.kernels.common import (
    is_quantized,
    per_tensor_quant_params,
    require_tflite,
    require_tflm,
    type_range,
)
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.quant.fixedpoint import (
    IntLike,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    multiply_by_quantized_multiplier_smaller_than_one_exp,
    wrap_int32,
)
from tflite_ref.quant.multipliers import (
    quantize_multiplier,
    quantize_multiplier_smaller_than_one_exp,
    requantize_effective_scale,
)

_QUANTIZED_8_16 = (T.INT8, T.UINT8, T.INT16)


# -- shared: axes and the (outer, reduced) layout -----------------------------------------------
@dataclass(frozen=True, slots=True)
class Layout:
    """How to view the input as ``(outputs, reduced)``: transpose, then reshape.

    ``perm`` puts the kept axes first and the reduced axes (ascending) last, which is the order in
    which the reference ``Reduce`` meets the elements of one output.
    """

    perm: tuple[int, ...]
    n_axes: int  # distinct reduced axes
    rows: int  # number of output elements
    n: int  # elements reduced into each output
    out_shape: tuple[int, ...]

    def view(self, x: np.ndarray) -> np.ndarray:
        rows: np.ndarray = x.transpose(self.perm).reshape(self.rows, self.n)
        return rows


def _resolve_axes(values: npt.ArrayLike, rank: int) -> tuple[int, ...] | str:
    """reference/reduce.h ``ResolveAxis``: negatives wrap once, duplicates drop, order is kept.

    Returns the axes, or a message when one is out of range. A scalar input reduces nothing.
    """
    if rank == 0:
        return ()
    out: list[int] = []
    for a in np.asarray(values).reshape(-1).tolist():
        r = a + rank if a < 0 else a
        if not 0 <= r < rank:
            return f"axis {a} is out of range for an input of rank {rank}"
        if r not in out:
            out.append(r)
    return tuple(out)


def _layout(shape: tuple[int, ...], axes: tuple[int, ...], keep_dims: bool) -> Layout:
    reduced = sorted(axes)
    kept = [d for d in range(len(shape)) if d not in axes]
    if keep_dims:
        out_shape = tuple(1 if d in axes else shape[d] for d in range(len(shape)))
    else:
        out_shape = tuple(shape[d] for d in kept)
    return Layout(tuple(kept + reduced), len(reduced), math.prod(shape[d] for d in kept),
                  math.prod(shape[d] for d in reduced), out_shape)


def _axis_tensor_check(ctx: OpContext, slot: int = 1) -> np.ndarray | None:
    """The constant axis values (or None when computed at run time); the tensor must be int32."""
    t = ctx.require_input(slot)
    if t.type != T.INT32:
        ctx.unsupported(f"the axis tensor is {ctx.dtype_name(t)}; reductions take INT32 axes")
    return ctx.const(slot)


# -- MEAN / SUM / REDUCE_PROD / REDUCE_MAX / REDUCE_MIN / REDUCE_ANY / REDUCE_ALL ----------------
@dataclass(frozen=True, slots=True)
class QuantMeanSum:
    """``QuantizedMeanOrSum`` parameters: ``(m, s) = QuantizeMultiplier(s_in / s_out)``."""

    multiplier: int
    shift: int
    input_zero_point: int
    output_zero_point: int
    qmin: int
    qmax: int


@dataclass(frozen=True, slots=True)
class QuantProd:
    """``QuantizedReduceProd``: each product is rescaled by ``s_in / s_out^(1/N)``."""

    input_scale: float
    output_scale: float
    input_zero_point: int
    output_zero_point: int
    qmin: int
    qmax: int


@dataclass(frozen=True, slots=True)
class ReduceData:
    locator: str
    kind: str  # "sum", "mean", "prod", "max", "min", "any", "all"
    dtype: np.dtype  # input = output dtype
    rank: int
    keep_dims: bool
    layout: Layout | None  # None: the axes arrive at run time
    quant_sum: QuantMeanSum | None  # SUM / MEAN of int8, uint8, int16
    # LiteRT's *reference* SUM passes the data to QuantizedMeanOrSum as uint8 whatever the type
    # (reduce.cc QuantizedMeanOrSum<T, kReference>: GetTensorData<uint8_t>(input/output)), so an
    # int8 SUM reads each byte as unsigned and clamps to [0, 255] before the bytes are read back
    # as int8. The optimized kernel and TFLM use the real type. (For int16 the same call reads
    # half the bytes and leaves half the output unwritten, which cannot be reproduced.)
    sum_bytes_as_uint8: bool
    quant_prod: QuantProd | None  # REDUCE_PROD of quantized int8 / int16
    # The final (multiplier, shift) of a quantized MEAN (1/N folded in), SUM or REDUCE_PROD
    # (N-th root scaling) when the axes are constant; otherwise eval derives it from N.
    requant: tuple[int, int] | None
    # LiteRT's REF ReduceAllDims starts from input[0] instead of the init value, so a NaN
    # first element sticks in REDUCE_MAX/MIN over every axis (reduce.cc ReduceAllDims).
    reduce_all_starts_at_first: bool


_KIND = {Op.SUM: "sum", Op.MEAN: "mean", Op.REDUCE_PROD: "prod", Op.REDUCE_MAX: "max",
         Op.REDUCE_MIN: "min", Op.REDUCE_ANY: "any", Op.REDUCE_ALL: "all"}

# Input types each runtime's kernel accepts (LiteRT reduce.cc EvalMean/EvalSum/EvalGeneric,
# TFLM reduce_common.cc).  LiteRT also has INT64 everywhere.
_TFLITE_TYPES = {
    "sum": (T.FLOAT32, T.INT32, T.INT64, T.INT8, T.UINT8, T.INT16),
    "mean": (T.FLOAT32, T.INT32, T.INT64, T.INT8, T.UINT8, T.INT16),
    "prod": (T.FLOAT32, T.INT32, T.INT64, T.INT8, T.UINT8, T.INT16, T.BOOL),
    "max": (T.FLOAT32, T.INT32, T.INT64, T.INT8, T.UINT8, T.INT16, T.BOOL),
    "min": (T.FLOAT32, T.INT32, T.INT64, T.INT8, T.UINT8, T.INT16, T.BOOL),
    "any": (T.BOOL,),
    "all": (T.BOOL,),
}
_TFLM_TYPES = {
    "sum": (T.FLOAT32, T.INT8, T.INT16),
    "mean": (T.FLOAT32, T.INT8, T.INT16),
    "prod": (),
    "max": (T.FLOAT32, T.INT8),
    "min": (T.FLOAT32, T.INT8),
    "any": (),
    "all": (T.BOOL,),
}


def prepare_reduce(ctx: OpContext) -> ReduceData:
    kind = _KIND[Op(ctx.op.builtin_code)]
    if ctx.num_inputs != 2 or ctx.num_outputs != 1:
        ctx.fail(f"{ctx.op.name} takes 2 inputs (data, axis) and 1 output")
    x, y = ctx.require_input(0), ctx.output(0)
    if x.type != y.type:
        ctx.unsupported(f"input is {x.type_name} but output is {y.type_name}; they must match")
    if x.type not in _TFLITE_TYPES[kind]:
        ctx.unsupported(f"{ctx.op.name} does not take {x.type_name} inputs")
    require_tflm(ctx, x.type in _TFLM_TYPES[kind], f"{x.type_name} inputs")
    dtype = np.dtype(y.dtype)
    shape = ctx.input_shape(0)
    keep_dims = bool(ctx.options.get("keep_dims", False))

    axis_values = _axis_tensor_check(ctx)
    layout = None
    if axis_values is not None:
        axes = _resolve_axes(axis_values, len(shape))
        if isinstance(axes, str):
            ctx.fail(axes)
        layout = _layout(shape, axes, keep_dims)
        ctx.set_output_shape(0, layout.out_shape)
    else:
        ctx.set_dynamic_output(0)

    if x.type == T.INT16 and ctx.emulate == "tflite":
        # reduce.cc PrepareSimple (every reduction): int16 tensors must have zero points 0.
        z_in = per_tensor_quant_params(ctx, x, "input")[1] if is_quantized(x) else 0
        z_out = per_tensor_quant_params(ctx, y, "output")[1] if is_quantized(y) else 0
        if z_in or z_out:
            ctx.fail(f"int16 {ctx.op.name} needs zero points 0 (input {z_in}, output {z_out})")

    quant_sum = quant_prod = None
    requant = None
    if kind in ("sum", "mean") and x.type in _QUANTIZED_8_16:
        # reduce.cc PrepareMeanOrSum / reduce_common.cc PrepareMeanOrSumHelper: by type, not by
        # the presence of quantization — an int8 SUM always rescales.
        s_in, z_in = per_tensor_quant_params(ctx, x, "input")
        s_out, z_out = per_tensor_quant_params(ctx, y, "output")
        m, s = quantize_multiplier(requantize_effective_scale(s_in, s_out))
        quant_sum = QuantMeanSum(m, s, z_in, z_out, *type_range(dtype))
        if layout is not None and layout.n:
            requant = (m, s) if kind == "sum" else _mean_multiplier(quant_sum, layout.n)
    elif kind == "prod" and is_quantized(x):
        # reduce.cc EvalImpl: quantized int8/int16 take QuantizedReduceProd, others fail.
        if x.type not in (T.INT8, T.INT16):
            ctx.unsupported(f"quantized {x.type_name} REDUCE_PROD (only int8 and int16)")
        s_in, z_in = per_tensor_quant_params(ctx, x, "input")
        s_out, z_out = per_tensor_quant_params(ctx, y, "output")
        quant_prod = QuantProd(s_in, s_out, z_in, z_out, *type_range(dtype))
        if layout is not None and layout.n and layout.rows:  # PrepareProd skips empty tensors
            requant = _prod_multiplier(ctx.fail, quant_prod, layout.n)
    elif kind in ("max", "min") and x.type in _QUANTIZED_8_16:
        # EvalType (LiteRT) / EvalMinMaxHelper (TFLM): max/min keep the integer values, so input
        # and output quantization must be identical.
        if is_quantized(x) or is_quantized(y):
            s_in, z_in = per_tensor_quant_params(ctx, x, "input")
            s_out, z_out = per_tensor_quant_params(ctx, y, "output")
            if np.float32(s_in) != np.float32(s_out) or z_in != z_out:
                ctx.fail(f"input (scale {s_in}, zero point {z_in}) and output (scale {s_out}, "
                         f"zero point {z_out}) quantization must be equal")

    return ReduceData(
        locator=ctx.op.locator, kind=kind, dtype=dtype, rank=len(shape), keep_dims=keep_dims,
        layout=layout, quant_sum=quant_sum, quant_prod=quant_prod, requant=requant,
        sum_bytes_as_uint8=ctx.emulate == "tflite" and kind == "sum" and x.type == T.INT8,
        reduce_all_starts_at_first=ctx.emulate == "tflite")


def _mean_multiplier(q: QuantMeanSum, n: int) -> tuple[int, int]:
    """Fold 1/N into the multiplier (reference/reduce.h ``QuantizedMeanOrSum``, compute_sum=false).

    ``k = min(floor(log2 N), 32, 31 + shift)``; ``m' = (m << k) / N`` (truncating);
    ``s' = shift - k``. The clamp keeps ``s' >= -31`` for MultiplyByQuantizedMultiplier.
    """
    k = min(n.bit_length() - 1, 32, 31 + q.shift)
    return (q.multiplier << k) // n, q.shift - k


def _prod_multiplier(fail: Callable[[str], object], q: QuantProd, n: int) -> tuple[int, int]:
    """reduce.cc ``GetQuantProdScaling``: ``s_in / pow(s_out, 1/N)`` in double.

    ``math.pow`` calls the C library's ``pow``, as ``std::pow`` does.
    """
    scaling = float(np.float32(q.input_scale)) / math.pow(float(np.float32(q.output_scale)),
                                                          1.0 / n)
    m, s = quantize_multiplier(scaling)
    if not -31 <= s <= 7:  # the int64 MultiplyByQuantizedMultiplier requires -31 <= shift < 8
        fail(f"REDUCE_PROD rescaling {scaling!r} (shift {s}) is outside TFLite's supported range")
    return m, s


def _runtime_layout(data: ReduceData, x: np.ndarray, axis: np.ndarray | None) -> Layout:
    if data.layout is not None:
        return data.layout
    axes = _resolve_axes(axis if axis is not None else np.zeros(0, np.int32), x.ndim)
    if isinstance(axes, str):
        raise KernelRuntimeError(f"{data.locator}: {axes}")
    return _layout(x.shape, axes, data.keep_dims)


def _sequential(fn: Callable[..., np.ndarray], v: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Last column of a running sum/product: a left-to-right reduction, as the C++ loop does."""
    return fn(v, axis=1, dtype=dtype)[:, -1]


def _eval_reduce(data: ReduceData, x: np.ndarray, axis: np.ndarray | None) -> np.ndarray:
    lay = _runtime_layout(data, x, axis)
    out_dtype = data.dtype
    if lay.n == 0 or lay.rows == 0:
        return _empty_reduction(data, lay)
    v = lay.view(x)
    kind = data.kind
    if kind in ("sum", "mean"):
        q = data.quant_sum
        if q is not None:
            m, s = data.requant or ((q.multiplier, q.shift) if kind == "sum"
                                    else _mean_multiplier(q, lay.n))
            if data.sum_bytes_as_uint8:
                r = _quantized_mean_or_sum(q, v.view(np.uint8), lay.n, m, s, (0, 255))
                return r.astype(np.uint8).view(out_dtype).reshape(lay.out_shape)
            r = _quantized_mean_or_sum(q, v, lay.n, m, s)
        elif out_dtype.kind == "f":
            # reference Mean<float, float> / ReduceGeneric<float>: sequential float32 sum, then a
            # float32 division by N.
            total = _sequential(np.cumsum, v, out_dtype)
            r = total / out_dtype.type(lay.n) if kind == "mean" else total
        else:
            total = v.sum(axis=1, dtype=np.int64)  # int64 wraps like the int64 accumulator
            if kind == "sum":
                r = total  # astype below wraps to int32 like the int32 accumulator
            else:
                # Mean<int32, int64>: int64 sum, C++ truncating division, cast to the type.
                q = np.abs(total) // lay.n
                r = np.where(total < 0, -q, q)
    elif kind == "prod":
        if data.quant_prod is not None:
            r = _quantized_prod(data, data.quant_prod, v, lay.n)
        elif out_dtype.kind == "f":
            r = _sequential(np.cumprod, v, out_dtype)
        elif out_dtype.kind == "b":
            r = np.asarray(v.all(axis=1))
        else:
            # Integer products wrap in the element type; wrap-around multiplication is
            # associative, so NumPy's own (wrapping) product in that type is exact.
            r = np.multiply.reduce(v, axis=1, dtype=out_dtype)
    elif kind in ("max", "min"):
        r = _max_min(data, v, lay)
    elif kind == "any":
        r = np.asarray(v.any(axis=1))
    else:
        r = np.asarray(v.all(axis=1))
    return np.asarray(r).astype(out_dtype, copy=False).reshape(lay.out_shape)


def _empty_reduction(data: ReduceData, lay: Layout) -> np.ndarray:
    """Outputs of a reduction over zero elements (or with zero outputs)."""
    dt = data.dtype
    kind = data.kind
    if kind == "mean":
        # reduce.cc InitializeMeanOutput: quiet NaN of the type (0 for integers).
        fill: object = np.nan if dt.kind == "f" else 0
    elif kind == "prod":
        fill = 1 if data.quant_prod is None else 0  # QuantizedReduceProd returns early
    elif kind == "max":
        fill = -np.finfo(dt).max if dt.kind == "f" else (False if dt.kind == "b"
                                                        else np.iinfo(dt).min)
    elif kind == "min":
        fill = np.finfo(dt).max if dt.kind == "f" else (True if dt.kind == "b"
                                                       else np.iinfo(dt).max)
    elif kind == "all":
        fill = True
    else:  # sum (QuantizedMeanOrSum also leaves T() = 0), any
        fill = 0
    return np.full(lay.out_shape, fill, dtype=dt)


def _quantized_mean_or_sum(q: QuantMeanSum, v: np.ndarray, n: int, m: int, s: int,
                           clamp: tuple[int, int] | None = None) -> np.ndarray:
    """reference/reduce.h ``QuantizedMeanOrSum`` (both runtimes' reference path).

    ``temp_sum`` is an int32 accumulator (wraps); ``sum - z_in·N`` is computed in int64 and cast
    back to int32; then ``MultiplyByQuantizedMultiplier(·, m, s) + z_out`` and a clamp to the
    type. ``(m, s)`` is the SUM multiplier or the MEAN one with 1/N folded in.
    """
    total = wrap_int32(v.sum(axis=1, dtype=np.int64))
    shifted = wrap_int32(np.asarray(total) - np.int64(q.input_zero_point) * n)
    out = np.asarray(multiply_by_quantized_multiplier(shifted, m, s)) + q.output_zero_point
    clipped: np.ndarray = np.clip(out, *(clamp or (q.qmin, q.qmax)))
    return clipped


def _quantized_prod(data: ReduceData, q: QuantProd, v: np.ndarray, n: int) -> np.ndarray:
    """reference/reduce.h ``QuantizedReduceProd``: a left-to-right product, each step rescaled.

    ``acc = x_0 - z_in``; ``acc = MBQM64(acc·(x_j - z_in), m, s)`` for the following elements;
    ``out = clamp(MBQM64(acc, m, s) + z_out)``. ``MBQM64`` is the int64 overload with its 15-bit
    reduced multiplier. The rounding makes the order matter, so this loops over the N reduced
    positions (vectorised over all outputs).
    """
    def fail(msg: str) -> None:
        raise KernelRuntimeError(f"{data.locator}: {msg}")

    m, s = data.requant or _prod_multiplier(fail, q, n)
    d = v.astype(np.int64) - q.input_zero_point
    acc = d[:, 0]
    for j in range(1, n):
        acc = np.asarray(multiply_by_quantized_multiplier_int64(acc * d[:, j], m, s))
    out = np.asarray(multiply_by_quantized_multiplier_int64(acc, m, s)) + q.output_zero_point
    clipped: np.ndarray = np.clip(out, q.qmin, q.qmax)
    return clipped


def _max_min(data: ReduceData, v: np.ndarray, lay: Layout) -> np.ndarray:
    is_max = data.kind == "max"
    r: np.ndarray
    if v.dtype.kind != "f":
        r = v.max(axis=1) if is_max else v.min(axis=1)
        return r
    # `(in > current) ? in : current` starting from the lowest (highest) float: a NaN input never
    # wins, so NaNs are skipped, and an all-NaN row keeps the init value.
    init = -np.finfo(v.dtype).max if is_max else np.finfo(v.dtype).max
    nan = np.isnan(v)
    clean = np.where(nan, v.dtype.type(init), v)
    r = clean.max(axis=1) if is_max else clean.min(axis=1)
    if data.reduce_all_starts_at_first and lay.n_axes == data.rank:
        r = np.where(nan[:, 0], v[:, 0], r)  # a NaN accumulator: nothing compares greater
    return r


# One eval per operator serves every dtype: the dtype-dependent arithmetic was chosen in prepare.
@register(Op.SUM, *_TFLITE_TYPES["sum"], prepare=prepare_reduce)
def sum_(data: ReduceData, x: np.ndarray, axis: np.ndarray | None) -> np.ndarray:
    return _eval_reduce(data, x, axis)


@register(Op.MEAN, *_TFLITE_TYPES["mean"], prepare=prepare_reduce)
def mean(data: ReduceData, x: np.ndarray, axis: np.ndarray | None) -> np.ndarray:
    return _eval_reduce(data, x, axis)


@register(Op.REDUCE_PROD, *_TFLITE_TYPES["prod"], prepare=prepare_reduce)
def reduce_prod(data: ReduceData, x: np.ndarray, axis: np.ndarray | None) -> np.ndarray:
    return _eval_reduce(data, x, axis)


@register(Op.REDUCE_MAX, *_TFLITE_TYPES["max"], prepare=prepare_reduce)
def reduce_max(data: ReduceData, x: np.ndarray, axis: np.ndarray | None) -> np.ndarray:
    return _eval_reduce(data, x, axis)


@register(Op.REDUCE_MIN, *_TFLITE_TYPES["min"], prepare=prepare_reduce)
def reduce_min(data: ReduceData, x: np.ndarray, axis: np.ndarray | None) -> np.ndarray:
    return _eval_reduce(data, x, axis)


@register(Op.REDUCE_ANY, *_TFLITE_TYPES["any"], prepare=prepare_reduce)
def reduce_any(data: ReduceData, x: np.ndarray, axis: np.ndarray | None) -> np.ndarray:
    return _eval_reduce(data, x, axis)


@register(Op.REDUCE_ALL, *_TFLITE_TYPES["all"], prepare=prepare_reduce)
def reduce_all(data: ReduceData, x: np.ndarray, axis: np.ndarray | None) -> np.ndarray:
    return _eval_reduce(data, x, axis)


# -- ARG_MAX / ARG_MIN ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ArgMinMaxData:
    locator: str
    is_max: bool
    axis: int | None  # None: read from the axis tensor at run time
    out_dtype: np.dtype
    # A NaN first element: TFLM's `GreaterFn`/`LessFn` never replace a NaN accumulator, so the
    # answer stays 0; LiteRT's NaN-aware comparator lets the first number replace it
    # (reference/arg_min_max.h GetComparefunction, optimized_ops.h ArgMaxVector<float>).
    nan_accumulator_sticks: bool
    # LiteRT on x86 reduces a float *last* axis with optimized_ops.h ArgMaxVector/ArgMinVector:
    # four NaN-aware lanes, then a horizontal max/min through NEON_2_SSE's vpmax_f32/vpmin_f32,
    # whose `(a < b) ? b : a` propagates a NaN in the first operand. Only rows holding a NaN
    # can come out differently from the plain loop.
    float_last_axis_lanes: bool


def _arg_axis(values: npt.ArrayLike, rank: int) -> int | str:
    a = int(np.asarray(values).reshape(-1)[0])
    r = a + rank if a < 0 else a
    if not 0 <= r < rank:
        return f"axis {a} is out of range for an input of rank {rank}"
    return r


def prepare_arg_min_max(ctx: OpContext) -> ArgMinMaxData:
    if ctx.num_inputs != 2 or ctx.num_outputs != 1:
        ctx.fail(f"{ctx.op.name} takes 2 inputs (data, axis) and 1 output")
    x, axis_t, y = ctx.require_input(0), ctx.require_input(1), ctx.output(0)
    # arg_min_max.cc Prepare / micro arg_min_max.cc Eval type switches.
    if x.type not in (T.FLOAT32, T.UINT8, T.INT8, T.INT32, T.BOOL):
        ctx.unsupported(f"{ctx.op.name} does not take {x.type_name} inputs")
    require_tflm(ctx, x.type in (T.FLOAT32, T.INT8), f"{x.type_name} inputs")
    require_tflm(ctx, y.type == T.INT32, f"{y.type_name} outputs")
    if axis_t.type not in (T.INT32, T.INT64):
        ctx.unsupported(f"the axis tensor is {axis_t.type_name}; {ctx.op.name} takes INT32/INT64")
    require_tflm(ctx, axis_t.type == T.INT32, f"{axis_t.type_name} axes")
    declared = ctx.options.get("output_type")
    if isinstance(declared, str) and declared != y.type_name:
        # LiteRT overwrites the output type with the option; a file where they differ would be
        # read back differently by every runtime.
        ctx.fail(f"output_type option is {declared} but the output tensor is {y.type_name}")
    shape = ctx.input_shape(0)
    if len(shape) < 1:
        ctx.fail(f"{ctx.op.name} needs an input of rank >= 1")
    if math.prod(ctx.input_shape(1)) != 1:
        ctx.fail(f"the axis tensor must hold exactly one value, not shape {ctx.input_shape(1)}")
    values = ctx.const(1)
    axis = None
    if values is not None:
        a = _arg_axis(values, len(shape))
        if isinstance(a, str):
            ctx.fail(a)
        if shape[a] == 0:
            ctx.fail("cannot compute ArgMin/ArgMax over an empty axis")
        axis = a
        ctx.set_output_shape(0, shape[:a] + shape[a + 1:])
    else:
        ctx.set_dynamic_output(0)
    return ArgMinMaxData(ctx.op.locator, ctx.op.builtin_code == Op.ARG_MAX, axis,
                         np.dtype(y.dtype), nan_accumulator_sticks=ctx.emulate == "tflm",
                         float_last_axis_lanes=ctx.emulate == "tflite")


def _eval_arg_min_max(data: ArgMinMaxData, x: np.ndarray, axis_in: np.ndarray) -> np.ndarray:
    """``ArgMinMax``: the first index holding the extreme value (strict comparison keeps ties)."""
    axis = data.axis
    if axis is None:
        a = _arg_axis(axis_in, x.ndim)
        if isinstance(a, str) or x.shape[a] == 0:
            raise KernelRuntimeError(f"{data.locator}: {a if isinstance(a, str) else 'empty axis'}")
        axis = a
    v = np.moveaxis(x, axis, -1)
    idx: np.ndarray
    if v.dtype.kind != "f":
        idx = v.argmax(axis=-1) if data.is_max else v.argmin(axis=-1)
    else:
        nan = np.isnan(v)
        with np.errstate(invalid="ignore"):
            best = (np.fmax if data.is_max else np.fmin).reduce(v, axis=-1, keepdims=True)
        idx = (v == best).argmax(axis=-1)  # all-NaN rows: no hit, index 0
        if data.nan_accumulator_sticks:
            idx = np.where(nan[..., 0], 0, idx)
        elif (data.float_last_axis_lanes and math.prod(x.shape[axis + 1:]) == 1
              and v.shape[-1] >= 4 and nan.any()):
            rows = v.reshape(-1, v.shape[-1])
            idx = _arg_lanes(rows, data.is_max).reshape(idx.shape)
    return idx.astype(data.out_dtype)


def _arg_lanes(v: np.ndarray, is_max: bool) -> np.ndarray:
    """optimized_ops.h ``ArgMaxVector<float>`` / ``ArgMinVector<float>`` with x86's NEON_2_SSE.

    Lane ``j`` keeps the first extreme non-NaN value among elements ``4t + j`` of the whole
    4-blocks (NaN if it saw only NaNs); ``m = pm(pm(l0, l1), pm(l2, l3))`` with
    ``pm(a, b) = (a < b) ? b : a`` (``>`` for min); the index is the smallest lane index whose
    value equals ``m``; the 0-3 leftover elements then update ``(m, index)`` NaN-aware; a NaN
    ``m`` at the end gives 0.
    """
    rows, n = v.shape
    t = n // 4
    blocks = v[:, :4 * t].reshape(rows, t, 4)
    with np.errstate(invalid="ignore"):
        lane_val = (np.fmax if is_max else np.fmin).reduce(blocks, axis=1)
    lane_idx = (blocks == lane_val[:, None, :]).argmax(axis=1) * 4 + np.arange(4)

    def pm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(a < b, b, a) if is_max else np.where(a > b, b, a)

    with np.errstate(invalid="ignore"):
        m = pm(pm(lane_val[:, 0], lane_val[:, 1]), pm(lane_val[:, 2], lane_val[:, 3]))
        idx = np.where(lane_val == m[:, None], lane_idx, np.iinfo(np.int32).max).min(axis=1)
        for i in range(4 * t, n):  # at most 3 leftover columns
            c = v[:, i]
            better = c > m if is_max else c < m
            take = ~np.isnan(c) & (np.isnan(m) | better)
            m = np.where(take, c, m)
            idx = np.where(take, i, idx)
    return np.where(np.isnan(m), 0, idx)


@register(Op.ARG_MAX, T.INT32, T.INT64, prepare=prepare_arg_min_max)
def arg_max(data: ArgMinMaxData, x: np.ndarray, axis: np.ndarray) -> np.ndarray:
    return _eval_arg_min_max(data, x, axis)


@register(Op.ARG_MIN, T.INT32, T.INT64, prepare=prepare_arg_min_max)
def arg_min(data: ArgMinMaxData, x: np.ndarray, axis: np.ndarray) -> np.ndarray:
    return _eval_arg_min_max(data, x, axis)


# -- CUMSUM ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CumsumQuant:
    """TFLM's int8 CUMSUM (micro/kernels/cumsum.cc): ADD-style rescaling with a 20-bit shift."""

    input_zero_point: int
    input_multiplier: int
    input_shift: int
    output_multiplier: int
    output_shift: int
    output_zero_point: int


@dataclass(frozen=True, slots=True)
class CumsumData:
    locator: str
    axis: int | None
    exclusive: bool
    reverse: bool
    quant: CumsumQuant | None


_CUMSUM_LEFT_SHIFT = 20  # kCumSumIntegerShift


def prepare_cumsum(ctx: OpContext) -> CumsumData:
    if ctx.num_inputs != 2 or ctx.num_outputs != 1:
        ctx.fail("CUMSUM takes 2 inputs (data, axis) and 1 output")
    x, axis_t, y = ctx.require_input(0), ctx.require_input(1), ctx.output(0)
    if x.type != y.type:
        ctx.unsupported(f"input is {x.type_name} but output is {y.type_name}; they must match")
    # LiteRT cumsum.cc: int32, int64, float32. TFLM cumsum.cc: float32, int8.
    require_tflite(ctx, x.type in (T.FLOAT32, T.INT32, T.INT64), f"{x.type_name} inputs")
    require_tflm(ctx, x.type in (T.FLOAT32, T.INT8), f"{x.type_name} inputs")
    if axis_t.type != T.INT32:
        ctx.unsupported(f"the axis tensor is {axis_t.type_name}; CUMSUM takes INT32")
    shape = ctx.input_shape(0)
    if len(shape) < 1:
        ctx.fail("CUMSUM needs an input of rank >= 1")
    if math.prod(ctx.input_shape(1)) != 1:
        ctx.fail(f"the axis tensor must hold exactly one value, not shape {ctx.input_shape(1)}")
    values = ctx.const(1)
    axis = None
    if values is not None:
        a = _arg_axis(values, len(shape))
        if isinstance(a, str):
            ctx.fail(a)
        axis = a
    ctx.set_output_shape(0, shape)

    quant = None
    if x.type == T.INT8:
        s_in, z_in = per_tensor_quant_params(ctx, x, "input")
        s_out, z_out = per_tensor_quant_params(ctx, y, "output")
        # cumsum.cc CalculateOpData, all in double: twice = 2·s_in; the input multiplier is
        # s_in / twice = 1/2; the output one twice / (2^20 · s_out).
        twice = 2.0 * float(np.float32(s_in))
        real_in = float(np.float32(s_in)) / twice
        real_out = twice / ((1 << _CUMSUM_LEFT_SHIFT) * float(np.float32(s_out)))
        m_in, sh_in = quantize_multiplier_smaller_than_one_exp(real_in)
        m_out, sh_out = quantize_multiplier_smaller_than_one_exp(real_out)
        quant = CumsumQuant(z_in, m_in, sh_in, m_out, sh_out, z_out)
    return CumsumData(ctx.op.locator, axis, bool(ctx.options.get("exclusive", False)),
                      bool(ctx.options.get("reverse", False)), quant)


def _mbqm_smaller_than_one(x: IntLike, m: int, shift: int) -> np.ndarray:
    # MultiplyByQuantizedMultiplierSmallerThanOneExp: RoundingDivideByPOT(SRDHM(x, m), -shift).
    return np.asarray(multiply_by_quantized_multiplier_smaller_than_one_exp(x, m, shift))


def _scan(v: np.ndarray, axis: int, exclusive: bool, reverse: bool,
          dtype: npt.DTypeLike) -> np.ndarray:
    """Running sum along ``axis`` in ``dtype`` (sequential, like the reference loop)."""
    if reverse:
        v = np.flip(v, axis)
    s = np.cumsum(v, axis=axis, dtype=dtype)
    if exclusive:
        s = np.concatenate([np.zeros_like(np.take(s, [0], axis=axis)),
                            np.take(s, np.arange(s.shape[axis] - 1), axis=axis)], axis=axis)
    return np.flip(s, axis) if reverse else s


@register(Op.CUMSUM, T.FLOAT32, T.INT32, T.INT64, T.INT8, prepare=prepare_cumsum)
def cumsum(data: CumsumData, x: np.ndarray, axis_in: np.ndarray) -> np.ndarray:
    """reference_ops::CumSum (float/int; wrap-around integer sums) and its int8 overload."""
    axis = data.axis
    if axis is None:
        a = _arg_axis(axis_in, x.ndim)
        if isinstance(a, str):
            raise KernelRuntimeError(f"{data.locator}: {a}")
        axis = a
    if x.size == 0:
        empty: np.ndarray = x.copy()
        return empty
    q = data.quant
    if q is None:
        return _scan(x, axis, data.exclusive, data.reverse, x.dtype)
    # int8: every input is shifted left by 20 and halved (input multiplier 1/2) in int32; the
    # running int32 sum starts from the scaled *negative input zero point* (the accumulator is
    # initialised with input1_offset = -z_in, not 0: reference/cumsum.h CumSum(ArithmeticParams)).
    shift = 1 << _CUMSUM_LEFT_SHIFT
    scaled = _mbqm_smaller_than_one(wrap_int32((x.astype(np.int64) - q.input_zero_point) * shift),
                                    q.input_multiplier, q.input_shift)
    start = int(_mbqm_smaller_than_one(wrap_int32(-q.input_zero_point * shift),
                                       q.input_multiplier, q.input_shift))
    acc = np.asarray(wrap_int32(_scan(scaled, axis, data.exclusive, data.reverse, np.int64)
                                + start))
    out = _mbqm_smaller_than_one(acc, q.output_multiplier, q.output_shift) + q.output_zero_point
    clipped: np.ndarray = np.clip(out, -128, 127)
    return clipped.astype(np.int8)


# -- TOPK_V2 --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TopKData:
    locator: str
    k: int | None  # None: read from the k tensor at run time
    index_dtype: np.dtype


def _topk_k(values: npt.ArrayLike, last: int) -> int | str:
    k = int(np.asarray(values).reshape(-1)[0])
    if k > last:
        return f"k = {k} is larger than the last dimension ({last})"
    return max(k, 0)


def prepare_topk_v2(ctx: OpContext) -> TopKData:
    if ctx.num_inputs != 2 or ctx.num_outputs != 2:
        ctx.fail("TOPK_V2 takes 2 inputs (data, k) and 2 outputs (values, indices)")
    x, k_t = ctx.require_input(0), ctx.require_input(1)
    values_t, index_t = ctx.output(0), ctx.output(1)
    if values_t.type != x.type:
        ctx.unsupported(f"values output is {values_t.type_name}, input is {x.type_name}")
    # topk_v2.cc TopKImpl / Eval switches. TFLM has no TOPK_V2.
    if x.type not in (T.FLOAT32, T.UINT8, T.INT8, T.INT16, T.INT32, T.INT64):
        ctx.unsupported(f"TOPK_V2 does not take {x.type_name} inputs")
    require_tflm(ctx, False, "any input (TFLite Micro has no TOPK_V2)")
    if index_t.type not in (T.INT32, T.INT16):
        ctx.unsupported(f"indices output is {index_t.type_name}; TOPK_V2 writes INT32 or INT16")
    if k_t.type not in (T.INT32, T.INT16):
        ctx.unsupported(f"k is {k_t.type_name}; TOPK_V2 takes INT32 or INT16")
    if math.prod(ctx.input_shape(1)) != 1:
        ctx.fail(f"k must hold exactly one value, not shape {ctx.input_shape(1)}")
    shape = ctx.input_shape(0)
    if len(shape) < 1:
        ctx.fail("TOPK_V2 needs an input of rank >= 1")
    if index_t.type == T.INT16 and shape[-1] > np.iinfo(np.int16).max:
        ctx.fail("TopK row size exceeds the INT16 index range")
    values = ctx.const(1)
    k = None
    if values is not None:
        kk = _topk_k(values, shape[-1])
        if isinstance(kk, str):
            ctx.fail(kk)
        k = kk
        ctx.set_output_shape(0, shape[:-1] + (k,))
        ctx.set_output_shape(1, shape[:-1] + (k,))
    else:
        ctx.set_dynamic_output(0)
        ctx.set_dynamic_output(1)
    return TopKData(ctx.op.locator, k, np.dtype(index_t.dtype))


@register(Op.TOPK_V2, T.FLOAT32, T.UINT8, T.INT8, T.INT16, T.INT32, T.INT64,
          prepare=prepare_topk_v2)
def topk_v2(data: TopKData, x: np.ndarray, k_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """topk_v2.cc ``TopK``: largest first, equal values by increasing index, NaN after numbers.

    The comparator is a strict total order, so a stable argsort on the negated values gives the
    same sequence as TFLite's heap; only the first ``k`` are kept.
    """
    k = data.k
    if k is None:
        kk = _topk_k(k_in, x.shape[-1])
        if isinstance(kk, str):
            raise KernelRuntimeError(f"{data.locator}: {kk}")
        k = kk
    keys = -x if x.dtype.kind == "f" else -x.astype(np.int64)  # NaN stays NaN: sorts last
    order = np.argsort(keys, axis=-1, kind="stable")[..., :k]
    return np.take_along_axis(x, order, axis=-1), order.astype(data.index_dtype)
