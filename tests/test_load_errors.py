"""Broken files at load time: each bad-input class of ``shared/docs/hostile-models.md`` that the
reader decides (1-14, 20-23) raises a :class:`ModelError` whose message locates the problem.

Structural damage is made by editing bytes of a valid file; semantic damage by writing a model
with our writer (which checks nothing semantic on purpose).
"""

from __future__ import annotations

import re
import struct
import time

import numpy as np
import pytest
from harness import aliasing_bomb

import tflite_ref
from tflite_ref.errors import (
    ModelError,
    ModelFormatError,
    ModelValidationError,
    ResourceLimitError,
    UnsupportedOpError,
)
from tflite_ref.model.writer import DimensionMetadata, ModelBuilder, Sparsity


def add_model(**edit: object) -> bytes:
    """A valid float32 ``y = x + c`` model; ``edit`` hooks damage it before building."""
    mb = ModelBuilder()
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 4], "FLOAT32")
    c = sg.tensor("c", [1, 4], "FLOAT32", data=np.arange(4, dtype=np.float32).reshape(1, 4))
    y = sg.tensor("y", [1, 4], "FLOAT32")
    sg.operator("ADD", [x, c], [y])
    sg.inputs, sg.outputs = [x], [y]
    hook = edit.get("hook")
    if callable(hook):
        hook(mb, sg)
    return mb.build()


def raises(data: bytes, error: type[Exception], pattern: str) -> str:
    with pytest.raises(error) as info:
        tflite_ref.load(data)
    msg = str(info.value)
    assert re.search(pattern, msg), f"message {msg!r} does not match {pattern!r}"
    assert isinstance(info.value, ModelError) or error is ResourceLimitError
    return msg


def test_the_base_model_is_valid() -> None:
    m = tflite_ref.load(add_model())
    assert [op.opcode for op in m.subgraphs[0].operators] == ["ADD"]


# -- class 1: too short, wrong identifier ---------------------------------------------------------
@pytest.mark.parametrize("data", [b"", b"\0" * 6, b"TFL3"], ids=["empty", "6-bytes", "4-bytes"])
def test_class1_too_short(data: bytes) -> None:
    raises(data, ModelFormatError, r"file too short: \d+ bytes")


def test_class1_wrong_identifier() -> None:
    data = bytearray(add_model())
    data[4:8] = b"XXXX"
    raises(bytes(data), ModelFormatError, r"identifier is b'XXXX', expected b'TFL3'")


def test_class1_other_format() -> None:
    raises(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, ModelFormatError, "not a .tflite file")


# -- class 2: offsets outside the file ------------------------------------------------------------
def test_class2_root_offset_past_end() -> None:
    raises(b"\x18\0\0\0TFL3", ModelFormatError, r"model @0x0: uoffset 0x18 points outside")


def _field_pos(data: bytes, table_pos: int, slot: int) -> int:
    vt = table_pos - struct.unpack_from("<i", data, table_pos)[0]
    fo = struct.unpack_from("<H", data, vt + 4 + 2 * slot)[0]
    assert fo, "field absent"
    return table_pos + fo


def _root(data: bytes) -> int:
    return struct.unpack_from("<I", data, 0)[0]


def test_class2_uoffset_out_of_range() -> None:
    data = bytearray(add_model())
    pos = _field_pos(data, _root(data), 2)  # Model.subgraphs
    struct.pack_into("<I", data, pos, 0xFFFFFFF0)
    raises(bytes(data), ModelFormatError, r"model\.subgraphs @0x[0-9a-f]+: uoffset 0xfffffff0")


# -- class 3: vtables -----------------------------------------------------------------------------
def test_class3_vtable_offset_out_of_range() -> None:
    data = bytearray(add_model())
    struct.pack_into("<i", data, _root(data), -0x7FFFFFF0)
    raises(bytes(data), ModelFormatError, r"Model table: vtable offset out of range")


