"""tflite_ref.model.writer: bytes parse back with the raw bindings, and LiteRT runs them."""

from __future__ import annotations

import struct

import flatbuffers
import numpy as np
import pytest
import tflite
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tflite_ref
from tflite_ref.errors import ModelError, UsageError
from tflite_ref.model import ops_table
from tflite_ref.model.schema import NUMPY_DTYPES, TensorType
from tflite_ref.model.writer import (
    BUFFER_ALIGNMENT,
    DimensionMetadata,
    ModelBuilder,
    Quantization,
    Sparsity,
    default_version,
    encode_tensor_data,
    pack_int4,
    pack_strings,
    tensor_type,
)

HAS_LOAD = callable(getattr(tflite_ref, "load", None))


def parse(data: bytes) -> tflite.Model:
    assert tflite.Model.ModelBufferHasIdentifier(data, 0)
    return tflite.Model.GetRootAs(data, 0)


def vector_position(table: object, slot: int) -> int | None:
    """Absolute file position of the first element of vector field ``slot``."""
    tab = table._tab  # type: ignore[attr-defined]
    o = tab.Offset(4 + 2 * slot)
    return tab.Vector(o) if o else None


def raw_builtin_code(oc: tflite.OperatorCode) -> int:
    """The stored ``builtin_code`` field.  The package's ``BuiltinCode()`` is patched to fall
    back to ``deprecated_builtin_code`` below 127, which would hide what was written."""
    o = oc._tab.Offset(10)
    return oc._tab.Get(flatbuffers.number_types.Int32Flags, o + oc._tab.Pos) if o else 0


def options_of(op: tflite.Operator) -> tuple[str | None, dict]:
    for union, type_getter, getter in (
        ("BuiltinOptions", op.BuiltinOptionsType, op.BuiltinOptions),
        ("BuiltinOptions2", op.BuiltinOptions2Type, op.BuiltinOptions2),
    ):
        member = ops_table.union_member_name(union, type_getter())
        if member is not None:
            return member, ops_table.decode_options(getter(), union, member)
    return None, {}


# --------------------------------------------------------------------------------------------
# Models used below
# --------------------------------------------------------------------------------------------
def conv_int8_model(mb: ModelBuilder | None = None) -> tuple[ModelBuilder, dict]:
    rng = np.random.default_rng(1)
    mb = mb or ModelBuilder(description="conv int8 per-channel")
    sg = mb.subgraph(name="main")
    in_scale, w_scales = 0.05, np.array([0.01, 0.02, 0.015, 0.03], dtype=np.float32)
    x = sg.tensor("x", [1, 8, 8, 3], "INT8", scale=in_scale, zero_point=-3)
    w_data = rng.integers(-127, 128, size=(4, 3, 3, 3), dtype=np.int8)
    w = sg.tensor("w", [4, 3, 3, 3], "INT8", data=w_data, scale=w_scales.tolist(),
                  zero_point=[0] * 4, quantized_dimension=0)
    b_data = rng.integers(-1000, 1000, size=4, dtype=np.int32)
    b = sg.tensor("b", [4], "INT32", data=b_data, scale=(in_scale * w_scales).tolist(),
                  zero_point=[0] * 4)
    y = sg.tensor("y", [1, 8, 8, 4], "INT8", scale=0.1, zero_point=2)
    sg.operator("CONV_2D", [x, w, b], [y],
                {"padding": "SAME", "stride_w": 1, "stride_h": 1,
                 "fused_activation_function": "RELU6"})
    sg.inputs, sg.outputs = [x], [y]
    mb.signature("serving_default", sg, inputs={"x": x}, outputs={"y": y})
    return mb, {"x": x, "w": w, "b": b, "y": y, "w_data": w_data, "b_data": b_data,
                "w_scales": w_scales}


def fc_float_model() -> tuple[ModelBuilder, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 5)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    mb = ModelBuilder(description="fc float")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [2, 5], "FLOAT32")
    wt = sg.tensor("w", [3, 5], "FLOAT32", data=w)
    bt = sg.tensor("b", [3], "FLOAT32", data=bias)
    y = sg.tensor("y", [2, 3], "FLOAT32")
    sg.operator("FULLY_CONNECTED", [x, wt, bt], [y], {"fused_activation_function": "RELU"})
    sg.inputs, sg.outputs = [x], [y]
    mb.signature("serving_default", sg, inputs={"x": x}, outputs={"y": y})
    mb.metadata("min_runtime_version", b"1.5.0".ljust(16, b"\0"))
    return mb, w, bias


