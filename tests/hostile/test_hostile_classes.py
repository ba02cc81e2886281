"""One regression test (or a few) per bad-input class of ``shared/docs/hostile-models.md``.

Each checks the error *type*, the structured locator (``error.locator``: subgraph, operator,
tensor, buffer, schema path, byte offset) and, where the doc assigns one, the advisory class tag
(``error.cve_class``).  Load-time classes (1-14, 20-23) go through :func:`tflite_ref.load`;
kernel classes (15-19, 24) through ``allocate_tensors()``/``invoke()``.  A kernel that lets a
foreign exception escape is recorded here as ``xfail(strict=True)`` with the kernel and the fix;
``tests/test_load_errors.py`` keeps the message-level checks of the load-time classes.
"""

from __future__ import annotations

import math
import struct
import time
import tracemalloc
from typing import Any

import numpy as np
import pytest
from harness import aliasing_bomb
from hostile_models import (
    add_model,
    flexbuffer_bomb,
    invoke_isolated,
    one_op,
    poke,
    site,
)

import tflite_ref
from tflite_ref import budgets
from tflite_ref.errors import (
    KernelRuntimeError,
    Locator,
    ModelFormatError,
    ModelValidationError,
    ResourceLimitError,
    TFLiteRefError,
    UnsupportedError,
)
from tflite_ref.model.metadata import decode_flexbuffer
from tflite_ref.model.validate import nonfinite_findings
from tflite_ref.model.writer import DimensionMetadata, ModelBuilder, Sparsity, pack_strings


def load_error(data: bytes, error: type[TFLiteRefError], cve: str | None = None,
               **where: Any) -> TFLiteRefError:
    """``load(data)`` raises ``error`` whose locator has the fields ``where``."""
    with pytest.raises(error) as info:
        tflite_ref.load(data)
    return check(info.value, error, cve, **where)


def check(exc: BaseException, error: type[TFLiteRefError], cve: str | None = None,
          **where: Any) -> TFLiteRefError:
    assert isinstance(exc, error), f"{type(exc).__name__}: {exc}"
    loc = exc.locator
    assert isinstance(loc, Locator), f"no locator on {type(exc).__name__}: {exc}"
    for key, value in where.items():
        assert getattr(loc, key) == value, f"locator.{key} = {getattr(loc, key)!r}, " \
                                           f"expected {value!r} ({exc})"
    if cve is not None:
        assert exc.cve_class == cve, f"cve_class {exc.cve_class!r}, expected {cve!r} ({exc})"
    return exc


def prepare_error(data: bytes, error: type[TFLiteRefError], **where: Any) -> TFLiteRefError:
    """Refused at load or at ``allocate_tensors()`` (kernel prepare): either is before any
    computation."""
    with pytest.raises(error) as info:
        tflite_ref.Interpreter(model_content=data).allocate_tensors()
    return check(info.value, error, **where)


def invoke_error(data: bytes, error: type[TFLiteRefError], inputs: dict[int, np.ndarray],
                 **where: Any) -> TFLiteRefError:
    it = tflite_ref.Interpreter(model_content=data)
    it.allocate_tensors()
    for index, value in inputs.items():
        it.set_tensor(index, value)
    with pytest.raises(error) as info:
        it.invoke()
    return check(info.value, error, **where)


F32 = "FLOAT32"


# -- class 1: empty, short, wrong identifier, too big ----------------------------------------------
@pytest.mark.parametrize("data", [b"", b"\0" * 7], ids=["empty", "7-bytes"])
def test_class01_too_short(data: bytes) -> None:
    load_error(data, ModelFormatError, "A", path="file", byte_offset=len(data))


def test_class01_identifier() -> None:
    data = bytearray(add_model())
    data[4:8] = b"TFL2"
    load_error(bytes(data), ModelFormatError, "A", path="file identifier", byte_offset=4)


def test_class01_file_budget(tmp_path: Any) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(add_model())
    with budgets.use(file_bytes=100):
        with pytest.raises(ResourceLimitError) as info:
            tflite_ref.load(path)
    check(info.value, ResourceLimitError, "M", path="file")
    assert "file_bytes budget of 100" in str(info.value)


# -- class 2: offsets outside the file, misaligned -------------------------------------------------
def test_class02_root_offset() -> None:
    load_error(b"\x18\0\0\0TFL3", ModelFormatError, "A", path="model", byte_offset=0)


@pytest.mark.parametrize("value,what", [(0xFFFFFFF0, "points outside the file"),
                                        (None, "misaligned")])
def test_class02_uoffset(value: int | None, what: str) -> None:
    data = add_model()
    s = site(data, "uoffset", "model.subgraphs[0].tensors")
    old = struct.unpack_from("<I", data, s.pos)[0]
    bad = poke(data, s.pos, "I", old + 2 if value is None else value)
    exc = load_error(bad, ModelFormatError, "A", path="model.subgraphs[0].tensors", subgraph=0)
    assert what in str(exc)


# -- class 3: vtables ------------------------------------------------------------------------------
def test_class03_vtable_offset() -> None:
    data = add_model()
    s = site(data, "soffset", "model.subgraphs[0].tensors[1]")
    exc = load_error(poke(data, s.pos, "i", -0x7FFFFFF0), ModelFormatError, "A",
                     path="model.subgraphs[0].tensors[1]", subgraph=0, tensor=1,
                     byte_offset=s.pos)
    assert "Tensor table: vtable offset out of range" in str(exc)


