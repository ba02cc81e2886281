"""LOGISTIC, TANH, SOFTMAX, RELU family: tables, fixed-point exponentials and clamps.

LiteRT builds int8 LOGISTIC/TANH tables in float (``LUTPopulate``, ``tflite/kernels/
activations.cc``); TFLite Micro evaluates gemmlowp fixed point (``reference_integer_ops::
Logistic``, ``tensorflow/lite/kernels/internal/reference/integer_ops/logistic.h``).  Quantized
SOFTMAX is gemmlowp's fixed-point exp and reciprocal in both (``reference_ops::Softmax``,
``tensorflow/lite/kernels/internal/reference/softmax.h``).  Multipliers, shifts and tables are
the prepared data of :mod:`tflite_ref.kernels.activations`.
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
    per_tensor,
    scalar,
    tensor_lines,
)
from tflite_ref.kernels.activations import ReluData, SigmoidTanhData, SoftmaxData
from tflite_ref.quant.fixedpoint import (
    exp_on_negative_values,
    get_reciprocal,
    logistic,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_greater_than_one,
    round_away,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    tanh,
    wrap_int32,
)
from tflite_ref.quant.lut import logistic_f32, lut_lookup_int16, tanh_f32
from tflite_ref.quant.multipliers import logistic_tanh_int8_input_scaling

F32 = np.float32


def _element(view: OpView, at: tuple[int, ...], steps: list[Step], value: float,
             exact: bool) -> WorkedElement:
    out = view.out_value()
    assert out is not None
    t = view.output(0)
    got = scalar(out[at])
    return WorkedElement(t.index, t.name, at, tuple(steps), value, got, exact=exact,
                         tolerance=0.0 if exact else 2e-6 * max(1.0, abs(float(got))))


# ------------------------------------------------------------------------------------------------
# LOGISTIC / TANH
# ------------------------------------------------------------------------------------------------
@handles(SigmoidTanhData)
def explain_logistic_tanh(view: OpView) -> Parts:
    is_tanh = view.op.opcode == "TANH"
    fn = "tanh" if is_tanh else "σ"
    data = view.data
    x_t, out_t = view.input(0), view.output(0)
    assert x_t is not None
    sections = [tensor_lines(view)]
    upstream = ("tflite/kernels/activations.cc (SigmoidPrepare / TanhPrepare: LUTPopulate)",
                "tensorflow/lite/kernels/internal/reference/integer_ops/logistic.h, tanh.h",
                "tensorflow/lite/micro/kernels/logistic_common.cc, tanh_common.cc")
    numbers: dict[str, Any] = {}
    pin, pout = per_tensor(x_t), per_tensor(out_t)
    how = "float"
    if data.table is not None and pin is not None and pout is not None:
        if view.emulate == "tflite":
            how = "lut"
            sections.append(Section("256-entry table (LiteRT, built once in prepare)", (
                Line("entry for q", f"clamp(round(({fn}(s_in·(q − z_in))) / s_out) + z_out)",
                     "LUTPopulate, in float32"),
                Line("input", f"s_in = {g(pin[0])}, z_in = {pin[1]}"),
                Line("output", f"s_out = {g(pout[0])}, z_out = {pout[1]}",
                     "" if is_tanh else "LiteRT requires s_out = 1/256"))))
        else:
            how = "gemmlowp"
            m, ls, radius = logistic_tanh_int8_input_scaling(pin[0])
            numbers.update({"input_multiplier": m, "input_left_shift": ls, "radius": radius})
            sections.append(Section("gemmlowp fixed point (TFLite Micro, tabulated by tflite_ref)", (
                Line("input rescale", f"m = {m}, left shift = {ls}",
                     "frexp(s_in · 2^27): x − z_in to Q4.27"),
                Line("saturation radius", str(radius),
                     "|x − z_in| ≥ radius saturates to the extreme output"),
                Line("output", "logistic: Q0.31 → 1/256 steps, − 128; tanh: Q0.31 → 1/128 steps",
                     "TFLM ignores the output tensor's own scale here"))))
    elif data.table is None and x_t.type_name == "INT16":
        how = "int16"
        sections.append(Section("int16 path", (
            Line("input multiplier", f"{data.input_multiplier}, left shift "
                                     f"{data.input_left_shift}"),)))
    formula = (f"out = LUT[q − qmin] with LUT built from {fn}(s_in·(q − z_in))" if how == "lut"
               else f"out = gemmlowp {fn} in fixed point" if how == "gemmlowp"
               else f"out = {fn}(x)")
    element = None
    if view.ran and how in ("lut", "gemmlowp", "float"):
        at = choose_element(view.out_value(), out_t, view.at)  # type: ignore[arg-type]
        x = view.value(0)
        assert x is not None
        q = scalar(x[at])
        steps = [Step(f"input element {list(at)}", q)]
        if how == "lut":
            s_in, z_in = pin  # type: ignore[misc]
            s_out, z_out = pout  # type: ignore[misc]
            deq = F32(s_in) * F32(q - z_in)
            steps.append(Step(f"s_in·(q − z_in) = {g(s_in)}·({q} − {z_in}) (float32)", float(deq)))
            t = (tanh_f32 if is_tanh else logistic_f32)(np.array([deq], np.float32))[0]
            steps.append(Step(f"{fn}(·) (float32)", float(t)))
            r = float(round_away(F32(t) * (F32(1.0) / F32(s_out))))
            steps.append(Step(f"round(· / s_out), half away from zero (s_out = {g(s_out)})", r))
            info = np.iinfo(x.dtype)
            v = int(min(max(int(F32(r) + F32(z_out)), info.min), info.max))
            steps.append(Step(f"+ z_out ({z_out}), clamp to [{info.min}, {info.max}]", v))
            element = _element(view, at, steps, v, exact=True)
        elif how == "gemmlowp":
            z_in = pin[1]  # type: ignore[index]
            m, ls, radius = logistic_tanh_int8_input_scaling(pin[0])  # type: ignore[index]
            v = int(q) - z_in
            steps.append(Step(f"x − z_in = {q} − {z_in}", v))
            if v <= -radius:
                r = -128
                steps.append(Step(f"≤ −radius ({-radius}): saturates", r))
            elif v >= radius:
                r = 127
                steps.append(Step(f"≥ radius ({radius}): saturates", r))
            else:
                xq = int(multiply_by_quantized_multiplier(v, m, ls))
                steps.append(Step(f"MultiplyByQuantizedMultiplier(·, {m}, {ls}) (Q4.27)", xq))
                if is_tanh:
                    y = int(tanh(xq, 4))
                    steps.append(Step("gemmlowp tanh (Q0.31)", y))
                    r = int(rounding_divide_by_pot(y, 24))
                    steps.append(Step("RoundingDivideByPOT(·, 24) (to 1/128 steps)", r))
                else:
                    y = int(logistic(xq, 4))
                    steps.append(Step("gemmlowp logistic (Q0.31)", y))
                    r = int(rounding_divide_by_pot(y, 23)) - 128
                    steps.append(Step("RoundingDivideByPOT(·, 23) − 128 (1/256 steps)", r))
                r = min(max(r, -128), 127)
            element = _element(view, at, steps, r, exact=True)
        else:
            xf = F32(q)
            if is_tanh:
                fv = float(np.tanh(xf))
            elif xf > F32(16.619047164916992):
                fv = 1.0
            elif xf < F32(-9):
                fv = float(np.exp(xf))
            else:
                fv = float(F32(1) / (F32(1) + np.exp(-xf)))
            steps.append(Step(f"{fn}({q}) (float32; reference_ops::Logistic bounds)", fv))
            element = _element(view, at, steps, fv, exact=False)
    return Parts(formula, upstream, sections, element, None if element else view.not_run,
                 numbers)


# ------------------------------------------------------------------------------------------------
# SOFTMAX
# ------------------------------------------------------------------------------------------------
@handles(SoftmaxData)
def explain_softmax(view: OpView) -> Parts:
    data = view.data
    x_t, out_t = view.input(0), view.output(0)
    assert x_t is not None
    sections = [tensor_lines(view)]
    upstream = ("tensorflow/lite/kernels/internal/reference/softmax.h (Softmax, SoftmaxInt16)",
                ("tensorflow/lite/kernels/internal/quantization_util.cc "
                "(PreprocessSoftmaxScaling, CalculateInputRadius)"),
                "tensorflow/lite/micro/kernels/softmax_common.cc")
    numbers: dict[str, Any] = {"beta": data.beta}
    kind = "float" if x_t.type_name == "FLOAT32" else (
        "int16" if x_t.type_name == "INT16" else "8bit")
    if kind == "8bit":
        pin = per_tensor(x_t)
        sections.append(Section("Fixed-point rescaling (prepare)", (
            Line("beta", g(data.beta)),
            Line("input multiplier", f"m = {data.input_multiplier}, left shift = "
                 f"{data.input_left_shift}",
                 f"QuantizeMultiplierGreaterThanOne(beta·s_in·2^26) with s_in = "
                 f"{g(pin[0]) if pin else '?'}: differences to Q5.26"),
            Line("diff_min", str(data.diff_min),
                 "−CalculateInputRadius(5, left shift): smaller differences contribute 0"),
            Line("output", f"{data.output_bits}-bit, + {data.output_min} (the implied zero "
                 "point)", "the output scale is fixed: 1/256 (int8) or 1/65536 (int16)"))))
        numbers.update({"input_multiplier": data.input_multiplier,
                        "input_left_shift": data.input_left_shift, "diff_min": data.diff_min})
        formula = ("out[i] = RDBPOT(SRDHM(1/Σ_j exp(x_j − max) [Q0.31], exp(x_i − max)), "
                   "nbits + 31 − out_bits) + out_min; exp in gemmlowp fixed point")
    elif kind == "int16":
        sections.append(Section("int16 tables", (
            Line("input rescale", f"m = {data.input_multiplier}, shift = {data.input_left_shift}"
                 f" (≈ {g(multiplier_real(data.input_multiplier, data.input_left_shift))})"),
            Line("tables", "exp over [−10, 0] and 1/(1+x), 513 entries each, 7-bit "
                 "interpolation"))))
        formula = "out[i] = exp_lut(x_i − max) · recip_lut(Σ_j exp_lut(x_j − max))"
    else:
        sections.append(Section("Float", (Line("beta", g(data.beta)),)))
        formula = "out[i] = exp(β(x_i − max)) / Σ_j exp(β(x_j − max)) (float32, sum in order)"
    element = None
    if view.ran:
        at = choose_element(view.out_value(), out_t, view.at)  # type: ignore[arg-type]
        x = view.value(0)
        assert x is not None
        row = x[at[:-1]] if x.ndim else x.reshape(1)
        i = at[-1] if x.ndim else 0
        if kind == "8bit":
            element = _softmax_8bit(view, at, row, i)
        elif kind == "int16":
            element = _softmax_int16(view, at, row, i)
        else:
            element = _softmax_float(view, at, row, i)
    return Parts(formula, upstream, sections, element, None if element else view.not_run,
                 numbers)


def _softmax_8bit(view: OpView, at: tuple[int, ...], row: np.ndarray, i: int) -> WorkedElement:
    d = view.data
    vals = [int(v) for v in row.tolist()]
    mx = max(vals)
    steps = [Step(f"row of {len(vals)} values; max", mx)]
    exps: list[int | None] = []
    for v in vals:
        diff = v - mx
        if diff >= d.diff_min:
            scaled = int(multiply_by_quantized_multiplier_greater_than_one(
                diff, d.input_multiplier, d.input_left_shift))
            exps.append(int(exp_on_negative_values(scaled, 5)))
        else:
            exps.append(None)
    diff_i = vals[i] - mx
    steps.append(Step(f"x_i − max = {vals[i]} − {mx}", diff_i))
    if exps[i] is None:
        steps.append(Step(f"below diff_min ({d.diff_min}): the output is the lowest value",
                          d.output_min))
        info = np.iinfo(d.output_dtype)
        return _element(view, at, steps, int(info.min), exact=True)
    scaled_i = int(multiply_by_quantized_multiplier_greater_than_one(
        diff_i, d.input_multiplier, d.input_left_shift))
    steps.append(Step(f"MBQMGreaterThanOne(·, {d.input_multiplier}, {d.input_left_shift}) "
                      "(Q5.26)", scaled_i))
    exp_i = exps[i]
    assert exp_i is not None
    steps.append(Step("exp_on_negative_values (Q0.31)", exp_i))
    total = int(wrap_int32(sum(int(rounding_divide_by_pot(e, 12)) for e in exps if e is not None)))
    steps.append(Step(f"Σ_j RDBPOT(exp_j, 12) over the {sum(e is not None for e in exps)} "
                      "kept values (Q12.19)", total))
    scale, nbou = get_reciprocal(total, 12)
    steps.append(Step(f"GetReciprocal: 1/Σ (Q0.31), num_bits_over_unit {int(nbou)}", int(scale)))
    exponent = int(nbou) + 31 - d.output_bits
    r = int(rounding_divide_by_pot(saturating_rounding_doubling_high_mul(int(scale), exp_i),
                                   exponent))
    steps.append(Step(f"RDBPOT(SRDHM(1/Σ, exp_i), {exponent})", r))
    info = np.iinfo(d.output_dtype)
    v = min(max(r + d.output_min, int(info.min)), int(info.max))
    steps.append(Step(f"+ {d.output_min}, clamp", v))
    return _element(view, at, steps, v, exact=True)


def _softmax_int16(view: OpView, at: tuple[int, ...], row: np.ndarray, i: int
                   ) -> WorkedElement:
    d = view.data
    vals = [int(v) for v in row.tolist()]
    mx = max(vals)
    steps = [Step(f"row of {len(vals)} values; max", mx)]
    exps = []
    for v in vals:
        sc = int(multiply_by_quantized_multiplier(v - mx, d.input_multiplier, d.input_left_shift))
        sym = min(max(sc + 32767, -32768), 32767)
        exps.append(int(lut_lookup_int16(np.array([sym], np.int16), d.exp_lut)[0]))
    steps.append(Step(f"exp_lut(rescaled x_i − max) (Q0.15) for x_i = {vals[i]}", exps[i]))
    total = int(wrap_int32(sum(exps)))
    steps.append(Step("Σ_j exp_j (Q16.15)", total))
    headroom_plus_one = 32 - total.bit_length() if total > 0 else 32
    shifted = ((total << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    sym = min(max(shifted - ((1 << 15) + (1 << 16)), -32768), 32767)
    recip = int(lut_lookup_int16(np.array([sym], np.int16), d.one_over_one_plus_x_lut)[0])
    steps.append(Step("1/(1+x) table on the normalised sum (Q0.15)", recip))
    right = 31 - headroom_plus_one
    v = (exps[i] * recip + (1 << (right - 1))) >> right
    v = min(max(v, 0), 32767)
    steps.append(Step(f"(exp_i · recip + 2^{right - 1}) >> {right}, clamp to [0, 32767]", v))
    return _element(view, at, steps, v, exact=True)


def _softmax_float(view: OpView, at: tuple[int, ...], row: np.ndarray, i: int) -> WorkedElement:
    d = view.data
    r = row.astype(np.float32)
    mx = r.max()
    e = np.exp((r - mx) * F32(d.beta)).astype(np.float32)
    total = F32(0)
    for v in e:
        total = F32(total + v)
    steps = [Step(f"row of {r.size} values; max", float(mx)),
             Step(f"exp(β·(x_i − max)) for x_i = {float(r[i]):.6g}", float(e[i])),
             Step("Σ_j exp(·) in float32, in order", float(total))]
    v = float(F32(e[i] / total))
    steps.append(Step("exp_i / Σ", v))
    return _element(view, at, steps, v, exact=False)


# ------------------------------------------------------------------------------------------------
# RELU, RELU6, RELU_N1_TO_1
# ------------------------------------------------------------------------------------------------
@handles(ReluData)
def explain_relu(view: OpView) -> Parts:
    d = view.data
    sections = [tensor_lines(view)]
    integer = d.dtype.kind in "iu"
    if integer:
        lines = [Line("clamp", f"[{d.lo}, {d.hi}]",
                      "z_out + round(bound / s_out), within the type (QuantizedReluX)")]
        if d.relu6_rescale == "requantize":
            lines.insert(0, Line("rescale", f"m = {d.multiplier}, shift = {d.shift} (≈ "
                                 f"{g(multiplier_real(d.multiplier, d.shift))})", "s_in / s_out"))
        else:
            lines.insert(0, Line("rescale", "none: TFLite Micro's RELU6 clamps the input "
                                 "integers in the input's quantization"))
        sections.append(Section("Arithmetic", tuple(lines)))
        formula = "out = clamp(z_out + MBQM(q − z_in, m, shift), lo, hi)"
    else:
        sections.append(Section("Arithmetic", (Line("clamp", f"[{g(d.lo)}, {g(d.hi)}]"),)))
        formula = "out = clamp(x, lo, hi)"
    element = None
    if view.ran:
        at = choose_element(view.out_value(), view.output(0), view.at)  # type: ignore[arg-type]
        x = view.value(0)
        assert x is not None
        q = scalar(x[at])
        steps = [Step(f"input element {list(at)}", q)]
        if integer:
            v = int(q)
            if d.relu6_rescale == "requantize":
                steps.append(Step(f"q − z_in = {q} − {d.input_zero_point}", v - d.input_zero_point))
                sub, r = mbqm_steps(v - d.input_zero_point, d.multiplier, d.shift)
                steps.extend(sub)
                v = d.output_zero_point + r
                steps.append(Step(f"+ z_out ({d.output_zero_point})", v))
            v = min(max(v, d.lo), d.hi)
            steps.append(Step(f"clamp to [{d.lo}, {d.hi}]", v))
            element = _element(view, at, steps, v, exact=True)
        else:
            fv = float(min(max(float(q), d.lo), d.hi))
            steps.append(Step(f"clamp to [{g(d.lo)}, {g(d.hi)}]", fv))
            element = _element(view, at, steps, fv, exact=False)
    return Parts(formula, ("tensorflow/lite/kernels/internal/reference/activations.h",
                           "tflite/kernels/activations.cc (ReluPrepare)",
                           "tensorflow/lite/micro/kernels/activations_common.cc"),
                 sections, element, None if element else view.not_run)


EXPLAINERS = {
    "LOGISTIC": explain_logistic_tanh,
    "TANH": explain_logistic_tanh,
    "SOFTMAX": explain_softmax,
    "RELU": explain_relu,
    "RELU6": explain_relu,
    "RELU_N1_TO_1": explain_relu,
    "RELU_0_TO_1": explain_relu,
}
