"""CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV: scales → multipliers, padding, GEMM shapes, the
accumulator's reachable range, bias scale consistency, and one output element from its receptive
field.

Follows ``tensorflow/lite/kernels/internal/reference/integer_ops/conv.h`` (``ConvPerChannel``),
``.../integer_ops/depthwise_conv.h`` (``DepthwiseConvPerChannel``), ``tensorflow/lite/kernels/
padding.h`` and ``kernel_util.cc`` (``PopulateConvolutionQuantizationParams``), as the kernels in
:mod:`tflite_ref.kernels.conv` do; every multiplier, shift, padding and clamp shown is read from
their prepared op data.
"""

from __future__ import annotations

import math
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
    make_table,
    mbqm_steps,
    multiplier_real,
    per_tensor,
    sign,
    tensor_lines,
    terms_text,
)
from tflite_ref.kernels.conv import (
    Conv2DData,
    DepthwiseConv2DData,
    Requantization,
    TransposeConvData,
    Window,
)
from tflite_ref.model.model import Tensor
from tflite_ref.quant.fixedpoint import wrap_int32
from tflite_ref.quant.multipliers import conv_effective_scales, fc_per_tensor_effective_scale

UPSTREAM_CONV = (
    "tensorflow/lite/kernels/internal/reference/integer_ops/conv.h (ConvPerChannel)",
    "tensorflow/lite/kernels/internal/reference/conv.h (float, uint8)",
    "tensorflow/lite/kernels/padding.h (ComputePaddingWithOffset)",
    "tensorflow/lite/kernels/kernel_util.cc (PopulateConvolutionQuantizationParams)",
    "tensorflow/lite/kernels/internal/common.cc (MultiplyByQuantizedMultiplier)",
    "tensorflow/lite/micro/kernels/conv_common.cc",
)
UPSTREAM_DEPTHWISE = (
    ("tensorflow/lite/kernels/internal/reference/integer_ops/depthwise_conv.h "
    "(DepthwiseConvPerChannel)"),
    "tensorflow/lite/kernels/internal/reference/depthwiseconv_float.h",
    "tensorflow/lite/kernels/padding.h (ComputePaddingWithOffset)",
    "tensorflow/lite/kernels/kernel_util.cc (PopulateConvolutionQuantizationParams)",
    "tensorflow/lite/kernels/internal/common.cc (MultiplyByQuantizedMultiplier)",
    "tensorflow/lite/micro/kernels/depthwise_conv_common.cc",
)


# ------------------------------------------------------------------------------------------------
# Shared sections
# ------------------------------------------------------------------------------------------------
def geometry_section(win: Window, options: Any, padding: str) -> Section:
    """``padding.h`` written out with this operator's sizes (all values from the prepared
    :class:`Window`)."""
    lines = []
    for axis, size, k, s, d, out, pad in (
            ("height", win.in_h, win.kernel_h, win.stride_h, win.dilation_h, win.out_h,
             win.pad_top),
            ("width", win.in_w, win.kernel_w, win.stride_w, win.dilation_w, win.out_w,
             win.pad_left)):
        eff = (k - 1) * d + 1
        if padding == "SAME":
            how = f"SAME: ceil(in / stride) = ceil({size} / {s})"
        else:
            how = f"VALID: (in − eff_k + stride) / stride = ({size} − {eff} + {s}) / {s}"
        total = max((out - 1) * s + eff - size, 0)
        lines.append(Line(f"{axis}: output size", str(out), how))
        lines.append(Line(f"{axis}: padding", f"{pad} before, {total - pad} after",
                          f"total = max((out − 1)·stride + eff_k − in, 0) = max({out - 1}·{s} + "
                          f"{eff} − {size}, 0) = {total}; before = total / 2"
                          + (f"; eff_k = (k − 1)·dilation + 1 = {eff}" if d != 1 else "")))
    return Section("Geometry (padding.h)", tuple(lines),
                   notes=(("Taps that fall in the padding are skipped (the same as adding "
                          "x = z_in there: (x − z_in) = 0)."),))