@pytest.mark.parametrize("kind,value,what", [
    ("vtable_size", 7, "vtable size 7 is invalid"),
    ("vtable_size", 2, "vtable size 2 is invalid"),
    ("table_size", 2, "inline size 2"),
])
def test_class03_vtable_sizes(kind: str, value: int, what: str) -> None:
    data = add_model()
    s = site(data, kind, "model.subgraphs[0].operators[0]")
    exc = load_error(poke(data, s.pos, "H", value), ModelFormatError, "A", subgraph=0,
                     operator=0)
    assert what in str(exc)


def test_class03_field_outside_table() -> None:
    data = add_model()
    s = site(data, "vtable_entry", "model.subgraphs[0].tensors[0].buffer")
    exc = load_error(poke(data, s.pos, "H", 0x7FF0), ModelFormatError, "A",
                     path="model.subgraphs[0].tensors[0].buffer", tensor=0)
    assert "field lies outside its Tensor table" in str(exc)


def test_class03_table_overlaps_its_vtable() -> None:
    data = add_model()
    s = site(data, "soffset", "model.subgraphs[0].tensors[0]")
    # soffset 0: the vtable would start at the table itself.
    exc = load_error(poke(data, s.pos, "i", 0), ModelFormatError, "A", tensor=0)
    assert "overlaps the table" in str(exc) or "vtable size" in str(exc)


# -- class 4: lengths past the end, NUL, UTF-8 -----------------------------------------------------
def test_class04_string_length() -> None:
    data = add_model()
    s = site(data, "string_length", "model.subgraphs[0].tensors[2].name")
    exc = load_error(poke(data, s.pos, "I", 0x7FFFFFFF), ModelFormatError, "A",
                     path="model.subgraphs[0].tensors[2].name", tensor=2, byte_offset=s.pos)
    assert "string length 2147483647 exceeds the remaining" in str(exc)


def test_class04_string_without_nul() -> None:
    data = add_model()
    s = site(data, "string_length", "model.subgraphs[0].tensors[0].name")
    length = struct.unpack_from("<I", data, s.pos)[0]
    buf = bytearray(data)
    buf[s.pos + 4 + length] = ord("!")
    load_error(bytes(buf), ModelFormatError, "A", path="model.subgraphs[0].tensors[0].name")


@pytest.mark.parametrize("value", [0xFFFFFFFF, None], ids=["max", "len+1"])
def test_class04_vector_length(value: int | None) -> None:
    data = add_model()
    s = site(data, "vector_length", "model.subgraphs[0].operators[0].inputs")
    old = struct.unpack_from("<I", data, s.pos)[0]
    new = old + 1 if value is None else value
    try:
        tflite_ref.load(poke(data, s.pos, "I", new))
    except TFLiteRefError as exc:  # len+1 may still lie inside the file: then a bad index
        check(exc, TFLiteRefError, subgraph=0, operator=0)
    else:
        pytest.fail("accepted a vector running past its bytes")


def test_class04_non_utf8_is_replaced_with_a_warning() -> None:
    data = add_model()
    s = site(data, "string_length", "model.subgraphs[0].tensors[0].name")
    m = tflite_ref.load(poke(data, s.pos + 4, "B", 0xFF))
    assert "\ufffd" in m.subgraphs[0].tensors[0].name
    assert any("not valid UTF-8" in w for w in m.warnings)


# -- class 5: every truncation ---------------------------------------------------------------------
def test_class05_every_truncation() -> None:
    data = add_model()
    for cut in range(len(data)):
        with pytest.raises(ModelFormatError) as info:
            tflite_ref.load(data[:cut])
        assert info.value.locator is not None and info.value.cve_class == "A", cut


# -- class 6: aliasing bombs -----------------------------------------------------------------------
def test_class06_table_budget_bomb() -> None:
    data = aliasing_bomb(2000, 600)  # 1.2 M tables for a naive reader
    assert len(data) < 20_000
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ResourceLimitError) as info:
        tflite_ref.load(data)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    exc = check(info.value, ResourceLimitError, "M")
    assert exc.locator is not None and exc.locator.path.startswith("model.subgraphs[")
    assert "more than 1,000,000 tables" in str(exc)
    assert elapsed < 2 and peak < 100 * 2**20, (elapsed, peak)


def test_class06_amplification_under_the_table_budget() -> None:
    """960 k tables (under the 1 M budget) from 603 distinct ones: the aliasing budget refuses
    it as fast, instead of a reader decoding 960 k tables for a minute."""
    data = aliasing_bomb(1600, 600)
    start = time.perf_counter()
    with pytest.raises(ResourceLimitError) as info:
        tflite_ref.load(data)
    assert time.perf_counter() - start < 2
    check(info.value, ResourceLimitError, "M", path="model")
    assert "table_aliasing budget" in str(info.value)
    with budgets.use(table_aliasing=None):  # trusted: a budget can be lifted...
        with pytest.raises(ResourceLimitError, match="tables nest deeper|more than 500"):
            with budgets.use(tables=500):  # ...and another one still holds
                tflite_ref.load(data)


def test_class06_small_aliasing_is_fine() -> None:
    tflite_ref.load(aliasing_bomb(3, 100))


def test_class06_depth_budget() -> None:
    with budgets.use(depth=3):
        with pytest.raises(ResourceLimitError, match="nest deeper than 3") as info:
            tflite_ref.load(add_model())
    check(info.value, ResourceLimitError, "M")


# -- class 7: version, codes, unions ---------------------------------------------------------------
def test_class07_version() -> None:
    mb = ModelBuilder(version=4)
    sg = mb.subgraph()
    x = sg.tensor("x", [1], F32)
    sg.inputs = sg.outputs = [x]
    load_error(mb.build(), ModelValidationError, path="model.version")


