"""What each TFLite Micro kernel does to the arena in ``init`` and ``Prepare``, and what it rejects.

For every operator, :func:`kernel_effects` returns, in the order TFLM does them:

- the ``init`` persistent allocations (``context->AllocatePersistentBuffer``, alignment 16);
- the ``Prepare`` events: temporary ``TfLiteTensor`` structs the kernel takes
  (``AllocateTempInputTensor``/``AllocateTempOutputTensor``: they stay in the temp section until
  ``FinishPrepareNodeAllocations`` resets it, so they add up within one Prepare), persistent
  buffers, and scratch requests (``RequestScratchBufferInArena``);
- a rejection, when the kernel's Prepare returns an error (the ``TF_LITE_ENSURE*`` checks of
  ``tensorflow/lite/micro/kernels/<op>*.cc``), and hazards (Prepare aborting, Eval failing).

Reference kernels are what the wheel runs. ``kernels="cmsis-nn"`` replaces the scratch and init
sizes of the ops CMSIS-NN implements (``kernels/cmsis_nn/*.cc`` with CMSIS-NN's
``arm_*_get_buffer_size*`` for a core with the DSP extension, Cortex-M4/M7/M33); those rules are
read from source and not checked against a running build.

Kernels whose Prepare is not modelled in detail take a temp tensor for each input and output and
allocate nothing else; their dtype checks are the ones listed here (many TFLM kernels check
dtypes only in Eval).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_ref.errors import ModelValidationError
from tflite_ref.micro import ops as ops_table
from tflite_ref.micro.targets import Target
from tflite_ref.model.model import Model, Operator, Subgraph, Tensor

F32, F16, I32, U8, I64, BOOL, I16, I8, F64, U32, U16, U64, I4 = (
    "FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "BOOL", "INT16", "INT8", "FLOAT64",
    "UINT32", "UINT16", "UINT64", "INT4")

#: ``TfLiteTypeSizeOf`` (memory_helpers.cc): INT4 takes one byte per element in the arena.
TYPE_SIZES = {"FLOAT16": 2, "BFLOAT16": 2, "FLOAT32": 4, "FLOAT64": 8, "INT16": 2, "UINT16": 2,
              "INT32": 4, "UINT32": 4, "UINT8": 1, "INT8": 1, "INT64": 8, "UINT64": 8,
              "BOOL": 1, "RESOURCE": 4, "COMPLEX64": 8, "COMPLEX128": 16, "INT4": 1}


@dataclass(frozen=True, slots=True)
class Event:
    """One Prepare-time arena event: ``temp`` (a TfLiteTensor for a tensor index), ``persist``
    (bytes, alignment 16) or ``scratch`` (bytes)."""

    kind: str
    value: int


@dataclass(slots=True)
class KernelEffects:
    init: list[int] = field(default_factory=list)
    prepare: list[Event] = field(default_factory=list)
    reject: str | None = None
    hazards: list[str] = field(default_factory=list)  # crash at Prepare or failure at Eval
    aborts: bool = False  # the hazard kills the process during AllocateTensors
    notes: list[str] = field(default_factory=list)

    @property
    def scratch(self) -> list[int]:
        return [e.value for e in self.prepare if e.kind == "scratch"]

    @property
    def persistent(self) -> list[int]:
        return [e.value for e in self.prepare if e.kind == "persist"]


class _Reject(Exception):
    pass


class KernelContext:
    """One operator as a kernel's Prepare sees it, recording what the kernel does."""

    def __init__(self, model: Model, sg: Subgraph, op: Operator, target: Target,
                 kernels: str) -> None:
        self.model, self.sg, self.op, self.target, self.kernels = model, sg, op, target, kernels
        self.fx = KernelEffects()

    # tensors
    def input(self, i: int) -> Tensor | None:
        if i >= len(self.op.inputs) or self.op.inputs[i] < 0:
            return None
        return self.sg.tensors[self.op.inputs[i]]

    def output(self, j: int) -> Tensor | None:
        if j >= len(self.op.outputs) or self.op.outputs[j] < 0:
            return None
        return self.sg.tensors[self.op.outputs[j]]

    def type(self, t: Tensor | None) -> str:
        return "NONE" if t is None else t.type_name

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.op.options)

    @property
    def column(self) -> str:
        return self.target.column

    # events
    def temp_in(self, *slots: int) -> None:
        for i in slots:
            if i < len(self.op.inputs) and self.op.inputs[i] >= 0:
                self.fx.prepare.append(Event("temp", self.op.inputs[i]))

    def temp_out(self, *slots: int) -> None:
        for j in slots:
            if j < len(self.op.outputs) and self.op.outputs[j] >= 0:
                self.fx.prepare.append(Event("temp", self.op.outputs[j]))

    def temps_all(self) -> None:
        self.temp_in(*range(len(self.op.inputs)))
        self.temp_out(*range(len(self.op.outputs)))

    def persist(self, nbytes: int) -> None:
        self.fx.prepare.append(Event("persist", int(nbytes)))

    def scratch(self, nbytes: int) -> None:
        self.fx.prepare.append(Event("scratch", int(nbytes)))

    # verdicts
    def reject(self, message: str) -> None:
        self.fx.reject = message
        raise _Reject(message)

    def ensure(self, condition: bool, message: str) -> None:
        if not condition:
            self.reject(message)

    def hazard(self, message: str, aborts: bool = False) -> None:
        self.fx.hazards.append(message)
        self.fx.aborts = self.fx.aborts or aborts