def accumulator_bounds(w_int: np.ndarray, x_dtype: np.dtype, z_in: int, bias: np.ndarray | None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the smallest and largest ``Σ w·(x − z_in) + bias`` any input of the
    type can produce.  ``w_int``: (channels, taps)."""
    info = np.iinfo(x_dtype)
    a, b = int(info.min) - z_in, int(info.max) - z_in
    w = w_int.astype(np.int64)
    hi = np.maximum(w * a, w * b).sum(axis=1)
    lo = np.minimum(w * a, w * b).sum(axis=1)
    if bias is not None:
        bb = bias.astype(np.int64).reshape(-1)
        hi, lo = hi + bb, lo + bb
    return lo, hi


def accumulator_section(lo: np.ndarray, hi: np.ndarray, accumulator: str, taps: int
                        ) -> tuple[Section, dict[str, Any]]:
    worst = int(max(abs(int(lo.min())), abs(int(hi.max())), 1))
    limit = 2**31 - 1 if accumulator == "int32" else 2**63 - 1
    headroom = math.log2(limit / worst)
    lines = (
        Line("accumulator", f"{accumulator}, {taps} products per output + bias"),
        Line("reachable range", f"[{int(lo.min())}, {int(hi.max())}]",
             "over all channels, for any input: Σ max/min(w·(qmin − z_in), w·(qmax − z_in)) "
             "+ bias"),
        Line("headroom", f"{headroom:.1f} bits below the {accumulator} limit",
             f"log2({limit} / {worst})"),
    )
    notes = () if headroom > 0 else (
        "The accumulator can overflow: TFLite's int32 sum wraps around (two's complement).",)
    return Section("Accumulator", lines, notes=notes), {
        "accumulator": accumulator, "acc_min": [int(v) for v in lo], "acc_max": [int(v) for v in hi],
        "headroom_bits": headroom}


def channel_section(view: OpView, rq: Requantization, channels: int, x_t: Tensor, w_t: Tensor,
                    b_t: Tensor | None, out_t: Tensor, effective: np.ndarray,
                    lo: np.ndarray | None, hi: np.ndarray | None, keep: int
                    ) -> tuple[Section, dict[str, Any]]:
    """Per output channel: filter scale, effective scale, (multiplier, shift), what they stand
    for, and the bias scale against ``s_in·s_w[c]``."""
    s_in = float(x_t.quantization.scale[0]) if x_t.quantization else 0.0
    sw = np.broadcast_to(w_t.quantization.scale if w_t.quantization else np.zeros(1), (channels,))
    bq = b_t.quantization if b_t is not None else None
    bs = (np.broadcast_to(bq.scale, (channels,)) if bq is not None and bq.scale.size in
          (1, channels) else None)
    mult = rq.multiplier[:channels]
    shift = rq.shift[:channels]
    rows = []
    worst_bias = 0.0
    for c in range(channels):
        m, s = int(mult[c]), int(shift[c])
        real = float(effective[c])
        back = multiplier_real(m, s)
        prod = float(np.float32(s_in)) * float(np.float32(sw[c]))
        row = [str(c), g(float(sw[c]), 5), g(real, 7), str(m), str(s),
               f"{(back - real) / real:+.0e}" if real else "-"]
        if bs is not None:
            dev = (float(bs[c]) - prod) / prod if prod else 0.0
            worst_bias = max(worst_bias, abs(dev))
            row.append(f"{dev:+.0e}")
        if lo is not None and hi is not None:
            row.append(f"[{int(lo[c])},{int(hi[c])}]")
        rows.append(row)
    # err: m·2^(shift−31) against the real scale; bias: bias scale against s_in·s_w[c]
    cols = ["c", "s_w[c]", "scale", "m", "shift", "err"]
    if bs is not None:
        cols.append("bias")
    if lo is not None:
        cols.append("acc range")
    out_q = per_tensor(out_t)
    lines = [Line("input", f"s_in = {g(s_in)}, z_in = {int(x_t.quantization.zero_point[0])}"
                  if x_t.quantization else "not quantized"),
             Line("output", f"s_out = {g(out_q[0])}, z_out = {out_q[1]}" if out_q else "-"),
             Line("scale", "s_in · s_w[c] / s_out, in double",
                  "kernel_util.cc PopulateConvolutionQuantizationParams"),
             Line("m, shift", "QuantizeMultiplier(scale): m ∈ [2^30, 2^31), scale ≈ "
                  "m · 2^(shift − 31); err is that approximation's relative error",
                  "quantization_util.cc")]
    notes: list[str] = []
    if bs is not None:
        lines.append(Line("bias scale", f"within {worst_bias:.1e} of s_in·s_w[c] (column bias)",
                          "the kernel adds the int32 bias as if its scale were s_in·s_w[c]"))
        if worst_bias > 0.02:
            notes.append("The bias scale does not match s_in·s_w[c]: the kernel still adds the "
                         "bias integers unchanged, so the bias is silently rescaled.")
    numbers = {"input_scale": s_in, "filter_scales": [float(v) for v in sw],
               "effective_scales": [float(v) for v in effective[:channels]],
               "multipliers": [int(v) for v in mult], "shifts": [int(v) for v in shift],
               "bias_scale_max_deviation": worst_bias if bs is not None else None}
    return Section("Scales, multipliers and shifts (per output channel)", tuple(lines),
                   make_table(cols, rows, keep=(keep,)), tuple(notes)), numbers


def _effective_scales(x_t: Tensor, w_t: Tensor, out_t: Tensor, channels: int) -> np.ndarray:
    """The real numbers prepare quantized (the same helpers as kernels/conv.py)."""
    s_in = float(x_t.quantization.scale[0])  # type: ignore[union-attr]
    s_out = float(out_t.quantization.scale[0])  # type: ignore[union-attr]
    sw = w_t.quantization.scale  # type: ignore[union-attr]
    if x_t.type_name == "UINT8":
        return np.full(channels, fc_per_tensor_effective_scale(s_in, float(sw[0]), s_out))
    scales: np.ndarray = np.broadcast_to(conv_effective_scales(s_in, sw, s_out), (channels,)).copy()
    return scales



def _quantized_sections(view: OpView, data: Any, w_int: np.ndarray | None, taps: int, oc: int,
                        bias: np.ndarray | None, chosen: tuple[int, ...] | None,
                        sections: list[Any], numbers: dict[str, Any]) -> None:
    """The requantization part shared by CONV_2D and DEPTHWISE_CONV_2D: accumulator range and
    headroom (``w_int`` is the filter as (output channel, taps), zero-point offset applied), the
    per-channel multipliers, and the activation clamp."""
    x_t, w_t, b_t, out_t = view.input(0), view.input(1), view.input(2), view.output(0)
    assert x_t is not None and w_t is not None  # a quantized convolution has both
    rq: Requantization = data.requant
    lo = hi = None
    if w_int is not None and (bias is not None or b_t is None):
        assert x_t.dtype is not None
        lo, hi = accumulator_bounds(w_int, x_t.dtype, data.input_zero_point, bias)
        sec, nums = accumulator_section(lo, hi, rq.accumulator, taps)
        sections.append(sec)
        numbers.update(nums)
    eff = _effective_scales(x_t, w_t, out_t, oc)
    sec, nums = channel_section(view, rq, oc, x_t, w_t, b_t, out_t, eff, lo, hi,
                                chosen[3] if chosen else 0)
    sections.insert(1, sec)
    numbers.update(nums)
    sections.append(_activation_line(view, rq.act_min, rq.act_max))

def _activation_line(view: OpView, lo: float, hi: float) -> Section:
    act = view.op.options.get("fused_activation_function") or "NONE"
    return Section("Fused activation", (Line(act, f"clamp to [{g(lo)}, {g(hi)}]",
                                             "CalculateActivationRangeQuantized (kernel_util.cc)"
                                             if isinstance(lo, int) else
                                             "CalculateActivationRange (kernel_util.h)"),))


def _finish_integer(steps: list[Step], acc: int, rq: Requantization, c: int) -> int:
    sub, v = mbqm_steps(acc, int(rq.multiplier[c]), int(rq.shift[c]), rq.accumulator)
    steps.extend(sub)
    sub, v = clamp_steps(v, rq.output_zero_point, rq.act_min, rq.act_max)
    steps.extend(sub)
    return v


def _real_check(steps: list[Step], out_t: Tensor, q: int, real_sum: float) -> None:
    """The same element in real numbers: what the integer result stands for, next to the exact
    real result of this operation on the (quantized) inputs."""
    p = per_tensor(out_t)
    if p is None:
        return
    s, z = p
    steps.append(Step(f"real value: s_out·(q − z_out) = {g(s)}·({q} − {sign(z)})",
                      g(s * (q - z))))
    steps.append(Step("the exact real result on these (quantized) inputs, for comparison",
                      g(real_sum)))


# ------------------------------------------------------------------------------------------------
# CONV_2D
# ------------------------------------------------------------------------------------------------
@handles(Conv2DData)
def explain_conv_2d(view: OpView) -> Parts | None:
    if getattr(view.data, "hybrid", None) is not None:
        return None  # hybrid (float input, int8 filter): not written out; generic explanation
    data = view.data
    win: Window = data.window
    x_t, w_t, out_t = view.input(0), view.input(1), view.output(0)
    b_t = view.input(2)
    assert x_t is not None and w_t is not None
    oc, groups = data.out_channels, data.groups
    f_shape = w_t.shape
    cin_g = f_shape[3]
    n = x_t.shape[0]
    k = win.kernel_h * win.kernel_w * cin_g
    padding = str(view.op.options.get("padding", "SAME"))
    sections = [tensor_lines(view), geometry_section(win, view.op.options, padding),
                Section("im2col / GEMM", (
                    Line("GEMM", f"({n}·{win.out_h}·{win.out_w}, {k}) @ ({k}, {oc // groups})"
                         + (f" × {groups} groups" if groups > 1 else ""),
                         "rows: output pixels; columns: kh·kw·cin of one window"),
                    Line("MACs", f"{n * win.out_h * win.out_w * k * oc:,}")))]
    numbers: dict[str, Any] = {"padding": [win.pad_top, win.pad_left],
                               "output_hw": [win.out_h, win.out_w], "gemm_k": k}
    quantized = data.requant is not None
    formula = ("out[n,y,x,c] = clamp(MultiplyByQuantizedMultiplier(Σ_{ky,kx,i} w[c,ky,kx,i]·"
               "(in[n, y·sh − pad_t + ky·dh, x·sw − pad_l + kx·dw, i] − z_in) + bias[c], "
               "m[c], shift[c]) + z_out, act_min, act_max)" if quantized else
               "out[n,y,x,c] = clamp(Σ_{ky,kx,i} w[c,ky,kx,i]·in[n, y·sh − pad_t + ky·dh, "
               "x·sw − pad_l + kx·dw, i] + bias[c], act_min, act_max)")
    filt = view.value(1)
    bias = view.value(2) if b_t is not None else None
    element = None
    chosen: tuple[int, ...] | None = None
    if view.ran:
        chosen = choose_element(view.out_value(), out_t, view.at)  # type: ignore[arg-type]
    if quantized:
        w_int = (None if filt is None else
                 filt.astype(np.int64).reshape(oc, -1) + data.filter_offset)
        _quantized_sections(view, data, w_int, k, oc, bias, chosen, sections, numbers)
    else:
        sections.append(_activation_line(view, data.act_min, data.act_max))
    if chosen is not None:
        element = _conv_element(view, chosen, quantized)
    return Parts(formula, UPSTREAM_CONV, sections, element,
                 None if element else view.not_run, numbers)


def _tap_position(win: Window, oy: int, ox: int, ky: int, kx: int) -> tuple[int, int]:
    return (oy * win.stride_h - win.pad_top + ky * win.dilation_h,
            ox * win.stride_w - win.pad_left + kx * win.dilation_w)


def _conv_element(view: OpView, at: tuple[int, ...], quantized: bool) -> WorkedElement:
    data = view.data
    win: Window = data.window
    x = view.value(0)
    filt = view.value(1)
    bias = view.value(2)
    out = view.out_value()
    assert x is not None and filt is not None and out is not None
    n, oy, ox, c = at
    cin_g = filt.shape[3]
    group = c // (data.out_channels // data.groups)
    z_in, f_off = data.input_zero_point, data.filter_offset
    total: Any = 0
    real_sum = 0.0
    terms: list[str] = []
    inside = skipped = 0
    rows, cols = set(), set()
    s_in = s_w = None
    if quantized:
        s_in = float(view.input(0).quantization.scale[0])  # type: ignore[union-attr]
        sw_all = view.input(1).quantization.scale  # type: ignore[union-attr]
        s_w = float(sw_all[c] if sw_all.size > 1 else sw_all[0])
    for ky in range(win.kernel_h):
        for kx in range(win.kernel_w):
            iy, ix = _tap_position(win, oy, ox, ky, kx)
            if not (0 <= iy < win.in_h and 0 <= ix < win.in_w):
                skipped += cin_g
                continue
            rows.add(iy)
            cols.add(ix)
            for i in range(cin_g):
                xv = x[n, iy, ix, group * cin_g + i]
                wv = filt[c, ky, kx, i]
                inside += 1
                if quantized:
                    wq, xq = int(wv) + f_off, int(xv) - z_in
                    total += wq * xq
                    if len(terms) < 4:
                        terms.append(f"{sign(wq)}·({int(xv)} − {sign(z_in)})")
                else:
                    total += float(wv) * float(xv)
                    if len(terms) < 4:
                        terms.append(f"{float(wv):.4g}·{float(xv):.4g}")
    field_text = (f"rows {min(rows)}..{max(rows)}, columns {min(cols)}..{max(cols)} of the input"
                  if rows else "entirely in the padding")
    steps = [Step(f"receptive field of output [{n}, {oy}, {ox}, {c}]: {field_text}; "
                  f"{inside} products inside the image, {skipped} in the padding (skipped)",
                  "-")]
    w_name = "(w − z_w)" if f_off else "w"
    if quantized:
        real_sum = s_in * s_w * total  # type: ignore[operator]
        steps.append(Step(f"Σ {w_name}·(x − z_in) = {terms_text(terms, inside)}", total))
        acc = total
        if bias is not None:
            acc = total + int(bias.reshape(-1)[c])
            real_sum += s_in * s_w * int(bias.reshape(-1)[c])  # type: ignore[operator]
            steps.append(Step(f"acc = Σ + bias[{c}] ({int(bias.reshape(-1)[c])})", acc))
        if data.requant.accumulator == "int32" and acc != int(wrap_int32(acc)):
            acc = int(wrap_int32(acc))
            steps.append(Step("acc wraps around in int32 (two's complement)", acc))
        q = _finish_integer(steps, acc, data.requant, c)
        _real_check(steps, view.output(0), q, real_sum)
        return WorkedElement(view.output(0).index, view.output(0).name, at, tuple(steps), q,
                             int(out[at]), exact=True)
    steps.append(Step(f"Σ w·x = {terms_text(terms, inside)}", float(total)))
    if bias is not None:
        total += float(bias.reshape(-1)[c])
        steps.append(Step(f"+ bias[{c}]", float(total)))
    v = float(np.float32(min(max(total, data.act_min), data.act_max)))
    steps.append(Step(f"clamp to [{g(data.act_min)}, {g(data.act_max)}], round to float32", v))
    return WorkedElement(view.output(0).index, view.output(0).name, at, tuple(steps), v,
                         float(out[at]), exact=False, tolerance=_float_tol(x, filt, bias))


def _float_tol(*arrays: np.ndarray | None) -> float:
    """A bound for float32 summation-order differences: a few ulps of the magnitudes summed."""
    mag = sum(float(np.abs(a).max()) if a is not None and a.size else 0.0 for a in arrays)
    return 1e-4 * max(mag, 1.0)


# ------------------------------------------------------------------------------------------------
# DEPTHWISE_CONV_2D
# ------------------------------------------------------------------------------------------------
@handles(DepthwiseConv2DData)
def explain_depthwise_conv_2d(view: OpView) -> Parts | None:
    if getattr(view.data, "hybrid", None) is not None:
        return None  # hybrid (float input, int8 filter): not written out; generic explanation
    data = view.data
    win: Window = data.window
    x_t, w_t, out_t, b_t = view.input(0), view.input(1), view.output(0), view.input(2)
    assert x_t is not None and w_t is not None
    oc, mult = data.out_channels, data.depth_multiplier
    padding = str(view.op.options.get("padding", "SAME"))
    taps = win.kernel_h * win.kernel_w
    sections = [tensor_lines(view), geometry_section(win, view.op.options, padding),
                Section("Channels", (
                    Line("depth multiplier", str(mult),
                         "output channel oc = ic·M + m reads input channel ic = oc / M"),
                    Line("products per output", f"{taps} (kh·kw, one input channel)"),
                    Line("MACs", f"{x_t.shape[0] * win.out_h * win.out_w * taps * oc:,}"),
                    Line("evaluation strategy", data.method,
                         "how tflite_ref sums the taps (exact either way)")))]
    numbers: dict[str, Any] = {"padding": [win.pad_top, win.pad_left],
                               "output_hw": [win.out_h, win.out_w], "depth_multiplier": mult}
    quantized = data.requant is not None
    formula = ("out[n,y,x,oc] = clamp(MultiplyByQuantizedMultiplier(Σ_{ky,kx} w[0,ky,kx,oc]·"
               "(in[n, y·sh − pad_t + ky·dh, x·sw − pad_l + kx·dw, oc / M] − z_in) + bias[oc], "
               "m[oc], shift[oc]) + z_out, act_min, act_max)" if quantized else
               "out[n,y,x,oc] = clamp(Σ_{ky,kx} w[0,ky,kx,oc]·in[n, y·sh − pad_t + ky·dh, "
               "x·sw − pad_l + kx·dw, oc / M] + bias[oc], act_min, act_max)")
    filt, bias = view.value(1), (view.value(2) if b_t is not None else None)
    chosen = choose_element(view.out_value(), out_t, view.at) if view.ran else None  # type: ignore[arg-type]
    if quantized:
        w_int = (None if filt is None else
                 filt.astype(np.int64).reshape(-1, oc).T + data.filter_offset)
        _quantized_sections(view, data, w_int, taps, oc, bias, chosen, sections, numbers)
    else:
        sections.append(_activation_line(view, data.act_min, data.act_max))
    element = _depthwise_element(view, chosen, quantized) if chosen is not None else None
    return Parts(formula, UPSTREAM_DEPTHWISE, sections, element,
                 None if element else view.not_run, numbers)


def _depthwise_element(view: OpView, at: tuple[int, ...], quantized: bool) -> WorkedElement:
    data = view.data
    win: Window = data.window
    x, filt, bias, out = view.value(0), view.value(1), view.value(2), view.out_value()
    assert x is not None and filt is not None and out is not None
    n, oy, ox, oc = at
    ic = oc // data.depth_multiplier
    z_in, f_off = data.input_zero_point, data.filter_offset
    total: Any = 0
    terms: list[str] = []
    inside = skipped = 0
    for ky in range(win.kernel_h):
        for kx in range(win.kernel_w):
            iy, ix = _tap_position(win, oy, ox, ky, kx)
            if not (0 <= iy < win.in_h and 0 <= ix < win.in_w):
                skipped += 1
                continue
            inside += 1
            xv, wv = x[n, iy, ix, ic], filt[0, ky, kx, oc]
            if quantized:
                wq, xq = int(wv) + f_off, int(xv) - z_in
                total += wq * xq
                if len(terms) < 4:
                    terms.append(f"{sign(wq)}·({int(xv)} − {sign(z_in)})")
            else:
                total += float(wv) * float(xv)
                if len(terms) < 4:
                    terms.append(f"{float(wv):.4g}·{float(xv):.4g}")
    steps = [Step(f"output [{n}, {oy}, {ox}, {oc}] reads input channel {ic} = {oc} / "
                  f"{data.depth_multiplier}; {inside} taps inside the image, {skipped} in the "
                  "padding (skipped)", "-")]
    if quantized:
        steps.append(Step(f"Σ w·(x − z_in) = {terms_text(terms, inside)}", total))
        acc = total
        if bias is not None:
            acc += int(bias.reshape(-1)[oc])
            steps.append(Step(f"acc = Σ + bias[{oc}] ({int(bias.reshape(-1)[oc])})", acc))
        if data.requant.accumulator == "int32" and acc != int(wrap_int32(acc)):
            acc = int(wrap_int32(acc))
            steps.append(Step("acc wraps around in int32 (two's complement)", acc))
        q = _finish_integer(steps, acc, data.requant, oc)
        return WorkedElement(view.output(0).index, view.output(0).name, at, tuple(steps), q,
                             int(out[at]), exact=True)
    steps.append(Step(f"Σ w·x = {terms_text(terms, inside)}", float(total)))
    if bias is not None:
        total += float(bias.reshape(-1)[oc])
        steps.append(Step(f"+ bias[{oc}]", float(total)))
    v = float(np.float32(min(max(total, data.act_min), data.act_max)))
    steps.append(Step(f"clamp to [{g(data.act_min)}, {g(data.act_max)}], round to float32", v))
    return WorkedElement(view.output(0).index, view.output(0).name, at, tuple(steps), v,
                         float(out[at]), exact=False, tolerance=_float_tol(x, filt, bias))


# ------------------------------------------------------------------------------------------------
# TRANSPOSE_CONV
# ------------------------------------------------------------------------------------------------
@handles(TransposeConvData)
def explain_transpose_conv(view: OpView) -> Parts:
    data = view.data
    sections = [tensor_lines(view)]
    lines = [Line("stride", f"{data.stride_h}x{data.stride_w}"),
             Line("filter", f"{data.kernel_h}x{data.kernel_w}, {data.out_channels} channels"),
             Line("padding", data.padding)]
    if data.geometry is not None:
        geo = data.geometry
        lines.append(Line("crop", f"top {geo.pad_top}, left {geo.pad_left}",
                          "padding.h on the output size: the scatter result is cropped by it"))
    sections.append(Section("Geometry (transpose_conv.cc)", tuple(lines)))
    numbers: dict[str, Any] = {}
    if data.requant is not None:
        rq = data.requant
        numbers = {"multipliers": [int(v) for v in rq.multiplier[:data.out_channels]],
                   "shifts": [int(v) for v in rq.shift[:data.out_channels]]}
        rows = [[str(c), str(int(rq.multiplier[c])), str(int(rq.shift[c])),
                 g(multiplier_real(int(rq.multiplier[c]), int(rq.shift[c])))]
                for c in range(data.out_channels)]
        sections.append(Section("Multipliers", table=make_table(
            ("c", "multiplier", "shift", "scale"), rows)))
    return Parts("out = clamp(MBQM(scatter-add of w·(x − z_in) over the taps, cropped, + bias, "
                 "m[c], shift[c]) + z_out)",
                 ("tensorflow/lite/kernels/internal/reference/integer_ops/transpose_conv.h",
                  "tensorflow/lite/kernels/transpose_conv.cc"),
                 sections, None, "TRANSPOSE_CONV is explained by its parameters only: every "
                 "output gathers taps from several inputs (the scatter), which is not written "
                 "out step by step yet.", numbers)


EXPLAINERS = {
    "CONV_2D": explain_conv_2d,
    "DEPTHWISE_CONV_2D": explain_depthwise_conv_2d,
    "TRANSPOSE_CONV": explain_transpose_conv,
}
