"""Semantic validation of a decoded model: what the FlatBuffer cannot say is wrong by itself.

Covers the bad-input classes of ``shared/docs/hostile-models.md`` that can be decided from the
file alone: indices (class 8, 9, 13), buffers and data sizes (10), shapes (11), topology (12),
control-flow references (13), quantization parameters (14), sparsity (20), string tensors (22),
signatures and metadata (23). Things the runtimes disagree on are warnings, not errors.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tflite_ref import budgets as budgets_mod
from tflite_ref.errors import Locator, ModelValidationError, ResourceLimitError
from tflite_ref.model import ops_table
from tflite_ref.model.model import Model, Operator, Subgraph, Tensor
from tflite_ref.model.schema import TensorType

MAX_CONTROL_FLOW_DEPTH = 32  # default of Budgets.control_flow_depth

# Options fields that name subgraphs (WHILE, IF, CALL, CALL_ONCE, StableHLO region ops).
SUBGRAPH_OPTION_FIELDS = (
    "cond_subgraph_index", "body_subgraph_index", "then_subgraph_index", "else_subgraph_index",
    "subgraph", "init_subgraph_index", "decomposition_subgraph_index", "body_subgraph_index",
    "comparator_subgraph_index", "update_computation_subgraph_index",
)

_INT_RANGES: dict[int, tuple[int, int]] = {
    TensorType.INT8: (-128, 127), TensorType.UINT8: (0, 255), TensorType.INT16: (-32768, 32767),
    TensorType.UINT16: (0, 65535), TensorType.INT4: (-8, 7),
    TensorType.INT32: (-(2**31), 2**31 - 1), TensorType.INT64: (-(2**63), 2**63 - 1),
}


def validate_model(model: Model) -> Model:
    """Raise :class:`ModelValidationError` (with its locator) for the first inconsistency;
    return the model with the warnings of the checks that are not errors added."""
    warnings = list(model.warnings)
    if model.version != 3:
        raise ModelValidationError(
            f"model: schema version {model.version}; only version 3 is defined",
            locator=Locator(path="model.version"), cve_class="B")
    if not model.subgraphs:
        raise ModelValidationError("model: has no subgraphs", locator=Locator(path="model.subgraphs"))
    n_sub = len(model.subgraphs)
    strings_checked: dict[tuple[int, int], None] = {}
    for sg in model.subgraphs:
        for t in sg.tensors:
            _check_tensor(sg, t, warnings, strings_checked)
        _check_io(sg)
        _check_operators(model, sg, n_sub)
        _check_topology(sg)
    _check_call_graph(model)
    _check_signatures(model)
    if model.buffers and model.buffers[0].size:
        warnings.append(f"buffers[0]: holds {model.buffers[0].size} bytes; "
                        "it should be the empty sentinel")
    if tuple(warnings) != model.warnings:
        model = dataclasses.replace(model, warnings=tuple(warnings))
    return model


def _where(sg: Subgraph, t: Tensor) -> str:
    return f"subgraph {sg.index}, tensor {t.index} {t.name!r}"


def _loc(sg: Subgraph, t: Tensor, slot: str | None = None) -> Locator:
    return Locator(subgraph=sg.index, tensor=t.index, tensor_name=t.name, buffer=t.buffer,
                   slot=slot)


def _check_tensor(sg: Subgraph, t: Tensor, warnings: list[str],
                  strings_checked: dict[tuple[int, int], None]) -> None:
    q = t.quantization
    if q is not None and (q.scale.size or q.zero_point.size):
        where = _where(sg, t) + " quantization"
        ns, nz = q.scale.size, q.zero_point.size
        if ns != nz:
            raise ModelValidationError(f"{where}: {ns} scales but {nz} zero points",
                                       locator=_loc(sg, t, "quantization"), cve_class="J")
        if ns > 1:
            if (q.quantized_dimension >= len(t.shape) == 1 and ns == t.shape[0]):
                # person_detect.tflite: rank-1 biases with one scale per element but
                # quantized_dimension 3 (copied from the filter). LiteRT's interpreter builder
                # refuses the file; TFLite Micro never reads the field for biases and runs it.
                warnings.append(
                    f"{where}: quantized_dimension {q.quantized_dimension} is outside the rank-1 "
                    "shape; LiteRT refuses such a tensor, TFLite Micro runs it")
            elif not 0 <= q.quantized_dimension < len(t.shape):
                raise ModelValidationError(
                    f"{where}: quantized_dimension {q.quantized_dimension} is outside the tensor's "
                    f"rank {len(t.shape)}", locator=_loc(sg, t, "quantized_dimension"),
                    cve_class="J")
            elif ns != t.shape[q.quantized_dimension]:
                dim = t.shape[q.quantized_dimension]
                raise ModelValidationError(
                    f"{where}: {ns} scales, but dimension {q.quantized_dimension} of shape "
                    f"{list(t.shape)} has {dim} entries", locator=_loc(sg, t, "scale"),
                    cve_class="J")
        elif q.quantized_dimension != 0:
            # Meaningless for a single scale, but LiteRT's interpreter builder still checks it
            # against the rank (and refuses the file when it is outside); TFLite Micro ignores it.
            outside = q.quantized_dimension >= len(t.shape)
            warnings.append(
                f"{where}: a single scale with quantized_dimension {q.quantized_dimension}"
                + ("; it is outside the tensor's rank: LiteRT refuses such a tensor, TFLite Micro "
                   "runs it" if outside else " (ignored for per-tensor quantization)"))
        bad = ~np.isfinite(q.scale) | (q.scale < 0)
        if bad.any():
            k = int(np.argmax(bad))
            raise ModelValidationError(f"{where}: scale[{k}]={float(q.scale[k])!r} is not a finite "
                                       "non-negative number", locator=_loc(sg, t, f"scale[{k}]"),
                                       cve_class="J")
        if (q.scale == 0).any() and t.type not in (TensorType.FLOAT32, TensorType.FLOAT16):
            k = int(np.argmax(q.scale == 0))
            warnings.append(f"{where}: scale[{k}] is 0.0; quantized kernels will reject this tensor")
        rng = _INT_RANGES.get(t.type)
        if rng is not None and nz:
            out = (q.zero_point < rng[0]) | (q.zero_point > rng[1])
            if out.any():
                k = int(np.argmax(out))
                raise ModelValidationError(
                    f"{where}: zero_point[{k}]={int(q.zero_point[k])} is outside the {t.type_name} "
                    f"range [{rng[0]}, {rng[1]}]", locator=_loc(sg, t, f"zero_point[{k}]"),
                    cve_class="J")
    if t.sparsity is not None:
        _check_sparsity(sg, t)
    if t.type == TensorType.STRING and t.data is not None:
        # Once per (buffer, element count): tensors sharing a buffer would otherwise repeat a
        # walk as long as the buffer, once per 4-byte index that points at it.
        key = (t.buffer, t.num_elements)
        if key not in strings_checked:
            _check_string_buffer(sg, t)
            strings_checked[key] = None


def _check_sparsity(sg: Subgraph, t: Tensor) -> None:
    """Mirrors the rules of LiteRT's ``VerifyAndCountSparseElements`` (core/model_builder / verifier)."""
    sp = t.sparsity
    assert sp is not None
    where = _where(sg, t) + " sparsity"
    rank = len(t.shape)
    order = sp.traversal_order
    n_dims = len(order)

    def fail(message: str, slot: str = "sparsity") -> ModelValidationError:
        return ModelValidationError(f"{where}: {message}", locator=_loc(sg, t, slot),
                                    cve_class="K")

    if sorted(order) != list(range(n_dims)):
        raise fail(f"traversal_order {list(order)} is not a permutation", "traversal_order")
    if n_dims < rank:
        raise fail(f"traversal_order has {n_dims} entries, the tensor rank is {rank}",
                   "traversal_order")
    n_block = n_dims - rank
    if len(sp.block_map) != n_block:
        raise fail(f"block_map has {len(sp.block_map)} entries, expected {n_block}", "block_map")
    if any(not 0 <= b < rank for b in sp.block_map):
        raise fail(f"block_map {list(sp.block_map)} names a dimension outside rank {rank}",
                   "block_map")
    if len(sp.dim_metadata) != n_dims:
        raise fail(f"{len(sp.dim_metadata)} dim_metadata entries for {n_dims} traversal "
                   "dimensions", "dim_metadata")
    count = 1
    for k, dm in enumerate(sp.dim_metadata):
        slot = f"dim_metadata[{k}]"
        if dm.format == "DENSE":
            if dm.dense_size < 0:
                raise fail(f"{slot} dense_size {dm.dense_size} < 0", slot)
            count *= dm.dense_size
        elif dm.format == "SPARSE_CSR":
            seg, idx = dm.array_segments, dm.array_indices
            if seg is None or idx is None:
                raise fail(f"{slot} is SPARSE_CSR without array_segments and array_indices", slot)
            if seg.size != count + 1:
                raise fail(f"{slot} has {seg.size} segments, expected {count + 1}", slot)
            if seg.size and (seg[0] != 0 or (np.diff(seg) < 0).any() or seg[-1] != idx.size):
                raise fail(f"{slot} array_segments are not a non-decreasing run from 0 to "
                           f"{idx.size}", slot)
            orig_dim = order[k]
            dense = t.shape[orig_dim] if orig_dim < rank else None
            if dense is not None and idx.size and ((idx < 0).any() or (idx >= dense).any()):
                raise fail(f"{slot} array_indices outside [0, {dense})", slot)
            count = int(idx.size)
        else:
            raise fail(f"{slot} has unknown format {dm.format}", slot)
    itemsizes: dict[int, int] = {TensorType.FLOAT32: 4, TensorType.INT8: 1, TensorType.FLOAT16: 2,
                                 TensorType.INT32: 4, TensorType.INT16: 2, TensorType.UINT8: 1}
    itemsize = itemsizes.get(t.type)
    if itemsize is not None and t.buffer_bytes and t.buffer_bytes != count * itemsize:
        raise fail(f"the sparse layout holds {count} values, buffer {t.buffer} has "
                   f"{t.buffer_bytes} bytes ({t.type_name} needs {count * itemsize})", "data")


