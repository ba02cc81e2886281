"""Kernels: VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE, and the resource variables they share.

Upstream (read, not copied): LiteRT ``tflite/kernels/var_handle.cc``, ``read_variable.cc``,
``assign_variable.cc``, ``tflite/experimental/resource/resource_variable.cc``; TFLM
``micro/kernels/var_handle.cc``, ``read_variable.cc``, ``assign_variable.cc``,
``micro/micro_resource_variable.cc``.

A resource variable is named by ``(container, shared_name)`` in ``VarHandleOptions``.  VAR_HANDLE
writes the variable's integer id into its RESOURCE output; READ/ASSIGN take that id.  Ids are
handed out in order of first appearance, subgraph by subgraph and operator by operator (LiteRT:
VAR_HANDLE's Init, run by the interpreter builder in that order; TFLM: VAR_HANDLE's Prepare, run
by ``PrepareSubgraphs`` in that order), so they equal the runtimes' and a RESOURCE tensor holds
the same int32 as theirs.  Variables are shared by every subgraph of one interpreter.

The two runtimes store a variable differently, and we follow each:

* LiteRT keeps a typed tensor.  ASSIGN_VARIABLE creates the variable on first use and gives it the
  value's type and shape (``ResourceVariable::AssignFrom``); READ_VARIABLE of a variable never
  assigned fails, and a read whose output type differs fails.  A read into a statically shaped
  output copies ``output->bytes`` bytes whatever the variable's size (an out-of-bounds read when
  the variable is smaller): we require the element counts to agree (hostile-models class 24).
  ``reset_all_variables()`` leaves resource variables alone (``Subgraph::ResetVariableTensors``
  only touches ``is_variable`` tensors).
* TFLM keeps raw bytes, allocated by ASSIGN_VARIABLE's *Prepare* with the value tensor's size and
  filled with the value's zero point (as an int8 byte, ``memset``) or 0; so a read before any
  assignment sees that default, and ``reset()`` restores it.  Reads and assignments copy bytes
  (their size checks are debug-only DCHECKs; we raise instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflite_ref.errors import KernelRuntimeError
from tflite_ref.kernels.registry import NO_OUTPUT, OpContext, Runtime, register
from tflite_ref.kernels.registry import BuiltinOperator as Op
from tflite_ref.kernels.registry import TensorType as T
from tflite_ref.model.model import Model, Operator
from tflite_ref.model.schema import NUMPY_DTYPES

# Every type a READ_VARIABLE output can have (its key dtype): the numeric ones.
_VALUE_TYPES = tuple(int(t) for t, dt in NUMPY_DTYPES.items() if dt != np.dtype(np.object_))


def _handle_key(op: Operator) -> tuple[str | None, str]:
    return op.options.get("container"), str(op.options.get("shared_name") or "")


class ResourceVariables:
    """The resource variables of one interpreter, by id (see the module docstring)."""

    def __init__(self, model: Model, emulate: str) -> None:
        self.emulate = emulate
        self._ids: dict[tuple[str, str], int] = {}
        self._names: dict[int, str] = {}
        for sg in model.subgraphs:
            for op in sg.operators:
                if op.builtin_code == Op.VAR_HANDLE:
                    self.id_of(*_handle_key(op))
        self._values: dict[int, np.ndarray] = {}  # LiteRT: typed arrays
        self._bytes: dict[int, np.ndarray] = {}  # TFLM: uint8 buffers
        self._defaults: dict[int, np.ndarray] = {}  # TFLM: what reset() restores

    def id_of(self, container: str | None, shared_name: str) -> int:
        """The id of ``(container, shared_name)``, created on first sight.

        TFLM's ``FindId`` lets a null container match any container with that shared name;
        LiteRT maps a null container to ``""``.
        """
        if self.emulate == "tflm" and container is None:
            for (_, name), rid in self._ids.items():
                if name == shared_name:
                    return rid
        key = (container or "", shared_name)
        if key not in self._ids:
            rid = len(self._ids)
            self._ids[key] = rid
            self._names[rid] = shared_name if not container else f"{container}/{shared_name}"
        return self._ids[key]

    def name(self, rid: int) -> str:
        label = self._names.get(rid)
        return f"resource variable {label!r} (id {rid})" if label is not None else \
            f"resource variable id {rid}"

    # -- LiteRT ----------------------------------------------------------------------------------
    def assign(self, rid: int, value: np.ndarray) -> None:
        if self.emulate == "tflm":
            self._assign_bytes(rid, value)
            return
        self._values[rid] = np.array(value, copy=True)

    def read(self, rid: int) -> np.ndarray:
        value = self._values.get(rid)
        if value is None:
            raise KeyError(rid)
        return value

    # -- TFLM ------------------------------------------------------------------------------------
    def allocate(self, rid: int, nbytes: int, zero_point: int) -> None:
        """``MicroResourceVariables::Allocate``: the first ASSIGN_VARIABLE prepare sizes it."""
        if rid in self._bytes:
            return
        default = np.full(nbytes, zero_point & 0xFF, dtype=np.uint8)
        self._defaults[rid] = default
        self._bytes[rid] = default.copy()

    def _assign_bytes(self, rid: int, value: np.ndarray) -> None:
        buf = self._bytes.get(rid)
        raw = np.ascontiguousarray(value).view(np.uint8).reshape(-1)
        if buf is None:
            raise KernelRuntimeError(f"{self.name(rid)} is assigned before its buffer was "
                                     "allocated (TFLite Micro allocates it when preparing an "
                                     "ASSIGN_VARIABLE that names it)")
        if raw.size != buf.size:
            raise KernelRuntimeError(f"{self.name(rid)} holds {buf.size} bytes; the assigned "
                                     f"value has {raw.size}")
        buf[...] = raw

    def read_bytes(self, rid: int) -> np.ndarray:
        buf = self._bytes.get(rid)
        if buf is None:
            raise KeyError(rid)
        return buf

    def reset(self) -> None:
        """What ``reset_all_variables()`` does to resource variables (nothing in LiteRT)."""
        for rid, default in self._defaults.items():
            self._bytes[rid][...] = default


def _resources(ctx: OpContext) -> tuple[Runtime, ResourceVariables]:
    rt = ctx.runtime
    if rt is None or not isinstance(rt.resources, ResourceVariables):
        ctx.unsupported("resource variables need a tflite_ref.Interpreter to live in")
    return rt, rt.resources


def _resource_id_input(ctx: OpContext) -> None:
    """Input 0 is a one-element RESOURCE (or INT32) tensor (read/assign_variable.cc Prepare)."""
    t = ctx.require_input(0)
    if t.type not in (T.RESOURCE, T.INT32):
        ctx.fail(f"input 0 (the variable) is {t.type_name}; it must be RESOURCE or INT32")
    shape = ctx.input_shape(0)
    if int(np.prod(shape, dtype=np.int64)) != 1:
        ctx.fail(f"input 0 (the variable) has shape {list(shape)}; it must hold one id")


def _static_id(ctx: OpContext, res: ResourceVariables) -> int | None:
    """The id input 0 will carry, when a VAR_HANDLE of this subgraph produces it."""
    ti = ctx.op.inputs[0]
    for op in ctx.subgraph.operators:
        if ti in op.outputs and op.builtin_code == Op.VAR_HANDLE:
            return res.id_of(*_handle_key(op))
    return None


# =============================================================================================
# VAR_HANDLE
# =============================================================================================
@dataclass(frozen=True, slots=True)
class VarHandleData:
    resource_id: np.ndarray  # int32, the output's shape


def prepare_var_handle(ctx: OpContext) -> VarHandleData:
    _, res = _resources(ctx)
    if ctx.num_outputs != 1:
        ctx.fail("VAR_HANDLE has one output")
    out = ctx.output(0)
    if out.type not in (T.RESOURCE, T.INT32):
        ctx.fail(f"output 0 is {out.type_name}; VAR_HANDLE writes a RESOURCE id")
    shape = out.shape
    if int(np.prod(shape, dtype=np.int64)) != 1:
        # var_handle.cc Prepare allocates 4 bytes whatever the shape says.
        shape = ()
        ctx.set_output_shape(0, shape)
    rid = res.id_of(*_handle_key(ctx.op))
    value = np.full(shape, rid, dtype=np.int32)
    value.flags.writeable = False
    return VarHandleData(value)


@register(Op.VAR_HANDLE, T.RESOURCE, T.INT32, prepare=prepare_var_handle)
def var_handle(data: VarHandleData) -> np.ndarray:
    """``var_handle::Eval``: the output holds the variable's id."""
    return data.resource_id


