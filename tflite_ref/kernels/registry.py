"""Kernel registry keyed by ``(BuiltinOperator, TensorType)`` and the context a kernel's prepare sees.

The contract (TFLite Micro's Prepare/Eval in Python form):

- ``prepare(ctx: OpContext) -> OpData`` runs once per ``allocate_tensors()``. It checks the
  preconditions TFLite checks in Prepare (raising through ``ctx.fail`` / ``ctx.unsupported``),
  computes everything that depends only on the model (multipliers, shifts, padding, reshaped
  weights, LUTs), declares each output's shape with ``ctx.set_output_shape`` and returns a frozen
  dataclass holding the results.
- ``eval(data, *inputs) -> ndarray | tuple[ndarray, ...]`` runs per ``invoke()``: a few NumPy
  expressions on the input arrays (``None`` for an absent optional input). It returns arrays of the
  output tensors' dtypes. It never prints and never looks at the model.

The dtype in the key is the type of the operator's first output, as in TFLite Micro's Eval switch;
a kernel that also depends on the input types checks them in prepare.

Custom operators are keyed by their custom code instead (:func:`register_custom`; users go through
:func:`tflite_ref.register_kernel`).  Kernels that need the interpreter itself -- control flow runs
other subgraphs, resource variables live beside the tensors -- reach it through
:attr:`OpContext.runtime` (a :class:`Runtime`), keep it in their op data and call it from eval.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

import numpy as np

from tflite_ref import budgets
from tflite_ref.errors import ModelValidationError, UnsupportedOpError
from tflite_ref.model.model import Model, Operator, Subgraph, Tensor
from tflite_ref.model.schema import BuiltinOperator, TensorType, tensor_type_name

PrepareFn = Callable[["OpContext"], Any]
EvalFn = Callable[..., Any]

EMULATIONS = ("tflite", "tflm")
NO_OUTPUT = -1  # key dtype for operators without outputs


@dataclass(frozen=True, slots=True)
class Kernel:
    op: int
    dtype: int
    prepare: PrepareFn
    eval: EvalFn
    emulations: tuple[str, ...] = EMULATIONS  # which runtimes' behaviour this kernel reproduces
    custom_code: str | None = None  # set for custom-operator kernels (any output dtype)
    plugin: bool = False  # registered by a user (tflite_ref.register_kernel), not shipped


_REGISTRY: dict[tuple[int, int], Kernel] = {}
_CUSTOM: dict[str, Kernel] = {}


def register(op: int, *dtypes: int, prepare: PrepareFn,
             emulations: tuple[str, ...] = EMULATIONS) -> Callable[[EvalFn], EvalFn]:
    """Register ``eval`` for ``op`` and each dtype (of the first output). Duplicates are a bug."""

    def deco(fn: EvalFn) -> EvalFn:
        for dt in dtypes:
            key = (int(op), int(dt))
            if key in _REGISTRY:
                raise RuntimeError(f"duplicate kernel registration for {_key_name(key)}")
            _REGISTRY[key] = Kernel(int(op), int(dt), prepare, fn, emulations)
        return fn

    return deco


def _key_name(key: tuple[int, int]) -> str:
    op, dt = key
    try:
        op_name = BuiltinOperator(op).name
    except ValueError:
        op_name = f"BUILTIN_{op}"
    return f"{op_name}/{tensor_type_name(dt) if dt != NO_OUTPUT else 'NONE'}"


def registered() -> Mapping[tuple[int, int], Kernel]:
    return dict(_REGISTRY)


def register_custom(name: str, prepare: PrepareFn, eval: EvalFn, *,
                    emulations: tuple[str, ...] = EMULATIONS, plugin: bool = False,
                    replace: bool = False) -> Kernel:
    """Register the kernel of custom operator ``name`` (its ``custom_code``), for every dtype.

    A second registration of a name is a bug unless ``replace`` is given (a user overriding a
    kernel on purpose).
    """
    if name in _CUSTOM and not replace:
        raise RuntimeError(f"duplicate kernel registration for custom operator {name!r}")
    kernel = Kernel(int(BuiltinOperator.CUSTOM), NO_OUTPUT, prepare, eval, tuple(emulations),
                    custom_code=name, plugin=plugin)
    _CUSTOM[name] = kernel
    return kernel


def unregister_custom(name: str) -> Kernel | None:
    """Remove the kernel of custom operator ``name``; returns it (None if there was none)."""
    return _CUSTOM.pop(name, None)


def registered_custom() -> Mapping[str, Kernel]:
    return dict(_CUSTOM)


def registered_dtypes(op: int) -> list[str]:
    return sorted(tensor_type_name(dt) for (o, dt) in _REGISTRY if o == op and dt != NO_OUTPUT)


def lookup(op: Operator, key_dtype: int, describe: str, emulate: str) -> Kernel:
    """The kernel for ``op`` at ``key_dtype``, or :class:`UnsupportedOpError` saying what exists."""
    if op.name == "CUSTOM":
        kernel = _CUSTOM.get(op.custom_code or "")
        if kernel is None:
            raise UnsupportedOpError(
                f"{op.locator}: custom operator {op.custom_code!r} has no kernel in tflite_ref; "
                f"register one with tflite_ref.register_kernel({op.custom_code!r}, prepare, eval)")
    else:
        kernel = _REGISTRY.get((op.builtin_code, key_dtype))
    if kernel is None:
        others = registered_dtypes(op.builtin_code)
        have = (f"registered dtypes for {op.name}: {', '.join(others)}" if others
                else f"tflite_ref has no kernel for {op.name}")
        raise UnsupportedOpError(f"{op.locator} version {op.version}: {describe} is not supported; {have}")
    if emulate not in kernel.emulations:
        raise UnsupportedOpError(f"{op.locator}: {describe} has no emulation of {emulate!r} "
                                 f"(only {', '.join(kernel.emulations)})")
    return kernel


@dataclass(frozen=True, slots=True)
class SubgraphInfo:
    """What :meth:`Runtime.prepare_subgraph` found: a called subgraph planned for given inputs."""

    index: int
    input_shapes: tuple[tuple[int, ...], ...]
    input_types: tuple[int, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    output_types: tuple[int, ...]
    # True when some operator in it decides an output shape at eval time (LiteRT's
    # Subgraph::HasDynamicTensors): the outputs' planned shapes are then only a guess.
    has_dynamic: bool


class Runtime(Protocol):
    """The interpreter as control-flow and resource kernels see it (``OpContext.runtime``).

    Prepare may plan a subgraph for given input shapes; eval may run it.  A kernel keeps the
    runtime in its op data.  ``once`` is the set of CALL_ONCE keys that have run; ``resources``
    the resource variables (:class:`tflite_ref.kernels.variables.ResourceVariables`).
    """

    emulate: str
    resources: Any
    once: set[Hashable]

    @property
    def max_loop_iterations(self) -> int: ...

    def prepare_subgraph(self, index: int, input_shapes: Sequence[tuple[int, ...]],
                         input_types: Sequence[int], caller: Operator) -> SubgraphInfo: ...

    def invoke_subgraph(self, index: int, inputs: Sequence[np.ndarray],
                        caller: Operator) -> list[np.ndarray]: ...


@dataclass
class OpContext:
    """What a kernel's prepare may look at: the operator, its tensors, the emulated runtime."""

    model: Model
    subgraph: Subgraph
    op: Operator
    emulate: str
    input_shapes: tuple[tuple[int, ...] | None, ...]
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    dynamic_outputs: set[int] = field(default_factory=set)
    runtime: Runtime | None = None  # None outside an Interpreter (e.g. static analysis)

    # -- tensors --------------------------------------------------------------------------------
    @property
    def options(self) -> Mapping[str, Any]:
        return self.op.options

    @property
    def custom_options(self) -> Any:
        """A custom operator's options decoded from their FlexBuffer (dict, list, scalar), or
        None when there are none or they are not a FlexBuffer (raw: ``op.custom_options``)."""
        return self.op.custom_options_decoded

    @property
    def num_inputs(self) -> int:
        return len(self.op.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.op.outputs)

    def input(self, i: int) -> Tensor | None:
        """The model tensor feeding input slot ``i``; None when the slot is absent (-1 or missing)."""
        if i >= len(self.op.inputs) or self.op.inputs[i] < 0:
            return None
        return self.subgraph.tensors[self.op.inputs[i]]

    def output(self, j: int) -> Tensor:
        return self.subgraph.tensors[self.op.outputs[j]]

    def input_shape(self, i: int) -> tuple[int, ...]:
        shape = self.input_shapes[i] if i < len(self.input_shapes) else None
        if shape is None:
            self.fail(f"input {i} is required but absent")
        return shape

    def const(self, i: int) -> np.ndarray | None:
        """Constant data of input ``i`` (read-only, dense), or None when it is computed at run time.

        A sparse constant comes back densified. So does the output of a DENSIFY whose input is a
        constant: LiteRT's densify.cc computes it once in Prepare and marks it persistent
        read-only, so the kernels after it (e.g. a hybrid FULLY_CONNECTED caching row sums) see
        a constant.
        """
        t = self.input(i)
        if t is None or t.is_variable:
            return None
        if t.sparsity is not None:
            return self._densified(t) if t.data is not None else None
        if t.data is not None:
            return t.data
        producer = next((op for op in self.subgraph.operators if t.index in op.outputs), None)
        if producer is not None and producer.name == "DENSIFY" and producer.inputs \
                and producer.inputs[0] >= 0:
            src = self.subgraph.tensors[producer.inputs[0]]
            if src.sparsity is not None and src.data is not None and not src.is_variable:
                return self._densified(src)
        return None

    def _densified(self, t: Tensor) -> np.ndarray | None:
        from tflite_ref.kernels.sparse import sparse_to_dense  # the family imports this module

        if t.dtype is None or t.data is None:
            return None
        values = np.frombuffer(t.data.tobytes(), dtype=t.dtype)
        dense = sparse_to_dense(t.shape, t.sparsity, values,  # type: ignore[arg-type]
                                f"{self.op.locator}: tensor {t.index} {t.name!r}")
        dense.flags.writeable = False
        return dense

    def set_output_shape(self, j: int, shape: Sequence[int]) -> None:
        while len(self.output_shapes) <= j:
            self.output_shapes.append(self.output(len(self.output_shapes)).shape)
        planned = tuple(int(d) for d in shape)
        # Every output shape a prepare plans passes the allocation budget here, before any
        # kernel allocates it (hostile-models.md class 19).
        dtype = self.output(j).dtype
        budgets.check_allocation(self.op.locator, planned,
                                 dtype.itemsize if dtype is not None and dtype.itemsize else 1)
        self.output_shapes[j] = planned

    def set_dynamic_output(self, j: int) -> None:
        """The shape of output ``j`` depends on input values; eval decides it."""
        self.dynamic_outputs.add(j)

    # -- checks ---------------------------------------------------------------------------------
    def fail(self, message: str) -> NoReturn:
        raise ModelValidationError(f"{self.op.locator}: {message}")

    def unsupported(self, message: str) -> NoReturn:
        raise UnsupportedOpError(f"{self.op.locator} version {self.op.version}: {message}")

    def require(self, condition: bool, message: str) -> None:
        if not condition:
            self.fail(message)

    def require_input(self, i: int) -> Tensor:
        t = self.input(i)
        if t is None:
            self.fail(f"input {i} is optional (-1) but required")
        return t

    def dtype_name(self, t: Tensor | None) -> str:
        return "absent" if t is None else tensor_type_name(t.type)

    def expect_types(self, **slots: int | Sequence[int]) -> None:
        """``ctx.expect_types(input0=INT8, input1=(INT8, INT16), output0=INT8)``: unsupported otherwise."""
        for slot, allowed in slots.items():
            kind, idx = slot.rstrip("0123456789"), int(slot[len(slot.rstrip("0123456789")):])
            t = self.input(idx) if kind == "input" else self.output(idx)
            allowed_set = {int(allowed)} if isinstance(allowed, int) else {int(a) for a in allowed}
            if t is None or t.type not in allowed_set:
                names = ", ".join(tensor_type_name(a) for a in sorted(allowed_set))
                self.unsupported(f"{kind} {idx} is {self.dtype_name(t)}; this kernel takes {names}")

    def describe_types(self) -> str:
        ins = ", ".join(self.dtype_name(self.input(i)) for i in range(len(self.op.inputs)))
        outs = ", ".join(self.dtype_name(self.output(j)) for j in range(len(self.op.outputs)))
        return f"inputs ({ins}) -> outputs ({outs})"


def key_dtype(op: Operator, subgraph: Subgraph) -> int:
    if op.outputs:
        return subgraph.tensors[op.outputs[0]].type
    return NO_OUTPUT


__all__ = [
    "EMULATIONS",
    "NO_OUTPUT",
    "BuiltinOperator",
    "Kernel",
    "OpContext",
    "Runtime",
    "SubgraphInfo",
    "TensorType",
    "key_dtype",
    "lookup",
    "register",
    "register_custom",
    "registered",
    "registered_custom",
    "registered_dtypes",
    "unregister_custom",
]
