"""The LiteRT-compatible :class:`Interpreter`: plans execution, owns tensor storage, runs kernels.

Switching from LiteRT is one import::

    from tflite_ref import Interpreter            # instead of ai_edge_litert.interpreter
    it = Interpreter(model_path="model.tflite")   # emulate="tflm" for TFLite Micro's arithmetic
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    y = it.get_tensor(it.get_output_details()[0]["index"])

Unlike LiteRT, every tensor keeps its value after ``invoke()`` (as with
``experimental_preserve_all_tensors=True``), and ``invoke(observer=...)`` calls
``observer(subgraph, op_index, operator, inputs, outputs)`` after each operator -- including the
operators of subgraphs that control flow (WHILE, IF, CALL, CALL_ONCE) runs, with their subgraph
index, before the controlling operator's own call.

How a model runs (the engine is :class:`_Executor`, the :class:`~tflite_ref.kernels.registry.Runtime`
that control-flow and resource kernels call):

- ``allocate_tensors()`` prepares subgraph 0 (and every signature's subgraph) operator by
  operator; a control-flow operator prepares the subgraphs it calls for the shapes it will pass
  them (LiteRT's ``CopyTensorsShapeAndType`` + ``AllocateTensors``).  Each subgraph is planned
  per tuple of input shapes, and the plans are cached, so a WHILE loop whose body changes shapes
  plans each new shape once.
- As in LiteRT (``Subgraph::PrepareOpsStartingAt``), preparation stops after an operator whose
  output shape depends on values; the operators after it are prepared during ``invoke()`` for the
  shapes that operator actually produced, and again whenever those shapes change.  Every
  operator's kernel is still looked up at allocation, so an unsupported operator is reported there.
- Variable tensors (``is_variable``) start at 0, int8 ones at their zero point, whatever their
  buffer holds (LiteRT ``ResetVariableTensor`` after allocation; TFLM ``ResetTensorData``), and
  ``reset_all_variables()`` puts them back there.  Resource variables (VAR_HANDLE) and CALL_ONCE
  survive it, as in LiteRT; emulating TFLM, resource variables go back to their default too.
- Budgets (:mod:`tflite_ref.budgets`): ``control_flow_iterations`` bounds one execution of a
  WHILE loop, ``control_flow_depth`` the nesting of called subgraphs and ``invoke_seconds`` the
  wall time of one ``invoke()`` (checked before every operator, so every loop iteration too);
  ``Interpreter(max_loop_iterations=..., max_call_depth=...)`` overrides the first two for one
  interpreter, ``Interpreter(budgets=Budgets(...))`` every budget (loading, allocation, invoke).  Exceeding any raises :class:`~tflite_ref.errors.ResourceLimitError` naming the
  operator.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_ref import budgets
from tflite_ref import budgets as budgets_mod  # ``budgets`` is also Interpreter's keyword
from tflite_ref import kernels as _kernels  # noqa: F401 - registers every kernel family
from tflite_ref.errors import (
    InternalError,
    KernelRuntimeError,
    ModelValidationError,
    ResourceLimitError,
    TFLiteRefError,
    UnsupportedOpError,
    UsageError,
)
from tflite_ref.kernels.registry import (
    EMULATIONS,
    Kernel,
    OpContext,
    SubgraphInfo,
    key_dtype,
    lookup,
)
from tflite_ref.kernels.variables import ResourceVariables
from tflite_ref.model.model import Model, Operator, Subgraph, Tensor
from tflite_ref.model.reader import load
from tflite_ref.model.schema import TensorType, tensor_type_name

Observer = Callable[[int, int, Operator, Sequence["np.ndarray | None"], Sequence[np.ndarray]], None]
Shape = tuple[int, ...]


# RESOURCE tensors hold an int32 id at run time (var_handle.cc writes 4 bytes); VARIANT ones are
# never produced by our kernels.
_HANDLE_TYPES = (int(TensorType.RESOURCE), int(TensorType.VARIANT))
_INT32 = np.dtype(np.int32)


@dataclass(frozen=True, slots=True)
class PreparedOp:
    op: Operator
    kernel: Kernel
    data: Any
    output_shapes: tuple[Shape, ...]
    dynamic_outputs: frozenset[int]


@dataclass
class _Variant:
    """A subgraph planned for one tuple of input shapes."""

    key: tuple[Shape, ...]
    shapes: list[Shape]  # every tensor's planned (after a dynamic op: last seen) shape
    ops: list[PreparedOp | None]
    kernels: list[Kernel]  # looked up for every operator up front
    ready: int = 0  # ops[:ready] are prepared for the shapes in `shapes`
    has_dynamic: bool = False  # some operator decides an output shape at eval


@dataclass
class _SubgraphPlan:
    """One subgraph's tensor storage and its plans (one per tuple of input shapes)."""

    subgraph: Subgraph
    values: list[np.ndarray | None]
    input_shapes: list[Shape]  # what allocate_tensors() plans subgraph 0 for (resize_tensor_input)
    variants: dict[tuple[Shape, ...], _Variant] = field(default_factory=dict)
    current: _Variant | None = None

    @property
    def shapes(self) -> list[Shape]:
        if self.current is not None:
            return self.current.shapes
        shapes = [t.shape for t in self.subgraph.tensors]
        for ti, shape in zip(self.subgraph.inputs, self.input_shapes):
            shapes[ti] = shape
        return shapes


