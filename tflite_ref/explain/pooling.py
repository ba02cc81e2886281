"""AVERAGE_POOL_2D, MAX_POOL_2D: a window clipped to the image, no requantization.

Follows ``tensorflow/lite/kernels/internal/reference/integer_ops/pooling.h`` (int8/int16),
``reference/pooling.h`` (float, uint8) and ``tensorflow/lite/kernels/padding.h``; geometry and
clamp are read from :class:`tflite_ref.kernels.pooling.PoolData`.
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
    per_tensor,
    tensor_lines,
    terms_text,
)
from tflite_ref.kernels.pooling import PoolData

UPSTREAM = (
    "tensorflow/lite/kernels/internal/reference/integer_ops/pooling.h (AveragePool, MaxPool)",
    "tensorflow/lite/kernels/internal/reference/pooling.h (float, uint8)",
    "tensorflow/lite/kernels/padding.h",
    "tensorflow/lite/micro/kernels/pooling_common.cc",
)


@handles(PoolData)
def explain_pool(view: OpView) -> Parts:
    d = view.data
    kind = "average" if view.op.opcode == "AVERAGE_POOL_2D" else (
        "max" if view.op.opcode == "MAX_POOL_2D" else "l2")
    x_t, out_t = view.input(0), view.output(0)
    assert x_t is not None
    padding = str(view.op.options.get("padding", "SAME"))
    lines = [Line("window", f"{d.filter_h}x{d.filter_w}, stride {d.stride_h}x{d.stride_w}"),
             Line("padding", f"{padding}: top {d.pad_top}, left {d.pad_left}",
                  "padding.h; taps in the padding are skipped, not zeros"),
             Line("output", f"{d.out_h}x{d.out_w}"),
             Line("clamp", f"[{g(d.act_min) if isinstance(d.act_min, float) else d.act_min}, "
                           f"{g(d.act_max) if isinstance(d.act_max, float) else d.act_max}]",
                  "fused activation ∩ type range")]
    notes: list[str] = []
    pin, pout = per_tensor(x_t), per_tensor(out_t)
    if pin is not None and pout is not None:
        notes.append("No requantization: the kernel works on the stored integers and assumes the "
                     "output has the input's scale and zero point" + (
                         " (they match here)." if pin == pout else
                         f" -- they DIFFER here ({pin} vs {pout}); TFLM refuses this model, "
                         "LiteRT only DCHECKs it."))
    if kind == "average" and d.counts is not None:
        lines.append(Line("taps per window", f"{int(d.counts.min())}..{int(d.counts.max())}",
                          "windows at the border divide by the taps inside the image only"))
    formula = {"average": "out = clamp(round_half_away(Σ_window x / count), act_min, act_max)",
               "max": "out = clamp(max_window x, act_min, act_max)",
               "l2": "out = clamp(sqrt(Σ_window x² / count))"}[kind]
    sections = [tensor_lines(view), Section("Window", tuple(lines), notes=tuple(notes))]
    element = None
    if view.ran and kind != "l2":
        at = choose_element(view.out_value(), out_t, view.at)  # type: ignore[arg-type]
        element = _element(view, at, kind)
    numbers: dict[str, Any] = {"pad": [d.pad_top, d.pad_left], "out": [d.out_h, d.out_w]}
    return Parts(formula, UPSTREAM, sections, element, None if element else view.not_run,
                 numbers)


def _element(view: OpView, at: tuple[int, ...], kind: str) -> WorkedElement:
    d = view.data
    x, out = view.value(0), view.out_value()
    assert x is not None and out is not None
    n, oy, ox, c = at
    in_h, in_w = x.shape[1], x.shape[2]
    vals = []
    for fy in range(d.filter_h):
        for fx in range(d.filter_w):
            iy, ix = oy * d.stride_h - d.pad_top + fy, ox * d.stride_w - d.pad_left + fx
            if 0 <= iy < in_h and 0 <= ix < in_w:
                vals.append(x[n, iy, ix, c])
    integer = x.dtype.kind in "iu"
    steps = [Step(f"window of output [{n}, {oy}, {ox}, {c}]: rows from {oy * d.stride_h - d.pad_top}"
                  f", columns from {ox * d.stride_w - d.pad_left}; {len(vals)} taps inside the "
                  "image", len(vals))]
    t = view.output(0)
    if kind == "max":
        v: Any = max(int(v) if integer else float(v) for v in vals)
        steps.append(Step(f"max of {terms_text([str(v) for v in vals], len(vals)).replace(' + ', ', ')}", v))
    elif integer:
        acc = sum(int(v) for v in vals)
        steps.append(Step(f"Σ x = {terms_text([str(int(v)) for v in vals], len(vals))}", acc))
        cnt = len(vals)
        # reference_integer_ops::AveragePool: (acc > 0 ? acc + n/2 : acc - n/2) / n, C division
        num = acc + cnt // 2 if acc > 0 else acc - cnt // 2
        v = abs(num) // cnt * (1 if num >= 0 else -1)
        steps.append(Step(f"({acc} {'+' if acc > 0 else '−'} {cnt}/2) / {cnt} (C division: "
                          "rounds half away from zero)", v))
    else:
        total = np.float32(0)
        for val in vals:
            total = np.float32(total + np.float32(val))
        steps.append(Step("Σ x in float32, in tap order", float(total)))
        v = float(np.float32(total / np.float32(len(vals))))
        steps.append(Step(f"/ {len(vals)}", v))
    c_v = min(max(v, d.act_min), d.act_max)
    steps.append(Step("clamp (fused activation ∩ type range)", c_v))
    got = int(out[at]) if integer else float(out[at])
    return WorkedElement(t.index, t.name, at, tuple(steps), c_v, got, exact=integer,
                         tolerance=0.0 if integer else 1e-6 * max(1.0, abs(float(got))))


EXPLAINERS = {"AVERAGE_POOL_2D": explain_pool, "MAX_POOL_2D": explain_pool,
              "L2_POOL_2D": explain_pool}
