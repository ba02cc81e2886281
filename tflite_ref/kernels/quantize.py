"""Kernels: QUANTIZE, DEQUANTIZE, CAST.

Upstream (read, not copied): LiteRT ``tflite/kernels/quantize.cc``, ``dequantize.cc`` /
``dequantize.h``, ``cast.cc``; ``kernels/internal/reference/quantize.h`` (``AffineQuantize``,
``PerChannelQuantize``), ``reference/requantize.h``, ``reference/dequantize.h``; TFLM
``micro/kernels/quantize_common.cc``, ``dequantize_common.cc``, ``cast.cc``.

Float-to-integer conversions follow what the x86-64 builds of the runtimes do, checked against
them: ``static_cast<int32_t>`` of an out-of-range or NaN float gives INT32_MIN (``cvttss2si``),
which QUANTIZE then offsets by the zero point and clamps; CAST saturates (LiteRT: NaN -> the
type's maximum, TFLM: NaN -> 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflite_ref.kernels.common import (
    per_tensor_quant_params,
    require_tflm,
    type_range,
)
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.model.model import Tensor
from tflite_ref.quant.fixedpoint import (
    multiply_by_quantized_multiplier,
    round_away,
    saturating_cast,
    static_cast_int32,
    wrap_int32,
)
from tflite_ref.quant.multipliers import quantize_multiplier, requantize_effective_scale


def _one_to_one(ctx: OpContext) -> tuple[Tensor, Tensor]:
    if ctx.num_inputs != 1 or ctx.num_outputs != 1:
        ctx.fail(f"{ctx.op.name} takes 1 input and 1 output")
    x, y = ctx.require_input(0), ctx.output(0)
    ctx.set_output_shape(0, ctx.input_shape(0))
    return x, y


def _per_axis(ctx: OpContext, t: Tensor, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel scales/zero points shaped to broadcast along ``quantized_dimension``.

    A single zero point serves every channel (quantize.cc / dequantize.h copy ``zero_point[0]``).
    """
    q = t.quantization
    assert q is not None
    dim = q.quantized_dimension
    shape = ctx.input_shape(0)
    if not 0 <= dim < rank or shape[dim] != q.scale.size:
        ctx.fail(f"tensor {t.index} has {q.scale.size} scales along dimension {dim}, but its "
                 f"shape is {list(shape)}")
    zps = q.zero_point if q.zero_point.size == q.scale.size else np.full(
        q.scale.size, q.zero_point[0] if q.zero_point.size else 0)
    bshape = [1] * rank
    bshape[dim] = q.scale.size
    return (q.scale.astype(np.float32).reshape(bshape),
            zps.astype(np.int64).reshape(bshape))


# -- QUANTIZE -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuantizeData:
    """Either a float quantization (``scale``/``zero_point``, per-tensor or broadcastable
    per-channel arrays) or an integer requantization (``multiplier``/``shift``)."""

    out_dtype: np.dtype
    qmin: int
    qmax: int
    scale: np.ndarray | None  # float32; None for requantize
    zero_point: np.ndarray | None  # int64
    multiplier: int
    shift: int
    input_zero_point: int


# Requantize pairs each runtime implements (input type -> output types).
_TFLITE_REQUANT: dict[int, tuple[int, ...]] = {
    T.INT16: (T.INT8, T.INT16, T.INT32), T.INT32: (T.INT8, T.INT16),
    T.INT8: (T.UINT8, T.INT8, T.INT16), T.UINT8: (T.UINT8, T.INT8, T.INT16)}
_TFLM_REQUANT: dict[int, tuple[int, ...]] = {
    T.INT16: (T.INT8, T.INT16, T.INT32), T.INT32: (T.INT8, T.INT16),
    T.INT8: (T.INT8, T.UINT8, T.INT16, T.INT32), T.UINT8: (T.INT8,)}