PrepareModel = Callable[[KernelContext], None]
_MODELS: dict[str, PrepareModel] = {}


def _model(*names: str) -> Callable[[PrepareModel], PrepareModel]:
    def deco(fn: PrepareModel) -> PrepareModel:
        for n in names:
            _MODELS[n] = fn
        return fn
    return deco


def _prod(shape: tuple[int, ...]) -> int:
    return math.prod(shape) if shape else 1


def _scales(t: Tensor | None) -> int:
    q = t.quantization if t is not None else None
    return 0 if q is None else int(q.scale.size)


class _RankTooSmall(Exception):
    """(tensor label, rank, dimension): a Prepare would index a tensor's dims past its rank."""


def _dim(t: Tensor | None, i: int, default: int = 1) -> int:
    if t is None or not t.shape:
        return default
    if not -len(t.shape) <= i < len(t.shape):
        raise _RankTooSmall(f"tensor {t.index} {t.name!r}", len(t.shape), i)
    return t.shape[i]


# -- convolutions and fully connected -------------------------------------------------------------
def _conv_types(k: KernelContext, input_: Tensor | None, filt: Tensor | None) -> None:
    it, ft = k.type(input_), k.type(filt)
    ok = (it == F32 and ft == F32) or (it == I16 and ft == I8) or (it == I8 and ft in (I4, I8))
    k.ensure(ok, f"Hybrid models are not supported on TFLite Micro. (input {it}, "
                 f"filter {ft}; conv_common.cc)")


@_model("CONV_2D")
def _conv(k: KernelContext) -> None:
    """``ConvPrepare`` (conv_common.cc): output/input/filter temps, 2 × 4·C per-channel arrays
    (always, float too), then ``CalculateOpDataConv`` takes input/filter/bias/output again."""
    inp, filt, out = k.input(0), k.input(1), k.output(0)
    k.temp_out(0)
    k.temp_in(0, 1)
    k.ensure(k.type(inp) == k.type(out), f"input type {k.type(inp)} != output type "
                                         f"{k.type(out)} (conv_common.cc)")
    _conv_types(k, inp, filt)
    channels = _dim(filt, 0)
    if k.kernels == "cmsis-nn" and k.type(inp) not in (I8, I16):
        pass  # CMSIS-NN conv allocates the per-channel arrays for int8/int16 only
    else:
        k.persist(4 * channels)
        k.persist(4 * channels)
    _conv_common_tail(k, inp, filt, out, channels)
    if k.kernels == "cmsis-nn":
        _cmsis_conv_scratch(k)


def _conv_common_tail(k: KernelContext, inp: Tensor | None, filt: Tensor | None,
                      out: Tensor | None, channels: int) -> None:
    """What ``ConvPrepare`` and ``DepthwiseConvPrepare`` (conv_common.cc,
    depthwise_conv_common.cc) do alike after the per-channel arrays: check the filter's scale
    count, take the input/filter/bias and output as temporaries for the quantization
    parameters, and (INT4 filter) the unpacked-filter scratch."""
    if k.type(inp) in (I8, I16):
        k.ensure(_scales(filt) in (1, channels),
                 f"filter has {_scales(filt)} scales for {channels} output channels")
    k.temp_in(0, 1, 2)
    k.temp_out(0)
    _requantize_hazard(k, inp, filt, out)
    if k.type(filt) == I4:
        k.scratch(_prod(filt.shape if filt else ()))


@_model("DEPTHWISE_CONV_2D")
def _depthwise(k: KernelContext) -> None:
    """``DepthwiseConvPrepare`` (depthwise_conv_common.cc): the 2 × 4·C arrays (C = filter
    dim 3) come before the hybrid check."""
    inp, filt, out = k.input(0), k.input(1), k.output(0)
    k.temp_out(0)
    k.temp_in(0, 1)
    channels = _dim(filt, 3)
    if not (k.kernels == "cmsis-nn" and k.type(inp) not in (I8, I16)):
        k.persist(4 * channels)
        k.persist(4 * channels)
    k.ensure(k.type(inp) == k.type(out), f"input type {k.type(inp)} != output type "
                                         f"{k.type(out)} (depthwise_conv_common.cc)")
    _conv_types(k, inp, filt)
    _conv_common_tail(k, inp, filt, out, channels)
    if k.kernels == "cmsis-nn":
        _cmsis_depthwise_scratch(k)