def test_class3_vtable_size_odd() -> None:
    data = bytearray(add_model())
    root = _root(data)
    vt = root - struct.unpack_from("<i", data, root)[0]
    struct.pack_into("<H", data, vt, 7)
    raises(bytes(data), ModelFormatError, r"vtable size 7 is invalid")


def test_class3_field_outside_table() -> None:
    data = bytearray(add_model())
    root = _root(data)
    vt = root - struct.unpack_from("<i", data, root)[0]
    struct.pack_into("<H", data, vt + 4, 0x7FF0)  # Model.version field offset
    raises(bytes(data), ModelFormatError, r"model\.version .*field lies outside its Model table")


# -- class 4: strings and vectors past the end ----------------------------------------------------
def _tensor_name_pos(data: bytes) -> int:
    sgs = _field_pos(data, _root(data), 2)
    sgs_vec = sgs + struct.unpack_from("<I", data, sgs)[0]
    sg = sgs_vec + 4 + struct.unpack_from("<I", data, sgs_vec + 4)[0]
    ts = _field_pos(data, sg, 0)
    ts_vec = ts + struct.unpack_from("<I", data, ts)[0]
    t0 = ts_vec + 4 + struct.unpack_from("<I", data, ts_vec + 4)[0]
    name = _field_pos(data, t0, 3)
    return name + struct.unpack_from("<I", data, name)[0]


def test_class4_string_length_past_end() -> None:
    data = bytearray(add_model())
    struct.pack_into("<I", data, _tensor_name_pos(data), 0x7FFFFFFF)
    raises(bytes(data), ModelFormatError,
           r"subgraphs\[0\]\.tensors\[0\]\.name @0x[0-9a-f]+: string length 2147483647 exceeds")


def test_class4_string_without_nul() -> None:
    data = bytearray(add_model())
    pos = _tensor_name_pos(data)
    length = struct.unpack_from("<I", data, pos)[0]
    data[pos + 4 + length] = ord("!")
    raises(bytes(data), ModelFormatError, r"tensors\[0\]\.name .*not NUL-terminated")


def test_class4_non_utf8_name_is_replaced_with_a_warning() -> None:
    data = bytearray(add_model())
    pos = _tensor_name_pos(data)
    data[pos + 4] = 0xFF
    m = tflite_ref.load(bytes(data))
    assert "\ufffd" in m.subgraphs[0].tensors[0].name
    assert any("not valid UTF-8" in w for w in m.warnings)


def test_class4_vector_length_past_end() -> None:
    data = bytearray(add_model())
    pos = _field_pos(data, _root(data), 4)  # Model.buffers
    vec = pos + struct.unpack_from("<I", data, pos)[0]
    struct.pack_into("<I", data, vec, 0x40000000)
    raises(bytes(data), ModelFormatError, r"model\.buffers @0x[0-9a-f]+: vector length 1073741824")


# -- class 5: truncation at every cut point -------------------------------------------------------
def test_class5_every_truncation_is_rejected() -> None:
    data = add_model()
    for cut in range(len(data)):
        with pytest.raises(ModelFormatError):
            tflite_ref.load(data[:cut])


# -- class 6: aliasing bomb -----------------------------------------------------------------------
def test_class6_aliasing_bomb_is_rejected_quickly() -> None:
    """2,000 references to one subgraph of 600 tensors: 1.2 M tables for a naive reader."""
    data = aliasing_bomb(2000, 600)
    assert len(data) < 64 * 1024
    start = time.perf_counter()
    with pytest.raises(ResourceLimitError, match=r"more than 1,000,000 tables"):
        tflite_ref.load(data)
    assert time.perf_counter() - start < 5  # a bound on the work, not a benchmark


