"""ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM: one output element from its two (broadcast) inputs.

Quantized ADD/SUB bring both inputs to a common scale ``2·max(s1, s2)/2^left_shift`` before
adding (``reference_integer_ops::AddElementwise``, ``tensorflow/lite/kernels/internal/reference/
integer_ops/add.h``; multipliers from ``tensorflow/lite/micro/kernels/add_common.cc`` / LiteRT
``add.cc``); MUL rescales the product of the offset inputs (``integer_ops/mul.h``); DIV multiplies
by a fixed-point reciprocal (``reference_ops::DivElementwise``, ``reference/div.h``).  All
multipliers, shifts and offsets shown are those of :mod:`tflite_ref.kernels.elementwise`'s
prepare.
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
    broadcast_index,
    choose_element,
    g,
    handles,
    mbqm_steps,
    multiplier_real,
    per_tensor,
    scalar,
    sign,
    tensor_lines,
)
from tflite_ref.kernels.elementwise import AddData, DivData, MulData
from tflite_ref.quant.fixedpoint import (
    count_leading_sign_bits,
    get_reciprocal,
    multiply_by_quantized_multiplier_greater_than_one,
    multiply_by_quantized_multiplier_smaller_than_one_exp,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul_int16,
    wrap_int32,
)

UPSTREAM_ADD = (
    "tensorflow/lite/kernels/internal/reference/integer_ops/add.h (AddElementwise)",
    "tensorflow/lite/kernels/internal/reference/add.h (float, int16 power-of-two)",
    "tensorflow/lite/micro/kernels/add_common.cc / tflite/kernels/add.cc, sub.cc (multipliers)",
)
UPSTREAM_MUL = (
    "tensorflow/lite/kernels/internal/reference/integer_ops/mul.h (MulElementwise)",
    ("tflite/kernels/mul.cc (float32 multiplier) / tensorflow/lite/micro/kernels/mul_common.cc "
    "(double)"),
)
UPSTREAM_DIV = ("tensorflow/lite/kernels/internal/reference/div.h (DivElementwise)",
                "tflite/kernels/div.cc")
UPSTREAM_MINMAX = ("tensorflow/lite/kernels/internal/reference/maximum_minimum.h",)


def _inputs(view: OpView, at: tuple[int, ...]) -> tuple[Any, Any, tuple[int, ...],
                                                         tuple[int, ...]]:
    x, y = view.value(0), view.value(1)
    assert x is not None and y is not None
    ix, iy = broadcast_index(at, x.shape), broadcast_index(at, y.shape)
    return x[ix], y[iy], ix, iy


def _where(at: tuple[int, ...], ix: tuple[int, ...], iy: tuple[int, ...], a: Any, b: Any
           ) -> Step:
    how = "" if ix == iy == at else " (broadcasting)"
    return Step(f"output {list(at)} pairs input 0 {list(ix)} = {a} with input 1 {list(iy)} = {b}"
                + how, "-")


def _clamp_step(v: float, lo: float, hi: float) -> tuple[Step, int | float]:
    c = min(max(v, lo), hi)
    return Step(f"clamp to [{g(lo) if isinstance(lo, float) else lo}, "
                f"{g(hi) if isinstance(hi, float) else hi}] (activation ∩ type range)", c), c


def _element(view: OpView, at: tuple[int, ...], steps: list[Step], value: float,
             exact: bool = True) -> WorkedElement:
    out = view.out_value()
    assert out is not None
    t = view.output(0)
    got = scalar(out[at])
    return WorkedElement(t.index, t.name, at, tuple(steps), value, got, exact=exact,
                         tolerance=0.0 if exact else 1e-6 * max(1.0, abs(float(got))))


def _scales_section(view: OpView) -> Section:
    lines = []
    for role, t in (("input 0", view.input(0)), ("input 1", view.input(1)),
                    ("output", view.output(0))):
        p = per_tensor(t)
        if p is not None:
            lines.append(Line(role, f"s = {g(p[0])}, z = {p[1]}"))
    return Section("Quantization", tuple(lines))


# ------------------------------------------------------------------------------------------------
# ADD / SUB
# ------------------------------------------------------------------------------------------------
@handles(AddData)
def explain_add_sub(view: OpView) -> Parts:
    data = view.data
    is_sub = view.op.opcode == "SUB"
    op = "−" if is_sub else "+"
    sections = [tensor_lines(view)]
    numbers: dict[str, Any] = {"kind": data.kind}
    if data.kind == "general":
        r = data.rescale
        sections.append(_scales_section(view))
        sections.append(Section("Rescaling (prepare)", (
            Line("left shift", str(r.left_shift),
                 "inputs are shifted left first so the rescaled values keep precision "
                 "(20 for 8-bit, 15 for int16)"),
            Line("input 0 multiplier", f"m = {r.input1_multiplier}, shift = {r.input1_shift} "
                 f"(≈ {g(multiplier_real(r.input1_multiplier, r.input1_shift))})",
                 "s1 / (2·max(s1, s2))"),
            Line("input 1 multiplier", f"m = {r.input2_multiplier}, shift = {r.input2_shift} "
                 f"(≈ {g(multiplier_real(r.input2_multiplier, r.input2_shift))})",
                 "s2 / (2·max(s1, s2))"),
            Line("output multiplier", f"m = {r.output_multiplier}, shift = {r.output_shift} "
                 f"(≈ {g(multiplier_real(r.output_multiplier, r.output_shift))})",
                 "2·max(s1, s2) / (2^left_shift · s_out)"),
            Line("clamp", f"[{data.act_min}, {data.act_max}]"))))
        numbers.update({"left_shift": r.left_shift,
                        "multipliers": [r.input1_multiplier, r.input2_multiplier,
                                        r.output_multiplier],
                        "shifts": [r.input1_shift, r.input2_shift, r.output_shift]})
        formula = (f"out = clamp(MBQMSmallerThanOne(MBQMSmallerThanOne((x − z1)·2^ls, m1, s1) "
                   f"{op} MBQMSmallerThanOne((y − z2)·2^ls, m2, s2), mo, so) + z_out)")
    elif data.kind == "pot":
        sections.append(Section("Power-of-two int16 path", (
            Line("input shifts", f"{data.pot.input1_right_shift}, {data.pot.input2_right_shift}",
                 "all scales are powers of two: one input is rounded right to the other's "
                 "scale, no multipliers"),)))
        formula = f"out = clamp(RDBPOT(x, r1) {op} RDBPOT(y, r2))"
    elif data.kind == "float":
        formula = f"out = clamp(x {op} y, act_min, act_max)"
    else:
        formula = f"out = clamp(x {op} y) (integer, wraps like C++)"
    element = None
    if view.ran:
        at = choose_element(view.out_value(), view.output(0), view.at)  # type: ignore[arg-type]
        a, b, ix, iy = _inputs(view, at)
        steps = [_where(at, ix, iy, a, b)]
        if data.kind == "general":
            r = data.rescale
            sa = (int(a) + r.input1_offset) << r.left_shift
            sb = (int(b) + r.input2_offset) << r.left_shift
            steps.append(Step(f"(x − z1)·2^{r.left_shift} = ({int(a)} − {sign(-r.input1_offset)})"
                              f"·2^{r.left_shift}", sa))
            steps.append(Step(f"(y − z2)·2^{r.left_shift} = ({int(b)} − {sign(-r.input2_offset)})"
                              f"·2^{r.left_shift}", sb))
            ra = int(multiply_by_quantized_multiplier_smaller_than_one_exp(
                sa, r.input1_multiplier, r.input1_shift))
            rb = int(multiply_by_quantized_multiplier_smaller_than_one_exp(
                sb, r.input2_multiplier, r.input2_shift))
            steps.append(Step(f"RDBPOT(SRDHM(·, {r.input1_multiplier}), {-r.input1_shift}) "
                              "(input 0 at the common scale)", ra))
            steps.append(Step(f"RDBPOT(SRDHM(·, {r.input2_multiplier}), {-r.input2_shift}) "
                              "(input 1 at the common scale)", rb))
            raw = int(wrap_int32(ra - rb if is_sub else ra + rb))
            steps.append(Step(f"{ra} {op} {sign(rb)} (int32)", raw))
            scaled = int(multiply_by_quantized_multiplier_smaller_than_one_exp(
                raw, r.output_multiplier, r.output_shift))
            steps.append(Step(f"RDBPOT(SRDHM(·, {r.output_multiplier}), {-r.output_shift}) "
                              "(to the output scale)", scaled))
            v = scaled + r.output_offset
            steps.append(Step(f"+ output zero point {r.output_offset}", v))
            st, c = _clamp_step(v, data.act_min, data.act_max)
            steps.append(st)
            element = _element(view, at, steps, int(c))
        elif data.kind == "pot":
            p = data.pot
            ra = int(rounding_divide_by_pot(int(a), p.input1_right_shift))
            rb = int(rounding_divide_by_pot(int(b), p.input2_right_shift))
            steps.append(Step(f"RDBPOT(x, {p.input1_right_shift}), RDBPOT(y, "
                              f"{p.input2_right_shift})", f"{ra}, {rb}"))
            v = min(max(ra - rb if is_sub else ra + rb, -32768), 32767)
            steps.append(Step(f"{ra} {op} {rb}, saturated to int16", v))
            st, c = _clamp_step(v, data.act_min, data.act_max)
            steps.append(st)
            element = _element(view, at, steps, int(c))
        elif data.kind == "float":
            v = float(np.float32(a) - np.float32(b)) if is_sub else float(
                np.float32(a) + np.float32(b))
            steps.append(Step(f"{a} {op} {b} (float32)", v))
            st, c = _clamp_step(v, data.act_min, data.act_max)
            steps.append(st)
            element = _element(view, at, steps, float(c), exact=False)
        else:
            dt = view.output(0).dtype
            v = int(np.asarray(int(a) - int(b) if is_sub else int(a) + int(b)).astype(np.int64)
                    .astype(dt))
            steps.append(Step(f"{a} {op} {b} (wraps in {view.output(0).type_name})", v))
            st, c = _clamp_step(v, data.act_min, data.act_max)
            steps.append(st)
            element = _element(view, at, steps, int(c))
    return Parts(formula, UPSTREAM_ADD, sections, element, None if element else view.not_run,
                 numbers)


# ------------------------------------------------------------------------------------------------
# MUL
# ------------------------------------------------------------------------------------------------
@handles(MulData)
def explain_mul(view: OpView) -> Parts:
    data = view.data
    sections = [tensor_lines(view)]
    numbers: dict[str, Any] = {"kind": data.kind}
    if data.kind == "quantized":
        sections.append(_scales_section(view))
        sections.append(Section("Rescaling (prepare)", (
            Line("multiplier", f"m = {data.output_multiplier}, shift = {data.output_shift} "
                 f"(≈ {g(multiplier_real(data.output_multiplier, data.output_shift))})",
                 "s1·s2/s_out: float32 arithmetic in LiteRT's mul.cc, double in TFLM's "
                 "mul_common.cc"),
            Line("clamp", f"[{data.act_min}, {data.act_max}]"))))
        numbers.update({"multiplier": data.output_multiplier, "shift": data.output_shift})
        formula = "out = clamp(MBQM((x − z1)·(y − z2), m, shift) + z_out, act_min, act_max)"
    elif data.kind == "int16_to_int8":
        formula = "out = clamp(RDBPOT(SRDHM16(x, y), 8) + z_out) (int16 × int16 → int8)"
    elif data.kind == "float":
        formula = "out = clamp(x · y, act_min, act_max)"
    else:
        formula = "out = clamp(x · y) (integer, wraps like C++)"
    element = None
    if view.ran:
        at = choose_element(view.out_value(), view.output(0), view.at)  # type: ignore[arg-type]
        a, b, ix, iy = _inputs(view, at)
        steps = [_where(at, ix, iy, a, b)]
        if data.kind == "quantized":
            prod = int(wrap_int32((int(a) + data.input1_offset) * (int(b) + data.input2_offset)))
            steps.append(Step(f"(x − z1)·(y − z2) = ({int(a)} − {sign(-data.input1_offset)})·"
                              f"({int(b)} − {sign(-data.input2_offset)})", prod))
            sub, v = mbqm_steps(prod, data.output_multiplier, data.output_shift)
            steps.extend(sub)
            v += data.output_offset
            steps.append(Step(f"+ output zero point {data.output_offset}", v))
            st, c = _clamp_step(v, data.act_min, data.act_max)
            steps.append(st)
            element = _element(view, at, steps, int(c))
        elif data.kind == "int16_to_int8":
            p = int(saturating_rounding_doubling_high_mul_int16(int(a), int(b)))
            steps.append(Step("SaturatingRoundingDoublingHighMul<int16>(x, y) (Q0.15 product)", p))
            r = int(rounding_divide_by_pot(p, 8))
            steps.append(Step("RoundingDivideByPOT(·, 8) (to Q0.7)", r))
            r = min(max(r, data.act_min - data.output_offset), data.act_max - data.output_offset)
            steps.append(Step("clamp relative to the zero point, + z_out", r + data.output_offset))
            element = _element(view, at, steps, int(r + data.output_offset))
        elif data.kind == "float":
            fv = float(np.float32(a) * np.float32(b))
            steps.append(Step(f"{a} · {b} (float32)", fv))
            st, c = _clamp_step(fv, data.act_min, data.act_max)
            steps.append(st)
            element = _element(view, at, steps, float(c), exact=False)
        else:
            dt = view.output(0).dtype
            with np.errstate(over="ignore"):
                v = int(np.asarray(int(a) * int(b)).astype(np.int64).astype(dt))
            steps.append(Step(f"{a} · {b} (wraps in {view.output(0).type_name})", v))
            st, c = _clamp_step(v, data.act_min, data.act_max)
            steps.append(st)
            element = _element(view, at, steps, int(c))
    return Parts(formula, UPSTREAM_MUL, sections, element, None if element else view.not_run,
                 numbers)


# ------------------------------------------------------------------------------------------------
# DIV
# ------------------------------------------------------------------------------------------------
@handles(DivData)
def explain_div(view: OpView) -> Parts:
    data = view.data
    sections = [tensor_lines(view)]
    numbers: dict[str, Any] = {"kind": data.kind}
    if data.kind == "quantized":
        sections.append(_scales_section(view))
        sections.append(Section("Rescaling (prepare)", (
            Line("multiplier", f"m = {data.output_multiplier}, shift = {data.output_shift}",
                 "s1 / (s2 · s_out)"),)))
        numbers.update({"multiplier": data.output_multiplier, "shift": data.output_shift})
        formula = ("out = clamp(RDBPOT(SRDHM((x − z1)·2^headroom · 1/(y − z2) [Q0.31], m), "
                   "shift terms) + z_out)")
    elif data.kind == "integer":
        formula = "out = clamp(x / y) (C++ integer division truncates toward zero)"
    else:
        formula = "out = clamp(x / y, act_min, act_max)"
    element = None
    if view.ran:
        at = choose_element(view.out_value(), view.output(0), view.at)  # type: ignore[arg-type]
        a, b, ix, iy = _inputs(view, at)
        steps = [_where(at, ix, iy, a, b)]
        if data.kind == "integer":
            q = abs(int(a)) // abs(int(b)) if int(b) else 0
            q = -q if (int(a) < 0) != (int(b) < 0) else q
            steps.append(Step(f"{a} / {b}, truncated toward zero", q))
            st, c = _clamp_step(q, data.act_min, data.act_max)
            steps.append(st)
            element = _element(view, at, steps, int(c))
        elif data.kind == "float":
            v = float(np.float32(a) / np.float32(b)) if float(b) != 0 else float("nan")
            steps.append(Step(f"{a} / {b} (float32)", v))
            st, c = _clamp_step(v, data.act_min, data.act_max)
            steps.append(st)
            element = _element(view, at, steps, float(c), exact=False)
        else:
            element = _div_quantized_element(view, at, steps, int(a), int(b))
    return Parts(formula, UPSTREAM_DIV, sections, element, None if element else view.not_run,
                 numbers)


def _div_quantized_element(view: OpView, at: tuple[int, ...], steps: list[Step], a: int, b: int
                           ) -> WorkedElement | None:
    data = view.data
    x, d = a + data.input1_offset, b + data.input2_offset
    if d < 0:
        x, d = -x, -d
    steps.append(Step(f"x − z1, y − z2 (the divisor made positive): {x}, {d}", "-"))
    recip, recip_shift = get_reciprocal(d, 31)
    steps.append(Step(f"GetReciprocal({d}): 1/d in Q0.31 = {int(recip)}, shift {int(recip_shift)}",
                      int(recip)))
    headroom = int(count_leading_sign_bits(x))
    unscaled = int(multiply_by_quantized_multiplier_greater_than_one(x, int(recip), headroom))
    steps.append(Step(f"x·2^{headroom} (headroom) times the reciprocal", unscaled))
    total_shift = data.output_shift - int(recip_shift) - headroom
    prod = int(multiply_by_quantized_multiplier_smaller_than_one_exp(
        unscaled, data.output_multiplier, 0))
    steps.append(Step(f"SRDHM(·, {data.output_multiplier})", prod))
    if total_shift > 0 or -total_shift > 31:
        return None  # the kernel's own overflow / wide-shift paths; not written out
    r = int(rounding_divide_by_pot(prod, -total_shift)) + data.output_offset
    steps.append(Step(f"RDBPOT(·, {-total_shift}) + z_out", r))
    st, c = _clamp_step(r, data.act_min, data.act_max)
    steps.append(st)
    return _element(view, at, steps, int(c))


# ------------------------------------------------------------------------------------------------
# MAXIMUM / MINIMUM
# ------------------------------------------------------------------------------------------------
def explain_max_min(view: OpView) -> Parts:
    is_max = view.op.opcode == "MAXIMUM"
    fn = "max" if is_max else "min"
    sections = [tensor_lines(view)]
    notes = (("Quantized inputs are compared as stored integers: the kernel assumes inputs and "
             "output share one scale and zero point."),)
    sections.append(Section("Arithmetic", (Line("operation", f"{fn}(x, y) element by element, "
                                                "with broadcasting"),), notes=notes))
    element = None
    if view.ran:
        at = choose_element(view.out_value(), view.output(0), view.at)  # type: ignore[arg-type]
        a, b, ix, iy = _inputs(view, at)
        v = max(scalar(a), scalar(b)) if is_max else min(scalar(a), scalar(b))
        element = _element(view, at, [_where(at, ix, iy, a, b), Step(f"{fn}({a}, {b})", v)], v,
                           exact=not isinstance(v, float))
    return Parts(f"out = {fn}(x, y)", UPSTREAM_MINMAX, sections, element,
                 None if element else view.not_run)


EXPLAINERS = {
    "ADD": explain_add_sub,
    "SUB": explain_add_sub,
    "MUL": explain_mul,
    "DIV": explain_div,
    "MAXIMUM": explain_max_min,
    "MINIMUM": explain_max_min,
}