@_model("TRANSPOSE_CONV")
def _transpose_conv(k: KernelContext) -> None:
    """transpose_conv.cc ``TransposeConvPrepare``: scratch for int8/int16 accumulators, then
    2 × 4·C per-channel arrays."""
    out, filt, inp, bias = k.output(0), k.input(1), k.input(2), k.input(3)
    k.temp_out(0)
    k.temp_in(2, 1)
    _conv_types(k, inp, filt)
    k.ensure(k.type(inp) == k.type(out), "input and output types differ (transpose_conv.cc)")
    n_out = _prod(out.shape if out else ())
    if k.type(inp) == I8:
        k.scratch(4 * n_out)
    elif k.type(inp) == I16:
        if bias is not None and k.type(bias) == I16:
            k.scratch(8 * _prod(bias.shape))
        k.scratch(8 * n_out)
    channels = _dim(filt, 0)
    k.persist(4 * channels)
    k.persist(4 * channels)
    k.temp_in(2, 1, 3)
    k.temp_out(0)


@_model("FULLY_CONNECTED")
def _fully_connected(k: KernelContext) -> None:
    """``FullyConnectedPrepare`` (fully_connected.cc) + ``CalculateOpDataFullyConnected``
    (fully_connected_common.cc): per-channel arrays only for a non-float input with a
    per-channel filter."""
    inp, filt, out = k.input(0), k.input(1), k.output(0)
    k.temp_in(0, 1, 2)
    k.temp_out(0)
    k.ensure(k.type(inp) == k.type(out), f"input type {k.type(inp)} != output type "
                                         f"{k.type(out)} (fully_connected.cc)")
    it, ft = k.type(inp), k.type(filt)
    if (it == F32 and ft != F32) or (it == I8 and ft not in (I8, I4)) or (it == I16 and ft != I8):
        k.reject(f"Input type: {it} with filter type: {ft} not supported. (fully_connected.cc; "
                 "dynamic-range 'hybrid' weights need a fully integer model)")
    if it not in (F32, I8, I16):
        k.hazard(f"FULLY_CONNECTED with {it} input: Eval supports FLOAT32, INT8, INT16 only")
    if ft == I4:
        k.scratch(_prod(filt.shape if filt else ()))
    if it != F32 and _scales(filt) > 1:
        k.persist(4 * _dim(filt, 0))
        k.persist(4 * _dim(filt, 0))
    _requantize_hazard(k, inp, filt, out)
    if k.kernels == "cmsis-nn":
        pass  # s8 on DSP cores: arm_fully_connected_s8_get_buffer_size() == 0


def _requantize_hazard(k: KernelContext, inp: Tensor | None, filt: Tensor | None,
                       out: Tensor | None) -> None:
    del k, inp, filt, out  # QuantizeMultiplier accepts any finite scale; nothing aborts here


# -- softmax --------------------------------------------------------------------------------------
@_model("SOFTMAX")
def _softmax(k: KernelContext) -> None:
    """``SoftmaxPrepare``/``CalculateSoftmaxParams`` (softmax_common.cc)."""
    inp, out = k.input(0), k.output(0)
    k.temp_in(0)
    k.temp_out(0)
    it, ot = k.type(inp), k.type(out)
    if it == I16:  # two 513-entry int16 LUTs
        k.persist(2 * 513)
        k.persist(2 * 513)
    if ot == I16:
        k.ensure(it in (I8, I16), f"SOFTMAX {it} -> INT16 is not supported (softmax_common.cc)")
    else:
        k.ensure(it == ot, f"SOFTMAX input {it} and output {ot} differ (softmax_common.cc)")
    if it == I8:
        beta = float(k.options.get("beta", 1.0))
        scale = float(inp.quantization.scale[0]) if inp and inp.quantization and \
            inp.quantization.scale.size else 0.0
        from tflite_ref.quant.multipliers import preprocess_softmax_scaling

        try:
            preprocess_softmax_scaling(beta, scale, 5)
        except ModelValidationError:
            k.hazard(f"SOFTMAX int8: input scale {scale:g} × beta {beta:g} × 2^26 <= 1, so "
                     "PreprocessSoftmaxScaling's QuantizeMultiplierGreaterThanOne fails its "
                     "TFLITE_CHECK and the process aborts (SIGABRT) in AllocateTensors",
                     aborts=True)
    elif it not in (I16, F32):
        k.reject(f"SOFTMAX with {it} input is not supported (softmax_common.cc)")
    if k.kernels == "cmsis-nn":
        pass  # arm_softmax_s8/s16 need no scratch


