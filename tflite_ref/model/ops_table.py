"""Which options table each builtin operator takes, and options <-> plain dicts.

The schema declares the ``BuiltinOptions`` / ``BuiltinOptions2`` unions but says nowhere which
member belongs to which operator; the runtime (``ParseOpData``) and the converter simply know.
:data:`OPTIONS_FOR_OP` writes that knowledge down once.

Options are converted to plain Python by reflection over the generated accessor methods, so a
field added to the bindings needs no code here:

* keys are the schema's snake_case field names (``StrideW`` -> ``stride_w``);
* scalars become ``int`` / ``float`` / ``bool``; enum-typed fields (an explicit map, below) become
  the member name (``"SAME"``, ``"RELU6"``, ``"INT8"``), numbers the bindings do not know stay
  ``int``;
* vectors become lists (absent vector -> ``None``, so an empty vector stays distinguishable),
  strings ``str`` (``bytes`` when not UTF-8), nested tables dicts.

:func:`encode_options` is the exact inverse: ``decode_options(encode_options(d)) ==
{**default_options(...), **d}`` for every member.
"""

from __future__ import annotations

import functools
import importlib
import re
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import flatbuffers
import flatbuffers.number_types as fbn
import numpy as np
import tflite  # noqa: F401  (makes the tflite.<Table> submodules importable)

from tflite_ref.errors import InternalError, ModelFormatError, UsageError
from tflite_ref.model.schema import BuiltinOperator, BuiltinOptions, BuiltinOptions2

UNIONS: dict[str, type[IntEnum]] = {"BuiltinOptions": BuiltinOptions,
                                    "BuiltinOptions2": BuiltinOptions2}