def prepare_quantize(ctx: OpContext) -> QuantizeData:
    x, y = _one_to_one(ctx)
    out_dtype = np.dtype(y.dtype)
    qy = y.quantization
    if qy is None or not qy.is_quantized:
        ctx.fail(f"output tensor {y.index} {y.name!r} has no quantization parameters")
    if x.type == T.FLOAT32:
        if y.type not in (T.INT8, T.UINT8, T.INT16):
            ctx.unsupported(f"QUANTIZE float32 -> {y.type_name} (int8, uint8, int16 only)")
        require_tflm(ctx, y.type != T.UINT8, "float32 -> uint8")
        if qy.per_axis:
            # quantize.cc: per-channel output -> reference_ops::PerChannelQuantize. TFLM's
            # PrepareQuantizeReference requires a single scale.
            require_tflm(ctx, False, "per-channel output quantization")
            scale, zp = _per_axis(ctx, y, len(ctx.input_shape(0)))
        else:
            s, z = per_tensor_quant_params(ctx, y, "output")
            scale, zp = np.array(s, np.float32), np.array(z, np.int64)
        return QuantizeData(out_dtype, *type_range(out_dtype), scale, zp, 0, 0, 0)

    allowed = (_TFLM_REQUANT if ctx.emulate == "tflm" else _TFLITE_REQUANT).get(x.type, ())
    if y.type not in allowed:
        runtime = "TFLite Micro" if ctx.emulate == "tflm" else "TFLite"
        ctx.unsupported(f"{runtime}'s QUANTIZE has no {x.type_name} -> {y.type_name} "
                        "requantization")
    s_in, z_in = per_tensor_quant_params(ctx, x, "input")
    s_out, z_out = per_tensor_quant_params(ctx, y, "output")
    if x.type == T.INT16 and y.type == T.INT16 and ctx.emulate == "tflite" and (z_in or z_out):
        ctx.fail(f"int16 -> int16 QUANTIZE needs zero points 0 (input {z_in}, output {z_out})")
    m, shift = quantize_multiplier(requantize_effective_scale(s_in, s_out))
    if shift > 31:
        ctx.fail(f"requantization scale {s_in}/{s_out} is too large (shift {shift} > 31)")
    return QuantizeData(out_dtype, *type_range(out_dtype), None, np.array(z_out, np.int64), m,
                        shift, z_in)


@register(Op.QUANTIZE, T.INT8, T.UINT8, T.INT16, T.INT32, prepare=prepare_quantize)
def quantize(data: QuantizeData, x: np.ndarray) -> np.ndarray:
    """reference_ops::AffineQuantize / PerChannelQuantize (float input) or Requantize.

    Float: ``q = clamp((int32) round_away(x / scale) + z)`` with a float32 division and ties
    away from zero. Integer: ``q = clamp(MBQM(x - z_in, m, shift) + z_out)``; the int8 <-> uint8
    XOR-0x80 shortcut of requantize.h computes the same values.
    """
    assert data.zero_point is not None
    if data.scale is not None:
        r = round_away(x.astype(np.float32) / data.scale)  # float32 division, roundf
        q = np.asarray(wrap_int32(static_cast_int32(r) + data.zero_point))
    else:
        centred = wrap_int32(x.astype(np.int64) - data.input_zero_point)
        scaled = np.asarray(multiply_by_quantized_multiplier(centred, data.multiplier, data.shift))
        q = np.asarray(wrap_int32(scaled + data.zero_point))
    clipped: np.ndarray = np.clip(q, data.qmin, data.qmax)
    return clipped.astype(data.out_dtype)


# -- DEQUANTIZE -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DequantizeData:
    scale: np.ndarray | None  # float64 (exact widening of the float32 scales); None for fp16
    zero_point: np.ndarray | None


def prepare_dequantize(ctx: OpContext) -> DequantizeData:
    x, y = _one_to_one(ctx)
    # dequantize.cc Prepare / TFLM DequantizePrepare input types.
    if x.type not in (T.INT8, T.UINT8, T.INT16, T.FLOAT16, T.INT4):
        ctx.unsupported(f"DEQUANTIZE does not take {x.type_name} inputs")
    require_tflm(ctx, x.type in (T.INT8, T.UINT8, T.INT16), f"{x.type_name} inputs")
    if x.type == T.FLOAT16:
        return DequantizeData(None, None)
    q = x.quantization
    if q is None or not q.is_quantized:
        ctx.fail(f"input tensor {x.index} {x.name!r} has no quantization parameters")
    if q.per_axis:
        require_tflm(ctx, False, "per-channel inputs")
        if x.type == T.INT16:
            ctx.unsupported("per-channel int16 DEQUANTIZE (dequantize.h takes uint8/int8/int4)")
        scale, zp = _per_axis(ctx, x, len(ctx.input_shape(0)))
    else:
        s, z = per_tensor_quant_params(ctx, x, "input")
        scale, zp = np.array(s, np.float32), np.array(z, np.int64)
    if x.type == T.INT16 and ctx.emulate == "tflite" and np.any(zp != 0):
        ctx.fail("int16 DEQUANTIZE needs zero point 0")
    return DequantizeData(scale.astype(np.float64), zp)


