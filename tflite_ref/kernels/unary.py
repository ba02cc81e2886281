"""Kernels: unary math: EXP, LOG, SQRT, RSQRT, SQUARE, ABS, NEG, FLOOR, CEIL, ROUND, SIN, COS,
SIGN.

Float kernels apply the float32 function elementwise (``std::exp(float)`` etc. in LiteRT
``tflite/kernels/elementwise.cc``, ``exp.cc``, ``neg.cc``, ``floor.cc``, ``ceil.cc``,
``round.cc``, ``sign.cc``; TFLM ``micro/kernels/elementwise.cc``, ``exp.cc`` and friends).
``std::exp`` / ``std::log`` / ``std::sin`` / ``std::cos`` of a float are the C library's
``expf`` / ``logf`` / ``sinf`` / ``cosf``, and both runtimes call the very library this process
has loaded.  Those are not correctly rounded (glibc 2.36: ``expf`` / ``logf`` differ from the
correctly rounded float in ~0.07 % of random arguments, ``sinf`` / ``cosf`` in ~1.3 %), and
NumPy's float32 ufuncs are other approximations again (off in 5-40 %), so the float kernels call
the C function itself, element by element (:func:`libm_float`): bit-identical to LiteRT and TFLM
(measured on 2·10^5 arguments each), at ~0.3 us per element.

Quantized kernels come in three kinds, all built in prepare:

* lookup tables filled by ``LUTPopulate`` (EXP, LOG and int16 RSQRT: dequantize, apply the float
  function, requantize -- :mod:`tflite_ref.quant.lut`);
* integer formulas (ABS, RSQRT int8, SQRT): for 8-bit inputs they are evaluated once for all 256
  input codes in prepare and looked up in eval; int16 inputs run the same formula vectorised;
* raw integer ops (NEG, unquantized ABS) that ignore the quantization, as TFLite does.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tflite_ref import budgets
from tflite_ref.errors import KernelRuntimeError
from tflite_ref.kernels.common import (
    generic_prepare,
    is_quantized,
    per_tensor_quant_params,
    require_tflm,
    type_range,
)
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.quant.fixedpoint import (
    get_inv_sqrt_quantized_multiplier_exp,
    multiply_by_quantized_multiplier,
)
from tflite_ref.quant.lut import (
    _libm,
    c_expf,
    c_logf,
    lut_lookup_int16,
    lut_populate_int8,
    lut_populate_int16,
)
from tflite_ref.quant.multipliers import quantize_multiplier

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
_LIBM_CHUNK = 1 << 16  # elements between two checks of the invoke's deadline


# ================================================================================================
# The C library's float functions
# ================================================================================================
@functools.cache
def _libm_float_ufunc(name: str, arity: int) -> np.ufunc | None:
    """``float name(float[, float])`` of this process's C library (the one quant.lut's tables
    use, and the one LiteRT's and TFLM's kernels call) as an object ufunc, or None without it.
    A prototype of its own, so the ``restype`` quant.lut sets on the library's attributes is not
    shared."""
    lib = _libm()
    if lib is None or not hasattr(lib, name):
        return None
    prototype = ctypes.CFUNCTYPE(ctypes.c_float, *[ctypes.c_float] * arity)
    return np.frompyfunc(prototype((name, lib)), arity, 1)


def libm_float(name: str, fallback: Callable[..., np.ndarray], *args: npt.ArrayLike) -> F32:
    """The C function ``name`` (``"expf"``, ``"powf"``, ...: what ``std::exp`` etc. of a float
    call) elementwise on float32 ``args`` (broadcast), bit for bit; ``fallback`` -- the NumPy
    float64 function, rounded once to float32 -- only where no C math library can be loaded."""
    values = [np.asarray(a, dtype=np.float32) for a in args]
    fn = _libm_float_ufunc(name, len(values))
    with np.errstate(all="ignore"):  # the C function raises FE_OVERFLOW etc. as the C++ does
        if fn is None:
            return np.asarray(fallback(*[v.astype(np.float64) for v in values]),
                              dtype=np.float32)
        # One Python call per element (~0.3 µs): a huge tensor takes seconds, so the invoke's
        # wall-time budget is checked between chunks (budgets.check_deadline).
        flat = [v.ravel() for v in np.broadcast_arrays(*values)]
        shape = np.broadcast_shapes(*(v.shape for v in values))
        out = np.empty(flat[0].size if flat else 0, np.float32)
        for start in range(0, out.size, _LIBM_CHUNK):
            stop = start + _LIBM_CHUNK
            out[start:stop] = fn(*[v[start:stop] for v in flat])
            budgets.check_deadline()
        return out.reshape(shape)


# ================================================================================================
# Shared prepare
# ================================================================================================
@dataclass(frozen=True, slots=True)
class UnaryData:
    """State of a unary kernel.

    ``table``: the output for every 8-bit input code (index ``q - qmin``) or a 513-entry int16
    LUT; ``invalid``: input codes the kernel rejects at run time (SQRT of a negative, RSQRT
    below the zero point); the remaining fields feed int16 formulas.
    """

    output_shape: tuple[int, ...]
    locator: str
    kind: str = "plain"
    table: np.ndarray | None = None
    invalid: np.ndarray | None = None
    invalid_message: str = ""
    input_scale: float = 0.0
    input_zero_point: int = 0
    output_scale: float = 0.0
    output_zero_point: int = 0
    multiplier: int = 0
    shift: int = 0
    needs_rescale: bool = False


def _prepare_same_type(ctx: OpContext) -> tuple[int, ...]:
    generic_prepare(ctx)
    return tuple(ctx.input_shape(0))


def _quantized_io(ctx: OpContext) -> tuple[float, int, float, int]:
    """Scales and zero points, with elementwise.cc GenericPrepare's rule that int16 is
    symmetric (zero points 0)."""
    s_in, z_in = per_tensor_quant_params(ctx, ctx.input(0), "input 0")
    s_out, z_out = per_tensor_quant_params(ctx, ctx.output(0), "output 0")
    if ctx.output(0).type == T.INT16 and (z_in, z_out) != (0, 0):
        ctx.fail(f"int16 {ctx.op.name} needs zero points 0, got {z_in} and {z_out}")
    return s_in, z_in, s_out, z_out


def _codes(dtype: np.dtype) -> I64:
    lo, hi = type_range(dtype)
    return np.arange(lo, hi + 1, dtype=np.int64)


def _lookup8(data: UnaryData, x: np.ndarray) -> np.ndarray:
    assert data.table is not None
    idx = x.astype(np.int64) - int(np.iinfo(x.dtype).min)
    if data.invalid is not None and np.any(data.invalid[idx]):
        raise KernelRuntimeError(f"{data.locator}: {data.invalid_message}")
    return data.table[idx]


def _plain(ctx: OpContext, *dtypes_tflm: int) -> UnaryData:
    shape = _prepare_same_type(ctx)
    if ctx.emulate == "tflm" and ctx.output(0).type not in dtypes_tflm:
        ctx.unsupported(f"TFLite Micro's {ctx.op.name} has no {ctx.output(0).type_name} kernel")
    return UnaryData(shape, ctx.op.locator)


# ================================================================================================
# EXP
# ================================================================================================
def prepare_exp(ctx: OpContext) -> UnaryData:
    shape = _prepare_same_type(ctx)
    t = ctx.output(0).type
    if t == T.FLOAT32:
        return UnaryData(shape, ctx.op.locator)
    require_tflm(ctx, False, f"{ctx.output(0).type_name} tensors")
    # exp.cc: LUTPopulate with std::exp(float).
    return _lut_data(ctx, shape, _quantized_io(ctx), c_expf)


def _lut_data(ctx: OpContext, shape: tuple[int, ...], io: tuple[float, int, float, int],
              transform: Callable[[F32], F32]) -> UnaryData:
    """``LUTPopulate`` of ``transform`` for the output type: the 256-entry int8 table or the
    513-entry int16 one."""
    s_in, z_in, s_out, z_out = io
    if ctx.output(0).type == T.INT8:
        table = lut_populate_int8(s_in, z_in, s_out, z_out, transform)
        return UnaryData(shape, ctx.op.locator, "lut8", table)
    table = lut_populate_int16(s_in, z_in, s_out, z_out, transform)
    return UnaryData(shape, ctx.op.locator, "lut16", table)


def _lut_eval(data: UnaryData, x: np.ndarray) -> np.ndarray:
    if data.kind == "lut16":
        assert data.table is not None
        return lut_lookup_int16(x, data.table)
    return _lookup8(data, x)


@register(Op.EXP, T.FLOAT32, prepare=prepare_exp)
def exp_float32(data: UnaryData, x: F32) -> F32:
    """reference_ops::Exp (reference/exp.h, both runtimes): ``std::exp(float)`` = ``expf``."""
    return libm_float("expf", np.exp, x)


@register(Op.EXP, T.INT8, T.INT16, prepare=prepare_exp)
def exp_quantized(data: UnaryData, x: np.ndarray) -> np.ndarray:
    """reference_integer_ops::LookupTable on the ``LUTPopulate`` table of exp.cc."""
    return _lut_eval(data, x)


# ================================================================================================
# LOG
# ================================================================================================
def prepare_log(ctx: OpContext) -> UnaryData:
    shape = _prepare_same_type(ctx)
    t = ctx.output(0).type
    if t == T.FLOAT32:
        return UnaryData(shape, ctx.op.locator)
    require_tflm(ctx, False, f"{ctx.output(0).type_name} tensors")
    io = _quantized_io(ctx)
    _, _, s_out, z_out = io
    # elementwise.cc LogLUTPrepare: log(x) for x > 0; the lowest representable output for x <= 0.
    qmin = -128 if t == T.INT8 else -32768
    output_min = np.float32(qmin - z_out) * np.float32(s_out)

    def log_or_min(v: F32) -> F32:
        safe = np.where(v > 0, v, np.float32(1.0)).astype(np.float32)
        return np.where(v <= 0, output_min, c_logf(safe)).astype(np.float32)

    return _lut_data(ctx, shape, io, log_or_min)


@register(Op.LOG, T.FLOAT32, prepare=prepare_log)
def log_float32(data: UnaryData, x: F32) -> F32:
    """elementwise.cc LogEval (both runtimes): ``std::log(float)`` = ``logf``."""
    return libm_float("logf", np.log, x)


@register(Op.LOG, T.INT8, T.INT16, prepare=prepare_log)
def log_quantized(data: UnaryData, x: np.ndarray) -> np.ndarray:
    return _lut_eval(data, x)


# ================================================================================================
# SQRT
# ================================================================================================
def _sqrt_formula(q: I64, s_in: float, z_in: int, s_out: float, z_out: int,
                  dtype: np.dtype) -> tuple[I64, npt.NDArray[np.bool_]]:
    """elementwise.cc SqrtEvalQuantized: dequantize (float32), ``sqrtf``, then
    ``(int)(y / s_out) + z_out`` -- a *truncating* requantization -- and clamp."""
    deq = np.float32(s_in) * (q - z_in).astype(np.float32)
    negative = deq < 0
    y = np.sqrt(np.where(negative, np.float32(0), deq)).astype(np.float32)
    quotient = (y / np.float32(s_out)).astype(np.float32)
    out = np.trunc(quotient).astype(np.int64) + z_out
    lo, hi = type_range(dtype)
    return np.clip(out, lo, hi), negative


def prepare_sqrt(ctx: OpContext) -> UnaryData:
    shape = _prepare_same_type(ctx)
    out = ctx.output(0)
    if out.type == T.FLOAT32:
        return UnaryData(shape, ctx.op.locator)
    require_tflm(ctx, False, f"{out.type_name} tensors")
    s_in, z_in, s_out, z_out = _quantized_io(ctx)
    assert out.dtype is not None
    if out.type == T.INT8:
        table, bad = _sqrt_formula(_codes(out.dtype), s_in, z_in, s_out, z_out, out.dtype)
        return UnaryData(shape, ctx.op.locator, "lut8", table.astype(np.int8), bad,
                         "Sqrt is only defined for non-negative values")
    return UnaryData(shape, ctx.op.locator, "formula", input_scale=s_in, input_zero_point=z_in,
                     output_scale=s_out, output_zero_point=z_out)


@register(Op.SQRT, T.FLOAT32, prepare=prepare_sqrt)
def sqrt_float32(data: UnaryData, x: F32) -> F32:
    with np.errstate(invalid="ignore"):
        return np.sqrt(x).astype(np.float32)


@register(Op.SQRT, T.INT8, T.INT16, prepare=prepare_sqrt)
def sqrt_quantized(data: UnaryData, x: np.ndarray) -> np.ndarray:
    if data.kind == "lut8":
        return _lookup8(data, x)
    out, negative = _sqrt_formula(x.astype(np.int64), data.input_scale, data.input_zero_point,
                                  data.output_scale, data.output_zero_point, x.dtype)
    if np.any(negative):
        raise KernelRuntimeError(f"{data.locator}: Sqrt is only defined for non-negative values")
    return out.astype(x.dtype)


# ================================================================================================
# RSQRT
# ================================================================================================
_REVERSE_SHIFT = -1  # common.h kReverseShift: turns a right shift into a left-shift exponent
_RSQRT_SHIFT = 20  # elementwise.cc kShift: "shift to keep value integer"


@functools.lru_cache(maxsize=1)
def _inv_sqrt_fixed_point() -> I64:
    """``MBQM(1, inv_sqrt(v), shift + kShift)`` for every int8 difference v = 1..255 (index v).

    This part of RsqrtEvalQuantizedInt8 does not depend on the scales, so it is computed once.
    """
    value = np.arange(256, dtype=np.int64)
    inv, inv_shift = get_inv_sqrt_quantized_multiplier_exp(value, _REVERSE_SHIFT)
    shift = np.asarray(inv_shift) + _RSQRT_SHIFT
    out = np.asarray(multiply_by_quantized_multiplier(1, inv, shift))
    out[0] = 0  # unused: a zero difference gives 127
    return out


def _rsqrt_int8_table(z_in: int, z_out: int, m: int, shift: int) -> tuple[I64, np.ndarray]:
    """elementwise.cc RsqrtEvalQuantizedInt8 (same in TFLM) for all 256 codes: 1/sqrt of the
    difference to the zero point in fixed point, rescaled by ``1/(sqrt(s_in)·s_out)`` (with the
    2^20 taken out again); a zero difference gives 127, a negative one is rejected."""
    value = np.arange(-128, 128, dtype=np.int64) - z_in
    invalid = value < 0
    data = _inv_sqrt_fixed_point()[np.clip(value, 0, 255)]
    res = np.asarray(multiply_by_quantized_multiplier(data, m, shift - _RSQRT_SHIFT)) + z_out
    out = np.where(value == 0, 127, np.clip(res, -128, 127))
    return np.where(invalid, 0, out), invalid


def prepare_rsqrt(ctx: OpContext) -> UnaryData:
    shape = _prepare_same_type(ctx)
    out = ctx.output(0)
    loc = ctx.op.locator
    if out.type == T.FLOAT32:
        return UnaryData(shape, loc)
    s_in, z_in, s_out, z_out = _quantized_io(ctx)
    message = "Rsqrt is only defined for positive values"
    if out.type == T.INT8:
        # 1 / (sqrtf(s_in) · s_out): LiteRT forms the product in float32 and divides in double.
        # TFLM's source reads the same, but the tflite-micro wheel matches the product in double
        # (as for its DIV, SUB and ABS multipliers): one table entry in a few thousand differs.
        rsqrt_multiplier_real = (1.0 / float(np.sqrt(np.float32(s_in)) * np.float32(s_out))
                                 if ctx.emulate == "tflite" else 1.0 / (np.sqrt(s_in) * s_out))
        m, shift = quantize_multiplier(float(rsqrt_multiplier_real))
        table, invalid = _rsqrt_int8_table(z_in, z_out, m, shift)
        return UnaryData(shape, loc, "lut8", table.astype(np.int8), invalid, message)
    require_tflm(ctx, False, "INT16 tensors")

    def rsqrt_or_max(v: F32) -> F32:
        # value <= 0 maps to the largest output (int16 max · s_out), else 1.0f / sqrtf(v).
        safe = np.where(v > 0, v, np.float32(1.0)).astype(np.float32)
        r = (np.float32(1.0) / np.sqrt(safe)).astype(np.float32)
        return np.where(v <= 0, np.float32(32767) * np.float32(s_out), r).astype(np.float32)

    table16 = lut_populate_int16(s_in, z_in, s_out, z_out, rsqrt_or_max)
    # RsqrtEvalQuantizedInt16 rejects inputs below the zero point (0 for int16).
    return UnaryData(shape, loc, "lut16", table16, invalid_message=message,
                     input_zero_point=z_in)


@register(Op.RSQRT, T.FLOAT32, prepare=prepare_rsqrt)
def rsqrt_float32(data: UnaryData, x: F32) -> F32:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.float32(1.0) / np.sqrt(x)).astype(np.float32)


@register(Op.RSQRT, T.INT8, T.INT16, prepare=prepare_rsqrt)
def rsqrt_quantized(data: UnaryData, x: np.ndarray) -> np.ndarray:
    if data.kind == "lut16":
        if np.any(x.astype(np.int64) < data.input_zero_point):
            raise KernelRuntimeError(f"{data.locator}: {data.invalid_message}")
        assert data.table is not None
        return lut_lookup_int16(x, data.table)
    return _lookup8(data, x)


# ================================================================================================
# SQUARE, SIN, COS, FLOOR, CEIL, ROUND (float32 only)
# ================================================================================================
def prepare_float_only(ctx: OpContext) -> UnaryData:
    return _plain(ctx, T.FLOAT32)


@register(Op.SQUARE, T.FLOAT32, prepare=prepare_float_only)
def square_float32(data: UnaryData, x: F32) -> F32:
    with np.errstate(over="ignore"):
        return (x * x).astype(np.float32)


@register(Op.SIN, T.FLOAT32, prepare=prepare_float_only)
def sin_float32(data: UnaryData, x: F32) -> F32:
    """elementwise.cc SinEval (both runtimes): ``std::sin(float)`` = ``sinf``."""
    return libm_float("sinf", np.sin, x)


@register(Op.COS, T.FLOAT32, prepare=prepare_float_only)
def cos_float32(data: UnaryData, x: F32) -> F32:
    """elementwise.cc CosEval (both runtimes): ``std::cos(float)`` = ``cosf``."""
    return libm_float("cosf", np.cos, x)


@register(Op.FLOOR, T.FLOAT32, prepare=prepare_float_only)
def floor_float32(data: UnaryData, x: F32) -> F32:
    return np.floor(x).astype(np.float32)


@register(Op.CEIL, T.FLOAT32, prepare=prepare_float_only)
def ceil_float32(data: UnaryData, x: F32) -> F32:
    return np.ceil(x).astype(np.float32)


@register(Op.ROUND, T.FLOAT32, prepare=prepare_float_only)
def round_float32(data: UnaryData, x: F32) -> F32:
    """reference_ops::RoundToNearest: halves go to the even neighbour (banker's rounding, as
    tf.round) -- unlike ``std::round`` elsewhere in TFLite. ``np.rint`` is exactly that."""
    return np.rint(x).astype(np.float32)


# ================================================================================================
# ABS
# ================================================================================================
def _abs_formula(q: I64, z_in: int, z_out: int, needs_rescale: bool, m: int, shift: int,
                 dtype: np.dtype) -> I64:
    """elementwise.cc AbsEvalQuantized: ``|q - z_in|``, rescaled by ``s_in/s_out`` unless the
    scales are equal, plus ``z_out``, clamped to the type."""
    value = np.abs(q - z_in)
    if needs_rescale:
        value = multiply_by_quantized_multiplier(value, m, shift)  # type: ignore[assignment]
    lo, hi = type_range(dtype)
    return np.asarray(np.clip(value + z_out, lo, hi), dtype=np.int64)


def prepare_abs(ctx: OpContext) -> UnaryData:
    shape = _prepare_same_type(ctx)
    out = ctx.output(0)
    loc = ctx.op.locator
    if ctx.emulate == "tflm" and out.type not in (T.FLOAT32, T.INT8, T.INT16):
        ctx.unsupported(f"TFLite Micro's ABS has no {out.type_name} kernel")
    quantized = out.type == T.INT8 or out.type == T.INT16 and is_quantized(ctx.input(0))
    if not quantized:
        return UnaryData(shape, loc)
    s_in, z_in, s_out, z_out = _quantized_io(ctx)
    needs_rescale = s_in != s_out
    # s_in / s_out: a float32 quotient in LiteRT (elementwise.cc SetAbsOutputMultiplier).  TFLM's
    # source divides in float32 too, but the tflite-micro wheel matches the double quotient
    # (it differs from the float32 one in 22 of 65536 int16 outputs for s_in = 2^-7,
    # s_out = 0.0081497; test_unary.py::test_abs_multiplier_per_runtime).
    abs_multiplier_quotient = (float(np.float32(s_in) / np.float32(s_out))
                               if ctx.emulate == "tflite" else s_in / s_out)
    m, shift = quantize_multiplier(abs_multiplier_quotient) if needs_rescale else (0, 0)
    assert out.dtype is not None
    if out.type == T.INT8:
        table = _abs_formula(_codes(out.dtype), z_in, z_out, needs_rescale, m, shift, out.dtype)
        return UnaryData(shape, loc, "lut8", table.astype(np.int8))
    return UnaryData(shape, loc, "formula", input_zero_point=z_in, output_zero_point=z_out,
                     multiplier=m, shift=shift, needs_rescale=needs_rescale)


@register(Op.ABS, T.FLOAT32, prepare=prepare_abs)
def abs_float32(data: UnaryData, x: F32) -> F32:
    return np.abs(x).astype(np.float32)


@register(Op.ABS, T.INT32, prepare=prepare_abs)
def abs_int32(data: UnaryData, x: np.ndarray) -> np.ndarray:
    """``std::abs(int32)``: INT32_MIN stays INT32_MIN (two's complement), as NumPy's does."""
    return np.asarray(np.abs(x), dtype=np.int32)


@register(Op.ABS, T.INT8, T.INT16, prepare=prepare_abs)
def abs_quantized(data: UnaryData, x: np.ndarray) -> np.ndarray:
    if data.kind == "lut8":
        return _lookup8(data, x)
    if data.kind == "plain":  # unquantized int16: (int16)std::abs((int32)x), -32768 wraps
        return np.abs(x.astype(np.int64)).astype(np.int16)
    return _abs_formula(x.astype(np.int64), data.input_zero_point, data.output_zero_point,
                        data.needs_rescale, data.multiplier, data.shift, x.dtype).astype(x.dtype)


# ================================================================================================
# NEG and SIGN
# ================================================================================================
def prepare_neg(ctx: OpContext) -> UnaryData:
    return _plain(ctx, T.FLOAT32)


@register(Op.NEG, T.FLOAT32, T.INT8, T.INT16, T.INT32, T.INT64, prepare=prepare_neg)
def neg(data: UnaryData, x: np.ndarray) -> np.ndarray:
    """reference_ops::Negate: ``-x`` in T, ignoring any quantization (the minimum wraps)."""
    with np.errstate(over="ignore"):
        return np.asarray(np.negative(x), dtype=x.dtype)


def prepare_sign(ctx: OpContext) -> UnaryData:
    return _plain(ctx)


@register(Op.SIGN, T.FLOAT32, T.FLOAT64, T.INT32, prepare=prepare_sign)
def sign(data: UnaryData, x: np.ndarray) -> np.ndarray:
    """sign.cc: 1, -1 or 0 (also for -0.0); NaN stays NaN."""
    one = np.ones((), dtype=x.dtype)
    r = np.where(x > 0, one, np.where(x < 0, -one, np.zeros((), dtype=x.dtype)))
    if x.dtype.kind == "f":
        r = np.where(np.isnan(x), x, r)
    return r.astype(x.dtype)