# --------------------------------------------------------------------------------------------
# Operator -> options member.  None: the operator takes no builtin options (it may still carry
# an empty table of another member in files from old converters; the reader decides).
# Ordered by operator code.
# --------------------------------------------------------------------------------------------
_OPTIONS_BY_NAME: dict[str, str | None] = {
    "ADD": "AddOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "CONCATENATION": "ConcatenationOptions",
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "DEPTH_TO_SPACE": "DepthToSpaceOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "EMBEDDING_LOOKUP": None,
    "FLOOR": None,
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "HASHTABLE_LOOKUP": None,
    "L2_NORMALIZATION": "L2NormOptions",
    "L2_POOL_2D": "Pool2DOptions",
    "LOCAL_RESPONSE_NORMALIZATION": "LocalResponseNormalizationOptions",
    "LOGISTIC": None,
    "LSH_PROJECTION": "LSHProjectionOptions",
    "LSTM": "LSTMOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "MUL": "MulOptions",
    "RELU": None,
    "RELU_N1_TO_1": None,
    "RELU6": None,
    "RESHAPE": "ReshapeOptions",
    "RESIZE_BILINEAR": "ResizeBilinearOptions",
    "RNN": "RNNOptions",
    "SOFTMAX": "SoftmaxOptions",
    "SPACE_TO_DEPTH": "SpaceToDepthOptions",
    "SVDF": "SVDFOptions",
    "TANH": None,
    "CONCAT_EMBEDDINGS": "ConcatEmbeddingsOptions",
    "SKIP_GRAM": "SkipGramOptions",
    "CALL": "CallOptions",
    "CUSTOM": None,  # custom ops carry custom_options bytes instead
    "EMBEDDING_LOOKUP_SPARSE": "EmbeddingLookupSparseOptions",
    "PAD": "PadOptions",
    "UNIDIRECTIONAL_SEQUENCE_RNN": "SequenceRNNOptions",
    "GATHER": "GatherOptions",
    "BATCH_TO_SPACE_ND": "BatchToSpaceNDOptions",
    "SPACE_TO_BATCH_ND": "SpaceToBatchNDOptions",
    "TRANSPOSE": "TransposeOptions",
    "MEAN": "ReducerOptions",
    "SUB": "SubOptions",
    "DIV": "DivOptions",
    "SQUEEZE": "SqueezeOptions",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTMOptions",
    "STRIDED_SLICE": "StridedSliceOptions",
    "BIDIRECTIONAL_SEQUENCE_RNN": "BidirectionalSequenceRNNOptions",
    "EXP": "ExpOptions",
    "TOPK_V2": "TopKV2Options",
    "SPLIT": "SplitOptions",
    "LOG_SOFTMAX": "LogSoftmaxOptions",
    "DELEGATE": None,
    "BIDIRECTIONAL_SEQUENCE_LSTM": "BidirectionalSequenceLSTMOptions",
    "CAST": "CastOptions",
    "PRELU": None,
    "MAXIMUM": "MaximumMinimumOptions",
    "ARG_MAX": "ArgMaxOptions",
    "MINIMUM": "MaximumMinimumOptions",
    "LESS": "LessOptions",
    "NEG": "NegOptions",
    "PADV2": "PadV2Options",
    "GREATER": "GreaterOptions",
    "GREATER_EQUAL": "GreaterEqualOptions",
    "LESS_EQUAL": "LessEqualOptions",
    "SELECT": "SelectOptions",
    "SLICE": "SliceOptions",
    "SIN": None,
    "TRANSPOSE_CONV": "TransposeConvOptions",
    "SPARSE_TO_DENSE": "SparseToDenseOptions",
    "TILE": "TileOptions",
    "EXPAND_DIMS": "ExpandDimsOptions",
    "EQUAL": "EqualOptions",
    "NOT_EQUAL": "NotEqualOptions",
    "LOG": None,
    "SUM": "ReducerOptions",
    "SQRT": None,
    "RSQRT": None,
    "SHAPE": "ShapeOptions",
    "POW": "PowOptions",
    "ARG_MIN": "ArgMinOptions",
    "FAKE_QUANT": "FakeQuantOptions",
    "REDUCE_PROD": "ReducerOptions",
    "REDUCE_MAX": "ReducerOptions",
    "PACK": "PackOptions",
    "LOGICAL_OR": "LogicalOrOptions",
    "ONE_HOT": "OneHotOptions",
    "LOGICAL_AND": "LogicalAndOptions",
    "LOGICAL_NOT": "LogicalNotOptions",
    "UNPACK": "UnpackOptions",
    "REDUCE_MIN": "ReducerOptions",
    "FLOOR_DIV": "FloorDivOptions",
    "REDUCE_ANY": "ReducerOptions",
    "SQUARE": "SquareOptions",
    "ZEROS_LIKE": "ZerosLikeOptions",
    "FILL": "FillOptions",
    "FLOOR_MOD": "FloorModOptions",
    "RANGE": "RangeOptions",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
    "LEAKY_RELU": "LeakyReluOptions",
    "SQUARED_DIFFERENCE": "SquaredDifferenceOptions",
    "MIRROR_PAD": "MirrorPadOptions",
    "ABS": "AbsOptions",
    "SPLIT_V": "SplitVOptions",
    "UNIQUE": "UniqueOptions",
    "CEIL": None,
    "REVERSE_V2": "ReverseV2Options",
    "ADD_N": "AddNOptions",
    "GATHER_ND": "GatherNdOptions",
    "COS": "CosOptions",
    "WHERE": "WhereOptions",
    "RANK": "RankOptions",
    "ELU": None,
    "REVERSE_SEQUENCE": "ReverseSequenceOptions",
    "MATRIX_DIAG": "MatrixDiagOptions",
    "QUANTIZE": "QuantizeOptions",
    "MATRIX_SET_DIAG": "MatrixSetDiagOptions",
    "ROUND": None,
    "HARD_SWISH": "HardSwishOptions",
    "IF": "IfOptions",
    "WHILE": "WhileOptions",
    "NON_MAX_SUPPRESSION_V4": "NonMaxSuppressionV4Options",
    "NON_MAX_SUPPRESSION_V5": "NonMaxSuppressionV5Options",
    "SCATTER_ND": "ScatterNdOptions",
    "SELECT_V2": "SelectV2Options",
    "DENSIFY": "DensifyOptions",
    "SEGMENT_SUM": "SegmentSumOptions",
    "BATCH_MATMUL": "BatchMatMulOptions",
    "PLACEHOLDER_FOR_GREATER_OP_CODES": None,  # not an operator: marks "read builtin_code"
    "CUMSUM": "CumsumOptions",
    "CALL_ONCE": "CallOnceOptions",
    "BROADCAST_TO": "BroadcastToOptions",
    "RFFT2D": "Rfft2dOptions",
    "CONV_3D": "Conv3DOptions",
    "IMAG": None,
    "REAL": None,
    "COMPLEX_ABS": None,
    "HASHTABLE": "HashtableOptions",
    "HASHTABLE_FIND": "HashtableFindOptions",
    "HASHTABLE_IMPORT": "HashtableImportOptions",
    "HASHTABLE_SIZE": "HashtableSizeOptions",
    "REDUCE_ALL": "ReducerOptions",
    "CONV_3D_TRANSPOSE": "Conv3DOptions",  # one table for both directions
    "VAR_HANDLE": "VarHandleOptions",
    "READ_VARIABLE": "ReadVariableOptions",
    "ASSIGN_VARIABLE": "AssignVariableOptions",
    "BROADCAST_ARGS": None,
    "RANDOM_STANDARD_NORMAL": "RandomOptions",
    "BUCKETIZE": "BucketizeOptions",
    "RANDOM_UNIFORM": "RandomOptions",
    "MULTINOMIAL": "RandomOptions",
    "GELU": "GeluOptions",
    "DYNAMIC_UPDATE_SLICE": "DynamicUpdateSliceOptions",
    "RELU_0_TO_1": None,
    "UNSORTED_SEGMENT_PROD": "UnsortedSegmentProdOptions",
    "UNSORTED_SEGMENT_MAX": "UnsortedSegmentMaxOptions",
    "UNSORTED_SEGMENT_SUM": "UnsortedSegmentSumOptions",
    "ATAN2": "ATan2Options",
    "UNSORTED_SEGMENT_MIN": "UnsortedSegmentMinOptions",
    "SIGN": "SignOptions",
    "BITCAST": "BitcastOptions",
    "BITWISE_XOR": "BitwiseXorOptions",
    "RIGHT_SHIFT": "RightShiftOptions",
    # StableHLO ops: elementwise ones have no options; the rest use BuiltinOptions2 members.
    "STABLEHLO_LOGISTIC": None,
    "STABLEHLO_ADD": None,
    "STABLEHLO_DIVIDE": None,
    "STABLEHLO_MULTIPLY": None,
    "STABLEHLO_MAXIMUM": None,
    "STABLEHLO_RESHAPE": None,
    "STABLEHLO_CLAMP": None,
    "STABLEHLO_CONCATENATE": "StablehloConcatenateOptions",
    "STABLEHLO_BROADCAST_IN_DIM": "StablehloBroadcastInDimOptions",
    "STABLEHLO_CONVOLUTION": "StablehloConvolutionOptions",
    "STABLEHLO_SLICE": "StablehloSliceOptions",
    "STABLEHLO_CUSTOM_CALL": "StablehloCustomCallOptions",
    "STABLEHLO_REDUCE": "StablehloReduceOptions",
    "STABLEHLO_ABS": None,
    "STABLEHLO_AND": None,
    "STABLEHLO_COSINE": None,
    "STABLEHLO_EXPONENTIAL": None,
    "STABLEHLO_FLOOR": None,
    "STABLEHLO_LOG": None,
    "STABLEHLO_MINIMUM": None,
    "STABLEHLO_NEGATE": None,
    "STABLEHLO_OR": None,
    "STABLEHLO_POWER": None,
    "STABLEHLO_REMAINDER": None,
    "STABLEHLO_RSQRT": None,
    "STABLEHLO_SELECT": None,
    "STABLEHLO_SUBTRACT": None,
    "STABLEHLO_TANH": None,
    "STABLEHLO_SCATTER": "StablehloScatterOptions",
    "STABLEHLO_COMPARE": "StablehloCompareOptions",
    "STABLEHLO_CONVERT": None,
    "STABLEHLO_DYNAMIC_SLICE": "StablehloDynamicSliceOptions",
    "STABLEHLO_DYNAMIC_UPDATE_SLICE": None,
    "STABLEHLO_PAD": "StablehloPadOptions",
    "STABLEHLO_IOTA": "StablehloIotaOptions",
    "STABLEHLO_DOT_GENERAL": "StablehloDotGeneralOptions",
    "STABLEHLO_REDUCE_WINDOW": "StablehloReduceWindowOptions",
    "STABLEHLO_SORT": "StablehloSortOptions",
    "STABLEHLO_WHILE": "StablehloWhileOptions",
    "STABLEHLO_GATHER": "StablehloGatherOptions",
    "STABLEHLO_TRANSPOSE": "StablehloTransposeOptions",
    "DILATE": "DilateOptions",
    "STABLEHLO_RNG_BIT_GENERATOR": "StablehloRngBitGeneratorOptions",
    "REDUCE_WINDOW": "ReduceWindowOptions",  # deprecated in the schema, still parsed
    "STABLEHLO_COMPOSITE": "StableHLOCompositeOptions",
    "STABLEHLO_SHIFT_LEFT": "StablehloShiftLeftOptions",
    "STABLEHLO_CBRT": None,
}


