"""State across invocations: resource variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE),
CALL_ONCE, variable tensors, and ``reset_all_variables()``.

Each test runs several invokes on both sides and compares after every one: every tensor of
subgraph 0 with LiteRT ``BUILTIN_REF``, the outputs with TFLite Micro.  The runtimes differ on
reset -- LiteRT's ``ResetVariableTensors`` leaves resource variables alone, TFLM's ``Reset``
restores their default -- and on a read before any assignment (LiteRT fails, TFLM reads the
default); ``emulate`` follows each.  Fixtures: ``tests/models/part2/make_models.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from harness import assert_tensor_matches, litert_interpreter, part2_models

import tflite_ref
from tflite_ref.errors import KernelRuntimeError, ModelValidationError
from tflite_ref.model.writer import ModelBuilder

M = part2_models()
Inputs = Sequence[np.ndarray]


def _feed(it: object, xs: Inputs) -> None:
    for d, x in zip(it.get_input_details(), xs):  # type: ignore[attr-defined]
        it.set_tensor(d["index"], x)  # type: ignore[attr-defined]


def check_litert(model: bytes, invokes: Sequence[Inputs], reset_before: int | None = None,
                 reallocate_before: int | None = None) -> tflite_ref.Interpreter:
    """Every tensor LiteRT shows after each invoke equals ours (``emulate="tflite"``)."""
    ref = litert_interpreter(model)
    ref.allocate_tensors()
    it = tflite_ref.Interpreter(model_content=model)
    it.allocate_tensors()
    sg = it.model.subgraphs[0]
    for k, xs in enumerate(invokes):
        if reset_before == k:
            ref.reset_all_variables()
            it.reset_all_variables()
        if reallocate_before == k:
            ref.allocate_tensors()
            it.allocate_tensors()
        _feed(ref, xs)
        _feed(it, xs)
        ref.invoke()
        it.invoke()
        compared = 0
        for d in ref.get_tensor_details():
            ti = d["index"]
            t = sg.tensors[ti]
            if t.data is not None and not t.is_variable:
                continue
            try:
                theirs = np.array(ref.get_tensor(ti))
            except ValueError:  # freed by LiteRT (e.g. a WHILE output nothing reads)
                continue
            assert_tensor_matches(it.get_tensor(ti), theirs,
                                  f"invoke {k}: tensor {ti} {t.name!r}")
            compared += 1
        assert compared >= len(sg.inputs) + len(sg.outputs)
    return it


def check_tflm(model: bytes, invokes: Sequence[Inputs], reset_before: int | None = None) -> None:
    """TFLM's outputs after each invoke equal ours (``emulate="tflm"``)."""
    from tflite_micro.python.tflite_micro import runtime

    ref = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    it = tflite_ref.Interpreter(model_content=model, emulate="tflm")
    it.allocate_tensors()
    sg = it.model.subgraphs[0]
    for k, xs in enumerate(invokes):
        if reset_before == k:
            ref.reset()
            it.reset_all_variables()
        for j, x in enumerate(xs):
            ref.set_input(x, j)
        _feed(it, xs)
        ref.invoke()
        it.invoke()
        for j, ti in enumerate(sg.outputs):
            mine = it.get_tensor(ti)
            theirs = np.array(ref.get_output(j)).reshape(mine.shape)
            assert_tensor_matches(mine, theirs, f"invoke {k}: output {j} vs TFLM")


def _float_invokes(n: int, shape: tuple[int, ...], seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.normal(0, 1, shape).astype(np.float32)] for _ in range(n)]


# =============================================================================================
# Resource variables and CALL_ONCE
# =============================================================================================
def test_resource_variable_accumulates_across_invokes() -> None:
    """CALL_ONCE assigns [1, 2, 3, 4] once; each invoke adds its input to the variable."""
    model = M.fixture("var_accumulate")
    invokes = _float_invokes(3, (1, 4))
    it = check_litert(model, invokes)
    check_tflm(model, invokes)
    expected = np.array([[1, 2, 3, 4]], np.float32) + sum(x[0] for x in invokes)
    np.testing.assert_allclose(it.get_tensor(it.get_output_details()[0]["index"]), expected,
                               rtol=1e-6)


def test_reset_all_variables_keeps_resource_variables_like_litert() -> None:
    check_litert(M.fixture("var_accumulate"), _float_invokes(4, (1, 4), 1), reset_before=2)


def test_reset_restores_resource_defaults_like_tflm() -> None:
    """TFLM's reset() puts resource variables back at their default (0) and CALL_ONCE does not
    run again, so the sum restarts from the input alone."""
    check_tflm(M.fixture("var_accumulate"), _float_invokes(4, (1, 4), 2), reset_before=2)


def test_second_allocate_keeps_state_like_litert() -> None:
    """allocate_tensors() without a resize in between changes nothing (LiteRT returns early)."""
    check_litert(M.fixture("var_accumulate"), _float_invokes(3, (1, 4), 3), reallocate_before=1)


