"""Kernels: AVERAGE_POOL_2D, MAX_POOL_2D, L2_POOL_2D.

Sources (read, not copied):

* LiteRT ``tflite/kernels/pooling.cc`` (``GenericPrepare``, ``AverageEval``, ``MaxEval``,
  ``L2Eval``; the REF resolver registers the ``kReference`` variants) and
  ``tflite/kernels/padding.h`` (``ComputePaddingHeightWidth``).
* ``tensorflow/lite/kernels/internal/reference/pooling.h`` (float and uint8) and
  ``reference/integer_ops/pooling.h`` (int8 and int16).
* TFLM ``micro/kernels/pooling.cc``, ``pooling_common.cc`` and ``l2_pool_2d.cc``.

A pooling window starts at ``out · stride − pad_before`` and is *clipped* to the image: taps in
the padding are skipped, and AVERAGE / L2 divide by the number of taps that were really summed.
We reproduce that by padding the input with a value that cannot change the result (0 for sums,
the type's lowest value for max) and by precomputing the per-position tap counts in prepare.

Quantized pooling does not requantize: the kernels add raw integers (zero point included) and
assume the output has the input's scale and zero point.  TFLM enforces that in Prepare; LiteRT
only ``TFLITE_DCHECK``s it, which release builds (the pip wheels) compile out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tflite_ref.kernels.common import (
    compute_out_size,
    compute_padding_with_offset,
    quant_params,
)
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.quant.fixedpoint import c_div
from tflite_ref.quant.multipliers import (
    calculate_activation_range,
    calculate_activation_range_quantized,
)

_INT_DTYPES = {int(T.INT8): np.int8, int(T.UINT8): np.uint8, int(T.INT16): np.int16}


@dataclass(frozen=True, slots=True)
class PoolData:
    """Everything a pooling eval needs; the window geometry is shared by all three ops."""

    stride_h: int
    stride_w: int
    filter_h: int
    filter_w: int
    pad_top: int  # padding before the image (``padding_values.height`` in TFLite)
    pad_left: int
    pad_bottom: int  # enough rows after the image for the last window to be sliced whole
    pad_right: int
    out_h: int
    out_w: int
    # Number of in-image taps per output position, shape [out_h, out_w, 1] (AVG and L2 only).
    counts: npt.NDArray[np.int64] | None
    act_min: float | int
    act_max: float | int
    dtype: np.dtype


def _out_size_and_padding(ctx: OpContext, padding: str, in_size: int, filter_size: int,
                          stride: int, what: str) -> tuple[int, int]:
    """``ComputeOutSize`` + ``ComputePaddingWithOffset`` of ``padding.h`` with dilation 1:
    (output size, padding before the image)."""
    if padding not in ("SAME", "VALID"):
        ctx.fail(f"padding must be SAME or VALID, got {padding!r}")
    out = compute_out_size(padding, in_size, filter_size, stride)
    if out <= 0:
        ctx.fail(f"{what}: a {filter_size}-tap window with stride {stride} and {padding} padding "
                 f"leaves no output for an input of size {in_size}")
    pad_before, _ = compute_padding_with_offset(stride, 1, in_size, filter_size, out)
    return out, pad_before


def _valid_taps(out: int, stride: int, pad: int, filter_size: int, in_size: int
                ) -> npt.NDArray[np.int64]:
    # filter_start = max(0, -origin), filter_end = min(filter, in - origin) (reference/pooling.h)
    origin = np.arange(out, dtype=np.int64) * stride - pad
    start = np.maximum(0, -origin)
    end = np.minimum(filter_size, in_size - origin)
    taps: npt.NDArray[np.int64] = np.maximum(end - start, 0)
    return taps


def _prepare_pool(ctx: OpContext, kind: str) -> PoolData:
    x, y = ctx.require_input(0), ctx.output(0)
    if ctx.num_inputs != 1 or ctx.num_outputs != 1:
        ctx.fail(f"expects 1 input and 1 output, got {ctx.num_inputs} and {ctx.num_outputs}")
    shape = ctx.input_shape(0)
    if len(shape) != 4:
        ctx.fail(f"input must be 4-D (NHWC), got shape {list(shape)}")
    if x.type != y.type:
        ctx.fail(f"input is {ctx.dtype_name(x)} but output is {ctx.dtype_name(y)}")
    opts = ctx.options
    stride_h, stride_w = int(opts.get("stride_h", 0)), int(opts.get("stride_w", 0))
    filter_h, filter_w = int(opts.get("filter_height", 0)), int(opts.get("filter_width", 0))
    if stride_h <= 0 or stride_w <= 0:
        ctx.fail(f"strides must be positive, got stride_h={stride_h}, stride_w={stride_w}")
    if filter_h <= 0 or filter_w <= 0:
        ctx.fail(f"filter must be positive, got {filter_h}x{filter_w}")
    n, h, w, c = shape
    padding = str(opts.get("padding", "SAME"))
    out_h, pad_top = _out_size_and_padding(ctx, padding, h, filter_h, stride_h, "height")
    out_w, pad_left = _out_size_and_padding(ctx, padding, w, filter_w, stride_w, "width")
    pad_bottom = max(0, (out_h - 1) * stride_h + filter_h - pad_top - h)
    pad_right = max(0, (out_w - 1) * stride_w + filter_w - pad_left - w)

    counts = None
    if kind in ("average", "l2"):
        counts = (_valid_taps(out_h, stride_h, pad_top, filter_h, h)[:, None]
                  * _valid_taps(out_w, stride_w, pad_left, filter_w, w)[None, :])[..., None]
        if kind == "average" and n * c > 0 and np.any(counts == 0):
            # reference AveragePool returns false and Eval fails; only reachable for empty images
            ctx.fail("a pooling window lies entirely outside the input")

    activation = str(opts.get("fused_activation_function", "NONE"))
    dtype: np.dtype
    if x.type == T.FLOAT32:
        act_min, act_max = calculate_activation_range(activation, np.float32)
        dtype = np.dtype(np.float32)
    else:
        dtype = np.dtype(_INT_DTYPES[x.type])
        s_in, z_in = quant_params(x)
        s_out, z_out = quant_params(y)
        if ctx.emulate == "tflm" and (abs(s_in - s_out) > 1e-6 or z_in != z_out):
            # pooling_common.cc PoolingPrepare: TF_LITE_ENSURE (LiteRT only DCHECKs it)
            ctx.fail(f"input and output quantization must match (scale {s_in} vs {s_out}, "
                     f"zero point {z_in} vs {z_out})")
        act_min, act_max = calculate_activation_range_quantized(activation, s_out, z_out, dtype)
    ctx.set_output_shape(0, (n, out_h, out_w, c))
    return PoolData(stride_h, stride_w, filter_h, filter_w, pad_top, pad_left, pad_bottom,
                    pad_right, out_h, out_w, counts, act_min, act_max, dtype)


def _taps(data: PoolData, x: np.ndarray, pad_value: float | int) -> list[np.ndarray]:
    """The input seen by each filter tap ``(fy, fx)``, in the C loop order, as strided views of
    the padded image: tap ``k`` of output ``(oy, ox)`` is pixel ``(oy·s + fy − pad, ox·s + fx −
    pad)``."""
    xp = np.pad(x, ((0, 0), (data.pad_top, data.pad_bottom), (data.pad_left, data.pad_right),
                    (0, 0)), constant_values=pad_value)
    rows = (data.out_h - 1) * data.stride_h + 1
    cols = (data.out_w - 1) * data.stride_w + 1
    return [xp[:, fy:fy + rows:data.stride_h, fx:fx + cols:data.stride_w, :]
            for fy in range(data.filter_h) for fx in range(data.filter_w)]


# -- AVERAGE_POOL_2D ----------------------------------------------------------------------------
def prepare_average_pool_2d(ctx: OpContext) -> PoolData:
    return _prepare_pool(ctx, "average")


@register(Op.AVERAGE_POOL_2D, T.FLOAT32, prepare=prepare_average_pool_2d)
def average_pool_2d_float32(data: PoolData, x: npt.NDArray[np.float32]
                            ) -> npt.NDArray[np.float32]:
    """reference_ops::AveragePool (float): a float32 running sum in tap order, divided by the
    count of in-image taps."""
    total = np.zeros((x.shape[0], data.out_h, data.out_w, x.shape[3]), np.float32)
    for tap in _taps(data, x, 0.0):  # adding the +0.0 of a padding tap leaves the sum unchanged
        total += tap
    assert data.counts is not None  # prepare counts the taps for AVERAGE and L2 pooling
    average = total / data.counts.astype(np.float32)
    clipped: np.ndarray = np.clip(average, data.act_min, data.act_max)
    return clipped.astype(np.float32)


# TFLM's pooling has no uint8 kernel ("Type UINT8 (3) not supported." in PoolingPrepare).
@register(Op.AVERAGE_POOL_2D, T.UINT8, prepare=prepare_average_pool_2d, emulations=("tflite",))
@register(Op.AVERAGE_POOL_2D, T.INT8, T.INT16, prepare=prepare_average_pool_2d)
def average_pool_2d_integer(data: PoolData, x: np.ndarray) -> np.ndarray:
    """reference_integer_ops::AveragePool (int8/int16) and reference_ops::AveragePool (uint8).

    ``acc`` is the raw sum of the in-image values; the average rounds half away from zero with
    C's truncating division: ``acc > 0 ? (acc + n/2) / n : (acc − n/2) / n``.  (The uint8 kernel
    writes only the first branch; for ``acc >= 0`` both agree.)
    """
    acc = sum(tap.astype(np.int64) for tap in _taps(data, x, 0))
    n = data.counts
    assert n is not None  # prepare counts the taps for AVERAGE and L2 pooling
    half = n // 2
    avg = c_div(np.where(acc > 0, acc + half, acc - half), n)
    clipped: np.ndarray = np.clip(avg, data.act_min, data.act_max)
    return clipped.astype(data.dtype)



# -- MAX_POOL_2D --------------------------------------------------------------------------------
def prepare_max_pool_2d(ctx: OpContext) -> PoolData:
    return _prepare_pool(ctx, "max")


def _lowest(dtype: np.dtype) -> float | int:
    return float(np.finfo(dtype).min) if dtype.kind == "f" else int(np.iinfo(dtype).min)


@register(Op.MAX_POOL_2D, T.UINT8, prepare=prepare_max_pool_2d, emulations=("tflite",))
@register(Op.MAX_POOL_2D, T.FLOAT32, T.INT8, T.INT16, prepare=prepare_max_pool_2d)
def max_pool_2d(data: PoolData, x: np.ndarray) -> np.ndarray:
    """reference_ops::MaxPool / reference_integer_ops::MaxPool: the maximum starts at the type's
    lowest value, so padding with that value leaves it unchanged; then the activation clamp."""
    lowest = _lowest(data.dtype)
    taps = _taps(data, x, lowest)
    best = taps[0]
    for tap in taps[1:]:
        best = np.maximum(best, tap)
    clipped: np.ndarray = np.clip(best, data.act_min, data.act_max)
    return clipped.astype(data.dtype)



# -- L2_POOL_2D ---------------------------------------------------------------------------------
def prepare_l2_pool_2d(ctx: OpContext) -> PoolData:
    x = ctx.require_input(0)
    if x.type != T.FLOAT32:
        # pooling.cc GenericPrepare<kL2> / TFLM l2_pool_2d.cc: no quantized L2 pooling exists
        ctx.unsupported(f"L2_POOL_2D takes only FLOAT32 input, got {ctx.dtype_name(x)}")
    return _prepare_pool(ctx, "l2")


@register(Op.L2_POOL_2D, T.FLOAT32, prepare=prepare_l2_pool_2d)
def l2_pool_2d_float32(data: PoolData, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """reference_ops::L2Pool: ``sqrt(Σ v² / n)`` over the in-image taps, float32 throughout."""
    sum_squares = np.zeros((x.shape[0], data.out_h, data.out_w, x.shape[3]), np.float32)
    for tap in _taps(data, x, 0.0):
        sum_squares += tap * tap
    assert data.counts is not None  # prepare counts the taps for AVERAGE and L2 pooling
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.sqrt(sum_squares / data.counts.astype(np.float32))
    clipped: np.ndarray = np.clip(result, data.act_min, data.act_max)
    return clipped.astype(np.float32)