def _check_string_buffer(sg: Subgraph, t: Tensor) -> None:
    """Layout ``[count, offset_0 .. offset_count, bytes...]`` (int32), as ``VerifyStringTensorBuffer``."""
    assert t.data is not None
    raw = t.data.reshape(-1).view(np.uint8)  # no copy: the buffer can be as large as the file
    where = _where(sg, t) + " string buffer"

    def fail(message: str) -> ModelValidationError:
        return ModelValidationError(f"{where}: {message}", locator=_loc(sg, t, "data"),
                                    cve_class="E")

    if len(raw) < 4:
        raise fail(f"{len(raw)} bytes, too short for the string count")
    count = int(raw[:4].view("<i4")[0])
    if count < 0 or 4 * (count + 2) > len(raw):
        raise fail(f"string count {count} does not fit in {len(raw)} bytes")
    if count != t.num_elements:
        raise fail(f"holds {count} strings, shape {list(t.shape)} needs {t.num_elements}")
    offsets = np.frombuffer(raw, dtype="<i4", count=count + 1, offset=4).astype(np.int64)
    header = 4 * (count + 2)
    if offsets[0] != header or (np.diff(offsets) < 0).any() or offsets[-1] != len(raw):
        raise fail(f"string offsets are not increasing from {header} to {len(raw)}")


