"""Kernels: RNN, UNIDIRECTIONAL_SEQUENCE_RNN, BIDIRECTIONAL_SEQUENCE_RNN (float32 input) and
what the recurrent family shares.

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

BIDIRECTIONAL_SEQUENCE_RNN (``bidirectional_sequence_rnn.cc``; TFLM has no such op): two such
cells, forward over the sequence and backward from its end, each with its own hidden-state
variable, an optional aux input (``out += Waux·aux`` after ``W·x``, or, without aux weights, the
backward cell's input), one merged or two outputs; float32 and hybrid, bit for bit, LiteRT's
loop quirks included (:func:`bidirectional_sequence_rnn_float32`).

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
    "BidirectionalRnnData",
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
    "prepare_bidirectional_sequence_rnn",
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


@dataclass(frozen=True, slots=True)
class _CellSlots:
    """Where one RNN cell's tensors sit among the operator's inputs."""

    weights: int
    recurrent: int
    bias: int
    state: int
    label: str = ""  # "forward " / "backward " in the bidirectional op's messages


def _rnn_cell(ctx: OpContext, sl: _CellSlots, n_input: int, batch: int, *, hybrid: bool,
              activation: str, asymmetric: bool, time_major: bool, sequence: bool
              ) -> RnnData | RnnHybridData:
    """One cell's weights [units, n_input], recurrent weights [units, units], bias [units] and
    hidden-state variable [batch, units], checked as the RNN kernels' Prepare do."""
    lbl = sl.label
    w, r, b = (ctx.require_input(i) for i in (sl.weights, sl.recurrent, sl.bias))
    state_t = require_state(ctx, sl.state, f"{lbl}hidden state")
    if r.type != w.type:  # TF_LITE_ENSURE_TYPES_EQ(input_weights->type, recurrent->type)
        ctx.fail(f"{lbl}recurrent weights are {r.type_name}, the {lbl}input weights "
                 f"{w.type_name}")
    for t, what in ((b, "bias"), (state_t, "hidden state")):
        if t.type != T.FLOAT32:
            ctx.fail(f"{lbl}{what} must be FLOAT32, not {t.type_name}")
    w_data, r_data, b_data = ctx.const(sl.weights), ctx.const(sl.recurrent), ctx.const(sl.bias)
    if w_data is None or r_data is None or b_data is None:
        ctx.unsupported(f"{lbl}weights and bias computed at run time are not supported")
    if w_data.ndim != 2 or w_data.shape[1] != n_input:
        ctx.fail(f"{lbl}input weights {w_data.shape} must be [units, {n_input}]")
    units = int(w_data.shape[0])
    if r_data.shape != (units, units) or b_data.shape != (units,):
        ctx.fail(f"{lbl}recurrent weights {r_data.shape} must be [{units}, {units}] and bias "
                 f"{b_data.shape} [{units}]")
    state_shape = ctx.input_shape(sl.state)
    if len(state_shape) != 2 or tuple(state_shape) != (batch, units):
        ctx.fail(f"{lbl}hidden state must be [{batch}, {units}], got {list(state_shape)}")
    if hybrid:
        return RnnHybridData(
            HybridWeights.of(ctx, sl.weights, f"{lbl}input weights", asymmetric),
            HybridWeights.of(ctx, sl.recurrent, f"{lbl}recurrent weights", asymmetric),
            b_data.astype(F32), activation, asymmetric, time_major, sequence, batch, units)
    return RnnData(np.ascontiguousarray(w_data, dtype=F32),
                   np.ascontiguousarray(r_data, dtype=F32), b_data.astype(F32), activation,
                   time_major, sequence, batch, units)


def _weights_kind(ctx: OpContext) -> bool:
    """Whether the op is hybrid (int8/uint8 weights in input 1); float32 input and weights
    otherwise, or refused."""
    if ctx.require_input(0).type != T.FLOAT32:
        ctx.unsupported(f"{ctx.describe_types()}: the input must be FLOAT32 (float and hybrid "
                        "kernels)")
    w = ctx.require_input(1)
    hybrid = w.type in (T.INT8, T.UINT8)
    if not hybrid and w.type != T.FLOAT32:
        ctx.unsupported(f"{ctx.describe_types()}: weights must be FLOAT32, or INT8/UINT8 "
                        "(hybrid)")
    return hybrid


