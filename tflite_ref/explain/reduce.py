"""MEAN, SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_PROD: one output element from the values reduced
into it.

Follows ``tensorflow/lite/kernels/internal/reference/reduce.h`` (``QuantizedMeanOrSum``: int32
sum, ``− z_in·N``, one multiplier with 1/N folded in; ``Mean``/``ReduceGeneric`` for floats) and
``tflite/kernels/reduce.cc``; layout and multipliers from :mod:`tflite_ref.kernels.reduce`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tflite_ref.explain.base import (
    Line,
    OpView,
    Parts,
    Section,
    Step,
    WorkedElement,
    choose_element,
    g,
    handles,
    mbqm_steps,
    multiplier_real,
    scalar,
    tensor_lines,
    terms_text,
)
from tflite_ref.kernels.reduce import ReduceData
from tflite_ref.quant.fixedpoint import wrap_int32

UPSTREAM = (("tensorflow/lite/kernels/internal/reference/reduce.h (QuantizedMeanOrSum, Mean, "
            "ReduceGeneric)"), "tflite/kernels/reduce.cc",
            "tensorflow/lite/micro/kernels/reduce_common.cc")


@handles(ReduceData)
def explain_reduce(view: OpView) -> Parts:
    d = view.data
    lay = d.layout
    sections = [tensor_lines(view)]
    numbers: dict[str, Any] = {"kind": d.kind}
    lines = []
    if lay is not None:
        reduced_axes = list(lay.perm[len(lay.perm) - lay.n_axes:])
        lines += [Line("reduced axes", str(reduced_axes)),
                  Line("values per output", str(lay.n)),
                  Line("outputs", f"{lay.rows} (shape {list(lay.out_shape)}, keep_dims "
                                  f"{str(d.keep_dims).lower()})")]
    q = d.quant_sum
    if q is not None and d.kind in ("mean", "sum"):
        m, s = d.requant if d.requant is not None else (q.multiplier, q.shift)
        lines += [Line("multiplier", f"m = {m}, shift = {s} (≈ {g(multiplier_real(m, s))})",
                       "s_in / s_out" + (", with 1/N folded in: m' = (m << k) / N, "
                                         "shift' = shift − k" if d.kind == "mean" else "")),
                  Line("zero points", f"in {q.input_zero_point}, out {q.output_zero_point}")]
        numbers.update({"multiplier": m, "shift": s})
        formula = ("out = clamp(MBQM(Σ q − z_in·N, m', shift') + z_out)" if d.kind == "mean"
                   else "out = clamp(MBQM(Σ q − z_in·N, m, shift) + z_out)")
    elif d.kind in ("mean", "sum"):
        formula = ("out = (Σ x, in float32 in index order) / N" if d.kind == "mean"
                   else "out = Σ x")
    else:
        formula = f"out = {d.kind} over the reduced axes"
    sections.append(Section("Reduction", tuple(lines)))
    element = None
    simple = d.quant_prod is None and not d.sum_bytes_as_uint8 and lay is not None
    if view.ran and simple and d.kind in ("mean", "sum", "max", "min"):
        out = view.out_value()
        assert out is not None
        at = choose_element(out, view.output(0), view.at)
        x = view.value(0)
        assert x is not None
        flat = int(np.ravel_multi_index(at, out.shape)) if out.ndim else 0
        vals = lay.view(x)[flat]
        steps = [Step(f"output {list(at)} reduces {lay.n} input values", lay.n)]
        exact = True
        if d.kind in ("max", "min"):
            v: Any = scalar(vals.max() if d.kind == "max" else vals.min())
            steps.append(Step(f"{d.kind} of the values", v))
            exact = vals.dtype.kind != "f"
        elif q is not None:
            total = int(wrap_int32(sum(int(t) for t in vals.tolist())))
            steps.append(Step(f"Σ q = {terms_text([str(int(t)) for t in vals[:4]], lay.n)} "
                              "(int32)", total))
            shifted = int(wrap_int32(total - q.input_zero_point * lay.n))
            steps.append(Step(f"− z_in·N = − {q.input_zero_point}·{lay.n}", shifted))
            m, s = d.requant if d.requant is not None else (q.multiplier, q.shift)
            sub, r = mbqm_steps(shifted, m, s)
            steps.extend(sub)
            v = r + q.output_zero_point
            steps.append(Step(f"+ z_out ({q.output_zero_point})", v))
            v = min(max(v, q.qmin), q.qmax)
            steps.append(Step(f"clamp to [{q.qmin}, {q.qmax}]", v))
        elif vals.dtype.kind == "f":
            ftotal = np.float32(0)
            for t in vals:
                ftotal = np.float32(ftotal + t)
            steps.append(Step("Σ x in float32, in index order", float(ftotal)))
            v = float(ftotal / np.float32(lay.n)) if d.kind == "mean" else float(ftotal)
            if d.kind == "mean":
                steps.append(Step(f"/ {lay.n}", v))
            exact = False
        else:
            total = int(np.sum(vals, dtype=np.int64))
            steps.append(Step("Σ x (int64)", total))
            if d.kind == "mean":
                v = abs(total) // lay.n * (1 if total >= 0 else -1)
                steps.append(Step(f"/ {lay.n}, truncated toward zero", v))
            else:
                v = int(np.asarray(total).astype(d.dtype))
        t = view.output(0)
        got = scalar(out[at])
        element = WorkedElement(t.index, t.name, at, tuple(steps), v, got, exact=exact,
                                tolerance=0.0 if exact else 1e-5 * max(1.0, abs(float(got))))
    return Parts(formula, UPSTREAM, sections, element, None if element else (
        view.not_run or "This reduction's step-by-step element is not written out (a "
        "product, a run-time axis, or LiteRT's uint8-reading SUM quirk)."), numbers)


EXPLAINERS = {op: explain_reduce for op in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN",
                                            "REDUCE_PROD", "REDUCE_ANY", "REDUCE_ALL")}
