"""The Interpreter's API mirrors LiteRT's: same calls, same detail keys and value types, clear
errors for misuse; plus what LiteRT lacks (every tensor after invoke, the per-operator observer)."""

from __future__ import annotations

import numpy as np
import pytest
from harness import litert_interpreter

import tflite_ref
from tflite_ref.errors import UsageError
from tflite_ref.model.writer import ModelBuilder


def two_op_model() -> bytes:
    """x[1,6] int8 -> RESHAPE [2,3] -> RESHAPE [3,2]; a signature names both ends."""
    mb = ModelBuilder()
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 6], "INT8", scale=0.5, zero_point=-3, shape_signature=[-1, 6])
    s1 = sg.tensor("s1", [2], "INT32", data=np.array([2, 3], np.int32))
    mid = sg.tensor("mid", [2, 3], "INT8", scale=0.5, zero_point=-3)
    s2 = sg.tensor("s2", [2], "INT32", data=np.array([3, -1], np.int32))
    y = sg.tensor("y", [3, 2], "INT8", scale=0.5, zero_point=-3)
    sg.operator("RESHAPE", [x, s1], [mid], {"new_shape": [2, 3]})
    sg.operator("RESHAPE", [mid, s2], [y], {"new_shape": [3, -1]})
    sg.inputs, sg.outputs = [x], [y]
    mb.signature("serving_default", sg, inputs={"inp": x}, outputs={"out": y})
    return mb.build()


def _same_detail(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs), (set(ours) ^ set(theirs))
    for key in theirs:
        a, b = ours[key], theirs[key]
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray) and a.dtype == b.dtype, key
            np.testing.assert_array_equal(a, b)
        elif isinstance(b, dict):
            _same_detail(a, b)
        else:
            assert type(a) is type(b) and a == b, (key, a, b)


def test_details_have_litert_keys_and_types() -> None:
    data = two_op_model()
    ours = tflite_ref.Interpreter(model_content=data)
    ours.allocate_tensors()
    theirs = litert_interpreter(data)
    theirs.allocate_tensors()
    _same_detail(ours.get_input_details()[0], theirs.get_input_details()[0])
    _same_detail(ours.get_output_details()[0], theirs.get_output_details()[0])
    by_index = {d["index"]: d for d in theirs.get_tensor_details()}
    for d in ours.get_tensor_details():
        if d["index"] in by_index:
            _same_detail(d, by_index[d["index"]])
    assert ours.get_signature_list() == theirs.get_signature_list()


def test_every_tensor_after_invoke_and_observer() -> None:
    data = two_op_model()
    it = tflite_ref.Interpreter(model_content=data)
    it.allocate_tensors()
    x = np.arange(6, dtype=np.int8).reshape(1, 6)
    it.set_tensor(0, x)
    seen: list[tuple[int, int, str, list[tuple[int, ...]]]] = []
    it.invoke(observer=lambda sg, i, op, ins, outs: seen.append(
        (sg, i, op.opcode, [o.shape for o in outs])))
    assert seen == [(0, 0, "RESHAPE", [(2, 3)]), (0, 1, "RESHAPE", [(3, 2)])]
    np.testing.assert_array_equal(it.get_tensor(2), x.reshape(2, 3))  # an intermediate
    np.testing.assert_array_equal(it.get_tensor(4), x.reshape(3, 2))


def test_signature_runner() -> None:
    data = two_op_model()
    it = tflite_ref.Interpreter(model_content=data)
    runner = it.get_signature_runner()
    x = np.arange(6, dtype=np.int8).reshape(1, 6)
    out = runner(inp=x)
    ref = litert_interpreter(data).get_signature_runner()(inp=x)
    assert out.keys() == ref.keys()
    np.testing.assert_array_equal(out["out"], ref["out"])
    with pytest.raises(UsageError, match="has no input 'nope'"):
        runner(nope=x)


def test_resize_tensor_input() -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", [1, 6], "FLOAT32", shape_signature=[-1, 6])
    s = sg.tensor("s", [2], "INT32", data=np.array([-1, 3], np.int32))
    y = sg.tensor("y", [2, 3], "FLOAT32")
    sg.operator("RESHAPE", [x, s], [y], {"new_shape": [-1, 3]})
    sg.inputs, sg.outputs = [x], [y]
    it = tflite_ref.Interpreter(model_content=mb.build())
    it.resize_tensor_input(0, [4, 6], strict=True)
    it.allocate_tensors()
    assert it.get_output_details()[0]["shape"].tolist() == [8, 3]
    it.set_tensor(0, np.ones((4, 6), np.float32))
    it.invoke()
    assert it.get_tensor(2).shape == (8, 3)
    with pytest.raises(UsageError, match="only dimensions that are -1"):
        it.resize_tensor_input(0, [4, 7], strict=True)


@pytest.mark.parametrize("value,pattern", [
    (np.zeros((1, 6), np.float32), r"tensor 0 'x' is INT8 \(int8\); got an array of float32"),
    (np.zeros((2, 6), np.int8), r"tensor 0 'x' has shape \[1, 6\]; got \[2, 6\]"),
])
def test_set_tensor_checks(value: np.ndarray, pattern: str) -> None:
    it = tflite_ref.Interpreter(model_content=two_op_model())
    it.allocate_tensors()
    with pytest.raises(UsageError, match=pattern):
        it.set_tensor(0, value)


def test_misuse_is_a_clear_error() -> None:
    it = tflite_ref.Interpreter(model_content=two_op_model())
    with pytest.raises(UsageError, match="allocate_tensors"):
        it.get_tensor(0)
    it.allocate_tensors()
    with pytest.raises(UsageError, match="out of range"):
        it.get_tensor(99)
    with pytest.raises(UsageError, match="never set"):
        it.invoke()
    with pytest.raises(UsageError, match="emulate must be one of"):
        tflite_ref.Interpreter(model_content=two_op_model(), emulate="tpu")


def test_litert_keywords_are_accepted_and_typos_refused() -> None:
    """Code written for LiteRT switches by changing one import: its keywords are accepted (they
    change nothing here); a keyword neither interpreter knows is an error, not ignored."""
    from ai_edge_litert.interpreter import OpResolverType

    it = tflite_ref.Interpreter(model_content=two_op_model(), num_threads=2,
                                experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                                experimental_preserve_all_tensors=True,
                                experimental_delegates=None)
    it.allocate_tensors()
    with pytest.raises(UsageError, match="unknown keyword.*emulation"):
        tflite_ref.Interpreter(model_content=two_op_model(), emulation="tflm")