def _union_of(member: str) -> str:
    for union, enum in UNIONS.items():
        if member in enum.__members__:
            return union
    raise InternalError(f"ops_table names {member!r}, which is in neither options union")


def _build_options_for_op() -> dict[int, tuple[str, str] | None]:
    table: dict[int, tuple[str, str] | None] = {}
    for name, member in _OPTIONS_BY_NAME.items():
        if name not in BuiltinOperator.__members__:
            raise InternalError(f"ops_table names operator {name!r} unknown to the bindings")
        code = int(BuiltinOperator[name])
        table[code] = None if member is None else (_union_of(member), member)
    return table


#: Operator code -> ("BuiltinOptions" | "BuiltinOptions2", member name), or None when the
#: operator takes no builtin options.  Codes newer than the bindings are absent.
OPTIONS_FOR_OP: dict[int, tuple[str, str] | None] = _build_options_for_op()


def options_for_op(op: int | str) -> tuple[str, str] | None:
    """:data:`OPTIONS_FOR_OP` by code or by name (``"CONV_2D"``); unknown ops -> None."""
    if isinstance(op, str):
        if op not in BuiltinOperator.__members__:
            return None
        op = int(BuiltinOperator[op])
    return OPTIONS_FOR_OP.get(int(op))


# --------------------------------------------------------------------------------------------
# Unions and classes
# --------------------------------------------------------------------------------------------
def _check_member(union: str, member: str) -> None:
    enum = UNIONS.get(union)
    if enum is None:
        raise UsageError(f"unknown options union {union!r}; expected one of {sorted(UNIONS)}")
    if member == "NONE" or member not in enum.__members__:
        raise UsageError(f"{member!r} is not a member of {union}")


