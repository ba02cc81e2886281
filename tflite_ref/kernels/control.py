"""Kernels: WHILE, IF, CALL and CALL_ONCE -- operators that run other subgraphs.

Upstream (read, not copied): LiteRT ``tflite/kernels/while.cc``, ``if.cc``, ``call_once.cc``,
``control_flow_common.h``; TFLM ``micro/kernels/while.cc``, ``if.cc``, ``call_once.cc``.
LiteRT has no CALL kernel (nor has TFLM); ours runs ``CallOptions.subgraph`` as a function.

The called subgraphs run with our own kernels, operator by operator, through the interpreter's
:class:`~tflite_ref.kernels.registry.Runtime`: prepare plans a subgraph for the shapes of the
values it will receive (LiteRT's ``CopyTensorsShapeAndType`` + ``AllocateTensors``), eval runs it.

Shapes.  LiteRT propagates the caller's input shapes into the called subgraph.  A WHILE body that
returns other shapes than it takes (a loop that grows a tensor) makes the WHILE outputs dynamic:
each iteration is then planned for the shapes it actually receives (``Eval_dynamic``), which the
interpreter caches per input shapes.  TFLM has no dynamic tensors: each subgraph keeps the shapes
written in the model, values are copied byte for byte, and a body that changes a shape is refused.

Bounds.  A WHILE loop stops with :class:`ResourceLimitError` after ``max_loop_iterations``
iterations of one execution (``Interpreter(..., max_loop_iterations=N)``, else the
``control_flow_iterations`` budget; hostile-models class 13/M: a condition that never turns
false); recursion between subgraphs is refused by the model validator and at run time, and
nesting is bounded by ``max_call_depth`` / ``control_flow_depth``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from tflite_ref.errors import KernelRuntimeError, ResourceLimitError
from tflite_ref.kernels.registry import (
    NO_OUTPUT,
    OpContext,
    Runtime,
    SubgraphInfo,
    register,
)
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.model.model import Operator
from tflite_ref.model.schema import tensor_type_name

# Control flow passes values of any type; the key dtype (first output's type) can be anything.
_ANY = tuple(int(t) for t in T) + (NO_OUTPUT,)

Shape = tuple[int, ...]


def _runtime(ctx: OpContext) -> Runtime:
    if ctx.runtime is None:
        ctx.unsupported("control flow needs a tflite_ref.Interpreter to run its subgraphs")
    return ctx.runtime


def _subgraph_index(ctx: OpContext, field: str) -> int:
    value = ctx.options.get(field)
    n = len(ctx.model.subgraphs)
    if not isinstance(value, int) or not 0 <= value < n:
        ctx.fail(f"option {field} = {value!r}, but the model has {n} subgraphs")
    return value


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _operands(ctx: OpContext, first: int = 0) -> tuple[list[Shape], list[int]]:
    """Shapes and types of inputs ``first..``: the values passed to a called subgraph."""
    shapes, types = [], []
    for i in range(first, ctx.num_inputs):
        t = ctx.require_input(i)
        shapes.append(ctx.input_shape(i))
        types.append(t.type)
    return shapes, types


def _call_shapes(ctx: OpContext, index: int, shapes: list[Shape]) -> list[Shape]:
    """The shapes a called subgraph is planned for: the caller's (LiteRT) or, emulating TFLM,
    the subgraph's own, which TFLM never changes (it copies the bytes of each value)."""
    if ctx.emulate != "tflm":
        return shapes
    sg = ctx.model.subgraphs[index]
    own = [sg.tensors[ti].shape for ti in sg.inputs]
    for k, (theirs, mine) in enumerate(zip(shapes, own)):
        if math.prod(theirs) != math.prod(mine):
            ctx.fail(f"input {k} has shape {list(theirs)} but subgraph {index} declares "
                     f"{list(mine)}; TFLite Micro would copy {math.prod(theirs)} elements into "
                     f"a tensor of {math.prod(mine)}")
    return own