def _storage_dtype(t: Tensor) -> np.dtype | None:
    return _INT32 if t.type in _HANDLE_TYPES else t.dtype


class _Executor:
    """Plans and runs subgraphs: the :class:`~tflite_ref.kernels.registry.Runtime` kernels see."""

    def __init__(self, model: Model, emulate: str, max_loop_iterations: int | None,
                 max_call_depth: int | None) -> None:
        self.model = model
        self.emulate = emulate
        self._loops = max_loop_iterations  # None: the current budgets decide
        self._depth = max_call_depth
        self.deadline: budgets.Deadline | None = None
        self.resources: Any = ResourceVariables(model, emulate)
        self.once: set[Hashable] = set()
        self.plans: dict[int, _SubgraphPlan] = {}
        self.observer: Observer | None = None
        self._active: list[int] = []  # subgraphs being prepared or run, outermost first

    # -- budgets --------------------------------------------------------------------------------
    @property
    def max_loop_iterations(self) -> int:
        if self._loops is not None:
            return self._loops
        limit = budgets.current().control_flow_iterations
        return sys.maxsize if limit is None else limit

    @property
    def max_call_depth(self) -> int:
        if self._depth is not None:
            return self._depth
        limit = budgets.current().control_flow_depth
        return sys.maxsize if limit is None else limit

    # -- plans ----------------------------------------------------------------------------------
    def plan(self, index: int) -> _SubgraphPlan:
        plan = self.plans.get(index)
        if plan is None:
            sg = self.model.subgraphs[index]
            plan = _SubgraphPlan(sg, [None] * len(sg.tensors),
                                 [sg.tensors[ti].shape for ti in sg.inputs])
            self.plans[index] = plan
            self._init_values(plan)
        return plan

    def _init_values(self, plan: _SubgraphPlan) -> None:
        for t in plan.subgraph.tensors:
            if t.is_variable:
                plan.values[t.index] = self._variable_start(t, t.shape)
            elif t.data is not None and t.sparsity is None and t.dtype is not None:
                plan.values[t.index] = t.data

    def _variable_start(self, t: Tensor, shape: Shape) -> np.ndarray | None:
        """0, or an int8 tensor's zero point: LiteRT ``ResetVariableTensor`` (core/api/
        tensor_utils.cc) memsets ``params.zero_point`` -- set only for one-scale quantization --
        and TFLM ``ResetTensorData`` its first zero point."""
        if t.dtype is None or t.dtype == np.dtype(np.object_):
            return None
        value = 0
        q = t.quantization
        if t.type == TensorType.INT8 and q is not None and q.zero_point.size and (
                self.emulate == "tflm" or (q.zero_point.size == 1 and q.scale.size == 1)):
            value = int(q.zero_point[0])
        return np.full(shape, value, dtype=t.dtype)

    def reset_variables(self) -> None:
        for plan in self.plans.values():
            for t in plan.subgraph.tensors:
                if t.is_variable:
                    plan.values[t.index] = self._variable_start(t, plan.shapes[t.index])
        if self.emulate == "tflm":
            self.resources.reset()
            # TFLM's MicroInterpreter::Reset() also calls each kernel's reset, clearing state a
            # kernel keeps in its own data (e.g. SignalFilterBankSpectralSubtraction's noise
            # estimate): such op data offers a reset() method.
            for plan in self.plans.values():
                for variant in plan.variants.values():
                    for prepared in variant.ops:
                        reset = getattr(getattr(prepared, "data", None), "reset", None)
                        if callable(reset):
                            reset()

    # -- preparing ------------------------------------------------------------------------------
    def prepare(self, plan: _SubgraphPlan, key: tuple[Shape, ...], caller: Operator | None
                ) -> _Variant:
        """The plan of ``plan``'s subgraph for input shapes ``key`` (prepared on first use)."""
        variant = plan.variants.get(key)
        if variant is None:
            sg = plan.subgraph
            shapes = [t.shape for t in sg.tensors]
            for ti, shape in zip(sg.inputs, key):
                shapes[ti] = shape
            kernels = []
            for op in sg.operators:
                ctx = OpContext(model=self.model, subgraph=sg, op=op, emulate=self.emulate,
                                input_shapes=(), runtime=self)
                kernels.append(lookup(op, key_dtype(op, sg), ctx.describe_types(), self.emulate))
            variant = _Variant(key, shapes, [None] * len(sg.operators), kernels)
            self._enter(sg.index, caller)
            try:
                self._prepare_from(plan, variant, 0)
            finally:
                self._active.pop()
            plan.variants[key] = variant
        plan.current = variant
        return variant

    @staticmethod
    def _located(exc: BaseException, op: Operator, stage: str) -> BaseException | None:
        """The error a kernel's stray exception stands for, located at ``op``; None for a bug.

        A bad model must surface as one of our errors naming the operator: helper functions
        (``tflite_ref.quant``) know no operator, so their errors get its locator here; a
        ``UsageError`` from them is the model's fault at this point (a parameter out of range).
        """
        if isinstance(exc, TFLiteRefError):
            if op.locator in str(exc):
                return exc
            cls: type[TFLiteRefError] = type(exc)
            if isinstance(exc, UsageError):
                cls = ModelValidationError if stage == "prepare" else KernelRuntimeError
            return cls(f"{op.locator}: {exc}", cve_class=exc.cve_class)
        if isinstance(exc, MemoryError) or (
                isinstance(exc, ValueError) and "array is too big" in str(exc)):
            return ResourceLimitError(f"{op.locator}: {stage} needs more memory than is "
                                      f"available ({type(exc).__name__}: {exc})")
        if isinstance(exc, (FloatingPointError, ZeroDivisionError)):
            cls = ModelValidationError if stage == "prepare" else KernelRuntimeError
            return cls(f"{op.locator}: {exc}")
        return None

    def _prepare_from(self, plan: _SubgraphPlan, variant: _Variant, start: int) -> None:
        """Prepare operators ``start..`` until one whose output shapes depend on values."""
        sg = plan.subgraph
        for k in range(start, len(sg.operators)):
            op = sg.operators[k]
            kernel = variant.kernels[k]
            input_shapes = tuple(variant.shapes[i] if i >= 0 else None for i in op.inputs)
            ctx = OpContext(model=self.model, subgraph=sg, op=op, emulate=self.emulate,
                            input_shapes=input_shapes, runtime=self)
            try:
                data = kernel.prepare(ctx)
            except Exception as exc:
                located = self._located(exc, op, "prepare")
                if located is exc:
                    raise
                if located is not None and not (kernel.plugin and
                                                not isinstance(exc, TFLiteRefError)):
                    raise located from exc
                if kernel.plugin:
                    raise KernelRuntimeError(
                        f"{op.locator}: the prepare function registered for custom operator "
                        f"{op.custom_code!r} raised {type(exc).__name__}: {exc}") from exc
                raise InternalError(f"{op.locator}: prepare failed: {exc!r}") from exc
            out_shapes = list(ctx.output_shapes)
            for j in range(len(out_shapes), len(op.outputs)):
                out_shapes.append(variant.shapes[op.outputs[j]])
            for j, ti in enumerate(op.outputs):
                variant.shapes[ti] = out_shapes[j]
            variant.ops[k] = PreparedOp(op, kernel, data, tuple(out_shapes),
                                        frozenset(ctx.dynamic_outputs))
            variant.ready = k + 1
            if ctx.dynamic_outputs:
                variant.has_dynamic = True
                return

    def _enter(self, index: int, caller: Operator | None) -> None:
        """Push ``index`` on the call stack: refuse recursion and nesting past the budget."""
        where = f"{caller.locator}: " if caller is not None else ""
        if index in self._active:
            chain = " -> ".join(map(str, [*self._active, index]))
            raise ModelValidationError(f"{where}subgraphs call each other recursively ({chain})")
        limit = self.max_call_depth
        if len(self._active) >= limit:
            chain = " -> ".join(map(str, self._active[:8]))
            raise ResourceLimitError(
                f"{where}control flow nests deeper than {limit} subgraphs ({chain} ...); "
                "raise Interpreter(..., max_call_depth=...) or the control_flow_depth budget "
                "if the model is trusted", cve_class="M")
        self._active.append(index)

    # -- the Runtime protocol -------------------------------------------------------------------
    def prepare_subgraph(self, index: int, input_shapes: Sequence[Shape],
                         input_types: Sequence[int], caller: Operator) -> SubgraphInfo:
        if not 0 <= index < len(self.model.subgraphs):
            raise ModelValidationError(f"{caller.locator}: calls subgraph {index}, but the model "
                                       f"has {len(self.model.subgraphs)} subgraphs")
        plan = self.plan(index)
        sg = plan.subgraph
        if len(input_shapes) != len(sg.inputs):
            raise ModelValidationError(f"{caller.locator}: passes {len(input_shapes)} values to "
                                       f"subgraph {index}, which takes {len(sg.inputs)}")
        for k, (ti, typ) in enumerate(zip(sg.inputs, input_types)):
            t = sg.tensors[ti]
            if t.type != typ:
                raise ModelValidationError(
                    f"{caller.locator}: value {k} is {tensor_type_name(typ)} but subgraph "
                    f"{index} takes it as tensor {ti} {t.name!r} of type {t.type_name}")
        produced = {ti for op in sg.operators for ti in op.outputs} | set(sg.inputs)
        for k, ti in enumerate(sg.outputs):
            t = sg.tensors[ti]
            if ti not in produced and t.data is None and not t.is_variable:
                raise ModelValidationError(
                    f"{caller.locator}: output {k} of subgraph {index} is tensor {ti} "
                    f"{t.name!r}, which no operator of it produces")
        variant = self.prepare(plan, tuple(tuple(int(d) for d in s) for s in input_shapes), caller)
        return SubgraphInfo(
            index=index, input_shapes=variant.key, input_types=tuple(int(t) for t in input_types),
            output_shapes=tuple(variant.shapes[ti] for ti in sg.outputs),
            output_types=tuple(sg.tensors[ti].type for ti in sg.outputs),
            has_dynamic=variant.has_dynamic)

    def invoke_subgraph(self, index: int, inputs: Sequence[np.ndarray],
                        caller: Operator) -> list[np.ndarray]:
        plan = self.plans.get(index)
        if plan is None:
            raise InternalError(f"{caller.locator}: runs subgraph {index} without preparing it")
        sg = plan.subgraph
        key = tuple(a.shape for a in inputs)
        if plan.current is None or plan.current.key != key:
            self.prepare(plan, key, caller)
        for k, (ti, arr) in enumerate(zip(sg.inputs, inputs)):
            want = _storage_dtype(sg.tensors[ti])
            if want is not None and arr.dtype != want:
                raise InternalError(f"{caller.locator}: value {k} for subgraph {index} is "
                                    f"{arr.dtype}, its input tensor {ti} is {want}")
            plan.values[ti] = arr
        self._enter(index, caller)
        try:
            self.run(plan)
        finally:
            self._active.pop()
        out = []
        for ti in sg.outputs:
            value = plan.values[ti]
            if value is None:
                raise KernelRuntimeError(f"{caller.locator}: subgraph {index} left its output "
                                         f"tensor {ti} without a value")
            # A variable tensor changes in place on the next run: hand out a snapshot.
            out.append(value.copy() if sg.tensors[ti].is_variable else value)
        return out

    # -- running --------------------------------------------------------------------------------
    def run_entry(self, plan: _SubgraphPlan) -> None:
        """Run subgraph 0 or a signature's subgraph, whose inputs the user set."""
        sg = plan.subgraph
        for ti in sg.inputs:
            if plan.values[ti] is None:
                t = sg.tensors[ti]
                raise UsageError(f"input tensor {ti} {t.name!r} was never set (use set_tensor)")
        self._active = []
        self.deadline = budgets.Deadline()
        self._enter(sg.index, None)
        try:
            with self.deadline.running():
                self.run(plan)
        finally:
            self._active = []
            self.deadline = None

    def run(self, plan: _SubgraphPlan) -> None:
        sg = plan.subgraph
        variant = plan.current
        if variant is None:
            raise InternalError(f"subgraph {sg.index} runs before it was prepared")
        values = plan.values
        for k in range(len(sg.operators)):
            if k >= variant.ready:
                self._prepare_from(plan, variant, k)
            prepared = variant.ops[k]
            assert prepared is not None
            op = prepared.op
            if self.deadline is not None:
                self.deadline.check(op.locator)
            ins = [values[i] if i >= 0 else None for i in op.inputs]
            plugin = prepared.kernel.plugin
            try:
                result = prepared.kernel.eval(prepared.data, *ins)
            except Exception as exc:
                located = self._located(exc, op, "invoke")
                if located is exc:
                    raise
                # A user's plug-in failing is reported as such, whatever it raised.
                if located is not None and not (plugin and not isinstance(exc, TFLiteRefError)):
                    raise located from exc
                if plugin:
                    raise KernelRuntimeError(
                        f"{op.locator}: the eval function registered for custom operator "
                        f"{op.custom_code!r} raised {type(exc).__name__}: {exc}") from exc
                raise InternalError(f"{op.locator}: kernel failed: {exc!r}") from exc
            outs = result if isinstance(result, (tuple, list)) else (result,)
            bad: type[Exception] = KernelRuntimeError if plugin else InternalError
            who = (f"the custom kernel registered for {op.custom_code!r}" if plugin
                   else "the kernel")
            if len(outs) != len(op.outputs):
                raise bad(f"{op.locator}: {who} returned {len(outs)} outputs, the operator has "
                          f"{len(op.outputs)}")
            reshaped = False
            outs_arrays: list[np.ndarray] = []
            for j, (ti, arr) in enumerate(zip(op.outputs, outs)):
                t = sg.tensors[ti]
                arr = np.asarray(arr)
                want = _storage_dtype(t)
                if want is not None and arr.dtype != want:
                    raise bad(f"{op.locator}: {who} returned output {j} as {arr.dtype}; tensor "
                              f"{ti} {t.name!r} is {t.type_name}")
                if j in prepared.dynamic_outputs:
                    if arr.shape != variant.shapes[ti]:
                        variant.shapes[ti] = arr.shape
                        reshaped = True
                elif arr.shape != prepared.output_shapes[j]:
                    hint = ("; call ctx.set_output_shape() or ctx.set_dynamic_output() in its "
                            "prepare") if plugin else ""
                    raise bad(f"{op.locator}: {who} returned output {j} with shape {arr.shape}, "
                              f"prepare planned {prepared.output_shapes[j]}{hint}")
                values[ti] = arr
                outs_arrays.append(arr)
            if reshaped and variant.ready > k + 1:
                variant.ready = k + 1  # re-prepare what follows for the new shapes
            if self.observer is not None:
                self.observer(sg.index, op.index, op, ins, list(outs_arrays))


