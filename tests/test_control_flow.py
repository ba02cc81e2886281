"""Control flow: WHILE, IF and CALL run their subgraphs with our kernels.

Truth: LiteRT ``BUILTIN_REF`` (every tensor of subgraph 0 after invoke) and TFLite Micro
(outputs) where it has the op (WHILE, IF; not CALL, which neither runtime implements -- its
reference is the same graph inlined).  Fixtures: ``tests/models/part2`` (see its
``make_models.py``; TensorFlow is not installed, so the Keras LSTM lowered to a WHILE loop is that
graph written with our writer).  Budgets: the WHILE iteration limit and the nesting limit are
tested errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import (
    assert_matches_litert,
    assert_matches_tflm,
    assert_tensor_matches,
    part2_models,
    run_litert_outputs,
    run_ours,
)

import tflite_ref
from tflite_ref import budgets
from tflite_ref.errors import (
    ModelValidationError,
    ResourceLimitError,
    UnsupportedOpError,
    UsageError,
)
from tflite_ref.model.writer import ModelBuilder

M = part2_models()


def test_fixtures_are_current() -> None:
    """The committed fixtures are what make_models.py builds today (run it after a change)."""
    stale = [name for name, make in M.FIXTURES.items() if make() != M.fixture(name)]
    assert not stale, f"rebuild with `python tests/models/part2/make_models.py`: {stale}"


# =============================================================================================
# WHILE
# =============================================================================================
@pytest.mark.parametrize("n", [0, 1, 4, 40, -3])
def test_while_counting_loop_int8(n: int) -> None:
    """``x += step`` (int8, saturating after a few dozen steps) ``n`` times."""
    data = M.fixture("while_count_int8")
    x = np.random.default_rng(n + 10).integers(-128, 128, (1, 8)).astype(np.int8)
    inputs = [np.array(n, np.int32), x]
    assert assert_matches_litert(data, inputs) >= 4
    assert_matches_tflm(data, inputs)
    it = run_ours(data, inputs)
    assert int(it.get_tensor(it.get_output_details()[0]["index"])) == max(n, 0)


@pytest.mark.parametrize("seed", range(3))
def test_keras_lstm_while_loop(seed: int) -> None:
    data = M.fixture("lstm_while_static")
    x = np.random.default_rng(seed).normal(0, 1, (1, M.LSTM_STEPS, M.LSTM_FEATURES))
    inputs = [x.astype(np.float32)]
    # 6 of the 8 computed tensors: LiteRT frees the WHILE outputs the body passes through
    # unchanged and nothing reads (while.cc "Detect when a WHILE input is read only").
    assert assert_matches_litert(data, inputs) >= 6
    assert_matches_tflm(data, inputs)
    # and it is an LSTM: the last state equals a float64 NumPy LSTM to float32 precision
    it = run_ours(data, inputs)
    h, c = _numpy_lstm(inputs[0][0])
    logits = h @ M._lstm_weights()["head"].T.astype(np.float64) + M._lstm_weights()["head_bias"]
    np.testing.assert_allclose(it.get_tensor(it.get_output_details()[0]["index"])[0], logits,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(it.get_tensor(it.get_output_details()[1]["index"])[0], c,
                               rtol=1e-4, atol=1e-5)


def _numpy_lstm(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = {k: v.astype(np.float64) for k, v in M._lstm_weights().items()}
    u = M.LSTM_UNITS
    h, c = np.zeros(u), np.zeros(u)
    sig = lambda v: 1 / (1 + np.exp(-v))
    for x in xs.astype(np.float64):
        z = w["kernel"] @ x + w["recurrent"] @ h + w["bias"]
        i, f, g, o = z[:u], z[u:2 * u], z[2 * u:3 * u], z[3 * u:]
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
    return h, c


def test_keras_lstm_while_returning_sequences_is_dynamic() -> None:
    """The accumulator grows one row per iteration: LiteRT's Eval_dynamic; each iteration is
    planned for the shapes it gets, and the TANH after the loop for the final shape."""
    data = M.fixture("lstm_while_sequence")
    x = np.random.default_rng(7).normal(0, 1, (1, M.LSTM_STEPS, M.LSTM_FEATURES))
    inputs = [x.astype(np.float32)]
    assert assert_matches_litert(data, inputs) >= 8
    it = run_ours(data, inputs)
    seq = it.get_tensor(it.get_output_details()[2]["index"])
    assert seq.shape == (1 + M.LSTM_STEPS, M.LSTM_UNITS)
    assert it.get_output_details()[2]["shape"].tolist() == [1 + M.LSTM_STEPS, M.LSTM_UNITS]
    for ours, theirs in zip([it.get_tensor(d["index"]) for d in it.get_output_details()],
                            run_litert_outputs(data, inputs)):
        assert_tensor_matches(ours, theirs, "output without preserve_all_tensors")
    with pytest.raises(UnsupportedOpError, match="TFLite Micro has no dynamic tensors"):
        tflite_ref.Interpreter(model_content=data, emulate="tflm").allocate_tensors()


def test_observer_sees_operators_of_called_subgraphs() -> None:
    data = M.fixture("lstm_while_static")
    it = tflite_ref.Interpreter(model_content=data)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"],
                  np.ones((1, M.LSTM_STEPS, M.LSTM_FEATURES), np.float32))
    seen: list[tuple[int, int, str]] = []
    it.invoke(observer=lambda sg, i, op, ins, outs: seen.append((sg, i, op.opcode)))
    steps = M.LSTM_STEPS
    model = it.model
    assert [s for s in seen if s[0] == 0] == [(0, 0, "TRANSPOSE"), (0, 1, "WHILE"),
                                              (0, 2, "FULLY_CONNECTED")]
    assert sum(1 for s in seen if s[0] == 1) == 3 * (steps + 1)  # the condition, T + 1 times
    assert sum(1 for s in seen if s[0] == 2) == len(model.subgraphs[2].operators) * steps
    # nested operators are reported before the WHILE that ran them
    assert seen.index((0, 1, "WHILE")) == len(seen) - 2
    # the body's tensors are readable after invoke: its last h is the loop's output
    body = model.subgraphs[2]
    h_next = next(t.index for t in body.tensors if t.name == "h_next")
    h_last = next(t.index for t in model.subgraphs[0].tensors if t.name == "h_last")
    np.testing.assert_array_equal(it.get_tensor(h_next, subgraph_index=2), it.get_tensor(h_last))


# =============================================================================================
# IF and CALL
# =============================================================================================
@pytest.mark.parametrize("cond", [True, False])
def test_if_picks_a_branch(cond: bool) -> None:
    data = M.fixture("if_float")
    x = np.random.default_rng(3).normal(0, 1, (2, 3)).astype(np.float32)
    inputs = [np.array([cond]), x]
    assert assert_matches_litert(data, inputs) >= 3
    assert_matches_tflm(data, inputs)
    it = run_ours(data, inputs)
    expected = np.abs(np.maximum(x + x, 0) if cond else np.tanh(x * x))
    np.testing.assert_allclose(it.get_tensor(it.get_output_details()[0]["index"]), expected,
                               rtol=1e-6)


@pytest.mark.parametrize("cond,shape", [(True, (6,)), (False, (3, 2))])
def test_if_with_branches_of_other_shapes(cond: bool, shape: tuple[int, ...]) -> None:
    data = M.fixture("if_dynamic")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    inputs = [np.array(cond), x]
    assert_matches_litert(data, inputs)
    it = run_ours(data, inputs)
    assert it.get_tensor(it.get_output_details()[0]["index"]).shape == shape
    with pytest.raises(UnsupportedOpError, match="no dynamic tensors"):
        tflite_ref.Interpreter(model_content=data, emulate="tflm").allocate_tensors()


@pytest.mark.parametrize("cond", [True, False])
def test_one_branch_subgraph_called_with_two_shapes(cond: bool) -> None:
    """Two IFs share their branches but pass [2, 3] and [4]: each shape gets its own plan."""
    mb = ModelBuilder()
    main, then, other = mb.subgraph("main"), mb.subgraph("then"), mb.subgraph("else")
    c = main.tensor("c", [], "BOOL")
    x, y = main.tensor("x", [2, 3], "FLOAT32"), main.tensor("y", [4], "FLOAT32")
    ox, oy = main.tensor("ox", [2, 3], "FLOAT32"), main.tensor("oy", [4], "FLOAT32")
    for a, b in ((x, ox), (y, oy)):
        main.operator("IF", [c, a], [b], {"then_subgraph_index": then,
                                          "else_subgraph_index": other})
    main.inputs, main.outputs = [c, x, y], [ox, oy]
    for sg, op in ((then, "NEG"), (other, "ABS")):
        a, r = sg.tensor("a", [2, 3], "FLOAT32"), sg.tensor("r", [2, 3], "FLOAT32")
        sg.operator(op, [a], [r])
        sg.inputs, sg.outputs = [a], [r]
    inputs = [np.array(cond), np.arange(6, dtype=np.float32).reshape(2, 3) - 3,
              np.array([1, -2, 3, -4], np.float32)]
    assert assert_matches_litert(mb.build(), inputs) == 5


def test_tflm_keeps_the_shapes_a_subgraph_declares() -> None:
    """WHILE passes [1] into a condition and body declared with scalars: LiteRT plans them for
    [1], TFLM copies the 4 bytes into its scalars; both give the same values."""
    mb = ModelBuilder()
    main, cond, body = mb.subgraph("main"), mb.subgraph("cond"), mb.subgraph("body")
    i0, i1 = main.tensor("i0", [1], "INT32"), main.tensor("i1", [1], "INT32")
    main.operator("WHILE", [i0], [i1], {"cond_subgraph_index": cond, "body_subgraph_index": body})
    main.inputs, main.outputs = [i0], [i1]
    ci, flag = cond.tensor("i", [], "INT32"), cond.tensor("flag", [], "BOOL")
    cond.operator("LESS", [ci, cond.tensor("lim", [], "INT32", np.array(5, np.int32))], [flag])
    cond.inputs, cond.outputs = [ci], [flag]
    bi, bo = body.tensor("i", [], "INT32"), body.tensor("o", [], "INT32")
    body.operator("ADD", [bi, body.tensor("two", [], "INT32", np.array(2, np.int32))], [bo])
    body.inputs, body.outputs = [bi], [bo]
    data, inputs = mb.build(), [np.array([0], np.int32)]
    assert_matches_litert(data, inputs)
    assert_matches_tflm(data, inputs)
    it = run_ours(data, inputs, "tflm")
    assert it.get_tensor(1).tolist() == [6]
    assert it.get_tensor(0, subgraph_index=2).shape == ()  # the body kept its scalar


@pytest.mark.parametrize("emulate", ["tflite", "tflm"])
def test_call_runs_a_subgraph_as_a_function(emulate: str) -> None:
    """LiteRT has no CALL kernel: the same graph inlined is the reference."""
    rng = np.random.default_rng(5)
    inputs = [rng.normal(0, 1, (1, 4)).astype(np.float32) for _ in range(2)]
    reference = run_litert_outputs(M.fixture("call_inlined"), inputs)
    it = run_ours(M.fixture("call_float"), inputs, emulate)
    for d, ref in zip(it.get_output_details(), reference):
        assert_tensor_matches(it.get_tensor(d["index"]), ref, "CALL output vs inlined graph")


# =============================================================================================
# Budgets
# =============================================================================================
def test_while_iteration_limit_is_a_clear_error() -> None:
    data = M.fixture("while_forever")
    it = tflite_ref.Interpreter(model_content=data, max_loop_iterations=100)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.array(0, np.int32))
    with pytest.raises(ResourceLimitError) as info:
        it.invoke()
    message = str(info.value)
    assert "\n" not in message
    assert "subgraph 0, operator 0 (WHILE)" in message and "100 iterations" in message
    assert "max_loop_iterations" in message
    assert tflite_ref.Interpreter(model_content=data).max_loop_iterations == 1_000_000


def test_budgets_bound_loops_nesting_and_time() -> None:
    """Without explicit limits the interpreter follows tflite_ref.budgets, read at each call."""
    data = M.fixture("while_forever")
    it = tflite_ref.Interpreter(model_content=data)
    it.allocate_tensors()
    it.set_tensor(0, np.array(0, np.int32))
    with budgets.use(control_flow_iterations=25):
        assert it.max_loop_iterations == 25
        with pytest.raises(ResourceLimitError, match="ran 25 iterations") as info:
            it.invoke()
    assert info.value.cve_class == "M"
    with budgets.use(invoke_seconds=0.05), pytest.raises(
            ResourceLimitError, match=r"subgraph \d, operator \d \(\w+\): invoke has run "
                                      r"[0-9.]+ s > the invoke_seconds budget"):
        it.invoke()
    nested = tflite_ref.Interpreter(model=tflite_ref.load(M.fixture("nested_if")))
    with budgets.use(control_flow_depth=3), pytest.raises(
            ResourceLimitError, match=r"subgraph 2, operator 0 \(IF\): control flow nests "
                                      r"deeper than 3 subgraphs \(0 -> 1 -> 2 \.\.\.\); raise"):
        nested.allocate_tensors()


@pytest.mark.parametrize("limit,ok", [(10, True), (9, False)])
def test_iteration_limit_counts_body_runs(limit: int, ok: bool) -> None:
    it = tflite_ref.Interpreter(model_content=M.fixture("while_count_int8"),
                                max_loop_iterations=limit)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.array(10, np.int32))
    it.set_tensor(it.get_input_details()[1]["index"], np.zeros((1, 8), np.int8))
    if ok:
        it.invoke()
    else:
        with pytest.raises(ResourceLimitError, match="ran 9 iterations"):
            it.invoke()


def test_nesting_limit() -> None:
    data = M.fixture("nested_if")  # main -> IF -> IF -> IF: four subgraphs deep
    inputs = [np.array(True), np.array([1.0, -2.0, 3.0], np.float32)]
    assert_matches_litert(data, inputs)
    assert_matches_tflm(data, inputs)
    tflite_ref.Interpreter(model_content=data, max_call_depth=4).allocate_tensors()
    with pytest.raises(ResourceLimitError, match=r"nests deeper than 3 subgraphs \(0 -> 1 -> 2"):
        tflite_ref.Interpreter(model_content=data, max_call_depth=3).allocate_tensors()


@pytest.mark.parametrize("kwargs", [{"max_loop_iterations": -1}, {"max_call_depth": 0},
                                    {"max_loop_iterations": 2.5}])
def test_limits_must_be_sane(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError, match="must be an integer"):
        tflite_ref.Interpreter(model_content=M.fixture("while_forever"), **kwargs)


# =============================================================================================
# Malformed control flow (hostile-models class 13)
# =============================================================================================
def _while_model(*, cond_out: str = "BOOL", same: bool = False, body_outputs: int = 1,
                 out_type: str = "INT32", recursive: bool = False) -> bytes:
    mb = ModelBuilder()
    main, cond, body = mb.subgraph("main"), mb.subgraph("cond"), mb.subgraph("body")
    i0, i1 = main.tensor("i0", [], "INT32"), main.tensor("i1", [], out_type)
    main.operator("WHILE", [i0], [i1], {"cond_subgraph_index": cond,
                                        "body_subgraph_index": cond if same else body})
    main.inputs, main.outputs = [i0], [i1]
    ci = cond.tensor("i", [], "INT32")
    lim = cond.tensor("lim", [], "INT32", np.array(3, np.int32))
    flag = cond.tensor("flag", [], cond_out)
    cond.operator("LESS" if cond_out == "BOOL" else "ADD", [ci, lim], [flag])
    cond.inputs, cond.outputs = [ci], [flag]
    bi = body.tensor("i", [], "INT32")
    one = body.tensor("one", [], "INT32", np.array(1, np.int32))
    bo = body.tensor("o", [], "INT32")
    if recursive:
        body.operator("WHILE", [bi], [bo], {"cond_subgraph_index": cond,
                                            "body_subgraph_index": body})
    else:
        body.operator("ADD", [bi, one], [bo])
    body.inputs, body.outputs = [bi], [bo] * body_outputs
    return mb.build()


@pytest.mark.parametrize("kwargs,pattern", [
    ({"cond_out": "INT32"}, r"condition \(subgraph 1\) returns INT32, not BOOL"),
    ({"same": True}, r"the condition and the body are the same subgraph \(1\)"),
    ({"body_outputs": 2}, r"the body \(subgraph 2\) takes 1 input and returns 2 outputs"),
    ({"out_type": "FLOAT32"}, r"input 0 is INT32 but output 0 is FLOAT32"),
])
def test_malformed_while_is_refused_at_allocation(kwargs: dict[str, object],
                                                  pattern: str) -> None:
    it = tflite_ref.Interpreter(model_content=_while_model(**kwargs))  # type: ignore[arg-type]
    with pytest.raises(ModelValidationError, match=pattern):
        it.allocate_tensors()


def test_recursive_subgraphs_are_refused() -> None:
    with pytest.raises(ModelValidationError, match="recursively"):
        tflite_ref.Interpreter(model_content=_while_model(recursive=True)).allocate_tensors()