def add_int8_model() -> ModelBuilder:
    mb = ModelBuilder()
    sg = mb.subgraph("main")
    a = sg.tensor("a", [1, 4], "INT8", scale=0.1, zero_point=1)
    b = sg.tensor("b", [1, 4], "INT8", scale=0.05, zero_point=-2)
    c = sg.tensor("c", [1, 4], "INT8", scale=0.2, zero_point=0)
    sg.operator("ADD", [a, b], [c], {"fused_activation_function": "NONE"})
    sg.inputs, sg.outputs = [a, b], [c]
    return mb


def litert(data: bytes):  # noqa: ANN201
    interp_mod = pytest.importorskip("ai_edge_litert.interpreter")
    it = interp_mod.Interpreter(
        model_content=data, experimental_op_resolver_type=interp_mod.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    return it


def details_by_name(it) -> dict:  # noqa: ANN001
    return {d["name"]: d for d in it.get_tensor_details()}


# --------------------------------------------------------------------------------------------
# Container-level guarantees
# --------------------------------------------------------------------------------------------
def test_header_version_sentinel_and_alignment() -> None:
    mb, t = conv_int8_model()
    mb.metadata("note", b"hello")
    data = mb.build()
    assert data[4:8] == b"TFL3"
    m = parse(data)
    assert m.Version() == 3
    assert m.Description() == b"conv int8 per-channel"
    # Buffer 0: the empty sentinel; then one buffer per constant, then the metadata buffer.
    assert m.BuffersLength() == 4
    assert m.Buffers(0).DataIsNone() and m.Buffers(0).Offset() == 0
    sg = m.Subgraphs(0)
    assert [sg.Tensors(i).Buffer() for i in range(sg.TensorsLength())] == [0, 1, 2, 0]
    for i in range(1, m.BuffersLength()):
        pos = vector_position(m.Buffers(i), 0)
        assert pos is not None and pos % BUFFER_ALIGNMENT == 0, (i, pos)
    assert m.Buffers(1).DataAsNumpy().tobytes() == t["w_data"].tobytes()
    assert m.Buffers(2).DataAsNumpy().tobytes() == t["b_data"].astype("<i4").tobytes()


def test_round_trip_through_bindings() -> None:
    mb = ModelBuilder(description="everything")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 4, 4, 2], "FLOAT32", shape_signature=[-1, 4, 4, 2])
    w = sg.tensor("w", [3, 2], "INT8", data=np.arange(6).reshape(3, 2),
                  scale=[0.5, 0.25, 0.125], zero_point=[0, 1, -1], quantized_dimension=0,
                  quant_min=[-1.0, -2.0, -3.0], quant_max=[1.0, 2.0, 3.0])
    state = sg.tensor("state", [1, 3], "FLOAT32", is_variable=True)
    inter = sg.tensor("inter", [1, 3], "INT16", quantization=Quantization(
        scale=[2.0**-10], zero_point=[0], custom=b"\x01\x02\x03"))
    scalar = sg.tensor("scalar", [], "INT32", data=np.int32(7))
    unranked = sg.tensor(None, None, "FLOAT32", has_rank=False)
    y = sg.tensor("y", [1, 3], "FLOAT32")
    op0 = sg.operator("FULLY_CONNECTED", [x, w, None], [y],
                      {"keep_num_dims": True, "weights_format": "SHUFFLED4x16INT8"},
                      version=9, intermediates=[inter], mutating_variable_inputs=[False, True])
    sg.operator("RESHAPE", [y, scalar], [state], {"new_shape": [1, 3]})
    sg.operator("CUSTOM:MyOp", [state], [unranked], custom_options=b"\xaa\xbb",
                custom_options_format=0, version=2)
    sg.inputs, sg.outputs = [x], [y, unranked]
    mb.signature("run", sg, inputs={"input": x}, outputs={"out": y, "other": unranked})
    mb.metadata("min_runtime_version", b"2.3.0\0\0\0")
    mb.metadata("blob", b"\x00\x01\x02")
    data = mb.build()

    m = parse(data)
    g = m.Subgraphs(0)
    assert g.Name() == b"main"
    assert g.TensorsLength() == 7
    assert [g.Inputs(i) for i in range(g.InputsLength())] == [x.index]
    assert g.OutputsAsNumpy().tolist() == [y.index, unranked.index]

    tx = g.Tensors(x.index)
    assert tx.Name() == b"x" and tx.Type() == TensorType.FLOAT32
    assert tx.ShapeAsNumpy().tolist() == [1, 4, 4, 2]
    assert tx.ShapeSignatureAsNumpy().tolist() == [-1, 4, 4, 2]
    assert tx.HasRank() and not tx.IsVariable() and tx.Quantization() is None

    tw = g.Tensors(w.index)
    q = tw.Quantization()
    assert q.ScaleAsNumpy().tolist() == [0.5, 0.25, 0.125]
    assert q.ZeroPointAsNumpy().tolist() == [0, 1, -1]
    assert q.QuantizedDimension() == 0
    assert q.MinAsNumpy().tolist() == [-1.0, -2.0, -3.0]
    assert q.MaxAsNumpy().tolist() == [1.0, 2.0, 3.0]
    assert m.Buffers(tw.Buffer()).DataAsNumpy().tolist() == [0, 1, 2, 3, 4, 5]

    assert g.Tensors(state.index).IsVariable()
    qi = g.Tensors(inter.index).Quantization()
    assert qi.DetailsType() == 1  # CustomQuantization
    cq = tflite.CustomQuantization()
    cq.Init(qi.Details().Bytes, qi.Details().Pos)
    assert cq.CustomAsNumpy().tobytes() == b"\x01\x02\x03"
    ts = g.Tensors(scalar.index)
    assert ts.ShapeLength() == 0 and ts.HasRank()
    assert struct.unpack("<i", m.Buffers(ts.Buffer()).DataAsNumpy().tobytes()) == (7,)
    tu = g.Tensors(unranked.index)
    assert tu.ShapeIsNone() and not tu.HasRank() and tu.Name() is None

    assert g.OperatorsLength() == 3
    o0, o1, o2 = (g.Operators(i) for i in range(3))
    assert o0.InputsAsNumpy().tolist() == [x.index, w.index, -1]
    assert o0.OutputsAsNumpy().tolist() == [y.index]
    assert o0.IntermediatesAsNumpy().tolist() == [inter.index]
    assert o0.MutatingVariableInputsAsNumpy().tolist() == [False, True]
    member, opts = options_of(o0)
    assert member == "FullyConnectedOptions"
    assert opts == {**ops_table.default_options("BuiltinOptions", member),
                    "keep_num_dims": True, "weights_format": "SHUFFLED4x16INT8"}
    assert op0.options == {"keep_num_dims": True, "weights_format": "SHUFFLED4x16INT8"}
    assert options_of(o1) == ("ReshapeOptions", {"new_shape": [1, 3]})
    assert o2.BuiltinOptionsType() == 0 and o2.BuiltinOptions2Type() == 0
    assert o2.CustomOptionsAsNumpy().tobytes() == b"\xaa\xbb"

    codes = [m.OperatorCodes(o.OpcodeIndex()) for o in (o0, o1, o2)]
    assert [(raw_builtin_code(c), c.DeprecatedBuiltinCode(), c.Version()) for c in codes] == [
        (9, 9, 9), (22, 22, 1), (32, 32, 2)]
    assert codes[2].CustomCode() == b"MyOp"

    assert m.SignatureDefsLength() == 1
    sig = m.SignatureDefs(0)
    assert sig.SignatureKey() == b"run" and sig.SubgraphIndex() == 0
    assert [(sig.Inputs(i).Name(), sig.Inputs(i).TensorIndex())
            for i in range(sig.InputsLength())] == [(b"input", x.index)]
    assert [(sig.Outputs(i).Name(), sig.Outputs(i).TensorIndex())
            for i in range(sig.OutputsLength())] == [(b"out", y.index), (b"other", unranked.index)]

    meta = {m.Metadata(i).Name(): m.Buffers(m.Metadata(i).Buffer()).DataAsNumpy().tobytes()
            for i in range(m.MetadataLength())}
    assert meta == {b"min_runtime_version": b"2.3.0\0\0\0", b"blob": b"\x00\x01\x02"}


