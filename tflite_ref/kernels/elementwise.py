"""Kernels: binary arithmetic: ADD, SUB, MUL, DIV, FLOOR_DIV, FLOOR_MOD, SQUARED_DIFFERENCE,
MAXIMUM, MINIMUM, ADD_N, POW.

All binary operators broadcast with NumPy's rules, which are TFLite's
(``CalculateShapeForBroadcast`` in ``tflite/kernels/kernel_util.cc``). Scaling a broadcast operand
before the broadcast gives the same values as TFLite's per-element loop
(``BroadcastBinaryOpSimple``), so the kernels let NumPy broadcast.

Quantized arithmetic follows the reference kernels of LiteRT (``tflite/kernels/<op>.cc`` with
``tflite/kernels/internal/reference/...``) and TFLite Micro (``tensorflow/lite/micro/kernels/``);
where the two runtimes compute a parameter differently, prepare computes it once, named after what
it is, from ``ctx.emulate``.  The integer primitives live in :mod:`tflite_ref.quant`.

The helpers at the top (broadcast shape, clamp, operand checks) are shared with
:mod:`tflite_ref.kernels.unary` and :mod:`tflite_ref.kernels.logical`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tflite_ref.errors import KernelRuntimeError
from tflite_ref.kernels.common import (
    is_quantized,
    per_tensor_quant_params,
    type_range,
)
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.kernels.unary import libm_float
from tflite_ref.quant.fixedpoint import (
    count_leading_sign_bits,
    get_reciprocal,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_greater_than_one,
    multiply_by_quantized_multiplier_smaller_than_one_exp,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul_int16,
    wrap_int32,
)
from tflite_ref.quant.multipliers import (
    add_effective_scales,
    calculate_activation_range,
    calculate_activation_range_quantized,
    checked_log2,
    mul_effective_scale,
    quantize_multiplier,
    quantize_multiplier_smaller_than_one_exp,
)

I64 = npt.NDArray[np.int64]
QUANTIZED_TYPES = (T.INT8, T.UINT8, T.INT16)


# ================================================================================================
# Shared helpers
# ================================================================================================
def broadcast_shape(ctx: OpContext, *shapes: Sequence[int]) -> tuple[int, ...]:
    """The broadcast of ``shapes`` (kernel_util.cc ``CalculateShapeForBroadcast``), or fail."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*(tuple(s) for s in shapes)))
    except ValueError:
        ctx.fail("input shapes " + ", ".join(str(list(s)) for s in shapes)
                 + " cannot be broadcast together")


