"""UNIDIRECTIONAL_SEQUENCE_LSTM, LSTM, SVDF: the gates' and filters' rescaling, with the numbers.

An output element of a recurrent operator depends on the state carried through every earlier
time step, so these explanations show the per-gate (LSTM) or per-stage (SVDF) arithmetic and its
multipliers rather than one element's derivation.  Follows ``tflite/kernels/lstm_eval.cc``
(``EvalInteger8x8_16``, ``EvalFloat``), TFLM ``micro/kernels/lstm_eval.cc``, and
``tensorflow/lite/kernels/internal/reference/svdf.h`` / TFLM ``svdf_common.cc``; the numbers are
the prepared data of :mod:`tflite_ref.kernels.lstm` and :mod:`tflite_ref.kernels.svdf`.
"""

from __future__ import annotations

from typing import Any

from tflite_ref.explain.base import (
    Line,
    OpView,
    Parts,
    Section,
    g,
    handles,
    make_table,
    multiplier_real,
    tensor_lines,
)
from tflite_ref.kernels.lstm import LstmFloatData, LstmIntegerData
from tflite_ref.kernels.svdf import SvdfData

_WHY = ("An output of a recurrent operator depends on the state carried through all earlier "
        "time steps; the step-by-step element is not written out. The gate arithmetic above is "
        "what each step applies.")


@handles(LstmFloatData, LstmIntegerData)
def explain_lstm(view: OpView) -> Parts:
    d = view.data
    s = d.shape
    sections = [Section("Shape", (
        Line("time steps", f"{s.n_time} ({'time' if s.time_major else 'batch'} major)"),
        Line("batch", str(s.n_batch)), Line("input", str(s.n_input)),
        Line("cells", str(s.n_cell)), Line("output", str(s.n_output)),
        Line("variant", ", ".join(k for k, on in (("CIFG", s.use_cifg),
                                                 ("peephole", s.use_peephole),
                                                 ("projection", s.use_projection),
                                                 ("layer norm", s.use_layer_norm)) if on)
             or "plain")))]
    numbers: dict[str, Any] = {}
    gates = [("input", d.input_gate), ("forget", d.forget_gate), ("cell", d.cell_gate),
             ("output", d.output_gate)]
    if hasattr(d, "arithmetic"):
        rows = []
        for name, gate in gates:
            if gate is None:
                rows.append([name, "CIFG: 1 − forget", "", "", ""])
                continue
            rows.append([name, gate.activation,
                         f"{gate.input_rescale.multiplier}, {gate.input_rescale.shift}",
                         f"{gate.recurrent_rescale.multiplier}, {gate.recurrent_rescale.shift}",
                         g(gate.input_rescale.real) + " / " + g(gate.recurrent_rescale.real)])
            numbers[f"{name}_gate"] = {
                "input": [gate.input_rescale.multiplier, gate.input_rescale.shift],
                "recurrent": [gate.recurrent_rescale.multiplier, gate.recurrent_rescale.shift]}
        a = d.arithmetic
        sections.append(Section("Gates (int8 weights, Q3.12 int16 pre-activations)", table=make_table(
            ("gate", "nonlinearity", "x·W: m, shift", "h·R: m, shift", "scales"), rows),
            notes=((f"Gate sums: {a.gate_sum}; nonlinearity: {a.nonlinearity}; cell products: "
                   f"{a.cell_products} (the emulated runtime's choices)."),)))
        sections.append(Section("Cell and hidden state", (
            Line("cell state scale", f"2^{d.cell_scale_log2}"),
            Line("cell clip", str(d.cell_clip) if d.cell_clip_active else "none"),
            Line("hidden rescale", f"m = {d.hidden.multiplier}, shift = {d.hidden.shift} "
                 f"(≈ {g(multiplier_real(d.hidden.multiplier, d.hidden.shift))})",
                 "o ⊙ tanh(c) → int8 hidden state"))))
        formula = ("gates = σ/tanh(MBQM(x·W + b) + MBQM(h·R)); c = f⊙c + i⊙g; "
                   "h = MBQM(o⊙tanh(c)) (int8 × int8 → int16, int16 cell)")
    else:
        sections.append(Section("Gates (float)", tuple(
            Line(name, "CIFG: 1 − forget" if gate is None else gate.activation)
            for name, gate in gates)))
        sections.append(Section("Clipping", (
            Line("cell clip", g(d.cell_clip) if d.cell_clip else "none"),
            Line("projection clip", g(d.proj_clip) if d.proj_clip else "none"),
            Line("hidden activation", d.hidden_activation,
                 "LiteRT: the fused activation; TFLite Micro: tanh"))))
        formula = "i,f,o = σ(x·W + h·R + b); g = tanh(·); c = f⊙c + i⊙g; h = o⊙act(c)"
    sections.insert(0, tensor_lines(view, [("input", 0), ("output", -1)]))
    return Parts(formula, ("tflite/kernels/lstm_eval.cc", ("tflite/kernels/unidirectional_"
                           "sequence_lstm.cc"), "tensorflow/lite/micro/kernels/lstm_eval.cc"),
                 sections, None, view.not_run or _WHY, numbers)


@handles(SvdfData)
def explain_svdf(view: OpView) -> Parts:
    d = view.data
    sections = [tensor_lines(view), Section("Shape", (
        Line("filters", f"{d.num_filters} = {d.num_units} units × rank {d.rank}"),
        Line("memory", f"{d.memory} time steps kept in the state"),
        Line("batch", str(d.batch))))]
    numbers: dict[str, Any] = {}
    if d.state_dtype is not None:
        sections.append(Section("Integer stages", (
            Line("1. features", f"m = {d.multiplier_1}, shift = {d.shift_1} (≈ "
                 f"{g(multiplier_real(d.multiplier_1, d.shift_1))})",
                 "MBQM(Σ x·w_feature) → newest state column (s_in·s_wf/s_state)"),
            Line("2. time filter", f"m = {d.multiplier_2}, shift = {d.shift_2} (≈ "
                 f"{g(multiplier_real(d.multiplier_2, d.shift_2))})",
                 "MBQM(Σ_t state·w_time + bias) → output (s_state·s_wt/s_out)"),
            Line("state", f"{d.state_dtype.__name__}, zero point {d.state_zero_point}",
                 "TFLM uses the state zero point; LiteRT assumes 0"),
            Line("zero points", f"input {d.input_zero_point}, output {d.output_zero_point}"))))
        numbers = {"multiplier_1": d.multiplier_1, "shift_1": d.shift_1,
                   "multiplier_2": d.multiplier_2, "shift_2": d.shift_2}
        formula = ("state[:, newest] = MBQM(x·Wf, m1, s1); out = clamp(MBQM(Σ_rank Σ_t "
                   "state·Wt + bias, m2, s2) + z_out)")
    else:
        sections.append(Section("Float", (Line("activation", d.activation),)))
        formula = "state[:, newest] = x·Wf; out = act(Σ_rank Σ_t state·Wt + bias)"
    return Parts(formula, ("tensorflow/lite/kernels/internal/reference/svdf.h",
                           "tflite/kernels/svdf.cc", "tensorflow/lite/micro/kernels/svdf_common.cc"),
                 sections, None, view.not_run or _WHY, numbers)


EXPLAINERS = {"UNIDIRECTIONAL_SEQUENCE_LSTM": explain_lstm, "LSTM": explain_lstm,
              "SVDF": explain_svdf}