def test_operator_codes_deduplicated_with_deprecated_code() -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    t = [sg.tensor(f"t{i}", [2], "FLOAT32") for i in range(8)]
    sg.operator("ADD", [t[0], t[1]], [t[2]])
    sg.operator("ADD", [t[2], t[1]], [t[3]])
    sg.operator("ADD", [t[3], t[1]], [t[4]], version=2)
    sg.operator("CUSTOM:A", [t[4]], [t[5]])
    sg.operator("CUSTOM", [t[5]], [t[6]], custom_code="A")
    sg.operator("STABLEHLO_ADD", [t[6], t[6]], [t[7]])  # code 163 > 127
    sg.operator("BROADCAST_TO", [t[6], t[6]], [t[7]])  # code 130
    sg2 = mb.subgraph()
    u = [sg2.tensor(f"u{i}", [2], "FLOAT32") for i in range(3)]
    sg2.operator("ADD", [u[0], u[1]], [u[2]])
    m = parse(mb.build())
    codes = [(raw_builtin_code(m.OperatorCodes(i)), m.OperatorCodes(i).DeprecatedBuiltinCode(),
              m.OperatorCodes(i).CustomCode(), m.OperatorCodes(i).Version())
             for i in range(m.OperatorCodesLength())]
    assert codes == [(0, 0, None, 1), (0, 0, None, 2), (32, 32, b"A", 1), (163, 127, None, 1),
                     (130, 127, None, 1)]
    g = m.Subgraphs(0)
    assert [g.Operators(i).OpcodeIndex() for i in range(g.OperatorsLength())] == [
        0, 0, 1, 2, 2, 3, 4]
    assert m.Subgraphs(1).Operators(0).OpcodeIndex() == 0


