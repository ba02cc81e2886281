"""``estimate(model, target=...)``: will it fit, and run, under TFLite Micro — from the file alone.

The arena is simulated allocation by allocation in TFLM's order
(``MicroInterpreter::AllocateTensors``, ``micro_interpreter.cc``; ``MicroAllocator``,
``micro_allocator.cc``; the wheel's ``InterpreterWrapper``, ``interpreter_wrapper.cc``), on a
model of ``SingleArenaBufferAllocator`` (``arena_allocator/single_arena_buffer_allocator.cc``):
a head growing up from the arena start (scratch-request records, then the memory plan), a temp
section above it, and a tail of persistent allocations growing down from the end. Every check
TFLM makes ("is there room?") is recorded as the arena size it needs, so the smallest arena that
works falls out of the same run as head, tail and total.

Assumes what the wheel and a correct firmware have: an arena whose start is 16-byte aligned and
whose size is a multiple of 16 (``alignas(16) uint8_t tensor_arena[N]``).
"""

from __future__ import annotations

import math
import struct
from dataclasses import asdict, dataclass
from typing import Any

from tflite_ref.errors import UsageError
from tflite_ref.micro import kernels as kmodels
from tflite_ref.micro import ops as ops_table
from tflite_ref.micro.planner import (
    ONLINE,
    Buffer,
    GraphView,
    align_up,
    dependencies,
    greedy_plan,
    mark_lifetimes,
    search_order,
)
from tflite_ref.micro.targets import Target, get_target
from tflite_ref.model.model import Model, Operator, Subgraph, Tensor

KERNELS = ("reference", "cmsis-nn")
MAX_SCRATCH_PER_OP = 12  # kMaxScratchBuffersPerOp, micro_allocator.cc
_CONTROL_FLOW = {"IF": ("then_subgraph_index", "else_subgraph_index"),
                 "WHILE": ("cond_subgraph_index", "body_subgraph_index"),
                 "CALL_ONCE": ("init_subgraph_index",)}
_SIDE_EFFECTS = {"ASSIGN_VARIABLE", "READ_VARIABLE", "VAR_HANDLE", "CALL_ONCE", "IF", "WHILE",
                 "CUSTOM"}


# -- the result -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Unsupported:
    operator: int  # index in its subgraph
    subgraph: int
    opcode: str
    version: int
    reason: str


@dataclass(frozen=True, slots=True)
class Hazard:
    operator: int
    subgraph: int
    opcode: str
    message: str
    aborts: bool  # kills the process during AllocateTensors (else: Invoke fails)


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """One buffer of the head: where it lives and during which operators."""

    tensor: str  # tensor name, or "scratch:<op>#<k>"
    kind: str  # "tensor" | "scratch"
    subgraph: int
    index: int  # tensor index, or scratch request index
    offset: int
    size: int  # bytes reserved (rounded up to 16)
    bytes: int  # bytes needed
    first_op: int  # execution step (0-based operator position; -1 = before the first operator)
    last_op: int
    offline: bool


@dataclass(frozen=True, slots=True)
class TailItem:
    what: str
    bytes: int  # growth of the tail, alignment padding included


@dataclass(frozen=True, slots=True)
class Arena:
    head: int
    tail: int
    total: int
    minimum: int  # smallest arena (multiple of 16) with which AllocateTensors succeeds
    minimum_reason: str  # which phase needs ``minimum``
    dominates: str  # "total" or "planning" / "prepare" / ...
    tail_items: tuple[TailItem, ...]


@dataclass(frozen=True, slots=True)
class OrderSearch:
    head: int  # head with the best order found
    saved: int  # bytes below TFLM's head
    order: tuple[int, ...]  # subgraph 0 operator indices in the new order
    evaluated: int


@dataclass(frozen=True, slots=True)
class OperatorReport:
    index: int
    subgraph: int
    opcode: str
    version: int
    supported: bool
    reason: str
    macs: int | None
    builtin_data: int
    init: tuple[int, ...]
    persistent: tuple[int, ...]
    scratch: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Flash:
    model_bytes: int
    constants: dict[str, int]  # dtype -> bytes of constant tensor data
    constant_bytes: int
    metadata_bytes: int
    other_bytes: int  # flatbuffer structure, names, quantization tables, padding


