"""Semantic validation of a decoded model: what the FlatBuffer cannot say is wrong by itself.

Covers the bad-input classes of ``shared/docs/hostile-models.md`` that can be decided from the
file alone: indices (class 8, 9, 13), buffers and data sizes (10), shapes (11), topology (12),
control-flow references (13), quantization parameters (14), sparsity (20), string tensors (22),
signatures and metadata (23). Things the runtimes disagree on are warnings, not errors.
"""

from __future__ import annotations

import dataclasses
import math
import struct

import numpy as np

from tflite_ref.errors import ModelValidationError, ResourceLimitError
from tflite_ref.model.model import Model, Operator, Subgraph, Tensor
from tflite_ref.model.schema import TensorType

MAX_CONTROL_FLOW_DEPTH = 32

# Options fields that name subgraphs (WHILE, IF, CALL, CALL_ONCE, StableHLO region ops).
SUBGRAPH_OPTION_FIELDS = (
    "cond_subgraph_index", "body_subgraph_index", "then_subgraph_index", "else_subgraph_index",
    "subgraph", "init_subgraph_index", "decomposition_subgraph_index", "body_subgraph_index",
    "comparator_subgraph_index", "update_computation_subgraph_index",
)

_INT_RANGES = {
    TensorType.INT8: (-128, 127), TensorType.UINT8: (0, 255), TensorType.INT16: (-32768, 32767),
    TensorType.UINT16: (0, 65535), TensorType.INT4: (-8, 7),
    TensorType.INT32: (-(2**31), 2**31 - 1), TensorType.INT64: (-(2**63), 2**63 - 1),
}


def validate_model(model: Model) -> Model:
    warnings = list(model.warnings)
    if model.version != 3:
        raise ModelValidationError(f"model: schema version {model.version}; only version 3 is defined")
    if not model.subgraphs:
        raise ModelValidationError("model: has no subgraphs")
    n_sub = len(model.subgraphs)
    for sg in model.subgraphs:
        for t in sg.tensors:
            _check_tensor(sg, t, warnings)
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


def _check_tensor(sg: Subgraph, t: Tensor, warnings: list[str]) -> None:
    q = t.quantization
    if q is not None and (q.scale.size or q.zero_point.size):
        where = _where(sg, t) + " quantization"
        ns, nz = q.scale.size, q.zero_point.size
        if ns != nz:
            raise ModelValidationError(f"{where}: {ns} scales but {nz} zero points")
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
                    f"rank {len(t.shape)}")
            elif ns != t.shape[q.quantized_dimension]:
                dim = t.shape[q.quantized_dimension]
                raise ModelValidationError(
                    f"{where}: {ns} scales, but dimension {q.quantized_dimension} of shape "
                    f"{list(t.shape)} has {dim} entries")
        elif q.quantized_dimension != 0:
            # Meaningless for a single scale; runtimes ignore it, but it hints at a broken converter.
            warnings.append(
                f"{where}: a single scale with quantized_dimension {q.quantized_dimension} "
                "(ignored for per-tensor quantization)")
        bad = ~np.isfinite(q.scale) | (q.scale < 0)
        if bad.any():
            k = int(np.argmax(bad))
            raise ModelValidationError(f"{where}: scale[{k}]={float(q.scale[k])!r} is not a finite "
                                       "non-negative number")
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
                    f"range [{rng[0]}, {rng[1]}]")
    if t.sparsity is not None:
        _check_sparsity(sg, t)
    if t.type == TensorType.STRING and t.data is not None:
        _check_string_buffer(sg, t)