def test_raw_operator_code_and_opcode_index() -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    a, b = sg.tensor("a", [1], "FLOAT32"), sg.tensor("b", [1], "FLOAT32")
    raw = mb.operator_code(3, deprecated_builtin_code=4, version=7)
    sg.operator("RELU", [a], [b])
    sg.operator("RELU", [a], [b], opcode_index=raw)
    sg.operator(250, [a], [b], opcode_index=99)  # dangling index, unknown op
    m = parse(mb.build())
    assert m.OperatorCodesLength() == 2
    oc = m.OperatorCodes(raw)
    assert (raw_builtin_code(oc), oc.DeprecatedBuiltinCode(), oc.Version()) == (3, 4, 7)
    g = m.Subgraphs(0)
    assert [g.Operators(i).OpcodeIndex() for i in range(3)] == [1, raw, 99]


def test_builtin_options_2_and_subgraph_valued_options() -> None:
    mb = ModelBuilder()
    main = mb.subgraph("main")
    body = mb.subgraph("body")
    cond = mb.subgraph("cond")
    a, b = main.tensor("a", [2], "FLOAT32"), main.tensor("b", [2], "FLOAT32")
    main.operator("STABLEHLO_COMPOSITE", [a], [b],
                  {"name": "odml.x", "decomposition_subgraph_index": body, "version": 2,
                   "composite_attributes": b"\x00\x01"})
    main.operator("WHILE", [a], [b], {"cond_subgraph_index": cond, "body_subgraph_index": body})
    main.operator("STABLEHLO_COMPARE", [a, a], [b], {"comparison_direction":
                                                      "STABLEHLO_COMPARISON_DIRECTION_LT"})
    g = parse(mb.build()).Subgraphs(0)
    o0, o1, o2 = (g.Operators(i) for i in range(3))
    assert o0.BuiltinOptionsType() == 0
    assert o0.BuiltinOptions2Type() == ops_table.union_type_code(
        "BuiltinOptions2", "StableHLOCompositeOptions")
    assert options_of(o0) == ("StableHLOCompositeOptions", {
        "name": "odml.x", "decomposition_subgraph_index": 1, "composite_attributes": [0, 1],
        "composite_attributes_format": "FLEXBUFFERS", "version": 2})
    assert options_of(o1) == ("WhileOptions", {"cond_subgraph_index": 2,
                                               "body_subgraph_index": 1})
    assert options_of(o2)[1]["comparison_direction"] == "STABLEHLO_COMPARISON_DIRECTION_LT"


def test_options_defaults_written_and_overridable() -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    a, b = sg.tensor("a", [2], "FLOAT32"), sg.tensor("b", [2], "FLOAT32")
    sg.operator("ADD", [a, a], [b])  # no options given: the table is still written
    sg.operator("ADD", [a, a], [b], options_member="NONE")
    sg.operator("ADD", [a, a], [b], {"beta": 2.0}, options_member="SoftmaxOptions")
    g = parse(mb.build()).Subgraphs(0)
    assert options_of(g.Operators(0)) == ("AddOptions", {"fused_activation_function": "NONE",
                                                         "pot_scale_int16": True})
    assert g.Operators(1).BuiltinOptionsType() == 0
    assert options_of(g.Operators(2)) == ("SoftmaxOptions", {"beta": 2.0})


# --------------------------------------------------------------------------------------------
# Tensor data
# --------------------------------------------------------------------------------------------
def test_int4_packing_low_nibble_first() -> None:
    assert pack_int4([1, 2]) == bytes([0x21])
    assert pack_int4([-1, 7, -8]) == bytes([0x7F, 0x08])
    values = np.arange(-8, 8, dtype=np.int8)
    packed = np.frombuffer(pack_int4(values), dtype=np.uint8)
    low = ((packed & 0xF).astype(np.int8) ^ 8) - 8
    high = ((packed >> 4).astype(np.int8) ^ 8) - 8
    assert np.stack([low, high], axis=1).reshape(-1).tolist() == values.tolist()
    with pytest.raises(UsageError):
        pack_int4([8])
    mb = ModelBuilder()
    sg = mb.subgraph()
    t = sg.tensor("w", [3], "INT4", data=[1, -2, 3])
    m = parse(mb.build())
    assert m.Buffers(t.buffer).DataAsNumpy().tobytes() == bytes([0xE1, 0x03])


