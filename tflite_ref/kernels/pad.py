"""Kernels: PAD, PADV2, MIRROR_PAD.

Padding copies the input and fills the border; quantized values are not rescaled (TFLite does
not even require input and output quantization to match for PAD). What fills the border is the
one thing to get right, and it is decided in prepare as ``default_pad`` (used when no
``constant_values`` input is given):

* LiteRT ``tflite/kernels/pad.cc``: uint8, and int8/int16 tensors that carry quantization, pad
  with the output zero point (``EvalInt``); every other type pads with 0. A ``constant_values``
  input replaces it; on the ``EvalInt`` path it must share the output's scale and zero point.
* TFLM ``micro/kernels/pad.cc``: int8 pads with the output zero point, int16 with 0 (no zero
  point there); float32 and int32 with 0.

MIRROR_PAD (``tflite/kernels/mirror_pad.cc``) reflects with (REFLECT) or without (SYMMETRIC) the
edge element; each padding is at most the dimension size minus that offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflite_ref.kernels.common import is_quantized, legacy_quant_params
from tflite_ref.kernels.layout import (
    Fail,
    as_ints,
    check_tflm,
    require_same_quant,
    runtime_fail,
)
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T

MAX_RANK = 5  # reference_ops::PadKernelMaxDimensionCount()
PAD_TYPES = (T.FLOAT32, T.FLOAT16, T.UINT8, T.INT8, T.INT16, T.INT32, T.INT64, T.BOOL)
PADDING_TYPES = (T.INT32, T.INT64, T.INT8, T.INT16, T.BOOL)

Pads = tuple[tuple[int, int], ...]


def pad_amounts(paddings: np.ndarray, rank: int, fail: Fail, max_pad: tuple[int, ...] | None = None
                ) -> Pads:
    """pad.cc GetPadParams / mirror_pad.cc GetPaddedOutputShape: [rank, 2], non-negative."""
    values = as_ints(paddings)
    if len(values) != 2 * rank:
        fail(f"paddings must have shape [{rank}, 2], got {len(values)} values")
    if any(not -(2**31) <= v < 2**31 for v in values):
        fail("paddings must fit in int32")
    pads = tuple((values[2 * d], values[2 * d + 1]) for d in range(rank))
    if any(p < 0 for pair in pads for p in pair):
        fail(f"paddings must be non-negative, got {[list(p) for p in pads]}")
    if max_pad is not None:
        for d, ((lo, hi), limit) in enumerate(zip(pads, max_pad)):
            if lo > limit or hi > limit:
                fail(f"paddings {[lo, hi]} of dim {d} exceed its limit {limit} (the dimension "
                     "size minus the mode offset)")
    return pads


def padded_shape(in_shape: tuple[int, ...], pads: Pads) -> tuple[int, ...]:
    return tuple(n + lo + hi for n, (lo, hi) in zip(in_shape, pads))


# -- PAD, PADV2 ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PadData:
    pads: Pads | None  # None: read from the paddings input at every invoke
    default_pad: int | float  # border value when no constant_values input is given
    locator: str


def prepare_pad(ctx: OpContext) -> PadData:
    check_tflm(ctx, (T.FLOAT32, T.INT8, T.INT16, T.INT32), "pad.cc", const_inputs=(1,),
               max_rank=MAX_RANK)
    x, paddings, out = ctx.require_input(0), ctx.require_input(1), ctx.output(0)
    ctx.require(x.type == out.type, f"input is {x.type_name}, output {out.type_name}")
    if paddings.type not in ((T.INT32,) if ctx.emulate == "tflm" else PADDING_TYPES):
        ctx.unsupported(f"paddings of type {paddings.type_name} are not supported")
    rank = len(ctx.input_shape(0))
    ctx.require(rank <= MAX_RANK, f"PAD takes at most {MAX_RANK} dimensions, input has {rank}")
    ctx.require(ctx.input_shape(1) == (rank, 2),
                f"paddings must have shape [{rank}, 2], not {list(ctx.input_shape(1))}")
    constant = ctx.input(2)
    _, z_out = legacy_quant_params(out)
    if ctx.emulate == "tflm":
        default_pad = z_out if out.type == T.INT8 else 0
        quantized_path = out.type == T.INT8
    else:
        quantized_path = out.type == T.UINT8 or (out.type in (T.INT8, T.INT16) and
                                                 is_quantized(x))
        default_pad = z_out if quantized_path else 0
    if constant is not None:
        ctx.require(constant.type == x.type, f"constant_values is {constant.type_name}, input "
                                             f"{x.type_name}")
        ctx.require(int(np.prod(ctx.input_shape(2))) == 1, "constant_values must hold one value")
        if quantized_path:
            require_same_quant(ctx, constant, out, "constant_values and the output",
                               tflm_checks_too=True)  # TFLM: int8, the only quantized path
    elif quantized_path:
        info = np.iinfo(np.dtype(out.dtype))
        ctx.require(info.min <= z_out <= info.max, f"zero point {z_out} is out of range")
    value = ctx.const(1)
    if value is None:
        ctx.set_dynamic_output(0)
        return PadData(None, default_pad, ctx.op.locator)
    pads = pad_amounts(value, rank, ctx.fail)
    ctx.set_output_shape(0, padded_shape(ctx.input_shape(0), pads))
    return PadData(pads, default_pad, ctx.op.locator)


@register(Op.PAD, *PAD_TYPES, prepare=prepare_pad)
def pad(data: PadData, x: np.ndarray, paddings: np.ndarray,
        constant_values: np.ndarray | None = None) -> np.ndarray:
    pads = data.pads
    if pads is None:
        pads = pad_amounts(paddings, x.ndim, runtime_fail(data.locator))
    fill = data.default_pad if constant_values is None else constant_values.reshape(-1)[0]
    return np.pad(x, pads, mode="constant", constant_values=np.asarray(fill).astype(x.dtype))


register(Op.PADV2, *PAD_TYPES, prepare=prepare_pad)(pad)


# -- MIRROR_PAD ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MirrorPadData:
    pads: Pads | None
    mode: str  # NumPy's name: "reflect" (REFLECT) or "symmetric" (SYMMETRIC)
    offset: int  # 1 for REFLECT (the edge is not repeated), 0 for SYMMETRIC
    locator: str


def prepare_mirror_pad(ctx: OpContext) -> MirrorPadData:
    check_tflm(ctx, (T.FLOAT32, T.INT8), "mirror_pad.cc")
    x, paddings, out = ctx.require_input(0), ctx.require_input(1), ctx.output(0)
    ctx.require(x.type == out.type, f"input is {x.type_name}, output {out.type_name}")
    ctx.require(paddings.type in (T.INT32, T.INT64), "paddings must be INT32 or INT64")
    rank = len(ctx.input_shape(0))
    ctx.require(ctx.input_shape(1) == (rank, 2),
                f"paddings must have shape [{rank}, 2], not {list(ctx.input_shape(1))}")
    mode = ctx.options.get("mode", "REFLECT")
    ctx.require(mode in ("REFLECT", "SYMMETRIC"), f"unknown mirror padding mode {mode}")
    if ctx.emulate == "tflite" and out.type in (T.UINT8, T.INT8, T.INT16):
        require_same_quant(ctx, x, out, "input and output")
        if out.type == T.INT16:
            ctx.require(legacy_quant_params(out)[1] == 0, "int16 zero point must be 0")
    offset = 1 if mode == "REFLECT" else 0
    np_mode = "reflect" if mode == "REFLECT" else "symmetric"
    value = ctx.const(1)
    if value is None:
        ctx.set_dynamic_output(0)
        return MirrorPadData(None, np_mode, offset, ctx.op.locator)
    in_shape = ctx.input_shape(0)
    pads = pad_amounts(value, rank, ctx.fail, tuple(n - offset for n in in_shape))
    ctx.set_output_shape(0, padded_shape(in_shape, pads))
    return MirrorPadData(pads, np_mode, offset, ctx.op.locator)


@register(Op.MIRROR_PAD, *PAD_TYPES, prepare=prepare_mirror_pad)
def mirror_pad(data: MirrorPadData, x: np.ndarray, paddings: np.ndarray) -> np.ndarray:
    pads = data.pads
    if pads is None:
        pads = pad_amounts(paddings, x.ndim, runtime_fail(data.locator),
                           tuple(n - data.offset for n in x.shape))
    # Within the limits checked above, mirror_pad.cc GetInputDimension is exactly NumPy's
    # single reflection: REFLECT maps -k to k, SYMMETRIC maps -k to k - 1.
    out: np.ndarray = np.pad(x, pads, mode=data.mode)  # type: ignore[call-overload]
    return out
