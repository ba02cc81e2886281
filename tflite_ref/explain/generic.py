"""Operators without a family explanation, and operators tflite_ref cannot run.

``explain_generic`` shows the operands and every field of the prepared op data (what the
kernel's prepare decided), and the chosen output element's value; ``explain_unsupported`` shows
what the file holds (operands, options, custom options) and why the operator cannot run.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tflite_ref.explain.base import (
    Line,
    OpView,
    Parts,
    Section,
    choose_element,
    tensor_lines,
)

_MAX_FIELDS = 24


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        flat = value.reshape(-1)
        head = ", ".join(str(v) for v in flat[:6].tolist())
        more = ", …" if flat.size > 6 else ""
        return f"{value.dtype} {list(value.shape)}: [{head}{more}]"
    if isinstance(value, (tuple, list)) and len(value) > 8:
        return f"{type(value).__name__} of {len(value)}: {str(list(value[:8]))[:-1]}, …]"
    text = repr(value)
    return text if len(text) <= 100 else text[:99] + "…"


def data_section(data: Any, title: str = "Prepared op data") -> Section:
    """Every field of the op data dataclass (nested dataclasses one level down)."""
    lines: list[Line] = []
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        for f in dataclasses.fields(data):
            value = getattr(data, f.name)
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                for sub in dataclasses.fields(value):
                    lines.append(Line(f"{f.name}.{sub.name}", _short(getattr(value, sub.name))))
            else:
                lines.append(Line(f.name, _short(value)))
    elif data is not None:
        lines.append(Line("data", _short(data)))
    name = type(data).__name__ if data is not None else "none"
    return Section(f"{title} ({name})", tuple(lines[:_MAX_FIELDS]),
                   notes=(f"{len(lines) - _MAX_FIELDS} more fields in --json",)
                   if len(lines) > _MAX_FIELDS else ())


def explain_generic(view: OpView) -> Parts:
    sections = [tensor_lines(view), data_section(view.data)]
    opts = dict(view.op.options)
    if opts:
        sections.insert(1, Section("Options", tuple(Line(k, str(v)) for k, v in opts.items())))
    no_element = view.not_run or (f"No step-by-step arithmetic is written for {view.op.opcode} "
                                  "yet; the prepared data above is what its kernel uses.")
    if view.ran and view.outputs:
        out = view.outputs[0]
        if out.size:
            at = choose_element(out, view.output(0), view.at)
            no_element += f" Output element {list(at)} is {out[at]!r}."
    return Parts(f"{view.op.opcode}: see the kernel's docstring", (), sections, None, no_element)


def explain_unsupported(view: OpView, reason: str) -> Parts:
    sections = [tensor_lines(view)]
    opts = dict(view.op.options)
    if opts:
        sections.append(Section("Options", tuple(Line(k, str(v)) for k, v in opts.items())))
    if view.op.custom_code is not None:
        decoded = view.op.custom_options_decoded
        raw = view.op.custom_options or b""
        sections.append(Section("Custom operator", (
            Line("custom code", view.op.custom_code),
            Line("custom options", _short(decoded) if decoded is not None
                 else f"{len(raw)} bytes (not a FlexBuffer)"),
        )))
    return Parts(f"{view.op.opcode}: no kernel in tflite_ref", (), sections, None,
                 f"Not run: {reason}")


EXPLAINERS: dict[str, Any] = {}