def test_string_packing() -> None:
    raw = pack_strings(["ab", b"", "xyz"])
    count, *offsets = struct.unpack_from("<5i", raw)
    assert count == 3 and offsets == [20, 22, 22, 25]
    assert raw[20:] == b"abxyz"
    assert encode_tensor_data(np.array(["ab", "c"], dtype=object), TensorType.STRING) == \
        pack_strings(["ab", "c"])


@pytest.mark.parametrize("code", sorted(c for c, dt in NUMPY_DTYPES.items()
                                        if dt != np.dtype(np.object_) and c != TensorType.INT4))
def test_every_numpy_dtype_round_trips(code: int) -> None:
    dt = NUMPY_DTYPES[code]
    values = (np.arange(6) % 2).astype(dt).reshape(2, 3)
    mb = ModelBuilder()
    sg = mb.subgraph()
    t = sg.tensor("c", [2, 3], code, data=values)
    raw = parse(mb.build()).Buffers(t.buffer).DataAsNumpy().tobytes()
    assert np.array_equal(np.frombuffer(raw, dtype=dt.newbyteorder("<")).reshape(2, 3), values)


def test_data_conversion_rules() -> None:
    assert encode_tensor_data([1, 2], TensorType.INT16) == b"\x01\x00\x02\x00"
    assert encode_tensor_data(b"\x05", TensorType.INT32) == b"\x05"  # raw bytes kept verbatim
    assert encode_tensor_data(np.array([1.0], dtype=np.float64), TensorType.FLOAT32) == \
        np.float32(1.0).tobytes()
    with pytest.raises(UsageError, match="without loss"):
        encode_tensor_data(np.array([1.5]), TensorType.INT8)
    bf16 = encode_tensor_data(np.array([1.0, -2.0], dtype=np.float32), TensorType.BFLOAT16)
    assert bf16 == bytes([0x80, 0x3F, 0x00, 0xC0])
    assert tensor_type("int8") == tensor_type(np.int8) == tensor_type(TensorType.INT8) == 9
    with pytest.raises(UsageError):
        tensor_type("INT9")


def test_sparsity_written() -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    t = sg.tensor("s", [2, 4], "FLOAT32", data=np.array([1.0, 2.0, 3.0], dtype=np.float32),
                  sparsity=Sparsity(traversal_order=[0, 1], dim_metadata=[
                      DimensionMetadata("DENSE", dense_size=2),
                      DimensionMetadata("SPARSE_CSR", array_segments=np.array([0, 2, 3],
                                                                              dtype=np.uint8),
                                        array_indices=[0, 3, 1])]))
    sp = parse(mb.build()).Subgraphs(0).Tensors(t.index).Sparsity()
    assert sp.TraversalOrderAsNumpy().tolist() == [0, 1] and sp.BlockMapIsNone()
    d0, d1 = sp.DimMetadata(0), sp.DimMetadata(1)
    assert (d0.Format(), d0.DenseSize()) == (0, 2)
    assert (d1.Format(), d1.ArraySegmentsType(), d1.ArrayIndicesType()) == (1, 3, 1)
    segs = tflite.Uint8Vector()
    segs.Init(d1.ArraySegments().Bytes, d1.ArraySegments().Pos)
    assert segs.ValuesAsNumpy().tolist() == [0, 2, 3]


# --------------------------------------------------------------------------------------------
# Hostile files and usage errors
# --------------------------------------------------------------------------------------------
def test_hostile_values_are_written_not_checked() -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    a = sg.tensor("a", [2, 2], "FLOAT32", data=np.zeros(3, dtype=np.float32))  # 3 of 4 values
    b = sg.tensor("b", [2], "INT8", buffer=77)  # dangling buffer index
    sg.operator("ADD", [a, 999], [b, -5])
    sg.inputs, sg.outputs = [1234], [b]
    data = mb.build()
    m = parse(data)
    g = m.Subgraphs(0)
    assert g.Operators(0).InputsAsNumpy().tolist() == [0, 999]
    assert g.Operators(0).OutputsAsNumpy().tolist() == [1, -5]
    assert g.Tensors(1).Buffer() == 77 and g.InputsAsNumpy().tolist() == [1234]
    assert m.Buffers(g.Tensors(0).Buffer()).DataLength() == 12
    if HAS_LOAD:
        with pytest.raises(ModelError):
            tflite_ref.load(data)


