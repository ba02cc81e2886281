"""QUANTIZE, DEQUANTIZE, CAST: between real numbers and stored integers.

Follows ``tensorflow/lite/kernels/internal/reference/quantize.h`` (``AffineQuantize``: float32
division, ties away from zero), ``reference/requantize.h`` (``Requantize``: integer multiplier),
``reference/dequantize.h`` and ``tflite/kernels/cast.cc``; parameters from
:mod:`tflite_ref.kernels.quantize`'s prepare.
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
)
from tflite_ref.kernels.quantize import CastData, DequantizeData, QuantizeData
from tflite_ref.quant.fixedpoint import round_away, wrap_int32

UPSTREAM_Q = ("tensorflow/lite/kernels/internal/reference/quantize.h (AffineQuantize)",
              "tensorflow/lite/kernels/internal/reference/requantize.h (Requantize)",
              "tflite/kernels/quantize.cc / tensorflow/lite/micro/kernels/quantize_common.cc")
UPSTREAM_DQ = ("tensorflow/lite/kernels/internal/reference/dequantize.h",
               "tflite/kernels/dequantize.cc")
UPSTREAM_CAST = ("tflite/kernels/cast.cc", "tensorflow/lite/micro/kernels/cast.cc")


def _element(view: OpView, at: tuple[int, ...], steps: list[Step], value: float,
             exact: bool) -> WorkedElement:
    out = view.out_value()
    assert out is not None
    t = view.output(0)
    return WorkedElement(t.index, t.name, at, tuple(steps), value, scalar(out[at]), exact=exact)


def _channel(arr: np.ndarray, at: tuple[int, ...]) -> Any:
    """The entry of a broadcastable per-channel array for element ``at``."""
    if arr.ndim == 0:
        return arr.item()
    idx = tuple(0 if d == 1 else at[k] for k, d in enumerate(arr.shape))
    return arr[idx].item()


@handles(QuantizeData)
def explain_quantize(view: OpView) -> Parts:
    d = view.data
    sections = [tensor_lines(view)]
    numbers: dict[str, Any] = {}
    if d.scale is not None:
        per_channel = d.scale.size > 1
        sections.append(Section("Quantization (float → integer)", (
            Line("scale", f"{d.scale.size} per-channel scales" if per_channel
                 else g(float(d.scale))),
            Line("zero point", str(d.zero_point.reshape(-1)[0]) if not per_channel
                 else "per channel"),
            Line("range", f"[{d.qmin}, {d.qmax}]")),
            notes=(("The reference kernel divides in float32 and rounds ties away from zero; "
                   "LiteRT's optimized/XNNPACK path multiplies by 1/scale and rounds ties to "
                   "even, which differs on exact ties."),)))
        formula = "q = clamp((int32) round_away(x / scale) + zero_point, qmin, qmax)"
    else:
        sections.append(Section("Requantization (integer → integer)", (
            Line("multiplier", f"m = {d.multiplier}, shift = {d.shift} (≈ "
                 f"{g(multiplier_real(d.multiplier, d.shift))})", "s_in / s_out, double"),
            Line("zero points", f"in {d.input_zero_point}, out {int(d.zero_point)}"),
            Line("range", f"[{d.qmin}, {d.qmax}]"))))
        numbers.update({"multiplier": d.multiplier, "shift": d.shift})
        formula = "q = clamp(MBQM(x − z_in, m, shift) + z_out, qmin, qmax)"
    element = None
    if view.ran:
        at = choose_element(view.out_value(), view.output(0), view.at)  # type: ignore[arg-type]
        x = view.value(0)
        assert x is not None
        v = scalar(x[at])
        steps = [Step(f"input element {list(at)}", v)]
        if d.scale is not None:
            s, z = _channel(d.scale, at), int(_channel(d.zero_point, at))
            div = np.float32(v) / np.float32(s)
            steps.append(Step(f"x / scale = {v} / {g(s)} (float32 division)", float(div)))
            r = float(round_away(div))
            steps.append(Step("round half away from zero", r))
            q = int(wrap_int32(int(r) + z)) if abs(r) < 2**31 else int(wrap_int32(-2**31 + z))
            steps.append(Step(f"+ zero point {z}", q))
            c = min(max(q, d.qmin), d.qmax)
            steps.append(Step(f"clamp to [{d.qmin}, {d.qmax}]", c))
        else:
            centred = int(wrap_int32(int(v) - d.input_zero_point))
            steps.append(Step(f"x − z_in = {v} − {d.input_zero_point}", centred))
            sub, r = mbqm_steps(centred, d.multiplier, d.shift)
            steps.extend(sub)
            q = int(wrap_int32(r + int(d.zero_point)))
            steps.append(Step(f"+ z_out ({int(d.zero_point)})", q))
            c = min(max(q, d.qmin), d.qmax)
            steps.append(Step(f"clamp to [{d.qmin}, {d.qmax}]", c))
        element = _element(view, at, steps, c, exact=True)
    return Parts(formula, UPSTREAM_Q, sections, element, None if element else view.not_run,
                 numbers)


@handles(DequantizeData)
def explain_dequantize(view: OpView) -> Parts:
    d = view.data
    sections = [tensor_lines(view)]
    if d.scale is None:
        sections.append(Section("float16 → float32", (Line("conversion", "exact widening"),)))
        formula = "out = (float32) x"
    else:
        sections.append(Section("Dequantization", (
            Line("scale", g(float(d.scale)) if d.scale.size == 1
                 else f"{d.scale.size} per-channel scales"),
            Line("zero point", str(int(d.zero_point.reshape(-1)[0]))))))
        formula = "out = (float) (double(scale) · (q − zero_point))"
    element = None
    if view.ran:
        at = choose_element(view.out_value(), view.output(0), view.at)  # type: ignore[arg-type]
        x = view.value(0)
        assert x is not None
        q = scalar(x[at])
        steps = [Step(f"input element {list(at)}", q)]
        if d.scale is None:
            v = float(np.float32(q))
            steps.append(Step("widen to float32", v))
        else:
            s, z = float(_channel(d.scale, at)), int(_channel(d.zero_point, at))
            v = float(np.float32(s * (int(q) - z)))
            steps.append(Step(f"scale · (q − z) = {g(s)} · ({q} − {z}), rounded to float32", v))
        element = _element(view, at, steps, v, exact=True)
    return Parts(formula, UPSTREAM_DQ, sections, element, None if element else view.not_run)


@handles(CastData)
def explain_cast(view: OpView) -> Parts:
    d = view.data
    x_t = view.input(0)
    src = x_t.type_name if x_t is not None else "?"
    dst = view.output(0).type_name
    rule = ("truncate toward zero, saturate to the type (NaN → "
            f"{'the maximum' if d.nan_to_max else '0'})"
            if src.startswith("FLOAT") and d.out_dtype.kind in "iu" else
            "two's-complement wrap" if d.out_dtype.kind in "iu" else
            "x ≠ 0" if d.out_dtype.kind == "b" else "round to nearest")
    sections = [tensor_lines(view), Section("Conversion", (Line(f"{src} → {dst}", rule),),
                                            notes=(("Quantization parameters are ignored: CAST "
                                                   "converts the stored values."),))]
    element = None
    if view.ran:
        at = choose_element(view.out_value(), view.output(0), view.at)  # type: ignore[arg-type]
        x = view.value(0)
        assert x is not None
        v = x[at]
        if d.out_dtype.kind == "b":
            r: Any = bool(v != 0)
        elif np.asarray(v).dtype.kind == "f" and d.out_dtype.kind in "iu":
            info = np.iinfo(d.out_dtype)
            fv = float(v)
            r = (int(info.max) if d.nan_to_max else 0) if np.isnan(fv) else int(
                min(max(np.trunc(fv), info.min), info.max))
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                r = np.asarray(v).astype(d.out_dtype).item()
        steps = [Step(f"input element {list(at)}", scalar(v) if not isinstance(v, np.bool_)
                      else bool(v)), Step(rule, r)]
        out = view.out_value()
        assert out is not None
        element = WorkedElement(view.output(0).index, view.output(0).name, at, tuple(steps),
                                r, out[at].item(), exact=True)
    return Parts(f"out = ({dst}) x", UPSTREAM_CAST, sections, element,
                 None if element else view.not_run)


EXPLAINERS = {"QUANTIZE": explain_quantize, "DEQUANTIZE": explain_dequantize,
              "CAST": explain_cast}
