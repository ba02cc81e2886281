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
``observer(subgraph, op_index, operator, inputs, outputs)`` after each operator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from tflite_ref import kernels as _kernels  # noqa: F401 - registers every kernel family
from tflite_ref.errors import (
    InternalError,
    KernelRuntimeError,
    TFLiteRefError,
    UnsupportedOpError,
    UsageError,
)
from tflite_ref.kernels.registry import EMULATIONS, Kernel, OpContext, key_dtype, lookup
from tflite_ref.model.model import Model, Operator, Subgraph, Tensor
from tflite_ref.model.reader import load

Observer = Callable[[int, int, Operator, Sequence["np.ndarray | None"], Sequence[np.ndarray]], None]


@dataclass(frozen=True, slots=True)
class PreparedOp:
    op: Operator
    kernel: Kernel
    data: Any
    output_shapes: tuple[tuple[int, ...], ...]
    dynamic_outputs: frozenset[int]


class _SubgraphPlan:
    def __init__(self, subgraph: Subgraph) -> None:
        self.subgraph = subgraph
        self.shapes: list[tuple[int, ...]] = [t.shape for t in subgraph.tensors]
        self.ops: list[PreparedOp] = []
        self.values: list[np.ndarray | None] = [None] * len(subgraph.tensors)


class Interpreter:
    """Runs a ``.tflite`` model with tflite_ref's NumPy kernels; LiteRT's ``Interpreter`` API."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        model_content: bytes | None = None,
        emulate: str = "tflite",
        *,
        model: Model | None = None,
        num_threads: int | None = None,  # accepted for drop-in compatibility; NumPy decides
        experimental_preserve_all_tensors: bool = True,  # always true here
        **_litert_only: Any,
    ) -> None:
        if emulate not in EMULATIONS:
            raise UsageError(f"emulate must be one of {', '.join(EMULATIONS)}, not {emulate!r}")
        given = sum(x is not None for x in (model_path, model_content, model))
        if given != 1:
            raise UsageError("give exactly one of model_path, model_content or model")
        if model is None:
            model = load(model_path if model_path is not None else model_content)  # type: ignore[arg-type]
        self.model = model
        self.emulate = emulate
        self._plans: dict[int, _SubgraphPlan] = {0: _SubgraphPlan(model.subgraphs[0])}
        self._allocated = False

    # -- planning -------------------------------------------------------------------------------
    def allocate_tensors(self) -> None:
        """Prepare every operator: shapes, kernel choice, everything that depends only on the model.

        Raises :class:`UnsupportedOpError` for an operator or dtype without a kernel and
        :class:`ModelError` for a kernel precondition the model violates — never mid-invoke.
        """
        for si in self._subgraphs_to_run():
            plan = self._plans.setdefault(si, _SubgraphPlan(self.model.subgraphs[si]))
            self._prepare_subgraph(plan)
        self._allocated = True

    def _subgraphs_to_run(self) -> list[int]:
        out = [0]
        for sd in self.model.signatures:
            if sd.subgraph_index not in out:
                out.append(sd.subgraph_index)
        return out

    def _prepare_subgraph(self, plan: _SubgraphPlan) -> None:
        sg = plan.subgraph
        plan.ops = []
        for op in sg.operators:
            input_shapes = tuple(plan.shapes[i] if i >= 0 else None for i in op.inputs)
            ctx = OpContext(model=self.model, subgraph=sg, op=op, emulate=self.emulate,
                            input_shapes=input_shapes)
            kernel = lookup(op, key_dtype(op, sg), ctx.describe_types(), self.emulate)
            try:
                data = kernel.prepare(ctx)
            except TFLiteRefError:
                raise
            except Exception as exc:  # a bug in a prepare function, not the model's fault
                raise InternalError(f"{op.locator}: prepare failed: {exc!r}") from exc
            out_shapes = list(ctx.output_shapes)
            for j in range(len(out_shapes), len(op.outputs)):
                out_shapes.append(plan.shapes[op.outputs[j]])
            for j, ti in enumerate(op.outputs):
                plan.shapes[ti] = out_shapes[j]
            plan.ops.append(PreparedOp(op, kernel, data, tuple(out_shapes),
                                       frozenset(ctx.dynamic_outputs)))
        self._init_values(plan)

    def _init_values(self, plan: _SubgraphPlan) -> None:
        for t in plan.subgraph.tensors:
            if t.data is not None and t.sparsity is None and t.dtype is not None:
                plan.values[t.index] = np.array(t.data) if t.is_variable else t.data
            elif t.is_variable and t.dtype is not None and t.dtype != np.dtype(object):
                plan.values[t.index] = np.zeros(plan.shapes[t.index], dtype=t.dtype)

    def _require_allocated(self) -> None:
        if not self._allocated:
            raise UsageError("call allocate_tensors() first")

    # -- running --------------------------------------------------------------------------------
    def invoke(self, observer: Observer | None = None) -> None:
        self._require_allocated()
        self._run_subgraph(self._plans[0], observer)

    def _run_subgraph(self, plan: _SubgraphPlan, observer: Observer | None) -> None:
        sg = plan.subgraph
        values = plan.values
        for ti in sg.inputs:
            if values[ti] is None:
                t = sg.tensors[ti]
                raise UsageError(f"input tensor {ti} {t.name!r} was never set (use set_tensor)")
        for prepared in plan.ops:
            op = prepared.op
            ins = [values[i] if i >= 0 else None for i in op.inputs]
            try:
                result = prepared.kernel.eval(prepared.data, *ins)
            except TFLiteRefError:
                raise
            except (FloatingPointError, ZeroDivisionError) as exc:
                raise KernelRuntimeError(f"{op.locator}: {exc}") from None
            except Exception as exc:
                raise InternalError(f"{op.locator}: kernel failed: {exc!r}") from exc
            outs = result if isinstance(result, (tuple, list)) else (result,)
            if len(outs) != len(op.outputs):
                raise InternalError(f"{op.locator}: kernel returned {len(outs)} outputs, "
                                    f"the operator has {len(op.outputs)}")
            for j, (ti, arr) in enumerate(zip(op.outputs, outs)):
                t = sg.tensors[ti]
                arr = np.asarray(arr)
                if t.dtype is not None and arr.dtype != t.dtype:
                    raise InternalError(f"{op.locator}: output {j} came back as {arr.dtype}, "
                                        f"tensor {ti} is {t.type_name}")
                if j not in prepared.dynamic_outputs and arr.shape != prepared.output_shapes[j]:
                    raise InternalError(f"{op.locator}: output {j} has shape {arr.shape}, "
                                        f"prepare planned {prepared.output_shapes[j]}")
                values[ti] = arr
            if observer is not None:
                observer(sg.index, op.index, op, ins, [values[ti] for ti in op.outputs])

    # -- tensors --------------------------------------------------------------------------------
    def _plan(self, subgraph_index: int) -> _SubgraphPlan:
        if subgraph_index not in self._plans:
            raise UsageError(f"subgraph {subgraph_index} is not planned for execution")
        return self._plans[subgraph_index]

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
        """A copy of any tensor's value: inputs, constants and every intermediate after invoke()."""
        self._require_allocated()
        t = self._tensor(tensor_index, subgraph_index)
        v = self._plan(subgraph_index).values[t.index]
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
        plan = self._plans[0]
        plan.shapes[t.index] = shape
        plan.values[t.index] = None
        self._allocated = False

    def reset_all_variables(self) -> None:
        for plan in self._plans.values():
            for t in plan.subgraph.tensors:
                if t.is_variable:
                    plan.values[t.index] = None
            self._init_values(plan)

    # -- details (the same keys and value types as LiteRT) --------------------------------------
    def _details(self, t: Tensor, subgraph_index: int = 0) -> dict[str, Any]:
        plan = self._plans.get(subgraph_index)
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
            raise UsageError(f"signature {self.key!r} has no input {sorted(unknown)[0]!r}; inputs: "
                             + ", ".join(self._inputs))
        missing = set(self._inputs) - set(kwargs)
        if missing:
            raise UsageError(f"signature {self.key!r}: missing input {sorted(missing)[0]!r}")
        for name, value in kwargs.items():
            it.set_tensor(self._inputs[name], value, self._si)
        it._run_subgraph(it._plans[self._si], None)
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


__all__ = ["Interpreter", "SignatureRunner", "Observer", "UnsupportedOpError"]