@pytest.mark.parametrize(("call", "message"), [
    (lambda sg, t: sg.operator("CONV_2D", [t], [t], {"stride": 1}),
     r"subgraph 0, operator 0 \(CONV_2D\): Conv2DOptions: unknown option\(s\) 'stride'; "
     r"valid keys: padding, stride_w"),
    (lambda sg, t: sg.operator("CONV_2D", [t], [t], {"padding": "FULL"}), "not a Padding"),
    (lambda sg, t: sg.operator("RELU", [t], [t], {"alpha": 1.0}), "takes no builtin options"),
    (lambda sg, t: sg.operator("NOT_AN_OP", [t], [t]), "unknown builtin operator"),
    (lambda sg, t: sg.operator("ADD", [t, "x"], [t]), "expected a tensor handle"),
    (lambda sg, t: sg.tensor("c", [1], "INT8", data=[1.5]), "without loss"),
    (lambda sg, t: sg.tensor("c", [1], "INT8", data=[1], buffer=3), "not both"),
    (lambda sg, t: sg.operator("ADD", [t], [t], options_member="Bogus"), "not an options table"),
])
def test_usage_errors(call, message: str) -> None:  # noqa: ANN001
    mb = ModelBuilder()
    sg = mb.subgraph()
    t = sg.tensor("t", [1], "FLOAT32")
    with pytest.raises(UsageError, match=message):
        call(sg, t)


def test_build_time_range_errors() -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    sg.tensor("t", [2**31], "FLOAT32")
    with pytest.raises(UsageError, match="does not fit int32"):
        mb.build()
    with pytest.raises(UsageError, match="no subgraph"):
        ModelBuilder().build()


def test_default_version() -> None:
    assert default_version("CONV_2D") == 1
    mb = ModelBuilder()
    sg = mb.subgraph()
    t = sg.tensor("t", [1], "FLOAT32")
    assert sg.operator("RELU", [t], [t]).version == 1


# --------------------------------------------------------------------------------------------
# External buffers
# --------------------------------------------------------------------------------------------
def test_external_buffers_layout() -> None:
    mb, t = conv_int8_model()
    mb.metadata("min_runtime_version", b"1.14.0".ljust(16, b"\0"))
    sg = mb.subgraphs[0]
    extra_in, extra_out = sg.tensor("e_in", [2], "FLOAT32"), sg.tensor("e_out", [2], "FLOAT32")
    sg.operator("CUSTOM:Big", [extra_in], [extra_out], custom_options=b"\x07" * 33)
    inline, external = mb.build(), mb.build(external_buffers=True)
    m = parse(external)
    # The FlatBuffer part carries no tensor bytes; they follow it, aligned, at Buffer.offset.
    for i, expected in ((1, t["w_data"].tobytes()), (2, t["b_data"].astype("<i4").tobytes())):
        buf = m.Buffers(i)
        assert buf.DataIsNone()
        assert buf.Offset() > 1 and buf.Offset() % BUFFER_ALIGNMENT == 0
        assert buf.Size() == len(expected)
        assert external[buf.Offset(): buf.Offset() + buf.Size()] == expected
    meta = m.Buffers(m.Metadata(0).Buffer())
    assert not meta.DataIsNone() and meta.Offset() == 0  # metadata stays inline
    op = m.Subgraphs(0).Operators(1)
    assert op.CustomOptionsIsNone()
    off, size = op.LargeCustomOptionsOffset(), op.LargeCustomOptionsSize()
    assert size == 33 and external[off: off + size] == b"\x07" * 33
    assert len(external) % BUFFER_ALIGNMENT == 0
    assert len(external) > len(inline) - len(t["w_data"].tobytes())
    if HAS_LOAD:
        a, b = tflite_ref.load(inline), tflite_ref.load(external)
        for ta, tb in zip(a.subgraphs[0].tensors, b.subgraphs[0].tensors):
            if ta.data is None:
                assert tb.data is None
            else:
                assert np.array_equal(ta.data, tb.data)
        assert b.subgraphs[0].operators[1].custom_options == b"\x07" * 33


# --------------------------------------------------------------------------------------------
# Through tflite_ref.load (the reader), when it is there
# --------------------------------------------------------------------------------------------
@pytest.mark.skipif(not HAS_LOAD, reason="tflite_ref.load not available")
def test_round_trip_through_reader() -> None:
    mb, t = conv_int8_model()
    mb.metadata("min_runtime_version", b"1.14.0".ljust(16, b"\0"))
    model = tflite_ref.load(mb.build())
    g = model.subgraphs[0]
    assert model.version == 3 and model.description == "conv int8 per-channel"
    assert [tt.name for tt in g.tensors] == ["x", "w", "b", "y"]
    assert g.tensors[1].shape == (4, 3, 3, 3) and g.tensors[1].type_name == "INT8"
    assert np.array_equal(g.tensors[1].data, t["w_data"])
    assert np.array_equal(g.tensors[2].data, t["b_data"])
    q = g.tensors[1].quantization
    assert np.allclose(q.scale, t["w_scales"]) and q.quantized_dimension == 0
    assert g.tensors[0].quantization.zero_point.tolist() == [-3]
    op = g.operators[0]
    assert op.name == "CONV_2D" and op.options_type == "Conv2DOptions"
    assert op.options["padding"] == "SAME" and op.options["fused_activation_function"] == "RELU6"
    assert model.signatures[0].key == "serving_default"
    assert dict(model.signatures[0].inputs) == {"x": 0}
    assert model.min_runtime_version == "1.14.0"