def clamp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``ActivationFunctionWithMinMax``: ``min(max(x, lo), hi)``; NaN stays NaN, as in C++."""
    return np.asarray(np.minimum(np.maximum(x, lo), hi))


def require_same_input_types(ctx: OpContext, n: int | None = None) -> None:
    """``TF_LITE_ENSURE_TYPES_EQ(input1->type, input_k->type)`` for every input."""
    n = ctx.num_inputs if n is None else n
    first = ctx.require_input(0)
    for i in range(1, n):
        t = ctx.require_input(i)
        if t.type != first.type:
            ctx.fail(f"input {i} is {t.type_name} but input 0 is {first.type_name}; "
                     "the inputs must have one type")


def require_output_type(ctx: OpContext, j: int = 0, like_input: int = 0) -> None:
    if ctx.output(j).type != ctx.require_input(like_input).type:
        ctx.fail(f"output {j} is {ctx.output(j).type_name} but input {like_input} is "
                 f"{ctx.require_input(like_input).type_name}")


def require_num_io(ctx: OpContext, inputs: int, outputs: int = 1) -> None:
    if ctx.num_inputs != inputs or ctx.num_outputs != outputs:
        ctx.fail(f"takes {inputs} input(s) and {outputs} output(s), has {ctx.num_inputs} and "
                 f"{ctx.num_outputs}")


def _i64(x: np.ndarray) -> I64:
    return x.astype(np.int64)


def as_i64(v: object) -> I64:
    """The quant helpers return Python ints for scalars and int64 arrays otherwise."""
    return np.asarray(v, dtype=np.int64)


def _prepare_binary_shape(ctx: OpContext) -> tuple[int, ...]:
    require_num_io(ctx, 2)
    require_same_input_types(ctx)
    shape = broadcast_shape(ctx, ctx.input_shape(0), ctx.input_shape(1))
    ctx.set_output_shape(0, shape)
    return shape


# ================================================================================================
# ADD and SUB
# ================================================================================================
@dataclass(frozen=True, slots=True)
class AddSubRescale:
    """The general quantized path's parameters (≙ the ``OpData`` of add.cc / sub.cc).

    Both inputs are brought to a common scale ``2·max(s1, s2) / 2^left_shift`` (each multiplier
    is <= 1/2), added or subtracted as int32, and the sum rescaled to the output.
    """

    left_shift: int  # 20 for 8-bit, 15 for int16: (±255 << 20) still fits int32
    input1_offset: int  # -z1
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    output_offset: int  # +z_out
    output_multiplier: int
    output_shift: int


@dataclass(frozen=True, slots=True)
class AddSubPot:
    """TFLite's int16 power-of-two path (``pot_scale_int16``): shift one input right, no
    multipliers (reference_ops::Add(int16, pot_scale=true), Sub16)."""

    input1_right_shift: int
    input2_right_shift: int


@dataclass(frozen=True, slots=True)
class AddData:
    """State of ADD and SUB. ``kind`` picks the arithmetic: ``"float"``, ``"integer"``
    (unquantized int16/int32/int64: wrapping add), ``"general"`` (rescaling quantized path) or
    ``"pot"`` (TFLite's int16 power-of-two path)."""

    kind: str
    output_shape: tuple[int, ...]
    act_min: float | int
    act_max: float | int
    rescale: AddSubRescale | None = None
    pot: AddSubPot | None = None


SubData = AddData


def _prepare_add_sub(ctx: OpContext, is_sub: bool) -> AddData:
    shape = _prepare_binary_shape(ctx)
    require_output_type(ctx)
    out = ctx.output(0)
    dtype = out.dtype
    assert dtype is not None
    act = str(ctx.options.get("fused_activation_function", "NONE"))
    name = "SUB" if is_sub else "ADD"
    if dtype.kind == "f":
        lo, hi = calculate_activation_range(act, dtype)
        return AddData("float", shape, lo, hi)
    in1, in2 = ctx.input(0), ctx.input(1)
    quantized = is_quantized(out) if out.type == T.INT16 else out.type in (T.INT8, T.UINT8)
    if not quantized:
        lo, hi = calculate_activation_range(act, dtype)
        # TFLM's int32 ADD ignores the fused activation (micro/kernels/add.cc EvalAdd sets the
        # activation params to the full int32 range); its SUB applies it, as TFLite does.
        if ctx.emulate == "tflm" and not is_sub:
            lo, hi = type_range(dtype)
        if ctx.emulate == "tflm" and out.type not in (T.INT32,):
            ctx.unsupported(f"TFLite Micro's {name} has no unquantized {out.type_name} kernel")
        return AddData("integer", shape, lo, hi)

    s1, z1 = per_tensor_quant_params(ctx, in1, "input 0")
    s2, z2 = per_tensor_quant_params(ctx, in2, "input 1")
    so, zo = per_tensor_quant_params(ctx, out, "output 0")
    if ctx.emulate == "tflm" and out.type == T.UINT8:
        ctx.unsupported(f"TFLite Micro's {name} has no UINT8 kernel")
    qmin, qmax = type_range(dtype)
    for what, z in (("input 0", z1), ("input 1", z2), ("output", zo)):
        if not qmin <= z <= qmax:  # sub.cc checks this; add.cc relies on it
            ctx.fail(f"{what} zero point {z} is outside the {out.type_name} range")
    act_min, act_max = calculate_activation_range_quantized(act, so, zo, dtype)

    if out.type == T.INT16:
        if (z1, z2, zo) != (0, 0, 0) and ctx.emulate == "tflite":  # TFLM does not check
            ctx.fail(f"int16 {name} needs zero points 0, got {z1}, {z2}, {zo}")
        # TFLite takes the power-of-two path when the option asks for it (the schema default)
        # and all three scales are powers of two; TFLM always uses the general path.
        if ctx.emulate == "tflite" and ctx.options.get("pot_scale_int16", True):
            pots = [checked_log2(s) for s in (s1, s2, so)]
            if all(ok for ok, _ in pots):
                sh1, sh2 = pots[0][1] - pots[2][1], pots[1][1] - pots[2][1]
                if not (sh1 == 0 or sh2 == 0) or sh1 > 0 or sh2 > 0:
                    ctx.fail(f"int16 power-of-two {name}: one input must have the output's "
                             f"scale and the other a smaller one (shifts {sh1}, {sh2})")
                if not is_sub and tuple(ctx.input_shape(0)) != tuple(ctx.input_shape(1)):
                    # reference_ops::Add(int16, pot_scale) loops over a flat size: no broadcast.
                    ctx.unsupported("TFLite's int16 power-of-two ADD does not broadcast")
                return AddData("pot", shape, act_min, act_max, pot=AddSubPot(-sh1, -sh2))

    left_shift = 15 if out.type == T.INT16 else 20
    # Double-precision multipliers for ADD and SUB in both runtimes.  TFLM's sub_common.cc
    # (tflite-micro @ 90b983c2b) writes the SUB formulas in float32, but the tflite-micro wheel
    # we test against (0.dev20261023) reproduces the double ones exactly, and the float32 ones
    # not (test_elementwise.py::test_sub_multipliers_are_double_in_tflm).
    r1, r2, ro = add_effective_scales(s1, s2, so, left_shift)
    if not ro < 1.0:
        # sub.cc would quantize it with QuantizeMultiplierGreaterThanOne and then apply it as
        # smaller-than-one (a negative right shift: undefined); add.cc CHECK-fails.
        ctx.unsupported(f"{name} output multiplier {ro:.6g} >= 1 (output scale {so:.6g} is "
                        f"tiny next to the input scales)")
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(r1)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(r2)
    mo, sho = quantize_multiplier_smaller_than_one_exp(ro)
    rescale = AddSubRescale(left_shift, -z1, m1, sh1, -z2, m2, sh2, zo, mo, sho)
    return AddData("general", shape, act_min, act_max, rescale=rescale)


def prepare_add(ctx: OpContext) -> AddData:
    return _prepare_add_sub(ctx, is_sub=False)


def prepare_sub(ctx: OpContext) -> SubData:
    return _prepare_add_sub(ctx, is_sub=True)


def _to_common_scale(r: AddSubRescale, x: np.ndarray, y: np.ndarray) -> tuple[I64, I64]:
    """The first steps of AddElementwise, SubElementwise and SquaredDifference: each input
    offset by its zero point, shifted left by ``left_shift`` and scaled to the common scale."""
    a = (_i64(x) + r.input1_offset) << r.left_shift
    b = (_i64(y) + r.input2_offset) << r.left_shift
    a = as_i64(multiply_by_quantized_multiplier_smaller_than_one_exp(
        a, r.input1_multiplier, r.input1_shift))
    b = as_i64(multiply_by_quantized_multiplier_smaller_than_one_exp(
        b, r.input2_multiplier, r.input2_shift))
    return a, b


def _add_sub_general(r: AddSubRescale, x: np.ndarray, y: np.ndarray, sign: int) -> I64:
    """reference_integer_ops::AddElementwise / reference_ops::SubElementwise, per element:
    both inputs at the common scale, added (or subtracted) in int32, scaled to the output, plus
    the output zero point."""
    a, b = _to_common_scale(r, x, y)
    raw = wrap_int32(a + sign * b)
    return as_i64(multiply_by_quantized_multiplier_smaller_than_one_exp(
        raw, r.output_multiplier, r.output_shift)) + r.output_offset


def _add_sub_pot(p: AddSubPot, x: np.ndarray, y: np.ndarray, sign: int) -> I64:
    """reference_ops::Add(int16, pot_scale=true) / Sub16: one input is rounded right by the
    scale ratio, then a saturating int16 add; the activation clamp (inside int16) follows."""
    a = as_i64(rounding_divide_by_pot(_i64(x), p.input1_right_shift))
    b = as_i64(rounding_divide_by_pot(_i64(y), p.input2_right_shift))
    return np.asarray(np.clip(a + sign * b, -32768, 32767), dtype=np.int64)


def _add_sub_quantized(data: AddData, x: np.ndarray, y: np.ndarray, sign: int) -> np.ndarray:
    if data.kind == "general":
        assert data.rescale is not None
        raw = _add_sub_general(data.rescale, x, y, sign)
    elif data.kind == "pot":
        assert data.pot is not None
        raw = _add_sub_pot(data.pot, x, y, sign)
    else:  # unquantized int16: C++ int arithmetic narrowed back to int16 (wraps)
        raw = (_i64(x) + sign * _i64(y)).astype(x.dtype).astype(np.int64)
    out = clamp(np.broadcast_to(raw, data.output_shape), data.act_min, data.act_max)
    return out.astype(x.dtype)


@register(Op.ADD, T.FLOAT32, prepare=prepare_add)
def add_float32(data: AddData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return clamp(x + y, data.act_min, data.act_max).astype(np.float32)


@register(Op.ADD, T.INT32, T.INT64, prepare=prepare_add)
def add_int(data: AddData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_ops::Add<int32/int64>: wrapping add, then the activation clamp."""
    with np.errstate(over="ignore"):
        return clamp(x + y, data.act_min, data.act_max).astype(x.dtype)


@register(Op.ADD, *QUANTIZED_TYPES, prepare=prepare_add)
def add_quantized(data: AddData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_integer_ops::Add (int8), reference_ops::Add (uint8, int16)."""
    return _add_sub_quantized(data, x, y, +1)


@register(Op.SUB, T.FLOAT32, prepare=prepare_sub)
def sub_float32(data: SubData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return clamp(x - y, data.act_min, data.act_max).astype(np.float32)


@register(Op.SUB, T.INT32, T.INT64, prepare=prepare_sub)
def sub_int(data: SubData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_ops::SubWithActivation<int32/int64>: wrapping subtract, activation clamp."""
    with np.errstate(over="ignore"):
        return clamp(x - y, data.act_min, data.act_max).astype(x.dtype)


@register(Op.SUB, *QUANTIZED_TYPES, prepare=prepare_sub)
def sub_quantized(data: SubData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_ops::Sub / BroadcastQuantSubSlow (int8, uint8, int16), Sub16 (int16 POT)."""
    return _add_sub_quantized(data, x, y, -1)


# ================================================================================================
# MUL
# ================================================================================================
@dataclass(frozen=True, slots=True)
class MulData:
    """``kind``: ``"float"``, ``"integer"`` (wrapping multiply), ``"quantized"``
    (``MBQM((q1 - z1)·(q2 - z2), m, shift) + z_out``) or ``"int16_to_int8"`` (TFLite's
    int16 x int16 -> int8 fixed-point product, which ignores the scales)."""

    kind: str
    output_shape: tuple[int, ...]
    act_min: float | int
    act_max: float | int
    input1_offset: int = 0
    input2_offset: int = 0
    output_offset: int = 0
    output_multiplier: int = 0
    output_shift: int = 0


def prepare_mul(ctx: OpContext) -> MulData:
    shape = _prepare_binary_shape(ctx)
    out, in1, in2 = ctx.output(0), ctx.require_input(0), ctx.input(1)
    dtype = out.dtype
    assert dtype is not None
    act = str(ctx.options.get("fused_activation_function", "NONE"))
    if dtype.kind == "f":
        require_output_type(ctx)
        return MulData("float", shape, *calculate_activation_range(act, dtype))
    quantized = out.type in (T.INT8, T.UINT8) or out.type == T.INT16 and is_quantized(out)
    if not quantized:
        require_output_type(ctx)
        if ctx.emulate == "tflm" and out.type != T.INT32:
            ctx.unsupported(f"TFLite Micro's MUL has no unquantized {out.type_name} kernel")
        return MulData("integer", shape, *calculate_activation_range(act, dtype))
    if ctx.emulate == "tflm" and out.type == T.UINT8:
        ctx.unsupported("TFLite Micro's MUL has no UINT8 kernel")
    s1, z1 = per_tensor_quant_params(ctx, in1, "input 0")
    s2, z2 = per_tensor_quant_params(ctx, in2, "input 1")
    so, zo = per_tensor_quant_params(ctx, out, "output 0")
    act_min, act_max = calculate_activation_range_quantized(act, so, zo, dtype)
    if in1.type == T.INT16 and out.type in (T.INT8, T.UINT8):
        if ctx.emulate == "tflm" or out.type == T.UINT8:
            ctx.unsupported(f"MUL int16 x int16 -> {out.type_name} is implemented for TFLite's "
                            "int8 output only")
        return MulData("int16_to_int8", shape, act_min, act_max, output_offset=zo)
    require_output_type(ctx)
    if out.type == T.INT16 and (z1, z2, zo) != (0, 0, 0):
        ctx.fail(f"int16 MUL needs zero points 0, got {z1}, {z2}, {zo}")
    # The multiplier s1·s2/s_out: float32 arithmetic in TFLite's mul.cc, double in TFLM's
    # mul_common.cc (they differ in the low bits of m).
    real = mul_effective_scale(s1, s2, so, emulate=ctx.emulate)  # type: ignore[arg-type]
    m, shift = quantize_multiplier(real)
    return MulData("quantized", shape, act_min, act_max, -z1, -z2, zo, m, shift)


@register(Op.MUL, T.FLOAT32, prepare=prepare_mul)
def mul_float32(data: MulData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return clamp(x * y, data.act_min, data.act_max).astype(np.float32)


@register(Op.MUL, T.INT32, T.INT64, prepare=prepare_mul)
def mul_int(data: MulData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_ops::Mul<T>: ``WrappingMul``, then the activation clamp."""
    with np.errstate(over="ignore"):
        return clamp(x * y, data.act_min, data.act_max).astype(x.dtype)


@register(Op.MUL, *QUANTIZED_TYPES, prepare=prepare_mul)
def mul_quantized(data: MulData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_integer_ops::MulElementwise / BroadcastMul6DSlow (int8, int16) and
    reference_ops::MulElementwise (uint8); int16 x int16 -> int8: the int16 ``Mul`` overload."""
    if data.kind == "int16_to_int8":
        # F0·F0 is the int16 SRDHM (Q0.15 product), then a rounding shift by 8 to Q0.7; the
        # clamp is relative to the output zero point, which is added last.
        p = saturating_rounding_doubling_high_mul_int16(_i64(x), _i64(y))
        r = rounding_divide_by_pot(p, 8)
        r = np.clip(r, data.act_min - data.output_offset, data.act_max - data.output_offset)
        out = np.broadcast_to(r + data.output_offset, data.output_shape)
        return out.astype(np.int8)
    if data.kind == "integer":  # unquantized int16: int arithmetic, narrowed to int16
        raw = (_i64(x) * _i64(y)).astype(x.dtype).astype(np.int64)
    else:
        prod = wrap_int32((_i64(x) + data.input1_offset) * (_i64(y) + data.input2_offset))
        raw = as_i64(multiply_by_quantized_multiplier(prod, data.output_multiplier,
                                                      data.output_shift)) + data.output_offset
    out = clamp(np.broadcast_to(raw, data.output_shape), data.act_min, data.act_max)
    return out.astype(x.dtype)


# ================================================================================================
# DIV
# ================================================================================================
@dataclass(frozen=True, slots=True)
class DivData:
    """``kind``: ``"float"``, ``"integer"`` (int32, C++ truncating division) or ``"quantized"``
    (reciprocal in fixed point, reference_ops::DivElementwise)."""

    kind: str
    output_shape: tuple[int, ...]
    act_min: float | int
    act_max: float | int
    locator: str
    input1_offset: int = 0
    input2_offset: int = 0
    output_offset: int = 0
    output_multiplier: int = 0
    output_shift: int = 0
    check_zero: bool = True  # TFLite checks the divisor; TFLM's int32 DIV does not (UB)


def prepare_div(ctx: OpContext) -> DivData:
    shape = _prepare_binary_shape(ctx)
    require_output_type(ctx)
    out = ctx.output(0)
    dtype = out.dtype
    assert dtype is not None
    act = str(ctx.options.get("fused_activation_function", "NONE"))
    loc = ctx.op.locator
    if dtype.kind == "f":
        return DivData("float", shape, *calculate_activation_range(act, dtype), loc)
    if out.type == T.INT32:
        return DivData("integer", shape, *calculate_activation_range(act, dtype), loc)
    if ctx.emulate == "tflm" and out.type != T.INT8:
        ctx.unsupported(f"TFLite Micro's DIV has no {out.type_name} kernel")
    s1, z1 = per_tensor_quant_params(ctx, ctx.input(0), "input 0")
    s2, z2 = per_tensor_quant_params(ctx, ctx.input(1), "input 1")
    so, zo = per_tensor_quant_params(ctx, out, "output 0")
    act_min, act_max = calculate_activation_range_quantized(act, so, zo, dtype)
    # s1 / (s2 · s_out): float32 arithmetic in LiteRT's div.cc.  TFLM's div.cc has the same
    # float32 expression, but the tflite-micro wheel matches the double evaluation (with
    # s1 = 0.5, s2 = 0.375, s_out = 2/3 the float32 quotient is exactly 2.0 and the double one
    # just below it: 3542 of 65536 outputs differ; test_div_multiplier_per_runtime).
    div_multiplier_real = (float(np.float32(s1) / (np.float32(s2) * np.float32(so)))
                           if ctx.emulate == "tflite" else s1 / (s2 * so))
    real = div_multiplier_real
    m, shift = quantize_multiplier(real)
    return DivData("quantized", shape, act_min, act_max, loc, -z1, -z2, zo, m, shift)


def _div_by_zero(data: DivData) -> KernelRuntimeError:
    return KernelRuntimeError(f"{data.locator}: integer division by zero")


def _rdbpot_wide(x: I64, exponent: I64) -> I64:
    """gemmlowp ``RoundingDivideByPOT`` on int32 for exponents that may exceed 31.

    DivElementwise's ``total_shift`` reaches -32 and below when the dividend is -1 or 0 (its
    headroom is 31).  gemmlowp builds the mask with ``1ll << e`` (fine) but shifts the int32 by
    ``e`` (undefined for e >= 32; x86 ``sar`` uses ``e mod 32``).  For a zero dividend every
    reading gives 0; the -1 case is reproduced as x86 computes it.
    """
    e = exponent.astype(np.int64)
    mask32 = ((np.int64(1) << np.minimum(e, 62)) - 1) & 0xFFFFFFFF
    mask = np.where(mask32 >= 1 << 31, mask32 - (1 << 32), mask32)  # (int32) of the mask
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    shifted = x >> (e & 31)
    return shifted + (remainder > threshold)


def _div_quantized(data: DivData, x: np.ndarray, y: np.ndarray) -> I64:
    """reference_ops::DivElementwise: ``q1/q2`` via a fixed-point reciprocal of the divisor.

    The divisor is made positive (moving its sign to the dividend), ``1/d`` is computed as
    ``GetReciprocal`` (Q0.31 with ``recip_shift`` integer bits), the dividend is normalised by
    its headroom, multiplied, and the product rescaled by ``m·2^(shift - recip_shift -
    headroom)``.
    """
    a = _i64(x) + data.input1_offset
    b = _i64(y) + data.input2_offset
    a, b = np.broadcast_arrays(a, b)
    neg = b < 0
    a = np.where(neg, -a, a)
    b = np.where(neg, -b, b)
    recip, recip_shift = get_reciprocal(b, 31)
    headroom = count_leading_sign_bits(a)
    unscaled = multiply_by_quantized_multiplier_greater_than_one(a, recip, headroom)
    total_shift = data.output_shift - np.asarray(recip_shift) - np.asarray(headroom)
    # MultiplyByQuantizedMultiplierSmallerThanOneExp = RDBPOT(SRDHM(x, m), -total_shift).
    prod = multiply_by_quantized_multiplier_smaller_than_one_exp(
        unscaled, data.output_multiplier, 0)
    if np.any(total_shift > 0):  # a left shift here would be UB in the C++
        raise KernelRuntimeError(f"{data.locator}: quantized DIV result overflows "
                                 "(output scale too small for these inputs)")
    return _rdbpot_wide(np.asarray(prod, dtype=np.int64), -total_shift) + data.output_offset


@register(Op.DIV, T.FLOAT32, prepare=prepare_div)
def div_float32(data: DivData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return clamp(x / y, data.act_min, data.act_max).astype(np.float32)


@register(Op.DIV, T.INT32, prepare=prepare_div)
def div_int32(data: DivData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_ops::Div<int32>: C++ ``/`` (truncates toward zero), then the activation clamp.

    TFLite's ``CheckNonZero`` rejects a zero divisor anywhere in the tensor.
    """
    if np.any(y == 0):
        raise _div_by_zero(data)
    a, b = _i64(x), _i64(y)
    if np.any((a == -(1 << 31)) & (b == -1)):
        # INT32_MIN / -1 traps on x86 (SIGFPE) in the C++ kernels.
        raise KernelRuntimeError(f"{data.locator}: integer division overflow (INT32_MIN / -1)")
    q = np.abs(a) // np.abs(b)
    q = np.where((a < 0) != (b < 0), -q, q)
    return clamp(q, data.act_min, data.act_max).astype(np.int32)


@register(Op.DIV, T.INT8, T.UINT8, T.INT16, prepare=prepare_div)
def div_quantized(data: DivData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_ops::Div / BroadcastDivSlow for uint8, int8, int16."""
    if np.any(_i64(y) + data.input2_offset == 0):  # div.cc CheckNonZero: q2 == z2 is 0.0
        raise _div_by_zero(data)
    out = clamp(_div_quantized(data, x, y), data.act_min, data.act_max)
    return np.broadcast_to(out, data.output_shape).astype(x.dtype)


# ================================================================================================
# FLOOR_DIV and FLOOR_MOD
# ================================================================================================
@dataclass(frozen=True, slots=True)
class FloorDivData:
    output_shape: tuple[int, ...]
    locator: str


FloorModData = FloorDivData


def prepare_floor_div(ctx: OpContext) -> FloorDivData:
    shape = _prepare_binary_shape(ctx)
    require_output_type(ctx)
    if ctx.emulate == "tflm" and ctx.output(0).type != T.FLOAT32:
        ctx.unsupported(f"TFLite Micro's {ctx.op.name} has a FLOAT32 kernel only")
    return FloorDivData(shape, ctx.op.locator)


prepare_floor_mod = prepare_floor_div


def _check_no_zero_divisor(data: FloorDivData, y: np.ndarray) -> None:
    # floor_div.cc / floor_mod.cc scan the whole denominator tensor before computing.
    if np.any(y == 0):
        raise KernelRuntimeError(f"{data.locator}: division by zero")


@register(Op.FLOOR_DIV, T.FLOAT32, prepare=prepare_floor_div)
def floor_div_float32(data: FloorDivData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_ops::FloorDiv: ``floor(double(a) / double(b))``; TFLite rejects 0.0 too."""
    _check_no_zero_divisor(data, y)
    return np.floor(x.astype(np.float64) / y.astype(np.float64)).astype(np.float32)


@register(Op.FLOOR_DIV, T.INT8, T.INT16, T.INT32, prepare=prepare_floor_div)
def floor_div_int(data: FloorDivData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``floor(double(a) / double(b))`` is exact for these widths, so it equals floor division
    of the integers; the cast back to T wraps ``MIN / -1``, as x86 does."""
    _check_no_zero_divisor(data, y)
    return np.floor_divide(_i64(x), _i64(y)).astype(x.dtype)


@register(Op.FLOOR_MOD, T.FLOAT32, prepare=prepare_floor_mod)
def floor_mod_float32(data: FloorModData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_ops::FloorMod<float>: ``fmodf`` (exact), then add ``b`` when the signs differ.

    No zero check for floats: ``fmodf(x, 0)`` is NaN.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.fmod(x, y)
    adjust = (r != 0) & ((y < 0) != (r < 0))
    return np.asarray(np.where(adjust, r + y, r), dtype=np.float32)


@register(Op.FLOOR_MOD, T.INT8, T.INT16, T.INT32, T.INT64, prepare=prepare_floor_mod)
def floor_mod_int(data: FloorModData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_ops::FloorMod<int>: C ``%`` (sign of the dividend), then add ``b`` when the
    remainder's sign differs from the divisor's: that is the floored modulo."""
    _check_no_zero_divisor(data, y)
    return np.mod(x.astype(np.int64), y.astype(np.int64)).astype(x.dtype)


# ================================================================================================
# SQUARED_DIFFERENCE
# ================================================================================================
@dataclass(frozen=True, slots=True)
class SquaredDifferenceData:
    output_shape: tuple[int, ...]
    rescale: AddSubRescale | None  # None: float32 / int32


def prepare_squared_difference(ctx: OpContext) -> SquaredDifferenceData:
    shape = _prepare_binary_shape(ctx)
    require_output_type(ctx)
    out = ctx.output(0)
    if out.type not in (T.INT8, T.INT16):
        return SquaredDifferenceData(shape, None)
    s1, z1 = per_tensor_quant_params(ctx, ctx.input(0), "input 0")
    s2, z2 = per_tensor_quant_params(ctx, ctx.input(1), "input 1")
    so, zo = per_tensor_quant_params(ctx, out, "output 0")
    if out.type == T.INT16 and (z1, z2, zo) != (0, 0, 0):
        ctx.fail(f"int16 SQUARED_DIFFERENCE needs zero points 0, got {z1}, {z2}, {zo}")
    # Both inputs go to the scale 2·max(s1, s2)/2^left_shift as in ADD; the squared difference
    # then has that scale squared (squared_difference.cc; micro/kernels/squared_difference.cc).
    left_shift = 7 if out.type == T.INT8 else 0
    twice = 2.0 * max(s1, s2)
    r1, r2 = s1 / twice, s2 / twice
    ro = (twice * twice) / float(np.float32(1 << (2 * left_shift)) * np.float32(so))
    if ctx.emulate == "tflite" and not ro < 1.0:
        # TFLite uses QuantizeMultiplierSmallerThanOneExp (CHECK real < 1); TFLM any multiplier.
        ctx.fail(f"SQUARED_DIFFERENCE output multiplier {ro:.6g} must be < 1 in TFLite")
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(r1)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(r2)
    mo, sho = quantize_multiplier(ro)
    return SquaredDifferenceData(shape, AddSubRescale(left_shift, -z1, m1, sh1, -z2, m2, sh2,
                                                      zo, mo, sho))


@register(Op.SQUARED_DIFFERENCE, T.FLOAT32, T.INT32, prepare=prepare_squared_difference)
def squared_difference_plain(data: SquaredDifferenceData, x: np.ndarray,
                             y: np.ndarray) -> np.ndarray:
    """``d = a - b; d * d`` in T (float32, or int32 wrapping)."""
    with np.errstate(over="ignore", invalid="ignore"):
        d = x - y
        return np.asarray(d * d, dtype=x.dtype)


def _squared_difference_quantized(data: SquaredDifferenceData, x: np.ndarray,
                                  y: np.ndarray) -> np.ndarray:
    r = data.rescale
    assert r is not None
    a, b = _to_common_scale(r, x, y)
    d = as_i64(wrap_int32(a - b))
    sq = wrap_int32(d * d)
    # TFLite: MBQM_SmallerThanOneExp; TFLM: MBQM. Identical whenever the shift is <= 0, which
    # prepare guarantees for TFLite.
    out = as_i64(multiply_by_quantized_multiplier(sq, r.output_multiplier,
                                                  r.output_shift)) + r.output_offset
    lo, hi = type_range(x.dtype)
    return np.broadcast_to(np.clip(out, lo, hi), data.output_shape).astype(x.dtype)


@register(Op.SQUARED_DIFFERENCE, T.INT8, prepare=prepare_squared_difference)
def squared_difference_int8(data: SquaredDifferenceData, x: np.ndarray,
                            y: np.ndarray) -> np.ndarray:
    """squared_difference.cc ``SquaredDifference(int8_t, int8_t, params)``: no activation."""
    return _squared_difference_quantized(data, x, y)


@register(Op.SQUARED_DIFFERENCE, T.INT16, prepare=prepare_squared_difference,
          emulations=("tflm",))
def squared_difference_int16(data: SquaredDifferenceData, x: np.ndarray,
                             y: np.ndarray) -> np.ndarray:
    """TFLM only (micro/kernels/squared_difference.cc, left shift 0); LiteRT has no int16."""
    return _squared_difference_quantized(data, x, y)


# ================================================================================================
# MAXIMUM and MINIMUM
# ================================================================================================
@dataclass(frozen=True, slots=True)
class MaximumData:
    output_shape: tuple[int, ...]


MinimumData = MaximumData
MINMAX_TYPES = (T.FLOAT32, T.INT8, T.UINT8, T.INT16, T.INT32, T.INT64)


def prepare_maximum(ctx: OpContext) -> MaximumData:
    """No rescaling: the raw values are compared (maximum_minimum.cc), so quantized inputs
    only make sense with the output's scale and zero point."""
    shape = _prepare_binary_shape(ctx)
    require_output_type(ctx)
    if ctx.emulate == "tflm" and ctx.output(0).type == T.UINT8:
        ctx.unsupported("TFLite Micro's MAXIMUM/MINIMUM have no UINT8 kernel")
    return MaximumData(shape)


prepare_minimum = prepare_maximum


@register(Op.MAXIMUM, *MINMAX_TYPES, prepare=prepare_maximum)
def maximum(data: MaximumData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``a > b ? a : b`` -- so a NaN in ``a`` yields ``b`` and a NaN in ``b`` yields NaN."""
    return np.broadcast_to(np.where(x > y, x, y), data.output_shape).astype(x.dtype)


@register(Op.MINIMUM, *MINMAX_TYPES, prepare=prepare_minimum)
def minimum(data: MinimumData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``a < b ? a : b``."""
    return np.broadcast_to(np.where(x < y, x, y), data.output_shape).astype(x.dtype)


# ================================================================================================
# ADD_N
# ================================================================================================
@dataclass(frozen=True, slots=True)
class AddNData:
    output_shape: tuple[int, ...]
    rescale: AddSubRescale | None = None  # TFLM's int8 ADD_N (input2_* unused)
    act_min: int = -128
    act_max: int = 127


def prepare_add_n(ctx: OpContext) -> AddNData:
    if ctx.num_inputs < 2 or ctx.num_outputs != 1:
        ctx.fail(f"takes at least 2 inputs and 1 output, has {ctx.num_inputs} and "
                 f"{ctx.num_outputs}")
    require_same_input_types(ctx)
    require_output_type(ctx)
    shape = tuple(ctx.input_shape(0))
    for i in range(1, ctx.num_inputs):
        if tuple(ctx.input_shape(i)) != shape:  # add_n.cc: HaveSameShapes, no broadcasting
            ctx.fail(f"input {i} has shape {list(ctx.input_shape(i))}, input 0 {list(shape)}")
    out = ctx.output(0)
    if ctx.emulate == "tflm" and out.type not in (T.FLOAT32, T.INT8):
        ctx.unsupported("TFLite Micro's ADD_N has FLOAT32 and quantized INT8 kernels only")
    ctx.set_output_shape(0, shape)
    if out.type != T.INT8:
        return AddNData(shape)
    # micro/kernels/add_n.cc: one scale and zero point for every input; ADD's rescaling with a
    # single input multiplier (1/2) and left shift 20, no fused activation.
    s, z = per_tensor_quant_params(ctx, ctx.input(0), "input 0")
    for i in range(1, ctx.num_inputs):
        if per_tensor_quant_params(ctx, ctx.input(i), f"input {i}") != (s, z):
            ctx.fail(f"input {i} must have input 0's scale and zero point")
    so, zo = per_tensor_quant_params(ctx, out, "output 0")
    twice = 2.0 * s
    m_in, sh_in = quantize_multiplier_smaller_than_one_exp(s / twice)
    m_out, sh_out = quantize_multiplier_smaller_than_one_exp(twice / ((1 << 20) * so))
    return AddNData(shape, AddSubRescale(20, -z, m_in, sh_in, 0, 0, 0, zo, m_out, sh_out))


@register(Op.ADD_N, T.FLOAT32, T.INT32, prepare=prepare_add_n)
def add_n(data: AddNData, *xs: np.ndarray) -> np.ndarray:
    """The inputs summed one after another in T (reference_ops::AddN; LiteRT's optimized AddN
    adds per-thread partial sums, which changes float results in the last bits only)."""
    acc = xs[0].copy()
    with np.errstate(over="ignore"):
        for x in xs[1:]:
            acc = acc + x
    return acc.astype(xs[0].dtype)


@register(Op.ADD_N, T.INT8, prepare=prepare_add_n, emulations=("tflm",))
def add_n_int8(data: AddNData, *xs: np.ndarray) -> np.ndarray:
    """TFLM only: reference_ops::AddN(int8). Each input is rescaled as in ADD and the scaled values
    summed in int32.  The sum starts from the rescaled *input offset* (``x = input1_offset``,
    commented "x = 0" in the source), i.e. it includes one extra term for ``q = 0``."""
    r = data.rescale
    assert r is not None

    def scaled(v: I64) -> I64:
        return np.asarray(multiply_by_quantized_multiplier_smaller_than_one_exp(
            v << r.left_shift, r.input1_multiplier, r.input1_shift))

    acc = scaled(np.full(data.output_shape, r.input1_offset, dtype=np.int64))
    for x in xs:
        acc = as_i64(wrap_int32(acc + scaled(_i64(x) + r.input1_offset)))
    out = as_i64(multiply_by_quantized_multiplier_smaller_than_one_exp(
        acc, r.output_multiplier, r.output_shift)) + r.output_offset
    return np.clip(out, data.act_min, data.act_max).astype(np.int8)


# ================================================================================================
# POW
# ================================================================================================
@dataclass(frozen=True, slots=True)
class PowData:
    output_shape: tuple[int, ...]
    locator: str
    # BroadcastPow4D: a one-element exponent that is an integer >= 1 (within 1e-5) is applied by
    # repeated multiplication (IntegerExponentPow) instead of std::pow.
    integer_exponent_path: bool


def prepare_pow(ctx: OpContext) -> PowData:
    shape = _prepare_binary_shape(ctx)
    require_output_type(ctx)
    if ctx.emulate == "tflm":
        ctx.unsupported("TFLite Micro has no POW kernel")
    broadcast = tuple(ctx.input_shape(0)) != tuple(ctx.input_shape(1))
    scalar_exponent = math.prod(ctx.input_shape(1)) == 1
    return PowData(shape, ctx.op.locator, broadcast and scalar_exponent)


def _integer_exponent(y: np.ndarray) -> int | None:
    e = float(y.reshape(-1)[0])
    if not math.isfinite(e):
        return None
    n = int(math.copysign(math.floor(abs(e) + 0.5), e))  # static_cast<int>(std::round(e))
    return n if abs(e - n) < 1e-5 and n >= 1 else None


def _integer_power(x: np.ndarray, n: int) -> np.ndarray:
    """IntegerExponentPow (optimized_ops.h): square-and-multiply in T."""
    result: np.ndarray | None = None
    base = x.copy()
    with np.errstate(over="ignore", invalid="ignore"):
        while n:
            if n & 1:
                result = base.copy() if result is None else result * base
            n >>= 1
            if n:
                base = base * base
    assert result is not None
    return result


@register(Op.POW, T.FLOAT32, prepare=prepare_pow)
def pow_float32(data: PowData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """reference_ops::Pow / BroadcastPow4DSlow (reference_ops.h): ``std::pow(float, float)``,
    the C library's ``powf`` (:func:`unary.libm_float`; NumPy's float32 ``power`` and the float64
    one rounded to float32 both differ from glibc's now and then), bit for bit -- NaN for a
    negative base with a fractional exponent."""
    if data.integer_exponent_path:
        n = _integer_exponent(y)
        if n is not None:
            return np.broadcast_to(_integer_power(x, n), data.output_shape).astype(np.float32)
    return libm_float("powf", np.power, x, y).reshape(data.output_shape)  # broadcast


@register(Op.POW, T.INT32, prepare=prepare_pow)
def pow_int32(data: PowData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``std::pow(int, int)`` computes in double and converts back (truncating; x86 gives
    INT32_MIN outside the int32 range). pow.cc rejects negative exponents."""
    if np.any(y < 0):
        raise KernelRuntimeError(f"{data.locator}: POW does not support negative exponents "
                                 "for int32")
    if data.integer_exponent_path:
        n = _integer_exponent(y)
        if n is not None:
            r = _integer_power(x.astype(np.int64), n)  # wraps mod 2^64: low 32 bits exact
            return np.broadcast_to(r, data.output_shape).astype(np.int32)
    with np.errstate(over="ignore", invalid="ignore"):
        p = np.power(x.astype(np.float64), y.astype(np.float64))
    ok = np.isfinite(p) & (p >= -(2.0**31)) & (p < 2.0**31)
    return np.where(ok, np.trunc(np.where(ok, p, 0.0)), -(2.0**31)).astype(np.int32)
