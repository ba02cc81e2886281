"""``explain``: one operator's computation written out with this model's actual numbers.

    from tflite_ref.explain import explain
    e = explain("model.tflite", op=3)          # an Explanation (plain dataclasses)
    e.element.computed == e.element.interpreter

The operator's prepared op data -- multipliers, shifts, padding, clamps, tables -- is taken from
the interpreter that runs the model (the same ``prepare_*`` call), then the model runs up to the
operator and one output element is recomputed step by step from its real inputs, in plain Python
integers, to be set beside the interpreter's value.  When the model cannot run in tflite_ref
(an operator without a kernel), the operator is prepared on its own from the shapes stored in the
file and explained without values; when the operator itself has no kernel, the explanation says
so and shows what the file holds.

One module per op family writes the explanations (``EXPLAINERS``: opcode -> function); every other
operator gets :func:`tflite_ref.explain.generic.explain_generic` (its operands and prepared data).
"""

from __future__ import annotations

import inspect as _inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tflite_ref.errors import TFLiteRefError, UnsupportedOpError, UsageError
from tflite_ref.explain import (
    activations,
    conv,
    elementwise,
    fully_connected,
    generic,
    layout,
    pooling,
    quantize,
    recurrent,
    reduce,
)
from tflite_ref.explain.base import Explanation, OpView, Parts, Section, Step, WorkedElement
from tflite_ref.interpreter import Interpreter
from tflite_ref.kernels.registry import Kernel, OpContext, key_dtype, lookup
from tflite_ref.model.model import Model, Operator
from tflite_ref.trace import as_model, prepared_interpreter

Explainer = Callable[[OpView], "Parts | None"]

# Imported explicitly, one module per family (style guide: no scanning of globals()).
_FAMILIES = {
    "conv": conv, "fully_connected": fully_connected, "elementwise": elementwise,
    "pooling": pooling, "activations": activations, "quantize": quantize, "reduce": reduce,
    "layout": layout, "recurrent": recurrent,
}
EXPLAINERS: dict[str, tuple[str, Explainer]] = {
    opcode: (family, fn) for family, module in _FAMILIES.items()
    for opcode, fn in module.EXPLAINERS.items()
}


def family_of(opcode: str) -> str:
    """The family module that explains ``opcode`` (``"generic"`` when none has it)."""
    if opcode.startswith("CUSTOM"):
        return "custom"
    return EXPLAINERS.get(opcode, ("generic", generic.explain_generic))[0]


class _Stop(Exception):
    pass


def _prepared(it: Interpreter, subgraph: int, index: int) -> tuple[Kernel, Any] | None:
    """The kernel and op data the interpreter prepared for the operator (after the run, so
    operators prepared late -- after a dynamic shape -- are there too).

    The interpreter keeps them in private plans whose layout is still changing; this is the one
    place that reads them, and it returns None rather than fail when it cannot (the caller then
    prepares the operator itself with the shapes the run saw: prepare is a pure function of the
    model, the operator, the emulation and the input shapes).
    """
    try:
        ex = getattr(it, "_exec", None)
        if ex is not None:
            variant = ex.plans[subgraph].current
            prepared = variant.ops[index] if variant is not None else None
        else:
            prepared = it._plans[subgraph].ops[index]  # type: ignore[attr-defined]
    except (AttributeError, KeyError, IndexError):
        return None
    if prepared is None:
        return None
    return prepared.kernel, prepared.data


def _prepare_alone(model: Model, subgraph: int, op: Operator, emulate: str,
                   shapes: Sequence[tuple[int, ...] | None] | None = None
                   ) -> tuple[Kernel, Any]:
    """Prepare one operator outside the interpreter: with the input shapes a run saw, or those
    stored in the file."""
    sg = model.subgraphs[subgraph]
    if shapes is None:
        shapes = [sg.tensors[i].shape if i >= 0 else None for i in op.inputs]
    ctx = OpContext(model=model, subgraph=sg, op=op, emulate=emulate, input_shapes=tuple(shapes))
    kernel = lookup(op, key_dtype(op, sg), ctx.describe_types(), emulate)
    return kernel, kernel.prepare(ctx)


def _doc_line(fn: Callable[..., Any]) -> str:
    doc = _inspect.getdoc(fn) or ""
    text = " ".join(doc.split("\n\n", 1)[0].split())
    first = text.split("; ")[0].split(". ")[0]  # the first clause names the mirrored function
    return first if len(first) <= 110 else first[:109] + "…"


def _capture(it: Interpreter, subgraph: int, ops: set[int]
             ) -> tuple[dict[int, tuple[list[np.ndarray | None], list[np.ndarray]]], str | None]:
    """Invoke once; the inputs and outputs of the operators in ``ops`` (the run stops after
    the last of them), and the error that stopped the run early, if any."""
    got: dict[int, tuple[list[np.ndarray | None], list[np.ndarray]]] = {}
    last = max(ops)

    def observer(si: int, oi: int, _op: Operator, ins: Sequence[np.ndarray | None],
                 outs: Sequence[np.ndarray]) -> None:
        if si == subgraph and oi in ops:
            got[oi] = (list(ins), list(outs))
            if oi == last:
                raise _Stop

    try:
        it.invoke(observer=observer)
    except _Stop:
        pass
    except TFLiteRefError as exc:
        return got, f"The model stopped before this operator: {exc}"
    return got, None