def test_call_once_runs_its_subgraph_on_the_first_invoke_only() -> None:
    it = tflite_ref.Interpreter(model_content=M.fixture("var_accumulate"))
    it.allocate_tensors()
    runs: list[list[int]] = []
    for _ in range(3):
        runs.append([])
        it.set_tensor(it.get_input_details()[0]["index"], np.zeros((1, 4), np.float32))
        it.invoke(observer=lambda sg, *_: runs[-1].append(sg))
        it.reset_all_variables()  # does not re-arm CALL_ONCE (neither runtime does)
    assert runs[0].count(1) == 2 and runs[1].count(1) == 0 and runs[2].count(1) == 0


def test_read_before_assign() -> None:
    model = M.fixture("var_read_before_assign")
    xs = [np.ones((1, 4), np.float32)]
    ref = litert_interpreter(model)
    ref.allocate_tensors()
    _feed(ref, xs)
    with pytest.raises(RuntimeError, match="variable != nullptr"):
        ref.invoke()
    it = tflite_ref.Interpreter(model_content=model)
    it.allocate_tensors()
    _feed(it, xs)
    with pytest.raises(KernelRuntimeError) as info:
        it.invoke()
    message = str(info.value)
    assert "\n" not in message and "READ_VARIABLE" in message
    assert "'never_assigned'" in message and "before any ASSIGN_VARIABLE" in message
    check_tflm(model, _float_invokes(3, (1, 4), 4))  # TFLM reads the zero default


def test_resource_handle_as_a_while_loop_variable() -> None:
    model = M.fixture("var_in_while")
    invokes = [[np.array([1.5, -2.0], np.float32)], [np.array([0.25, 4.0], np.float32)]]
    it = check_litert(model, invokes)
    check_tflm(model, invokes)
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]),
                                  np.array([0.75, 12.0], np.float32))


def test_resource_tensors_read_as_none_like_litert() -> None:
    it = tflite_ref.Interpreter(model_content=M.fixture("var_accumulate"))
    it.allocate_tensors()
    handle = next(t.index for t in it.model.subgraphs[0].tensors if t.type_name == "RESOURCE")
    value = it.get_tensor(handle)
    assert value.dtype == object and value.shape == () and value.item() is None


def _assign_then_read(value_shape: list[int], read_shape: list[int], read_type: str) -> bytes:
    mb = ModelBuilder()
    sg = mb.subgraph()
    h = sg.tensor("h", [], "RESOURCE")
    v = sg.tensor("v", value_shape, "FLOAT32", np.ones(value_shape, np.float32))
    r = sg.tensor("r", read_shape, read_type)
    sg.operator("VAR_HANDLE", [], [h], {"container": "c", "shared_name": "w"})
    sg.operator("ASSIGN_VARIABLE", [h, v], [])
    sg.operator("READ_VARIABLE", [h], [r])
    sg.outputs = [r]
    return mb.build()


@pytest.mark.parametrize("shape,typ,pattern", [
    ([4], "INT32", r"resource variable 'c/w' \(id 0\) holds float32; the output is INT32"),
    ([2], "FLOAT32", r"'c/w' \(id 0\) has shape \[4\]; the output's shape \[2\] holds another"),
])
def test_read_variable_mismatch_names_the_variable(shape: list[int], typ: str,
                                                  pattern: str) -> None:
    it = tflite_ref.Interpreter(model_content=_assign_then_read([4], shape, typ))
    it.allocate_tensors()
    with pytest.raises(KernelRuntimeError, match=pattern):
        it.invoke()


def test_scalar_read_takes_the_variable_shape_like_litert() -> None:
    """read_variable.cc: a rank-0 output is dynamic and takes the variable's shape."""
    model = _assign_then_read([2, 3], [], "FLOAT32")
    ref = litert_interpreter(model)
    ref.allocate_tensors()
    ref.invoke()
    it = tflite_ref.Interpreter(model_content=model)
    it.allocate_tensors()
    it.invoke()
    out = it.get_output_details()[0]["index"]
    assert_tensor_matches(it.get_tensor(out), np.array(ref.get_tensor(out)), "read")


def test_resource_id_input_must_be_one_id() -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    h = sg.tensor("h", [2], "INT32", np.array([0, 1], np.int32))
    r = sg.tensor("r", [4], "FLOAT32")
    sg.operator("READ_VARIABLE", [h], [r])
    sg.outputs = [r]
    with pytest.raises(ModelValidationError, match=r"input 0 \(the variable\) has shape \[2\]"):
        tflite_ref.Interpreter(model_content=mb.build()).allocate_tensors()


# =============================================================================================
# Variable tensors
# =============================================================================================
def test_int8_variable_tensor_starts_and_resets_at_its_zero_point() -> None:
    model = M.fixture("int8_variable_tensor")
    rng = np.random.default_rng(9)
    invokes = [[rng.integers(-128, 128, (1, 6)).astype(np.int8)] for _ in range(3)]
    it = check_litert(model, invokes, reset_before=1)
    check_tflm(model, invokes, reset_before=1)
    v = next(t.index for t in it.model.subgraphs[0].tensors if t.is_variable)
    np.testing.assert_array_equal(it.get_tensor(v), np.full((1, 6), -4, np.int8))
    it.set_tensor(v, np.full((1, 6), 7, np.int8))
    it.reset_all_variables()
    np.testing.assert_array_equal(it.get_tensor(v), np.full((1, 6), -4, np.int8))