def _check_io(sg: Subgraph) -> None:
    n = len(sg.tensors)
    for kind, idxs in (("input", sg.inputs), ("output", sg.outputs)):
        for k, ti in enumerate(idxs):
            if not 0 <= ti < n:
                raise ModelValidationError(
                    f"subgraph {sg.index}: {kind} {k} is tensor {ti}, but the subgraph has {n} "
                    "tensors", locator=Locator(subgraph=sg.index, slot=f"{kind}s[{k}]", tensor=ti),
                    cve_class="B")


def _op_loc(op: Operator, slot: str | None = None, tensor: int | None = None,
            sg: Subgraph | None = None) -> Locator:
    name = None
    if sg is not None and tensor is not None and 0 <= tensor < len(sg.tensors):
        name = sg.tensors[tensor].name
    return Locator(subgraph=op.subgraph, operator=op.index, opcode=op.opcode, slot=slot,
                   tensor=tensor, tensor_name=name)


def _check_operators(model: Model, sg: Subgraph, n_sub: int) -> None:
    n = len(sg.tensors)
    for op in sg.operators:
        for kind, idxs, optional in (("input", op.inputs, True), ("output", op.outputs, False),
                                     ("intermediate", op.intermediates, False)):
            for k, ti in enumerate(idxs):
                if ti == -1 and optional:
                    continue
                if not 0 <= ti < n:
                    raise ModelValidationError(
                        f"{op.locator}: {kind} {k} is tensor {ti}, but the subgraph has {n} "
                        "tensors", locator=_op_loc(op, f"{kind}s[{k}]", ti),
                        cve_class="I" if ti == -1 else "B")
        for fld in SUBGRAPH_OPTION_FIELDS:
            v = op.options.get(fld)
            if isinstance(v, int) and not isinstance(v, bool) and not 0 <= v < n_sub:
                raise ModelValidationError(
                    f"{op.locator}: option {fld} = {v}, but the model has {n_sub} subgraphs",
                    locator=_op_loc(op, f"option {fld}"), cve_class="B")
        _check_option_enums(op)


