"""Kernels: RNN, UNIDIRECTIONAL_SEQUENCE_RNN (float32) and what the recurrent family shares.

The shared pieces (used by ``svdf.py`` and ``lstm.py`` too):

* :func:`state_view` -- recurrent ops keep their state in *variable* tensors.  The interpreter
  hands each variable to the kernel as a writable array that it keeps between invokes, so a
  kernel updates its state **in place** (``state[...] = new``); :func:`state_view` reshapes such
  an array without ever copying it, so an in-place write cannot silently go to a temporary.
* :func:`apply_activation_float` -- ``tensor_utils::ApplyActivationToVector`` (LiteRT
  ``tflite/kernels/internal/tensor_utils.h``) and TFLM ``ActivationValFloat``
  (``micro/kernels/activation_utils.h``): unlike a conv's fused activation these also apply
  TANH, SIGN_BIT and SIGMOID.
* :func:`exact_int_matmul` -- an integer matrix product through float64 BLAS, exact while every
  partial sum stays below 2^53 (int8/int16 operands: always).

RNN / UNIDIRECTIONAL_SEQUENCE_RNN (LiteRT ``tflite/kernels/basic_rnn.cc``,
``unidirectional_sequence_rnn.cc``, ``internal/kernel_utils.cc`` ``RnnBatchStep``; TFLM has
neither op): ``h_t = act(W·x_t + R·h_{t-1} + b)``; the output is ``h_t`` and ``h_t`` is
written back into the hidden-state variable.  Only the float kernels are implemented: the int8
weight variant of these ops is LiteRT's *hybrid* path (float activations, weights quantized on
the fly), refused with :class:`~tflite_ref.errors.UnsupportedOpError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tflite_ref.errors import InternalError
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import OpContext, register
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.model.model import Tensor

__all__ = [
    "ACTIVATIONS_FLOAT",
    "apply_activation_float",
    "exact_int_matmul",
    "per_tensor_quant",
    "state_view",
    "prepare_rnn",
    "prepare_unidirectional_sequence_rnn",
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
        return np.maximum(x, F32(0))
    if activation == "RELU_N1_TO_1":
        return np.clip(x, F32(-1), F32(1))
    if activation == "RELU6":
        return np.clip(x, F32(0), F32(6))
    if activation == "TANH":
        return np.tanh(x).astype(F32)
    if activation == "SIGN_BIT":  # std::signbit: 1 for negative numbers, -0.0 included
        return np.signbit(x).astype(F32)
    if activation == "SIGMOID":
        with np.errstate(over="ignore"):
            return (F32(1) / (F32(1) + np.exp(-x))).astype(F32)
    raise InternalError(f"unknown fused activation {activation!r}")  # prepare checked it


def check_activation_float(ctx: OpContext, activation: str) -> None:
    if activation not in ACTIVATIONS_FLOAT:
        ctx.unsupported(f"fused activation {activation} is not one TFLite applies here")


def state_view(state: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``state`` seen with ``shape``, sharing its memory (writes update the variable tensor)."""
    view = state.view()
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
    nothing otherwise and Prepare fails); ``False`` (basic RNN, which reads its state with
    ``GetInputSafe``): anything but a constant.
    """
    t = ctx.require_input(i)
    if variable and not t.is_variable:
        ctx.fail(f"input {i} ({what}) must be a variable tensor: the op keeps its state in it")
    if t.data is not None and not t.is_variable:
        ctx.fail(f"input {i} ({what}) is a constant; the op writes its state into it")
    return t


# =============================================================================================
# RNN and UNIDIRECTIONAL_SEQUENCE_RNN (float32)
# =============================================================================================
@dataclass(frozen=True, slots=True)
class RnnData:
    input_weights: NDArray[np.float32]  # (n_input, n_units): W transposed once for x @ W
    recurrent_weights: NDArray[np.float32]  # (n_units, n_units), transposed
    bias: NDArray[np.float32]
    activation: str
    time_major: bool  # sequence op only
    sequence: bool
    batch: int
    units: int


def _prepare_rnn_common(ctx: OpContext, sequence: bool) -> RnnData:
    x = ctx.require_input(0)
    w, r, b = (ctx.require_input(i) for i in (1, 2, 3))
    state_t = require_state(ctx, 4, "hidden state", variable=False)
    if w.type != T.FLOAT32 or x.type != T.FLOAT32:
        ctx.unsupported(f"{ctx.describe_types()}: only the float32 kernel is implemented (int8 "
                        "weights with float input are LiteRT's hybrid path)")
    for t, what in ((r, "recurrent weights"), (b, "bias"), (state_t, "hidden state")):
        if t.type != T.FLOAT32:
            ctx.fail(f"{what} must be FLOAT32 like the input weights, not {t.type_name}")
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
    return RnnData(np.ascontiguousarray(w_data.T, dtype=F32),
                   np.ascontiguousarray(r_data.T, dtype=F32), b_data.astype(F32), activation,
                   time_major, sequence, batch, units)


def prepare_rnn(ctx: OpContext) -> RnnData:
    """basic_rnn.cc Prepare: input [batch, input], weights [units, input], recurrent weights
    [units, units], bias [units], hidden state variable [batch, units]."""
    return _prepare_rnn_common(ctx, sequence=False)


def prepare_unidirectional_sequence_rnn(ctx: OpContext) -> RnnData:
    """unidirectional_sequence_rnn.cc Prepare: the same with a time axis (``time_major``)."""
    return _prepare_rnn_common(ctx, sequence=True)


def _rnn_steps(data: RnnData, xs: NDArray[np.float32], state: NDArray[np.float32]
               ) -> NDArray[np.float32]:
    """``RnnBatchStep`` over ``xs`` of shape (time, batch, input); updates ``state`` in place.

    kernel_utils.cc: ``out = bias; out += W·x; out += R·h; out = act(out); h = out``.  The input
    term of every step is one GEMM up front (it does not depend on the state).
    """
    input_terms = xs @ data.input_weights  # (time, batch, units)
    outputs = np.empty_like(input_terms)
    h = state_view(state, (data.batch, data.units))
    for t in range(xs.shape[0]):  # the recurrence is sequential in time
        acc = (data.bias + input_terms[t]) + h @ data.recurrent_weights
        h[...] = apply_activation_float(acc.astype(F32), data.activation)
        outputs[t] = h
    return outputs


@register(Op.RNN, T.FLOAT32, prepare=prepare_rnn, emulations=TFLITE_ONLY)
def rnn_float32(data: RnnData, x: NDArray[np.float32], w: np.ndarray, r: np.ndarray,
                b: np.ndarray, state: NDArray[np.float32]) -> NDArray[np.float32]:
    """basic_rnn.cc EvalFloat: one step; the hidden state variable is updated in place."""
    return _rnn_steps(data, x[None], state)[0]


@register(Op.UNIDIRECTIONAL_SEQUENCE_RNN, T.FLOAT32, prepare=prepare_unidirectional_sequence_rnn,
          emulations=TFLITE_ONLY)
def unidirectional_sequence_rnn_float32(data: RnnData, x: NDArray[np.float32], w: np.ndarray,
                                        r: np.ndarray, b: np.ndarray,
                                        state: NDArray[np.float32]) -> NDArray[np.float32]:
    """unidirectional_sequence_rnn.cc EvalFloat: every time step in order; the hidden state
    variable is updated in place and holds the last step's output afterwards."""
    xs = x if data.time_major else x.transpose(1, 0, 2)
    out = _rnn_steps(data, np.ascontiguousarray(xs, dtype=F32), state)
    return out if data.time_major else np.ascontiguousarray(out.transpose(1, 0, 2))