def test_class07_deprecated_code_disagrees() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        sg.operators[0].opcode_index = mb.operator_code(3, deprecated_builtin_code=4)

    exc = load_error(add_model(hook), ModelValidationError, "B", table="operator_codes", index=0)
    assert "builtin_code 3 (CONV_2D) and deprecated_builtin_code 4" in str(exc)


def test_class07_options_union_of_another_op() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        op = sg.operators[0]
        op.options_union, op.options_member, op.options = "BuiltinOptions", "Conv2DOptions", {}

    load_error(add_model(hook), ModelValidationError, "B", subgraph=0, operator=0, opcode="ADD")


def test_class07_unknown_codes_load_with_warnings_and_are_unsupported() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        z = sg.tensor("z", [1, 4], 120)  # a tensor type newer than the schema
        sg.operator(250, [sg.tensors[2]], [z])
        sg.outputs = [z]

    data = add_model(hook)
    m = tflite_ref.load(data)
    assert sum("newer than this schema" in w for w in m.warnings) == 2
    prepare_error(data, UnsupportedError, subgraph=0, operator=1, opcode="BUILTIN_250")


# -- class 8: opcode index -------------------------------------------------------------------------
def test_class08_opcode_index() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        sg.operators[0].opcode_index = 99

    exc = load_error(add_model(hook), ModelValidationError, "B", subgraph=0, operator=0,
                     slot="opcode_index")
    assert "opcode_index 99" in str(exc)


# -- class 9: tensor indices -----------------------------------------------------------------------
@pytest.mark.parametrize("which,value,slot,cve", [
    ("inputs", 977, "inputs[1]", "B"), ("inputs", -5, "inputs[1]", "B"),
    ("outputs", -1, "outputs[0]", "I"), ("intermediates", 3, "intermediates[0]", "B"),
])
def test_class09_operand_index(which: str, value: int, slot: str, cve: str) -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        op = sg.operators[0]
        if which == "intermediates":
            op.intermediates = [value]
        else:
            getattr(op, which)[1 if which == "inputs" else 0] = value

    load_error(add_model(hook), ModelValidationError, cve, subgraph=0, operator=0, opcode="ADD",
               slot=slot, tensor=value)


def test_class09_graph_io_index() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        sg.outputs = [12]

    load_error(add_model(hook), ModelValidationError, "B", subgraph=0, slot="outputs[0]",
               tensor=12)


def test_class09_required_input_absent() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        sg.operators[0].inputs[1] = -1

    prepare_error(add_model(hook), ModelValidationError, subgraph=0, operator=0, opcode="ADD")


# -- class 10: buffers -----------------------------------------------------------------------------
def test_class10_buffer_index() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        sg.tensors[1].buffer = 40

    load_error(add_model(hook), ModelValidationError, "B", subgraph=0, tensor=1,
               tensor_name="c", buffer=40)


@pytest.mark.parametrize("dtype,shape,nbytes", [("INT8", [64, 16], 4096), ("FLOAT32", [3], 11),
                                                ("INT4", [5], 2)])
def test_class10_data_size(dtype: str, shape: list[int], nbytes: int) -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        sg.tensor("w", shape, dtype, data=bytes(nbytes))

    exc = load_error(add_model(hook), ModelValidationError, "E", subgraph=0, tensor=3,
                     tensor_name="w", slot="data")
    assert f"holds {nbytes} bytes" in str(exc)


def test_class10_buffer_zero_must_be_empty() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        mb._buffers[0].data = b"\1\2\3\4"
        sg.tensors[0].buffer = 0

    load_error(add_model(hook), ModelValidationError, "B", tensor=0, buffer=0)


def _external() -> bytes:
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", [1, 4], F32)
    c = sg.tensor("c", [1, 4], F32, data=np.ones((1, 4), np.float32))
    y = sg.tensor("y", [1, 4], F32)
    sg.operator("ADD", [x, c], [y])
    sg.inputs, sg.outputs = [x], [y]
    return mb.build(external_buffers=True)


@pytest.mark.parametrize("offset", [2**64 - 8, 2**63, None], ids=["wraps", "huge", "past-end"])
def test_class10_external_buffer(offset: int | None) -> None:
    data = _external()
    s = site(data, "scalar", "model.buffers[1].offset")
    if offset is None:
        data = data[:-8]
    else:
        data = poke(data, s.pos, "Q", offset)
    exc = load_error(data, ModelValidationError, "G", table="buffers", index=1, buffer=1)
    assert "ends past the end of the file" in str(exc)


# -- class 11: shapes ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,error,slot", [
    ([1, -4], ModelValidationError, "shape"),
    ([1] * 17, ModelValidationError, "shape"),
    ([2**20, 2**20, 2**20], ResourceLimitError, None),
    ([2**31 - 1] * 8 + [0], None, None),
])
def test_class11_shapes(shape: list[int], error: type[TFLiteRefError] | None,
                        slot: str | None) -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        sg.tensor("big", shape, "INT8")

    data = add_model(hook)
    if error is None:  # a zero dimension: no elements, however large the others
        assert tflite_ref.load(data).subgraphs[0].tensors[3].num_elements == 0
        return
    where = {"slot": slot} if slot else {}
    load_error(data, error, subgraph=0, tensor=3, tensor_name="big", **where)


def test_class11_element_budget_is_configurable() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        sg.tensor("big", [1000, 1000], "INT8")

    tflite_ref.load(add_model(hook))
    with pytest.raises(ResourceLimitError, match="tensor_elements budget of 1,000") as info:
        tflite_ref.load(add_model(hook), budgets=budgets.Budgets(tensor_elements=1000))
    check(info.value, ResourceLimitError, "M", tensor=3)


