"""schema/schema.fbs and the ``tflite`` bindings declare the same enums, unions and tables.

The schema text is parsed with a few regular expressions (enough for the TFLite schema, not a
general FlatBuffers parser) and every declared value is looked up in the bindings.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import flatbuffers
import flatbuffers.number_types as fbn
import pytest
import tflite
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tflite_ref.errors import ModelFormatError, UsageError
from tflite_ref.model import fbs, ops_table
from tflite_ref.model import schema as tl_schema
from tflite_ref.model.schema import BuiltinOperator

SCHEMA = Path(__file__).resolve().parent.parent / "schema" / "schema.fbs"

_COMMENT = re.compile(r"//[^\n]*")
_ENUM = re.compile(r"\benum\s+(\w+)\s*:\s*(\w+)\s*\{(.*?)\}", re.S)
_UNION = re.compile(r"\bunion\s+(\w+)\s*\{(.*?)\}", re.S)
_TABLE = re.compile(r"\btable\s+(\w+)\s*(?:\([^)]*\))?\s*\{(.*?)\}", re.S)
_ENUM_ITEM = re.compile(r"^(\w+)\s*(?:=\s*(-?\w+))?\s*(?:\(([^)]*)\))?$")
_FIELD = re.compile(r"^(\w+)\s*:\s*(\[?\s*\w+\s*\]?)\s*(?:=\s*([^(;]+?))?\s*(?:\(([^)]*)\))?$")


def _strip_comments(text: str) -> str:
    return _COMMENT.sub("", text)


def _items(body: str) -> list[str]:
    return [item.strip() for item in body.split(",") if item.strip()]


def parse_enums(text: str) -> dict[str, dict[str, int]]:
    """``{enum name: {value name: number}}``; implicit values count on from the previous one."""
    out: dict[str, dict[str, int]] = {}
    for name, _base, body in _ENUM.findall(_strip_comments(text)):
        values: dict[str, int] = {}
        nxt = 0
        for item in _items(body):
            m = _ENUM_ITEM.match(item)
            assert m, f"cannot parse enum item {item!r} of {name}"
            value = int(m.group(2), 0) if m.group(2) is not None else nxt
            values[m.group(1)] = value
            nxt = value + 1
        out[name] = values
    return out


def parse_unions(text: str) -> dict[str, dict[str, int]]:
    """``{union name: {member: type code}}``; NONE = 0 is implicit, members count from 1."""
    out: dict[str, dict[str, int]] = {}
    for name, body in _UNION.findall(_strip_comments(text)):
        members = {"NONE": 0}
        for i, item in enumerate(_items(body), start=1):
            m = _ENUM_ITEM.match(item)
            assert m and m.group(2) is None, f"cannot parse union member {item!r} of {name}"
            members[m.group(1)] = i
        out[name] = members
    return out


def parse_tables(text: str) -> dict[str, list[tuple[str, str, bool]]]:
    """``{table name: [(field name, type, deprecated), ...]}`` in declaration order."""
    out: dict[str, list[tuple[str, bool]]] = {}
    for name, body in _TABLE.findall(_strip_comments(text)):
        fields = []
        for item in body.split(";"):
            item = " ".join(item.split())
            if not item:
                continue
            m = _FIELD.match(item)
            assert m, f"cannot parse field {item!r} of table {name}"
            ftype = m.group(2).replace(" ", "")
            fields.append((m.group(1), ftype, "deprecated" in (m.group(4) or "")))
        out[name] = fields
    return out


def binding_values(name: str) -> dict[str, int]:
    """The name -> number map the ``tflite`` bindings know for enum/union ``name`` (read from
    the bindings themselves: tflite_ref's enums are generated from the schema, not from them)."""
    cls = getattr(importlib.import_module(f"tflite.{name}"), name)
    return {k: v for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def mismatches(declared: dict[str, int], known: dict[str, int]) -> list[str]:
    """Every declared value the bindings lack or number differently."""
    problems = []
    for value_name, number in declared.items():
        if value_name not in known:
            problems.append(f"{value_name} = {number} is missing from the bindings")
        elif known[value_name] != number:
            problems.append(
                f"{value_name} is {number} in the schema, {known[value_name]} in bindings")
    return problems


def _camel(field: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in field.split("_"))


@pytest.fixture(scope="module")
def schema_text() -> str:
    return SCHEMA.read_text(encoding="utf-8")


def test_schema_header(schema_text: str) -> None:
    assert 'file_identifier "TFL3";' in schema_text
    assert "namespace tflite;" in schema_text
    assert "root_type Model;" in schema_text
    assert "Licensed under the Apache License" in schema_text


def test_parser_finds_the_main_declarations(schema_text: str) -> None:
    enums = parse_enums(schema_text)
    unions = parse_unions(schema_text)
    for name in ("TensorType", "BuiltinOperator", "ActivationFunctionType", "Padding",
                 "MirrorPadMode", "LSHProjectionType", "LSTMKernelType", "CombinerType",
                 "RngAlgorithm", "ReduceWindowFunction", "StablehloPrecisionConfig",
                 "StablehloComparisonDirection", "StablehloComparisonType", "DimensionType",
                 "FullyConnectedOptionsWeightsFormat", "CustomOptionsFormat"):
        assert name in enums, name
    for name in ("BuiltinOptions", "BuiltinOptions2", "QuantizationDetails", "SparseIndexVector"):
        assert name in unions, name
    # Spot checks that the parser numbers things the way flatc does.
    assert enums["BuiltinOperator"]["CONV_2D"] == 3
    assert enums["BuiltinOperator"]["PLACEHOLDER_FOR_GREATER_OP_CODES"] == 127
    assert enums["Padding"] == {"SAME": 0, "VALID": 1}
    assert enums["StablehloComparisonDirection"]["STABLEHLO_COMPARISON_DIRECTION_LT"] == 5
    assert unions["BuiltinOptions"]["Conv2DOptions"] == 1
    assert unions["BuiltinOptions2"]["StablehloConcatenateOptions"] == 1
    assert len(enums["BuiltinOperator"]) > 200


@pytest.mark.parametrize("kind", ["enum", "union"])
def test_every_declared_value_is_known_to_the_bindings(schema_text: str, kind: str) -> None:
    declared = parse_enums(schema_text) if kind == "enum" else parse_unions(schema_text)
    problems = []
    for name, values in declared.items():
        try:
            known = binding_values(name)
        except (ImportError, AttributeError):
            problems.append(f"{kind} {name} is missing from the bindings")
            continue
        problems += [f"{name}.{p}" for p in mismatches(values, known)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "name", ["TensorType", "BuiltinOperator", "BuiltinOptions", "BuiltinOptions2",
             "ActivationFunctionType", "Padding"])
def test_tflite_ref_enums_match_schema_exactly(schema_text: str, name: str) -> None:
    declared = {**parse_enums(schema_text), **parse_unions(schema_text)}[name]
    ours = {m.name: int(m) for m in getattr(tl_schema, name)}
    # Both directions: the bindings must not know values this schema lacks either, or the
    # schema file is older than the bindings.
    assert ours == declared


@pytest.mark.parametrize("name", fbs.EXPORTED_ENUMS)
def test_tflite_ref_enums_equal_the_bindings(name: str) -> None:
    """The shipped enums come from schema.fbs; the ``tflite`` bindings must declare exactly the
    same members (else the bindings and the schema file are from different releases)."""
    ours = {m.name: int(m) for m in getattr(tl_schema, name)}
    assert ours == binding_values(name)


def test_mismatch_detection_is_real() -> None:
    # A schema that declares one value more (and one renumbered) than the bindings must fail.
    text = "enum Padding : byte { SAME, VALID, FULL }\nenum TensorType : byte { FLOAT32 = 1 }"
    declared = parse_enums(text)
    assert mismatches(declared["Padding"], binding_values("Padding")) == [
        "FULL = 2 is missing from the bindings"
    ]
    assert mismatches(declared["TensorType"], binding_values("TensorType")) == [
        "FLOAT32 is 1 in the schema, 0 in bindings"
    ]


def test_every_table_field_has_a_binding_accessor(schema_text: str) -> None:
    unions = parse_unions(schema_text)
    problems = []
    for table, fields in parse_tables(schema_text).items():
        try:
            cls = getattr(importlib.import_module(f"tflite.{table}"), table)
            module = importlib.import_module(f"tflite.{table}")
        except (ImportError, AttributeError):
            problems.append(f"table {table} is missing from the bindings")
            continue
        for field, _ftype, deprecated in fields:
            if not deprecated and not hasattr(cls, _camel(field)):
                problems.append(f"{table}.{field} has no accessor {_camel(field)}")
        # The builder reserves one slot per declared field, deprecated ones included, and two
        # for a union (its type and its value).
        slots = sum(2 if ftype in unions else 1 for _f, ftype, _d in fields)
        start = getattr(module, f"{table}Start")
        consts = [c for c in start.__code__.co_consts if isinstance(c, int)]
        if consts != [slots]:
            problems.append(f"{table}: schema declares {slots} slots, bindings {consts}")
    assert not problems, "\n".join(problems)
    assert tflite.__version__ == "2.18.0"


# --------------------------------------------------------------------------------------------
# tflite_ref.model.ops_table against the schema
# --------------------------------------------------------------------------------------------
ALL_MEMBERS = [
    (u, m.name) for u, enum in ops_table.UNIONS.items() for m in enum if m.name != "NONE"]


def test_every_operator_has_an_entry() -> None:
    missing = [op.name for op in BuiltinOperator if int(op) not in ops_table.OPTIONS_FOR_OP]
    assert not missing
    used = {v for v in ops_table.OPTIONS_FOR_OP.values() if v is not None}
    # Every options member belongs to at least one operator.
    assert sorted(set(ALL_MEMBERS) - used) == []


@pytest.mark.parametrize(("op", "expected"), [
    ("CONV_2D", ("BuiltinOptions", "Conv2DOptions")),
    ("DEPTHWISE_CONV_2D", ("BuiltinOptions", "DepthwiseConv2DOptions")),
    ("FULLY_CONNECTED", ("BuiltinOptions", "FullyConnectedOptions")),
    ("AVERAGE_POOL_2D", ("BuiltinOptions", "Pool2DOptions")),
    ("MAX_POOL_2D", ("BuiltinOptions", "Pool2DOptions")),
    ("L2_POOL_2D", ("BuiltinOptions", "Pool2DOptions")),
    ("RELU", None),
    ("ADD", ("BuiltinOptions", "AddOptions")),
    ("MEAN", ("BuiltinOptions", "ReducerOptions")),
    ("SUM", ("BuiltinOptions", "ReducerOptions")),
    ("REDUCE_MAX", ("BuiltinOptions", "ReducerOptions")),
    ("REDUCE_ALL", ("BuiltinOptions", "ReducerOptions")),
    ("SPLIT", ("BuiltinOptions", "SplitOptions")),
    ("UNIDIRECTIONAL_SEQUENCE_RNN", ("BuiltinOptions", "SequenceRNNOptions")),
    ("CONV_3D_TRANSPOSE", ("BuiltinOptions", "Conv3DOptions")),
    ("MULTINOMIAL", ("BuiltinOptions", "RandomOptions")),
    ("CUSTOM", None),
    ("STABLEHLO_ADD", None),
    ("STABLEHLO_CONVOLUTION", ("BuiltinOptions2", "StablehloConvolutionOptions")),
    ("STABLEHLO_COMPOSITE", ("BuiltinOptions2", "StableHLOCompositeOptions")),
    ("REDUCE_WINDOW", ("BuiltinOptions2", "ReduceWindowOptions")),
    ("DILATE", ("BuiltinOptions2", "DilateOptions")),
])
def test_known_mappings(op: str, expected: tuple[str, str] | None) -> None:
    assert ops_table.options_for_op(op) == expected
    assert ops_table.OPTIONS_FOR_OP[int(BuiltinOperator[op])] == expected


def test_union_codes() -> None:
    assert ops_table.union_member_name("BuiltinOptions", 1) == "Conv2DOptions"
    assert ops_table.union_member_name("BuiltinOptions", 0) is None
    assert ops_table.union_member_name("BuiltinOptions", 250) is None
    assert ops_table.union_type_code("BuiltinOptions2", "StablehloConcatenateOptions") == 1
    assert ops_table.options_class("BuiltinOptions", "Conv2DOptions") is tflite.Conv2DOptions
    with pytest.raises(UsageError):
        ops_table.options_class("BuiltinOptions", "StablehloConcatenateOptions")


def test_option_fields_match_schema(schema_text: str) -> None:
    """Reflection finds every declared field with its schema name, kind and enum type."""
    tables = parse_tables(schema_text)
    enums = parse_enums(schema_text)
    problems = []
    for union, member in ALL_MEMBERS:
        specs = {s.key: s for s in ops_table.option_fields(union, member)}
        declared = [(f, t) for f, t, dep in tables[member] if not dep]
        if list(specs) != [f for f, _ in declared]:
            problems.append(f"{member}: reflection {list(specs)} != schema {declared}")
            continue
        for field, ftype in declared:
            spec = specs[field]
            is_vec = ftype.startswith("[")
            base = ftype.strip("[]")
            kind = ("string" if base == "string" else "vector") if is_vec else (
                "string" if base == "string" else "scalar")
            if spec.kind != kind:
                problems.append(f"{member}.{field}: kind {spec.kind}, schema type {ftype}")
            expected_enum = base if base in enums else None
            if spec.enum != expected_enum:
                problems.append(f"{member}.{field}: enum {spec.enum}, schema type {ftype}")
    assert not problems, "\n".join(problems)


def test_snake_case() -> None:
    assert ops_table.snake_case("StrideW") == "stride_w"
    assert ops_table.snake_case("FusedActivationFunction") == "fused_activation_function"
    assert ops_table.snake_case("DilationHFactor") == "dilation_h_factor"
    assert ops_table.snake_case("KeepNumDims") == "keep_num_dims"
    assert ops_table.snake_case("NewShape") == "new_shape"
    assert ops_table.snake_case("Seed2") == "seed2"
    assert ops_table.snake_case("PotScaleInt16") == "pot_scale_int16"


_INT_BOUNDS = {
    fbn.Int8Flags: (-(2**7), 2**7 - 1), fbn.Uint8Flags: (0, 2**8 - 1),
    fbn.Int16Flags: (-(2**15), 2**15 - 1), fbn.Uint16Flags: (0, 2**16 - 1),
    fbn.Int32Flags: (-(2**31), 2**31 - 1), fbn.Uint32Flags: (0, 2**32 - 1),
    fbn.Int64Flags: (-(2**63), 2**63 - 1), fbn.Uint64Flags: (0, 2**64 - 1),
}


def _number_strategy(spec: ops_table.FieldSpec) -> st.SearchStrategy:
    if spec.flags is fbn.BoolFlags:
        return st.booleans()
    if spec.flags is fbn.Float32Flags:
        return st.floats(width=32, allow_nan=False)
    if spec.flags is fbn.Float64Flags:
        return st.floats(allow_nan=False)
    lo, hi = _INT_BOUNDS[spec.flags]
    if spec.enum is None:
        return st.integers(lo, hi)
    known = ops_table.enum_values(spec.enum)
    # Known numbers decode to their names, so only unknown ones may be drawn as ints.
    return st.one_of(st.sampled_from(sorted(known.values())),
                     st.integers(lo, hi).filter(lambda v: v not in known))


def _field_strategy(spec: ops_table.FieldSpec) -> st.SearchStrategy:
    text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=8)
    if spec.kind == "scalar":
        return _number_strategy(spec)
    if spec.kind == "string":
        return st.none() | text
    if spec.kind == "vector":
        return st.none() | st.lists(_number_strategy(spec), max_size=6)
    if spec.kind == "string_vector":
        return st.none() | st.lists(text, max_size=3)
    raise AssertionError(f"no strategy for {spec}")


def _options_strategy(member: str) -> st.SearchStrategy:
    specs = ops_table.table_fields(member)
    return st.fixed_dictionaries({}, optional={s.key: _field_strategy(s) for s in specs})


def _roundtrip(union: str, member: str, options: dict) -> dict:
    b = flatbuffers.Builder(64)
    b.Finish(ops_table.encode_options(b, union, member, options))
    obj = ops_table.options_class(union, member).GetRootAs(b.Output(), 0)
    return ops_table.decode_options(obj, union, member)


@pytest.mark.parametrize(("union", "member"), ALL_MEMBERS, ids=[m for _, m in ALL_MEMBERS])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_options_roundtrip(union: str, member: str, data: st.DataObject) -> None:
    options = data.draw(_options_strategy(member))
    expected = {**ops_table.default_options(union, member), **options}
    assert _roundtrip(union, member, options) == expected


def test_roundtrip_examples() -> None:
    conv = {"padding": "SAME", "stride_w": 2, "stride_h": 1, "fused_activation_function": "RELU6",
            "dilation_w_factor": 1, "dilation_h_factor": 3, "quantized_bias_type": "INT32"}
    assert _roundtrip("BuiltinOptions", "Conv2DOptions", conv) == conv
    assert _roundtrip("BuiltinOptions", "ReshapeOptions", {"new_shape": [1, -1]}) == {
        "new_shape": [1, -1]}
    # An empty vector is not the same as an absent one.
    assert _roundtrip("BuiltinOptions", "ReshapeOptions", {"new_shape": []}) == {"new_shape": []}
    assert _roundtrip("BuiltinOptions", "ReshapeOptions", {}) == {"new_shape": None}
    # Enum numbers are accepted and decoded to names; unknown ones stay ints.
    got = _roundtrip("BuiltinOptions", "Pool2DOptions",
                     {"padding": 1, "fused_activation_function": 77})
    assert got["padding"] == "VALID" and got["fused_activation_function"] == 77
    got = _roundtrip("BuiltinOptions2", "StablehloDotGeneralOptions",
                     {"precision_config": ["HIGH", 1, 9]})
    assert got["precision_config"] == ["HIGH", "HIGH", 9]
    got = _roundtrip("BuiltinOptions2", "StableHLOCompositeOptions",
                     {"name": "odml.foo", "composite_attributes": b"\x01\x02",
                      "composite_attributes_format": "FLEXBUFFERS", "version": 3})
    assert got == {"name": "odml.foo", "decomposition_subgraph_index": 0,
                   "composite_attributes": [1, 2], "composite_attributes_format": "FLEXBUFFERS",
                   "version": 3}
    got = _roundtrip("BuiltinOptions", "LSHProjectionOptions", {"type": "DENSE"})
    assert got == {"type": "DENSE"}


@pytest.mark.parametrize(("member", "options", "message"), [
    ("Conv2DOptions", {"stride": 1}, "valid keys: padding, stride_w"),
    ("Conv2DOptions", {"padding": "FULL"}, "is not a Padding"),
    ("Conv2DOptions", {"stride_w": 2**31}, "does not fit"),
    ("Conv2DOptions", {"stride_w": 1.5}, "expected an int"),
    ("ReducerOptions", {"keep_dims": 3}, "expected a bool"),
    ("ReshapeOptions", {"new_shape": 3}, "expected a list"),
    ("SoftmaxOptions", {"beta": "x"}, "expected a number"),
])
def test_encode_rejects(member: str, options: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        ops_table.encode_options(flatbuffers.Builder(0), "BuiltinOptions", member, options)
    assert member in str(info.value)


def test_decode_accepts_raw_table_and_none() -> None:
    b = flatbuffers.Builder(0)
    b.Finish(ops_table.encode_options(b, "BuiltinOptions", "SoftmaxOptions", {"beta": 0.5}))
    buf = b.Output()
    raw = flatbuffers.table.Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))
    assert ops_table.decode_options(raw, "BuiltinOptions", "SoftmaxOptions") == {"beta": 0.5}
    assert ops_table.decode_options(None, "BuiltinOptions", "AddOptions") == {
        "fused_activation_function": "NONE", "pot_scale_int16": True}


def test_decode_corrupt_vector_raises_model_format_error() -> None:
    b = flatbuffers.Builder(0)
    b.Finish(ops_table.encode_options(b, "BuiltinOptions", "ReshapeOptions", {"new_shape": [1, 2]}))
    buf = bytearray(b.Output())
    obj = tflite.ReshapeOptions.GetRootAs(buf, 0)
    # Claim a huge element count: the vector now runs past the end of the buffer.
    vec = obj._tab.Vector(obj._tab.Offset(4))
    buf[vec - 4 : vec] = (10**6).to_bytes(4, "little")
    with pytest.raises(ModelFormatError, match="ReshapeOptions.new_shape"):
        ops_table.decode_options(obj, "BuiltinOptions", "ReshapeOptions")