def _prepare_rnn_common(ctx: OpContext, sequence: bool) -> RnnData | RnnHybridData:
    hybrid = _weights_kind(ctx)
    if ctx.output(0).type != T.FLOAT32:
        ctx.fail(f"output must be FLOAT32, not {ctx.output(0).type_name}")
    if hybrid:
        hybrid_refused_by_tflm(ctx)
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
    cell = _rnn_cell(ctx, _CellSlots(1, 2, 3, 4), in_shape[-1], batch, hybrid=hybrid,
                     activation=activation,
                     asymmetric=bool(ctx.options.get("asymmetric_quantize_inputs", False)),
                     time_major=time_major, sequence=sequence)
    ctx.set_output_shape(0, (*in_shape[:-1], cell.units))
    return cell


def prepare_rnn(ctx: OpContext) -> RnnData | RnnHybridData:
    """basic_rnn.cc Prepare: input [batch, input], weights [units, input], recurrent weights
    [units, units], bias [units], hidden state variable [batch, units] (LiteRT's Eval reads it
    with ``GetVariableInput`` and fails on anything else)."""
    return _prepare_rnn_common(ctx, sequence=False)


def prepare_unidirectional_sequence_rnn(ctx: OpContext) -> RnnData | RnnHybridData:
    """unidirectional_sequence_rnn.cc Prepare: the same with a time axis (``time_major``)."""
    return _prepare_rnn_common(ctx, sequence=True)


def _float_recurrence(data: RnnData, terms: NDArray[np.float32], h: NDArray[np.float32],
                      reverse: bool = False) -> NDArray[np.float32]:
    """The state-dependent half of the float ``RnnBatchStep`` over ``terms`` (time, batch,
    units) -- the bias and input products of every step, computed up front since they do not
    depend on the state: per step ``out = act(terms[t] + R·h)`` (``tensor_utils``' NEON_2_SSE
    product, then Eigen's tanh), ``h = out``; last step first when ``reverse``.  ``h`` (batch,
    units) is updated in place."""
    outputs = np.empty_like(terms)
    steps = range(terms.shape[0])
    for t in reversed(steps) if reverse else steps:  # the recurrence is sequential in time
        acc = neon_matrix_batch_vector_multiply_accumulate(data.recurrent_weights, h, terms[t])
        h[...] = apply_activation_eigen(acc, data.activation)
        outputs[t] = h
    return outputs


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
    return _float_recurrence(data, input_terms, state_view(state, (data.batch, data.units)))


def _hybrid_product(weights: HybridWeights, rows: NDArray[np.float32],
                    start: NDArray[np.float32], asymmetric: bool, per_row: bool
                    ) -> NDArray[np.float32]:
    """``start + fl(Σ q·W)·(s·s_W)`` for ``rows`` (time, batch, K), each row quantized on its
    own (``BatchQuantizeFloats``), as a fresh (time, batch, N) array.

    ``RnnBatchStep`` skips the quantization and the product when the rows of one call are all
    zeros (``IsZeroVector``; -0.0 counts as zero), leaving ``start`` as it is -- which changes
    nothing but the sign of a zero.  One call holds the batch rows of one step, or a single row
    when ``per_row`` (a batch-major sequence, stepped row by row)."""
    n_time, n_batch = rows.shape[:2]
    out = np.array(np.broadcast_to(start, (n_time, n_batch, weights.matrix.shape[1])),
                   dtype=F32)
    nonzero: NDArray[np.bool_] = np.any(rows != 0, axis=-1)  # (time, batch); NaN is not zero
    if not per_row:
        nonzero = np.broadcast_to(np.any(nonzero, axis=1, keepdims=True), nonzero.shape)
    if nonzero.any():
        out[nonzero] = weights.accumulate(out[nonzero],
                                          batch_quantize_floats(rows[nonzero], asymmetric))
    return out