def union_member_name(union: str, code: int) -> str | None:
    """Member name of union type ``code`` (``"Conv2DOptions"`` for 1); None for NONE or a code
    the bindings do not know."""
    enum = UNIONS.get(union)
    if enum is None:
        raise UsageError(f"unknown options union {union!r}; expected one of {sorted(UNIONS)}")
    if code == 0:
        return None
    try:
        return enum(code).name
    except ValueError:
        return None


def union_type_code(union: str, member: str) -> int:
    """The union type code that selects ``member`` (the value of ``builtin_options_type``)."""
    _check_member(union, member)
    return int(UNIONS[union][member])


def _table_class(name: str) -> type:
    module = importlib.import_module(f"tflite.{name}")
    cls: type = getattr(module, name)
    return cls


def options_class(union_name: str, member_name: str) -> type:
    """The bindings' reader class of an options member.

    E.g. the class ``Conv2DOptions`` of module ``tflite.Conv2DOptions`` (which the package's
    ``__init__`` also re-exports as ``tflite.Conv2DOptions``).
    """
    _check_member(union_name, member_name)
    return _table_class(member_name)


# --------------------------------------------------------------------------------------------
# Enum-typed fields.  The generated Python keeps no trace of a field's enum type (it is just an
# int8/uint32 slot), so this map says it; tests/test_schema.py checks it against schema.fbs.
# --------------------------------------------------------------------------------------------
_TENSOR_TYPE_FIELDS = ("quantized_bias_type", "in_data_type", "out_data_type", "output_type",
                       "out_type", "idx_out_type", "key_dtype", "value_dtype")

