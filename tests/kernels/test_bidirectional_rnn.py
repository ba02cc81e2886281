"""BIDIRECTIONAL_SEQUENCE_RNN (rnn.py) against LiteRT BUILTIN_REF; TFLite Micro has no such op.

Every case is a one-operator model built with the writer and invoked several times with
different inputs, so the two hidden-state variables carry over: after each invoke every tensor
LiteRT exposes (inputs, outputs, both states) must equal ours bit for bit (``check_litert`` of
test_recurrent.py; the first invoke also through the harness's ``assert_matches_litert``).

Covered: float32 and hybrid (int8 / uint8 weights, symmetric and asymmetric input
quantization), time-major and batch-major, merged and separate outputs, forward and backward
cells of different sizes, no aux input, an aux input with aux weights ("stacking" with cross
links; aux rows longer than the input's too, which LiteRT's time-major and hybrid loops read at
the input's stride), an aux input without aux weights (it replaces the backward cell's input in
a time-major op; a batch-major op ignores it), NEON_2_SSE lane tails, all-zero inputs (LiteRT's
hybrid ``IsZeroVector`` skip), and the hybrid time-major loop that runs the whole sequence
``max_time`` times.

Refused, each checked: ``emulate="tflm"`` (the tflite-micro wheel has no such kernel and fails
to allocate), a hybrid op with symmetric quantization, merged outputs, time-major input and
several batch rows (LiteRT segfaults), aux rows shorter than the input's where LiteRT reads past
the aux buffer, and the malformed models LiteRT's Prepare rejects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from harness import assert_matches_litert, litert_interpreter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_recurrent import check_litert, hybrid_weights, ours, random_invokes

from tflite_ref.errors import ModelValidationError, UnsupportedOpError
from tflite_ref.model.writer import ModelBuilder, SubgraphBuilder, TensorSpec


@dataclass(frozen=True)
class BiRnnCase:
    batch: int = 2
    time: int = 3
    n_input: int = 4
    fw_units: int = 5
    bw_units: int = 3
    time_major: bool = False
    merge: bool = False
    aux: str = "none"  # "none", "weights" (aux input and aux weights), "backward_input"
    n_aux: int = 0  # aux row length with aux weights (0: n_input)
    activation: str = "TANH"
    weights: str = "FLOAT32"  # or INT8 / UINT8: hybrid
    asymmetric: bool = False  # hybrid: asymmetric_quantize_inputs
    seed: int = 0

    @property
    def hybrid(self) -> bool:
        return self.weights != "FLOAT32"

    @property
    def aux_len(self) -> int:
        return (self.n_aux or self.n_input) if self.aux == "weights" else self.n_input

    @property
    def id(self) -> str:
        kind = (f"hybrid-{self.weights.lower()}-{'asym' if self.asymmetric else 'sym'}"
                if self.hybrid else "float32")
        aux = {"none": "", "weights": f"aux{self.aux_len}w", "backward_input": "auxbw"}[self.aux]
        return "-".join(p for p in (
            kind, f"{self.batch}x{self.time}x{self.n_input}",
            f"u{self.fw_units}+{self.bw_units}", "tm" if self.time_major else "",
            "merge" if self.merge else "", aux, self.activation.lower()) if p)


def _weights(sg: SubgraphBuilder, rng: np.random.Generator, c: BiRnnCase, name: str,
             shape: list[int]) -> TensorSpec:
    if c.hybrid:
        return hybrid_weights(sg, rng, name, shape, sd=0.5, weight_type=c.weights)
    return sg.tensor(name, shape, "FLOAT32", data=rng.normal(0, 0.5, shape).astype(np.float32))


def birnn_model(c: BiRnnCase, *, n_inputs: int = 12, merge_option: bool | None = None,
                drop_bw_aux_weights: bool = False) -> bytes:
    """The case's model; the keywords break it: fewer inputs, a ``merge_outputs`` option that
    disagrees with the outputs, aux weights for the forward cell only."""
    rng = np.random.default_rng(c.seed)
    mb = ModelBuilder(description=c.id)
    sg = mb.subgraph("main")
    lead = [c.time, c.batch] if c.time_major else [c.batch, c.time]
    x = sg.tensor("input", [*lead, c.n_input], "FLOAT32")
    cells = []
    for d, units in (("fw", c.fw_units), ("bw", c.bw_units)):
        w = _weights(sg, rng, c, f"{d}_w", [units, c.n_input])
        r = _weights(sg, rng, c, f"{d}_r", [units, units])
        b = sg.tensor(f"{d}_b", [units], "FLOAT32",
                      data=rng.normal(0, 0.3, units).astype(np.float32))
        h = sg.tensor(f"{d}_hidden_state", [c.batch, units], "FLOAT32", is_variable=True)
        cells += [w, r, b, h]
    aux: list[TensorSpec | None] = [None, None, None]
    graph_inputs = [x]
    if c.aux != "none":
        aux[0] = sg.tensor("aux_input", [*lead, c.aux_len], "FLOAT32")
        graph_inputs.append(aux[0])
    if c.aux == "weights":
        aux[1] = _weights(sg, rng, c, "fw_aux_w", [c.fw_units, c.aux_len])
        aux[2] = _weights(sg, rng, c, "bw_aux_w", [c.bw_units, c.aux_len])
        if drop_bw_aux_weights:
            aux[2] = None
    if c.merge:
        outs = [sg.tensor("output", [*lead, c.fw_units + c.bw_units], "FLOAT32")]
    else:
        outs = [sg.tensor("fw_output", [*lead, c.fw_units], "FLOAT32"),
                sg.tensor("bw_output", [*lead, c.bw_units], "FLOAT32")]
    inputs = [x, *cells, *aux][:n_inputs]
    sg.operator("BIDIRECTIONAL_SEQUENCE_RNN", inputs, outs,
                {"time_major": c.time_major, "fused_activation_function": c.activation,
                 "merge_outputs": c.merge if merge_option is None else merge_option,
                 "asymmetric_quantize_inputs": c.asymmetric})
    sg.inputs, sg.outputs = graph_inputs, outs
    return mb.build()


def check(c: BiRnnCase, n: int = 2, zero_invoke: bool = False) -> None:
    model = birnn_model(c)
    invokes = random_invokes(model, np.random.default_rng(c.seed), n=n)
    if zero_invoke:  # LiteRT skips the hybrid products of all-zero rows (IsZeroVector)
        invokes.insert(1, [np.zeros_like(a) for a in invokes[0]])
    assert assert_matches_litert(model, invokes[0]) >= 3 + len(invokes[0])
    check_litert(model, invokes)


CASES = [
    BiRnnCase(),
    BiRnnCase(time_major=True),
    BiRnnCase(merge=True),
    BiRnnCase(time_major=True, merge=True, activation="RELU"),
    BiRnnCase(batch=1, time=5, n_input=2, fw_units=6, bw_units=6, activation="NONE"),
    BiRnnCase(batch=3, time=2, activation="RELU6", merge=True),
    BiRnnCase(batch=3, time=4, activation="RELU_N1_TO_1", time_major=True),
    BiRnnCase(batch=2, time=2, activation="SIGN_BIT"),
    # NEON_2_SSE lanes with tails: 21 inputs (5 blocks + 1), 13 and 9 units
    BiRnnCase(batch=3, time=4, n_input=21, fw_units=13, bw_units=9, time_major=True),
    BiRnnCase(batch=2, time=3, n_input=21, fw_units=9, bw_units=13, merge=True),
    # aux input with aux weights; aux rows as long as, then longer than the input's
    BiRnnCase(aux="weights"),
    BiRnnCase(aux="weights", time_major=True, merge=True),
    BiRnnCase(aux="weights", n_aux=7),
    BiRnnCase(aux="weights", n_aux=6, time_major=True),
    BiRnnCase(batch=3, time=2, aux="weights", n_aux=9, merge=True, activation="RELU"),
    # aux input without aux weights: the backward cell's input when time-major
    BiRnnCase(aux="backward_input"),
    BiRnnCase(aux="backward_input", time_major=True),
    BiRnnCase(aux="backward_input", time_major=True, merge=True, batch=3),
    # hybrid
    BiRnnCase(weights="INT8"),
    BiRnnCase(weights="INT8", asymmetric=True, merge=True),
    BiRnnCase(weights="INT8", time_major=True),
    BiRnnCase(weights="INT8", time_major=True, asymmetric=True, merge=True, batch=3, time=4),
    BiRnnCase(weights="UINT8", activation="RELU", batch=3),
    BiRnnCase(weights="UINT8", asymmetric=True, time_major=True, activation="NONE"),
    BiRnnCase(weights="INT8", n_input=20, fw_units=17, bw_units=6, asymmetric=True),
    BiRnnCase(weights="INT8", aux="weights"),
    BiRnnCase(weights="INT8", aux="weights", n_aux=7, asymmetric=True),
    BiRnnCase(weights="INT8", aux="weights", n_aux=6, time_major=True, merge=True,
              asymmetric=True),
    BiRnnCase(weights="INT8", aux="weights", time_major=True, merge=True, batch=1),
    BiRnnCase(weights="INT8", aux="backward_input", time_major=True, asymmetric=True),
    BiRnnCase(weights="UINT8", aux="backward_input"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bidirectional_rnn_vs_litert(case: BiRnnCase) -> None:
    check(case, n=3, zero_invoke=case.hybrid)


@given(data=st.data())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_bidirectional_rnn_drawn(data: st.DataObject) -> None:
    n_input = data.draw(st.integers(1, 6))
    aux = data.draw(st.sampled_from(["none", "weights", "backward_input"]))
    case = BiRnnCase(
        batch=data.draw(st.integers(1, 3)), time=data.draw(st.integers(1, 4)), n_input=n_input,
        fw_units=data.draw(st.integers(1, 6)), bw_units=data.draw(st.integers(1, 6)),
        time_major=data.draw(st.booleans()), merge=data.draw(st.booleans()), aux=aux,
        n_aux=data.draw(st.integers(n_input, n_input + 3)),
        activation=data.draw(st.sampled_from(["NONE", "RELU", "TANH", "RELU_N1_TO_1",
                                              "RELU6"])),
        weights=data.draw(st.sampled_from(["FLOAT32", "INT8", "UINT8"])),
        asymmetric=data.draw(st.booleans()), seed=data.draw(st.integers(0, 2**16)))
    if _litert_crashes(case):
        case = replace(case, asymmetric=True)  # see test_symmetric_hybrid_merged_refused
    check(case, zero_invoke=data.draw(st.booleans()))


def test_reset_variables_restarts_both_states() -> None:
    model = birnn_model(BiRnnCase(time_major=True, merge=True))
    invokes = random_invokes(model, np.random.default_rng(1), n=3)
    check_litert(model, invokes, reset_before=2)


# =============================================================================================
# What is refused
# =============================================================================================
@pytest.mark.parametrize("case", [BiRnnCase(), BiRnnCase(weights="INT8", time_major=True)],
                         ids=lambda c: c.id)
def test_tflm_has_no_bidirectional_rnn(case: BiRnnCase, tmp_path: Path) -> None:
    """The tflite-micro wheel registers no BIDIRECTIONAL_SEQUENCE_RNN: it fails to allocate the
    model; ``emulate="tflm"`` refuses it."""
    from native import run_native

    model = birnn_model(case)
    path = tmp_path / "birnn.tflite"
    path.write_bytes(model)
    res = run_native("tflm", path, random_invokes(model, np.random.default_rng(0), n=1)[0])
    assert not res.ok and "TFLM failed to allocate tensors" in res.error, res.error
    with pytest.raises(UnsupportedOpError,
                       match="BIDIRECTIONAL_SEQUENCE_RNN.*no emulation of 'tflm'"):
        ours(model, "tflm")


def _litert_crashes(c: BiRnnCase) -> bool:
    return c.hybrid and not c.asymmetric and c.merge and c.time_major and c.batch > 1


def test_symmetric_hybrid_merged_refused(tmp_path: Path) -> None:
    """Hybrid, symmetric input quantization, merged outputs, time-major, batch > 1: the merged
    rows are not contiguous, so ``RnnBatchStep`` multiplies row by row and passes
    ``zero_points + k`` -- null + k, a bogus pointer for k >= 1 -- and the SSE product then
    writes row sums through the null row-sum pointer.  LiteRT dies (run in a child process);
    we refuse the model.  One batch row, or asymmetric quantization, runs (CASES)."""
    from native import run_native

    case = BiRnnCase(weights="INT8", time_major=True, merge=True)
    assert _litert_crashes(case)
    model = birnn_model(case)
    path = tmp_path / "birnn.tflite"
    path.write_bytes(model)
    res = run_native("litert", path, random_invokes(model, np.random.default_rng(0), n=1)[0])
    assert not res.ok and "signal" in res.error, res.error
    with pytest.raises(UnsupportedOpError, match="LiteRT crashes on it"):
        ours(model, "tflite")


def _litert_refuses(model: bytes) -> None:
    ref = litert_interpreter(model)
    with pytest.raises(RuntimeError):
        ref.allocate_tensors()


def test_input_count_checked() -> None:
    model = birnn_model(BiRnnCase(), n_inputs=9)
    _litert_refuses(model)
    with pytest.raises(ModelValidationError, match="takes 12 inputs"):
        ours(model, "tflite")


def test_output_count_checked() -> None:
    """merge_outputs takes one output: a second one fails LiteRT's Prepare."""
    model = birnn_model(BiRnnCase(), merge_option=True)
    _litert_refuses(model)
    with pytest.raises(ModelValidationError, match="takes 1 outputs with merge_outputs=True"):
        ours(model, "tflite")


def test_short_aux_rows_refused() -> None:
    """With aux rows shorter than the input's, LiteRT's time-major (and hybrid batch-major)
    loops step through the aux input at the input's stride and read past its end: refused."""
    for case in (BiRnnCase(n_input=5, aux="weights", n_aux=3, time_major=True),
                 BiRnnCase(n_input=5, aux="weights", n_aux=3, weights="INT8")):
        with pytest.raises(UnsupportedOpError, match="reads past its buffer"):
            ours(birnn_model(case), "tflite")
    # The float batch-major loop strides by the aux row: it runs, and matches LiteRT.
    check(BiRnnCase(n_input=5, aux="weights", n_aux=3))


def test_one_aux_weight_refused() -> None:
    """Aux weights for one cell only: LiteRT's Prepare fails (TF_LITE_ENSURE)."""
    model = birnn_model(BiRnnCase(aux="weights"), drop_bw_aux_weights=True)
    _litert_refuses(model)
    with pytest.raises(ModelValidationError, match="both present or both absent"):
        ours(model, "tflite")
