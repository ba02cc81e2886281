"""The measurement: run the quantized model and its reference side by side, op by op.

For every sample:

1. the reference runs whole -- the float model, or the float shadow of the quantized graph
   (:mod:`tflite_ref.qdebug.shadow`) -- on the real-valued sample;
2. the quantized model runs on the same sample, quantized as TFLite's QUANTIZE does, and the
   interpreter's observer sees each operator's integer inputs and outputs.  There:

   * *accumulated* error: the output, dequantized, against the reference's counterpart tensor
     -- what the integer chain has lost so far;
   * *local* error: the output against the reference operator (float kernel; float weights
     with a float model, dequantized weights for the shadow) run on this operator's own inputs,
     dequantized -- what this operator adds, with the inherited error present on both sides.

Local error with a float model is what TFLite's ``NumericVerify`` measures in
QuantizationDebugger's default (layer-by-layer) debug mode -- the converter keeps each float op
beside its quantized twin, fed the DEQUANTIZE of the quantized inputs, with the float weights --
and accumulated error with a float model is what it measures with
``enable_whole_model_verify=True`` (checked to 1e-4 against the debugger on the reference
kernels; ``tests/models/qdebug``).  Two exceptions in its layer mode: an op reading the model's
float input through QUANTIZE has no DEQUANTIZE to read, so its float twin reads the raw input
and the figure includes the input's rounding (our accumulated error there); and same-scale ops
(AVERAGE_POOL_2D) get a quantized "float" twin, so the debugger reports ~0 for them.  The local reference is the float op on the *actual*
quantized inputs rather than the quantized op on quantized reference inputs: the latter would
count a producer's output rounding again as its consumers' input rounding, so a layer with a
ruined scale would share the blame with every layer reading it.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_ref.errors import InternalError, TFLiteRefError, UsageError
from tflite_ref.interpreter import Interpreter
from tflite_ref.kernels.registry import Kernel, OpContext, key_dtype, lookup
from tflite_ref.model.model import Model, Operator, Subgraph, Tensor
from tflite_ref.model.reader import load
from tflite_ref.qdebug.match import match
from tflite_ref.qdebug.report import (
    Culprit,
    ErrorMetrics,
    LayerReport,
    MetricsAccumulator,
    OutputReport,
    QuantReport,
    sample_metrics,
)
from tflite_ref.qdebug.samples import InputsSpec, Sample, load_samples
from tflite_ref.qdebug.shadow import dequantize, float_shadow, is_quantized, quantize

Progress = Callable[[int, int], None]

AMPLIFICATION_THRESHOLD_DB = 1.0  # below this a layer is not called an amplifier
_IDENTITY_OPS = ("QUANTIZE", "DEQUANTIZE")


def _as_model(m: Any, what: str) -> Model:
    if isinstance(m, Model):
        return m
    if isinstance(m, (str, os.PathLike, bytes, bytearray)):
        return load(m if not isinstance(m, bytearray) else bytes(m))
    raise UsageError(f"{what}: expected a Model, a path or bytes, not {type(m).__name__}")


def _name(m: Model, fallback: str) -> str:
    return m.path or fallback


def _scale_zp(t: Tensor) -> tuple[float | tuple[float, ...] | None, int | tuple[int, ...] | None]:
    if not is_quantized(t):
        return None, None
    q = t.quantization
    assert q is not None
    if q.scale.size == 1:
        return float(q.scale[0]), int(q.zero_point[0]) if q.zero_point.size else 0
    return tuple(float(s) for s in q.scale), tuple(int(z) for z in q.zero_point)


def _mean_scale(t: Tensor) -> float | None:
    q = t.quantization
    return float(np.mean(q.scale)) if is_quantized(t) and q is not None else None


def real(t: Tensor, value: np.ndarray) -> np.ndarray:
    """A tensor's value in real numbers, float32: dequantized, or as it is if float."""
    if is_quantized(t):
        return dequantize(t, value)
    return np.asarray(value).astype(np.float32)