# Enums whose unknown values no runtime can mean anything by: LiteRT's ConvertPadding and
# ConvertActivation map them to "unknown"/"none" and compute regardless (a silent wrong result).
# Other enums in options (TensorType, weights formats) may be newer than the schema; the kernel
# that reads them decides.
_CHECKED_ENUMS = ("Padding", "ActivationFunctionType")


def _check_option_enums(op: Operator) -> None:
    member = op.options_type
    if member is None or ":" in member or not op.options:
        return
    for spec in _enum_fields(member):
        v = op.options.get(spec[0])
        if isinstance(v, int) and not isinstance(v, bool):  # decoded names are str
            names = ", ".join(ops_table.enum_values(spec[1]).values())
            raise ModelValidationError(
                f"{op.locator}: option {spec[0]} = {v} is not a {spec[1]} ({names})",
                locator=_op_loc(op, f"option {spec[0]}"), cve_class="D")


_ENUM_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {}


def _enum_fields(member: str) -> tuple[tuple[str, str], ...]:
    got = _ENUM_FIELDS.get(member)
    if got is None:
        got = _ENUM_FIELDS[member] = tuple(
            (f.key, str(f.enum)) for f in ops_table.table_fields(member)
            if f.kind == "scalar" and f.enum in _CHECKED_ENUMS)
    return got