def _hybrid_recurrence(data: RnnHybridData, terms: NDArray[np.float32], h: NDArray[np.float32],
                       reverse: bool = False, per_row: bool = False) -> NDArray[np.float32]:
    """:func:`_float_recurrence` for the hybrid ``RnnBatchStep``: per step
    ``out = act(terms[t] + fl(Σ q_h·R)·(s_h·s_R))`` with ``h`` quantized per row (skipped when
    all zero, see :func:`_hybrid_product`)."""
    outputs = np.empty_like(terms)
    steps = range(terms.shape[0])
    for t in reversed(steps) if reverse else steps:  # the recurrence is sequential in time
        acc = _hybrid_product(data.recurrent_weights, h[None], terms[t][None], data.asymmetric,
                              per_row)[0]
        h[...] = apply_activation_eigen(acc, data.activation)
        outputs[t] = h
    return outputs


def _rnn_hybrid_steps(data: RnnHybridData, xs: NDArray[np.float32], state: NDArray[np.float32]
                      ) -> NDArray[np.float32]:
    """The hybrid ``RnnBatchStep`` over ``xs`` (time, batch, input); updates ``state`` in place.

    ``out = bias; out += fl(Σ q_x·W)·(s_x·s_W); out += fl(Σ q_h·R)·(s_h·s_R);
    out = act(out)`` in float32, every row quantized on its own -- so the input terms of all
    steps are computed at once.  LiteRT skips a product whose float operand is all zeros
    (``IsZeroVector``) per call -- one step's batch rows, or one row of a batch-major sequence
    (unidirectional_sequence_rnn.cc EvalHybrid) -- which changes nothing but the sign of a
    zero; it is skipped here too.
    """
    per_row = data.sequence and not data.time_major
    input_terms = _hybrid_product(data.input_weights, xs, data.bias, data.asymmetric, per_row)
    return _hybrid_recurrence(data, input_terms, state_view(state, (data.batch, data.units)),
                              per_row=per_row)


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


# =============================================================================================
# BIDIRECTIONAL_SEQUENCE_RNN (float32 and hybrid; LiteRT only)
# =============================================================================================
BIRNN_FORWARD = _CellSlots(1, 2, 3, 4, "forward ")
BIRNN_BACKWARD = _CellSlots(5, 6, 7, 8, "backward ")
BIRNN_AUX_INPUT, BIRNN_FW_AUX_WEIGHTS, BIRNN_BW_AUX_WEIGHTS = 9, 10, 11


@dataclass(frozen=True, slots=True)
class BidirectionalRnnData:
    """bidirectional_sequence_rnn.cc: two :class:`RnnData` (or hybrid) cells, an optional aux
    input with its own weights per cell, one or two outputs."""

    forward: RnnData | RnnHybridData
    backward: RnnData | RnnHybridData
    # aux input 9 with aux weights 10, 11 ("stacking" mode): a third product in every step,
    # ``out += Waux·aux`` after ``W·x``.  Float32 arrays, or HybridWeights in a hybrid op.
    fw_aux_weights: NDArray[np.float32] | HybridWeights | None
    bw_aux_weights: NDArray[np.float32] | HybridWeights | None
    # (time, batch, n_aux) flat indices into the aux input: where LiteRT reads each step's
    # aux rows (see prepare_bidirectional_sequence_rnn).
    aux_index: NDArray[np.intp] | None
    # aux input without aux weights ("non-stacking" mode) feeds the backward cell instead of the
    # input -- in a time-major op only: the batch-major loops read the input regardless.
    backward_reads_aux_input: bool
    merge_outputs: bool
    time_major: bool
    passes: int  # hybrid time-major: EvalHybrid runs the whole sequence max_time times