Limits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _limits(t: Tensor, shape: tuple[int, ...]) -> Limits | None:
    """(qmin, qmax, real(qmin) - step/2, real(qmax) + step/2) for the saturation count."""
    if not is_quantized(t) or t.dtype is None:
        return None
    info = np.iinfo(t.dtype)
    lo = dequantize(t, np.full(shape, info.min, dtype=t.dtype)).astype(np.float64)
    hi = dequantize(t, np.full(shape, info.max, dtype=t.dtype)).astype(np.float64)
    step = (hi - lo) / (int(info.max) - int(info.min))
    return (np.asarray(info.min), np.asarray(info.max), lo - step / 2, hi + step / 2)


class _SingleOps:
    """One model's operators, each prepared once and run on its own with given inputs."""

    def __init__(self, model: Model, emulate: str) -> None:
        self.model = model
        self.sg = model.subgraphs[0]
        self.emulate = emulate
        self._cache: dict[tuple[int, tuple[Any, ...]], tuple[Kernel, Any] | TFLiteRefError] = {}

    def run(self, index: int, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        op = self.sg.operators[index]
        shapes = tuple(None if v is None else tuple(v.shape) for v in inputs)
        key = (index, shapes)
        prepared = self._cache.get(key)
        if prepared is None:
            try:
                ctx = OpContext(model=self.model, subgraph=self.sg, op=op, emulate=self.emulate,
                                input_shapes=shapes)
                kernel = lookup(op, key_dtype(op, self.sg), ctx.describe_types(), self.emulate)
                prepared = (kernel, kernel.prepare(ctx))
            except TFLiteRefError as exc:
                prepared = exc
            self._cache[key] = prepared
        if isinstance(prepared, TFLiteRefError):
            raise prepared
        kernel, data = prepared
        try:
            result = kernel.eval(data, *inputs)
        except TFLiteRefError:
            raise
        except Exception as exc:  # a kernel bug, not the model's fault
            raise InternalError(f"{op.locator}: kernel failed in qdebug's local run: "
                                f"{exc!r}") from exc
        outs = result if isinstance(result, (tuple, list)) else (result,)
        return [np.asarray(o) for o in outs]


class _ReferenceValues:
    """The reference's real value of each quantized tensor's counterpart, read once a sample."""

    def __init__(self, it: Interpreter, sg: Subgraph, ref_of: dict[int, int]) -> None:
        self.it, self.sg, self.ref_of = it, sg, ref_of
        self.values: dict[int, np.ndarray | None] = {}

    def __call__(self, ti: int) -> np.ndarray | None:
        ri = self.ref_of.get(ti)
        if ri is None:
            return None
        if ri not in self.values:
            try:
                self.values[ri] = real(self.sg.tensors[ri], self.it.get_tensor(ri))
            except UsageError:
                self.values[ri] = None  # the reference never wrote it
        return self.values[ri]


class _Layer:
    """Accumulators of one output tensor of one operator of the quantized model."""

    def __init__(self, op: Operator, tensor: Tensor, ref_tensor: Tensor | None) -> None:
        self.op = op
        self.tensor = tensor
        self.ref_tensor = ref_tensor
        scale = _mean_scale(tensor)
        self.accumulated = MetricsAccumulator(scale)
        self.local = MetricsAccumulator(scale)
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _is_layer_tensor(t: Tensor) -> bool:
    return is_quantized(t) or (t.dtype is not None and t.dtype.kind == "f")


@dataclass(frozen=True)
class _Reference:
    """What the quantized model is compared with, and how the two line up (subgraph 0)."""

    model: Model
    kind: str  # "float model" | "float shadow"
    tensor: dict[int, int]  # quantized tensor -> its real-valued counterpart
    operator: dict[int, int]  # quantized operator -> the reference operator that mirrors it
    matched: int | None = None  # with a float model: layer tensors that found a counterpart
    unmatched: tuple[str, ...] = ()


def _reference(qmodel: Model, fmodel: Model | None) -> _Reference:
    qsg = qmodel.subgraphs[0]
    if fmodel is None:
        shadow = float_shadow(qmodel)
        kept = [op.index for op in qsg.operators if op.index not in shadow.removed_ops]
        return _Reference(shadow.model, "float shadow",
                          {t.index: shadow.source(t.index) for t in qsg.tensors
                           if t.data is None or t.is_variable},
                          {q: r for r, q in enumerate(kept)})
    m = match(qsg, fmodel.subgraphs[0])
    wanted = [t for t in qsg.tensors if (t.data is None or t.is_variable)
              and _is_layer_tensor(t) and _produced_or_input(qsg, t.index)]
    unmatched = tuple(t.name for t in wanted if t.index not in m.tensors)
    if len(unmatched) == len(wanted):
        raise UsageError("no tensor of the quantized model has a counterpart in the float model "
                         "(by name or by graph position): are they the same network?")
    return _Reference(fmodel, "float model", dict(m.tensors), dict(m.operators),
                      len(wanted) - len(unmatched), unmatched)


class _Measurement:
    """Both models prepared once; :meth:`sample` runs one sample through both."""

    def __init__(self, qmodel: Model, ref: _Reference, emulate: str) -> None:
        self.qsg = qmodel.subgraphs[0]
        self.ref = ref
        self.rsg = ref.model.subgraphs[0]
        self.q_it = Interpreter(model=qmodel, emulate=emulate)
        self.q_it.allocate_tensors()
        self.r_it = Interpreter(model=ref.model, emulate=emulate)
        self.r_it.allocate_tensors()
        self.r_ops = _SingleOps(ref.model, emulate)
        self.feed = self._reference_feed()
        self.layers: dict[int, _Layer] = {}
        for op in self.qsg.operators:
            for ti in op.outputs:
                if ti < 0 or ti in self.layers or not _is_layer_tensor(self.qsg.tensors[ti]):
                    continue
                rt = self.rsg.tensors[ref.tensor[ti]] if ti in ref.tensor else None
                self.layers[ti] = _Layer(op, self.qsg.tensors[ti], rt)
                if rt is None:
                    self.layers[ti].note("no counterpart in the float model")
        # Graph inputs: their error (input quantization) feeds the amplification figures.
        self.inputs = {ti: MetricsAccumulator(_mean_scale(self.qsg.tensors[ti]))
                       for ti in self.qsg.inputs if _is_layer_tensor(self.qsg.tensors[ti])}
        self.top1: dict[int, list[float]] = {ti: [] for ti in self.qsg.outputs}
        self._limits: dict[int, Limits | None] = {}

    def _reference_feed(self) -> list[int]:
        """For each reference input, the position of the sample input that feeds it."""
        feed = []
        for ri in self.rsg.inputs:
            k = next((k for k, qi in enumerate(self.qsg.inputs)
                      if self.ref.tensor.get(qi) == ri), None)
            if k is None:
                raise UsageError(f"input {self.rsg.tensors[ri].name!r} of the float model has "
                                 "no counterpart among the quantized model's inputs")
            feed.append(k)
        return feed

    def limits(self, t: Tensor, shape: tuple[int, ...]) -> Limits | None:
        if t.index not in self._limits:
            self._limits[t.index] = _limits(t, shape)
        return self._limits[t.index]

    def sample(self, sample: Sample) -> None:
        for ri, k in zip(self.rsg.inputs, self.feed):
            self.r_it.set_tensor(ri, _to_tensor(self.rsg.tensors[ri], sample[k]))
        self.r_it.invoke()
        ref_value = _ReferenceValues(self.r_it, self.rsg, self.ref.tensor)
        for k, qi in enumerate(self.qsg.inputs):
            t = self.qsg.tensors[qi]
            self.q_it.set_tensor(qi, _to_tensor(t, sample[k]))
            ref = ref_value(qi)
            if qi in self.inputs and ref is not None and ref.size == t.num_elements:
                value = self.q_it.get_tensor(qi)
                self.inputs[qi].add(sample_metrics(real(t, value), ref.reshape(value.shape),
                                                   value, self.limits(t, value.shape)))
        self.q_it.invoke(observer=functools.partial(self.observe, ref_value))
        for ti in self.qsg.outputs:
            if ti not in self.layers:  # an output that is a graph input
                self._add_top1(ti, real(self.qsg.tensors[ti], self.q_it.get_tensor(ti)),
                               ref_value(ti))

    def _add_top1(self, ti: int, dq: np.ndarray, ref: np.ndarray | None) -> None:
        agree = _top1(dq, ref)
        if ti in self.top1 and agree is not None:
            self.top1[ti].append(agree)

    def observe(self, ref_value: _ReferenceValues, sg_index: int, op_index: int, op: Operator,
                ins: Sequence[np.ndarray | None], outs: Sequence[np.ndarray]) -> None:
        """After each operator of the quantized model: its accumulated and local error."""
        if sg_index != 0:
            return
        mine = [(j, ti) for j, ti in enumerate(op.outputs)
                if ti in self.layers and self.layers[ti].op.index == op_index]
        if not mine:
            return
        local_refs = _local_reference(op, ins, self.qsg, self.rsg, self.ref.operator, self.r_ops,
                                      self.layers, mine)
        for j, ti in mine:
            layer, t, value = self.layers[ti], self.qsg.tensors[ti], outs[j]
            dq = real(t, value)
            lim = self.limits(t, value.shape)
            for acc, ref, what in ((layer.accumulated, ref_value(ti), "float counterpart"),
                                   (layer.local, local_refs.get(j), "reference operator")):
                if ref is None:
                    continue
                if ref.size != value.size:
                    layer.note(f"{what} has shape {list(ref.shape)}, not {list(value.shape)}")
                    continue
                acc.add(sample_metrics(dq, ref.reshape(value.shape), value, lim))
            self._add_top1(ti, dq, ref_value(ti))

    def report(self, qmodel: Model, fmodel: Model | None, emulate: str, samples: int,
               source: str, top: int) -> QuantReport:
        results = {ti: (layer.accumulated.result(), layer.local.result())
                   for ti, layer in self.layers.items()}
        acc_nsr: dict[int, float] = {}
        for ti, acc in self.inputs.items():
            r = acc.result()
            if r is not None:
                acc_nsr[ti] = r.noise_to_signal
        for ti, (acc_m, _) in results.items():
            if acc_m is not None:
                acc_nsr[ti] = acc_m.noise_to_signal
        reports = []
        for ti, layer in self.layers.items():
            acc_m, loc_m = results[ti]
            scale, zp = _scale_zp(layer.tensor)
            reports.append(LayerReport(
                tensor=layer.tensor.name, tensor_index=ti, operator=layer.op.index,
                opcode=layer.op.opcode, dtype=layer.tensor.type_name, shape=layer.tensor.shape,
                scale=scale, zero_point=zp, accumulated=acc_m, local=loc_m,
                amplification_db=_amplification(layer.op, acc_m, loc_m, acc_nsr),
                float_tensor=layer.ref_tensor.name if fmodel is not None
                and layer.ref_tensor is not None else None,
                notes=tuple(layer.notes)))
        outputs = []
        for ti in self.qsg.outputs:
            metrics: ErrorMetrics | None = results[ti][0] if ti in results else (
                self.inputs[ti].result() if ti in self.inputs else None)
            fi = self.ref.tensor.get(ti)
            outputs.append(OutputReport(
                tensor=self.qsg.tensors[ti].name, tensor_index=ti, metrics=metrics,
                top1_agreement=float(np.mean(self.top1[ti])) if self.top1[ti] else None,
                float_tensor=self.rsg.tensors[fi].name if fmodel is not None and fi is not None
                else None))
        warnings = []
        if self.ref.unmatched:
            warnings.append(f"{len(self.ref.unmatched)} quantized tensor(s) have no counterpart "
                            "in the float model; their accumulated error is not measured")
        return QuantReport(
            quantized=_name(qmodel, "<quantized model>"),
            float_model=None if fmodel is None else _name(fmodel, "<float model>"),
            reference=self.ref.kind, emulate=emulate, samples=samples, inputs=source,
            layers=tuple(reports), outputs=tuple(outputs),
            culprits_local=_culprits_local(reports, top),
            culprits_amplification=_culprits_amplification(reports, top),
            matched_tensors=self.ref.matched, unmatched_tensors=self.ref.unmatched,
            warnings=tuple(warnings))


def qdebug(quantized: Any, float_model: Any = None, *, inputs: InputsSpec | None = None,
           samples: int | None = None, seed: int = 0, emulate: str = "tflite", top: int = 5,
           progress: Progress | None = None) -> QuantReport:
    """Per-layer quantization error of ``quantized`` (a path, bytes or :class:`Model`).

    ``float_model``: the float model it was converted from; without it, the reference is the
    float shadow of the quantized graph.  ``inputs``: an ``.npz``/``.npy``/image file or a
    folder of them, a mapping of input name to array, or a list of arrays (float samples; a
    leading axis may hold several); None for ``samples`` random samples (default 8) drawn with
    ``seed``.  ``top``: how many culprits to name.  ``progress(done, total)`` after each sample.
    """
    qmodel = _as_model(quantized, "quantized model")
    fmodel = None if float_model is None else _as_model(float_model, "float model")
    if not any(is_quantized(t) for t in qmodel.subgraphs[0].tensors):
        raise UsageError(f"{_name(qmodel, 'the model')} has no quantized tensors: nothing to "
                         "debug (give the int8 model first, the float one with --float)")
    sample_list, source = load_samples(qmodel, inputs, samples, seed)
    measurement = _Measurement(qmodel, _reference(qmodel, fmodel), emulate)
    for s, sample in enumerate(sample_list):
        measurement.sample(sample)
        if progress is not None:
            progress(s + 1, len(sample_list))
    return measurement.report(qmodel, fmodel, emulate, len(sample_list), source, top)


def _culprits_local(reports: list[LayerReport], top: int) -> tuple[Culprit, ...]:
    """Layers by local noise-to-signal ratio, worst first (lowest local SQNR)."""
    ranked = sorted((r for r in reports if r.local is not None and r.local.noise_to_signal > 0),
                    key=lambda r: (-r.local.noise_to_signal, r.operator))  # type: ignore[union-attr]
    return tuple(Culprit(r.tensor, r.tensor_index, r.operator, r.opcode,
                         r.local.sqnr_db)  # type: ignore[union-attr]
                 for r in ranked[:max(top, 0)])


def _culprits_amplification(reports: list[LayerReport], top: int) -> tuple[Culprit, ...]:
    ranked = sorted((r for r in reports if r.amplification_db is not None
                     and r.amplification_db > AMPLIFICATION_THRESHOLD_DB),
                    key=lambda r: (-float(r.amplification_db or 0.0), r.operator))
    return tuple(Culprit(r.tensor, r.tensor_index, r.operator, r.opcode,
                         float(r.amplification_db or 0.0)) for r in ranked[:max(top, 0)])


def _produced_or_input(sg: Subgraph, ti: int) -> bool:
    return ti in sg.inputs or any(ti in op.outputs for op in sg.operators)


def _to_tensor(t: Tensor, x: np.ndarray) -> np.ndarray:
    """A real-valued sample as tensor ``t`` takes it: quantized, or cast to its type."""
    if t.dtype is None:
        raise UsageError(f"input {t.name!r} is {t.type_name}: qdebug cannot feed it")
    x = np.asarray(x).reshape(t.shape)
    if is_quantized(t):
        return quantize(t, x)
    return x.astype(t.dtype)


def _top1(dq: np.ndarray, ref: np.ndarray | None) -> float | None:
    """Share of rows (over the last axis) whose argmax agrees; None when there is one class."""
    if ref is None or dq.ndim == 0 or dq.shape[-1] < 2 or ref.size != dq.size:
        return None
    a = dq.reshape(-1, dq.shape[-1])
    b = ref.reshape(-1, dq.shape[-1])
    return float(np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1)))