#: field key -> enum name, for scalar fields of any options table.
ENUM_FIELDS: dict[str, str] = {
    "padding": "Padding",
    "fused_activation_function": "ActivationFunctionType",
    "weights_format": "FullyConnectedOptionsWeightsFormat",
    "kernel_type": "LSTMKernelType",
    "combiner": "CombinerType",
    "mode": "MirrorPadMode",
    "algorithm": "RngAlgorithm",
    "reduce_function": "ReduceWindowFunction",
    "comparison_direction": "StablehloComparisonDirection",
    "compare_type": "StablehloComparisonType",
    "composite_attributes_format": "CustomOptionsFormat",
    **{f: "TensorType" for f in _TENSOR_TYPE_FIELDS},
}
#: (member, field key) -> enum name, where a key is too generic to map for every table.
ENUM_FIELDS_BY_MEMBER: dict[tuple[str, str], str] = {
    ("LSHProjectionOptions", "type"): "LSHProjectionType",
}
#: field key -> enum name, for vector fields whose elements are enum values.
ENUM_VECTOR_FIELDS: dict[str, str] = {
    "precision_config": "StablehloPrecisionConfig",
}


@functools.cache
def enum_values(enum_name: str) -> dict[int, str]:
    """Number -> member name of a schema enum, from the bindings (``{0: "SAME", 1: "VALID"}``)."""
    cls = _table_class(enum_name)
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


@functools.cache
def _enum_numbers(enum_name: str) -> dict[str, int]:
    return {name: num for num, name in enum_values(enum_name).items()}


def _enum_to_name(enum_name: str, value: int) -> str | int:
    return enum_values(enum_name).get(value, value)


def _enum_from_value(enum_name: str, value: Any, where: str) -> int:
    if isinstance(value, str):
        try:
            return _enum_numbers(enum_name)[value]
        except KeyError:
            raise UsageError(f"{where}: {value!r} is not a {enum_name}; expected one of "
                             f"{sorted(_enum_numbers(enum_name))} or an int") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UsageError(f"{where}: expected a {enum_name} name or int, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------
# Field discovery by reflection
# --------------------------------------------------------------------------------------------
_FLAG_NAMES = ("BoolFlags", "Int8Flags", "Uint8Flags", "Int16Flags", "Uint16Flags", "Int32Flags",
               "Uint32Flags", "Int64Flags", "Uint64Flags", "Float32Flags", "Float64Flags")
_GENERATED_HELPERS = re.compile(r"^(GetRootAs\w*|Init|\w+BufferHasIdentifier)$")


@dataclass(frozen=True)
class FieldSpec:
    """One field of a generated table, as discovered from its accessor method."""

    key: str  # snake_case name, as in schema.fbs
    accessor: str  # CamelCase accessor / builder suffix
    kind: str  # "scalar" | "vector" | "string" | "string_vector" | "table" | "table_vector"
    flags: Any = None  # flatbuffers.number_types flags of the scalar or vector element
    table: str | None = None  # nested table name for "table" / "table_vector"
    enum: str | None = None  # schema enum of the scalar or vector element


def snake_case(camel: str) -> str:
    """``DilationHFactor`` -> ``dilation_h_factor`` (the inverse of flatc's CamelCase names)."""
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel)
    s = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s)
    return s.lower()