# -- class 7: version, unknown codes, union mismatch ----------------------------------------------
def test_class7_schema_version() -> None:
    mb = ModelBuilder(version=2)
    sg = mb.subgraph()
    x = sg.tensor("x", [1], "FLOAT32")
    sg.inputs = sg.outputs = [x]
    raises(mb.build(), ModelValidationError, r"schema version 2; only version 3")


def test_class7_unknown_builtin_code_is_shown_by_number() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        x = sg.tensors[2]  # type: ignore[attr-defined]
        z = sg.tensor("z", [1, 4], "FLOAT32")  # type: ignore[attr-defined]
        sg.operator(250, [x], [z])  # type: ignore[attr-defined]

    m = tflite_ref.load(add_model(hook=hook))
    assert m.subgraphs[0].operators[1].opcode == "BUILTIN_250"
    assert any("newer than this schema" in w for w in m.warnings)
    with pytest.raises(UnsupportedOpError, match=r"operator 1 \(BUILTIN_250\)"):
        tflite_ref.Interpreter(model_content=add_model(hook=hook)).allocate_tensors()


def test_class7_options_of_another_operator() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        op = sg.operators[0]  # type: ignore[attr-defined]
        op.options_union, op.options_member, op.options = "BuiltinOptions", "Conv2DOptions", {}

    raises(add_model(hook=hook), ModelValidationError,
           r"subgraph 0, operator 0 \(ADD\): carries Conv2DOptions, but ADD takes AddOptions")


def test_class7_deprecated_code_disagrees() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        k = mb.operator_code(3, deprecated_builtin_code=4)  # CONV_2D vs DEPTHWISE_CONV_2D
        sg.operators[0].opcode_index = k  # type: ignore[attr-defined]

    raises(add_model(hook=hook), ModelValidationError,
           r"operator_codes\[0\]: builtin_code 3 \(CONV_2D\) and deprecated_builtin_code 4")


# -- class 8: opcode index ------------------------------------------------------------------------
def test_class8_opcode_index_out_of_range() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        sg.operators[0].opcode_index = 99  # type: ignore[attr-defined]

    raises(add_model(hook=hook), ModelValidationError,
           r"subgraph 0, operator 0: opcode_index 99, but the model has \d+ operator codes")


# -- class 9: tensor indices ----------------------------------------------------------------------
@pytest.mark.parametrize("where,value,pattern", [
    ("input", 977, r"operator 0 \(ADD\): input 1 is tensor 977, but the subgraph has 3 tensors"),
    ("input", -5, r"operator 0 \(ADD\): input 1 is tensor -5"),
    ("output", -1, r"operator 0 \(ADD\): output 0 is tensor -1"),
    ("graph_input", 12, r"subgraph 0: input 0 is tensor 12, but the subgraph has 3 tensors"),
])
def test_class9_tensor_index_out_of_range(where: str, value: int, pattern: str) -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        op = sg.operators[0]  # type: ignore[attr-defined]
        if where == "input":
            op.inputs[1] = value
        elif where == "output":
            op.outputs[0] = value
        else:
            sg.inputs = [value]  # type: ignore[attr-defined]

    raises(add_model(hook=hook), ModelValidationError, pattern)


def test_class9_required_input_absent_fails_at_prepare() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        sg.operators[0].inputs[1] = -1  # type: ignore[attr-defined]

    it = tflite_ref.Interpreter(model_content=add_model(hook=hook))
    with pytest.raises(ModelError, match=r"operator 0 \(ADD\).*input 1"):
        it.allocate_tensors()


# -- class 10: buffers ----------------------------------------------------------------------------
def test_class10_buffer_index_out_of_range() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        sg.tensors[1].buffer = 40  # type: ignore[attr-defined]

    raises(add_model(hook=hook), ModelValidationError,
           r"subgraph 0, tensor 1 'c': buffer index 40, but the model has \d+ buffers")