@register(Op.DEQUANTIZE, T.FLOAT32, prepare=prepare_dequantize)
def dequantize(data: DequantizeData, x: np.ndarray) -> np.ndarray:
    """reference_ops::Dequantize: ``(float)(double(scale) · (q - z))``.

    The product of a float32 scale and an integer below 2^17 is exact in double, so this is one
    rounding to float32 (the per-channel variant's float32 product rounds identically).
    Float16 input widens exactly.
    """
    if data.scale is None:
        return x.astype(np.float32)
    assert data.zero_point is not None
    centred = (x.astype(np.int64) - data.zero_point).astype(np.float64)
    real: np.ndarray = centred * data.scale
    return real.astype(np.float32)


# -- CAST -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CastData:
    out_dtype: np.dtype
    # Float -> integer: both runtimes saturate (LiteRT cast.cc SafeCast; the TFLM build behaves
    # the same); a NaN becomes the type's maximum in LiteRT and 0 in TFLM.
    nan_to_max: bool


_CAST_TFLITE_IN = (T.INT64, T.INT32, T.UINT32, T.UINT16, T.INT16, T.UINT8, T.INT8, T.FLOAT16,
                   T.FLOAT32, T.FLOAT64, T.BOOL, T.COMPLEX64)
_CAST_TFLITE_OUT = (T.INT64, T.INT32, T.UINT32, T.INT16, T.UINT16, T.UINT8, T.INT8, T.FLOAT16,
                    T.FLOAT32, T.FLOAT64, T.BOOL, T.COMPLEX64)
# TFLM: the tflite_micro wheel we test against also writes BOOL (newer than micro/kernels/cast.cc
# at the commit read, whose output switch stops at FLOAT32).
_CAST_TFLM_IN = (T.INT8, T.INT16, T.INT32, T.UINT32, T.FLOAT32, T.BOOL)
_CAST_TFLM_OUT = (T.INT8, T.INT16, T.INT32, T.UINT32, T.FLOAT32, T.BOOL)


def prepare_cast(ctx: OpContext) -> CastData:
    x, y = _one_to_one(ctx)
    if x.type == T.INT4 and y.type == T.FLOAT32:
        pass  # cast.cc castInt4ToFloat; the reader has already unpacked the nibbles to int8
    elif x.type not in _CAST_TFLITE_IN:
        ctx.unsupported(f"CAST from {x.type_name} is not supported")
    if y.type not in _CAST_TFLITE_OUT:
        ctx.unsupported(f"CAST to {y.type_name} is not supported")
    require_tflm(ctx, x.type in _CAST_TFLM_IN, f"{x.type_name} inputs")
    require_tflm(ctx, y.type in _CAST_TFLM_OUT, f"{y.type_name} outputs")
    return CastData(np.dtype(y.dtype), nan_to_max=ctx.emulate == "tflite")


@register(Op.CAST, *_CAST_TFLITE_OUT, prepare=prepare_cast)
def cast(data: CastData, x: np.ndarray) -> np.ndarray:
    """cast.cc ``copyCast``: ``static_cast`` between numeric types, except float -> integer,
    which truncates toward zero and saturates; complex -> real takes the real part."""
    dt = data.out_dtype
    if x.dtype.kind == "c" and dt.kind != "c":
        x = x.real
    if x.dtype.kind == "f" and dt.kind in "iu":
        return saturating_cast(x, dt, nan=int(np.iinfo(dt).max) if data.nan_to_max else 0)
    if dt.kind == "b":
        nonzero: np.ndarray = x != 0
        return nonzero
    # Integer narrowing wraps (two's complement), int -> float rounds to nearest even,
    # float32 -> float16 rounds to nearest even (fp16_ieee_from_fp32_value): all as astype.
    with np.errstate(over="ignore", invalid="ignore"):
        return x.astype(dt)