def _check_topology(sg: Subgraph) -> None:
    """Each tensor produced once, by an operator that runs before its consumers (no cycles).

    Follows LiteRT's consistency checks (``Subgraph::VerifySubGraphConsistency`` and the
    interpreter builder): a subgraph input, constant or variable may not be an operator output.
    """
    producer: dict[int, int] = {}
    graph_inputs = set(sg.inputs)
    for op in sg.operators:
        ins = {i for i in op.inputs if i >= 0}
        for k, ti in enumerate(op.outputs):
            t = sg.tensors[ti]
            loc = _op_loc(op, f"outputs[{k}]", ti, sg)
            if ti in producer:
                raise ModelValidationError(
                    f"{op.locator}: output {k} is tensor {ti} {t.name!r}, already produced by "
                    f"operator {producer[ti]}", locator=loc, cve_class="C")
            if ti in ins:
                raise ModelValidationError(
                    f"{op.locator}: tensor {ti} {t.name!r} is both an input and an output",
                    locator=loc, cve_class="C")
            if t.data is not None and not t.is_variable:
                raise ModelValidationError(
                    f"{op.locator}: output {k} is tensor {ti} {t.name!r}, which is a constant",
                    locator=loc, cve_class="C")
            if ti in graph_inputs:
                raise ModelValidationError(
                    f"{op.locator}: output {k} is tensor {ti} {t.name!r}, which is a subgraph "
                    "input", locator=loc, cve_class="C")
            producer[ti] = op.index
    for op in sg.operators:
        for k, ti in enumerate(op.inputs):
            if ti < 0:
                continue
            p = producer.get(ti)
            if p is not None and p >= op.index:
                raise ModelValidationError(
                    f"{op.locator}: input {k} is tensor {ti} {sg.tensors[ti].name!r}, produced by "
                    f"operator {p}, which runs {'at the same time' if p == op.index else 'later'} "
                    "(the operators are not in a valid execution order, or form a cycle)",
                    locator=_op_loc(op, f"inputs[{k}]", ti, sg), cve_class="C")
            t = sg.tensors[ti]
            if (p is None and ti not in graph_inputs and not t.is_constant and not t.is_variable
                    and op.custom_code is None and t.data is None and t.num_elements > 0):
                # LiteRT and TFLite Micro would read uninitialised arena memory here (class I);
                # custom operators are exempt: Vela's ethos-u takes its scratch areas as inputs.
                # A zero-element tensor (an empty axis list, say) has no bytes to read: the
                # converter writes it without a buffer and both runtimes run the model.
                raise ModelValidationError(
                    f"{op.locator}: input {k} is tensor {ti} {t.name!r}, which nothing writes (not "
                    "a subgraph input, a constant, a variable or an earlier operator's output)",
                    locator=_op_loc(op, f"inputs[{k}]", ti, sg), cve_class="I")
    for k, ti in enumerate(sg.outputs):
        t = sg.tensors[ti]
        if ti not in producer and ti not in graph_inputs and not t.is_constant \
                and not t.is_variable and t.data is None:
            raise ModelValidationError(
                f"subgraph {sg.index}: output {k} is tensor {ti} {t.name!r}, which nothing writes "
                "(no operator produces it and it is not a subgraph input or a constant)",
                locator=Locator(subgraph=sg.index, slot=f"outputs[{k}]", tensor=ti,
                                tensor_name=t.name), cve_class="I")


def _check_call_graph(model: Model) -> None:
    """Control-flow subgraph references must not recurse (CVE-2021-29591) and nest at most
    ``Budgets.control_flow_depth`` deep."""
    limit = budgets_mod.current().control_flow_depth
    edges: dict[int, set[int]] = {sg.index: set() for sg in model.subgraphs}
    for sg in model.subgraphs:
        for op in sg.operators:
            for fld in SUBGRAPH_OPTION_FIELDS:
                v = op.options.get(fld)
                if isinstance(v, int) and not isinstance(v, bool):
                    edges[sg.index].add(v)
    state: dict[int, int] = {}  # 1 = on the stack, 2 = done

    def visit(root: int) -> None:
        # Iterative DFS: a recursive one would itself hit RecursionError on a hostile chain.
        stack: list[tuple[int, list[int]]] = [(root, sorted(edges[root]))]
        state[root] = 1
        path = [root]
        while stack:
            node, todo = stack[-1]
            if limit is not None and len(path) > limit:
                raise ResourceLimitError(
                    f"subgraph {root}: control flow nests deeper than {limit} subgraphs "
                    f"({' -> '.join(map(str, path[:8]))} ...) > the control_flow_depth budget",
                    locator=Locator(subgraph=root), cve_class="M")
            if todo:
                nxt = todo.pop()
                if state.get(nxt) == 1:
                    cyc = path[path.index(nxt):] + [nxt]
                    raise ModelValidationError(
                        "subgraphs call each other recursively: " + " -> ".join(map(str, cyc)),
                        locator=Locator(subgraph=nxt, slot="call graph"), cve_class="C")
                if state.get(nxt) is None:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, sorted(edges[nxt])))
            else:
                state[node] = 2
                stack.pop()
                path.pop()

    for sg in model.subgraphs:
        if sg.index not in state:
            visit(sg.index)


