"""The result types of ``explain`` and the helpers every op family's explanation shares.

An :class:`Explanation` is text with numbers in it -- the formula of the kernel, filled in with this
model's scales, multipliers, shifts and shapes -- plus one :class:`WorkedElement`: an output
element recomputed step by step in plain Python integers (or floats) from the operator's real
input values, next to the value the interpreter produced.  The numbers come from the operator's
prepared op data (the same ``prepare_*`` the interpreter ran), never from a second derivation.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_ref.kernels.registry import Kernel
from tflite_ref.model.model import Model, Operator, Subgraph, Tensor
from tflite_ref.quant.fixedpoint import (
    multiply_by_quantized_multiplier_int64,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)

MAX_TABLE_ROWS = 8  # per-channel tables: rows shown (JSON has all of them in ``numbers``)
MAX_TERMS = 4  # products written out in a sum before "…"


# ------------------------------------------------------------------------------------------------
# Result types
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Line:
    """``label: value``, with the formula that produced the value (in the kernel's terms)."""

    label: str
    value: str
    formula: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    total_rows: int  # rows before truncation to MAX_TABLE_ROWS


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    lines: tuple[Line, ...] = ()
    table: Table | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the worked element: what is computed, and its value."""

    text: str
    value: int | float | str


@dataclass(frozen=True, slots=True)
class WorkedElement:
    """An output element recomputed step by step, next to the interpreter's value.

    ``exact``: integer arithmetic, compared bit for bit.  Float kernels sum in another order
    than this walk-through, so they compare within ``tolerance``.
    """

    tensor: int
    tensor_name: str
    index: tuple[int, ...]
    steps: tuple[Step, ...]
    computed: int | float
    interpreter: int | float
    exact: bool
    tolerance: float = 0.0

    @property
    def matches(self) -> bool:
        if self.exact:
            return self.computed == self.interpreter
        a, b = float(self.computed), float(self.interpreter)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= self.tolerance


@dataclass(frozen=True, slots=True)
class Explanation:
    """What ``tflite-ref explain MODEL --op N`` shows (see :func:`tflite_ref.explain.explain`)."""

    model: str
    subgraph: int
    operator: int
    opcode: str
    version: int
    dtype: str  # type of the first output: the kernel registry's key
    family: str  # which explanation module wrote it ("conv", "elementwise", ...)
    emulate: str
    kernel: str | None  # "conv_2d_quantized (tflite_ref.kernels.conv)"
    mirrors: str  # the first line of the kernel's docstring: the TFLite function it follows
    formula: str  # the computation in one or two lines
    upstream: tuple[str, ...]  # the TFLite / TFLM files the formula follows
    sections: tuple[Section, ...]
    element: WorkedElement | None
    no_element: str | None  # why there is no worked element, when there is none
    unsupported: str | None  # why the operator (or the model) cannot run in tflite_ref
    numbers: Mapping[str, Any] = field(default_factory=dict)  # the raw numbers, for JSON

    def to_dict(self) -> dict[str, Any]:
        from tflite_ref.inspect import jsonable

        e = self.element
        out = {
            "model": self.model, "subgraph": self.subgraph, "operator": self.operator,
            "opcode": self.opcode, "version": self.version, "dtype": self.dtype,
            "family": self.family, "emulate": self.emulate, "kernel": self.kernel,
            "mirrors": self.mirrors, "formula": self.formula, "upstream": list(self.upstream),
            "sections": [{"title": s.title,
                          "lines": [{"label": ln.label, "value": ln.value,
                                     "formula": ln.formula} for ln in s.lines],
                          "table": None if s.table is None else {
                              "columns": list(s.table.columns),
                              "rows": [list(r) for r in s.table.rows],
                              "total_rows": s.table.total_rows},
                          "notes": list(s.notes)} for s in self.sections],
            "element": None if e is None else {
                "tensor": e.tensor, "tensor_name": e.tensor_name, "index": list(e.index),
                "steps": [{"text": st.text, "value": st.value} for st in e.steps],
                "computed": e.computed, "interpreter": e.interpreter, "exact": e.exact,
                "tolerance": e.tolerance, "matches": e.matches},
            "no_element": self.no_element, "unsupported": self.unsupported,
            "numbers": dict(self.numbers),
        }
        result: dict[str, Any] = jsonable(out)
        return result

    def _repr_html_(self) -> str:
        return explanation_html(self)


@dataclass
class Parts:
    """What a family's explainer returns; :func:`tflite_ref.explain.explain` adds the header."""

    formula: str
    upstream: tuple[str, ...]
    sections: list[Section]
    element: WorkedElement | None = None
    no_element: str | None = None
    numbers: dict[str, Any] = field(default_factory=dict)


ExplainFn = Callable[["OpView"], "Parts | None"]


def handles(*data_types: type) -> Callable[[ExplainFn], ExplainFn]:
    """Declare the op data classes an explainer is written for.  Given another one (a kernel
    variant added later, e.g. a hybrid path) the explainer returns None and the operator gets the
    generic explanation instead of a wrong one."""

    def deco(fn: ExplainFn) -> ExplainFn:
        def wrapper(view: OpView) -> Parts | None:
            if not isinstance(view.data, data_types):
                return None
            return fn(view)

        wrapper.__name__ = fn.__name__
        wrapper.__doc__ = fn.__doc__
        return wrapper

    return deco


# ------------------------------------------------------------------------------------------------
# What an explainer sees
# ------------------------------------------------------------------------------------------------
@dataclass
class OpView:
    """One operator with its prepared op data and, when the model ran, its input/output values."""

    model: Model
    subgraph: Subgraph
    op: Operator
    emulate: str
    kernel: Kernel | None
    data: Any  # the OpData the kernel's prepare returned (None when it could not prepare)
    inputs: list[np.ndarray | None] | None  # None: the model did not run
    outputs: list[np.ndarray] | None
    at: tuple[int, ...] | None  # the output element asked for (None: choose one)
    not_run: str | None = None  # why there are no values

    def input(self, i: int) -> Tensor | None:
        if i >= len(self.op.inputs) or self.op.inputs[i] < 0:
            return None
        return self.subgraph.tensors[self.op.inputs[i]]

    def output(self, j: int = 0) -> Tensor:
        return self.subgraph.tensors[self.op.outputs[j]]

    def value(self, i: int) -> np.ndarray | None:
        """Input ``i``'s value in this run, or its constant data when the model did not run."""
        if self.inputs is not None and i < len(self.inputs):
            return self.inputs[i]
        t = self.input(i)
        return None if t is None else t.data

    def out_value(self, j: int = 0) -> np.ndarray | None:
        return None if self.outputs is None else self.outputs[j]

    @property
    def ran(self) -> bool:
        return self.outputs is not None


# ------------------------------------------------------------------------------------------------
# Formatting
# ------------------------------------------------------------------------------------------------
def g(x: float, digits: int = 6) -> str:
    """A real number, short: ``0.0235294``, ``1.2e-05``."""
    return f"{x:.{digits}g}"


def qtext(t: Tensor | None) -> str:
    """``scale 0.0235 zero point -128`` / ``64 scales (axis 0)`` / ``not quantized``."""
    if t is None:
        return "absent"
    q = t.quantization
    if q is None or not q.is_quantized:
        return "not quantized"
    if q.scale.size == 1:
        return f"scale {g(float(q.scale[0]))}, zero point {int(q.zero_point[0])}"
    return (f"{q.scale.size} scales along axis {q.quantized_dimension} "
            f"({g(float(q.scale.min()), 4)} .. {g(float(q.scale.max()), 4)})")


def per_tensor(t: Tensor | None) -> tuple[float, int] | None:
    """``(scale, zero_point)`` of a tensor with one scale, else None."""
    if t is None or t.quantization is None or t.quantization.scale.size != 1:
        return None
    return float(t.quantization.scale[0]), int(t.quantization.zero_point[0])


def tensor_lines(view: OpView, roles: Sequence[tuple[str, int]] | None = None) -> Section:
    """The operands with dtype, shape and quantization."""
    rows = []
    slots = roles or ([(f"input {i}", i) for i in range(len(view.op.inputs))]
                      + [(f"output {j}", -1 - j) for j in range(len(view.op.outputs))])
    for role, k in slots:
        t = view.input(k) if k >= 0 else view.output(-1 - k)
        if t is None:
            rows.append(Line(role, "absent (optional input -1)"))
            continue
        const = ", constant" if t.is_constant else ""
        rows.append(Line(role, f"tensor {t.index} {short(t.name)!r}: {t.type_name} "
                               f"{list(t.shape)}{const}; {qtext(t)}"))
    return Section("Operands", tuple(rows))


def short(name: str, width: int = 60) -> str:
    """Converter-fused names (``a/Relu;a/BiasAdd;...``) keep their first part."""
    if ";" in name:
        name = name.split(";", 1)[0] + ";…"
    return name if len(name) <= width else name[: width - 1] + "…"


def make_table(columns: Sequence[str], rows: Sequence[Sequence[str]], keep: Sequence[int] = ()
               ) -> Table:
    """The first MAX_TABLE_ROWS rows, plus the rows in ``keep`` (e.g. the worked channel)."""
    shown = [k for k in range(len(rows)) if k < MAX_TABLE_ROWS or k in keep]
    return Table(tuple(columns), tuple(tuple(rows[k]) for k in shown), len(rows))


def terms_text(terms: Sequence[str], total: int) -> str:
    head = " + ".join(terms[:MAX_TERMS])
    return head + (f" + … ({total} terms)" if total > MAX_TERMS else "")


def sign(v: int) -> str:
    return f"({v})" if v < 0 else str(v)


# ------------------------------------------------------------------------------------------------
# Shared arithmetic, step by step
# ------------------------------------------------------------------------------------------------
def mbqm_steps(acc: int, multiplier: int, shift: int, accumulator: str = "int32"
               ) -> tuple[list[Step], int]:
    """``MultiplyByQuantizedMultiplier(acc, m, shift)`` (common.cc), written out.

    int32 overload, double rounding (the TFLM and pip-LiteRT build):
    ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc · 2^left, m), right)``.
    int64 overload (16x8 kernels): the multiplier cut to 15 bits,
    ``(acc · reduced + 2^(total−1)) >> total`` with ``total = 15 − shift``.
    """
    steps: list[Step] = []
    if accumulator == "int64":
        reduced = (multiplier + (1 << 15)) >> 16 if multiplier < 0x7FFF0000 else 0x7FFF
        total = 15 - shift
        r = int(multiply_by_quantized_multiplier_int64(acc, multiplier, shift))
        steps.append(Step(f"int64 MultiplyByQuantizedMultiplier: reduced m = (m + 2^15) >> 16 = "
                          f"{reduced}; (acc·{reduced} + 2^{total - 1}) >> {total}", r))
        return steps, r
    left, right = max(shift, 0), max(-shift, 0)
    steps.append(Step(f"multiplier m = {multiplier}, shift = {shift}: left shift {left}, right "
                      f"shift {right} (m·2^(shift−31) = {g(multiplier_real(multiplier, shift))})",
                      "-"))
    x = acc
    if left:
        x = int(wrap_int32(acc * (1 << left)))
        steps.append(Step(f"acc · 2^{left} (left shift, int32)", x))
    hi = int(saturating_rounding_doubling_high_mul(x, multiplier))
    steps.append(Step(f"SaturatingRoundingDoublingHighMul(x, {multiplier}) = "
                      f"(x·{multiplier} + 2^30) >> 31", hi))
    r = int(rounding_divide_by_pot(hi, right)) if right else hi
    if right:
        steps.append(Step(f"RoundingDivideByPOT(·, {right}): ÷ 2^{right}, half away from zero", r))
    return steps, r


def clamp_steps(v: int, zero_point: int, lo: float, hi: float,
                add_zero_point: bool = True) -> tuple[list[Step], int]:
    steps = []
    if add_zero_point:
        v = int(wrap_int32(v + zero_point))
        steps.append(Step(f"+ output zero point {zero_point}", v))
    c = int(min(max(v, lo), hi))
    steps.append(Step(f"clamp to [{int(lo)}, {int(hi)}] (type range ∩ fused activation)", c))
    return steps, c


def multiplier_real(m: int, shift: int) -> float:
    """The real number a (multiplier, shift) pair stands for: ``m · 2^(shift − 31)``."""
    return math.ldexp(float(m), int(shift) - 31)


def choose_element(out: np.ndarray, t: Tensor, at: tuple[int, ...] | None) -> tuple[int, ...]:
    """The element to work through: ``at`` when given; else the first element strictly inside
    the type's range and away from the zero point (an unremarkable element teaches more than a
    clipped one), else the first element."""
    from tflite_ref.errors import UsageError

    if at is not None:
        if len(at) != out.ndim or any(not 0 <= a < d for a, d in zip(at, out.shape)):
            raise UsageError(f"--at {','.join(map(str, at))} is not an index of output "
                             f"{t.index} {t.name!r} of shape {list(out.shape)}")
        return tuple(int(a) for a in at)
    if out.size == 0:
        raise UsageError(f"output {t.index} {t.name!r} is empty: no element to work through")
    flat = out.reshape(-1)
    if flat.dtype.kind in "iu":
        info = np.iinfo(flat.dtype)
        q = t.quantization
        z = int(q.zero_point[0]) if q is not None and q.zero_point.size else 0
        good = (flat > info.min) & (flat < info.max) & (flat != z)
    elif flat.dtype.kind == "f":
        good = np.isfinite(flat) & (flat != 0)
    else:
        good = np.ones(flat.shape, bool)
    # Of the candidates, the one nearest the middle: for images a pixel whose window lies inside
    # the image, for vectors an ordinary unit.
    candidates = np.flatnonzero(good)
    middle = flat.size // 2
    k = int(candidates[np.argmin(np.abs(candidates - middle))]) if candidates.size else 0
    return tuple(int(i) for i in np.unravel_index(k, out.shape))


def broadcast_index(index: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The element of an input of ``shape`` that numpy-style broadcasting pairs with ``index``
    of the output (TFLite's ``NdArrayDescsForElementwiseBroadcast``)."""
    lead = len(index) - len(shape)
    return tuple(0 if d == 1 else index[lead + k] for k, d in enumerate(shape))


def scalar(v: Any) -> int | float:
    return float(v) if isinstance(v, (float, np.floating)) else int(v)


# ------------------------------------------------------------------------------------------------
# HTML (Jupyter)
# ------------------------------------------------------------------------------------------------
def explanation_html(e: Explanation) -> str:
    esc = html.escape
    parts = [(f"<div><h4>subgraph {e.subgraph}, operator {e.operator}: {esc(e.opcode)} "
             f"({esc(e.dtype)})</h4><p><code>{esc(e.formula)}</code></p>")]
    if e.unsupported:
        parts.append(f"<p style='color:#b00'>{esc(e.unsupported)}</p>")
    for s in e.sections:
        parts.append(f"<b>{esc(s.title)}</b><table>")
        for ln in s.lines:
            parts.append(f"<tr><td>{esc(ln.label)}</td><td>{esc(ln.value)}</td>"
                         f"<td style='color:#666'>{esc(ln.formula)}</td></tr>")
        parts.append("</table>")
        if s.table is not None:
            parts.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in s.table.columns)
                         + "</tr>" + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r)
                                             + "</tr>" for r in s.table.rows) + "</table>")
    if e.element is not None:
        el = e.element
        parts.append(f"<b>Output {list(el.index)} step by step</b><ol>")
        parts.extend(f"<li>{esc(st.text)} = <b>{esc(str(st.value))}</b></li>" for st in el.steps)
        verdict = "matches" if el.matches else "DIFFERS FROM"
        parts.append(f"</ol><p>{el.computed} {verdict} the interpreter's {el.interpreter}</p>")
    elif e.no_element:
        parts.append(f"<p>{esc(e.no_element)}</p>")
    parts.append("<p style='color:#666'>Follows " + esc(", ".join(e.upstream)) + "</p></div>")
    return "".join(parts)