def test_class11_shape_signature() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        sg.tensors[0].shape_signature = (-1, 5)

    load_error(add_model(hook), ModelValidationError, "E", tensor=0, slot="shape_signature")


# -- class 12: topology ----------------------------------------------------------------------------
def _two_ops(kind: str) -> bytes:
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", [4], F32)
    c = sg.tensor("c", [4], F32, data=np.ones(4, np.float32))
    a = sg.tensor("a", [4], F32)
    b = sg.tensor("b", [4], F32)
    if kind == "twice":
        sg.operator("ADD", [x, c], [a])
        sg.operator("MUL", [x, c], [a])
    elif kind == "cycle":
        sg.operator("ADD", [b, c], [a])
        sg.operator("MUL", [a, c], [b])
    elif kind == "self":
        sg.operator("ADD", [a, c], [a])
    elif kind == "constant":
        sg.operator("ADD", [x, x], [c])
    elif kind == "input":
        sg.operator("ADD", [a, c], [x])
    sg.inputs, sg.outputs = [x], [a]
    return mb.build()


@pytest.mark.parametrize("kind,op,slot,tensor", [
    ("twice", 1, "outputs[0]", 2), ("cycle", 0, "inputs[0]", 3), ("self", 0, "outputs[0]", 2),
    ("constant", 0, "outputs[0]", 1), ("input", 0, "outputs[0]", 0)])
def test_class12_topology(kind: str, op: int, slot: str, tensor: int) -> None:
    load_error(_two_ops(kind), ModelValidationError, "C", subgraph=0, operator=op, slot=slot,
               tensor=tensor)


# -- class 13: control flow ------------------------------------------------------------------------
def _call_chain(n: int, loop: bool = False) -> bytes:
    """Subgraph k calls k+1 with CALL_ONCE; the last calls the first when ``loop``."""
    mb = ModelBuilder()
    sgs = [mb.subgraph(f"s{k}") for k in range(n)]
    for k, sg in enumerate(sgs):
        x = sg.tensor("x", [1], "INT32")
        y = sg.tensor("y", [1], "INT32")
        callee = k + 1 if k + 1 < n else (0 if loop else None)
        if callee is not None:
            sg.operator("CALL_ONCE", [], [], {"init_subgraph_index": callee})
        sg.operator("ABS", [x], [y])
        sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def test_class13_subgraph_index() -> None:
    data = one_op("WHILE", [dict(name="x", shape=[1], dtype="INT32")],
                  [dict(name="y", shape=[1], dtype="INT32")],
                  {"cond_subgraph_index": 5, "body_subgraph_index": 7})
    load_error(data, ModelValidationError, "B", subgraph=0, operator=0,
               slot="option cond_subgraph_index")


def test_class13_recursion() -> None:
    exc = load_error(_call_chain(3, loop=True), ModelValidationError, "C")
    assert "recursively: 0 -> 1 -> 2 -> 0" in str(exc)


def test_class13_nesting_budget() -> None:
    tflite_ref.load(_call_chain(32))
    load_error(_call_chain(34), ResourceLimitError, "M", subgraph=0)
    with budgets.use(control_flow_depth=40):
        tflite_ref.load(_call_chain(34))


def test_class13_signature_index() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        mb.signature("serving_default", 0, inputs={"x": 0}, outputs={"y": 9})

    load_error(add_model(hook), ModelValidationError, "B", table="signature_defs", index=0,
               tensor=9)


# -- class 14: quantization ------------------------------------------------------------------------
def _quant(**q: Any) -> bytes:
    return one_op("RELU", [dict(name="x", shape=[2, 3], dtype="INT8", **q)],
                  [dict(name="y", shape=[2, 3], dtype="INT8", scale=0.1, zero_point=0)])


@pytest.mark.parametrize("q,slot", [
    (dict(scale=[0.1, 0.2], zero_point=[0]), "quantization"),
    (dict(scale=[0.1] * 4, zero_point=[0] * 4, quantized_dimension=1), "scale"),
    (dict(scale=[0.1] * 3, zero_point=[0] * 3, quantized_dimension=5), "quantized_dimension"),
    (dict(scale=-0.5, zero_point=0), "scale[0]"),
    (dict(scale=float("inf"), zero_point=0), "scale[0]"),
    (dict(scale=float("nan"), zero_point=0), "scale[0]"),
    (dict(scale=0.1, zero_point=-129), "zero_point[0]"),
])
def test_class14_quantization(q: dict[str, Any], slot: str) -> None:
    load_error(_quant(**q), ModelValidationError, "J", subgraph=0, tensor=0, tensor_name="x",
               slot=slot)


def test_class14_zero_scale_is_refused_by_the_kernel() -> None:
    data = _quant(scale=0.0, zero_point=0)
    assert any("scale[0] is 0.0" in w for w in tflite_ref.load(data).warnings)
    prepare_error(data, ModelValidationError, subgraph=0, operator=0)


# -- class 15: operand types -----------------------------------------------------------------------
def test_class15_fully_connected_bias_type() -> None:
    data = one_op(
        "FULLY_CONNECTED",
        [dict(name="x", shape=[1, 4], dtype="INT8", scale=0.1, zero_point=0),
         dict(name="w", shape=[2, 4], dtype="INT8", data=np.ones((2, 4), np.int8), scale=0.1,
              zero_point=0),
         dict(name="b", shape=[2], dtype="FLOAT32", data=np.ones(2, np.float32))],
        [dict(name="y", shape=[1, 2], dtype="INT8", scale=0.5, zero_point=0)])
    prepare_error(data, ModelValidationError, subgraph=0, operator=0, opcode="FULLY_CONNECTED")