def _check_outputs(ctx: OpContext, info: SubgraphInfo, what: str) -> None:
    """The subgraph's outputs have the types of the operator's outputs (values keep their type)."""
    for j, typ in enumerate(info.output_types):
        if j < ctx.num_outputs and ctx.op.outputs[j] >= 0 and ctx.output(j).type != typ:
            ctx.fail(f"output {j} is {ctx.output(j).type_name} but output {j} of the {what} "
                     f"(subgraph {info.index}) is {tensor_type_name(typ)}")


def _reshaped(values: list[np.ndarray], shapes: list[Shape] | tuple[Shape, ...]) -> list[np.ndarray]:
    return [v if v.shape == s else v.reshape(s) for v, s in zip(values, shapes)]


# =============================================================================================
# WHILE
# =============================================================================================
@dataclass(frozen=True, slots=True)
class WhileData:
    runtime: Runtime
    op: Operator
    cond: int
    body: int
    # Static loop: every iteration gives each subgraph the shapes it was planned for (the loop
    # values are reshaped to them, as while.cc Eval_static copies bytes into tensors planned
    # once).  None: a dynamic loop, each iteration planned for what it receives.
    cond_shapes: tuple[Shape, ...] | None
    body_shapes: tuple[Shape, ...] | None
    output_shapes: tuple[Shape, ...] | None
    check_cond: bool  # the condition's output shape is only known at eval


def _same_loop_shape(a: Shape, b: Shape) -> bool:
    """while.cc Prepare_impl: equal shapes, or a scalar against a shape whose first dimension is
    1 -- which LiteRT lets pass by adding the first dimensions (``total_elements == 1``).  We
    also require equal element counts: LiteRT would copy the bytes of one into the other."""
    if a == b:
        return True
    first = (a[0] if a else 0) + (b[0] if b else 0)
    return first == 1 and math.prod(a) == math.prod(b)


def _check_cond_output(ctx: OpContext, info: SubgraphInfo, shape: bool) -> None:
    """while.cc ``CheckCondOutput``: one BOOL, a scalar or of shape [1]."""
    typ, out_shape = info.output_types[0], info.output_shapes[0]
    if typ != T.BOOL:
        ctx.fail(f"the condition (subgraph {info.index}) returns {tensor_type_name(typ)}, "
                 "not BOOL")
    if shape and out_shape not in ((), (1,)):
        ctx.fail(f"the condition (subgraph {info.index}) returns shape {list(out_shape)}; it "
                 "must be a scalar or [1]")