def _aux_index(ctx: OpContext, time_major: bool, hybrid: bool, n_time: int, n_batch: int,
               n_input: int, n_aux: int) -> NDArray[np.intp]:
    """Where LiteRT's loops read the aux rows of step ``s``, batch row ``b``, in the flat aux
    input [.., .., n_aux]: EvalFloat's time-major loop and both EvalHybrid loops advance the aux
    pointer by the *input's* row length (``s * input_size * batch_size``,
    ``b * input_size * max_time + s * input_size``); only EvalFloat's batch-major loop uses
    ``aux_input_size``.  The same rows whenever ``n_aux == n_input``; with a longer aux row
    they are other rows, read here as LiteRT reads them; with a shorter one LiteRT reads past
    the buffer, which is refused."""
    s = np.arange(n_time)[:, None, None]
    b = np.arange(n_batch)[None, :, None]
    a = np.arange(n_aux)[None, None, :]
    if time_major:
        index = s * (n_input * n_batch) + b * n_aux + a
    elif hybrid:
        index = b * (n_input * n_time) + s * n_input + a
    else:
        index = b * (n_aux * n_time) + s * n_aux + a
    size = n_time * n_batch * n_aux
    if index.size and int(index.max()) >= size:
        ctx.unsupported(f"aux input rows of {n_aux} values, shorter than the input's {n_input}: "
                        f"LiteRT's {'time-major' if time_major else 'hybrid batch-major'} loop "
                        "steps through the aux input by the input's row length and reads past "
                        "its buffer")
    out: NDArray[np.intp] = np.ascontiguousarray(index, dtype=np.intp)
    return out


def _aux_weights(ctx: OpContext, slot: int, what: str, units: int, n_aux: int, hybrid: bool,
                 asymmetric: bool) -> NDArray[np.float32] | HybridWeights:
    shape = ctx.input_shape(slot)
    if tuple(shape) != (units, n_aux):
        ctx.fail(f"input {slot} ({what}) {list(shape)} must be [{units}, {n_aux}]")
    if hybrid:
        return HybridWeights.of(ctx, slot, what, asymmetric)
    t = ctx.require_input(slot)
    if t.type != T.FLOAT32:
        ctx.fail(f"input {slot} ({what}) is {t.type_name}; the weights are FLOAT32")
    data = ctx.const(slot)
    if data is None:
        ctx.unsupported(f"input {slot} ({what}) computed at run time is not supported")
    return np.ascontiguousarray(data, dtype=F32)


def bidirectional_arity(ctx: OpContext, inputs: int) -> bool:
    """The input count of a bidirectional sequence op (BIDIRECTIONAL_SEQUENCE_RNN: 12,
    BIDIRECTIONAL_SEQUENCE_LSTM: 48) and its outputs: one with ``merge_outputs`` (returned),
    else two -- both Prepares check the same way."""
    merge = bool(ctx.options.get("merge_outputs", False))
    if ctx.num_inputs != inputs:
        ctx.fail(f"takes {inputs} inputs, got {ctx.num_inputs}")
    if ctx.num_outputs != (1 if merge else 2):
        ctx.fail(f"takes {1 if merge else 2} outputs with merge_outputs={merge}, got "
                 f"{ctx.num_outputs}")
    return merge


