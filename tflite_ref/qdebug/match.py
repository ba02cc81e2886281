"""Which tensor of the float model is the counterpart of a tensor of the quantized model.

The converter keeps op names, so most tensors match by name.  Where it renamed (``input_1`` ->
``input_1_int8``, ``Identity`` -> ``Identity_int8``, ``tfl.quantize``) or a name is ambiguous, the
graph decides: subgraph inputs by position, QUANTIZE/DEQUANTIZE pass their input's counterpart on,
and an operator whose activation inputs all have counterparts matches the float operator of the
same type reading exactly those tensors, output for output.  Every match must agree in element
count; a candidate that does not is no match.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from tflite_ref.model.model import Subgraph, Tensor

# Suffixes the TF converter appends to a tensor it quantizes at a model boundary.
_SUFFIX = re.compile(r"_(u?int8|int16|int32|quantized|dequantized)$")


@dataclass(frozen=True, slots=True)
class Matching:
    """Quantized-model tensor/operator index -> float-model tensor/operator index (subgraph 0)."""

    tensors: dict[int, int]
    operators: dict[int, int]
    how: dict[int, str]  # tensor -> "name" | "position" | "graph"


def _is_activation(t: Tensor) -> bool:
    return t.data is None or t.is_variable


def _size(t: Tensor) -> int:
    return t.num_elements


def _slot_agrees(quant: Subgraph, flt: Subgraph, tensors: dict[int, int], qi: int,
                 fi: int) -> bool:
    """Input slots agree: both absent, the activation's counterpart, or constants of a shape."""
    if qi < 0 or fi < 0:
        return qi < 0 and fi < 0
    qt, ft = quant.tensors[qi], flt.tensors[fi]
    if _is_activation(qt):
        return tensors.get(qi) == fi
    return _is_activation(ft) is False and qt.shape == ft.shape


def _names(name: str) -> list[str]:
    out = [name]
    stripped = _SUFFIX.sub("", name)
    if stripped != name:
        out.append(stripped)
    return out


def match(quant: Subgraph, flt: Subgraph) -> Matching:
    """Match the activation tensors and operators of two versions of one graph."""
    by_name: dict[str, list[int]] = defaultdict(list)
    for t in flt.tensors:
        if _is_activation(t):
            by_name[t.name].append(t.index)
    tensors: dict[int, int] = {}
    how: dict[int, str] = {}

    def accept(qi: int, fi: int, why: str) -> bool:
        if _size(quant.tensors[qi]) != _size(flt.tensors[fi]):
            return False
        tensors[qi], how[qi] = fi, why
        return True

    for t in quant.tensors:
        if not _is_activation(t):
            continue
        for name in _names(t.name):
            found = by_name.get(name, [])
            if len(found) == 1 and accept(t.index, found[0], "name"):
                break
    if len(quant.inputs) == len(flt.inputs):
        for qi, fi in zip(quant.inputs, flt.inputs):
            if qi not in tensors:
                accept(qi, fi, "position")

    consumers: dict[int, list[int]] = defaultdict(list)
    for op in flt.operators:
        for i in op.inputs:
            if i >= 0:
                consumers[i].append(op.index)
    producer = {o: op.index for op in flt.operators for o in op.outputs}

    operators: dict[int, int] = {}
    for op in quant.operators:
        ins = [i for i in op.inputs if i >= 0 and _is_activation(quant.tensors[i])]
        if op.name in ("QUANTIZE", "DEQUANTIZE"):
            if ins and ins[0] in tensors and op.outputs and op.outputs[0] not in tensors:
                accept(op.outputs[0], tensors[ins[0]], "graph")
            continue
        if all(o in tensors for o in op.outputs):
            fop = producer.get(tensors[op.outputs[0]]) if op.outputs else None
            if fop is not None and flt.operators[fop].builtin_code == op.builtin_code:
                operators[op.index] = fop
            continue
        if not ins or not all(i in tensors for i in ins):
            continue
        candidates = set(consumers.get(tensors[ins[0]], []))
        for i in ins[1:]:
            candidates &= set(consumers.get(tensors[i], []))
        found = []
        for c in sorted(candidates):
            fo = flt.operators[c]
            if fo.builtin_code != op.builtin_code or len(fo.outputs) != len(op.outputs) \
                    or len(fo.inputs) != len(op.inputs):
                continue
            if all(_slot_agrees(quant, flt, tensors, qi, fi)
                   for qi, fi in zip(op.inputs, fo.inputs)):
                found.append(c)
        if len(found) > 1:
            # Siblings (a residual block's two convolutions of one tensor, alike in shape): the
            # k-th such quantized operator is the k-th float one, as the converter keeps order.
            siblings = [o.index for o in quant.operators if o.builtin_code == op.builtin_code
                        and [i for i in o.inputs if i >= 0 and _is_activation(quant.tensors[i])]
                        == ins]
            if len(siblings) == len(found):
                found = [found[siblings.index(op.index)]]
        if len(found) == 1:
            fo = flt.operators[found[0]]
            for qo, fo_out in zip(op.outputs, fo.outputs):
                if qo not in tensors:
                    accept(qo, fo_out, "graph")
            if op.outputs and tensors.get(op.outputs[0]) == fo.outputs[0]:
                operators[op.index] = fo.index
    return Matching(tensors, operators, how)


__all__ = ["Matching", "match"]