def _field_from_accessor(member: str, name: str, fn: Any) -> FieldSpec | None:
    code = fn.__code__
    names = code.co_names
    args = code.co_varnames[: code.co_argcount]
    key = snake_case(name)
    flags = next((getattr(fbn, n) for n in _FLAG_NAMES if n in names), None)
    nested = next((n.split(".")[-1] for n in names if n.startswith("tflite.")), None)
    if "Vector" in names and args == ("self", "j"):
        if nested is not None:
            return FieldSpec(key, name, "table_vector", table=nested)
        if "String" in names:
            return FieldSpec(key, name, "string_vector")
        if flags is None:
            return None
        return FieldSpec(key, name, "vector", flags=flags, enum=ENUM_VECTOR_FIELDS.get(key))
    if args != ("self",):
        return None  # a struct accessor (self, obj) or something newer: not decodable here
    if "String" in names:
        return FieldSpec(key, name, "string")
    if "Union" in names:
        return None  # unions inside options tables do not occur in the schema
    if nested is not None:
        return FieldSpec(key, name, "table", table=nested)
    if flags is None or "Get" not in names:
        return None
    enum = ENUM_FIELDS_BY_MEMBER.get((member, key)) or ENUM_FIELDS.get(key)
    if enum is not None and flags in (fbn.BoolFlags, fbn.Float32Flags, fbn.Float64Flags):
        enum = None
    return FieldSpec(key, name, "scalar", flags=flags, enum=enum)


@functools.cache
def table_fields(table: str) -> tuple[FieldSpec, ...]:
    """Fields of any generated table class (options or nested), in schema order."""
    cls = _table_class(table)
    accessors = set(vars(cls))
    fields = []
    for name, fn in vars(cls).items():
        if name.startswith("_") or not callable(fn) or _GENERATED_HELPERS.match(name):
            continue
        # The helpers generated next to a vector accessor.
        base = re.sub(r"(AsNumpy|Length|IsNone)$", "", name)
        if base != name and base in accessors:
            continue
        spec = _field_from_accessor(table, name, fn)
        if spec is not None:
            fields.append(spec)
    return tuple(fields)


def option_fields(union: str, member: str) -> tuple[FieldSpec, ...]:
    """Fields of an options member, in schema order."""
    _check_member(union, member)
    return table_fields(member)


@functools.cache
def _empty_table(table: str) -> Any:
    # An options table with no fields set: reading it yields every field's schema default.
    b = flatbuffers.Builder(16)
    module = importlib.import_module(f"tflite.{table}")
    getattr(module, f"{table}Start")(b)
    b.Finish(getattr(module, f"{table}End")(b))
    return getattr(module, table).GetRootAs(b.Output(), 0)


def _default_value(spec: FieldSpec, empty: Any) -> Any:
    if spec.kind != "scalar":
        return None
    value = getattr(empty, spec.accessor)()
    if spec.flags is fbn.BoolFlags:
        return bool(value)
    if spec.enum is not None:
        return _enum_to_name(spec.enum, value)
    return value


def _defaults(table: str) -> dict[str, Any]:
    empty = _empty_table(table)
    return {spec.key: _default_value(spec, empty) for spec in table_fields(table)}


def default_options(union: str, member: str) -> dict[str, Any]:
    """The dict :func:`decode_options` returns for an options table with no field set."""
    _check_member(union, member)
    return _defaults(member)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------
_DECODE_ERRORS = (struct.error, IndexError, ValueError, TypeError, OverflowError, AttributeError)