def test_class10_data_size_mismatch() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        w = sg.tensor("w", [64, 16], "INT8", data=bytes(4096))  # type: ignore[attr-defined]
        del w

    raises(add_model(hook=hook), ModelValidationError,
           r"tensor 3 'w': buffer \d+ holds 4096 bytes, shape \[64, 16\] INT8 needs 1024")


def test_class10_buffer_zero_must_be_empty() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        mb._buffers[0].data = b"\1\2\3\4"  # type: ignore[attr-defined]
        sg.tensors[0].buffer = 0  # type: ignore[attr-defined]

    raises(add_model(hook=hook), ModelValidationError, r"tensor 0 'x': uses buffer 0")


def test_class10_external_buffer_past_end() -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", [1, 4], "FLOAT32")
    c = sg.tensor("c", [1, 4], "FLOAT32", data=np.ones((1, 4), np.float32))
    y = sg.tensor("y", [1, 4], "FLOAT32")
    sg.operator("ADD", [x, c], [y])
    sg.inputs, sg.outputs = [x], [y]
    data = mb.build(external_buffers=True)
    assert tflite_ref.load(data).subgraphs[0].tensors[1].data.tolist() == [[1, 1, 1, 1]]
    raises(data[:-8], ModelValidationError, r"buffers\[\d+\]: external data at offset \d+ with "
           r"size 16 ends past the end of the file")


# -- class 11: shapes -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape,error,pattern", [
    ([1, -4], ModelValidationError, r"tensor 0 'x': negative dimension in shape \[1, -4\]"),
    ([1] * 20, ModelValidationError, r"rank 20 exceeds the supported maximum"),
    ([2**20, 2**20, 2**20], ResourceLimitError, r"has 1152921504606846976 elements"),
])
def test_class11_bad_shapes(shape: list[int], error: type[Exception], pattern: str) -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        sg.tensors[0].shape = tuple(shape)  # type: ignore[attr-defined]

    raises(add_model(hook=hook), error, pattern)


def test_class11_shape_signature_disagrees() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        sg.tensors[0].shape_signature = (-1, 5)  # type: ignore[attr-defined]

    raises(add_model(hook=hook), ModelValidationError,
           r"shape_signature \[-1, 5\] disagrees with shape \[1, 4\]")


# -- class 12: topology ---------------------------------------------------------------------------
def _two_op_model(kind: str) -> bytes:
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", [4], "FLOAT32")
    c = sg.tensor("c", [4], "FLOAT32", data=np.ones(4, np.float32))
    a = sg.tensor("a", [4], "FLOAT32")
    b = sg.tensor("b", [4], "FLOAT32")
    if kind == "double_producer":
        sg.operator("ADD", [x, c], [a])
        sg.operator("MUL", [x, c], [a])
    elif kind == "use_before_def":
        sg.operator("ADD", [b, c], [a])
        sg.operator("MUL", [x, c], [b])
    elif kind == "self_loop":
        sg.operator("ADD", [a, c], [a])
    elif kind == "writes_constant":
        sg.operator("ADD", [x, x], [c])
    elif kind == "writes_input":
        sg.operator("ADD", [a, c], [x])
    sg.inputs, sg.outputs = [x], [a]
    return mb.build()


@pytest.mark.parametrize("kind,pattern", [
    ("double_producer", r"operator 1 \(MUL\): output 0 is tensor 2 'a', already produced by "
                        r"operator 0"),
    ("use_before_def", r"operator 0 \(ADD\): input 0 is tensor 3 'b', produced by operator 1, "
                       r"which runs later"),
    ("self_loop", r"operator 0 \(ADD\): tensor 2 'a' is both an input and an output"),
    ("writes_constant", r"operator 0 \(ADD\): output 0 is tensor 1 'c', which is a constant"),
    ("writes_input", r"operator 0 \(ADD\): output 0 is tensor 0 'x', which is a subgraph input"),
])
def test_class12_topology(kind: str, pattern: str) -> None:
    raises(_two_op_model(kind), ModelValidationError, pattern)