def prepare_while(ctx: OpContext) -> WhileData:
    rt = _runtime(ctx)
    cond_i = _subgraph_index(ctx, "cond_subgraph_index")
    body_i = _subgraph_index(ctx, "body_subgraph_index")
    n = ctx.num_inputs
    if ctx.num_outputs != n:
        ctx.fail(f"WHILE has {_count(n, 'input')} and {_count(ctx.num_outputs, 'output')}; "
                 "they must match")
    if cond_i == body_i:
        ctx.fail(f"the condition and the body are the same subgraph ({cond_i})")
    cond_sg, body_sg = ctx.model.subgraphs[cond_i], ctx.model.subgraphs[body_i]
    if len(cond_sg.inputs) != n or len(cond_sg.outputs) != 1:
        ctx.fail(f"the condition (subgraph {cond_i}) takes {_count(len(cond_sg.inputs), 'input')} "
                 f"and returns {_count(len(cond_sg.outputs), 'output')}; WHILE passes {n} and "
                 "needs 1")
    if len(body_sg.inputs) != n or len(body_sg.outputs) != n:
        ctx.fail(f"the body (subgraph {body_i}) takes {_count(len(body_sg.inputs), 'input')} and "
                 f"returns {_count(len(body_sg.outputs), 'output')}; WHILE passes {n}")
    shapes, types = _operands(ctx)
    for j in range(n):
        if ctx.output(j).type != types[j]:
            ctx.fail(f"input {j} is {tensor_type_name(types[j])} but output {j} is "
                     f"{ctx.output(j).type_name}")
    cond_shapes = _call_shapes(ctx, cond_i, shapes)
    body_shapes = _call_shapes(ctx, body_i, shapes)
    cond = rt.prepare_subgraph(cond_i, cond_shapes, types, ctx.op)
    # A condition with dynamic tensors has its output shape checked per evaluation instead.
    _check_cond_output(ctx, cond, shape=not cond.has_dynamic)
    body = rt.prepare_subgraph(body_i, body_shapes, types, ctx.op)
    for j, (ti, to) in enumerate(zip(types, body.output_types)):
        if ti != to:
            ctx.fail(f"the body (subgraph {body_i}) takes loop variable {j} as "
                     f"{tensor_type_name(ti)} and returns it as {tensor_type_name(to)}")
    dynamic = body.has_dynamic or not all(
        _same_loop_shape(a, b) for a, b in zip(body_shapes, body.output_shapes))
    if dynamic and ctx.emulate == "tflm":
        changed = next((j for j, (a, b) in enumerate(zip(body_shapes, body.output_shapes))
                        if a != b), None)
        what = (f"loop variable {changed} from {list(body_shapes[changed])} to "
                f"{list(body.output_shapes[changed])}" if changed is not None
                else "a shape that depends on values")
        ctx.unsupported(f"the body (subgraph {body_i}) changes {what}; TFLite Micro has no "
                        "dynamic tensors")
    if dynamic:
        for j in range(n):
            ctx.set_dynamic_output(j)
        return WhileData(rt, ctx.op, cond_i, body_i, None, None, None, cond.has_dynamic)
    for j, shape in enumerate(body.output_shapes):
        ctx.set_output_shape(j, shape)
    if ctx.emulate == "tflm":
        # TFLM copies the body's outputs into the WHILE outputs as bytes: they keep the
        # shapes the model gives them.
        out_shapes = tuple(ctx.output(j).shape for j in range(n))
        for j, shape in enumerate(out_shapes):
            if math.prod(shape) != math.prod(body.output_shapes[j]):
                ctx.fail(f"output {j} has shape {list(shape)} but the body returns "
                         f"{list(body.output_shapes[j])}")
            ctx.set_output_shape(j, shape)
    else:
        out_shapes = tuple(body.output_shapes)
    return WhileData(rt, ctx.op, cond_i, body_i, tuple(cond_shapes), tuple(body_shapes),
                     out_shapes, cond.has_dynamic)


def _condition(data: WhileData, values: list[np.ndarray]) -> bool:
    rt = data.runtime
    cond_values = values if data.cond_shapes is None else _reshaped(values, data.cond_shapes)
    (flag,) = rt.invoke_subgraph(data.cond, cond_values, data.op)
    if data.check_cond and (flag.dtype != np.bool_ or flag.shape not in ((), (1,))):
        raise KernelRuntimeError(f"{data.op.locator}: the condition (subgraph {data.cond}) "
                                 f"returned {flag.dtype} of shape {list(flag.shape)}, not one "
                                 "BOOL")
    return bool(flag.reshape(-1)[0])