def _local_reference(op: Operator, ins: Sequence[np.ndarray | None], qsg: Subgraph,
                     rsg: Subgraph, ref_op: dict[int, int], r_ops: _SingleOps,
                     layers: dict[int, _Layer], mine: list[tuple[int, int]]
                     ) -> dict[int, np.ndarray]:
    """Output slot -> the reference operator's output on this operator's real-valued inputs."""
    if op.name in _IDENTITY_OPS and op.inputs and ins[0] is not None:
        # QUANTIZE / DEQUANTIZE / requantize: the identity on real values.
        return {0: real(qsg.tensors[op.inputs[0]], ins[0])}
    ri = ref_op.get(op.index)
    if ri is None:
        for _, ti in mine:
            layers[ti].note("no reference operator for the local error")
        return {}
    rop = rsg.operators[ri]
    if len(rop.inputs) != len(op.inputs):
        for _, ti in mine:
            layers[ti].note(f"float operator {ri} has other inputs")
        return {}
    feed: list[np.ndarray | None] = []
    for j, rj in enumerate(rop.inputs):
        if rj < 0:
            feed.append(None)
            continue
        rt = rsg.tensors[rj]
        if rt.data is not None and not rt.is_variable:
            feed.append(rt.data)  # the reference's own weights (float, or dequantized)
            continue
        value = ins[j]
        qi = op.inputs[j]
        if value is None or qi < 0:
            feed.append(None)
            continue
        v = real(qsg.tensors[qi], value) if (rt.dtype is not None and rt.dtype.kind == "f") \
            else np.asarray(value)
        if v.size != rt.num_elements:
            for _, ti in mine:
                layers[ti].note(f"float operator {ri} input {j} has shape {list(rt.shape)}")
            return {}
        feed.append(v.reshape(rt.shape).astype(rt.dtype) if rt.dtype is not None else v)
    try:
        outs = r_ops.run(ri, feed)
    except TFLiteRefError as exc:
        for _, ti in mine:
            layers[ti].note(f"reference operator not run: {exc}")
        return {}
    return {j: real(rsg.tensors[rop.outputs[j]], outs[j]) for j, _ in mine
            if j < len(outs) and j < len(rop.outputs)}


def _amplification(op: Operator, acc: ErrorMetrics | None,
                   local: ErrorMetrics | None, acc_nsr: dict[int, float]) -> float | None:
    """``10·log10(NSR_out / (max NSR_in + NSR_local))``: 0 dB when the layer's accumulated noise
    is what it inherited plus what it added; positive when it grew beyond that (the layer
    amplifies error relative to its signal, e.g. cancelling sums or a sharp softmax)."""
    if acc is None or local is None:
        return None
    inherited = [acc_nsr[i] for i in op.inputs if i >= 0 and i in acc_nsr]
    if not inherited:
        return None
    out = acc.noise_to_signal
    expected = max(inherited) + local.noise_to_signal
    if out <= 0 or expected <= 0 or not math.isfinite(out) or not math.isfinite(expected):
        return None
    return 10.0 * math.log10(out / expected)


__all__ = ["AMPLIFICATION_THRESHOLD_DB", "qdebug", "real"]
