"""``tflite_ref.budgets``: defaults, the three ways to set them (API, environment, CLI option),
and the check functions the reader, the interpreter and the kernels call."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
import pytest
from hostile_models import add_model

import tflite_ref
from tflite_ref import budgets
from tflite_ref.budgets import Budgets
from tflite_ref.errors import Locator, ModelValidationError, ResourceLimitError, UsageError


def test_defaults_follow_the_shared_doc() -> None:
    b = Budgets()
    assert b.file_bytes == 2**31 and b.tables == 1_000_000 and b.depth == 64
    assert b.tensor_elements == 2**31 - 1 and b.activation_bytes == 2**30
    assert b.control_flow_depth == 32 and b.invoke_seconds is not None


@pytest.mark.parametrize("text,value", [
    ("1000", 1000), ("512MiB", 512 << 20), ("2GiB", 2 << 30), ("1e6", 10**6), ("2^31", 2**31),
    ("none", None), ("1.5k", 1500),
])
def test_parse_values(text: str, value: int | None) -> None:
    assert budgets.parse_value("tables", text) == value


def test_parse_seconds() -> None:
    assert budgets.parse_value("invoke_seconds", "250ms") == pytest.approx(0.25)
    assert budgets.parse_value("invoke_seconds", "2min") == 120.0


@pytest.mark.parametrize("spec", ["tables", "nonsense=1", "tables=lots", "tables=-1"])
def test_bad_specs_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError):
        Budgets.from_spec(spec)


def test_from_spec_and_replace() -> None:
    b = Budgets.from_spec("tables=10, invoke-seconds=2.5, file_bytes=none")
    assert (b.tables, b.invoke_seconds, b.file_bytes) == (10, 2.5, None)
    assert b.replace(tables=5).tables == 5
    with pytest.raises(UsageError, match="unknown budget 'bogus'"):
        b.replace(bogus=1)


def test_use_nests_and_restores() -> None:
    before = budgets.current()
    with budgets.use(tables=7) as outer:
        assert budgets.current().tables == 7 and outer.tables == 7
        with budgets.use(depth=5):
            assert (budgets.current().tables, budgets.current().depth) == (7, 5)
        assert budgets.current().depth == before.depth
    assert budgets.current() == before


def test_environment_sets_the_process_default() -> None:
    code = ("from tflite_ref import budgets; b = budgets.current(); "
            "print(b.tables, b.invoke_seconds)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"TFLITE_REF_BUDGETS": "tables=123,invoke_seconds=4",
                              "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["123", "4.0"]


def test_cli_option_helpers() -> None:
    p = argparse.ArgumentParser()
    budgets.add_arguments(p)
    args = p.parse_args(["--budget", "tables=9", "--budget", "activation_bytes=1MiB"])
    b = budgets.from_args(args)
    assert (b.tables, b.activation_bytes) == (9, 1 << 20)
    assert budgets.from_args(p.parse_args([])) == budgets.current()


def test_load_takes_budgets() -> None:
    data = add_model()
    tflite_ref.load(data)
    with pytest.raises(ResourceLimitError, match="tables budget|more than 3 tables"):
        tflite_ref.load(data, budgets=Budgets(tables=3))


def test_interpreter_takes_budgets() -> None:
    """``Interpreter(budgets=...)`` governs that interpreter's loading, allocation and invoke,
    and only that one; anything else is a usage error, not silently ignored."""
    data = add_model()
    before = budgets.current()
    with pytest.raises(ResourceLimitError, match="more than 3 tables|tables budget"):
        tflite_ref.Interpreter(model_content=data, budgets=Budgets(tables=3))
    tight = tflite_ref.Interpreter(model_content=data, budgets=Budgets(activation_bytes=8))
    with pytest.raises(ResourceLimitError, match="activation_bytes budget of 8"):
        tight.allocate_tensors()
    tflite_ref.Interpreter(model_content=data).allocate_tensors()  # the defaults elsewhere
    slow = tflite_ref.Interpreter(model_content=data, budgets=Budgets(invoke_seconds=0.0))
    slow.allocate_tensors()
    for d in slow.get_input_details():
        slow.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    with pytest.raises(ResourceLimitError, match="invoke_seconds budget"):
        slow.invoke()
    assert budgets.current() == before  # nothing leaked
    with pytest.raises(UsageError, match="budgets must be"):
        tflite_ref.Interpreter(model_content=data, budgets={"tables": 3})  # type: ignore[arg-type]


def test_element_count_checks_per_dimension() -> None:
    assert budgets.element_count([2, 3, 4]) == 24
    assert budgets.element_count([0, 2**62, 2**62]) == 0  # empty, however large the rest
    with pytest.raises(ResourceLimitError, match=r"has about 2\^\d+ elements") as info:
        budgets.element_count([2**62] * 4, "subgraph 0, tensor 3 'x'")
    assert info.value.locator == Locator(subgraph=0, tensor=3, tensor_name="x")
    with pytest.raises(ModelValidationError, match="negative dimension"):
        budgets.element_count([2, -1])


def test_check_allocation_names_the_operator() -> None:
    where = "subgraph 0, operator 3 (FILL)"
    assert budgets.check_allocation(where, [1024, 1024], 4) == 4 << 20
    with pytest.raises(ResourceLimitError) as info:
        budgets.check_allocation(where, [1 << 15, 1 << 15, 1 << 10], 4)
    exc = info.value
    assert str(exc).startswith("subgraph 0, operator 3 (FILL): ")
    assert "2^40" in str(exc) or "elements" in str(exc)
    assert exc.locator is not None and (exc.locator.operator, exc.locator.opcode) == (3, "FILL")
    assert exc.cve_class == "M"
    with pytest.raises(ResourceLimitError, match=r"would allocate 4,294,967,296 \(2\^32\) bytes"):
        budgets.check_allocation(where, [1 << 30], 4)


def test_activation_bytes() -> None:
    assert budgets.activation_bytes([(2, 2), (8,)], [4, 1]) == 24
    with budgets.use(activation_bytes=100):
        with pytest.raises(ResourceLimitError, match="activation_bytes budget of 100"):
            budgets.activation_bytes([(10, 10), (2,)], [1, 1], where="subgraph 0")


def test_iterations_and_depth() -> None:
    budgets.check_iterations(10)
    with budgets.use(control_flow_iterations=10):
        with pytest.raises(ResourceLimitError, match="ran 11 iterations"):
            budgets.check_iterations(11, "subgraph 0, operator 2 (WHILE)")
    with pytest.raises(ResourceLimitError, match="nests 33 subgraphs deep"):
        budgets.check_depth(33, "subgraph 5, operator 0 (IF)")


def test_deadline() -> None:
    d = budgets.Deadline(Budgets(invoke_seconds=0.01))
    d.check("subgraph 0, operator 0 (ADD)")
    time.sleep(0.02)
    with pytest.raises(ResourceLimitError, match="invoke_seconds budget") as info:
        d.check("subgraph 0, operator 7 (CONV_2D)")
    assert info.value.locator is not None and info.value.locator.operator == 7
    budgets.Deadline(Budgets(invoke_seconds=None)).check()  # no limit: never raises


def test_errors_pickle_with_their_locator() -> None:
    import pickle

    exc = ResourceLimitError("boom", locator=Locator(subgraph=1, tensor=2), cve_class="M")
    back = pickle.loads(pickle.dumps(exc))
    assert (str(back), back.locator, back.cve_class) == ("boom", exc.locator, "M")
    assert back.as_dict()["locator"] == {"subgraph": 1, "tensor": 2}


def test_deadline_interrupts_a_long_elementwise_loop() -> None:
    """EXP calls the C library's expf one element at a time; on a big tensor that loop checks
    the invoke's wall-time budget between chunks, so even a one-operator model stops in time
    (the check before each operator alone would never fire) with the operator named."""
    from tflite_ref.model.writer import ModelBuilder

    mb = ModelBuilder()
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1024, 1024], "FLOAT32")
    y = sg.tensor("y", [1024, 1024], "FLOAT32")
    sg.operator("EXP", [x], [y])
    sg.inputs, sg.outputs = [x], [y]
    it = tflite_ref.Interpreter(model_content=mb.build(), budgets=Budgets(invoke_seconds=0.01))
    it.allocate_tensors()
    it.set_tensor(0, np.zeros((1024, 1024), np.float32))
    with pytest.raises(ResourceLimitError, match="invoke_seconds budget") as info:
        it.invoke()  # only a check inside EXP can fire: no operator follows it
    assert info.value.locator is not None and info.value.locator.opcode == "EXP"