def _check_signatures(model: Model) -> None:
    keys: set[str] = set()
    for i, sd in enumerate(model.signatures):
        where = f"signature_defs[{i}] {sd.key!r}"
        loc = Locator(table="signature_defs", index=i)
        if sd.key in keys:
            raise ModelValidationError(f"{where}: duplicate signature key",
                                       locator=loc.with_(slot="signature_key"))
        keys.add(sd.key)
        if not 0 <= sd.subgraph_index < len(model.subgraphs):
            raise ModelValidationError(
                f"{where}: subgraph_index {sd.subgraph_index}, but the model has "
                f"{len(model.subgraphs)} subgraphs", locator=loc.with_(slot="subgraph_index"),
                cve_class="B")
        n = len(model.subgraphs[sd.subgraph_index].tensors)
        for kind, mapping in (("input", sd.inputs), ("output", sd.outputs)):
            for name, ti in mapping.items():
                if not 0 <= ti < n:
                    raise ModelValidationError(
                        f"{where}: {kind} {name!r} is tensor {ti}, but subgraph "
                        f"{sd.subgraph_index} has {n} tensors",
                        locator=loc.with_(slot=f"{kind}s[{name!r}]", tensor=ti), cve_class="B")


def element_count(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


@dataclasses.dataclass(frozen=True, slots=True)
class NonFiniteFinding:
    """Class 25 of the shared doc: garbage in, garbage out -- an audit finding, not an error."""

    subgraph: int
    tensor: int
    name: str
    nan: int
    inf: int
    subnormal: int

    def __str__(self) -> str:
        parts = [f"{n} {what}" for n, what in ((self.nan, "NaN"), (self.inf, "Inf"),
                                                (self.subnormal, "subnormal")) if n]
        return (f"subgraph {self.subgraph}, tensor {self.tensor} {self.name!r}: constant holds "
                + ", ".join(parts))


def nonfinite_findings(model: Model) -> list[NonFiniteFinding]:
    """Float constants holding NaN, Inf or subnormal values, counted per tensor.

    The interpreter computes with them as LiteRT does; this is what ``inspect`` can report.
    """
    out = []
    seen: dict[tuple[int, int], tuple[int, int, int]] = {}
    for sg in model.subgraphs:
        for t in sg.tensors:
            d = t.data
            if d is None or t.sparsity is not None or d.dtype.kind not in "fc":
                continue
            key = (t.buffer, d.size)
            counts = seen.get(key)
            if counts is None:
                flat = d.reshape(-1)
                parts = (flat.real, flat.imag) if d.dtype.kind == "c" else (flat,)
                tiny = np.finfo(parts[0].dtype).tiny
                counts = (sum(int(np.isnan(p).sum()) for p in parts),
                          sum(int(np.isinf(p).sum()) for p in parts),
                          sum(int(((p != 0) & (np.abs(p) < tiny)).sum()) for p in parts))
                seen[key] = counts
            if any(counts):
                out.append(NonFiniteFinding(sg.index, t.index, t.name, *counts))
    return out