@dataclass(frozen=True)
class MicroEstimate:
    target: str
    kernels: str
    allocator: str
    tflm_version: str
    allocates: bool  # TFLM's AllocateTensors succeeds
    supported: bool  # allocates, and no predicted failure at Invoke
    unsupported: tuple[Unsupported, ...]
    hazards: tuple[Hazard, ...]
    arena: Arena | None  # None when AllocateTensors fails before the plan
    plan: tuple[PlanEntry, ...]
    schedule: tuple[tuple[int, int], ...]  # execution step -> (subgraph, operator)
    order_search: OrderSearch | None
    operators: tuple[OperatorReport, ...]
    resolver: str
    flash: Flash
    macs: int | None
    struct_sizes: dict[str, tuple[int, int]]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` contract (tests and CI rely on its keys)."""
        arena = self.arena
        return {
            "target": self.target,
            "kernels": self.kernels,
            "allocator": self.allocator,
            "tflm_version": self.tflm_version,
            "supported": self.supported,
            "allocates": self.allocates,
            "unsupported": [{"operator": u.operator, "subgraph": u.subgraph, "opcode": u.opcode,
                             "version": u.version, "reason": u.reason} for u in self.unsupported],
            "hazards": [asdict(h) for h in self.hazards],
            "arena": None if arena is None else {
                "head": arena.head, "tail": arena.tail, "total": arena.total,
                "minimum": arena.minimum, "dominates": arena.dominates,
                "minimum_reason": arena.minimum_reason,
                "tail_items": [asdict(t) for t in arena.tail_items]},
            "plan": [asdict(p) for p in self.plan],
            "schedule": [list(s) for s in self.schedule],
            "order_search": None if self.order_search is None else asdict(self.order_search),
            "flash_bytes": self.flash.model_bytes,
            "flash": asdict(self.flash),
            "macs": self.macs,
            "operators": [asdict(o) for o in self.operators],
            "resolver": self.resolver,
            "struct_sizes": {k: list(v) for k, v in self.struct_sizes.items()},
            "notes": list(self.notes),
        }


# -- the arena model ------------------------------------------------------------------------------
class _Failed(Exception):
    pass


class _ArenaSim:
    """``SingleArenaBufferAllocator`` with the arena size left open: each capacity check
    becomes "needs N >= x" and the largest x is the smallest arena that passes them all."""

    def __init__(self) -> None:
        self.head = 0  # head_ - buffer_head_
        self.temp = 0  # temp_ - buffer_head_
        self.tail = 0  # buffer_tail_ - tail_
        self.need = 0
        self.need_phase = ""
        self.items: list[TailItem] = []
        self.phase = "allocator creation"
        self.protected = 0  # end of the last temp TfLiteTensor struct a kernel still reads

    def _require(self, n: int) -> None:
        if n > self.need:
            self.need, self.need_phase = n, self.phase

    def persistent(self, size: int, align: int, what: str, over_temp: bool = False) -> None:
        # tail_ = AlignPointerDown(tail_ - size, align); TFLM fails only when it crosses head_.
        # ``over_temp``: a kernel's Prepare then writes the buffer while its temp TfLiteTensors
        # are still in use, so a tail that reaches into them corrupts them (measured: the
        # wheel fails such arenas), and the buffer must stay above temp_ too.
        new = align_up(self.tail + size, align)
        self._require((max(self.head, self.protected) if over_temp else self.head) + new)
        self.items.append(TailItem(what, new - self.tail))
        self.tail = new

    def temp_alloc(self, size: int, align: int) -> None:
        start = align_up(self.temp, align)
        self._require(start + size + self.tail)
        self.temp = start + size

    def resize_head(self, size: int, align: int = 1) -> None:
        # ResizeBuffer: head_ = AlignPointerUp(buffer_head_, align) + size (buffer_head_ aligned)
        self._require(size + self.tail)
        self.head = self.temp = size

    def reset_temp(self) -> None:
        self.temp = self.protected = self.head


def _tensor_bytes(t: Tensor) -> int | None:
    size = kmodels.TYPE_SIZES.get(t.type_name)
    if size is None:
        return None
    return math.prod(t.shape) * size if t.shape else size


def _is_constant(model: Model, t: Tensor) -> bool:
    """``GetFlatbufferTensorBuffer``: a buffer with a non-empty data vector. Buffers stored after
    the FlatBuffer (``offset``/``size``) are not looked at by TFLM."""
    if not 0 <= t.buffer < len(model.buffers):
        return False
    b = model.buffers[t.buffer]
    return b.offset <= 1 and b.size > 0 and b.data is not None


def _offline_offsets(model: Model) -> tuple[list[int] | None, str | None]:
    """``GetOfflinePlannedOffsets``: the last ``OfflineMemoryAllocation`` entry wins."""
    found: list[int] | None = None
    count = 0
    for md in model.metadata:
        if md.name != "OfflineMemoryAllocation":
            continue
        raw = model.buffers[md.buffer].data if 0 <= md.buffer < len(model.buffers) else None
        if raw is None or len(raw) < 12:
            return None, "OfflineMemoryAllocation metadata has no [version, subgraphs, n] header"
        words = struct.unpack(f"<{len(raw) // 4}i", bytes(raw)[: len(raw) // 4 * 4])
        count = words[2]
        found = list(words[3:])
    if found is None:
        return None, None
    total = sum(len(sg.tensors) for sg in model.subgraphs)
    if count != total:
        return None, (f"Nbr of offline buffer offsets ({count}) in metadata not equal nbr "
                      f"tensors ({total}) (micro_allocation_info.cc)")
    return found + [ONLINE] * max(0, total - len(found)), None


def _graph_view(model: Model) -> GraphView:
    ins, outs, oi, oo, calls = [], [], [], [], []
    for sg in model.subgraphs:
        ins.append(tuple(sg.inputs))
        outs.append(tuple(sg.outputs))
        oi.append(tuple(tuple(op.inputs) for op in sg.operators))
        oo.append(tuple(tuple(t for t in op.outputs if t >= 0) for op in sg.operators))
        calls.append(tuple(_callees(op, len(model.subgraphs)) for op in sg.operators))
    return GraphView(tuple(ins), tuple(outs), tuple(oi), tuple(oo), tuple(calls))


def _callees(op: Operator, n_subgraphs: int) -> tuple[int, ...]:
    keys = _CONTROL_FLOW.get(op.name, ())
    out = []
    for key in keys:
        v = op.options.get(key)
        if isinstance(v, int) and 0 <= v < n_subgraphs:
            out.append(v)
    return tuple(out)


@dataclass
class _Scratch:
    subgraph: int
    op: int
    bytes: int
    k: int  # request number within its op


# -- the estimate ---------------------------------------------------------------------------------
def estimate(model: Model, target: str | Target = "host", kernels: str = "reference",
             allocator: str | None = None, search: bool = True) -> MicroEstimate:
    """Predict what TFLite Micro does with ``model`` on ``target``.

    ``allocator``: ``"recording"`` (what the wheel uses; ``print_allocations()`` numbers) or
    ``"plain"`` (a firmware ``MicroInterpreter``; ``arena_used_bytes()``); default: the
    target's. ``search``: also look for an operator order with a smaller head.
    """
    tgt = get_target(target)
    if kernels not in KERNELS:
        raise UsageError(f"unknown kernels {kernels!r}; choose one of {', '.join(KERNELS)}")
    if kernels == "cmsis-nn" and tgt.column != "arm":
        raise UsageError("CMSIS-NN kernels run on Arm only; use --target cortex-m")
    alloc = allocator or tgt.allocator
    if alloc not in ("recording", "plain"):
        raise UsageError(f"unknown allocator {allocator!r}; choose recording or plain")

    sim = _ArenaSim()
    unsupported: list[Unsupported] = []
    hazards: list[Hazard] = []
    has_fc = any(op.name == "FULLY_CONNECTED" for sg in model.subgraphs for op in sg.operators)
    notes: list[str] = [n for n in tgt.notes if has_fc or "FULLY_CONNECTED" not in n]
    reports: list[OperatorReport] = []
    fail_reason: str | None = None

    def reject(sg: int, op: Operator | None, reason: str) -> None:
        nonlocal fail_reason
        if op is None:
            unsupported.append(Unsupported(-1, sg, "", 0, reason))
        else:
            unsupported.append(Unsupported(op.index, sg, op.opcode, op.version, reason))
        fail_reason = fail_reason or reason

    # 1. Allocator objects.
    if alloc == "recording":
        for s in ("RecordingSingleArenaBufferAllocator", "GreedyMemoryPlanner",
                  "RecordingMicroAllocator"):
            sim.persistent(tgt.size(s), tgt.align(s), s)
    else:
        for s in ("SingleArenaBufferAllocator", "GreedyMemoryPlanner", "MicroAllocator"):
            sim.persistent(tgt.size(s), tgt.align(s), s)
    # 2. The wheel's MicroResourceVariables (runtime.py count_resource_variables).
    n_res = len({op.options.get("shared_name") for sg in model.subgraphs
                 for op in sg.operators if op.name == "VAR_HANDLE"})
    if n_res:
        # MicroResourceVariables::Create(allocator, n) (micro_resource_variable.cc): the wheel
        # does it before the interpreter; a firmware must do the same (VAR_HANDLE's Prepare
        # fails without it), from the same arena.
        sim.persistent(tgt.size("MicroResourceVariables"), 16, "MicroResourceVariables")
        sim.persistent(tgt.size("MicroResourceVariable") * n_res, 16, "MicroResourceVariable[]")
        if alloc == "plain":
            notes.append(f"{n_res} resource variable(s): counts MicroResourceVariables::Create("
                         f"allocator, {n_res}) made from the same arena before the interpreter")
    # 3. StartModelAllocation.
    sim.phase = "model allocation"
    nsg = len(model.subgraphs)
    sim.persistent(tgt.size("MicroBuiltinDataAllocator"), tgt.align("MicroBuiltinDataAllocator"),
                   "MicroBuiltinDataAllocator")
    req_size, req_align = tgt.structs["ScratchBufferRequest"]
    sim.resize_head(req_size * MAX_SCRATCH_PER_OP, req_align)
    sub_size = tgt.size("SubgraphAllocations")
    if any(md.name == "COMPRESSION_METADATA" for md in model.metadata):
        notes.append("compression metadata: CompressionTensorData and decode buffers are not "
                     "modelled")
    sim.persistent(sub_size * nsg, tgt.align("SubgraphAllocations"), "SubgraphAllocations[]")
    for sg in model.subgraphs:
        sim.persistent(tgt.size("TfLiteEvalTensor") * len(sg.tensors),
                       tgt.align("TfLiteEvalTensor"), f"TfLiteEvalTensor[{len(sg.tensors)}]")
    for sg in model.subgraphs:
        sim.persistent(tgt.size("NodeAndRegistration") * len(sg.operators),
                       tgt.align("NodeAndRegistration"),
                       f"NodeAndRegistration[{len(sg.operators)}]")

    # 4. Registrations and builtin data (PrepareNodeAndRegistrationDataFromFlatbuffer).
    sim.phase = "parsing"
    effects: dict[tuple[int, int], kmodels.KernelEffects] = {}
    bd_sizes: dict[tuple[int, int], int] = {}
    for sg in model.subgraphs:
        if fail_reason:
            break
        for op in sg.operators:
            reason = _registration_problem(op, kernels)
            if reason:
                reject(sg.index, op, reason)
                break
            if op.name != "CUSTOM" and op.custom_options is not None:
                reject(sg.index, op, f"Unsupported behavior: found builtin operator {op.name} "
                                     "with custom options (micro_interpreter.cc)")
                break
            info = ops_table.lookup(op.name, op.custom_code)
            bd = info.builtin_data[tgt.column] if info and info.builtin_data else None
            if bd is not None:
                sim.persistent(bd[0], bd[1], f"{op.opcode} builtin data")
            bd_sizes[(sg.index, op.index)] = bd[0] if bd else 0

    # 5. Init, 6. Prepare.
    if not fail_reason:
        for sg in model.subgraphs:
            for op in sg.operators:
                effects[(sg.index, op.index)] = kmodels.kernel_effects(model, sg, op, tgt, kernels)
        sim.phase = "kernel init"
        for sg in model.subgraphs:
            for op in sg.operators:
                for size in effects[(sg.index, op.index)].init:
                    sim.persistent(size, 16, f"{op.opcode} init")
    scratch: list[_Scratch] = []
    if not fail_reason:
        sim.phase = "kernel prepare"
        t_size, t_align = tgt.structs["TfLiteTensor"]
        q_size, q_align = tgt.structs["TfLiteAffineQuantization"]
        # VAR_HANDLE's Prepare points its output's data at the op's resource id, so that
        # tensor is no longer planned; ASSIGN_VARIABLE's Prepare then allocates the variable's
        # buffer on first use (var_handle.cc, assign_variable.cc, micro_resource_variable.cc).
        handles: dict[tuple[int, int], tuple[Any, Any]] = {}
        allocated_resources: set[tuple[Any, Any]] = set()
        for sg in model.subgraphs:
            if fail_reason:
                break
            for op in sg.operators:
                fx = effects[(sg.index, op.index)]
                k = 0
                for ev in fx.prepare:
                    if ev.kind == "temp":
                        t = sg.tensors[ev.value]
                        sim.temp_alloc(t_size, t_align)
                        # What a kernel still reads after writing its persistent buffers:
                        # every temp TfLiteTensor struct, and (DeallocateTempTfLiteTensor) the
                        # TfLiteAffineQuantization's scale and zero_point pointers; not the
                        # zero-point array itself. Matches the wheel's smallest arenas.
                        sim.protected = sim.temp
                        if _has_quant(t):
                            sim.temp_alloc(q_size, q_align)
                            sim.protected = sim.temp - q_size + 2 * tgt.pointer
                            sim.temp_alloc(4 + 4 * t.quantization.scale.size, 4)  # type: ignore
                    elif ev.kind == "persist":
                        sim.persistent(ev.value, 16, f"{op.opcode} prepare", over_temp=True)
                    elif ev.kind == "scratch":
                        scratch.append(_Scratch(sg.index, op.index, ev.value, k))
                        k += 1
                if op.name == "VAR_HANDLE" and op.outputs:
                    handles[(sg.index, op.outputs[0])] = (op.options.get("container"),
                                                          op.options.get("shared_name"))
                elif op.name == "ASSIGN_VARIABLE" and len(op.inputs) == 2:
                    rid = handles.get((sg.index, op.inputs[0]))
                    if rid is not None and rid not in allocated_resources:
                        allocated_resources.add(rid)
                        nbytes = _tensor_bytes(sg.tensors[op.inputs[1]]) or 0
                        sim.persistent(nbytes, 16, f"resource variable {rid[1]}", over_temp=True)
                for h in fx.hazards:
                    hazards.append(Hazard(op.index, sg.index, op.opcode, h, fx.aborts))
                notes.extend(f"{op.locator}: {n}" for n in fx.notes)
                if fx.reject:
                    reject(sg.index, op, f"Node {op.opcode} (number {op.index}) failed to "
                                         f"prepare: {fx.reject}")
                    break
                if fx.aborts:
                    fail_reason = fail_reason or fx.hazards[-1]
                    break
                if k > MAX_SCRATCH_PER_OP:
                    reject(sg.index, op, f"Scratch buffer request exceeds limit per operator "
                                         f"({MAX_SCRATCH_PER_OP})")
                    break
                dyn = _dynamic_output(sg, op)
                if dyn is not None:
                    reject(sg.index, op, f"Op#{op.index} ({op.opcode}) of subgraph {sg.index} "
                                         f"has dynamic tensor #{dyn}: Dynamic tensors are not "
                                         "supported (micro_interpreter_graph.cc)")
                    break
                sim.reset_temp()
                sim.resize_head(req_size * (len(scratch) + MAX_SCRATCH_PER_OP), req_align)

    # 7. FinishModelAllocation: handles, then the plan.
    plan_entries: list[PlanEntry] = []
    schedule_pairs: list[tuple[int, int]] = []
    head = 0
    order_result: OrderSearch | None = None
    buffers: list[Buffer] = []
    graph = _graph_view(model)
    if not fail_reason:
        sim.phase = "memory planning"
        if scratch:
            sim.persistent(tgt.size("ScratchBufferHandle") * len(scratch),
                           tgt.align("ScratchBufferHandle"),
                           f"ScratchBufferHandle[{len(scratch)}]")
        sz, sz_align = tgt.structs["size_t"]
        sim.temp_alloc(sz * nsg, sz_align)
        n_tensors = sum(len(sg.tensors) for sg in model.subgraphs)
        ai, ai_align = tgt.structs["AllocationInfo"]
        sim.temp_alloc(ai * (n_tensors + len(scratch)), ai_align)
        offline, off_err = _offline_offsets(model)
        if off_err:
            reject(0, None, off_err)
    if not fail_reason:
        # AllocateVariables indexes the offline offsets with the *subgraph-local* tensor index.
        for sg in model.subgraphs:
            for t in sg.tensors:
                if t.is_variable and (offline is None or offline[t.index] == ONLINE):
                    vbytes = _tensor_bytes(t)
                    if vbytes is None:
                        reject(sg.index, None, f"tensor {t.name!r} of type {t.type_name} has no "
                                               "size in TFLM (memory_helpers.cc)")
                        break
                    sim.persistent(vbytes, 16, f"variable {t.name}")
        buffers, err = _planned_buffers(model, offline, scratch, set(handles))
        if err:
            reject(0, None, err)
    if not fail_reason:
        owners = [(s.subgraph, s.op) for s in scratch]
        lt = mark_lifetimes(graph, owners)
        _apply_lifetimes(buffers, lt)
        # GreedyMemoryPlanner::Init gets what is left between temp and tail: 40 B per buffer.
        sim._require(align_up(sim.temp, 16) + tgt.planner_bytes_per_buffer * len(buffers)
                     + align_up(sim.tail, 16))
        head = greedy_plan(buffers)
        by_step = sorted((step, key) for key, step in lt.op_scope.items())
        schedule_pairs = [key for _, key in by_step]
        plan_entries = _plan_entries(model, buffers, scratch)
        sim.phase = "committing the plan"
        sim.head = sim.temp = 0
        sim.resize_head(head, 16)
        sim.phase = "input/output tensors"
        for label, idxs in (("input", model.main.inputs), ("output", model.main.outputs)):
            sim.persistent(tgt.size("TfLiteTensorPtr") * len(idxs), 16, f"{label} TfLiteTensor*[]")
            for ti in idxs:
                t = model.main.tensors[ti]
                sim.persistent(tgt.size("TfLiteTensor"), tgt.align("TfLiteTensor"),
                               f"{label} TfLiteTensor {t.name}")
                if _has_quant(t):
                    sim.persistent(tgt.size("TfLiteAffineQuantization"),
                                   tgt.align("TfLiteAffineQuantization"),
                                   f"{label} quantization {t.name}")
                    sim.persistent(4 + 4 * t.quantization.scale.size, 4,  # type: ignore
                                   f"{label} zero points {t.name}")
        if search:
            order_result = _search(model, graph, buffers, scratch, head)

    arena: Arena | None = None
    allocates = fail_reason is None
    if allocates:
        total = head + sim.tail
        minimum = align_up(max(sim.need, total), 16)
        dominates = "total" if minimum == align_up(total, 16) else sim.need_phase
        arena = Arena(head=head, tail=sim.tail, total=total, minimum=minimum,
                      minimum_reason=sim.need_phase if dominates != "total" else
                      "the allocations that stay (head + tail)",
                      dominates=dominates, tail_items=tuple(sim.items))
    # Per-operator report and MACs.
    macs_total: int | None = 0
    for sg in model.subgraphs:
        for op in sg.operators:
            eff = effects.get((sg.index, op.index))
            bad = next((u for u in unsupported if u.subgraph == sg.index and
                        u.operator == op.index), None)
            m = _macs(model, sg, op)
            if m is None:
                macs_total = None
            elif macs_total is not None:
                macs_total += m
            reports.append(OperatorReport(
                op.index, sg.index, op.opcode, op.version, bad is None,
                bad.reason if bad else "", m, bd_sizes.get((sg.index, op.index), 0),
                tuple(eff.init) if eff else (), tuple(eff.persistent) if eff else (),
                tuple(eff.scratch) if eff else ()))
    supported = allocates and not any(not h.aborts for h in hazards)
    return MicroEstimate(
        target=tgt.name, kernels=kernels, allocator=alloc, tflm_version=tgt.tflm_version,
        allocates=allocates, supported=supported, unsupported=tuple(unsupported),
        hazards=tuple(hazards), arena=arena, plan=tuple(plan_entries),
        schedule=tuple(schedule_pairs), order_search=order_result, operators=tuple(reports),
        resolver=resolver_snippet(model), flash=flash_usage(model), macs=macs_total,
        struct_sizes=dict(tgt.structs), notes=tuple(dict.fromkeys(notes)))


def _has_quant(t: Tensor) -> bool:
    q = t.quantization
    return q is not None and q.scale.size > 0 and q.zero_point.size > 0


def _registration_problem(op: Operator, kernels: str) -> str | None:
    """``GetRegistrationFromOpCode`` (micro_op_resolver.cc) against the full resolver."""
    if op.name == "CUSTOM":
        if op.custom_code == ops_table.ETHOS_U:
            return ("custom op 'ethos-u' (a Vela-compiled model) needs an Ethos-U NPU build of "
                    "TFLM; Register_ETHOSU() is null elsewhere: Failed to get registration from "
                    "op code CUSTOM")
        if op.custom_code not in ops_table.CUSTOMS:
            return (f"custom op {op.custom_code!r} is not a TFLM op: register your own kernel "
                    "with AddCustom(); Failed to get registration from op code CUSTOM")
        return None
    if op.name.startswith("BUILTIN_"):
        return f"Op builtin_code out of range: {op.builtin_code}"
    if op.name not in ops_table.BUILTINS:
        hint = ops_table.NOT_IN_TFLM_HINTS.get(op.name)
        return (f"Didn't find op for builtin opcode '{op.name}': TFLM has no {op.name} kernel"
                + (f" ({hint})" if hint else ""))
    return None


def _dynamic_output(sg: Subgraph, op: Operator) -> int | None:
    """``CheckDynamicTensors``: an output dim <= 0 after Prepare (legacy ``[0]`` allowed)."""
    for ti in op.outputs:
        if ti < 0:
            continue
        shape = sg.tensors[ti].shape
        if len(shape) == 1 and shape[0] == 0:
            continue
        if op.name == "RESHAPE" and list(shape).count(-1) == 1:
            continue  # Prepare resolves a single -1
        if any(d <= 0 for d in shape):
            return ti
    return None


def _planned_buffers(model: Model, offline: list[int] | None, scratch: list[_Scratch],
                     pointed: set[tuple[int, int]] = frozenset()  # type: ignore[assignment]
                     ) -> tuple[list[Buffer], str | None]:
    """``InitializeAllocationInfo`` + ``ValidateSubgraph``: which buffers need allocating."""
    out: list[Buffer] = []
    g = 0
    for sg in model.subgraphs:
        for op in sg.operators:
            for ti in op.intermediates:
                if ti < 0:
                    continue
                nbytes = _tensor_bytes(sg.tensors[ti])
                if nbytes is None:
                    return [], _no_size(sg.tensors[ti])
                if nbytes:
                    return [], ("Does not support intermediate tensor with non-zero size: "
                                f"{nbytes} ({op.locator}, tensor {sg.tensors[ti].name!r})")
        for t in sg.tensors:
            nbytes = _tensor_bytes(t)
            if nbytes is None:
                return [], _no_size(t)
            off = offline[g] if offline is not None else ONLINE
            g += 1
            needs = (not _is_constant(model, t) and not t.is_variable and nbytes != 0
                     and (sg.index, t.index) not in pointed)
            if t.is_variable and off != ONLINE:
                needs = True
            if needs:
                out.append(Buffer("tensor", sg.index, t.index, nbytes, offline_offset=off))
    for r, s in enumerate(scratch):
        out.append(Buffer("scratch", s.subgraph, r, s.bytes, op=s.op))
    return out, None


def _no_size(t: Tensor) -> str:
    return (f"tensor {t.name!r} has type {t.type_name}, which has no size in TFLM "
            "(TfLiteTypeSizeOf, memory_helpers.cc), so planning fails")


def _apply_lifetimes(buffers: list[Buffer], lt: Any) -> None:
    for b in buffers:
        if b.kind == "tensor":
            b.first = lt.first.get((b.subgraph, b.index), -1)
            b.last = lt.last.get((b.subgraph, b.index), -1)
        else:
            b.first = lt.scratch_first.get(b.index, -1)
            b.last = lt.scratch_last.get(b.index, -1)


def _plan_entries(model: Model, buffers: list[Buffer], scratch: list[_Scratch]
                  ) -> list[PlanEntry]:
    out = []
    for b in buffers:
        if b.kind == "tensor":
            name = model.subgraphs[b.subgraph].tensors[b.index].name
        else:
            s = scratch[b.index]
            op = model.subgraphs[s.subgraph].operators[s.op]
            name = f"scratch:{op.opcode}@{s.subgraph}:{s.op}#{s.k}"
        out.append(PlanEntry(name, b.kind, b.subgraph, b.index, b.offset, b.size, b.bytes,
                             b.first - 1 if b.first >= 0 else -1,
                             b.last - 1 if b.last >= 0 else -1,
                             b.offline_offset != ONLINE))
    return out


def _search(model: Model, graph: GraphView, buffers: list[Buffer], scratch: list[_Scratch],
            head: int) -> OrderSearch:
    """Another topological order of subgraph 0 with a smaller greedy head (TFLM can't do it;
    reorder the operators in the file, e.g. with a model editor, to get it)."""
    sg = model.main
    n = len(sg.operators)
    variables = {t.index for t in sg.tensors if t.is_variable}
    extra: list[list[int]] = []
    last_effect = -1
    deps_reads: list[list[int]] = [list(op.inputs) for op in sg.operators]
    for op in sg.operators:
        touches = [t for t in op.inputs if t in variables]
        extra.append(touches)
    deps = dependencies(deps_reads, [[t for t in op.outputs if t >= 0] for op in sg.operators],
                        [[] for _ in range(n)])
    for i, op in enumerate(sg.operators):
        # Stateful ops and ops on variable tensors keep their relative order.
        if op.name in _SIDE_EFFECTS or extra[i]:
            if last_effect >= 0:
                deps[i].add(last_effect)
            last_effect = i
    owners = [(s.subgraph, s.op) for s in scratch]
    evaluated = 0

    def cost(order: list[int]) -> int:
        nonlocal evaluated
        evaluated += 1
        bufs = [Buffer(b.kind, b.subgraph, b.index, b.bytes, offline_offset=b.offline_offset,
                       op=b.op) for b in buffers]
        _apply_lifetimes(bufs, mark_lifetimes(graph, owners, order))
        return greedy_plan(bufs)

    budget = 200 if len(buffers) * n < 200_000 else 40
    order, best = search_order(n, deps, cost, budget=budget)
    return OrderSearch(head=best, saved=head - best, order=tuple(order), evaluated=evaluated)


def _macs(model: Model, sg: Subgraph, op: Operator) -> int | None:
    try:
        from tflite_ref.inspect import operator_macs
    except ImportError:  # the inspect module is optional here
        return None
    try:
        return int(operator_macs(model, sg, op))
    except Exception:  # noqa: BLE001 - a MAC count is informative only
        return None


# -- resolver and flash ---------------------------------------------------------------------------
def resolver_snippet(model: Model) -> str:
    """The ``MicroMutableOpResolver<N>`` this model needs, one ``Add...()`` per distinct op."""
    adds: list[str] = []
    unknown: list[str] = []
    for sg in model.subgraphs:
        for op in sg.operators:
            info = ops_table.lookup(op.name, op.custom_code)
            if op.name == "CUSTOM" and op.custom_code == ops_table.ETHOS_U:
                if "AddEthosU" not in adds:
                    adds.append("AddEthosU")  # registers only in Ethos-U builds of TFLM
                continue
            if info is None:
                label = op.opcode
                if label not in unknown:
                    unknown.append(label)
                continue
            if info.add not in adds:
                adds.append(info.add)
    adds.sort()
    lines = [f"static tflite::MicroMutableOpResolver<{len(adds)}> op_resolver;"]
    lines += [f"op_resolver.{a}();" for a in adds]
    for u in unknown:
        if u.startswith("CUSTOM:"):
            lines.append(f'// {u}: op_resolver.AddCustom("{u[7:]}", <your TFLMRegistration>);')
        else:
            lines.append(f"// {u}: not available in TFLite Micro")
    return "\n".join(lines)


def flash_usage(model: Model) -> Flash:
    """Bytes the model occupies in flash: TFLM reads weights in place from the model buffer."""
    constants: dict[str, int] = {}
    seen: set[int] = set()
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.buffer in seen or not _is_constant(model, t):
                continue
            seen.add(t.buffer)
            constants[t.type_name] = constants.get(t.type_name, 0) + model.buffers[t.buffer].size
    md = sum(model.buffers[m.buffer].size for m in model.metadata
             if 0 <= m.buffer < len(model.buffers))
    const = sum(constants.values())
    return Flash(model.size_bytes, dict(sorted(constants.items())), const, md,
                 max(0, model.size_bytes - const - md))


__all__ = [
    "KERNELS",
    "Arena",
    "Flash",
    "Hazard",
    "MicroEstimate",
    "OperatorReport",
    "OrderSearch",
    "PlanEntry",
    "TailItem",
    "Unsupported",
    "estimate",
    "flash_usage",
    "resolver_snippet",
]