def prepare_bidirectional_sequence_rnn(ctx: OpContext) -> BidirectionalRnnData:
    """bidirectional_sequence_rnn.cc Prepare: 12 inputs -- input 0 [batch, time, input] (or
    time-major), the forward cell's weights, recurrent weights, bias and hidden-state variable
    (1-4), the backward cell's (5-8), an optional aux input (9) and optional aux weights of
    each cell (10, 11, both or neither); 1 output with ``merge_outputs`` ([.., .., fw + bw
    units]), else 2.  The two cells may have different sizes."""
    merge = bidirectional_arity(ctx, 12)
    hybrid = _weights_kind(ctx)
    w_type = ctx.require_input(1).type
    for slot in (BIRNN_BACKWARD.weights, BIRNN_FW_AUX_WEIGHTS, BIRNN_BW_AUX_WEIGHTS):
        t = ctx.input(slot)
        if t is not None and t.type != w_type:  # Eval reads all of them as input 1's type
            ctx.fail(f"input {slot} is {t.type_name}; the weights must all be "
                     f"{ctx.require_input(1).type_name}")
    for j in range(ctx.num_outputs):
        if ctx.output(j).type != T.FLOAT32:
            ctx.fail(f"output {j} must be FLOAT32, not {ctx.output(j).type_name}")
    in_shape = ctx.input_shape(0)
    if len(in_shape) != 3:
        ctx.fail(f"input must be 3-D [batch, time, input] (or time-major), got {list(in_shape)}")
    time_major = bool(ctx.options.get("time_major", False))
    n_time, n_batch = (in_shape[0], in_shape[1]) if time_major else (in_shape[1], in_shape[0])
    n_input = in_shape[2]
    activation = str(ctx.options.get("fused_activation_function", "NONE"))
    check_activation_float(ctx, activation)
    asymmetric = bool(ctx.options.get("asymmetric_quantize_inputs", False))
    fw, bw = (_rnn_cell(ctx, sl, n_input, n_batch, hybrid=hybrid, activation=activation,
                        asymmetric=asymmetric, time_major=time_major, sequence=True)
              for sl in (BIRNN_FORWARD, BIRNN_BACKWARD))

    aux = ctx.input(BIRNN_AUX_INPUT)
    has_aux_weights = ctx.input(BIRNN_FW_AUX_WEIGHTS) is not None
    if has_aux_weights != (ctx.input(BIRNN_BW_AUX_WEIGHTS) is not None):
        ctx.fail("the aux weights of the two cells (inputs 10, 11) must be both present or "
                 "both absent")
    if has_aux_weights and aux is None:
        ctx.fail("aux weights (inputs 10, 11) need the aux input (input 9)")
    if aux is not None and aux.type != T.FLOAT32:
        ctx.fail(f"aux input must be FLOAT32, not {aux.type_name}")
    aux_shape = ctx.input_shape(BIRNN_AUX_INPUT) if aux is not None else None
    fw_aux = bw_aux = None
    aux_index = None
    if aux_shape is not None and has_aux_weights:
        if len(aux_shape) != 3 or tuple(aux_shape[:2]) != tuple(in_shape[:2]):
            ctx.fail(f"aux input {list(aux_shape)} must share the input's first two "
                     f"dimensions {list(in_shape[:2])}")
        n_aux = aux_shape[2]
        fw_aux = _aux_weights(ctx, BIRNN_FW_AUX_WEIGHTS, "forward aux weights", fw.units,
                              n_aux, hybrid, asymmetric)
        bw_aux = _aux_weights(ctx, BIRNN_BW_AUX_WEIGHTS, "backward aux weights", bw.units,
                              n_aux, hybrid, asymmetric)
        aux_index = _aux_index(ctx, time_major, hybrid, n_time, n_batch, n_input, n_aux)
    elif aux_shape is not None and time_major and tuple(aux_shape) != tuple(in_shape):
        # Prepare checks nothing of it; Eval reads it with the input's geometry.
        ctx.unsupported(f"aux input {list(aux_shape)} without aux weights feeds the backward "
                        f"cell, which LiteRT reads with the input's shape {list(in_shape)}")

    if hybrid and not asymmetric and merge and time_major and n_batch > 1:
        # RnnBatchStep's per-row loop (the merged output's rows are not contiguous) passes
        # ``zero_points + k``: with symmetric quantization zero_points is null, so rows k >= 1
        # hand the SSE product a bogus non-null input offset, and it writes row sums through
        # the null row-sum pointer (measured: a segmentation fault).
        ctx.unsupported("hybrid with symmetric input quantization, merge_outputs, time-major "
                        "input and more than one batch row: LiteRT crashes on it (its per-row "
                        "loop passes null + k as the zero points and writes row sums through a "
                        "null pointer)")
    lead = tuple(in_shape[:2])
    ctx.set_output_shape(0, (*lead, fw.units + (bw.units if merge else 0)))
    if not merge:
        ctx.set_output_shape(1, (*lead, bw.units))
    return BidirectionalRnnData(
        fw, bw, fw_aux, bw_aux, aux_index,
        backward_reads_aux_input=aux is not None and not has_aux_weights and time_major,
        merge_outputs=merge, time_major=time_major,
        passes=n_time if hybrid and time_major else 1)