# -- class 13: control flow and signatures --------------------------------------------------------
def test_class13_subgraph_index_out_of_range() -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", [1], "INT32")
    y = sg.tensor("y", [1], "INT32")
    sg.operator("WHILE", [x], [y], {"cond_subgraph_index": 5, "body_subgraph_index": 7})
    sg.inputs, sg.outputs = [x], [y]
    raises(mb.build(), ModelValidationError,
           r"operator 0 \(WHILE\): option cond_subgraph_index = 5, but the model has 1 subgraphs")


def test_class13_recursive_subgraphs() -> None:
    mb = ModelBuilder()
    main = mb.subgraph("main")
    body = mb.subgraph("body")
    for sg, callee in ((main, body), (body, body)):
        x = sg.tensor("x", [1], "INT32")
        y = sg.tensor("y", [1], "INT32")
        sg.operator("CALL_ONCE", [], [], {"init_subgraph_index": callee.index})
        sg.operator("ABS", [x], [y])
        sg.inputs, sg.outputs = [x], [y]
    raises(mb.build(), ModelValidationError, r"subgraphs call each other recursively: 1 -> 1")


def test_class13_signature_subgraph_out_of_range() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        mb.signature("serving_default", 3, inputs={"x": 0}, outputs={"y": 2})

    raises(add_model(hook=hook), ModelValidationError,
           r"signature_defs\[0\] 'serving_default': subgraph_index 3, but the model has 1")


# -- class 14: quantization -----------------------------------------------------------------------
def _quant_model(**q: object) -> bytes:
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", [2, 3], "INT8", **q)  # type: ignore[arg-type]
    y = sg.tensor("y", [2, 3], "INT8", scale=0.1, zero_point=0)
    sg.operator("RELU", [x], [y])
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


@pytest.mark.parametrize("q,pattern", [
    (dict(scale=[0.1, 0.2], zero_point=[0]), r"tensor 0 'x' quantization: 2 scales but 1 zero"),
    (dict(scale=[0.1] * 4, zero_point=[0] * 4, quantized_dimension=1),
     r"4 scales, but dimension 1 of shape \[2, 3\] has 3 entries"),
    (dict(scale=[0.1] * 3, zero_point=[0] * 3, quantized_dimension=5),
     r"quantized_dimension 5 is outside the tensor's rank 2"),
    (dict(scale=-0.5, zero_point=0), r"scale\[0\]=-0.5 is not a finite non-negative number"),
    (dict(scale=float("nan"), zero_point=0), r"scale\[0\]=nan"),
    (dict(scale=0.1, zero_point=300), r"zero_point\[0\]=300 is outside the INT8 range"),
])
def test_class14_quantization(q: dict[str, object], pattern: str) -> None:
    raises(_quant_model(**q), ModelValidationError, pattern)


# -- class 20: sparsity ---------------------------------------------------------------------------
def _sparse_model(sparsity: Sparsity, nbytes: int = 4) -> bytes:
    mb = ModelBuilder()
    sg = mb.subgraph()
    w = sg.tensor("w", [2, 2], "INT8", buffer=mb.buffer(bytes(nbytes)), sparsity=sparsity)
    x = sg.tensor("x", [1, 2], "INT8", scale=0.1, zero_point=0)
    y = sg.tensor("y", [2, 2], "INT8")
    sg.operator("DENSIFY", [w], [y])
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def test_class20_sparsity_ok_and_broken() -> None:
    dense = DimensionMetadata("DENSE", dense_size=2)
    csr = DimensionMetadata("SPARSE_CSR", array_segments=[0, 1, 2], array_indices=[0, 1])
    tflite_ref.load(_sparse_model(Sparsity([0, 1], [], [dense, csr]), nbytes=2))
    raises(_sparse_model(Sparsity([1, 1], [], [dense, dense])), ModelValidationError,
           r"tensor 0 'w' sparsity: traversal_order \[1, 1\] is not a permutation")
    bad = DimensionMetadata("SPARSE_CSR", array_segments=[0, 3, 1], array_indices=[0, 1])
    raises(_sparse_model(Sparsity([0, 1], [], [dense, bad]), nbytes=2), ModelValidationError,
           r"array_segments are not a non-decreasing run")
    out = DimensionMetadata("SPARSE_CSR", array_segments=[0, 1, 2], array_indices=[0, 9])
    raises(_sparse_model(Sparsity([0, 1], [], [dense, out]), nbytes=2), ModelValidationError,
           r"array_indices outside \[0, 2\)")
    raises(_sparse_model(Sparsity([0, 1], [], [dense, csr]), nbytes=3), ModelValidationError,
           r"the sparse layout holds 2 values, buffer \d+ has 3 bytes")


