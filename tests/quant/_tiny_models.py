"""A minimal private maker of single-operator .tflite models, and runners for them.

Written only for the quant tests (it does not use tflite_ref.model.writer, which is developed
separately): one subgraph, every tensor an activation (no constant buffers), one operator.  The
FlatBuffer is assembled with the ``tflite`` package's generated builder functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import flatbuffers
import numpy as np
import tflite

_TYPES = {np.dtype(np.int8): tflite.TensorType.INT8, np.dtype(np.int16): tflite.TensorType.INT16,
          np.dtype(np.uint8): tflite.TensorType.UINT8, np.dtype(np.float32): tflite.TensorType.FLOAT32}


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: type = np.int8
    scale: float | None = None
    zero_point: int = 0


def _int_vector(b: flatbuffers.Builder, start: Callable[[flatbuffers.Builder, int], None],
                values: Sequence[int], prepend: Callable[[int], None]) -> int:
    start(b, len(values))
    for v in reversed(values):
        prepend(v)
    return b.EndVector()


def _quantization(b: flatbuffers.Builder, spec: TensorSpec) -> int | None:
    if spec.scale is None:
        return None
    tflite.QuantizationParametersStartScaleVector(b, 1)
    b.PrependFloat32(float(np.float32(spec.scale)))
    scale = b.EndVector()
    tflite.QuantizationParametersStartZeroPointVector(b, 1)
    b.PrependInt64(int(spec.zero_point))
    zp = b.EndVector()
    tflite.QuantizationParametersStart(b)
    tflite.QuantizationParametersAddScale(b, scale)
    tflite.QuantizationParametersAddZeroPoint(b, zp)
    return tflite.QuantizationParametersEnd(b)


def _tensor(b: flatbuffers.Builder, spec: TensorSpec, name: str) -> int:
    name_off = b.CreateString(name)
    shape = _int_vector(b, tflite.TensorStartShapeVector, spec.shape, b.PrependInt32)
    quant = _quantization(b, spec)
    tflite.TensorStart(b)
    tflite.TensorAddShape(b, shape)
    tflite.TensorAddType(b, _TYPES[np.dtype(spec.dtype)])
    tflite.TensorAddBuffer(b, 0)  # buffer 0 is the empty sentinel: an activation tensor
    tflite.TensorAddName(b, name_off)
    if quant is not None:
        tflite.TensorAddQuantization(b, quant)
    return tflite.TensorEnd(b)


def _options(b: flatbuffers.Builder, op: str, options: dict) -> tuple[int, int | None]:
    if op == "MUL":
        tflite.MulOptionsStart(b)
        tflite.MulOptionsAddFusedActivationFunction(b, options.get("activation", 0))
        return tflite.BuiltinOptions.MulOptions, tflite.MulOptionsEnd(b)
    if op == "QUANTIZE":
        tflite.QuantizeOptionsStart(b)
        return tflite.BuiltinOptions.QuantizeOptions, tflite.QuantizeOptionsEnd(b)
    if op == "SOFTMAX":
        tflite.SoftmaxOptionsStart(b)
        tflite.SoftmaxOptionsAddBeta(b, float(options.get("beta", 1.0)))
        return tflite.BuiltinOptions.SoftmaxOptions, tflite.SoftmaxOptionsEnd(b)
    return tflite.BuiltinOptions.NONE, None


def single_op_model(op: str, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                    **options: object) -> bytes:
    """A model with one operator ``op`` (a ``tflite.BuiltinOperator`` name): inputs are tensors
    0..n-1, outputs follow; all are subgraph inputs/outputs."""
    b = flatbuffers.Builder(1024)
    specs = list(inputs) + list(outputs)
    names = [f"in{i}" for i in range(len(inputs))] + [f"out{i}" for i in range(len(outputs))]
    tensors = [_tensor(b, s, n) for s, n in zip(specs, names)]
    in_idx = list(range(len(inputs)))
    out_idx = list(range(len(inputs), len(specs)))

    opts_type, opts = _options(b, op, options)
    op_inputs = _int_vector(b, tflite.OperatorStartInputsVector, in_idx, b.PrependInt32)
    op_outputs = _int_vector(b, tflite.OperatorStartOutputsVector, out_idx, b.PrependInt32)
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, op_inputs)
    tflite.OperatorAddOutputs(b, op_outputs)
    if opts is not None:
        tflite.OperatorAddBuiltinOptionsType(b, opts_type)
        tflite.OperatorAddBuiltinOptions(b, opts)
    operator = tflite.OperatorEnd(b)

    tflite.SubGraphStartTensorsVector(b, len(tensors))
    for t in reversed(tensors):
        b.PrependUOffsetTRelative(t)
    tensors_vec = b.EndVector()
    sg_inputs = _int_vector(b, tflite.SubGraphStartInputsVector, in_idx, b.PrependInt32)
    sg_outputs = _int_vector(b, tflite.SubGraphStartOutputsVector, out_idx, b.PrependInt32)
    tflite.SubGraphStartOperatorsVector(b, 1)
    b.PrependUOffsetTRelative(operator)
    ops_vec = b.EndVector()
    sg_name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors_vec)
    tflite.SubGraphAddInputs(b, sg_inputs)
    tflite.SubGraphAddOutputs(b, sg_outputs)
    tflite.SubGraphAddOperators(b, ops_vec)
    tflite.SubGraphAddName(b, sg_name)
    subgraph = tflite.SubGraphEnd(b)

    code = getattr(tflite.BuiltinOperator, op)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
    tflite.OperatorCodeAddBuiltinCode(b, code)
    tflite.OperatorCodeAddVersion(b, 1)
    opcode = tflite.OperatorCodeEnd(b)

    tflite.BufferStart(b)
    empty_buffer = tflite.BufferEnd(b)

    tflite.ModelStartOperatorCodesVector(b, 1)
    b.PrependUOffsetTRelative(opcode)
    opcodes_vec = b.EndVector()
    tflite.ModelStartSubgraphsVector(b, 1)
    b.PrependUOffsetTRelative(subgraph)
    subgraphs_vec = b.EndVector()
    tflite.ModelStartBuffersVector(b, 1)
    b.PrependUOffsetTRelative(empty_buffer)
    buffers_vec = b.EndVector()
    description = b.CreateString("tflite_ref quant test")
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, opcodes_vec)
    tflite.ModelAddSubgraphs(b, subgraphs_vec)
    tflite.ModelAddBuffers(b, buffers_vec)
    tflite.ModelAddDescription(b, description)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


# -- convenience makers ------------------------------------------------------------------------
def requantize_model(n: int, s_in: float, z_in: int, s_out: float, z_out: int) -> bytes:
    """int8 -> int8 QUANTIZE (requantize) on a length-``n`` vector."""
    return single_op_model("QUANTIZE", [TensorSpec((n,), np.int8, s_in, z_in)],
                           [TensorSpec((n,), np.int8, s_out, z_out)])


def mul_model(n: int, s1: float, z1: int, s2: float, z2: int, s_out: float, z_out: int,
              activation: int = 0) -> bytes:
    """int8 MUL of two length-``n`` vectors (no broadcasting), optional fused activation."""
    return single_op_model("MUL", [TensorSpec((n,), np.int8, s1, z1),
                                   TensorSpec((n,), np.int8, s2, z2)],
                           [TensorSpec((n,), np.int8, s_out, z_out)], activation=activation)


def unary_model(op: str, n: int, s_in: float, z_in: int, s_out: float, z_out: int,
                dtype: type = np.int8, **options: object) -> bytes:
    """int8 (or ``dtype``) unary op (LOGISTIC, TANH, SOFTMAX ...) on shape ``(1, n)``."""
    return single_op_model(op, [TensorSpec((1, n), dtype, s_in, z_in)],
                           [TensorSpec((1, n), dtype, s_out, z_out)], **options)


# -- runners -------------------------------------------------------------------------------------
def run_litert_ref(model: bytes, inputs: Sequence[np.ndarray], builtin: bool = False
                   ) -> np.ndarray:
    """Output 0 from LiteRT's reference kernels (``OpResolverType.BUILTIN_REF``); with
    ``builtin``, from its builtin kernels without delegates (for ops the REF resolver lacks)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin
            else OpResolverType.BUILTIN_REF)
    it = Interpreter(model_content=model, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], np.ascontiguousarray(x).reshape(d["shape"]))
    it.invoke()
    return np.array(it.get_tensor(it.get_output_details()[0]["index"]))


def run_tflm(model: bytes, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Output 0 from the TFLite Micro Python interpreter."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model, arena_size=4 << 20)
    for i, x in enumerate(inputs):
        shape = tuple(it.get_input_details(i)["shape"])
        it.set_input(np.ascontiguousarray(x).reshape(shape), i)
    it.invoke()
    return np.array(it.get_output(0))