def _decode_scalar(spec: FieldSpec, value: Any) -> Any:
    if spec.flags is fbn.BoolFlags:
        return bool(value)
    if spec.flags in (fbn.Float32Flags, fbn.Float64Flags):
        return float(value)
    value = int(value)
    if spec.enum is not None:
        return _enum_to_name(spec.enum, value)
    return value


def _decode_string(raw: bytes | None) -> str | bytes | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(raw)  # keep what is there; the caller shows it escaped


def _decode_field(obj: Any, spec: FieldSpec) -> Any:
    get = getattr(obj, spec.accessor)
    if spec.kind == "scalar":
        return _decode_scalar(spec, get())
    if spec.kind == "string":
        return _decode_string(get())
    if spec.kind == "table":
        nested = get()
        return None if nested is None else _decode_table(nested, str(spec.table))
    if getattr(obj, spec.accessor + "IsNone")():
        return None
    n = getattr(obj, spec.accessor + "Length")()
    if spec.kind == "vector":
        arr = getattr(obj, spec.accessor + "AsNumpy")()
        if not isinstance(arr, np.ndarray) or len(arr) != n:
            raise ValueError(f"vector of {n} elements could not be read")
        values = arr.tolist()
        if spec.flags is fbn.BoolFlags:
            return [bool(v) for v in values]
        if spec.enum is not None:
            return [_enum_to_name(spec.enum, int(v)) for v in values]
        return values
    if spec.kind == "string_vector":
        return [_decode_string(get(j)) for j in range(n)]
    return [_decode_table(get(j), str(spec.table)) for j in range(n)]


def _decode_table(obj: Any, table: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in table_fields(table):
        try:
            out[spec.key] = _decode_field(obj, spec)
        except ModelFormatError:
            raise
        except _DECODE_ERRORS as exc:
            raise ModelFormatError(f"{table}.{spec.key}: malformed FlatBuffer "
                                   f"({type(exc).__name__}: {exc})") from None
    return out


def decode_options(table_obj: Any, union: str, member: str) -> dict[str, Any]:
    """Plain-Python view of an options table.

    ``table_obj`` is what ``Operator.BuiltinOptions()`` / ``BuiltinOptions2()`` returns (a raw
    ``flatbuffers.table.Table``), an already typed options object, or None (absent table: the
    defaults, as TFLite's ``ParseOpData`` uses them).  Malformed data raises ModelFormatError.
    """
    cls = options_class(union, member)
    if table_obj is None:
        return _defaults(member)
    if isinstance(table_obj, flatbuffers.table.Table):
        obj = cls()
        obj.Init(table_obj.Bytes, table_obj.Pos)
    elif isinstance(table_obj, cls):
        obj = table_obj
    else:
        raise UsageError(f"decode_options: expected a flatbuffers Table or {member}, "
                         f"got {type(table_obj).__name__}")
    return _decode_table(obj, member)


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------
_INT_RANGES: dict[Any, tuple[int, int]] = {
    fbn.Int8Flags: (-(2**7), 2**7 - 1), fbn.Uint8Flags: (0, 2**8 - 1),
    fbn.Int16Flags: (-(2**15), 2**15 - 1), fbn.Uint16Flags: (0, 2**16 - 1),
    fbn.Int32Flags: (-(2**31), 2**31 - 1), fbn.Uint32Flags: (0, 2**32 - 1),
    fbn.Int64Flags: (-(2**63), 2**63 - 1), fbn.Uint64Flags: (0, 2**64 - 1),
}


def _encode_number(spec: FieldSpec, value: Any, where: str) -> Any:
    flags = spec.flags
    if spec.enum is not None:
        value = _enum_from_value(spec.enum, value, where)
    if flags is fbn.BoolFlags:
        if isinstance(value, (bool, np.bool_)) or value in (0, 1):
            return bool(value)
        raise UsageError(f"{where}: expected a bool, got {value!r}")
    if flags in (fbn.Float32Flags, fbn.Float64Flags):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise UsageError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UsageError(f"{where}: expected an int, got {value!r}")
    lo, hi = _INT_RANGES[flags]
    if not lo <= int(value) <= hi:
        raise UsageError(f"{where}: {value} does not fit the field's {flags.__name__[:-5]}")
    return int(value)


def _encode_string(b: flatbuffers.Builder, value: Any, where: str) -> int:
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value)
    elif not isinstance(value, str):
        raise UsageError(f"{where}: expected str or bytes, got {value!r}")
    offset: int = b.CreateString(value)
    return offset