# -- element-wise and the rest --------------------------------------------------------------------
@_model("QUANTIZE")
def _quantize(k: KernelContext) -> None:
    """quantize_common.cc ``PrepareQuantizeReference``."""
    inp, out = k.input(0), k.output(0)
    k.temp_in(0)
    k.temp_out(0)
    k.ensure(_scales(out) == 1, "QUANTIZE output must be per-tensor quantized (quantize_common.cc)")
    k.ensure(k.type(inp) in (F32, I32, I16, I8, U8),
             f"QUANTIZE from {k.type(inp)} is not supported (quantize_common.cc)")
    k.ensure(k.type(out) in (I8, I16, I32, U8),
             f"QUANTIZE to {k.type(out)} is not supported (quantize_common.cc)")


@_model("DEQUANTIZE")
def _dequantize(k: KernelContext) -> None:
    """dequantize_common.cc ``DequantizePrepare``: int8/int16/uint8 → float32 only."""
    inp, out = k.input(0), k.output(0)
    k.temp_in(0)
    k.temp_out(0)
    if k.type(inp) == F16:
        k.reject("DEQUANTIZE from FLOAT16 is not supported (dequantize_common.cc): float16 "
                 "weights need float32 or integer quantization for TFLM")
    k.ensure(k.type(inp) in (I8, I16, U8),
             f"DEQUANTIZE from {k.type(inp)} is not supported (dequantize_common.cc)")
    k.ensure(k.type(out) == F32, f"DEQUANTIZE to {k.type(out)} is not supported")


@_model("SVDF")
def _svdf(k: KernelContext) -> None:
    """svdf_common.cc ``PrepareSvdf``: int8 (weights_time and state int16 or int8, bias int32,
    bias scale = state scale × weights_time scale within 1e-5) or all float; scratch for the
    filter products (and, int8, the unit sums)."""
    inp, wf, wt, bias, state = (k.input(i) for i in range(5))
    out = k.output(0)
    k.temp_in(0, 1, 2, 3, 4)
    rank = int(k.options.get("rank", 1))
    batch = _dim(inp, 0)
    num_filters = _dim(wf, 0)
    k.ensure(rank > 0 and num_filters % rank == 0, "SVDF num_filters % rank != 0")
    num_units = num_filters // rank
    it = k.type(inp)
    k.ensure(it in (F32, I8), f"SVDF with {it} input is not supported (svdf_common.cc)")
    k.ensure(inp is not None and len(inp.shape) == 2, "SVDF input must have rank 2")
    k.temp_out(0)
    k.ensure(state is not None and state.is_variable,
             "SVDF activation state must be a variable tensor (svdf_common.cc)")
    if it == I8:
        k.ensure(k.type(wf) == I8, "SVDF int8 needs int8 weights_feature (svdf_common.cc)")
        k.ensure(k.type(wt) in (I16, I8), "SVDF int8 needs int8/int16 weights_time")
        k.ensure(k.type(state) in (I16, I8), "SVDF int8 needs an int8/int16 state")
        k.ensure(bias is None or k.type(bias) == I32, "SVDF int8 needs an int32 bias")
        k.ensure(k.type(out) == I8, "SVDF int8 needs an int8 output")

        def scale(t: Tensor | None) -> float:
            q = t.quantization if t is not None else None
            return float(q.scale[0]) if q is not None and q.scale.size else 0.0

        product = float(np.float32(scale(state)) * np.float32(scale(wt)))
        k.ensure(abs(scale(bias) - product) < 1e-5,
                 f"SVDF bias scale {scale(bias):g} must equal state scale × weights_time scale "
                 f"({product:g}) within 1e-5 (svdf_common.cc)")
        k.scratch(4 * batch * num_filters)
        k.scratch(4 * batch * num_units)
    else:
        k.ensure(k.type(wf) == F32 and k.type(wt) == F32 and k.type(state) == F32 and
                 (bias is None or k.type(bias) == F32) and k.type(out) == F32,
                 "float SVDF needs float32 weights, state, bias and output (svdf_common.cc)")
        k.scratch(4 * batch * num_filters)


@_model("UNIDIRECTIONAL_SEQUENCE_LSTM")
def _lstm(k: KernelContext) -> None:
    """unidirectional_sequence_lstm.cc ``UnidirectionalSequenceLstmPrepare``: ``LstmTensors``
    takes all 24 inputs and the output as temps; 4 scratch buffers of batch × state (cell type)."""
    k.temps_all()
    cell = k.input(19)
    out = k.output(0)
    ct = k.type(cell)
    k.ensure(ct in (I16, F32), f"LSTM cell state {ct} is not supported (cell state must be "
                               "INT16 or FLOAT32; unidirectional_sequence_lstm.cc)")
    state_dim = _dim(cell, -1)
    time_major = bool(k.options.get("time_major", False))
    batch = _dim(out, 1 if time_major else 0) if out is not None and len(out.shape) == 3 else 1
    for _ in range(4):
        k.scratch(batch * state_dim * TYPE_SIZES.get(ct, 4))


