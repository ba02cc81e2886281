"""TFLite Micro's memory plan for the arena head: lifetimes, the greedy planner, order search.

Follows, rule for rule:

- ``tensorflow/lite/micro/micro_allocation_info.cc`` (``InitializeAllocationInfo``,
  ``MarkAllocationLifetimes``, ``MarkSubgraphLifetimesIfNecessary``): which buffers are planned
  and when each is first created and last used;
- ``tensorflow/lite/micro/micro_allocator.cc`` (``CreatePlan``): sizes rounded up to 16;
- ``tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc``
  (``CalculateOffsetsIfNeeded``): first fit by decreasing size, with TFLM's exact tie-breaks.

Beyond TFLM: :func:`search_order` looks for another valid execution order of subgraph 0 whose
greedy plan is smaller (TFLM always runs the flatbuffer's operator order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

ONLINE = -1  # kOnlinePlannedBuffer
ALIGNMENT = 16  # MicroArenaBufferAlignment(), micro_arena_constants.h


def align_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


@dataclass(slots=True)
class Buffer:
    """One planned buffer (``AllocationInfo`` that ``needs_allocating``)."""

    kind: str  # "tensor" or "scratch"
    subgraph: int
    index: int  # tensor index in its subgraph, or scratch request index
    bytes: int  # unaligned, as TfLiteEvalTensorByteLength / the kernel's request
    first: int = -1
    last: int = -1
    offline_offset: int = ONLINE
    op: int = -1  # scratch: the requesting operator (index in its subgraph)
    offset: int = -1  # filled by the planner

    @property
    def size(self) -> int:
        """Bytes the planner reserves: ``AlignSizeUp(bytes, 16)`` (micro_allocator.cc
        CreatePlan)."""
        return align_up(self.bytes, ALIGNMENT)


def greedy_plan(buffers: Sequence[Buffer]) -> int:
    """Place ``buffers`` as ``GreedyMemoryPlanner`` does; sets ``.offset``, returns the head size.

    Order: offline buffers first in insertion order; then online buffers by size, largest first,
    ties by *higher* insertion index first (online ids are written from the back of
    ``buffer_ids_sorted_`` and ``ReverseSortInPlace`` is a stable bubble sort). Each online
    buffer takes the first gap, walking the placed buffers that overlap it in time in offset
    order; offline buffers keep their offsets unchecked.
    """
    n = len(buffers)
    if n == 0:
        return 0
    offline = [i for i in range(n) if buffers[i].offline_offset != ONLINE]
    online = [i for i in range(n) if buffers[i].offline_offset == ONLINE]
    online.reverse()
    online.sort(key=lambda i: -buffers[i].size)  # Python's sort is stable, like the bubble sort
    order = offline + online
    placed: list[int] = []  # buffer ids sorted by offset (ties: insertion order)
    placed_offsets: list[int] = []
    for rank, bid in enumerate(order):
        b = buffers[bid]
        if b.offline_offset != ONLINE:
            offset = b.offline_offset
        elif rank == 0:
            offset = 0
        else:
            offset = 0
            for pid, poff in zip(placed, placed_offsets, strict=True):
                p = buffers[pid]
                if p.first > b.last or b.first > p.last:
                    continue  # not simultaneously active (closed intervals)
                if poff - offset >= b.size:
                    break  # the gap before this active buffer is big enough
                offset = max(offset, poff + p.size)
        b.offset = offset
        # Insert after every entry whose offset is <= this one; in front of the list only when
        # strictly smaller than the first entry (the linked-list insert of the planner).
        pos = len(placed)
        for k, poff in enumerate(placed_offsets):
            if poff > offset:
                pos = k
                break
        placed.insert(pos, bid)
        placed_offsets.insert(pos, offset)
    return max(b.offset + b.size for b in buffers)


# -- lifetimes ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GraphView:
    """What lifetime marking needs from a model: per subgraph its inputs, outputs, operators
    (inputs, outputs, and the subgraphs a control-flow op runs, in TFLM's marking order)."""

    inputs: tuple[tuple[int, ...], ...]
    outputs: tuple[tuple[int, ...], ...]
    op_inputs: tuple[tuple[tuple[int, ...], ...], ...]
    op_outputs: tuple[tuple[tuple[int, ...], ...], ...]
    op_calls: tuple[tuple[tuple[int, ...], ...], ...]  # IF: (then, else); WHILE: (cond, body)


@dataclass(slots=True)
class Lifetimes:
    first: dict[tuple[int, int], int] = field(default_factory=dict)  # (subgraph, tensor) -> scope
    last: dict[tuple[int, int], int] = field(default_factory=dict)
    scratch_first: dict[int, int] = field(default_factory=dict)
    scratch_last: dict[int, int] = field(default_factory=dict)
    op_scope: dict[tuple[int, int], int] = field(default_factory=dict)  # (subgraph, op) -> slot


def mark_lifetimes(graph: GraphView, scratch_owner: Sequence[tuple[int, int]],
                   order: Sequence[int] | None = None) -> Lifetimes:
    """``AllocationInfoBuilder::MarkAllocationLifetimes(0)`` with one global scope counter.

    ``scratch_owner[r]`` is the (subgraph, operator) that made scratch request ``r``.
    ``order`` replaces subgraph 0's operator order (for the order search); None = file order.
    """
    lt = Lifetimes()
    scope = 0
    by_op: dict[tuple[int, int], list[int]] = {}
    for r, owner in enumerate(scratch_owner):
        by_op.setdefault(owner, []).append(r)

    def first(key: tuple[int, int], s: int) -> None:
        if key not in lt.first:
            lt.first[key] = s

    def last(key: tuple[int, int], s: int) -> None:
        lt.last[key] = s

    def mark(sg: int, ops: Sequence[int] | None = None) -> None:
        nonlocal scope
        for t in graph.inputs[sg]:
            first((sg, t), scope)
            last((sg, t), scope)
        for i in (range(len(graph.op_inputs[sg])) if ops is None else ops):
            scope += 1
            lt.op_scope.setdefault((sg, i), scope)
            for t in graph.op_outputs[sg][i]:
                first((sg, t), scope)
            start = scope
            for callee in graph.op_calls[sg][i]:
                scope += 1
                mark(callee)
            for t in graph.op_inputs[sg][i]:
                if t >= 0:
                    last((sg, t), scope)
            for t in graph.op_outputs[sg][i]:
                last((sg, t), scope)
            for r in by_op.get((sg, i), ()):
                lt.scratch_first.setdefault(r, start)
                lt.scratch_last[r] = scope
        for t in graph.outputs[sg]:
            first((sg, t), scope)
            last((sg, t), scope)

    mark(0, order)
    return lt


# -- execution-order search -----------------------------------------------------------------------
def dependencies(op_inputs: Sequence[Sequence[int]], op_outputs: Sequence[Sequence[int]],
                 extra_reads: Sequence[Sequence[int]] = ()) -> list[set[int]]:
    """For each operator, the operators that must run before it: producers of its inputs, and,
    for tensors written more than once (variables, in-place state), the previous writer and
    readers, so that every reordering computes the same values."""
    n = len(op_inputs)
    deps: list[set[int]] = [set() for _ in range(n)]
    writers: dict[int, int] = {}
    readers: dict[int, list[int]] = {}
    for i in range(n):
        reads = [t for t in list(op_inputs[i]) + list(extra_reads[i] if extra_reads else ())
                 if t >= 0]
        for t in reads:
            if t in writers:
                deps[i].add(writers[t])
            readers.setdefault(t, []).append(i)
        for t in op_outputs[i]:
            if t in writers:
                deps[i].add(writers[t])
            for r in readers.get(t, ()):
                if r != i:
                    deps[i].add(r)
            writers[t] = i
            readers[t] = []
    return deps


def search_order(n_ops: int, deps: Sequence[set[int]], cost: Callable[[list[int]], int],
                 budget: int = 200) -> tuple[list[int], int]:
    """A valid topological order of ``n_ops`` operators with a small ``cost`` (the head size).

    TFLM's own order is the baseline. Candidates: greedy list schedules under several priority
    rules (run the op that frees the most bytes / produces the least, depth-first along chains),
    then a local search that moves single operators to other valid positions, keeping any
    improvement; at most ``budget`` cost evaluations in all. Returns (order, cost).
    """
    identity = list(range(n_ops))
    best, best_cost = identity, cost(identity)
    evaluations = 1
    if n_ops < 3:
        return best, best_cost
    succ: list[list[int]] = [[] for _ in range(n_ops)]
    for i, d in enumerate(deps):
        for j in d:
            succ[j].append(i)

    def list_schedule(priority: Callable[[int, list[int]], tuple[int, ...]]) -> list[int]:
        indeg = [len(d) for d in deps]
        ready = [i for i in range(n_ops) if indeg[i] == 0]
        order: list[int] = []
        while ready:
            pick = min(ready, key=lambda i: priority(i, order))
            ready.remove(pick)
            order.append(pick)
            for s in succ[pick]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    ready.append(s)
        return order

    def depth_first(i: int, order: list[int]) -> tuple[int, ...]:
        # Prefer a successor of the op just run (finish one branch before starting another).
        return (0 if order and i in succ[order[-1]] else 1, i)

    def reverse_index(i: int, order: list[int]) -> tuple[int, ...]:
        return (-i,)

    for rule in (depth_first, reverse_index):
        cand = list_schedule(rule)
        if cand != best:
            c = cost(cand)
            evaluations += 1
            if c < best_cost:
                best, best_cost = cand, c
    # Local search: move one operator to the earliest/latest position its dependencies allow.
    improved = True
    while improved and evaluations < budget:
        improved = False
        for op in range(n_ops):
            if evaluations >= budget:
                break
            pos = best.index(op)
            lo = max((best.index(d) for d in deps[op]), default=-1) + 1
            hi = min((best.index(s) for s in succ[op]), default=n_ops) - 1
            for target in {lo, hi, (lo + hi) // 2}:
                if target == pos or target < lo or target > hi:
                    continue
                cand = best[:pos] + best[pos + 1:]
                cand.insert(target, op)
                c = cost(cand)
                evaluations += 1
                if c < best_cost:
                    best, best_cost = cand, c
                    improved = True
                    break
                if evaluations >= budget:
                    break
    return best, best_cost


def is_topological(order: Sequence[int], deps: Sequence[set[int]]) -> bool:
    seen: set[int] = set()
    for i in order:
        if not deps[i] <= seen:
            return False
        seen.add(i)
    return len(seen) == len(deps)


__all__ = [
    "ALIGNMENT",
    "ONLINE",
    "Buffer",
    "GraphView",
    "Lifetimes",
    "align_up",
    "dependencies",
    "greedy_plan",
    "is_topological",
    "mark_lifetimes",
    "search_order",
]