# -- class 21: custom operators -------------------------------------------------------------------
def test_class21_custom_op_loads_and_is_unsupported_by_name() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        x, y = sg.tensors[0], sg.tensors[2]  # type: ignore[attr-defined]
        z = sg.tensor("z", [1, 4], "FLOAT32")  # type: ignore[attr-defined]
        sg.operator("CUSTOM:MyOp", [y], [z], custom_options=b"\xff\x00garbage")  # type: ignore
        sg.outputs = [z]  # type: ignore[attr-defined]
        del x

    data = add_model(hook=hook)
    op = tflite_ref.load(data).subgraphs[0].operators[1]
    assert op.opcode == "CUSTOM:MyOp" and op.custom_options == b"\xff\x00garbage"
    assert op.custom_options_decoded is None  # not a FlexBuffer: kept as bytes
    with pytest.raises(UnsupportedOpError, match=r"custom operator 'MyOp'"):
        tflite_ref.Interpreter(model_content=data).allocate_tensors()


# -- class 22: string tensors ---------------------------------------------------------------------
def test_class22_string_tensor_header() -> None:
    def hook_ok(mb: ModelBuilder, sg: object) -> None:
        raw = struct.pack("<4i", 2, 16, 17, 19) + b"abc"
        sg.tensor("s", [2], "STRING", buffer=mb.buffer(raw))  # type: ignore[attr-defined]

    tflite_ref.load(add_model(hook=hook_ok))

    def hook_bad(mb: ModelBuilder, sg: object) -> None:
        raw = struct.pack("<4i", 2, 16, 40, 19) + b"abc"
        sg.tensor("s", [2], "STRING", buffer=mb.buffer(raw))  # type: ignore[attr-defined]

    raises(add_model(hook=hook_bad), ModelValidationError,
           r"tensor 3 's' string buffer: string offsets are not increasing")


# -- class 23: metadata and signatures ------------------------------------------------------------
def test_class23_metadata_buffer_out_of_range() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        mb.metadata("min_runtime_version", b"1.5.0\0")
        mb._metadata[-1] = ("min_runtime_version", 99)  # type: ignore[attr-defined]

    raises(add_model(hook=hook), ModelValidationError,
           r"metadata\[0\] 'min_runtime_version': buffer index 99")


def test_class23_duplicate_signature_names() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        mb.signature("s", 0, inputs={"x": 0}, outputs={"y": 2})
        mb.signature("s", 0, inputs={"x": 0}, outputs={"y": 2})

    raises(add_model(hook=hook), ModelValidationError, r"signature_defs\[1\] 's': duplicate")


def test_class23_garbage_metadata_is_a_warning() -> None:
    def hook(mb: ModelBuilder, sg: object) -> None:
        mb.metadata("OfflineMemoryAllocation", b"\1\2\3")

    m = tflite_ref.load(add_model(hook=hook))
    assert m.metadata_dict["OfflineMemoryAllocation"] == b"\1\2\3"
    assert any("could not be decoded" in w for w in m.warnings)