def test_class15_add_operand_types_differ() -> None:
    data = one_op("ADD", [dict(name="a", shape=[4], dtype=F32),
                          dict(name="b", shape=[4], dtype="INT32")],
                  [dict(name="y", shape=[4], dtype=F32)])
    prepare_error(data, ModelValidationError, subgraph=0, operator=0, opcode="ADD")


# -- class 16: options -----------------------------------------------------------------------------
def _conv(**options: Any) -> bytes:
    opts = {"padding": "VALID", "stride_w": 1, "stride_h": 1} | options
    return one_op("CONV_2D",
                  [dict(name="x", shape=[1, 5, 5, 1], dtype=F32),
                   dict(name="w", shape=[1, 3, 3, 1], dtype=F32,
                        data=np.ones((1, 3, 3, 1), np.float32)),
                   dict(name="b", shape=[1], dtype=F32, data=np.zeros(1, np.float32))],
                  [dict(name="y", shape=[1, 3, 3, 1], dtype=F32)], opts)


@pytest.mark.parametrize("options", [dict(stride_w=0), dict(stride_h=-1),
                                     dict(dilation_w_factor=0), dict(padding=7),
                                     dict(fused_activation_function=42)],
                         ids=["stride0", "stride-1", "dilation0", "padding7", "activation42"])
def test_class16_conv_options(options: dict[str, Any]) -> None:
    exc = prepare_error(_conv(**options), ModelValidationError, subgraph=0, operator=0,
                        opcode="CONV_2D")
    assert not isinstance(exc, ZeroDivisionError)


@pytest.mark.parametrize("op,options,shape_in,shape_out", [
    ("DEPTH_TO_SPACE", {"block_size": 0}, [1, 2, 2, 4], [1, 4, 4, 1]),
    ("SPACE_TO_DEPTH", {"block_size": 0}, [1, 4, 4, 1], [1, 2, 2, 4]),
    ("MAX_POOL_2D", {"padding": "VALID", "stride_w": 0, "stride_h": 1, "filter_width": 2,
                     "filter_height": 2}, [1, 4, 4, 1], [1, 3, 3, 1]),
    ("AVERAGE_POOL_2D", {"padding": "VALID", "stride_w": 1, "stride_h": 1, "filter_width": 0,
                         "filter_height": 2}, [1, 4, 4, 1], [1, 3, 3, 1]),
    ("CONCATENATION", {"axis": 9}, [2, 2], [2, 4]),
])
def test_class16_options(op: str, options: dict[str, Any], shape_in: list[int],
                         shape_out: list[int]) -> None:
    n_in = 2 if op == "CONCATENATION" else 1
    data = one_op(op, [dict(name=f"x{k}", shape=shape_in, dtype=F32) for k in range(n_in)],
                  [dict(name="y", shape=shape_out, dtype=F32)], options)
    prepare_error(data, ModelValidationError, subgraph=0, operator=0, opcode=op)


def test_class16_split_num_splits_zero() -> None:
    data = one_op("SPLIT", [dict(name="axis", shape=[], dtype="INT32",
                                 data=np.array(0, np.int32)),
                            dict(name="x", shape=[4], dtype=F32)],
                  [dict(name="y", shape=[4], dtype=F32)], {"num_splits": 0})
    prepare_error(data, ModelValidationError, subgraph=0, operator=0, opcode="SPLIT")


# -- class 17: operand shapes ----------------------------------------------------------------------
@pytest.mark.parametrize("op,a,b", [("ADD", [64, 64], [2, 3]), ("MUL", [4, 1, 3], [5, 2])])
def test_class17_not_broadcastable(op: str, a: list[int], b: list[int]) -> None:
    data = one_op(op, [dict(name="a", shape=a, dtype=F32), dict(name="b", shape=b, dtype=F32)],
                  [dict(name="y", shape=a, dtype=F32)])
    prepare_error(data, ModelValidationError, subgraph=0, operator=0, opcode=op)


def test_class17_reshape_count() -> None:
    data = one_op("RESHAPE", [dict(name="x", shape=[2, 3], dtype=F32),
                              dict(name="s", shape=[2], dtype="INT32",
                                   data=np.array([4, 2], np.int32))],
                  [dict(name="y", shape=[4, 2], dtype=F32)])
    prepare_error(data, ModelValidationError, subgraph=0, operator=0, opcode="RESHAPE")


def test_class17_conv_channels() -> None:
    data = one_op("CONV_2D",
                  [dict(name="x", shape=[1, 5, 5, 2], dtype=F32),
                   dict(name="w", shape=[1, 3, 3, 3], dtype=F32,
                        data=np.ones((1, 3, 3, 3), np.float32))],
                  [dict(name="y", shape=[1, 3, 3, 1], dtype=F32)],
                  {"padding": "VALID", "stride_w": 1, "stride_h": 1})
    prepare_error(data, ModelValidationError, subgraph=0, operator=0, opcode="CONV_2D")


# -- class 18: runtime control data ----------------------------------------------------------------
def test_class18_gather_index_out_of_range() -> None:
    data = one_op("GATHER", [dict(name="p", shape=[3, 2], dtype=F32),
                             dict(name="i", shape=[2], dtype="INT32")],
                  [dict(name="y", shape=[2, 2], dtype=F32)], {"axis": 0})
    exc = invoke_error(data, KernelRuntimeError,
                       {0: np.ones((3, 2), np.float32), 1: np.array([1, -10], np.int32)},
                       subgraph=0, operator=0, opcode="GATHER")
    assert "-10" in str(exc)


