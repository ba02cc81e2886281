"""Tables of what TFLite Micro registers and what each op's parser and ``init`` allocate.

- Which builtins and custom ops exist: ``micro_mutable_op_resolver.h`` (one ``Add...()`` method
  per op; the wheel's ``PythonOpsResolver``, ``python/tflite_micro/python_ops_resolver.cc``,
  calls every one of them). ``AllOpsResolver`` is gone upstream.
- Builtin data (step 8 of the tail): the struct each ``Parse<Op>`` in
  ``tensorflow/lite/core/api/flatbuffer_conversions.cc`` allocates through
  ``SafeBuiltinDataAllocator::Allocate<T>`` (size, ``alignof(T)``), even when the operator has
  no options table. Host = the wheel (``FULLY_CONNECTED`` differs from the TFLM sources there);
  arm = arm-none-eabi-gcc with short enums (shared doc ``tflm-arena.md`` §6.3).
- ``init`` (step 9): one ``context->AllocatePersistentBuffer(sizeof(OpData))`` (alignment 16)
  for kernels with an init (``kernels/<op>.cc``: ``Register_<OP>``); sizes from compiling each
  kernel (§6.4). Ops whose OpData is allocated in Prepare instead are marked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class OpInfo:
    name: str  # BuiltinOperator name, or the custom code
    add: str  # MicroMutableOpResolver method
    builtin_data: Mapping[str, tuple[int, int]] | None  # column -> (size, align); None = nothing
    init: Mapping[str, int] | None  # column -> sizeof(OpData); None = no init allocation
    opdata_in_prepare: bool = False  # OpData allocated in Prepare, not Init (add_n/cumsum/...)
    custom: bool = False


def _bd(host: int, host_align: int, arm: int, arm_align: int) -> Mapping[str, tuple[int, int]]:
    return MappingProxyType({"host": (host, host_align), "arm": (arm, arm_align)})


def _same(size: int, align: int) -> Mapping[str, tuple[int, int]]:
    return _bd(size, align, size, align)


def _init(host: int, arm: int | None = None) -> Mapping[str, int]:
    return MappingProxyType({"host": host, "arm": host if arm is None else arm})


# name -> (resolver method, builtin data, init OpData)
_BUILTINS: dict[str, tuple[str, Mapping[str, tuple[int, int]] | None, Mapping[str, int] | None]] = {
    "ABS": ("AddAbs", None, _init(28)),
    "ADD": ("AddAdd", _bd(8, 4, 2, 1), _init(60)),
    "ADD_N": ("AddAddN", None, None),  # OpData (40) in Prepare, int8 only
    "ARG_MAX": ("AddArgMax", _bd(4, 4, 1, 1), None),
    "ARG_MIN": ("AddArgMin", _bd(4, 4, 1, 1), None),
    "ASSIGN_VARIABLE": ("AddAssignVariable", None, _init(4)),
    "AVERAGE_POOL_2D": ("AddAveragePool2D", _same(40, 4), _init(32)),
    "BATCH_MATMUL": ("AddBatchMatMul", _same(3, 1), _init(32, 16)),
    "BATCH_TO_SPACE_ND": ("AddBatchToSpaceNd", None, None),
    "BROADCAST_ARGS": ("AddBroadcastArgs", None, None),
    "BROADCAST_TO": ("AddBroadcastTo", None, None),
    "CALL_ONCE": ("AddCallOnce", _same(4, 4), _init(8)),
    "CAST": ("AddCast", _bd(8, 4, 2, 1), None),
    "CEIL": ("AddCeil", None, None),
    "CONCATENATION": ("AddConcatenation", _same(8, 4), _init(80, 24)),
    "CONV_2D": ("AddConv2D", _same(28, 4), _init(80, 56)),
    "COS": ("AddCos", None, None),
    "CUMSUM": ("AddCumSum", _same(2, 1), None),  # OpData (36) in Prepare
    "DEPTHWISE_CONV_2D": ("AddDepthwiseConv2D", _same(28, 4), _init(80, 56)),
    "DEPTH_TO_SPACE": ("AddDepthToSpace", _same(4, 4), None),
    "DEQUANTIZE": ("AddDequantize", None, _init(32)),
    "DIV": ("AddDiv", _bd(4, 4, 1, 1), _init(28)),
    "DYNAMIC_UPDATE_SLICE": ("AddDynamicUpdateSlice", None, None),
    "ELU": ("AddElu", None, _init(256)),
    "EMBEDDING_LOOKUP": ("AddEmbeddingLookup", None, None),  # OpData (16/8) in Prepare
    "EQUAL": ("AddEqual", None, _init(32)),
    "EXP": ("AddExp", None, None),
    "EXPAND_DIMS": ("AddExpandDims", None, None),
    "FILL": ("AddFill", None, None),
    "FLOOR": ("AddFloor", None, None),
    "FLOOR_DIV": ("AddFloorDiv", None, None),
    "FLOOR_MOD": ("AddFloorMod", None, None),
    # The wheel's TfLiteFullyConnectedParams is 32 B / align 8 (a newer LiteRT sync than the
    # TFLM sources, where it is 16/4 on x86-64 and 5/1 on arm-gcc): found by disassembling
    # _runtime.so (tflm-arena.md §6.3), confirmed by the live tests.
    "FULLY_CONNECTED": ("AddFullyConnected", _bd(32, 8, 5, 1), _init(72, 48)),
    "GATHER": ("AddGather", _same(8, 4), None),
    "GATHER_ND": ("AddGatherNd", None, None),
    "GREATER": ("AddGreater", None, _init(32)),
    "GREATER_EQUAL": ("AddGreaterEqual", None, _init(32)),
    "HARD_SWISH": ("AddHardSwish", None, _init(20)),
    "IF": ("AddIf", _same(8, 4), _init(8)),
    "L2_NORMALIZATION": ("AddL2Normalization", _bd(4, 4, 1, 1), _init(4)),
    "L2_POOL_2D": ("AddL2Pool2D", _same(40, 4), None),
    "LEAKY_RELU": ("AddLeakyRelu", _same(4, 4), _init(24)),
    "LESS": ("AddLess", None, _init(32)),
    "LESS_EQUAL": ("AddLessEqual", None, _init(32)),
    "LOG": ("AddLog", None, None),
    "LOGICAL_AND": ("AddLogicalAnd", None, None),
    "LOGICAL_NOT": ("AddLogicalNot", None, None),
    "LOGICAL_OR": ("AddLogicalOr", None, None),
    "LOGISTIC": ("AddLogistic", None, _init(16)),
    "LOG_SOFTMAX": ("AddLogSoftmax", None, None),  # OpData (40/28) in Prepare
    "MAXIMUM": ("AddMaximum", None, None),
    "MAX_POOL_2D": ("AddMaxPool2D", _same(40, 4), _init(32)),
    "MEAN": ("AddMean", _same(1, 1), _init(44)),
    "MINIMUM": ("AddMinimum", None, None),
    "MIRROR_PAD": ("AddMirrorPad", _bd(4, 4, 1, 1), _init(20)),
    "MUL": ("AddMul", _bd(4, 4, 1, 1), _init(36)),
    "NEG": ("AddNeg", None, None),
    "NOT_EQUAL": ("AddNotEqual", None, _init(32)),
    "PACK": ("AddPack", _same(8, 4), None),
    "PAD": ("AddPad", None, _init(56)),
    "PADV2": ("AddPadV2", None, _init(56)),
    "PRELU": ("AddPrelu", None, _init(28)),
    "QUANTIZE": ("AddQuantize", None, _init(32)),
    "READ_VARIABLE": ("AddReadVariable", None, None),
    "REDUCE_ALL": ("AddReduceAll", _same(1, 1), _init(44)),
    "REDUCE_MAX": ("AddReduceMax", _same(1, 1), _init(44)),
    "REDUCE_MIN": ("AddReduceMin", _same(1, 1), _init(44)),
    "RELU": ("AddRelu", None, _init(28)),
    "RELU6": ("AddRelu6", None, _init(8)),
    "RESHAPE": ("AddReshape", _same(36, 4), None),
    "RESIZE_BILINEAR": ("AddResizeBilinear", _same(2, 1), None),
    "RESIZE_NEAREST_NEIGHBOR": ("AddResizeNearestNeighbor", _same(2, 1), None),
    "REVERSE_V2": ("AddReverseV2", None, None),
    "ROUND": ("AddRound", None, None),
    "RSQRT": ("AddRsqrt", None, _init(28)),
    "SELECT_V2": ("AddSelectV2", None, _init(1)),
    "SHAPE": ("AddShape", _bd(4, 4, 1, 1), None),
    "SIN": ("AddSin", None, None),
    "SLICE": ("AddSlice", None, None),
    "SOFTMAX": ("AddSoftmax", _same(4, 4), _init(80, 56)),
    "SPACE_TO_BATCH_ND": ("AddSpaceToBatchNd", None, _init(4)),
    "SPACE_TO_DEPTH": ("AddSpaceToDepth", _same(4, 4), None),
    "SPLIT": ("AddSplit", _same(4, 4), None),
    "SPLIT_V": ("AddSplitV", _same(4, 4), None),
    "SQRT": ("AddSqrt", None, None),
    "SQUARE": ("AddSquare", None, None),
    "SQUARED_DIFFERENCE": ("AddSquaredDifference", None, _init(112)),
    "SQUEEZE": ("AddSqueeze", _same(36, 4), None),
    "STRIDED_SLICE": ("AddStridedSlice", _same(24, 4), _init(84)),
    "SUB": ("AddSub", _bd(8, 4, 2, 1), _init(52)),
    "SUM": ("AddSum", _same(1, 1), _init(44)),
    "SVDF": ("AddSvdf", _bd(12, 4, 8, 4), _init(36)),
    "TANH": ("AddTanh", None, _init(16)),
    "TRANSPOSE": ("AddTranspose", None, None),
    "TRANSPOSE_CONV": ("AddTransposeConv", _bd(20, 4, 16, 4), _init(88, 72)),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("AddUnidirectionalSequenceLSTM", _same(16, 4), _init(688)),
    "UNPACK": ("AddUnpack", _same(8, 4), None),
    "VAR_HANDLE": ("AddVarHandle", _bd(16, 8, 8, 4), _init(4)),
    "WHILE": ("AddWhile", _same(8, 4), _init(8)),
    "ZEROS_LIKE": ("AddZerosLike", None, None),
}

#: OpData allocated in Prepare (not Init); sizes per column. add_n.cc, cumsum.cc,
#: log_softmax.cc, embedding_lookup.cc.
PREPARE_OPDATA: Mapping[str, Mapping[str, int]] = MappingProxyType({
    "ADD_N": _init(40),  # int8 only
    "CUMSUM": _init(36),
    "LOG_SOFTMAX": _init(40, 28),
    "EMBEDDING_LOOKUP": _init(16, 8),
})

# Custom ops by custom_code: (resolver method, init OpData or None when the size depends on
# the options and is computed in kernels.py). The registry code names them so.
_CUSTOMS: dict[str, tuple[str, Mapping[str, int] | None]] = {
    "CIRCULAR_BUFFER": ("AddCircularBuffer", _init(8)),
    "TFLite_Detection_PostProcess": ("AddDetectionPostprocess", _init(112)),
    "TFLM_DECODE": ("AddDecode", None),
    "SignalDelay": ("AddDelay", None),
    "SignalEnergy": ("AddEnergy", _init(8)),
    "SignalFftAutoScale": ("AddFftAutoScale", None),
    "SignalFilterBank": ("AddFilterBank", None),
    "SignalFilterBankLog": ("AddFilterBankLog", _init(8)),
    "SignalFilterBankSpectralSubtraction": ("AddFilterBankSpectralSubtraction", None),
    "SignalFilterBankSquareRoot": ("AddFilterBankSquareRoot", None),
    "SignalFramer": ("AddFramer", None),
    "SignalIrfft": ("AddIrfft", None),
    "SignalOverlapAdd": ("AddOverlapAdd", None),
    "SignalPCAN": ("AddPCAN", _init(4)),
    "SignalRfft": ("AddRfft", None),
    "SignalStacker": ("AddStacker", None),
    "SignalWindow": ("AddWindow", _init(8)),
}

BUILTINS: Mapping[str, OpInfo] = MappingProxyType({
    name: OpInfo(name, add, bd, init, opdata_in_prepare=name in PREPARE_OPDATA)
    for name, (add, bd, init) in _BUILTINS.items()})

CUSTOMS: Mapping[str, OpInfo] = MappingProxyType({
    name: OpInfo(name, add, None, init, custom=True) for name, (add, init) in _CUSTOMS.items()})

#: Registered only in Ethos-U builds (``Register_ETHOSU()`` is null elsewhere, the wheel included).
ETHOS_U = "ethos-u"

#: Why a builtin that LiteRT has is absent from TFLM, where there is more to say than "not
#: registered" (the converter's choices that lead there).
NOT_IN_TFLM_HINTS: Mapping[str, str] = MappingProxyType({
    "DENSIFY": "sparse weights: TFLM has no DENSIFY; convert without sparsity",
    "SELECT": "TFLM has SELECT_V2 only",
    "LSTM": "TFLM has UNIDIRECTIONAL_SEQUENCE_LSTM only",
    "GELU": "decompose GELU (e.g. approximate=True → TANH/MUL/ADD) before converting",
})


def lookup(builtin_name: str, custom_code: str | None) -> OpInfo | None:
    if builtin_name == "CUSTOM":
        return CUSTOMS.get(custom_code or "")
    return BUILTINS.get(builtin_name)


__all__ = [
    "BUILTINS",
    "CUSTOMS",
    "ETHOS_U",
    "NOT_IN_TFLM_HINTS",
    "PREPARE_OPDATA",
    "OpInfo",
    "lookup",
]