@register(Op.WHILE, *_ANY, prepare=prepare_while)
def while_(data: WhileData, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
    """while.cc ``Eval_static`` / ``Eval_dynamic``: cond(inputs); while true: body, cond."""
    rt = data.runtime
    values = list(inputs)
    limit = rt.max_loop_iterations
    iterations = 0
    while _condition(data, values):
        if iterations >= limit:
            raise ResourceLimitError(
                f"{data.op.locator}: the loop ran {limit} iterations and its condition "
                f"(subgraph {data.cond}) is still true; if the model is trusted and really loops "
                "longer, raise Interpreter(..., max_loop_iterations=...) or the "
                "control_flow_iterations budget", cve_class="M")
        iterations += 1
        body_in = values if data.body_shapes is None else _reshaped(values, data.body_shapes)
        values = rt.invoke_subgraph(data.body, body_in, data.op)
    if data.output_shapes is not None:
        values = _reshaped(values, data.output_shapes)
    return tuple(values)


# =============================================================================================
# IF
# =============================================================================================
@dataclass(frozen=True, slots=True)
class IfData:
    runtime: Runtime
    op: Operator
    then_index: int
    else_index: int
    then_shapes: tuple[Shape, ...]  # what each branch is planned for (TFLM: its own shapes)
    else_shapes: tuple[Shape, ...]
    output_shapes: tuple[Shape, ...] | None  # None: dynamic outputs


def prepare_if(ctx: OpContext) -> IfData:
    rt = _runtime(ctx)
    then_i = _subgraph_index(ctx, "then_subgraph_index")
    else_i = _subgraph_index(ctx, "else_subgraph_index")
    if ctx.num_inputs < 1:
        ctx.fail("IF needs its condition as input 0")
    cond = ctx.require_input(0)
    if cond.type != T.BOOL or math.prod(ctx.input_shape(0)) != 1:
        ctx.fail(f"the condition (input 0) is {cond.type_name} of shape "
                 f"{list(ctx.input_shape(0))}; it must be one BOOL")
    n_in, n_out = ctx.num_inputs - 1, ctx.num_outputs
    # if.cc checks both branches; TFLM's IfPrepare only the then-branch (and would copy past
    # the else-branch's tensors): both are checked here.
    for what, index in (("then", then_i), ("else", else_i)):
        sg = ctx.model.subgraphs[index]
        if len(sg.inputs) != n_in or len(sg.outputs) != n_out:
            ctx.fail(f"the {what}-branch (subgraph {index}) takes "
                     f"{_count(len(sg.inputs), 'input')} and returns "
                     f"{_count(len(sg.outputs), 'output')}; IF passes {n_in} and has {n_out}")
    shapes, types = _operands(ctx, first=1)
    then_shapes = _call_shapes(ctx, then_i, shapes)
    else_shapes = _call_shapes(ctx, else_i, shapes)
    then = rt.prepare_subgraph(then_i, then_shapes, types, ctx.op)
    other = rt.prepare_subgraph(else_i, else_shapes, types, ctx.op)
    _check_outputs(ctx, then, "then-branch")
    _check_outputs(ctx, other, "else-branch")
    dynamic = then.has_dynamic or other.has_dynamic or then.output_shapes != other.output_shapes
    if dynamic and ctx.emulate == "tflm":
        ctx.unsupported(f"the branches (subgraphs {then_i} and {else_i}) return shapes "
                        f"{[list(s) for s in then.output_shapes]} and "
                        f"{[list(s) for s in other.output_shapes]}; TFLite Micro has no "
                        "dynamic tensors")
    if dynamic:
        for j in range(n_out):
            ctx.set_dynamic_output(j)
        return IfData(rt, ctx.op, then_i, else_i, tuple(then_shapes), tuple(else_shapes), None)
    out_shapes = tuple(then.output_shapes)
    if ctx.emulate == "tflm":
        out_shapes = tuple(ctx.output(j).shape for j in range(n_out))
        for j, shape in enumerate(out_shapes):
            if math.prod(shape) != math.prod(then.output_shapes[j]):
                ctx.fail(f"output {j} has shape {list(shape)} but the branches return "
                         f"{list(then.output_shapes[j])}")
    for j, shape in enumerate(out_shapes):
        ctx.set_output_shape(j, shape)
    return IfData(rt, ctx.op, then_i, else_i, tuple(then_shapes), tuple(else_shapes), out_shapes)


@register(Op.IF, *_ANY, prepare=prepare_if)
def if_(data: IfData, cond: np.ndarray, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
    """if.cc: run the then-branch when the condition's (first) element is true, else the other."""
    if bool(cond.reshape(-1)[0]):
        index, shapes = data.then_index, data.then_shapes
    else:
        index, shapes = data.else_index, data.else_shapes
    values = data.runtime.invoke_subgraph(index, _reshaped(list(inputs), shapes), data.op)
    if data.output_shapes is not None:
        values = _reshaped(values, data.output_shapes)
    return tuple(values)


# =============================================================================================
# CALL
# =============================================================================================
@dataclass(frozen=True, slots=True)
class CallData:
    runtime: Runtime
    op: Operator
    index: int
    input_shapes: tuple[Shape, ...]
    output_shapes: tuple[Shape, ...] | None


def prepare_call(ctx: OpContext) -> CallData:
    rt = _runtime(ctx)
    index = _subgraph_index(ctx, "subgraph")
    sg = ctx.model.subgraphs[index]
    if len(sg.inputs) != ctx.num_inputs or len(sg.outputs) != ctx.num_outputs:
        ctx.fail(f"subgraph {index} takes {_count(len(sg.inputs), 'input')} and returns "
                 f"{_count(len(sg.outputs), 'output')}; CALL passes {ctx.num_inputs} and has "
                 f"{ctx.num_outputs}")
    shapes, types = _operands(ctx)
    shapes = _call_shapes(ctx, index, shapes)
    info = rt.prepare_subgraph(index, shapes, types, ctx.op)
    _check_outputs(ctx, info, "called subgraph")
    if info.has_dynamic:
        for j in range(ctx.num_outputs):
            ctx.set_dynamic_output(j)
        return CallData(rt, ctx.op, index, tuple(shapes), None)
    for j, shape in enumerate(info.output_shapes):
        ctx.set_output_shape(j, shape)
    return CallData(rt, ctx.op, index, tuple(shapes), tuple(info.output_shapes))


@register(Op.CALL, *_ANY, prepare=prepare_call)
def call(data: CallData, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Run the subgraph on the inputs; its outputs are the operator's (no LiteRT kernel)."""
    values = data.runtime.invoke_subgraph(data.index, _reshaped(list(inputs), data.input_shapes),
                                          data.op)
    return tuple(values)


# =============================================================================================
# CALL_ONCE
# =============================================================================================
@dataclass(frozen=True, slots=True)
class CallOnceData:
    runtime: Runtime
    op: Operator
    index: int
    key: Hashable


def prepare_call_once(ctx: OpContext) -> CallOnceData:
    rt = _runtime(ctx)
    index = _subgraph_index(ctx, "init_subgraph_index")
    if ctx.num_inputs or ctx.num_outputs:
        ctx.fail("CALL_ONCE takes no inputs and has no outputs")
    if index == ctx.subgraph.index:
        ctx.fail(f"the initialisation subgraph is this subgraph ({index})")
    sg = ctx.model.subgraphs[index]
    if sg.inputs or sg.outputs:
        ctx.fail(f"the initialisation subgraph {index} has inputs or outputs; it must have none")
    rt.prepare_subgraph(index, (), (), ctx.op)
    # LiteRT marks the init subgraph done interpreter-wide (call_once.cc, the subgraph's
    # initialization_status_map); TFLM marks the operator (its OpData::has_run).
    key: Hashable = (("subgraph", index) if ctx.emulate == "tflite"
                     else ("operator", ctx.subgraph.index, ctx.op.index))
    return CallOnceData(rt, ctx.op, index, key)


@register(Op.CALL_ONCE, NO_OUTPUT, prepare=prepare_call_once)
def call_once(data: CallOnceData) -> tuple[()]:
    """Run the init subgraph on the first invoke of an interpreter's life, then never again
    (``reset_all_variables()`` does not re-arm it in either runtime)."""
    rt = data.runtime
    if data.key not in rt.once:
        rt.invoke_subgraph(data.index, [], data.op)
        rt.once.add(data.key)  # marked after a successful run, as both runtimes do
    return ()


__all__ = ["CallData", "CallOnceData", "IfData", "WhileData"]
