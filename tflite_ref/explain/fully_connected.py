"""FULLY_CONNECTED and BATCH_MATMUL: one dot product per output, then the requantization -- where
LiteRT's reference kernel and TFLite Micro part ways (double-precision float vs integer
multiplier), both shown with this model's numbers.

Follows ``tensorflow/lite/kernels/internal/reference/integer_ops/fully_connected.h``, LiteRT
``tflite/kernels/fully_connected.cc`` and TFLM ``micro/kernels/fully_connected_common.cc``, as
:mod:`tflite_ref.kernels.fully_connected` does.
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
    clamp_steps,
    g,
    handles,
    mbqm_steps,
    sign,
    tensor_lines,
    terms_text,
)
from tflite_ref.explain.conv import accumulator_bounds, accumulator_section, channel_section
from tflite_ref.kernels.fully_connected import FullyConnectedData
from tflite_ref.quant.fixedpoint import round_away, wrap_int32

UPSTREAM = (
    "tensorflow/lite/kernels/internal/reference/integer_ops/fully_connected.h",
    "tflite/kernels/fully_connected.cc (LiteRT: double-precision requantization in REF)",
    "tensorflow/lite/micro/kernels/fully_connected_common.cc (TFLM: integer multiplier)",
    "tensorflow/lite/kernels/kernel_util.cc (GetQuantizedConvolutionMultipler)",
)


@handles(FullyConnectedData)
def explain_fully_connected(view: OpView) -> Parts:
    data = view.data
    x_t, w_t, out_t, b_t = view.input(0), view.input(1), view.output(0), view.input(2)
    assert x_t is not None and w_t is not None
    sections = [tensor_lines(view), Section("Shapes", (
        Line("rows", f"{data.batches} (input of {x_t.num_elements} elements as rows of "
                     f"{data.depth})"),
        Line("GEMM", f"({data.batches}, {data.depth}) @ ({data.depth}, {data.units})",
             "weights are stored [units, depth]; the kernel reads row n of them for unit n"),
        Line("output shape", str(list(data.output_shape)),
             "keep_num_dims keeps the input's leading dims" if view.op.options.get(
                 "keep_num_dims") else "[rows, units]"),
        Line("MACs", f"{data.batches * data.depth * data.units:,}")))]
    numbers: dict[str, Any] = {"batches": data.batches, "depth": data.depth, "units": data.units}
    chosen = choose_element(view.out_value(), out_t, view.at) if view.ran else None  # type: ignore[arg-type]

    def unit_of(at: tuple[int, ...]) -> int:
        flat: int = int(np.ravel_multi_index(at, data.output_shape))
        return flat % int(data.units)

    rq = data.requant
    if rq is not None:
        integer = rq.integer
        channels = int(integer.multiplier.size)
        filt, bias = view.value(1), (view.value(2) if b_t is not None else None)
        lo = hi = None
        if filt is not None and (bias is not None or b_t is None):
            w_int = filt.astype(np.int64).reshape(data.units, -1) + data.filter_offset
            assert x_t.dtype is not None
            lo, hi = accumulator_bounds(w_int, x_t.dtype, data.input_zero_point, bias)
            sec, nums = accumulator_section(lo, hi, integer.accumulator, data.depth)
            sections.append(sec)
            numbers.update(nums)
        keep = unit_of(chosen) if chosen else 0
        sec, nums = channel_section(view, integer, channels, x_t, w_t, b_t, out_t,
                                    np.broadcast_to(rq.effective_scale, (channels,)),
                                    None if lo is None or channels == 1 else lo,
                                    None if hi is None or channels == 1 else hi,
                                    keep if channels > 1 else 0)
        sections.insert(1, sec)
        numbers.update(nums)
        how = ("LiteRT's reference kernel: out = round_away(double(acc) · s_in·s_w/s_out) "
               "(double precision, no integer multiplier)" if rq.method == "double_float" else
               "TFLite Micro: out = MultiplyByQuantizedMultiplier(acc, m, shift)")
        other = ("TFLite Micro instead uses the integer multiplier and shift above; the two "
                 "differ by 1 on rare ties." if rq.method == "double_float" else
                 "LiteRT's reference kernel instead rounds acc · s_in·s_w/s_out in double "
                 "precision; the two differ by 1 on rare ties.")
        notes = [other]
        if channels == 1 and x_t.type_name != "INT16":
            notes.append("Per-tensor weights: the integer multiplier comes from the float32 "
                         "product s_in·s_w (GetQuantizedConvolutionMultipler) in LiteRT.")
        sections.append(Section("Requantization", (
            Line("emulating", view.emulate, how),
            Line("clamp", f"[{integer.act_min}, {integer.act_max}]",
                 f"fused activation {view.op.options.get('fused_activation_function') or 'NONE'}"
                 " ∩ type range")), notes=tuple(notes)))
        formula = ("out[b,n] = clamp(requantize(Σ_k (w[n,k] − z_w)·(in[b,k] − z_in) + bias[n]) "
                   "+ z_out, act_min, act_max)")
    else:
        sections.append(Section("Fused activation", (Line(
            view.op.options.get("fused_activation_function") or "NONE",
            f"clamp to [{g(data.act_min)}, {g(data.act_max)}]"),)))
        formula = "out[b,n] = clamp(Σ_k w[n,k]·in[b,k] + bias[n], act_min, act_max)"
    element = _element(view, chosen) if chosen is not None else None
    return Parts(formula, UPSTREAM, sections, element, None if element else view.not_run,
                 numbers)


def _element(view: OpView, at: tuple[int, ...]) -> WorkedElement:
    data = view.data
    x, filt, out = view.value(0), view.value(1), view.out_value()
    bias = view.value(2) if view.input(2) is not None else None
    assert x is not None and filt is not None and out is not None
    flat = int(np.ravel_multi_index(at, data.output_shape))
    b, n = divmod(flat, data.units)
    row = x.reshape(data.batches, data.depth)[b]
    w = filt.reshape(data.units, data.depth)[n]
    steps = [Step(f"output {list(at)} is row {b}, unit {n}: the dot product of input row {b} "
                  f"with weight row {n} ({data.depth} products)", "-")]
    out_t = view.output(0)
    rq = data.requant
    if rq is None:
        total = 0.0
        terms: list[str] = []
        for k in range(data.depth):
            total += float(w[k]) * float(row[k])
            if len(terms) < 4:
                terms.append(f"{float(w[k]):.4g}·{float(row[k]):.4g}")
        steps.append(Step(f"Σ w·x = {terms_text(terms, data.depth)}", total))
        if bias is not None:
            total += float(bias.reshape(-1)[n])
            steps.append(Step(f"+ bias[{n}]", total))
        v = float(np.float32(min(max(total, data.act_min), data.act_max)))
        steps.append(Step(f"clamp to [{g(data.act_min)}, {g(data.act_max)}], round to float32", v))
        mag = float(np.abs(row).max(initial=0) * np.abs(w).sum()) + 1.0
        return WorkedElement(out_t.index, out_t.name, at, tuple(steps), v, float(out[at]),
                             exact=False, tolerance=1e-5 * mag)
    z_in, f_off = data.input_zero_point, data.filter_offset
    total = 0
    terms = []
    for k in range(data.depth):
        wq, xq = int(w[k]) + f_off, int(row[k]) - z_in
        total += wq * xq
        if len(terms) < 4:
            terms.append(f"{sign(wq)}·({int(row[k])} − {sign(z_in)})")
    w_name = "(w − z_w)" if f_off else "w"
    steps.append(Step(f"Σ {w_name}·(x − z_in) = {terms_text(terms, data.depth)}", total))
    acc = total
    if bias is not None:
        acc += int(bias.reshape(-1)[n])
        steps.append(Step(f"acc = Σ + bias[{n}] ({int(bias.reshape(-1)[n])})", acc))
    integer = rq.integer
    if integer.accumulator == "int32" and acc != int(wrap_int32(acc)):
        acc = int(wrap_int32(acc))
        steps.append(Step("acc wraps around in int32 (two's complement)", acc))
    c = n if integer.multiplier.size > 1 else 0
    if rq.method == "double_float":
        eff = float(np.broadcast_to(rq.effective_scale, (integer.multiplier.size,))[c])
        r = int(round_away(float(acc) * eff))
        steps.append(Step(f"round_away(acc · {eff!r}) (double; fully_connected.cc REF)", r))
        _, tflm = mbqm_steps(acc, int(integer.multiplier[c]), int(integer.shift[c]),
                             integer.accumulator)
        if tflm != r:
            steps.append(Step(f"(TFLite Micro's MultiplyByQuantizedMultiplier gives {tflm} "
                              "here: a rounding tie between the two runtimes)", tflm))
    else:
        sub, r = mbqm_steps(acc, int(integer.multiplier[c]), int(integer.shift[c]),
                            integer.accumulator)
        steps.extend(sub)
    sub, q = clamp_steps(r, integer.output_zero_point, integer.act_min, integer.act_max)
    steps.extend(sub)
    return WorkedElement(out_t.index, out_t.name, at, tuple(steps), q, int(out[at]), exact=True)


EXPLAINERS = {"FULLY_CONNECTED": explain_fully_connected}