def _check_sparsity(sg: Subgraph, t: Tensor) -> None:
    """Mirrors the rules of LiteRT's ``VerifyAndCountSparseElements`` (core/model_builder / verifier)."""
    sp = t.sparsity
    assert sp is not None
    where = _where(sg, t) + " sparsity"
    rank = len(t.shape)
    order = sp.traversal_order
    n_dims = len(order)
    if sorted(order) != list(range(n_dims)):
        raise ModelValidationError(f"{where}: traversal_order {list(order)} is not a permutation")
    if n_dims < rank:
        raise ModelValidationError(f"{where}: traversal_order has {n_dims} entries, the tensor rank is {rank}")
    n_block = n_dims - rank
    if len(sp.block_map) != n_block:
        raise ModelValidationError(
            f"{where}: block_map has {len(sp.block_map)} entries, expected {n_block}")
    if any(not 0 <= b < rank for b in sp.block_map):
        raise ModelValidationError(f"{where}: block_map {list(sp.block_map)} names a dimension "
                                   f"outside rank {rank}")
    if len(sp.dim_metadata) != n_dims:
        raise ModelValidationError(
            f"{where}: {len(sp.dim_metadata)} dim_metadata entries for {n_dims} traversal dimensions")
    count = 1
    for k, dm in enumerate(sp.dim_metadata):
        if dm.format == "DENSE":
            if dm.dense_size < 0:
                raise ModelValidationError(f"{where}: dim_metadata[{k}] dense_size {dm.dense_size} < 0")
            count *= dm.dense_size
        elif dm.format == "SPARSE_CSR":
            seg, idx = dm.array_segments, dm.array_indices
            if seg is None or idx is None:
                raise ModelValidationError(f"{where}: dim_metadata[{k}] is SPARSE_CSR without "
                                           "array_segments and array_indices")
            if seg.size != count + 1:
                raise ModelValidationError(
                    f"{where}: dim_metadata[{k}] has {seg.size} segments, expected {count + 1}")
            if seg.size and (seg[0] != 0 or (np.diff(seg) < 0).any() or seg[-1] != idx.size):
                raise ModelValidationError(
                    f"{where}: dim_metadata[{k}] array_segments are not a non-decreasing run from 0 "
                    f"to {idx.size}")
            orig_dim = order[k]
            dense = t.shape[orig_dim] if orig_dim < rank else None
            if dense is not None and idx.size and ((idx < 0).any() or (idx >= dense).any()):
                raise ModelValidationError(
                    f"{where}: dim_metadata[{k}] array_indices outside [0, {dense})")
            count = int(idx.size)
        else:
            raise ModelValidationError(f"{where}: dim_metadata[{k}] has unknown format {dm.format}")
    itemsize = {TensorType.FLOAT32: 4, TensorType.INT8: 1, TensorType.FLOAT16: 2,
                TensorType.INT32: 4, TensorType.INT16: 2, TensorType.UINT8: 1}.get(t.type)
    if itemsize is not None and t.buffer_bytes and t.buffer_bytes != count * itemsize:
        raise ModelValidationError(
            f"{where}: the sparse layout holds {count} values, buffer {t.buffer} has "
            f"{t.buffer_bytes} bytes ({t.type_name} needs {count * itemsize})")


def _check_string_buffer(sg: Subgraph, t: Tensor) -> None:
    """Layout ``[count, offset_0 .. offset_count, bytes...]`` (int32), as ``VerifyStringTensorBuffer``."""
    raw = bytes(t.data)  # type: ignore[arg-type]
    where = _where(sg, t) + " string buffer"
    if len(raw) < 4:
        raise ModelValidationError(f"{where}: {len(raw)} bytes, too short for the string count")
    count = struct.unpack_from("<i", raw, 0)[0]
    if count < 0 or 4 * (count + 2) > len(raw):
        raise ModelValidationError(f"{where}: string count {count} does not fit in {len(raw)} bytes")
    if count != t.num_elements:
        raise ModelValidationError(f"{where}: holds {count} strings, shape {list(t.shape)} needs "
                                   f"{t.num_elements}")
    offsets = struct.unpack_from(f"<{count + 1}i", raw, 4)
    header = 4 * (count + 2)
    if offsets[0] != header or any(b < a for a, b in zip(offsets, offsets[1:])) or offsets[-1] != len(raw):
        raise ModelValidationError(f"{where}: string offsets are not increasing from {header} to {len(raw)}")