@_model("MEAN", "SUM")
def _mean_sum(k: KernelContext) -> None:
    """reduce_common.cc ``PrepareMeanOrSumHelper``: a 4·|out| accumulator for int8/int16, then
    temp index arrays of 4·rank(in) and 4·num_axis."""
    inp, axis = k.input(0), k.input(1)
    k.temp_in(0, 1)
    k.temp_out(0)
    if k.type(inp) in (I8, I16):
        out = k.output(0)
        k.scratch(4 * _prod(out.shape if out else ()))
    k.scratch(4 * len(inp.shape if inp else ()))
    k.scratch(4 * _prod(axis.shape if axis else ()))


@_model("REDUCE_MAX", "REDUCE_MIN", "REDUCE_ALL")
def _reduce_max(k: KernelContext) -> None:
    """reduce_common.cc ``PrepareMaxHelper``."""
    inp, axis = k.input(0), k.input(1)
    k.temp_in(0, 1)
    k.temp_out(0)
    k.scratch(4 * len(inp.shape if inp else ()))
    k.scratch(4 * _prod(axis.shape if axis else ()))


@_model("MIRROR_PAD")
def _mirror_pad(k: KernelContext) -> None:
    inp = k.input(0)
    k.temps_all()
    rank = len(inp.shape if inp else ())
    k.scratch(4 * rank)
    k.scratch(4 * rank)


@_model("ADD_N")
def _add_n(k: KernelContext) -> None:
    """add_n.cc: int8 allocates its OpData in Prepare; both request an array of input pointers."""
    k.temps_all()
    n = len(k.op.inputs)
    if k.type(k.output(0)) == I8:
        k.scratch(k.target.pointer * n)
        k.persist(ops_table.PREPARE_OPDATA["ADD_N"][k.column])
    else:
        k.scratch(k.target.pointer * n)


@_model("CUMSUM", "LOG_SOFTMAX")
def _opdata_in_prepare(k: KernelContext) -> None:
    k.temps_all()
    k.persist(ops_table.PREPARE_OPDATA[k.op.name][k.column])


@_model("EMBEDDING_LOOKUP")
def _embedding_lookup(k: KernelContext) -> None:
    k.temps_all()
    k.persist(ops_table.PREPARE_OPDATA["EMBEDDING_LOOKUP"][k.column])
    _dims_copy(k)


def _dims_copy(k: KernelContext) -> None:
    """``CreateWritableTensorDimsWithCopy`` (kernel_util.cc): ``TfLiteIntArray`` of the output's
    rank, copied to the tail so Prepare may rewrite it."""
    out = k.output(0)
    k.persist(4 + 4 * len(out.shape if out else ()))