# =============================================================================================
# READ_VARIABLE
# =============================================================================================
@dataclass(frozen=True, slots=True)
class ReadVariableData:
    resources: ResourceVariables
    locator: str
    dtype: np.dtype
    type_name: str
    shape: tuple[int, ...]
    dynamic: bool


def prepare_read_variable(ctx: OpContext) -> ReadVariableData:
    _, res = _resources(ctx)
    if ctx.num_inputs != 1 or ctx.num_outputs != 1:
        ctx.fail("READ_VARIABLE takes 1 input and 1 output")
    _resource_id_input(ctx)
    out = ctx.output(0)
    if out.dtype is None or out.dtype == np.dtype(np.object_):
        ctx.unsupported(f"output 0 is {out.type_name}; only numeric variables are supported")
    shape = out.shape
    # read_variable.cc: a rank-0 output (scalar, or unranked) takes the variable's shape.
    dynamic = len(shape) == 0 and ctx.emulate == "tflite"
    if dynamic:
        ctx.set_dynamic_output(0)
    return ReadVariableData(res, ctx.op.locator, out.dtype, out.type_name, tuple(shape), dynamic)


@register(Op.READ_VARIABLE, *_VALUE_TYPES, prepare=prepare_read_variable)
def read_variable(data: ReadVariableData, rid_array: np.ndarray) -> np.ndarray:
    out: np.ndarray
    res = data.resources
    rid = int(rid_array.reshape(-1)[0])
    if res.emulate == "tflm":
        try:
            raw = res.read_bytes(rid)
        except KeyError:
            raise KernelRuntimeError(f"{data.locator}: {res.name(rid)} has no buffer; TFLite "
                                     "Micro allocates one only for a variable some "
                                     "ASSIGN_VARIABLE names") from None
        want = int(np.prod(data.shape, dtype=np.int64)) * data.dtype.itemsize
        if raw.size != want:
            raise KernelRuntimeError(f"{data.locator}: {res.name(rid)} holds {raw.size} bytes; "
                                     f"the output {list(data.shape)} {data.type_name} needs {want}")
        out = raw.view(data.dtype).reshape(data.shape).copy()
        return out
    try:
        value = res.read(rid)
    except KeyError:
        raise KernelRuntimeError(f"{data.locator}: {res.name(rid)} is read before any "
                                 "ASSIGN_VARIABLE gave it a value") from None
    if value.dtype != data.dtype:
        raise KernelRuntimeError(f"{data.locator}: {res.name(rid)} holds {value.dtype}; the "
                                 f"output is {data.type_name}")
    if data.dynamic:
        out = value.copy()
        return out
    if value.size != int(np.prod(data.shape, dtype=np.int64)):
        raise KernelRuntimeError(f"{data.locator}: {res.name(rid)} has shape {list(value.shape)}; "
                                 f"the output's shape {list(data.shape)} holds another number "
                                 "of elements")
    out = value.reshape(data.shape).copy()
    return out