def _encode_vector(b: flatbuffers.Builder, spec: FieldSpec, value: Any, where: str) -> int:
    if isinstance(value, (str, dict)) or not hasattr(value, "__iter__"):
        raise UsageError(f"{where}: expected a list, got {value!r}")
    items = list(value.tolist() if isinstance(value, np.ndarray) else value)
    if spec.kind == "string_vector":
        offsets = [_encode_string(b, v, f"{where}[{i}]") for i, v in enumerate(items)]
    elif spec.kind == "table_vector":
        offsets = [_encode_table(b, str(spec.table), v, f"{where}[{i}]")
                   for i, v in enumerate(items)]
    else:
        numbers = [_encode_number(spec, v, f"{where}[{i}]") for i, v in enumerate(items)]
        size = spec.flags.bytewidth
        b.StartVector(size, len(numbers), size)
        for v in reversed(numbers):
            b.Prepend(spec.flags, v)
        end: int = b.EndVector()
        return end
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    end = b.EndVector()
    return end


def _encode_table(b: flatbuffers.Builder, table: str, options: Any, where: str) -> int:
    specs = {s.key: s for s in table_fields(table)}
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise UsageError(f"{where}: options must be a dict, got {type(options).__name__}")
    unknown = sorted(set(options) - set(specs))
    if unknown:
        valid = ", ".join(specs) or "none"
        raise UsageError(f"{where}: unknown option(s) {', '.join(map(repr, unknown))}; "
                         f"valid keys: {valid}")
    module = importlib.import_module(f"tflite.{table}")
    # Offsets (strings, vectors, nested tables) must be built before the table is started.
    values: list[tuple[FieldSpec, Any]] = []
    for key, value in options.items():
        spec = specs[key]
        fwhere = f"{where}.{key}"
        if value is None:
            continue  # absent: the reader sees the schema default
        if spec.kind == "scalar":
            values.append((spec, _encode_number(spec, value, fwhere)))
        elif spec.kind == "string":
            values.append((spec, _encode_string(b, value, fwhere)))
        elif spec.kind == "table":
            values.append((spec, _encode_table(b, str(spec.table), value, fwhere)))
        else:
            values.append((spec, _encode_vector(b, spec, value, fwhere)))
    getattr(module, f"{table}Start")(b)
    for spec, value in values:
        getattr(module, f"{table}Add{spec.accessor}")(b, value)
    end: int = getattr(module, f"{table}End")(b)
    return end


def encode_options(builder: flatbuffers.Builder, union: str, member: str,
                   options: dict[str, Any] | None) -> int:
    """Write an options table with the bindings' builder functions; returns its offset.

    ``options`` uses :func:`decode_options`' keys and value forms; enum fields also take ints,
    ``[ubyte]`` vectors also ``bytes``, strings also ``bytes``.  Missing keys (or None values)
    are left out, so the reader sees the schema defaults.  Unknown keys, values of the wrong
    kind and integers out of the field's range raise UsageError.
    """
    _check_member(union, member)
    return _encode_table(builder, member, options, member)


__all__ = [
    "ENUM_FIELDS", "ENUM_FIELDS_BY_MEMBER", "ENUM_VECTOR_FIELDS", "FieldSpec", "OPTIONS_FOR_OP",
    "UNIONS", "decode_options", "default_options", "encode_options", "enum_values",
    "option_fields", "options_class", "options_for_op", "snake_case", "table_fields",
    "union_member_name", "union_type_code",
]
