"""Issue 4's TensorFlow-made fixtures (``tests/models/tf/``, written by ``make_fixtures.py``
there, which needs TensorFlow and is run by hand) against the runtimes.

- ``emulate="tflite"``: every subgraph-0 tensor LiteRT (``BUILTIN_REF``,
  ``experimental_preserve_all_tensors``) exposes must equal ours, floats bit for bit as integers,
  as in ``test_models.py`` -- and the outputs again from a run without ``preserve_all_tensors``.  LiteRT runs in a child process (``native.py``).
- Stateful fixtures (a resource variable, LSTMs whose states are variable tensors) are invoked
  twice with the *same* input: the second output must differ from the first (the state carried
  over) and still match the runtime, in process.
- ``emulate="tflm"``: the outputs of TFLite Micro, for the fixtures it runs correctly.  For the
  others this file keeps the reason honest: TFLM refuses to allocate them, or runs them and
  computes something else (checked), and ``emulate="tflm"`` refuses them.

Fixture list and recipes: the docstring of ``tests/models/tf/make_fixtures.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from harness import assert_tensor_matches, litert_interpreter, random_inputs
from native import run_native

import tflite_ref
from tflite_ref.errors import UnsupportedOpError

FIXTURES = Path(__file__).parent / "models" / "tf"

# fixture -> the operators it exists for (a regenerated file must still hold them)
PURPOSE: dict[str, set[str]] = {
    "keras_lstm_while": {"WHILE", "FULLY_CONNECTED", "SPLIT", "LOGISTIC"},
    "dynamic_range_keras_lstm_while": {"WHILE", "FULLY_CONNECTED"},
    "keras_lstm_fused": {"UNIDIRECTIONAL_SEQUENCE_LSTM"},
    "dynamic_range_lstm": {"UNIDIRECTIONAL_SEQUENCE_LSTM"},
    "tf_cond_if": {"IF"},
    "tf_variable": {"CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"},
    "dynamic_range_conv": {"CONV_2D", "DEPTHWISE_CONV_2D"},
    "dynamic_range_fc": {"FULLY_CONNECTED"},
    "float16_weights": {"DEQUANTIZE", "CONV_2D", "FULLY_CONNECTED"},
    "sparse_fc": {"DENSIFY", "FULLY_CONNECTED"},
    "sparse_fc_block": {"FULLY_CONNECTED"},  # the weights stay sparse: no DENSIFY
    "sparse_fc_hybrid": {"DENSIFY", "FULLY_CONNECTED"},
}
NAMES = sorted(PURPOSE)
# Invoked twice: their state lives across invokes.
STATEFUL = {"tf_variable", "keras_lstm_fused", "dynamic_range_lstm"}
# TFLite Micro runs these and gets the model's answer.
TFLM_RUNS = {"tf_cond_if", "tf_variable", "keras_lstm_fused"}
# TFLite Micro runs these but computes something else; emulate="tflm" refuses them.
TFLM_WRONG = {
    # No dynamic tensors: the lowered TensorList SLICEs inside the loop body have shapes that
    # depend on the step, and TFLM keeps the shapes the file declares.
    "keras_lstm_while": "changes a shape that depends on values",
    # Float input sends the LSTM to TFLM's float kernel, which reads the int8 weights as floats.
    "dynamic_range_lstm": "reads the int8 weights as float32",
    # TFLM's FULLY_CONNECTED ignores the sparsity metadata and reads the compressed values as a
    # dense matrix (NaNs); tflite_ref's TFLM emulation refuses sparse weights.
    "sparse_fc_block": "sparse weights",
}
# Everything else TFLM refuses at allocation: hybrid layers, FLOAT16 DEQUANTIZE, DENSIFY.
TFLM_REFUSES = set(NAMES) - TFLM_RUNS - set(TFLM_WRONG)
# LiteRT runs these; tflite_ref does not yet (strict xfail: they fail loudly, not wrongly).
NOT_YET: dict[str, str] = {}  # every fixture runs: DENSIFY of a constant folds, as in LiteRT


def _path(name: str) -> Path:
    return FIXTURES / f"{name}.tflite"


def _inputs(name: str, seed: int = 0) -> list[np.ndarray]:
    return random_inputs(_path(name).read_bytes(), np.random.default_rng(seed))


def _ours(name: str, inputs: list[np.ndarray], emulate: str = "tflite",
          invokes: int = 1) -> tflite_ref.Interpreter:
    it = tflite_ref.Interpreter(model_path=str(_path(name)), emulate=emulate)
    it.allocate_tensors()
    for _ in range(invokes):
        for d, x in zip(it.get_input_details(), inputs):
            it.set_tensor(d["index"], x)
        it.invoke()
    return it


def _tolerance(name: str) -> dict[str, float]:
    """Every fixture, floats included, is compared bit for bit."""
    return {"rtol": 0.0, "atol": 0.0}


def _litert_tensors(name: str, inputs: list[np.ndarray]) -> dict[int, np.ndarray]:
    """Every tensor LiteRT shows after one invoke, by index (resource handles left out)."""
    if any(t.type_name == "RESOURCE" for t in tflite_ref.load(str(_path(name))).main.tensors):
        # native_worker.py saves every tensor, and the resource handle comes back as an object
        # array that native.py cannot load (allow_pickle=False): run this small file in
        # process instead.
        ref = litert_interpreter(_path(name).read_bytes())
        ref.allocate_tensors()
        for d, x in zip(ref.get_input_details(), inputs):
            ref.set_tensor(d["index"], x)
        ref.invoke()
        out = {}
        for d in ref.get_tensor_details():
            try:
                value = np.array(ref.get_tensor(d["index"]))
            except ValueError:
                continue
            if value.dtype != object:
                out[d["index"]] = value
        return out
    res = run_native("litert", _path(name), inputs)
    assert res.ok, f"LiteRT failed on {name}: {res.error}"
    return {int(k[1:]): v for k, v in res.tensors.items()}


def _not_yet(name: str) -> list[pytest.MarkDecorator]:
    if name not in NOT_YET:
        return []
    return [pytest.mark.xfail(raises=UnsupportedOpError, strict=True,
                              reason=f"tflite_ref gap: {NOT_YET[name]}")]


LITERT_CASES = [pytest.param(n, marks=_not_yet(n), id=n) for n in NAMES]


# =============================================================================================
# The fixtures are what they claim to be
# =============================================================================================
def test_every_fixture_is_listed() -> None:
    assert {p.stem for p in FIXTURES.glob("*.tflite")} == set(PURPOSE)


@pytest.mark.parametrize("name", NAMES)
def test_fixture_holds_its_operators(name: str) -> None:
    path = _path(name)
    assert path.stat().st_size < 100_000
    model = tflite_ref.load(str(path))
    ops = {op.name for sg in model.subgraphs for op in sg.operators}
    assert PURPOSE[name] <= ops, f"{name} lost {PURPOSE[name] - ops}"
    tensors = [t for sg in model.subgraphs for t in sg.tensors]
    if name.startswith("dynamic_range") or name == "sparse_fc_hybrid":
        # int8 weights, float activations: what makes a layer hybrid
        assert any(t.type_name == "INT8" and t.data is not None for t in tensors)
        assert all(model.main.tensors[i].type_name == "FLOAT32" for i in model.main.inputs)
    if name == "float16_weights":
        assert any(t.type_name == "FLOAT16" for t in tensors)
    if name.startswith("sparse"):
        sparse = [t for t in tensors if t.sparsity is not None]
        assert len(sparse) == 1
        assert (len(sparse[0].sparsity.block_map) > 0) == (name == "sparse_fc_block")
        consumer = next(op for op in model.main.operators if sparse[0].index in op.inputs)
        assert consumer.name == ("FULLY_CONNECTED" if name == "sparse_fc_block" else "DENSIFY")
    if name in ("keras_lstm_fused", "dynamic_range_lstm"):
        op = model.main.operators[0]
        assert all(model.main.tensors[op.inputs[i]].is_variable for i in (18, 19))


# =============================================================================================
# LiteRT (BUILTIN_REF)
# =============================================================================================
@pytest.mark.parametrize("name", LITERT_CASES)
def test_every_tensor_matches_litert(name: str) -> None:
    inputs = _inputs(name)
    ours = _ours(name, inputs)
    theirs = _litert_tensors(name, inputs)
    sg = ours.model.subgraphs[0]
    skip = {i for op in sg.operators for i in op.intermediates}
    compared = 0
    for ti, value in sorted(theirs.items()):
        if ti >= len(sg.tensors) or ti in skip:
            continue  # LiteRT's own temporaries come after the model's tensors
        t = sg.tensors[ti]
        if t.data is not None and not t.is_variable:
            continue  # constants are the file's bytes on both sides
        assert_tensor_matches(ours.get_tensor(ti), value, f"{name}: tensor {ti} {t.name!r}",
                              **_tolerance(name))
        compared += 1
    # every operator's output was compared (resource handles and output-less ops have none)
    assert compared >= sum(any(sg.tensors[o].type_name != "RESOURCE" for o in op.outputs)
                           for op in sg.operators)

    plain = run_native("litert-outputs", _path(name), inputs)
    assert plain.ok, plain.error
    for k, ti in enumerate(sg.outputs):
        assert_tensor_matches(ours.get_tensor(ti), plain.tensors[f"o{k}"], f"output {k}",
                              **_tolerance(name))


@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_state_carries_over_two_invokes_vs_litert(name: str) -> None:
    """The same input twice: the state (a variable, the LSTM's output and cell state) changes
    the second answer, in LiteRT and in tflite_ref alike."""
    inputs = _inputs(name, seed=2)
    ref = litert_interpreter(_path(name).read_bytes())
    ref.allocate_tensors()
    ours = _ours(name, inputs, invokes=0)
    sg = ours.model.subgraphs[0]
    watched = list(sg.outputs) + [t.index for t in sg.tensors if t.is_variable]
    firsts = []
    for k in range(2):
        for it in (ref, ours):
            for d, x in zip(it.get_input_details(), inputs):
                it.set_tensor(d["index"], x)
            it.invoke()
        for ti in watched:
            assert_tensor_matches(ours.get_tensor(ti), np.array(ref.get_tensor(ti)),
                                  f"{name} invoke {k}: tensor {ti} {sg.tensors[ti].name!r}",
                                  **_tolerance(name))
        firsts.append(ours.get_tensor(sg.outputs[0]).copy())
    assert not np.allclose(firsts[0], firsts[1]), "the state did not carry over"


# =============================================================================================
# TFLite Micro
# =============================================================================================
@pytest.mark.parametrize("name", sorted(TFLM_RUNS))
def test_outputs_match_tflm(name: str) -> None:
    inputs = _inputs(name, seed=1)
    ref = run_native("tflm", _path(name), inputs)
    assert ref.ok, f"TFLite Micro failed on {name}: {ref.error}"
    ours = _ours(name, inputs, "tflm")
    for k, ti in enumerate(ours.model.subgraphs[0].outputs):
        mine = ours.get_tensor(ti)
        assert_tensor_matches(mine, ref.tensors[f"o{k}"].reshape(mine.shape), f"output {k}",
                              **_tolerance(name))


@pytest.mark.parametrize("name", sorted(STATEFUL & TFLM_RUNS))
def test_state_carries_over_two_invokes_vs_tflm(name: str) -> None:
    from tflite_micro.python.tflite_micro import runtime

    inputs = _inputs(name, seed=3)
    ref = runtime.Interpreter.from_bytes(_path(name).read_bytes(), arena_size=8 << 20)
    ours = _ours(name, inputs, "tflm", invokes=0)
    outs = []
    for k in range(2):
        for j, x in enumerate(inputs):
            ref.set_input(x, j)
        for d, x in zip(ours.get_input_details(), inputs):
            ours.set_tensor(d["index"], x)
        ref.invoke()
        ours.invoke()
        mine = ours.get_tensor(ours.get_output_details()[0]["index"])
        assert_tensor_matches(mine, np.array(ref.get_output(0)).reshape(mine.shape),
                              f"{name} invoke {k} vs TFLM",
                              **_tolerance(name))
        outs.append(mine.copy())
    assert not np.allclose(outs[0], outs[1]), "the state did not carry over"


@pytest.mark.parametrize("name", sorted(TFLM_REFUSES))
def test_tflm_refuses_what_we_refuse(name: str) -> None:
    res = run_native("tflm", _path(name), _inputs(name))
    assert not res.ok and "TFLM failed to allocate tensors" in res.error, res.error
    with pytest.raises(UnsupportedOpError):
        _ours(name, _inputs(name), "tflm")


@pytest.mark.parametrize("name", sorted(TFLM_WRONG))
def test_tflm_runs_but_computes_something_else(name: str) -> None:
    """Keeps TFLM_WRONG honest: if TFLM starts getting these right, compare them instead."""
    inputs = _inputs(name)
    res = run_native("tflm", _path(name), inputs)
    assert res.ok, res.error
    right = run_native("litert-outputs", _path(name), inputs)
    assert right.ok, right.error
    theirs, want = res.tensors["o0"], right.tensors["o0"]
    assert not np.allclose(theirs.reshape(want.shape), want, atol=1e-2)
    with pytest.raises(UnsupportedOpError, match=TFLM_WRONG[name]):
        _ours(name, inputs, "tflm")