def test_class18_integer_division_by_zero() -> None:
    data = one_op("DIV", [dict(name="a", shape=[3], dtype="INT32"),
                          dict(name="b", shape=[3], dtype="INT32")],
                  [dict(name="y", shape=[3], dtype="INT32")])
    invoke_error(data, KernelRuntimeError, {0: np.array([1, 2, 3], np.int32),
                                            1: np.array([1, 0, 1], np.int32)},
                 subgraph=0, operator=0, opcode="DIV")


def test_class18_floor_mod_by_zero() -> None:
    data = one_op("FLOOR_MOD", [dict(name="a", shape=[2], dtype="INT32"),
                                dict(name="b", shape=[2], dtype="INT32")],
                  [dict(name="y", shape=[2], dtype="INT32")])
    invoke_error(data, KernelRuntimeError, {0: np.array([5, 7], np.int32),
                                            1: np.array([0, 2], np.int32)},
                 subgraph=0, operator=0, opcode="FLOOR_MOD")


# -- class 19: data-dependent huge outputs ---------------------------------------------------------
def _fill(dims: list[int], constant: bool) -> bytes:
    dims_spec: dict[str, Any] = dict(name="dims", shape=[len(dims)], dtype="INT32")
    if constant:
        dims_spec["data"] = np.array(dims, np.int32)
    return one_op("FILL", [dims_spec, dict(name="v", shape=[], dtype=F32,
                                           data=np.array(1.0, np.float32))],
                  [dict(name="y", shape=dims if constant else [1] * len(dims), dtype=F32)])


HUGE_DIMS = [1 << 15, 1 << 15, 1 << 10]  # 2^40 floats: 4 TiB


def test_class19_fill_constant_dims_over_budget() -> None:
    data = _fill(HUGE_DIMS, constant=True)
    with pytest.raises(TFLiteRefError) as info:
        tflite_ref.load(data)  # the declared output shape already exceeds the element budget
    check(info.value, ResourceLimitError, tensor=2)


def _runtime_shape_cases() -> list[Any]:
    """Operators whose output (or scratch) size comes from data or options: each asks for about
    2^40 elements, or a padded intermediate of 2^32, from a few bytes of model."""
    big = 1 << 20
    x4 = dict(name="x", shape=[1, 5, 5, 1], dtype=F32)
    w = dict(name="w", shape=[1, 3, 3, 1], dtype=F32, data=np.ones((1, 3, 3, 1), np.float32))
    b = dict(name="b", shape=[1], dtype=F32, data=np.zeros(1, np.float32))
    y4 = dict(name="y", shape=[1, 5, 5, 1], dtype=F32)
    ones = np.ones((1, 5, 5, 1), np.float32)
    same = {"padding": "SAME", "stride_w": 1, "stride_h": 1}
    i32 = "INT32"

    def case(name: str, data: bytes, inputs: dict[int, Any]) -> Any:
        return pytest.param(data, inputs, id=name)

    # Every output shape a prepare plans, and every padded scratch buffer, passes the allocation
    # budget in OpContext.set_output_shape; an allocation NumPy still refuses becomes a located
    # ResourceLimitError in the interpreter.
    return [
        case("FILL", _fill(HUGE_DIMS, constant=False), {0: np.array(HUGE_DIMS, np.int32)}),
        case("RANGE", one_op("RANGE", [dict(name=n, shape=[], dtype="INT64")
                                       for n in ("s", "l", "d")],
                             [dict(name="y", shape=[1], dtype="INT64")]),
             {0: np.array(0, np.int64), 1: np.array(2**62, np.int64), 2: np.array(1, np.int64)}),
        case("TILE", one_op("TILE", [dict(name="x", shape=[2, 2], dtype=F32),
                                     dict(name="m", shape=[2], dtype=i32)],
                            [dict(name="y", shape=[2, 2], dtype=F32)]),
             {0: np.ones((2, 2), np.float32), 1: np.array([big, big], np.int32)}),
        case("BROADCAST_TO", one_op("BROADCAST_TO", [dict(name="x", shape=[1, 1], dtype=F32),
                                                     dict(name="s", shape=[2], dtype=i32)],
                                    [dict(name="y", shape=[1, 1], dtype=F32)]),
             {0: np.ones((1, 1), np.float32), 1: np.array([big, big], np.int32)}),
        case("RESIZE_BILINEAR", one_op("RESIZE_BILINEAR",
                                       [dict(name="x", shape=[1, 2, 2, 1], dtype=F32),
                                        dict(name="s", shape=[2], dtype=i32)],
                                       [dict(name="y", shape=[1, 2, 2, 1], dtype=F32)]),
             {0: np.ones((1, 2, 2, 1), np.float32), 1: np.array([big, big], np.int32)}),
        case("PAD", one_op("PAD", [dict(name="x", shape=[1, 2, 2, 1], dtype=F32),
                                   dict(name="p", shape=[4, 2], dtype=i32)],
                           [dict(name="y", shape=[1, 2, 2, 1], dtype=F32)]),
             {0: np.ones((1, 2, 2, 1), np.float32),
              1: np.array([[0, 0], [big, big], [big, 0], [0, 0]], np.int32)}),
        case("ONE_HOT", one_op("ONE_HOT", [dict(name="i", shape=[2], dtype=i32),
                                           dict(name="d", shape=[], dtype=i32),
                                           dict(name="on", shape=[], dtype=F32,
                                                data=np.array(1, np.float32)),
                                           dict(name="off", shape=[], dtype=F32,
                                                data=np.array(0, np.float32))],
                               [dict(name="y", shape=[2, 1], dtype=F32)], {"axis": -1}),
             {0: np.array([0, 1], np.int32), 1: np.array(1 << 30, np.int32)}),
        case("CONV_2D-dilation", one_op("CONV_2D", [x4, w, b], [y4],
                                        same | {"dilation_w_factor": 2**31 - 1}), {0: ones}),
        case("DEPTHWISE_CONV_2D-dilation", one_op(
                "DEPTHWISE_CONV_2D", [x4, w, b], [y4],
                same | {"depth_multiplier": 1, "dilation_w_factor": 2**31 - 1}), {0: ones}),
        case("MAX_POOL_2D-filter", one_op("MAX_POOL_2D", [x4], [y4],
                                          same | {"filter_width": 2**31 - 1, "filter_height": 1}),
             {0: ones}),
        case("AVERAGE_POOL_2D-filter", one_op("AVERAGE_POOL_2D", [x4], [y4],
                                              same | {"filter_width": 2**30, "filter_height": 1}),
             {0: ones}),
    ]