def _birnn_pass(cell: RnnData | RnnHybridData,
                aux_weights: NDArray[np.float32] | HybridWeights | None,
                xs: NDArray[np.float32], aux: NDArray[np.float32] | None,
                state: NDArray[np.float32], reverse: bool, passes: int) -> NDArray[np.float32]:
    """One direction of bidirectional_sequence_rnn.cc over ``xs`` (time, batch, input):
    ``RnnBatchStep`` with the aux product -- ``out = bias; out += W·x; out += Waux·aux;
    out += R·h; out = act(out); h = out`` (kernel_utils.cc) -- from the last step to the first
    when ``reverse``, ``passes`` times over; ``state`` is updated in place."""
    h = state_view(state, (cell.batch, cell.units))
    if isinstance(cell, RnnHybridData):
        per_row = not cell.time_major
        terms = _hybrid_product(cell.input_weights, xs, cell.bias, cell.asymmetric, per_row)
        if aux is not None:
            assert isinstance(aux_weights, HybridWeights)
            terms = _hybrid_product(aux_weights, aux, terms, cell.asymmetric, per_row)
        for _ in range(passes - 1):
            _hybrid_recurrence(cell, terms, h, reverse, per_row)
        return _hybrid_recurrence(cell, terms, h, reverse, per_row)
    terms = neon_matrix_batch_vector_multiply_accumulate(cell.input_weights, xs, cell.bias)
    if aux is not None:
        assert isinstance(aux_weights, np.ndarray)
        terms = neon_matrix_batch_vector_multiply_accumulate(aux_weights, aux, terms)
    for _ in range(passes - 1):
        _float_recurrence(cell, terms, h, reverse)
    return _float_recurrence(cell, terms, h, reverse)


@register(Op.BIDIRECTIONAL_SEQUENCE_RNN, T.FLOAT32, prepare=prepare_bidirectional_sequence_rnn,
          emulations=TFLITE_ONLY)
def bidirectional_sequence_rnn_float32(data: BidirectionalRnnData, x: NDArray[np.float32],
                                       *inputs: np.ndarray | None
                                       ) -> NDArray[np.float32] | tuple[np.ndarray, np.ndarray]:
    """bidirectional_sequence_rnn.cc EvalFloat / EvalHybrid: the forward cell over the sequence,
    then the backward cell from the last step to the first, each with its own hidden-state
    variable (inputs 4 and 8), updated in place.

    What LiteRT's loops do, reproduced: the batch rows of a time-major step go through one
    ``RnnBatchStep`` (a batch-major sequence: one row at a time -- the same float products per
    row, but ``IsZeroVector`` then looks at one row); the hybrid time-major loop runs both cells
    over the whole sequence ``max_time`` times (an outer ``for t`` around the step loops), so
    the states and outputs are those of the last pass; the aux rows are read where
    :func:`_aux_index` says; without aux weights the aux input replaces the backward cell's
    input only in a time-major op."""
    fw_state, bw_state = inputs[BIRNN_FORWARD.state - 1], inputs[BIRNN_BACKWARD.state - 1]
    assert fw_state is not None and bw_state is not None
    xs = np.ascontiguousarray(x if data.time_major else x.transpose(1, 0, 2), dtype=F32)
    aux_in = inputs[BIRNN_AUX_INPUT - 1]
    aux = None
    if data.aux_index is not None:
        assert aux_in is not None
        aux = np.ascontiguousarray(aux_in, dtype=F32).reshape(-1)[data.aux_index]
    bw_xs = xs
    if data.backward_reads_aux_input:
        assert aux_in is not None
        bw_xs = np.ascontiguousarray(aux_in, dtype=F32)
    fw_out = _birnn_pass(data.forward, data.fw_aux_weights, xs, aux, fw_state, False,
                         data.passes)
    bw_out = _birnn_pass(data.backward, data.bw_aux_weights, bw_xs, aux, bw_state, True,
                         data.passes)

    def layout(y: NDArray[np.float32]) -> NDArray[np.float32]:
        return y if data.time_major else np.ascontiguousarray(y.transpose(1, 0, 2))

    if data.merge_outputs:
        return layout(np.concatenate([fw_out, bw_out], axis=-1))
    return layout(fw_out), layout(bw_out)
