"""Kernels: RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR.

Both resize the H and W axes of an NHWC tensor to the two values of the ``size`` input. The
source coordinate of every output row and column depends only on the sizes and the
``align_corners`` / ``half_pixel_centers`` flags, so prepare computes it once per axis (at eval
when ``size`` is computed) and eval is a gather plus, for bilinear, a weighted sum.

RESIZE_BILINEAR has three arithmetics in TFLite (``tflite/kernels/resize_bilinear.cc`` Eval,
formulas in ``tflite/kernels/internal/reference/resize_bilinear.h``), all shared with TFLM
(``micro/kernels/resize_bilinear.cc``, float32 and int8 only):

* float32: ``ResizeBilinear<float>``, float32 source coordinates and weights.
* uint8: the same float template on uint8 data, plus 0.5 and a truncating cast.
* int8, int16: ``ResizeBilinearInteger``, coordinates in 1/1024 steps and a 20-bit fixed-point
  weighted sum, rounded half away from zero (the double-rounding build; doc §2.19).

No requantization happens: the output keeps the input's integer values' meaning (TFLite does not
check that input and output quantization agree).

RESIZE_NEAREST_NEIGHBOR (``reference/resize_nearest_neighbor.h`` GetNearestNeighbor): source
index ``floor((v + offset) * scale)``, or ``TfLiteRound`` (half away from zero) with
``align_corners``, clamped to the input, all in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflite_ref.kernels.layout import Fail, as_ints, check_tflm, runtime_fail
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.quant.fixedpoint import c_div, round_away

F32 = np.float32


@dataclass(frozen=True, slots=True)
class AxisMap:
    """Where one output axis reads: lower/upper source index and the upper weight.

    ``weight`` is float32 ``src - lo`` for the float kernels and the int64 ``src_10 - 1024 * lo``
    (in 1/1024 units) for the integer one; nearest neighbour uses ``lo`` only.
    """

    lo: np.ndarray
    hi: np.ndarray
    weight: np.ndarray | None


@dataclass(frozen=True, slots=True)
class ResizePlan:
    y: AxisMap
    x: AxisMap


@dataclass(frozen=True, slots=True)
class ResizeData:
    plan: ResizePlan | None  # None: sizes come from the size input at every invoke
    align_corners: bool
    half_pixel_centers: bool
    arithmetic: str  # "float", "uint8_float_template", "integer" or "nearest"
    locator: str


def float_axis(in_size: int, out_size: int, align: bool, half: bool) -> AxisMap:
    """ComputeInterpolationValues over one axis, in float32 as the C++ does."""
    if align and out_size > 1:
        scale = F32(in_size - 1) / F32(out_size - 1)
    else:
        scale = F32(in_size) / F32(out_size)
    v = np.arange(out_size, dtype=F32)
    src = (v + F32(0.5)) * scale - F32(0.5) if half else v * scale
    lo = np.maximum(np.floor(src).astype(np.int64), 0)
    hi = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    # (input_y - y0) with y0 converted back to float; may be negative left of pixel 0, which
    # extrapolates exactly as the C++ does.
    return AxisMap(lo, hi, (src - lo.astype(F32)).astype(F32))


def integer_axis(in_size: int, out_size: int, align: bool, half: bool) -> AxisMap:
    """ComputeInterpolationValuesInteger: positions in 1/1024 of a pixel, C integer division."""
    if align and out_size > 1:
        scale10 = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale10 = ((1 << 10) * in_size + out_size // 2) // out_size
    v = np.arange(out_size, dtype=np.int64)
    src = v * scale10 + scale10 // 2 - (1 << 9) if half else v * scale10
    lo = np.maximum(c_div(src, 1 << 10), 0)
    hi = np.minimum(c_div(src + (1 << 10) - 1, 1 << 10), in_size - 1)
    return AxisMap(lo, hi, src - (1 << 10) * lo)


def nearest_axis(in_size: int, out_size: int, align: bool, half: bool) -> AxisMap:
    """GetNearestNeighbor over one axis (float32 scale and source position)."""
    if align and out_size > 1:
        scale = F32(in_size - 1) / F32(out_size - 1)
    else:
        scale = F32(in_size) / F32(max(out_size, 1))
    src = (np.arange(out_size, dtype=F32) + F32(0.5 if half else 0.0)) * scale
    idx = np.asarray(round_away(src) if align else np.floor(src)).astype(np.int64)
    idx = np.minimum(idx, in_size - 1)
    if half:
        idx = np.maximum(idx, 0)
    return AxisMap(idx, idx, None)


AXIS_MAPS = {"float": float_axis, "uint8_float_template": float_axis, "integer": integer_axis,
             "nearest": nearest_axis}


def resize_plan(in_shape: tuple[int, ...], size: np.ndarray, align: bool, half: bool,
                arithmetic: str, fail: Fail) -> ResizePlan:
    h, w = as_ints(size)
    low = 0 if arithmetic == "nearest" else 1  # resize_bilinear.cc ENSUREs size > 0
    if h < low or w < low:
        fail(f"output size {[h, w]} must be >= {low}")
    make = AXIS_MAPS[arithmetic]
    return ResizePlan(make(in_shape[1], h, align, half), make(in_shape[2], w, align, half))


def prepare_resize(ctx: OpContext, arithmetic: str) -> ResizeData:
    x, size = ctx.require_input(0), ctx.require_input(1)
    in_shape = ctx.input_shape(0)
    ctx.require(len(in_shape) == 4, f"input must be 4-D NHWC, not {list(in_shape)}")
    ctx.require(size.type == T.INT32, f"size must be INT32, not {size.type_name}")
    ctx.require(ctx.input_shape(1) == (2,), "size must hold [new_height, new_width]")
    ctx.require(ctx.output(0).type == x.type, "output type differs from input")
    align = bool(ctx.options.get("align_corners", False))
    half = bool(ctx.options.get("half_pixel_centers", False))
    if arithmetic != "nearest":
        ctx.require(not (align and half),
                    "If half_pixel_centers is True, align_corners must be False.")
    value = ctx.const(1)
    if value is None:
        ctx.set_dynamic_output(0)
        return ResizeData(None, align, half, arithmetic, ctx.op.locator)
    plan = resize_plan(in_shape, value, align, half, arithmetic, ctx.fail)
    ctx.set_output_shape(0, (in_shape[0], plan.y.lo.size, plan.x.lo.size, in_shape[3]))
    return ResizeData(plan, align, half, arithmetic, ctx.op.locator)


def plan_for(data: ResizeData, x: np.ndarray, size: np.ndarray) -> ResizePlan:
    if data.plan is not None:
        return data.plan
    return resize_plan(x.shape, size, data.align_corners, data.half_pixel_centers,
                       data.arithmetic, runtime_fail(data.locator))


def corners(x: np.ndarray, plan: ResizePlan) -> tuple[np.ndarray, ...]:
    """The four neighbours of every output pixel: (y0,x0), (y1,x0), (y0,x1), (y1,x1)."""
    rows0, rows1 = x[:, plan.y.lo], x[:, plan.y.hi]
    return (rows0[:, :, plan.x.lo], rows1[:, :, plan.x.lo], rows0[:, :, plan.x.hi],
            rows1[:, :, plan.x.hi])


# -- RESIZE_BILINEAR ----------------------------------------------------------------------------
def prepare_resize_bilinear(ctx: OpContext) -> ResizeData:
    # micro/kernels/resize_bilinear.cc: constant size, float32 and int8 only.
    check_tflm(ctx, (T.FLOAT32, T.INT8), "resize_bilinear.cc", const_inputs=(1,))
    out = ctx.output(0).type
    by_type: dict[int, str] = {T.FLOAT32: "float", T.UINT8: "uint8_float_template"}
    arithmetic = by_type.get(out, "integer")
    return prepare_resize(ctx, arithmetic)


def float_weighted_sum(x: np.ndarray, plan: ResizePlan, rounding_offset: np.float32
                       ) -> np.ndarray:
    """reference_ops::ResizeBilinear<T>'s expression, term by term and left to right, in float32.

    ``v00 * (1 - dy) * (1 - dx) + v10 * dy * (1 - dx) + v01 * (1 - dy) * dx + v11 * dy * dx``
    plus the rounding offset (0.5 for integer T).
    """
    dy = plan.y.weight.reshape(1, -1, 1, 1)  # type: ignore[union-attr]
    dx = plan.x.weight.reshape(1, 1, -1, 1)  # type: ignore[union-attr]
    one = F32(1)
    v00, v10, v01, v11 = (c.astype(F32) for c in corners(x, plan))
    total = v00 * (one - dy) * (one - dx)
    total = total + v10 * dy * (one - dx)
    total = total + v01 * (one - dy) * dx
    total = total + v11 * dy * dx
    out: np.ndarray = total + rounding_offset
    return out


@register(Op.RESIZE_BILINEAR, T.FLOAT32, prepare=prepare_resize_bilinear)
def resize_bilinear_float32(data: ResizeData, x: np.ndarray, size: np.ndarray) -> np.ndarray:
    return float_weighted_sum(x, plan_for(data, x, size), F32(0))


@register(Op.RESIZE_BILINEAR, T.UINT8, prepare=prepare_resize_bilinear)
def resize_bilinear_uint8(data: ResizeData, x: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The float template on uint8 (LiteRT REF only; TFLM has no uint8 resize).

    ``static_cast<uint8_t>(float)`` compiles to a truncating float->int32 conversion whose low
    byte is kept.
    """
    v = float_weighted_sum(x, plan_for(data, x, size), F32(0.5))
    out: np.ndarray = (np.trunc(v).astype(np.int64) & 0xFF).astype(np.uint8)
    return out