# =============================================================================================
# ASSIGN_VARIABLE
# =============================================================================================
@dataclass(frozen=True, slots=True)
class AssignVariableData:
    resources: ResourceVariables
    locator: str


def prepare_assign_variable(ctx: OpContext) -> AssignVariableData:
    _, res = _resources(ctx)
    if ctx.num_inputs != 2 or ctx.num_outputs != 0:
        ctx.fail("ASSIGN_VARIABLE takes 2 inputs and no output")
    _resource_id_input(ctx)
    value = ctx.require_input(1)
    if value.dtype is None or value.dtype == np.dtype(np.object_):
        ctx.unsupported(f"input 1 is {value.type_name}; only numeric variables are supported")
    if ctx.emulate == "tflm":
        rid = _static_id(ctx, res)
        if rid is not None:  # else: a handle passed in from another subgraph (b/277231654)
            shape = ctx.input_shape(1)
            nbytes = int(np.prod(shape, dtype=np.int64)) * value.dtype.itemsize
            q = value.quantization
            zp = int(q.zero_point[0]) if q is not None and q.zero_point.size else 0
            res.allocate(rid, nbytes, zp)
    return AssignVariableData(res, ctx.op.locator)


@register(Op.ASSIGN_VARIABLE, NO_OUTPUT, prepare=prepare_assign_variable)
def assign_variable(data: AssignVariableData, rid_array: np.ndarray, value: np.ndarray) -> tuple[()]:
    rid = int(rid_array.reshape(-1)[0])
    try:
        data.resources.assign(rid, value)
    except KernelRuntimeError as exc:
        raise KernelRuntimeError(f"{data.locator}: {exc}") from None
    return ()


__all__ = ["ResourceVariables"]