def explain_all(model: Model | str | os.PathLike[str] | bytes,
                ops: Sequence[int] | None = None, *, subgraph: int = 0,
                inputs: Mapping[str, Any] | Sequence[Any] | None = None,
                emulate: str = "tflite", seed: int | None = 0) -> list[Explanation]:
    """Explain several operators of ``subgraph`` (default: all) from one run of the model."""
    m = as_model(model)
    if not 0 <= subgraph < len(m.subgraphs):
        raise UsageError(f"--subgraph {subgraph}: the model has subgraphs 0..{len(m.subgraphs) - 1}")
    sg = m.subgraphs[subgraph]
    chosen = list(range(len(sg.operators))) if ops is None else [int(k) for k in ops]
    for k in chosen:
        if not 0 <= k < len(sg.operators):
            raise UsageError(f"--op {k}: subgraph {subgraph} has operators "
                             f"0..{len(sg.operators) - 1}")
    if not chosen:
        return []
    values: dict[int, tuple[list[np.ndarray | None], list[np.ndarray]]] = {}
    not_run: str | None = None
    it: Interpreter | None = None
    try:
        it, _feed = prepared_interpreter(m, inputs, seed=seed, emulate=emulate)
    except UsageError:
        raise
    except TFLiteRefError as exc:
        not_run = f"The model cannot run in tflite_ref, so there are no values to show: {exc}"
    if it is not None:
        if subgraph == 0:
            values, not_run = _capture(it, subgraph, set(chosen))
        else:
            not_run = ("Operators of other subgraphs run inside their caller (WHILE, IF, ...); "
                       "the step-by-step element is shown for subgraph 0 only.")
    return [_explain_one(m, subgraph, k, it, values.get(k), None if k in values else not_run,
                         None, emulate) for k in chosen]


def explain(model: Model | str | os.PathLike[str] | bytes, op: int, *, subgraph: int = 0,
            inputs: Mapping[str, Any] | Sequence[Any] | None = None,
            at: Sequence[int] | None = None, emulate: str = "tflite",
            seed: int | None = 0) -> Explanation:
    """Explain operator ``op`` of ``subgraph``; ``at`` picks the output element to work through
    (default: an unremarkable one near the middle).  Inputs as for
    :func:`tflite_ref.trace.trace`."""
    m = as_model(model)
    if not 0 <= subgraph < len(m.subgraphs):
        raise UsageError(f"--subgraph {subgraph}: the model has subgraphs 0..{len(m.subgraphs) - 1}")
    if not 0 <= op < len(m.subgraphs[subgraph].operators):
        raise UsageError(f"--op {op}: subgraph {subgraph} has operators "
                         f"0..{len(m.subgraphs[subgraph].operators) - 1}")
    it: Interpreter | None = None
    values: dict[int, tuple[list[np.ndarray | None], list[np.ndarray]]] = {}
    not_run: str | None = None
    try:
        it, _feed = prepared_interpreter(m, inputs, seed=seed, emulate=emulate)
    except UsageError:
        raise
    except TFLiteRefError as exc:
        not_run = f"The model cannot run in tflite_ref, so there are no values to show: {exc}"
    if it is not None:
        if subgraph == 0:
            values, not_run = _capture(it, subgraph, {op})
        else:
            not_run = ("Operators of other subgraphs run inside their caller (WHILE, IF, ...); "
                       "the step-by-step element is shown for subgraph 0 only.")
    return _explain_one(m, subgraph, op, it, values.get(op), not_run,
                        tuple(int(a) for a in at) if at is not None else None, emulate)


def _explain_one(m: Model, subgraph: int, op: int, it: Interpreter | None,
                 io: tuple[list[np.ndarray | None], list[np.ndarray]] | None,
                 not_run: str | None, at: tuple[int, ...] | None, emulate: str) -> Explanation:
    sg = m.subgraphs[subgraph]
    operator = sg.operators[op]
    kernel = data = None
    unsupported: str | None = None
    ins, outs = io if io is not None else (None, None)
    got = _prepared(it, subgraph, op) if it is not None else None
    if got is not None:
        kernel, data = got
    else:
        shapes = None if ins is None else [None if v is None else v.shape for v in ins]
        try:
            kernel, data = _prepare_alone(m, subgraph, operator, emulate, shapes)
        except UnsupportedOpError as exc:
            unsupported = str(exc)
        except TFLiteRefError as exc:
            unsupported = f"{operator.locator}: cannot be prepared here: {exc}"
        except Exception as exc:  # noqa: BLE001 - e.g. control flow needs the interpreter
            unsupported = (f"{operator.locator}: cannot be prepared outside the interpreter "
                           f"({exc!r})")
    view = OpView(m, sg, operator, emulate, kernel, data, ins, outs, at, not_run)
    family = family_of(operator.opcode)
    parts: Parts | None = None
    if unsupported is not None or kernel is None:
        parts = generic.explain_unsupported(view, unsupported or "no kernel")
    elif operator.opcode in EXPLAINERS:
        parts = EXPLAINERS[operator.opcode][1](view)
    if parts is None:  # no family explanation, or not for this kernel variant's op data
        family = "generic"
        parts = generic.explain_generic(view)
    out_t = sg.tensors[operator.outputs[0]] if operator.outputs else None
    return Explanation(
        model=m.path or "<bytes>", subgraph=subgraph, operator=op, opcode=operator.opcode,
        version=operator.version, dtype=out_t.type_name if out_t is not None else "NONE",
        family=family, emulate=emulate,
        kernel=(f"{kernel.eval.__name__} ({kernel.eval.__module__})" if kernel is not None
                else None),
        mirrors=_doc_line(kernel.eval) if kernel is not None else "",
        formula=parts.formula, upstream=parts.upstream, sections=tuple(parts.sections),
        element=parts.element,
        no_element=None if parts.element is not None else (parts.no_element or not_run),
        unsupported=unsupported, numbers=parts.numbers)


__all__ = ["EXPLAINERS", "Explanation", "Section", "Step", "WorkedElement", "explain", "explain_all",
           "family_of"]