@register(Op.RESIZE_BILINEAR, T.INT8, T.INT16, prepare=prepare_resize_bilinear)
def resize_bilinear_integer(data: ResizeData, x: np.ndarray, size: np.ndarray) -> np.ndarray:
    """reference_ops::ResizeBilinearInteger (int8 and int16; doc §2.19).

    ``o20 = sum(q * wy * wx)`` with weights in 1/1024 (int64), then
    ``(o20 + (o20 > 0 ? 2^19 : -2^19)) / 2^20`` with C truncation, i.e. half away from zero.
    """
    plan = plan_for(data, x, size)
    one = 1 << 10
    wy1 = plan.y.weight.reshape(1, -1, 1, 1)  # type: ignore[union-attr]
    wx1 = plan.x.weight.reshape(1, 1, -1, 1)  # type: ignore[union-attr]
    # The four-term sum is exact in int64, so it may be taken one axis at a time:
    # sum(q * wy * wx) = sum_x wx * (sum_y q * wy). Rows first, then columns.
    xi = x.astype(np.int64)
    rows = xi[:, plan.y.lo] * (one - wy1) + xi[:, plan.y.hi] * wy1
    o20 = rows[:, :, plan.x.lo] * (one - wx1) + rows[:, :, plan.x.hi] * wx1
    rounded = np.asarray(c_div(o20 + np.where(o20 > 0, 1 << 19, -(1 << 19)), 1 << 20))
    info = np.iinfo(x.dtype)
    # static_cast<T>: the weighted mean of in-range values stays in range; wrap like C if not.
    return ((rounded - info.min) % (1 << info.bits) + info.min).astype(x.dtype)


# -- RESIZE_NEAREST_NEIGHBOR --------------------------------------------------------------------
def prepare_resize_nearest_neighbor(ctx: OpContext) -> ResizeData:
    # micro/kernels/resize_nearest_neighbor.cc: constant size; float32, int8, int16.
    check_tflm(ctx, (T.FLOAT32, T.INT8, T.INT16), "resize_nearest_neighbor.cc",
               const_inputs=(1,))
    return prepare_resize(ctx, "nearest")


@register(Op.RESIZE_NEAREST_NEIGHBOR, T.FLOAT32, T.UINT8, T.INT8, T.INT16, T.INT32,
          prepare=prepare_resize_nearest_neighbor)
def resize_nearest_neighbor(data: ResizeData, x: np.ndarray, size: np.ndarray) -> np.ndarray:
    plan = plan_for(data, x, size)
    out: np.ndarray = x[:, plan.y.lo][:, :, plan.x.lo]
    return np.ascontiguousarray(out)