@_model("GATHER", "GATHER_ND", "L2_POOL_2D", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH")
def _with_dims_copy(k: KernelContext) -> None:
    k.temps_all()
    _dims_copy(k)


@_model("RESHAPE")
def _reshape(k: KernelContext) -> None:
    """reshape_common.cc ``ReshapeOutput``: only the *output tensor's* shape counts (the
    new_shape option and the shape input are not read); a -1 there is resolved into a copy of
    the dims in the tail."""
    inp, out = k.input(0), k.output(0)
    k.temp_in(0)
    k.temp_out(0)
    shape = list(out.shape) if out is not None else []
    if len(k.op.inputs) == 1 and shape == [0]:
        shape = []  # legacy scalar
    k.ensure(shape.count(-1) <= 1, "RESHAPE output shape has more than one -1")
    n_in = _prod(inp.shape) if inp is not None else 0
    known = _prod(tuple(d for d in shape if d != -1))
    if -1 in shape:
        _dims_copy(k)
        known *= n_in // known if known else 0
    k.ensure(k.type(inp) == k.type(out), f"RESHAPE input {k.type(inp)} != output {k.type(out)}")
    k.ensure(n_in == known, f"RESHAPE of {n_in} elements into {known} (reshape_common.cc)")


@_model("BATCH_MATMUL")
def _batch_matmul(k: KernelContext) -> None:
    """batch_matmul.cc ``BatchMatMulPrepare``: for int8/int16 a quantization struct (7 int32),
    then, per operand to transpose (LHS when ``adj_x``, RHS unless ``adj_y``), a persistent
    ``TfLiteEvalTensor``, its dims and a copy of its data
    (``AllocInitTransposeTensorFromTfLiteTensor``); then the output dims copy
    (batch_matmul_common.cc ``ReshapeOutputTensor``)."""
    lhs, rhs, out = k.input(0), k.input(1), k.output(0)
    k.temp_in(0, 1)
    k.temp_out(0)
    lt, rt = k.type(lhs), k.type(rhs)
    k.ensure(lt in (F32, I8, I16) and rt in (F32, I8, I16),
             f"BATCH_MATMUL of {lt} and {rt} is not supported (batch_matmul.cc)")
    k.ensure(lt == rt == k.type(out), f"BATCH_MATMUL types {lt}, {rt} -> {k.type(out)} differ")
    for t in (lhs, rhs):
        k.ensure(t is not None and 2 <= len(t.shape) <= 5, "BATCH_MATMUL operands need rank 2..5")
    if lt in (I8, I16):
        k.persist(7 * 4)
    eval_tensor = k.target.size("TfLiteEvalTensor")
    for t, transpose in ((lhs, bool(k.options.get("adj_x", False))),
                         (rhs, not bool(k.options.get("adj_y", False)))):
        if transpose and t is not None:
            k.persist(eval_tensor)
            k.persist(4 + 4 * len(t.shape))
            k.persist(_prod(t.shape) * TYPE_SIZES.get(k.type(t), 4))
    _dims_copy(k)


@_model("ADD", "SUB")
def _add_sub(k: KernelContext) -> None:
    """add_common.cc / sub_common.cc: int16/int8 need scales; Eval handles f32/i32/i8/i16."""
    k.temps_all()
    t = k.type(k.output(0))
    if t not in (F32, I32, I8, I16, I64):
        k.hazard(f"{k.op.name} {t}: Eval supports FLOAT32, INT32, INT8, INT16 only")


@_model("MUL")
def _mul(k: KernelContext) -> None:
    k.temps_all()
    k.ensure(k.type(k.input(0)) == k.type(k.input(1)),
             f"MUL of {k.type(k.input(0))} and {k.type(k.input(1))} (mul_common.cc)")
    t = k.type(k.output(0))
    if t not in (F32, I32, I8, I16, I64):
        k.hazard(f"MUL {t}: Eval supports FLOAT32, INT32, INT8, INT16, INT64 only")


@_model("AVERAGE_POOL_2D", "MAX_POOL_2D")
def _pool(k: KernelContext) -> None:
    k.temps_all()
    t = k.type(k.input(0))
    k.ensure(t in (F32, I8, I16), f"{k.op.name} with {t} input is not supported "
                                  "(pooling_common.cc)")
    if t in (I8, I16):
        (si, zi), (so, zo) = _params(k.input(0)), _params(k.output(0))
        k.ensure(abs(float(np.float32(si) - np.float32(so))) <= 1e-6 and zi == zo,
                 f"{k.op.name} needs the same input and output quantization (pooling_common.cc)")
    if k.kernels == "cmsis-nn" and k.op.name == "AVERAGE_POOL_2D" and t in (I8, I16):
        # arm_avgpool_s8/s16_get_buffer_size with the DSP extension: 4 × channels
        k.scratch(4 * _dim(k.input(0), -1))


@_model("LOGISTIC", "TANH")
def _logistic(k: KernelContext) -> None:
    k.temps_all()
    t = k.type(k.input(0))
    k.ensure(t in (F32, I8, I16), f"{k.op.name} with {t} input is not supported")
    k.ensure(t == k.type(k.output(0)), f"{k.op.name} input {t} != output "
                                       f"{k.type(k.output(0))}")


def _params(t: Tensor | None) -> tuple[float, int]:
    """``TfLiteTensor.params`` (scale, zero_point): the first entries, set only when the tensor
    has both scales and zero points (micro_allocator.cc InitializeTfLiteTensorFromFlatbuffer)."""
    q = t.quantization if t is not None else None
    if q is None or not q.scale.size or not q.zero_point.size:
        return 0.0, 0
    return float(q.scale[0]), int(q.zero_point[0])


@_model("CONCATENATION")
def _concatenation(k: KernelContext) -> None:
    """concatenation.cc ``Prepare``: no fused activation, one dtype, at most 10 inputs, rank <= 6,
    int8 inputs with exactly the output's scale and zero point, int16 with zero point 0."""
    n = len(k.op.inputs)
    k.temp_in(0)
    k.temp_out(0)
    it, out = k.type(k.input(0)), k.output(0)
    k.ensure(k.options.get("fused_activation_function", "NONE") in ("NONE", 0),
             "CONCATENATION with a fused activation is not supported (concatenation.cc)")
    k.ensure(it in (F32, I8, I16, I32, I64, BOOL),
             f"CONCATENATION of {it} is not supported (concatenation.cc)")
    k.ensure(k.type(out) == it, f"CONCATENATION output {k.type(out)} != input {it}")
    k.ensure(n <= 10, f"CONCATENATION of {n} inputs: TFLM takes at most 10 (kMaxInputNum)")
    for i in range(n):
        k.temp_in(i)
        t = k.input(i)
        k.ensure(k.type(t) == it, f"CONCATENATION input {i} is {k.type(t)}, input 0 is {it}")
        k.ensure(t is None or len(t.shape) <= 6, "CONCATENATION of rank > 6")
        if it == I8:
            k.ensure(_params(t) == _params(out),
                     f"CONCATENATION int8 input {i} has scale/zero point {_params(t)}, output "
                     f"{_params(out)}: TFLM's int8 kernel does not rescale (concatenation.cc)")
        elif it == I16:
            k.ensure(_params(t)[1] == 0, f"CONCATENATION int16 input {i} zero point must be 0")
    k.temp_out(0)


@_model("PAD", "PADV2")
def _pad(k: KernelContext) -> None:
    """pad_common.cc ``PadPrepare``: constant paddings, matching dtypes, int8 constant value in
    the output's quantization."""
    inp, pads, out = k.input(0), k.input(1), k.output(0)
    k.temps_all()
    k.ensure(k.type(inp) == k.type(out), f"{k.op.name} input {k.type(inp)} != output "
                                         f"{k.type(out)} (pad_common.cc)")
    k.ensure(pads is not None and pads.data is not None,
             "Non-constant >paddings< tensor is not supported (pad_common.cc)")
    cv = k.input(2) if k.op.name == "PADV2" else None
    if cv is not None:
        k.ensure(k.type(cv) == k.type(inp), "PADV2 constant value dtype differs from the input")
        if k.type(inp) == I8:
            k.ensure(_params(cv) == _params(out), "PADV2 int8 constant value must have the "
                                                  "output's scale and zero point")


@_model("TRANSPOSE")
def _transpose(k: KernelContext) -> None:
    k.temps_all()
    k.ensure(k.type(k.input(0)) == k.type(k.output(0)), "TRANSPOSE input and output types differ")
    perm = k.input(1)
    k.ensure(perm is not None and perm.data is not None,
             "Non-constant >perm< tensor is not supported (transpose_common.cc)")


@_model("STRIDED_SLICE")
def _strided_slice(k: KernelContext) -> None:
    k.temps_all()
    inp = k.input(0)
    k.ensure(inp is None or len(inp.shape) <= 5, "STRIDED_SLICE of rank > 5 (kMaxDim)")
    for i, name in ((1, "begin"), (2, "end"), (3, "strides")):
        t = k.input(i)
        k.ensure(t is not None and t.data is not None,
                 f"Non-constant >{name}< tensor is not supported (strided_slice_common.cc)")


@_model("DIV")
def _div(k: KernelContext) -> None:
    k.temps_all()
    a, b, out = k.type(k.input(0)), k.type(k.input(1)), k.type(k.output(0))
    k.ensure(a == b == out, f"DIV types {a}, {b} -> {out} must all match (div.cc)")
    if out not in (F32, I32, I8):
        k.hazard(f"DIV {out}: Eval supports FLOAT32, INT32, INT8 only (div.cc)")


def _default(k: KernelContext) -> None:
    k.temps_all()


# -- CMSIS-NN scratch (DSP extension; source only) ------------------------------------------------
def _cmsis_conv_scratch(k: KernelContext) -> None:
    """``arm_convolve_wrapper_s8_get_buffer_size`` (CMSIS-NN at TFLM's pinned commit)."""
    inp, filt = k.input(0), k.input(1)
    if k.type(inp) == I16:
        size = 2 * 2 * _dim(inp, 3) * _dim(filt, 2) * _dim(filt, 1)
    elif k.type(inp) == I8:
        o = k.options
        fw, fh, ic = _dim(filt, 2), _dim(filt, 1), _dim(inp, 3)
        one_by_one = (fw == 1 and fh == 1 and o.get("padding") == "VALID" and
                      o.get("dilation_w_factor", 1) == 1 and o.get("dilation_h_factor", 1) == 1
                      and ic == _dim(filt, 3))
        if one_by_one:
            size = 0  # arm_convolve_1x1_s8_fast: 4·in_c only with armclang >= 6.10.50 (gcc: 0)
        else:
            size = 2 * 2 * (-(-(fw * fh * ic) // 4) * 4)
    else:
        return
    if size > 0:
        k.scratch(size)


def _cmsis_depthwise_scratch(k: KernelContext) -> None:
    inp, filt, out = k.input(0), k.input(1), k.output(0)
    if k.type(inp) != I8:
        return
    o = k.options
    ic, oc = _dim(inp, 3), _dim(out, 3)
    fw, fh = _dim(filt, 2), _dim(filt, 1)
    if ic != oc or _dim(inp, 0) != 1 or o.get("dilation_w_factor", 1) != 1 or \
            o.get("dilation_h_factor", 1) != 1:
        return
    if fw == 3 and fh == 3:
        return  # arm_depthwise_conv_3x3_s8: no buffer (pad <= 1)
    size = 2 * ic * fw * fh
    if size > 0:
        k.scratch(size)


# -- custom ops -----------------------------------------------------------------------------------
def _custom_option(k: KernelContext, key: str, default: int = 0) -> int:
    d = k.op.custom_options_decoded
    if isinstance(d, dict) and key in d:
        return int(d[key])
    return default


def _kissfft_state(fft_length: int, elem: int, pointer: int) -> int:
    """``kiss_fftr_alloc`` memory (kissfft v130 as TFLM builds it, signal/src/rfft_*.cc):
    3 pointers + ``kiss_fft_alloc(nfft/2)`` + ``cpx * (3·nfft/4)`` with ``cpx = 2·sizeof(T)``."""
    nfft = fft_length // 2
    cpx = 2 * elem
    state = -(-(4 + 4 + 4 * 64 + cpx) // elem) * elem  # nfft, inverse, factors[64], twiddles[1]
    sub = state + cpx * (nfft - 1)
    return 3 * pointer + sub + cpx * (nfft * 3 // 2)


def _custom(k: KernelContext) -> None:
    code = k.op.custom_code or ""
    col = k.column
    nc = _custom_option(k, "num_channels")
    if code == "SignalFilterBank":  # filter_bank.cc: params, then uint64 work_area[nc + 1]
        k.fx.init += [64 if col == "host" else 36, 8 * (nc + 1)]
        k.temp_in(0)
        k.temp_in(1)
        k.temp_in(2)
        k.temp_in(3)
        k.temp_in(4)
        k.temp_in(5)
        k.temp_out(0)
    elif code == "SignalFilterBankSpectralSubtraction":  # params, then uint32 noise[nc]
        k.fx.init += [56 if col == "host" else 44, 4 * nc]
        k.temps_all()
    elif code == "SignalRfft":
        inp = k.input(0)
        elem = {I16: 2, I32: 4, F32: 4}.get(k.type(inp), 2)
        fft_length = _custom_option(k, "fft_length")
        k.fx.init += [48 if col == "host" else 32,
                      _kissfft_state(fft_length, elem, k.target.pointer)]
        k.temp_in(0)
        k.temp_out(0)
        k.scratch(fft_length * elem)
    elif code in ("SignalFftAutoScale", "SignalFilterBankSquareRoot"):
        k.temps_all()
    else:
        info = ops_table.CUSTOMS.get(code)
        if info is not None and info.init is not None:
            k.fx.init.append(info.init[col])
        else:
            k.fx.notes.append(f"custom op {code}: init/Prepare allocations not modelled")
        k.temps_all()


def kernel_effects(model: Model, sg: Subgraph, op: Operator, target: Target,
                   kernels: str = "reference") -> KernelEffects:
    """What ``op``'s kernel allocates in init and Prepare, and whether Prepare fails."""
    k = KernelContext(model, sg, op, target, kernels)
    info = ops_table.lookup(op.name, op.custom_code)
    try:
        if op.name == "CUSTOM":
            _custom(k)
        else:
            if info is not None and info.init is not None:
                size = info.init[target.column]
                if kernels == "cmsis-nn":
                    size = CMSIS_INIT.get(op.name, size)
                k.fx.init.append(size)
            _MODELS.get(op.name, _default)(k)
    except _Reject:
        pass
    except _RankTooSmall as exc:
        # TFLM's Prepare would read dims->data[i] past the rank: undefined behaviour in C++, so
        # there is no arena to predict; the verdict says why instead of guessing.
        k.fx.reject = (f"{exc.args[0]} has rank {exc.args[1]}, but TFLite Micro's Prepare reads "
                       f"its dimension {exc.args[2]} (out of bounds)")
    return k.fx


#: CMSIS-NN ``init`` OpData sizes (arm-gcc; shared doc §6.4, compiled, not run).
CMSIS_INIT = {"ADD": 60, "BATCH_MATMUL": 36, "CONV_2D": 60, "DEPTHWISE_CONV_2D": 60,
              "FULLY_CONNECTED": 72, "AVERAGE_POOL_2D": 36, "MAX_POOL_2D": 36, "SOFTMAX": 64,
              "SVDF": 40, "TRANSPOSE_CONV": 76, "UNIDIRECTIONAL_SEQUENCE_LSTM": 912}

__all__ = ["CMSIS_INIT", "TYPE_SIZES", "Event", "KernelEffects", "kernel_effects"]