def _limit(value: int | None, name: str, least: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise UsageError(f"{name} must be an integer >= {least}, not {value!r}")
    return int(value)


# LiteRT Interpreter keywords accepted for drop-in compatibility; they do not change our kernels.
_LITERT_ONLY_KEYWORDS = frozenset({
    "experimental_delegates", "experimental_op_resolver_type",
    "experimental_disable_delegate_clustering", "experimental_default_delegate_latest_features",
})


class Interpreter:
    """Runs a ``.tflite`` model with tflite_ref's NumPy kernels; LiteRT's ``Interpreter`` API.

    ``max_loop_iterations`` bounds each execution of a WHILE loop and ``max_call_depth`` the
    nesting of subgraphs called by control flow; both raise
    :class:`~tflite_ref.errors.ResourceLimitError` when exceeded.  None (the default) takes them
    from the current :mod:`tflite_ref.budgets` (``control_flow_iterations``, 1,000,000, and
    ``control_flow_depth``, 32), read at each allocation and invoke.

    ``budgets`` (a :class:`tflite_ref.budgets.Budgets`) are the resource limits for this
    interpreter's loading, allocation and invokes, instead of the current ones.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        model_content: bytes | None = None,
        emulate: str = "tflite",
        *,
        model: Model | None = None,
        num_threads: int | None = None,  # accepted for drop-in compatibility; NumPy decides
        experimental_preserve_all_tensors: bool = True,  # always true here
        max_loop_iterations: int | None = None,
        max_call_depth: int | None = None,
        budgets: budgets_mod.Budgets | None = None,
        **_litert_only: Any,
    ) -> None:
        if emulate not in EMULATIONS:
            raise UsageError(f"emulate must be one of {', '.join(EMULATIONS)}, not {emulate!r}")
        unknown = sorted(set(_litert_only) - _LITERT_ONLY_KEYWORDS)
        if unknown:  # a misspelt keyword must not vanish silently
            raise UsageError(f"Interpreter() got unknown keyword(s) {', '.join(unknown)}")
        given = sum(x is not None for x in (model_path, model_content, model))
        if given != 1:
            raise UsageError("give exactly one of model_path, model_content or model")
        loops = _limit(max_loop_iterations, "max_loop_iterations", 0)
        depth = _limit(max_call_depth, "max_call_depth", 1)
        if budgets is not None and not isinstance(budgets, budgets_mod.Budgets):
            raise UsageError(f"budgets must be a tflite_ref.budgets.Budgets, not "
                             f"{type(budgets).__name__}")
        self._budgets = budgets
        with self._budget_scope():
            if model is None:
                model = load(model_path if model_path is not None else model_content)  # type: ignore[arg-type]
            self.model = model
            self.emulate = emulate
            self._exec = _Executor(model, emulate, loops, depth)
            self._exec.plan(0)
        self._allocated = False

    def _budget_scope(self) -> contextlib.AbstractContextManager[Any]:
        """The budgets given to this interpreter, for the duration of one call (loading,
        allocation, invoke); without them the current ones (:func:`tflite_ref.budgets.current`)."""
        return budgets_mod.use(self._budgets) if self._budgets is not None \
            else contextlib.nullcontext()

    @property
    def max_loop_iterations(self) -> int:
        return self._exec.max_loop_iterations

    @property
    def max_call_depth(self) -> int:
        return self._exec.max_call_depth

    # -- planning -------------------------------------------------------------------------------
    def allocate_tensors(self) -> None:
        """Prepare every operator: shapes, kernel choice, everything that depends only on the model.

        Raises :class:`UnsupportedOpError` for an operator or dtype without a kernel and
        :class:`ModelError` for a kernel precondition the model violates -- never mid-invoke,
        except for operators placed after one whose output shape depends on values (prepared
        when that shape is known, as LiteRT does).  A second call without a resize in between
        does nothing (LiteRT keeps the variables' values then); a planning call resets variable
        tensors.
        """
        if self._allocated:
            return
        with self._budget_scope():
            self._allocate()

    def _allocate(self) -> None:
        ex = self._exec
        for si in self._subgraphs_to_run():
            plan = ex.plan(si)
            plan.variants.clear()  # LiteRT re-runs every Prepare after a resize
            ex._active = []
            variant = ex.prepare(plan, tuple(plan.input_shapes), None)
            # The activation budget: every tensor that holds a value at run time, as planned.
            live = [t for t in plan.subgraph.tensors
                    if t.dtype is not None and t.dtype.itemsize and (t.data is None
                                                                     or t.is_variable)]
            budgets.activation_bytes([variant.shapes[t.index] for t in live],
                                     [t.dtype.itemsize for t in live],  # type: ignore[union-attr]
                                     where=f"subgraph {si}")
        ex.reset_variables()
        self._allocated = True

    def _subgraphs_to_run(self) -> list[int]:
        out = [0]
        for sd in self.model.signatures:
            if sd.subgraph_index not in out:
                out.append(sd.subgraph_index)
        return out

    def _require_allocated(self) -> None:
        if not self._allocated:
            raise UsageError("call allocate_tensors() first")

    # -- running --------------------------------------------------------------------------------
    def invoke(self, observer: Observer | None = None) -> None:
        self._require_allocated()
        self._run_entry(0, observer)

    def _run_entry(self, subgraph_index: int, observer: Observer | None) -> None:
        ex = self._exec
        ex.observer = observer
        try:
            with self._budget_scope():
                ex.run_entry(ex.plans[subgraph_index])
        finally:
            ex.observer = None

    # -- tensors --------------------------------------------------------------------------------
    def _plan(self, subgraph_index: int) -> _SubgraphPlan:
        plan = self._exec.plans.get(subgraph_index)
        if plan is None:
            raise UsageError(f"subgraph {subgraph_index} is not planned for execution")
        return plan

    def _tensor(self, index: int, subgraph_index: int = 0) -> Tensor:
        sg = self._plan(subgraph_index).subgraph
        if not isinstance(index, (int, np.integer)) or not 0 <= index < len(sg.tensors):
            raise UsageError(f"tensor index {index} is out of range: subgraph {subgraph_index} "
                             f"has {len(sg.tensors)} tensors")
        return sg.tensors[int(index)]

    def set_tensor(self, tensor_index: int, value: Any, subgraph_index: int = 0) -> None:
        self._require_allocated()
        t = self._tensor(tensor_index, subgraph_index)
        plan = self._plan(subgraph_index)
        arr = np.asarray(value)
        if t.dtype is None or arr.dtype != t.dtype:
            raise UsageError(f"tensor {t.index} {t.name!r} is {t.type_name} ({t.dtype}); "
                             f"got an array of {arr.dtype}")
        want = plan.shapes[t.index]
        if arr.shape != want:
            raise UsageError(f"tensor {t.index} {t.name!r} has shape {list(want)}; got "
                             f"{list(arr.shape)} (use resize_tensor_input to change it)")
        plan.values[t.index] = np.array(arr, copy=True)

    def get_tensor(self, tensor_index: int, subgraph_index: int = 0) -> np.ndarray:
        """A copy of any tensor's value: inputs, constants and every intermediate after invoke().

        RESOURCE and VARIANT tensors read as ``None`` objects, as LiteRT's Python API shows them.
        """
        self._require_allocated()
        t = self._tensor(tensor_index, subgraph_index)
        plan = self._plan(subgraph_index)
        if t.type in _HANDLE_TYPES:
            return np.full(plan.shapes[t.index], None, dtype=object)
        v = plan.values[t.index]
        if v is None:
            raise UsageError(f"tensor {t.index} {t.name!r} has no value yet (run invoke())")
        return np.array(v, copy=True)

    def tensor(self, tensor_index: int) -> Callable[[], np.ndarray]:
        """LiteRT returns a live view; ours is a read-only view of the current value."""
        def view() -> np.ndarray:
            v = self.get_tensor(tensor_index)
            v.flags.writeable = False
            return v
        return view

    def resize_tensor_input(self, input_index: int, tensor_size: Sequence[int],
                            strict: bool = False) -> None:
        t = self._tensor(input_index)
        sg = self.model.subgraphs[0]
        if t.index not in sg.inputs:
            raise UsageError(f"tensor {t.index} {t.name!r} is not an input of subgraph 0")
        shape = tuple(int(d) for d in tensor_size)
        if len(shape) != len(t.shape) or any(d < 0 for d in shape):
            raise UsageError(f"cannot resize tensor {t.index} {t.name!r} of rank {len(t.shape)} "
                             f"to {list(shape)}")
        if strict:
            sig = t.shape_signature or t.shape
            for d, s, cur in zip(shape, sig, t.shape):
                if s != -1 and d != cur:
                    raise UsageError(f"strict resize of tensor {t.index}: only dimensions that are -1 "
                                     f"in shape_signature {list(sig)} may change")
        plan = self._plan(0)
        for k, ti in enumerate(sg.inputs):
            if ti == t.index:
                plan.input_shapes[k] = shape
        plan.current = None
        plan.values[t.index] = None
        self._allocated = False

    def reset_all_variables(self) -> None:
        """Variable tensors back to 0 (int8: their zero point), as LiteRT's
        ``ResetVariableTensors``; resource variables and CALL_ONCE keep their state (with
        ``emulate="tflm"``, resource variables return to their default, as TFLM's ``Reset``)."""
        self._exec.reset_variables()

    # -- details (the same keys and value types as LiteRT) --------------------------------------
    def _details(self, t: Tensor, subgraph_index: int = 0) -> dict[str, Any]:
        plan = self._exec.plans.get(subgraph_index)
        shape = plan.shapes[t.index] if plan is not None else t.shape
        q = t.quantization
        scales = q.scale.astype(np.float32) if q is not None else np.zeros(0, np.float32)
        zps = q.zero_point.astype(np.int32) if q is not None else np.zeros(0, np.int32)
        legacy = (float(scales[0]), int(zps[0])) if scales.size == 1 and zps.size == 1 else (0.0, 0)
        sig = t.shape_signature if t.shape_signature is not None else t.shape
        return {
            "name": t.name,
            "index": t.index,
            "shape": np.array(shape, dtype=np.int32),
            "shape_signature": np.array(sig, dtype=np.int32),
            "dtype": t.dtype.type if t.dtype is not None else None,
            "quantization": legacy,
            "quantization_parameters": {
                "scales": scales,
                "zero_points": zps,
                "quantized_dimension": q.quantized_dimension if q is not None else 0,
                "block_size": 0,
            },
            "sparsity_parameters": _sparsity_details(t),
        }

    def get_input_details(self) -> list[dict[str, Any]]:
        sg = self.model.subgraphs[0]
        return [self._details(sg.tensors[i]) for i in sg.inputs]

    def get_output_details(self) -> list[dict[str, Any]]:
        sg = self.model.subgraphs[0]
        return [self._details(sg.tensors[i]) for i in sg.outputs]

    def get_tensor_details(self) -> list[dict[str, Any]]:
        return [self._details(t) for t in self.model.subgraphs[0].tensors]

    # -- signatures -----------------------------------------------------------------------------
    def get_signature_list(self) -> dict[str, dict[str, list[str]]]:
        return {sd.key: {"inputs": list(sd.inputs), "outputs": list(sd.outputs)}
                for sd in self.model.signatures}

    def get_signature_runner(self, signature_key: str | None = None) -> SignatureRunner:
        sigs = self.model.signatures
        if not sigs:
            raise UsageError("the model has no signatures")
        if signature_key is None:
            if len(sigs) > 1:
                raise UsageError("the model has several signatures; name one: "
                                 + ", ".join(s.key for s in sigs))
            signature_key = sigs[0].key
        for sd in sigs:
            if sd.key == signature_key:
                return SignatureRunner(self, sd.key, sd.subgraph_index, sd.inputs, sd.outputs)
        raise UsageError(f"no signature {signature_key!r}; the model has "
                         + ", ".join(s.key for s in sigs))


class SignatureRunner:
    """``runner(x=array, ...) -> {"output_name": array}``, as LiteRT's ``SignatureRunner``."""

    def __init__(self, interpreter: Interpreter, key: str, subgraph_index: int,
                 inputs: Mapping[str, int], outputs: Mapping[str, int]) -> None:
        self._it = interpreter
        self.key = key
        self._si = subgraph_index
        self._inputs = inputs
        self._outputs = outputs

    def get_input_details(self) -> dict[str, dict[str, Any]]:
        sg = self._it.model.subgraphs[self._si]
        return {n: self._it._details(sg.tensors[i], self._si) for n, i in self._inputs.items()}

    def get_output_details(self) -> dict[str, dict[str, Any]]:
        sg = self._it.model.subgraphs[self._si]
        return {n: self._it._details(sg.tensors[i], self._si) for n, i in self._outputs.items()}

    def __call__(self, **kwargs: Any) -> dict[str, np.ndarray]:
        it = self._it
        if not it._allocated:
            it.allocate_tensors()
        unknown = set(kwargs) - set(self._inputs)
        if unknown:
            raise UsageError(f"signature {self.key!r} has no input {min(unknown)!r}; inputs: "
                             + ", ".join(self._inputs))
        missing = set(self._inputs) - set(kwargs)
        if missing:
            raise UsageError(f"signature {self.key!r}: missing input {min(missing)!r}")
        for name, value in kwargs.items():
            it.set_tensor(self._inputs[name], value, self._si)
        it._run_entry(self._si, None)
        return {n: it.get_tensor(i, self._si) for n, i in self._outputs.items()}


def _sparsity_details(t: Tensor) -> dict[str, Any]:
    sp = t.sparsity
    if sp is None:
        return {}
    return {
        "traversal_order": np.array(sp.traversal_order, dtype=np.int32),
        "block_map": np.array(sp.block_map, dtype=np.int32),
        "dim_metadata": [
            {"format": 0 if d.format == "DENSE" else 1, "dense_size": d.dense_size,
             "array_segments": d.array_segments, "array_indices": d.array_indices}
            for d in sp.dim_metadata
        ],
    }


__all__ = ["Interpreter", "Observer", "SignatureRunner", "UnsupportedOpError"]
