"""Helpers shared by the kernel families.

* How a kernel reads a tensor's quantization.  TFLite kernels read ``TfLiteTensor::params``, a
  single (scale, zero point); what it holds for a per-axis tensor depends on the runtime, so
  there are two lenient accessors and one checked one:

  - :func:`quant_params` -- the first scale and zero point, (0.0, 0) without quantization
    (what TFLM's allocator writes into ``params``);
  - :func:`legacy_quant_params` -- LiteRT's ``GetLegacyQuantization``: (0.0, 0) unless the
    tensor has exactly one scale and one zero point;
  - :func:`per_tensor_quant_params` -- for kernels that need a quantized per-tensor operand:
    fails (model error) without quantization, refuses (unsupported) a per-axis one.

* :func:`is_quantized`, :func:`type_range`.
* Window geometry of ``tflite/kernels/padding.h`` (pooling; the convolutions compute the same):
  :func:`compute_out_size`, :func:`compute_padding_with_offset`.
* :func:`require_tflm`, :func:`require_tflite`: refuse a combination the emulated runtime's
  kernel does not take; :func:`generic_prepare`, the unary ops' ``GenericPrepare``.
* :func:`float32_dot_in_order`: the float reference kernels' ``total += a * b`` loop.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tflite_ref.kernels.registry import OpContext
from tflite_ref.model.model import Tensor
from tflite_ref.quant.fixedpoint import c_div

__all__ = [
    "compute_out_size",
    "compute_padding_with_offset",
    "float32_dot_in_order",
    "generic_prepare",
    "is_quantized",
    "legacy_quant_params",
    "per_tensor_quant_params",
    "quant_params",
    "require_tflite",
    "require_tflm",
    "type_range",
]


# -- quantization parameters --------------------------------------------------------------------
def is_quantized(t: Tensor | None) -> bool:
    """``tensor->quantization.type != kTfLiteNoQuantization``: the tensor carries scales."""
    return t is not None and t.quantization is not None and t.quantization.is_quantized


def quant_params(t: Tensor | None) -> tuple[float, int]:
    """``(scale, zero_point)``: the first scale (a float32, returned as the exact Python float)
    and zero point, as TFLM's allocator fills ``TfLiteTensor::params``; (0.0, 0) when the tensor
    has no quantization (``TfLiteQuantizationParams``' default).

    For a per-axis tensor this is the first channel's pair, where LiteRT's ``params`` hold
    zeros (:func:`legacy_quant_params`).
    """
    q = None if t is None else t.quantization
    if q is None or q.scale.size == 0:
        return 0.0, 0
    return float(np.float32(q.scale[0])), int(q.zero_point[0]) if q.zero_point.size else 0


def legacy_quant_params(t: Tensor | None) -> tuple[float, int]:
    """LiteRT's ``TfLiteTensor::params`` (``GetLegacyQuantization``): the scale and zero point of
    per-tensor quantization, else (0.0, 0).

    LiteRT's ``TF_LITE_ENSURE_EQ(input->params.scale, output->params.scale)`` checks compare these
    legacy fields, which are zero for unquantized and per-axis tensors.
    """
    q = t.quantization if t is not None else None
    if q is None or q.scale.size != 1 or q.zero_point.size != 1:
        return 0.0, 0
    return float(q.scale[0]), int(q.zero_point[0])


def per_tensor_quant_params(ctx: OpContext, t: Tensor | None, what: str) -> tuple[float, int]:
    """``(scale, zero_point)`` of an operand that must be quantized per tensor.

    The scale is returned as a Python float holding the exact float32 value.  Fails (a model
    error) when the tensor has no quantization; refuses (unsupported) per-axis quantization, which
    the kernels that call this read as one scale.
    """
    if t is None or not is_quantized(t):
        tensor = "is absent" if t is None else (f"tensor {t.index} {t.name!r} ({t.type_name}) has "
                                                "no quantization parameters")
        ctx.fail(f"{what} {tensor}; this kernel needs a scale and a zero point")
    q = t.quantization
    assert q is not None
    if q.scale.size != 1 or q.zero_point.size > 1:
        ctx.unsupported(f"{what} tensor {t.index} has per-axis quantization ({q.scale.size} "
                        f"scales); {ctx.op.name} takes one scale per tensor")
    zp = int(q.zero_point[0]) if q.zero_point.size else 0
    return float(np.float32(q.scale[0])), zp


def type_range(dtype: npt.DTypeLike) -> tuple[int, int]:
    """``(numeric_limits<T>::min(), numeric_limits<T>::max())`` of an integer type, as ints."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


# -- emulated runtime ----------------------------------------------------------------------------
def require_tflm(ctx: OpContext, ok: bool, what: str) -> None:
    """When emulating TFLM, refuse (unsupported) what its kernel does not take: emulating a
    runtime for a type combination it rejects would have no meaning."""
    if ctx.emulate == "tflm" and not ok:
        ctx.unsupported(f"TFLite Micro's {ctx.op.name} kernel does not take {what}")


def require_tflite(ctx: OpContext, ok: bool, what: str) -> None:
    """The same for LiteRT (ops or types only TFLM has)."""
    if ctx.emulate == "tflite" and not ok:
        ctx.unsupported(f"TFLite's {ctx.op.name} kernel does not take {what}")


def generic_prepare(ctx: OpContext) -> tuple[Tensor, Tensor]:
    """``GenericPrepare`` of activations.cc and elementwise.cc: one input and one output of the
    same type; the output takes the input's shape.  Returns ``(input, output)``."""
    if ctx.num_inputs != 1 or ctx.num_outputs != 1:
        ctx.fail(f"expects 1 input and 1 output, got {ctx.num_inputs} and {ctx.num_outputs}")
    x, y = ctx.require_input(0), ctx.output(0)
    if x.type != y.type:
        ctx.fail(f"input is {ctx.dtype_name(x)} but output is {ctx.dtype_name(y)}")
    ctx.set_output_shape(0, ctx.input_shape(0))
    return x, y


# -- window geometry (tflite/kernels/padding.h) -------------------------------------------------
def compute_out_size(padding: str, image_size: int, filter_size: int, stride: int,
                     dilation_rate: int = 1) -> int:
    """``ComputeOutSize``: SAME ``(image + stride - 1) / stride``; VALID ``(image + stride -
    effective_filter) / stride``, with C's truncating division (so a filter larger than the
    image gives 0, not a negative size); 0 for another padding or a zero stride."""
    effective_filter_size = (filter_size - 1) * dilation_rate + 1
    if stride == 0:
        return 0
    if padding == "SAME":
        return int(c_div(image_size + stride - 1, stride))
    if padding == "VALID":
        return int(c_div(image_size + stride - effective_filter_size, stride))
    return 0


def compute_padding_with_offset(stride: int, dilation_rate: int, in_size: int, filter_size: int,
                                out_size: int) -> tuple[int, int]:
    """``ComputePaddingWithOffset`` -> ``(padding, offset)``: the total padding
    ``max((out - 1)·stride + effective_filter - in, 0)`` is split with the smaller half
    (``padding``) before the image; ``offset`` is the odd pixel that goes after it."""
    effective_filter_size = (filter_size - 1) * dilation_rate + 1
    total_padding = max((out_size - 1) * stride + effective_filter_size - in_size, 0)
    return total_padding // 2, total_padding % 2



# -- float sums of products ---------------------------------------------------------------------
def float32_dot_in_order(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]
                         ) -> npt.NDArray[np.float32]:
    """``a @ b`` (``a`` (..., M, K), ``b`` (..., K, N), batch axes broadcast) summed the way
    TFLite's float reference kernels sum: ``float total = 0.f; for k: total += a[k] * b[k];`` --
    float32, k ascending, the product rounded before the addition (the LiteRT and TFLM builds do
    not fuse it into an FMA: tests/kernels/test_fully_connected.py and test_conv.py demand the
    same bits from both).

    A BLAS or float64 product is closer to the exact value but not the runtimes' value; qdebug
    compares the float model's tensors with the quantized ones to 1e-6, which needs the same
    bits.  Vectorised over every output element, one NumPy pass per k.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    out_shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    total = np.zeros(out_shape, np.float32)
    term = np.empty_like(total)
    for k in range(a.shape[-1]):
        np.multiply(a[..., :, k, None], b[..., k, None, :], out=term)
        total += term
    return total