@pytest.mark.parametrize("data,inputs", _runtime_shape_cases())
def test_class19_huge_outputs_are_refused_before_allocating(data: bytes,
                                                            inputs: dict[int, Any]) -> None:
    """Runs in a child limited to 2 GiB: the unfixed kernels would otherwise allocate here."""
    got = invoke_isolated(data, inputs)
    assert got["outcome"] == "error" and got["type"] == "ResourceLimitError", got
    assert got["locator"] and got["locator"].get("operator") == 0, got


# -- class 20: sparsity ----------------------------------------------------------------------------
def _sparse(sp: Sparsity, nbytes: int) -> bytes:
    mb = ModelBuilder()
    sg = mb.subgraph()
    w = sg.tensor("w", [2, 2], "INT8", buffer=mb.buffer(bytes(nbytes)), sparsity=sp)
    y = sg.tensor("y", [2, 2], "INT8")
    sg.operator("DENSIFY", [w], [y])
    sg.outputs = [y]
    return mb.build()


DENSE = DimensionMetadata("DENSE", dense_size=2)


@pytest.mark.parametrize("sp,nbytes,slot", [
    (Sparsity([1, 1], [], [DENSE, DENSE]), 4, "traversal_order"),
    (Sparsity([0, 1], [0], [DENSE, DENSE]), 4, "block_map"),
    (Sparsity([0, 1], [], [DENSE, DimensionMetadata("SPARSE_CSR", array_segments=[0, 3, 1],
                                                    array_indices=[0, 1])]), 2, "dim_metadata[1]"),
    (Sparsity([0, 1], [], [DENSE, DimensionMetadata("SPARSE_CSR", array_segments=[0, 1, 2],
                                                    array_indices=[0, 9])]), 2, "dim_metadata[1]"),
    (Sparsity([0, 1], [], [DENSE, DimensionMetadata("SPARSE_CSR", array_segments=[0, 1, 2],
                                                    array_indices=[0, 1])]), 3, "data"),
], ids=["order", "block_map", "segments", "indices", "size"])
def test_class20_sparsity(sp: Sparsity, nbytes: int, slot: str) -> None:
    load_error(_sparse(sp, nbytes), ModelValidationError, "K", tensor=0, tensor_name="w",
               slot=slot)


# -- class 21: custom operators --------------------------------------------------------------------
def test_class21_unknown_custom_op() -> None:
    data = one_op("CUSTOM:ethos-u", [dict(name="x", shape=[4], dtype="INT8")],
                  [dict(name="y", shape=[4], dtype="INT8")], custom_options=b"\xff\x00raw")
    assert tflite_ref.load(data).subgraphs[0].operators[0].custom_options_decoded is None
    exc = prepare_error(data, UnsupportedError, subgraph=0, operator=0, opcode="CUSTOM:ethos-u")
    assert "'ethos-u'" in str(exc)


def test_class21_flexbuffer_bomb_is_not_decoded() -> None:
    """200 bytes of FlexBuffer that ``flexbuffers.Loads`` would expand to 2^24 values (it hangs);
    the bounded check refuses it in milliseconds and the options stay bytes."""
    bomb = flexbuffer_bomb(24)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="aliased values"):
        decode_flexbuffer(bomb)
    data = one_op("CUSTOM:MyOp", [dict(name="x", shape=[4], dtype="INT8")],
                  [dict(name="y", shape=[4], dtype="INT8")], custom_options=bomb)
    op = tflite_ref.load(data).subgraphs[0].operators[0]
    assert op.custom_options == bomb and op.custom_options_decoded is None
    assert time.perf_counter() - start < 1
    assert decode_flexbuffer(flexbuffer_bomb(3)) == [[[[None, None]] * 2] * 2] * 2


@pytest.mark.parametrize("raw", [b"\x01\x02", b"\0\0\0\0\x28\x04", b"\xff" * 16,
                                 b"\x05\x00\x09\x14\x01"])
