"""RESHAPE, TRANSPOSE, STRIDED_SLICE, CONCATENATION, PAD and the other layout operators: which
input element each output element is a copy of.

Layout operators move stored values without arithmetic (quantized tensors keep their integers),
so the worked element is an index mapping: ``out[i] = in[f(i)]`` with ``f`` written out from the
prepared parameters (``tflite/kernels/reshape.cc``, ``transpose.cc``, ``strided_slice.cc``,
``concatenation.cc``, ``pad.cc``).  Other layout operators are traced by running their kernel on
an array that holds each input element's position.
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
    per_tensor,
    scalar,
    tensor_lines,
)

UPSTREAM = {
    "RESHAPE": ("tflite/kernels/reshape.cc", "tensorflow/lite/micro/kernels/reshape_common.cc"),
    "TRANSPOSE": ("tflite/kernels/transpose.cc",
                  "tensorflow/lite/kernels/internal/reference/transpose.h"),
    "STRIDED_SLICE": ("tflite/kernels/strided_slice.cc",
                      "tensorflow/lite/kernels/internal/reference/strided_slice.h"),
    "CONCATENATION": ("tflite/kernels/concatenation.cc",
                      "tensorflow/lite/kernels/internal/reference/concatenation.h"),
    "PAD": ("tflite/kernels/pad.cc", "tensorflow/lite/kernels/internal/reference/pad.h"),
}
# Input slots holding data (the others hold shapes, axes, paddings...).
_DATA_SLOTS = {"SPLIT": (1,), "CONCATENATION": None, "PACK": None}


def _quant_note(view: OpView) -> tuple[str, ...]:
    pin, pout = per_tensor(view.input(0)), per_tensor(view.output(0))
    if pin is not None and pout is not None and pin != pout:
        return ((f"Input and output quantization differ ({pin} vs {pout}) but the stored "
                "integers are copied unchanged: the real values change."),)
    return (("Values are copied unchanged (quantized tensors keep their integers and "
            "quantization)."),)


def _copy_element(view: OpView, at: tuple[int, ...], slot: int, src: tuple[int, ...],
                  how: str) -> WorkedElement:
    x = view.value(slot)
    out = view.out_value()
    assert x is not None and out is not None
    v = scalar(x[src]) if x.ndim else scalar(x)
    steps = [Step(how, f"input {slot} {list(src)}"), Step("copied value", v)]
    t = view.output(0)
    return WorkedElement(t.index, t.name, at, tuple(steps), v, scalar(out[at]), exact=True)


def explain_layout(view: OpView) -> Parts:
    d = view.data
    opcode = view.op.opcode
    sections = [tensor_lines(view)]
    lines: list[Line] = []
    numbers: dict[str, Any] = {}
    x = view.value(0)
    x_t = view.input(0)
    in_shape = tuple(x.shape) if x is not None else (x_t.shape if x_t is not None else ())
    formula = f"{opcode}: out[i] = in[f(i)] (a copy)"
    if opcode in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        shape = getattr(d, "output_shape", None)
        lines.append(Line("shape", f"{list(in_shape)} → "
                          f"{list(shape) if shape is not None else 'decided at run time'}",
                          "row-major order is kept: element k stays element k"))
        formula = "out.flat[k] = in.flat[k]"
    elif opcode == "TRANSPOSE":
        perm = d.perm
        lines.append(Line("perm", str(list(perm)) if perm is not None else "run time",
                          "output axis j is input axis perm[j]"))
        formula = "out[i_0, ..., i_r] = in[j] with j[perm[k]] = i_k"
    elif opcode == "STRIDED_SLICE" and d.plan is not None:
        begin_mask, end_mask, ellipsis, new_axis, shrink, offset = d.options
        lines.append(Line("masks", f"begin {begin_mask}, end {end_mask}, ellipsis {ellipsis}, "
                          f"new_axis {new_axis}, shrink {shrink}, offset {offset}"))
        for k, idx in enumerate(d.plan.index):
            if idx.size:
                step = int(idx[1] - idx[0]) if idx.size > 1 else 1
                lines.append(Line(f"axis {k}", f"{int(idx[0])}..{int(idx[-1])} step {step} "
                                               f"({idx.size} of {d.plan.view_shape[k]})",
                                  "StartForAxis / EndForAxis after clamping"))
        formula = "out[i] = in[start + i·stride] per axis"
    elif opcode == "CONCATENATION":
        lines.append(Line("axis", str(d.axis)))
        formula = "out = inputs side by side along axis"
    elif opcode in ("PAD", "PADV2") and d.pads is not None:
        lines.append(Line("paddings", str([list(p) for p in d.pads]), "(before, after) per axis"))
        fill = d.default_pad
        lines.append(Line("fill value", str(fill),
                          "the output zero point for quantized tensors (a real 0)"
                          if per_tensor(view.output(0)) is not None else ""))
        formula = "out[i] = in[i − before] inside, fill value outside"
    sections.append(Section("Mapping", tuple(lines), notes=_quant_note(view)))
    element = None
    if view.ran:
        out = view.out_value()
        assert out is not None
        if out.size:
            at = choose_element(out, view.output(0), view.at)
            element = _element(view, at, in_shape)
    return Parts(formula, UPSTREAM.get(opcode, (f"tflite/kernels/{opcode.lower()}.cc",)),
                 sections, element, None if element else view.not_run, numbers)


def _element(view: OpView, at: tuple[int, ...], in_shape: tuple[int, ...]
             ) -> WorkedElement | None:
    d = view.data
    opcode = view.op.opcode
    out = view.out_value()
    assert out is not None
    if opcode in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        k = int(np.ravel_multi_index(at, out.shape)) if out.ndim else 0
        src = tuple(int(i) for i in np.unravel_index(k, in_shape)) if in_shape else ()
        return _copy_element(view, at, 0, src, f"flat position {k} in both")
    if opcode == "TRANSPOSE" and d.perm is not None:
        src_l = [0] * len(at)
        for j, p in enumerate(d.perm):
            src_l[p] = at[j]
        return _copy_element(view, at, 0, tuple(src_l), f"input index j[perm[k]] = i_k, perm "
                                                         f"{list(d.perm)}")
    if opcode == "STRIDED_SLICE" and d.plan is not None:
        plan = d.plan
        grid = tuple(len(ix) for ix in plan.index)
        k = int(np.ravel_multi_index(at, out.shape)) if out.ndim else 0
        where = np.unravel_index(k, grid)
        view_idx = tuple(int(plan.index[a][int(p)]) for a, p in enumerate(where))
        flat = int(np.ravel_multi_index(view_idx, plan.view_shape)) if plan.view_shape else 0
        src = tuple(int(i) for i in np.unravel_index(flat, in_shape)) if in_shape else ()
        return _copy_element(view, at, 0, src, "start + position·stride on each axis")
    if opcode == "CONCATENATION" and all(r is None for r in d.rescale):
        pos = at[d.axis] if out.ndim else 0
        for slot in range(len(view.op.inputs)):
            v = view.value(slot)
            assert v is not None
            size = v.shape[d.axis] if v.ndim else 1
            if pos < size:
                src = tuple(pos if k == d.axis else a for k, a in enumerate(at))
                return _copy_element(view, at, slot, src if v.ndim else (),
                                     f"position {at[d.axis] if out.ndim else 0} along axis "
                                     f"{d.axis} falls in input {slot}")
            pos -= size
        return None
    if opcode in ("PAD", "PADV2") and d.pads is not None:
        src = tuple(a - lo for a, (lo, _hi) in zip(at, d.pads))
        if all(0 <= s < n for s, n in zip(src, in_shape)):
            return _copy_element(view, at, 0, src, "index − before on each axis")
        const = view.value(2) if len(view.op.inputs) > 2 and view.op.inputs[2] >= 0 else None
        fill = scalar(const.reshape(-1)[0]) if const is not None else d.default_pad
        steps = (Step(f"index − before = {list(src)} is outside the input", "padding"),
                 Step("fill value", fill))
        t = view.output(0)
        return WorkedElement(t.index, t.name, at, steps, fill, scalar(out[at]), exact=True)
    return _traced_element(view, at)


def _traced_element(view: OpView, at: tuple[int, ...]) -> WorkedElement | None:
    """Run the kernel on arrays holding each data element's (slot, position) code."""
    if view.kernel is None or view.inputs is None:
        return None
    slots = _DATA_SLOTS.get(view.op.opcode, (0,))
    data_slots = range(len(view.inputs)) if slots is None else slots
    args: list[Any] = list(view.inputs)
    base = 0
    spans = []
    for s in data_slots:
        v = view.inputs[s]
        if v is None:
            return None
        args[s] = (base + np.arange(v.size, dtype=np.int64)).reshape(v.shape)
        spans.append((s, base, v.shape))
        base += v.size
    try:
        res = view.kernel.eval(view.data, *args)
    except Exception:  # noqa: BLE001 - a kernel that insists on its dtype: no tracing
        return None
    res0 = np.asarray(res[0] if isinstance(res, (tuple, list)) else res)
    if res0.shape != view.outputs[0].shape or res0.dtype.kind not in "iu":  # type: ignore[index]
        return None
    code = int(res0[at])
    for s, start, shape in spans:
        if start <= code < start + int(np.prod(shape, dtype=np.int64)):
            src = tuple(int(i) for i in np.unravel_index(code - start, shape)) if shape else ()
            return _copy_element(view, at, s, src, "traced: the kernel run on element positions "
                                                   "puts this input element here")
    return None


EXPLAINERS = {op: explain_layout for op in (
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "STRIDED_SLICE", "SLICE", "CONCATENATION",
    "PAD", "PADV2", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "TILE", "BROADCAST_TO", "REVERSE_V2",
    "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "GATHER", "MIRROR_PAD")}
