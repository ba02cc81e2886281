"""Kernels: RNN, UNIDIRECTIONAL_SEQUENCE_RNN (float32) and what the recurrent family shares.

The shared pieces (used by ``svdf.py`` and ``lstm.py`` too):

* :func:`state_view` -- recurrent ops keep their state in *variable* tensors.  The interpreter
  hands each variable to the kernel as a writable array that it keeps between invokes, so a
  kernel updates its state **in place** (``state[...] = new``); :func:`state_view` reshapes such
  an array without ever copying it, so an in-place write cannot silently go to a temporary.
* :func:`apply_activation_float` -- a fused activation element-wise in float32 (unlike a conv's
  fused activation it also applies TANH, SIGN_BIT and SIGMOID), and :func:`apply_activation_eigen`,
  ``tensor_utils::ApplyActivationToVector`` (LiteRT ``tflite/kernels/internal/tensor_utils.h``)
  with Eigen's tanh and sigmoid.  TFLM's ``ActivationValFloat`` is recurrent_float.py's
  :func:`~tflite_ref.kernels.recurrent_float.activation_val_float`.
* :func:`exact_int_matmul` -- an integer matrix product through float64 BLAS, exact while every
  partial sum stays below 2^53 (int8/int16 operands: always).

* :class:`HybridWeights`, :func:`batch_quantize_floats` -- the hybrid ("dynamic-range") product
  of the recurrent ops: float rows quantized on the fly (conv.py's quantizers, LiteRT
  ``tensor_utils::BatchQuantizeFloats``) times int8 weights, accumulated into float32.
* :func:`eigen_tanh`, :func:`eigen_logistic` -- the float tanh and sigmoid LiteRT's recurrent
  kernels compute (``tensor_utils::ApplyTanhToVector`` / ``ApplySigmoidToVector`` are Eigen's
  ``array().tanh()`` / ``.logistic()``), reproduced bit for bit: a hybrid kernel quantizes its
  own float state again at the next step, where one ulp can move a rounding.

RNN / UNIDIRECTIONAL_SEQUENCE_RNN (LiteRT ``tflite/kernels/basic_rnn.cc``,
``unidirectional_sequence_rnn.cc``, ``internal/kernel_utils.cc`` ``RnnBatchStep``; TFLM has
neither op): ``h_t = act(W·x_t + R·h_{t-1} + b)``; the output is ``h_t`` and ``h_t`` is
written back into the hidden-state variable.  Float32 (``out = bias; out += W·x; out += R·h;
act`` with ``tensor_utils``' float products, :func:`_rnn_steps`), and hybrid (int8 or uint8
weights, float input, state and output): ``out = bias; out += fl(Σ q_x·W)·(s_x·s_W);
out += fl(Σ q_h·R)·(s_h·s_R); act``, with ``x`` and ``h`` quantized per batch row
(``asymmetric_quantize_inputs`` picks the quantizer).  LiteRT only; both bit for bit.

Eigen and the x86 SSE build: facts measured on ai-edge-litert 2.3.0 (x86-64), reproduced here.

* Eigen evaluates a float array expression in packets of 4 (SSE) and runs its *scalar* functor
  on the elements before the first 16-byte-aligned address and after the last full packet
  (``LinearVectorizedTraversal``).  For tanh both are the same rational function (Eigen's
  ``ptanh_float`` under ``EIGEN_FAST_MATH``, clamp 7.90738964, no FMA); for the logistic they
  differ -- packets use Eigen's own exp (``scalar_logistic_op<float>::packetOp``), the scalar
  functor ``expf(x) / (1 + expf(x))`` -- so :func:`eigen_logistic` needs to know which lanes
  are scalar (:func:`eigen_scalar_lanes`, from where the buffer sits in LiteRT's arena).
* ``MatrixBatchVectorMultiplyAccumulate`` is ``SseMatrixBatchVectorMultiplyAccumulateImpl``
  (sse_tensor_utils.cc): int32 sums with the -128 sign slip of ``_mm_sign_epi8``
  (conv.py ``sse_sign_wrap_mask``), the asymmetric offset times the row sums of
  ``SseReductionSumVector`` subtracted in int32, then ``result += fl(sum) · scale``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tflite_ref.errors import InternalError
from tflite_ref.kernels.conv import (
    asymmetric_quantize_floats,
    hybrid_refused_by_tflm,
    hybrid_weights,
    sse_row_sums,
    sse_sign_wrap_correction,
    sse_sign_wrap_mask,
    symmetric_quantize_floats,
)
from tflite_ref.kernels.recurrent_float import (
    neon_matrix_batch_vector_multiply_accumulate,
)
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.model.model import Tensor
from tflite_ref.quant.fixedpoint import wrap_int32
from tflite_ref.quant.lut import c_expf

__all__ = [
    "ACTIVATIONS_FLOAT",
    "HybridWeights",
    "QuantizedRows",
    "RnnData",
    "RnnHybridData",
    "apply_activation_eigen",
    "apply_activation_float",
    "batch_quantize_floats",
    "eigen_logistic",
    "eigen_scalar_lanes",
    "eigen_tanh",
    "exact_int_matmul",
    "hybrid_float_tensor",
    "per_tensor_quant",
    "prepare_rnn",
    "prepare_unidirectional_sequence_rnn",
    "state_view",
]

F32 = np.float32
TFLITE_ONLY = ("tflite",)

#: Fused activations a model can name (schema ``ActivationFunctionType``; the C enum's
#: kTfLiteActSigmoid has no schema value, so only the kernels' internal gates use sigmoid).
ACTIVATIONS_FLOAT = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")


# =============================================================================================
# Shared helpers
# =============================================================================================
def apply_activation_float(x: NDArray[np.float32], activation: str) -> NDArray[np.float32]:
    """A fused activation applied element-wise in float32 (TANH and SIGMOID included)."""
    if activation == "NONE":
        return x
    if activation == "RELU":
        return np.asarray(np.maximum(x, F32(0)), dtype=F32)
    if activation == "RELU_N1_TO_1":
        return np.asarray(np.clip(x, F32(-1), F32(1)), dtype=F32)
    if activation == "RELU6":
        return np.asarray(np.clip(x, F32(0), F32(6)), dtype=F32)
    if activation == "TANH":
        return np.tanh(x).astype(F32)
    if activation == "SIGN_BIT":  # std::signbit: 1 for negative numbers, -0.0 included
        return np.signbit(x).astype(F32)
    if activation == "SIGMOID":
        with np.errstate(over="ignore"):
            return np.asarray(F32(1) / (F32(1) + np.exp(-x)), dtype=F32)
    raise InternalError(f"unknown fused activation {activation!r}")  # prepare checked it


# -- Eigen's float tanh and logistic, as LiteRT's x86 build computes them -----------------------
# Eigen/src/Core/arch/Default/GenericPacketMathTrig.h ptanh_float (EIGEN_FAST_MATH, SSE: no FMA,
# so every "pmadd" is a float32 multiply then a float32 add): a [9/8] rational function of the
# clamped input.  Scalar and packet paths compute the same expression.
_TANH_CLAMP = F32(7.90738964080810547)
_TANH_ALPHA = tuple(F32(v) for v in (1.394553628e-8, 2.102733560e-5, 3.520756727e-3,
                                     1.340216100e-1))
_TANH_BETA = tuple(F32(v) for v in (8.015776984e-7, 3.326951409e-4, 2.597254514e-2,
                                    4.673548340e-1, 1.0))
# Eigen/src/Core/functors/UnaryFunctors.h scalar_logistic_op<float>.
_LOGISTIC_EXP_HI = F32(16.6355324)  # the first x where the packet interpolant is exactly 1
_LOGISTIC_EXP_LO = F32(-104.0)  # below: 0
_EIGEN_PACKET = 4  # floats per SSE packet


def eigen_tanh(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """``Eigen::ArrayXf::tanh()`` (``tensor_utils::ApplyTanhToVector``), bit for bit."""
    v = np.clip(np.asarray(x, dtype=F32), -_TANH_CLAMP, _TANH_CLAMP)
    x2 = v * v
    x3 = x2 * v
    p = np.full_like(v, _TANH_ALPHA[0])
    for a in _TANH_ALPHA[1:]:  # ppolevl: Horner in x², one pmadd per coefficient
        p = p * x2 + a
    q = np.full_like(v, _TANH_BETA[0])
    for b in _TANH_BETA[1:]:
        q = q * x2 + b
    out: NDArray[np.float32] = (x3 * p + v) / q
    return out


def _eigen_logistic_packet(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """``scalar_logistic_op<float>::packetOp``: exp(x/2) by Cephes range reduction and a degree-5
    polynomial, squared, then ``e / (1 + e)``."""
    zero = x < _LOGISTIC_EXP_LO
    # Far below _LOGISTIC_EXP_LO the range reduction overflows (inf - inf); those lanes are 0.
    with np.errstate(over="ignore", invalid="ignore"):
        return _eigen_logistic_packet_unmasked(x, zero)


def _eigen_logistic_packet_unmasked(x: NDArray[np.float32], zero: NDArray[np.bool_]
                                    ) -> NDArray[np.float32]:
    v = np.minimum(x, _LOGISTIC_EXP_HI) * F32(0.5)
    m = np.floor(v * F32(1.44269504088896341) + F32(0.5))
    r = m * F32(-0.693359375) + v  # m·ln 2 subtracted in two parts (Cephes C1, C2)
    r = m * F32(2.12194440e-4) + r
    r2 = r * r
    p_even = r2 * F32(4.1898667812347412109375e-2) + F32(0.49999141693115234375)
    p_odd = r2 * F32(8.33471305668354034423828125e-3) + F32(0.16666877269744873046875)
    p = r * p_odd + p_even
    p = r2 * p + (r + F32(1))
    e = (p * np.exp2(m)).astype(F32)  # pldexp_fast: exact scaling by 2^m
    e = e * e
    out: NDArray[np.float32] = np.where(zero, F32(0), e / (F32(1) + e)).astype(F32)
    return out


def _eigen_logistic_scalar(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """``scalar_logistic_op<float>::operator()``: ``e = expf(min(x, hi)); e / (1 + e)``."""
    e = c_expf(np.minimum(x, _LOGISTIC_EXP_HI))
    out: NDArray[np.float32] = (e / (F32(1) + e)).astype(F32)
    return out


def eigen_logistic(x: NDArray[np.float32], scalar_lanes: NDArray[np.bool_] | None = None
                   ) -> NDArray[np.float32]:
    """``Eigen::ArrayXf::logistic()`` (``tensor_utils::ApplySigmoidToVector``), bit for bit:
    the packet formula everywhere except where ``scalar_lanes`` is true (same shape as ``x``),
    which get the scalar functor (:func:`eigen_scalar_lanes`)."""
    v = np.asarray(x, dtype=F32)
    out = _eigen_logistic_packet(v)
    if scalar_lanes is not None and scalar_lanes.any():
        out[scalar_lanes] = _eigen_logistic_scalar(v[scalar_lanes])
    return out


def eigen_scalar_lanes(start: int, length: int) -> NDArray[np.bool_]:
    """Which of ``length`` floats, the first at float offset ``start`` from a 16-byte-aligned
    address, Eigen's vectorised assignment computes with its scalar functor: the unaligned head
    and the tail after the last full packet (``dense_assignment_loop`` with
    ``LinearVectorizedTraversal``; LiteRT's arena aligns every tensor to 64 bytes)."""
    head = min((-start) % _EIGEN_PACKET, length)
    end = head + (length - head) // _EIGEN_PACKET * _EIGEN_PACKET
    idx = np.arange(length)
    lanes: NDArray[np.bool_] = (idx < head) | (idx >= end)
    return lanes


def apply_activation_eigen(x: NDArray[np.float32], activation: str,
                           scalar_lanes: NDArray[np.bool_] | None = None
                           ) -> NDArray[np.float32]:
    """``tensor_utils::ApplyActivationToVector`` as LiteRT computes it: like
    :func:`apply_activation_float` with Eigen's tanh and logistic."""
    if activation == "TANH":
        return eigen_tanh(x)
    if activation == "SIGMOID":
        return eigen_logistic(x, scalar_lanes)
    return apply_activation_float(x, activation)


def check_activation_float(ctx: OpContext, activation: str) -> None:
    if activation not in ACTIVATIONS_FLOAT:
        ctx.unsupported(f"fused activation {activation} is not one TFLite applies here")


def state_view(state: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``state`` seen with ``shape``, sharing its memory (writes update the variable tensor)."""
    view: np.ndarray = state.view()
    try:
        view.shape = shape  # raises instead of copying when no view is possible
    except AttributeError as exc:
        raise InternalError(f"state array of shape {state.shape} cannot be viewed as {shape} "
                            "without a copy") from exc
    if not view.flags.writeable:
        raise InternalError("the interpreter passed a read-only array for a variable tensor")
    return view


def exact_int_matmul(a: np.ndarray, b: np.ndarray) -> NDArray[np.int64]:
    """``a @ b`` for integer arrays, exact: float64 BLAS holds every partial sum (< 2^53)."""
    prod = a.astype(np.float64) @ b.astype(np.float64)
    return np.rint(prod).astype(np.int64)


# -- hybrid products ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuantizedRows:
    """Float rows quantized on the fly (``tensor_utils::BatchQuantizeFloats``): int8 values,
    one scaling factor per row and, asymmetric only, one offset (zero point) per row."""

    values: NDArray[np.int8]  # (rows, n)
    scaling: NDArray[np.float32]  # (rows,)
    offset: NDArray[np.int32] | None  # (rows,) asymmetric only


def batch_quantize_floats(rows: NDArray[np.float32], asymmetric: bool) -> QuantizedRows:
    """``BatchQuantizeFloats`` on each row of ``rows`` (R, n): conv.py's
    ``asymmetric_quantize_floats`` / ``symmetric_quantize_floats`` (the NEON_2_SSE quantizers
    LiteRT's x86 build runs)."""
    flat = np.ascontiguousarray(rows, dtype=F32).reshape(-1, rows.shape[-1])
    # A row whose range is subnormal overflows 127 / range to inf, in LiteRT's float32 too (the
    # recurrent state can decay that far); the quantizers then give what LiteRT gives, quietly.
    with np.errstate(over="ignore", invalid="ignore"):
        if asymmetric:
            q, scaling, offset = asymmetric_quantize_floats(flat)
            return QuantizedRows(q, scaling, offset)
        q, scaling = symmetric_quantize_floats(flat)
    return QuantizedRows(q, scaling, None)


@dataclass(frozen=True, slots=True)
class HybridWeights:
    """One constant int8 weight matrix (N, K) of a hybrid recurrent op, prepared once.

    :meth:`accumulate` is ``tensor_utils::MatrixBatchVectorMultiplyAccumulate`` in the forms the
    recurrent kernels call (a matrix scale times each row's scaling factor, optional row offsets
    with cached row sums), as the x86 build runs it: ``SseMatrixBatchVectorMultiplyAccumulateImpl``
    (sse_tensor_utils.cc).  Per quantized input row ``q`` and weight row ``w``::

        sum = Σ_k q_k·w_k                      (int32; -128 weights slip, see sse_sign_wrap_mask)
        sum -= offset · row_sum(w)             (asymmetric rows; SseReductionSumVector, int32)
        result += fl32(sum) · fl32(scaling · s_w)

    ``scale`` is ``tensor->params.scale`` (``GetTensorScale``); the scaling-factor product is
    formed in float32, as ``scaling_factor_scratch[b] = sf[b] * s_w`` (LSTM) and
    ``scaling_factors[b] *= s_w`` (RNN, SVDF) do.
    """

    matrix: NDArray[np.float64]  # (K, N): int8 values for an exact float64 GEMM
    scale: float  # the tensor's float32 scale
    row_sums: NDArray[np.int64] | None  # (N,) asymmetric only
    sign_wrap: NDArray[np.float64] | None  # (K & ~15, N), see conv.sse_sign_wrap_mask

    @classmethod
    def of(cls, ctx: OpContext, slot: int, what: str, asymmetric: bool) -> HybridWeights:
        """The int8 (or uint8, read as int8) constant weights in input ``slot`` and their
        per-tensor scale.  Per-axis scales are refused: the recurrent kernels read
        ``tensor->params.scale``, which LiteRT leaves 0 for a per-axis tensor."""
        t = ctx.require_input(slot)
        if t.type not in (T.INT8, T.UINT8):
            ctx.fail(f"input {slot} ({what}) must be INT8 or UINT8 in a hybrid "
                     f"{ctx.op.name}, not {t.type_name}")
        if t.quantization is not None and t.quantization.scale.size > 1:
            ctx.unsupported(f"input {slot} ({what}) is quantized per axis: LiteRT's hybrid "
                            f"{ctx.op.name} reads tensor->params.scale, which is 0 for a "
                            "per-axis tensor, so its products vanish (the output is the bias)")
        scale, _ = per_tensor_quant(ctx, t, what)
        w = hybrid_weights(ctx, slot, what).astype(np.int64)
        w = w.reshape(w.shape[0], -1)
        return cls(np.ascontiguousarray(w.T, dtype=np.float64), float(F32(scale)),
                   sse_row_sums(w) if asymmetric else None, sse_sign_wrap_mask(w))

    def accumulate(self, result: NDArray[np.float32], rows: QuantizedRows
                   ) -> NDArray[np.float32]:
        """``result + fl32(Σ q·w) · fl32(scaling · s_w)`` for every row (float32)."""
        acc = rows.values.astype(np.float64) @ self.matrix  # exact: every sum < 2^53
        if self.sign_wrap is not None:
            acc -= sse_sign_wrap_correction(rows.values, self.sign_wrap)
        if rows.offset is not None:
            assert self.row_sums is not None
            acc -= rows.offset.astype(np.float64)[:, None] * self.row_sums
        dot = wrap_int32(np.rint(acc).astype(np.int64))  # the int32 accumulator
        scale = (rows.scaling * F32(self.scale)).astype(F32)
        out: NDArray[np.float32] = result + np.asarray(dot).astype(F32) * scale[:, None]
        return out


def hybrid_float_tensor(ctx: OpContext, slot: int, what: str) -> NDArray[np.float32] | None:
    """A constant float32 input of a hybrid kernel (bias, layer-norm coefficients), or None when
    the slot is absent.  The kernels read it with ``GetTensorData<float>``: any other type
    would be reinterpreted as floats."""
    t = ctx.input(slot)
    if t is None:
        return None
    if t.type != T.FLOAT32:
        ctx.fail(f"input {slot} ({what}) must be FLOAT32 in a hybrid {ctx.op.name}, not "
                 f"{t.type_name}")
    data = ctx.const(slot)
    if data is None:
        ctx.unsupported(f"input {slot} ({what}) computed at run time is not supported")
    return np.ascontiguousarray(data, dtype=F32)


def per_tensor_quant(ctx: OpContext, t: Tensor | None, what: str) -> tuple[float, int]:
    """``(scale, zero_point)`` as a kernel reads ``tensor->params``; fails without a scale."""
    q = t.quantization if t is not None else None
    if q is None or not q.is_quantized:
        ctx.fail(f"{what} has no quantization parameters, which the integer kernel needs")
    if q.scale.size != 1:
        ctx.unsupported(f"{what} is quantized per axis ({q.scale.size} scales); this kernel "
                        "reads one scale (tensor->params.scale)")
    return float(q.scale[0]), int(q.zero_point[0]) if q.zero_point.size else 0


def require_state(ctx: OpContext, i: int, what: str, *, variable: bool = True) -> Tensor:
    """The state input, which the kernel writes its new state into.

    ``variable=True``: it must be a variable tensor (LiteRT's ``GetVariableInput`` returns
    nothing otherwise and Prepare or Eval fails -- RNN's Prepare reads the state with
    ``GetInputSafe`` but its Eval with ``GetVariableInput``); ``False``: anything but a constant.
    """
    t = ctx.require_input(i)
    if variable and not t.is_variable:
        ctx.fail(f"input {i} ({what}) must be a variable tensor: the op keeps its state in it")
    if t.data is not None and not t.is_variable:
        ctx.fail(f"input {i} ({what}) is a constant; the op writes its state into it")
    return t


# =============================================================================================
# RNN and UNIDIRECTIONAL_SEQUENCE_RNN (float32 and hybrid)
# =============================================================================================
@dataclass(frozen=True, slots=True)
class RnnData:
    input_weights: NDArray[np.float32]  # (n_units, n_input), row-major as the kernel reads it
    recurrent_weights: NDArray[np.float32]  # (n_units, n_units)
    bias: NDArray[np.float32]
    activation: str
    time_major: bool  # sequence op only
    sequence: bool
    batch: int
    units: int


@dataclass(frozen=True, slots=True)
class RnnHybridData:
    """kernel_utils.cc ``RnnBatchStep`` (hybrid overload): int8 weights, float everything else."""

    input_weights: HybridWeights
    recurrent_weights: HybridWeights
    bias: NDArray[np.float32]
    activation: str
    asymmetric: bool  # asymmetric_quantize_inputs: quantizer of x and h
    time_major: bool
    sequence: bool
    batch: int
    units: int


def _prepare_rnn_common(ctx: OpContext, sequence: bool) -> RnnData | RnnHybridData:
    x = ctx.require_input(0)
    w, r, b = (ctx.require_input(i) for i in (1, 2, 3))
    state_t = require_state(ctx, 4, "hidden state")
    if x.type != T.FLOAT32:
        ctx.unsupported(f"{ctx.describe_types()}: the input must be FLOAT32 (float and hybrid "
                        "kernels)")
    hybrid = w.type in (T.INT8, T.UINT8)
    if not hybrid and w.type != T.FLOAT32:
        ctx.unsupported(f"{ctx.describe_types()}: weights must be FLOAT32, or INT8/UINT8 "
                        "(hybrid)")
    if r.type != w.type:  # TF_LITE_ENSURE_TYPES_EQ(input_weights->type, recurrent->type)
        ctx.fail(f"recurrent weights are {r.type_name}, the input weights {w.type_name}")
    for t, what in ((b, "bias"), (state_t, "hidden state"), (ctx.output(0), "output")):
        if t.type != T.FLOAT32:
            ctx.fail(f"{what} must be FLOAT32, not {t.type_name}")
    if hybrid:
        hybrid_refused_by_tflm(ctx)
    w_data, r_data, b_data = ctx.const(1), ctx.const(2), ctx.const(3)
    if w_data is None or r_data is None or b_data is None:
        ctx.unsupported("weights and bias computed at run time are not supported")
    in_shape = ctx.input_shape(0)
    activation = str(ctx.options.get("fused_activation_function", "NONE"))
    check_activation_float(ctx, activation)
    time_major = bool(ctx.options.get("time_major", False)) if sequence else True
    if sequence:
        if len(in_shape) != 3:
            ctx.fail(f"input must be 3-D [batch, time, input] (or time-major), got {in_shape}")
        batch = in_shape[1] if time_major else in_shape[0]
    else:
        if len(in_shape) != 2:
            ctx.fail(f"input must be 2-D [batch, input], got {in_shape}")
        batch = in_shape[0]
    if w_data.ndim != 2 or w_data.shape[1] != in_shape[-1]:
        ctx.fail(f"input weights {w_data.shape} must be [units, {in_shape[-1]}]")
    units = int(w_data.shape[0])
    if r_data.shape != (units, units) or b_data.shape != (units,):
        ctx.fail(f"recurrent weights {r_data.shape} must be [{units}, {units}] and bias "
                 f"{b_data.shape} [{units}]")
    state_shape = ctx.input_shape(4)
    if len(state_shape) != 2 or tuple(state_shape) != (batch, units):
        ctx.fail(f"hidden state must be [{batch}, {units}], got {list(state_shape)}")
    ctx.set_output_shape(0, (*in_shape[:-1], units))
    if hybrid:
        asymmetric = bool(ctx.options.get("asymmetric_quantize_inputs", False))
        return RnnHybridData(
            HybridWeights.of(ctx, 1, "input weights", asymmetric),
            HybridWeights.of(ctx, 2, "recurrent weights", asymmetric),
            b_data.astype(F32), activation, asymmetric, time_major, sequence, batch, units)
    return RnnData(np.ascontiguousarray(w_data, dtype=F32),
                   np.ascontiguousarray(r_data, dtype=F32), b_data.astype(F32), activation,
                   time_major, sequence, batch, units)


def prepare_rnn(ctx: OpContext) -> RnnData | RnnHybridData:
    """basic_rnn.cc Prepare: input [batch, input], weights [units, input], recurrent weights
    [units, units], bias [units], hidden state variable [batch, units] (LiteRT's Eval reads it
    with ``GetVariableInput`` and fails on anything else)."""
    return _prepare_rnn_common(ctx, sequence=False)


def prepare_unidirectional_sequence_rnn(ctx: OpContext) -> RnnData | RnnHybridData:
    """unidirectional_sequence_rnn.cc Prepare: the same with a time axis (``time_major``)."""
    return _prepare_rnn_common(ctx, sequence=True)


def _rnn_steps(data: RnnData, xs: NDArray[np.float32], state: NDArray[np.float32]
               ) -> NDArray[np.float32]:
    """``RnnBatchStep`` over ``xs`` of shape (time, batch, input); updates ``state`` in place.

    kernel_utils.cc: ``out = bias`` (VectorBatchVectorAssign); ``out += W·x``; ``out += R·h``
    (``tensor_utils::MatrixBatchVectorMultiplyAccumulate``: the x86 build's NEON_2_SSE lanes,
    recurrent_float.py :func:`neon_matrix_batch_vector_multiply_accumulate`); ``out = act(out)``
    (Eigen's tanh); ``h = out``.  The first two terms of every step are computed up front (they
    do not depend on the state).  Bit for bit with LiteRT.
    """
    input_terms = neon_matrix_batch_vector_multiply_accumulate(  # (time, batch, units)
        data.input_weights, xs, data.bias)
    outputs = np.empty_like(input_terms)
    h = state_view(state, (data.batch, data.units))
    for t in range(xs.shape[0]):  # the recurrence is sequential in time
        acc = neon_matrix_batch_vector_multiply_accumulate(data.recurrent_weights, h,
                                                           input_terms[t])
        h[...] = apply_activation_eigen(acc, data.activation)
        outputs[t] = h
    return outputs


def _rnn_hybrid_steps(data: RnnHybridData, xs: NDArray[np.float32], state: NDArray[np.float32]
                      ) -> NDArray[np.float32]:
    """The hybrid ``RnnBatchStep`` over ``xs`` (time, batch, input); updates ``state`` in place.

    ``out = bias; out += fl(Σ q_x·W)·(s_x·s_W); out += fl(Σ q_h·R)·(s_h·s_R);
    out = act(out)`` in float32, every row quantized on its own -- so the input terms of all
    steps are computed at once.  LiteRT skips a product whose float operand is all zeros
    (``IsZeroVector``), which changes nothing but the sign of a zero; it is skipped here too.
    """
    n_time, n_batch = xs.shape[:2]
    start = np.broadcast_to(data.bias, (n_time * n_batch, data.units))
    rows = xs.reshape(n_time * n_batch, -1)
    input_terms = (data.input_weights.accumulate(
        start, batch_quantize_floats(rows, data.asymmetric)) if rows.any()
        else start.copy()).reshape(n_time, n_batch, data.units)
    outputs = np.empty_like(input_terms)
    h = state_view(state, (data.batch, data.units))
    for t in range(n_time):  # the recurrence is sequential in time
        acc = input_terms[t]
        if h.any():
            acc = data.recurrent_weights.accumulate(acc, batch_quantize_floats(h, data.asymmetric))
        h[...] = apply_activation_eigen(acc, data.activation)
        outputs[t] = h
    return outputs


def _run_rnn(data: RnnData | RnnHybridData, xs: NDArray[np.float32], state: NDArray[np.float32]
             ) -> NDArray[np.float32]:
    if isinstance(data, RnnHybridData):
        return _rnn_hybrid_steps(data, xs, state)
    return _rnn_steps(data, xs, state)


@register(Op.RNN, T.FLOAT32, prepare=prepare_rnn, emulations=TFLITE_ONLY)
def rnn_float32(data: RnnData | RnnHybridData, x: NDArray[np.float32], w: np.ndarray,
                r: np.ndarray, b: np.ndarray, state: NDArray[np.float32]) -> NDArray[np.float32]:
    """basic_rnn.cc EvalFloat / EvalHybrid: one step; the hidden state variable is updated in
    place."""
    out: NDArray[np.float32] = _run_rnn(data, np.ascontiguousarray(x, dtype=F32)[None],
                                        state)[0]
    return out


@register(Op.UNIDIRECTIONAL_SEQUENCE_RNN, T.FLOAT32, prepare=prepare_unidirectional_sequence_rnn,
          emulations=TFLITE_ONLY)
def unidirectional_sequence_rnn_float32(data: RnnData | RnnHybridData, x: NDArray[np.float32],
                                        w: np.ndarray, r: np.ndarray, b: np.ndarray,
                                        state: NDArray[np.float32]) -> NDArray[np.float32]:
    """unidirectional_sequence_rnn.cc EvalFloat / EvalHybrid: every time step in order; the
    hidden state variable is updated in place and holds the last step's output afterwards."""
    xs = x if data.time_major else x.transpose(1, 0, 2)
    out = _run_rnn(data, np.ascontiguousarray(xs, dtype=F32), state)
    return out if data.time_major else np.ascontiguousarray(out.transpose(1, 0, 2))