def test_class21_malformed_flexbuffers(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode_flexbuffer(raw)


# -- class 22: string tensors ----------------------------------------------------------------------
@pytest.mark.parametrize("raw,what", [
    (struct.pack("<4i", 2, 16, 40, 19) + b"abc", "offsets are not increasing"),
    (struct.pack("<i", 2**30) + bytes(12), "does not fit"),
    (struct.pack("<3i", 1, 12, 13) + b"a", "holds 1 strings"),
    (b"\1\2", "too short"),
])
def test_class22_string_buffers(raw: bytes, what: str) -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        sg.tensor("s", [2], "STRING", buffer=mb.buffer(raw))

    exc = load_error(add_model(hook), ModelValidationError, "E", tensor=3, tensor_name="s",
                     slot="data")
    assert what in str(exc)


def test_class22_valid_strings_shared_by_many_tensors() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        b = mb.buffer(pack_strings(["x" * 1000, "y"]))
        for k in range(200):
            sg.tensor(f"s{k}", [2], "STRING", buffer=b)

    tflite_ref.load(add_model(hook))


# -- class 23: metadata and signatures -------------------------------------------------------------
def test_class23_metadata_buffer() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        mb._metadata.append(("min_runtime_version", 99))

    load_error(add_model(hook), ModelValidationError, "B", table="metadata", index=0, buffer=99)


@pytest.mark.parametrize("name,raw", [
    ("min_runtime_version", b"\xff\xfe garbage"), ("min_runtime_version", b"1" * 5000),
    ("CONVERSION_METADATA", b"\x10\0\0\0" + b"\xff" * 12), ("CONVERSION_METADATA", b"\0"),
    ("OfflineMemoryAllocation", b"\1\2\3"),
])
def test_class23_garbage_metadata_is_a_warning(name: str, raw: bytes) -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        mb.metadata(name, raw)

    m = tflite_ref.load(add_model(hook))
    assert m.metadata_dict[name] == raw
    assert any("could not be decoded" in w and len(w) < 400 for w in m.warnings)


def test_class23_signature_names() -> None:
    def hook(mb: ModelBuilder, sg: Any) -> None:
        mb.signature("s", 0, inputs={"x": 0}, outputs={"y": 2})
        mb.signature("s", 0, inputs={"x": 0}, outputs={"y": 2})

    load_error(add_model(hook), ModelValidationError, table="signature_defs", index=1,
               slot="signature_key")


# -- class 24: variables and resources -------------------------------------------------------------
def test_class24_assign_variable_type_mismatch() -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    h = sg.tensor("h", [], "RESOURCE")
    v = sg.tensor("v", [2], "INT32", data=np.array([1, 2], np.int32))
    sg.operator("VAR_HANDLE", [], [h], {"container": "", "shared_name": "state"})
    sg.operator("ASSIGN_VARIABLE", [h, v], [])
    r = sg.tensor("r", [3], F32)
    sg.operator("READ_VARIABLE", [h], [r])
    sg.outputs = [r]
    it = tflite_ref.Interpreter(model_content=mb.build())
    with pytest.raises(TFLiteRefError) as info:
        it.allocate_tensors()
        it.invoke()
    exc = info.value
    assert isinstance(exc, (ModelValidationError, KernelRuntimeError)), exc
    assert exc.locator is not None and exc.locator.subgraph == 0
    assert "'state'" in str(exc)  # the resource's name


# -- class 25: NaN / Inf / subnormal weights -------------------------------------------------------
def test_class25_nonfinite_weights_compute_and_are_reported() -> None:
    weights = np.array([[np.nan, np.inf, 1e-40, 1.0]], np.float32)
    data = one_op("ADD", [dict(name="x", shape=[1, 4], dtype=F32),
                          dict(name="w", shape=[1, 4], dtype=F32, data=weights)],
                  [dict(name="y", shape=[1, 4], dtype=F32)])
    m = tflite_ref.load(data)
    (finding,) = nonfinite_findings(m)
    assert (finding.tensor, finding.nan, finding.inf, finding.subnormal) == (1, 1, 1, 1)
    assert "1 NaN, 1 Inf, 1 subnormal" in str(finding)
    it = tflite_ref.Interpreter(model=m)
    it.allocate_tensors()
    it.set_tensor(0, np.zeros((1, 4), np.float32))
    it.invoke()
    y = it.get_tensor(2)
    # Activation NONE clamps to [lowest, max] float, so Inf comes out as FLT_MAX, as in LiteRT.
    assert math.isnan(y[0, 0]) and y[0, 1] >= np.finfo(np.float32).max and y[0, 3] == 1.0


# -- the CLI on files of every load-time class -----------------------------------------------------
def _cli_files() -> list[Any]:
    data = add_model()
    s = site(data, "string_length", "model.subgraphs[0].tensors[2].name")

    def hook_opcode(mb: ModelBuilder, sg: Any) -> None:
        sg.operators[0].opcode_index = 99

    return [
        pytest.param(b"\0" * 6, id="01-short"),
        pytest.param(b"\x18\0\0\0TFL3", id="02-root"),
        pytest.param(poke(data, site(data, "vtable_size", "model").pos, "H", 7), id="03-vtable"),
        pytest.param(poke(data, s.pos, "I", 0x7FFFFFFF), id="04-string"),
        pytest.param(data[: len(data) // 2], id="05-truncated"),
        pytest.param(aliasing_bomb(2000, 600), id="06-bomb"),
        pytest.param(add_model(hook_opcode), id="08-opcode"),
        pytest.param(_two_ops("cycle"), id="12-cycle"),
        pytest.param(_call_chain(3, loop=True), id="13-recursion"),
        pytest.param(_quant(scale=float("nan"), zero_point=0), id="14-scale"),
        pytest.param(_sparse(Sparsity([1, 1], [], [DENSE, DENSE]), 4), id="20-sparsity"),
    ]


@pytest.mark.parametrize("data", _cli_files())
@pytest.mark.parametrize("command", ["inspect", "run", "micro"])
def test_cli_prints_one_line_and_exits_2(data: bytes, command: str, tmp_path: Any,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from tflite_ref.cli.main import main

    path = tmp_path / "hostile.tflite"
    path.write_bytes(data)
    with pytest.raises(SystemExit) as info:
        main([command, str(path), "--json"])
    out, err = capsys.readouterr()
    assert info.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), err
    assert "Traceback" not in err and out == ""