def _check_io(sg: Subgraph) -> None:
    n = len(sg.tensors)
    for kind, idxs in (("input", sg.inputs), ("output", sg.outputs)):
        for k, ti in enumerate(idxs):
            if not 0 <= ti < n:
                raise ModelValidationError(
                    f"subgraph {sg.index}: {kind} {k} is tensor {ti}, but the subgraph has {n} tensors")


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
                        f"{op.locator}: {kind} {k} is tensor {ti}, but the subgraph has {n} tensors")
        for fld in SUBGRAPH_OPTION_FIELDS:
            v = op.options.get(fld)
            if isinstance(v, int) and not isinstance(v, bool) and not 0 <= v < n_sub:
                raise ModelValidationError(
                    f"{op.locator}: option {fld} = {v}, but the model has {n_sub} subgraphs")


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
            if ti in producer:
                raise ModelValidationError(
                    f"{op.locator}: output {k} is tensor {ti} {t.name!r}, already produced by "
                    f"operator {producer[ti]}")
            if ti in ins:
                raise ModelValidationError(
                    f"{op.locator}: tensor {ti} {t.name!r} is both an input and an output")
            if t.data is not None and not t.is_variable:
                raise ModelValidationError(
                    f"{op.locator}: output {k} is tensor {ti} {t.name!r}, which is a constant")
            if ti in graph_inputs:
                raise ModelValidationError(
                    f"{op.locator}: output {k} is tensor {ti} {t.name!r}, which is a subgraph input")
            producer[ti] = op.index
    for op in sg.operators:
        for k, ti in enumerate(op.inputs):
            p = producer.get(ti)
            if ti >= 0 and p is not None and p >= op.index:
                raise ModelValidationError(
                    f"{op.locator}: input {k} is tensor {ti} {sg.tensors[ti].name!r}, produced by "
                    f"operator {p}, which runs {'at the same time' if p == op.index else 'later'} "
                    "(the operators are not in a valid execution order, or form a cycle)")


def _check_call_graph(model: Model) -> None:
    """Control-flow subgraph references must not recurse (CVE-2021-29591) and nest at most 32 deep."""
    edges: dict[int, set[int]] = {sg.index: set() for sg in model.subgraphs}
    for sg in model.subgraphs:
        for op in sg.operators:
            for fld in SUBGRAPH_OPTION_FIELDS:
                v = op.options.get(fld)
                if isinstance(v, int) and not isinstance(v, bool):
                    edges[sg.index].add(v)
    state: dict[int, int] = {}  # 1 = on the stack, 2 = done
    depth_of: dict[int, int] = {}

    def visit(root: int) -> None:
        # Iterative DFS: a recursive one would itself hit RecursionError on a hostile chain.
        stack: list[tuple[int, list[int]]] = [(root, sorted(edges[root]))]
        state[root] = 1
        path = [root]
        while stack:
            node, todo = stack[-1]
            if len(path) > MAX_CONTROL_FLOW_DEPTH:
                raise ResourceLimitError(
                    f"subgraph {root}: control flow nests deeper than {MAX_CONTROL_FLOW_DEPTH} "
                    f"subgraphs ({' -> '.join(map(str, path[:8]))} ...)")
            if todo:
                nxt = todo.pop()
                if state.get(nxt) == 1:
                    cyc = path[path.index(nxt):] + [nxt]
                    raise ModelValidationError(
                        "subgraphs call each other recursively: " + " -> ".join(map(str, cyc)))
                if state.get(nxt) is None:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, sorted(edges[nxt])))
            else:
                state[node] = 2
                depth_of[node] = 1 + max((depth_of.get(c, 0) for c in edges[node]), default=0)
                stack.pop()
                path.pop()

    for sg in model.subgraphs:
        if sg.index not in state:
            visit(sg.index)


def _check_signatures(model: Model) -> None:
    keys: set[str] = set()
    for i, sd in enumerate(model.signatures):
        where = f"signature_defs[{i}] {sd.key!r}"
        if sd.key in keys:
            raise ModelValidationError(f"{where}: duplicate signature key")
        keys.add(sd.key)
        if not 0 <= sd.subgraph_index < len(model.subgraphs):
            raise ModelValidationError(
                f"{where}: subgraph_index {sd.subgraph_index}, but the model has "
                f"{len(model.subgraphs)} subgraphs")
        n = len(model.subgraphs[sd.subgraph_index].tensors)
        for kind, mapping in (("input", sd.inputs), ("output", sd.outputs)):
            for name, ti in mapping.items():
                if not 0 <= ti < n:
                    raise ModelValidationError(
                        f"{where}: {kind} {name!r} is tensor {ti}, but subgraph "
                        f"{sd.subgraph_index} has {n} tensors")


def element_count(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