# --------------------------------------------------------------------------------------------
# LiteRT runs what the writer writes
# --------------------------------------------------------------------------------------------
def test_litert_conv2d_int8_per_channel() -> None:
    mb, t = conv_int8_model()
    it = litert(mb.build())
    x = np.random.default_rng(3).integers(-128, 128, size=(1, 8, 8, 3), dtype=np.int8)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    out = it.get_output_details()[0]
    y = it.get_tensor(out["index"])
    assert y.shape == (1, 8, 8, 4) and y.dtype == np.int8
    assert out["quantization"] == (pytest.approx(0.1), 2)
    d = details_by_name(it)
    qw = d["w"]["quantization_parameters"]
    assert np.allclose(qw["scales"], t["w_scales"]) and qw["zero_points"].tolist() == [0] * 4
    assert qw["quantized_dimension"] == 0
    assert d["y"]["dtype"] == np.int8 and tuple(d["y"]["shape"]) == (1, 8, 8, 4)
    # RELU6 on scale 0.1 / zero point 2: outputs lie in [2, 62].
    assert y.min() >= 2 and y.max() <= 62 and len(np.unique(y)) > 1


def test_litert_fully_connected_float_matches_numpy() -> None:
    mb, w, bias = fc_float_model()
    it = litert(mb.build())
    x = np.random.default_rng(4).standard_normal((2, 5)).astype(np.float32)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    y = it.get_tensor(it.get_output_details()[0]["index"])
    assert y.shape == (2, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y, np.maximum(x @ w.T + bias, 0.0), rtol=1e-5, atol=1e-5)


def test_litert_add_int8() -> None:
    it = litert(add_int8_model().build())
    ins = it.get_input_details()
    a = np.array([[10, -20, 30, 0]], dtype=np.int8)
    b = np.array([[4, 8, -12, 100]], dtype=np.int8)
    it.set_tensor(ins[0]["index"], a)
    it.set_tensor(ins[1]["index"], b)
    it.invoke()
    out = it.get_output_details()[0]
    c = it.get_tensor(out["index"])
    assert c.shape == (1, 4) and c.dtype == np.int8
    assert out["quantization"] == (pytest.approx(0.2), 0)
    expected = 0.1 * (a.astype(float) - 1) + 0.05 * (b.astype(float) + 2)
    assert np.all(np.abs(0.2 * c - expected) <= 0.2 + 1e-6)


def test_litert_two_signatures_two_subgraphs() -> None:
    mb = ModelBuilder(description="two entry points")
    for key, op, k in (("add", "ADD", 0), ("mul", "MUL", 1)):
        sg = mb.subgraph(key)
        assert sg.index == k
        a = sg.tensor("a", [3], "FLOAT32")
        c = sg.tensor("c", [3], "FLOAT32", data=np.array([1.0, 2.0, 3.0], dtype=np.float32))
        y = sg.tensor("y", [3], "FLOAT32")
        sg.operator(op, [a, c], [y])
        sg.inputs, sg.outputs = [a], [y]
        mb.signature(key, sg, inputs={"a": a}, outputs={"y": y})
    it = litert(mb.build())
    assert set(it.get_signature_list()) == {"add", "mul"}
    x = np.array([2.0, 3.0, 4.0], dtype=np.float32)
    np.testing.assert_allclose(it.get_signature_runner("add")(a=x)["y"], x + [1, 2, 3])
    np.testing.assert_allclose(it.get_signature_runner("mul")(a=x)["y"], x * [1, 2, 3])


def while_model() -> ModelBuilder:
    """i, acc = 0, x; while i < 5: i += 1; acc = acc * 2 — three subgraphs."""
    mb = ModelBuilder(description="while loop")
    main, cond, body = mb.subgraph("main"), mb.subgraph("cond"), mb.subgraph("body")
    i0 = main.tensor("i0", [], "INT32", data=np.int32(0))
    x = main.tensor("x", [2], "FLOAT32")
    i_out, acc_out = main.tensor("i_out", [], "INT32"), main.tensor("acc", [2], "FLOAT32")
    main.operator("WHILE", [i0, x], [i_out, acc_out],
                  {"cond_subgraph_index": cond, "body_subgraph_index": body})
    main.inputs, main.outputs = [x], [acc_out, i_out]

    ci, cacc = cond.tensor("i", [], "INT32"), cond.tensor("acc", [2], "FLOAT32")
    limit = cond.tensor("limit", [], "INT32", data=np.int32(5))
    flag = cond.tensor("flag", [], "BOOL")
    cond.operator("LESS", [ci, limit], [flag])
    cond.inputs, cond.outputs = [ci, cacc], [flag]

    bi, bacc = body.tensor("i", [], "INT32"), body.tensor("acc", [2], "FLOAT32")
    one = body.tensor("one", [], "INT32", data=np.int32(1))
    two = body.tensor("two", [], "FLOAT32", data=np.float32(2.0))
    bi2, bacc2 = body.tensor("i2", [], "INT32"), body.tensor("acc2", [2], "FLOAT32")
    body.operator("ADD", [bi, one], [bi2])
    body.operator("MUL", [bacc, two], [bacc2])
    body.inputs, body.outputs = [bi, bacc], [bi2, bacc2]
    mb.signature("serving_default", main, inputs={"x": x}, outputs={"acc": acc_out, "i": i_out})
    return mb


def test_litert_while_runs_cond_and_body_subgraphs() -> None:
    it = litert(while_model().build())
    x = np.array([1.5, -3.0], dtype=np.float32)
    res = it.get_signature_runner()(x=x)
    assert int(res["i"]) == 5
    np.testing.assert_allclose(res["acc"], x * 32)


@pytest.mark.parametrize("make", [
    lambda: conv_int8_model()[0], lambda: fc_float_model()[0], add_int8_model, while_model])
def test_litert_external_buffers_same_outputs(make) -> None:  # noqa: ANN001
    mb = make()
    results = []
    for external in (False, True):
        it = litert(mb.build(external_buffers=external))
        rng = np.random.default_rng(5)
        for d in it.get_input_details():
            if d["dtype"] == np.float32:
                value = rng.standard_normal(d["shape"]).astype(np.float32)
            else:
                value = rng.integers(-100, 100, size=d["shape"]).astype(d["dtype"])
            it.set_tensor(d["index"], value)
        it.invoke()
        results.append([it.get_tensor(d["index"]) for d in it.get_output_details()])
    for a, b in zip(*results):
        assert a.dtype == b.dtype and np.array_equal(a, b)


# --------------------------------------------------------------------------------------------
# Property: whatever constant tensors go in come back out (bindings, and the reader)
# --------------------------------------------------------------------------------------------
_PLAIN_TYPES = sorted(c for c, dt in NUMPY_DTYPES.items()
                      if dt != np.dtype(np.object_) and c != TensorType.INT4)


@st.composite
def constant_tensors(draw: st.DrawFn) -> tuple[int, np.ndarray, list[float] | None]:
    code = draw(st.sampled_from([*_PLAIN_TYPES, int(TensorType.INT4)]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    if code == TensorType.INT4:
        values = draw(hnp.arrays(np.int8, shape, elements=st.integers(-8, 7)))
    else:
        values = draw(hnp.arrays(NUMPY_DTYPES[code], shape))
    scale = st.floats(2.0**-10, 16.0, width=32)
    scales = draw(st.none() | st.lists(scale, min_size=1, max_size=4))
    return code, values, scales


@settings(max_examples=60, deadline=None)
@given(tensors=st.lists(constant_tensors(), min_size=1, max_size=4),
       external=st.booleans())
def test_constant_tensors_round_trip(tensors: list, external: bool) -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    specs = []
    for i, (code, values, scales) in enumerate(tensors):
        specs.append(sg.tensor(f"c{i}", values.shape, code, data=values, scale=scales,
                               quantized_dimension=0))
    data = mb.build(external_buffers=external)
    m = parse(data)
    g = m.Subgraphs(0)
    for spec, (code, values, scales) in zip(specs, tensors):
        t = g.Tensors(spec.index)
        assert t.Type() == code and t.ShapeAsNumpy().tolist() == list(values.shape) or (
            values.ndim == 0 and t.ShapeLength() == 0)
        buf = m.Buffers(t.Buffer())
        if buf.Offset() > 1:
            assert buf.Offset() % BUFFER_ALIGNMENT == 0
            raw = data[buf.Offset(): buf.Offset() + buf.Size()]
        else:
            assert vector_position(buf, 0) % BUFFER_ALIGNMENT == 0
            raw = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
        assert raw == encode_tensor_data(values, code)
        if scales is None:
            assert t.Quantization() is None
        else:
            assert t.Quantization().ScaleAsNumpy().tolist() == scales
            assert t.Quantization().ZeroPointAsNumpy().tolist() == [0] * len(scales)
    if HAS_LOAD:
        try:
            model = tflite_ref.load(data)
        except ModelError:
            return  # e.g. per-axis scales that do not match the shape: the reader's call
        for spec, (code, values, _scales) in zip(specs, tensors):
            got = model.subgraphs[0].tensors[spec.index].data
            if values.size == 0:
                continue
            assert got is not None and got.shape == values.shape
            assert np.array_equal(got, values, equal_nan=values.dtype.kind in "fc")
