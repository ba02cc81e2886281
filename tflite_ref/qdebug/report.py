"""What qdebug measures, per sample and over samples, and the report it returns.

Per sample, for a quantized tensor ``q`` (dequantized to float32, ``dq``) and its real-valued
reference ``ref`` (float32), ``diffs = dq - ref`` in float32 -- exactly what TFLite's
``NumericVerify`` op outputs -- and:

==================== ==========================================================================
``num_elements``     ``diffs.size``
``stddev``           ``std(diffs)``
``mean_error``       ``mean(diffs)``
``max_abs_error``    ``max(|diffs|)``
``mean_squared_error`` ``mean(diffs²)``
``cosine``           ``dq·ref / (|dq| |ref|)`` (1 when both are all zero, 0 when one is)
``saturated_fraction`` share of elements at the integer type's limit while the reference lies
                     beyond that limit by more than half a step: clipped by the range (a ReLU
                     output sitting at its zero is not counted)
==================== ==========================================================================

The first five are QuantizationDebugger's default ``layer_debug_metrics``.  Over samples, each of
these is averaged with ``nanmean``, as QuantizationDebugger does.  Sums run in float64 (the
debugger's NumPy calls sum float32; the difference is far below its 1e-4 agreement).

Two more are derived from those averages: ``rmse_over_scale = sqrt(mean_squared_error) / scale``
(QuantizationDebugger's tutorial computes it the same way; ≈ 0.29 = 1/sqrt(12) is plain rounding
noise, more means the layer loses more than its last bit) and ``sqnr_db = 10·log10(P / MSE)`` with
``P`` the sample-averaged mean square of the reference (infinite for an exact layer; ``None`` in
JSON).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

METRIC_NAMES = ("num_elements", "stddev", "mean_error", "max_abs_error", "mean_squared_error",
                "rmse_over_scale", "sqnr_db", "cosine", "saturated_fraction")
QD_METRICS = METRIC_NAMES[:5]
_PER_SAMPLE = ("num_elements", "stddev", "mean_error", "max_abs_error", "mean_squared_error",
               "cosine", "saturated_fraction", "signal_power")


def sample_metrics(dq: np.ndarray, ref: np.ndarray, q: np.ndarray | None = None,
                   limits: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
                   ) -> dict[str, float]:
    """The per-sample values of one tensor.

    ``dq``/``ref`` float32 of one shape; ``q`` the integer values and ``limits`` =
    ``(qmin, qmax, real value at qmin - half a step, real value at qmax + half a step)``
    (broadcastable) for the saturation count, or None for a float tensor.
    """
    diffs = (dq.astype(np.float32) - ref.astype(np.float32)).astype(np.float32)
    d = diffs.astype(np.float64).reshape(-1)
    a = dq.astype(np.float64).reshape(-1)
    r = ref.astype(np.float64).reshape(-1)
    n = d.size
    if n == 0:
        return {k: math.nan for k in _PER_SAMPLE} | {"num_elements": 0.0}
    na, nr = float(np.sqrt(a @ a)), float(np.sqrt(r @ r))
    if na == 0.0 and nr == 0.0:
        cosine = 1.0
    elif na == 0.0 or nr == 0.0:
        cosine = 0.0
    else:
        cosine = float(a @ r) / (na * nr)
    saturated = math.nan
    if q is not None and limits is not None:
        qmin, qmax, below, above = limits
        clipped = ((q == qmax) & (ref > above)) | ((q == qmin) & (ref < below))
        saturated = float(np.count_nonzero(clipped)) / n
    return {
        "num_elements": float(n),
        "stddev": float(np.std(d)),
        "mean_error": float(np.mean(d)),
        "max_abs_error": float(np.max(np.abs(d))),
        "mean_squared_error": float(np.mean(d * d)),
        "cosine": cosine,
        "saturated_fraction": saturated,
        "signal_power": float(np.mean(r * r)),
    }


@dataclass(frozen=True, slots=True)
class ErrorMetrics:
    """One tensor's error over all samples (see the module docstring for definitions)."""

    num_elements: float
    stddev: float
    mean_error: float
    max_abs_error: float
    mean_squared_error: float
    rmse_over_scale: float | None  # None for a float tensor (no scale)
    sqnr_db: float
    cosine: float
    saturated_fraction: float | None  # None for a float tensor
    signal_power: float  # mean square of the reference: sqnr_db = 10·log10(this / MSE)

    @property
    def noise_to_signal(self) -> float:
        """MSE / signal power (linear): what the culprit ranking sorts by."""
        if self.mean_squared_error == 0.0:
            return 0.0
        return self.mean_squared_error / self.signal_power if self.signal_power else math.inf

    def as_dict(self) -> dict[str, float | None]:
        return {k: _finite(getattr(self, k)) for k in METRIC_NAMES}


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


class MetricsAccumulator:
    """Per-sample values of one tensor, aggregated as QuantizationDebugger does."""

    __slots__ = ("scale", "values")

    def __init__(self, scale: float | None) -> None:
        self.values: dict[str, list[float]] = {k: [] for k in _PER_SAMPLE}
        self.scale = scale

    def add(self, sample: dict[str, float]) -> None:
        for k in _PER_SAMPLE:
            self.values[k].append(sample[k])

    def __len__(self) -> int:
        return len(self.values["num_elements"])

    def result(self) -> ErrorMetrics | None:
        if not len(self):
            return None
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: stays NaN
                m = {k: float(np.nanmean(np.asarray(v, dtype=np.float64)))
                     for k, v in self.values.items()}
        mse, power = m["mean_squared_error"], m["signal_power"]
        if mse == 0.0:
            sqnr = math.inf if power > 0 else math.nan
        else:
            sqnr = 10.0 * math.log10(power / mse) if power > 0 else -math.inf
        rmse_scale = math.sqrt(mse) / self.scale if self.scale else None
        sat = m["saturated_fraction"]
        return ErrorMetrics(
            num_elements=m["num_elements"], stddev=m["stddev"], mean_error=m["mean_error"],
            max_abs_error=m["max_abs_error"], mean_squared_error=mse,
            rmse_over_scale=rmse_scale, sqnr_db=sqnr, cosine=m["cosine"],
            saturated_fraction=None if math.isnan(sat) else sat, signal_power=power)


# ------------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LayerReport:
    """One output tensor of one operator of the quantized model."""

    tensor: str
    tensor_index: int
    operator: int
    opcode: str
    dtype: str
    shape: tuple[int, ...]
    scale: float | tuple[float, ...] | None  # None for a float output (hybrid op, DEQUANTIZE)
    zero_point: int | tuple[int, ...] | None
    accumulated: ErrorMetrics | None  # the quantized chain vs the reference chain
    local: ErrorMetrics | None  # this operator alone: float op on its dequantized inputs
    amplification_db: float | None  # see QuantReport
    float_tensor: str | None = None  # the counterpart in the float model (with a float model)
    notes: tuple[str, ...] = ()  # why a metric is missing

    def as_dict(self) -> dict[str, Any]:
        return {
            "tensor": self.tensor, "tensor_index": self.tensor_index,
            "operator": self.operator, "opcode": self.opcode, "dtype": self.dtype,
            "shape": list(self.shape),
            "scale": list(self.scale) if isinstance(self.scale, tuple) else self.scale,
            "zero_point": (list(self.zero_point) if isinstance(self.zero_point, tuple)
                           else self.zero_point),
            "float_tensor": self.float_tensor,
            "accumulated": None if self.accumulated is None else self.accumulated.as_dict(),
            "local": None if self.local is None else self.local.as_dict(),
            "amplification_db": _finite(self.amplification_db),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class OutputReport:
    """A model output: its accumulated error and, for a classifier, top-1 agreement."""

    tensor: str
    tensor_index: int
    metrics: ErrorMetrics | None
    top1_agreement: float | None  # share of samples (rows) whose argmax agrees; None if 1 class
    float_tensor: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "tensor_index": self.tensor_index,
                "float_tensor": self.float_tensor,
                "sqnr_db": None if self.metrics is None else _finite(self.metrics.sqnr_db),
                "top1_agreement": self.top1_agreement,
                "metrics": None if self.metrics is None else self.metrics.as_dict()}


@dataclass(frozen=True, slots=True)
class Culprit:
    """A layer in one of the two rankings, with the figure it was ranked by."""

    tensor: str
    tensor_index: int
    operator: int
    opcode: str
    value: float  # local: SQNR in dB (lowest first); amplification: dB (highest first)

    def as_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "tensor_index": self.tensor_index,
                "operator": self.operator, "opcode": self.opcode, "value": _finite(self.value)}


@dataclass(frozen=True, slots=True)
class QuantReport:
    """Where the quantized model loses accuracy: per layer, per output, and the culprits.

    ``reference`` is ``"float model"`` (with ``float_model``) or ``"float shadow"`` (the same
    graph on dequantized weights and float activations).  ``amplification_db`` of a layer is
    ``10·log10(NSR_out / (max NSR_in + NSR_local))`` with NSR the accumulated noise-to-signal
    ratios of its output and quantized inputs and of its local error: 0 dB when inherited and
    added noise simply add up; positive when the layer makes inherited error grow relative to
    its signal.
    """

    quantized: str
    float_model: str | None
    reference: str
    emulate: str
    samples: int
    inputs: str  # where the samples came from
    layers: tuple[LayerReport, ...]
    outputs: tuple[OutputReport, ...]
    culprits_local: tuple[Culprit, ...]
    culprits_amplification: tuple[Culprit, ...]
    matched_tensors: int | None = None  # with a float model: quantized tensors matched
    unmatched_tensors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def denylisted_nodes(self) -> tuple[str, ...]:
        """Tensor names of the local culprits, as the TF converter takes them to keep those
        layers float (``QuantizationDebugOptions(denylisted_nodes=[...])``)."""
        return tuple(c.tensor for c in self.culprits_local)

    @property
    def sqnr_db(self) -> float | None:
        """The first output's SQNR in dB."""
        m = self.outputs[0].metrics if self.outputs else None
        return None if m is None else m.sqnr_db

    @property
    def top1_agreement(self) -> float | None:
        return self.outputs[0].top1_agreement if self.outputs else None

    def layer(self, tensor: str | int) -> LayerReport:
        for lr in self.layers:
            if lr.tensor == tensor or lr.tensor_index == tensor:
                return lr
        raise KeyError(tensor)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document: ``{"samples", "model", "layers", "culprits"}``."""
        return {
            "samples": self.samples,
            "model": {
                "quantized": self.quantized, "float": self.float_model,
                "reference": self.reference, "emulate": self.emulate, "inputs": self.inputs,
                "sqnr_db": _finite(self.sqnr_db), "top1_agreement": self.top1_agreement,
                "outputs": [o.as_dict() for o in self.outputs],
                "matched_tensors": self.matched_tensors,
                "unmatched_tensors": list(self.unmatched_tensors),
                "warnings": list(self.warnings),
            },
            "layers": [lr.as_dict() for lr in self.layers],
            "culprits": {
                "local": [c.as_dict() for c in self.culprits_local],
                "amplification": [c.as_dict() for c in self.culprits_amplification],
                "denylisted_nodes": list(self.denylisted_nodes),
            },
        }


__all__ = [
    "METRIC_NAMES",
    "QD_METRICS",
    "Culprit",
    "ErrorMetrics",
    "LayerReport",
    "MetricsAccumulator",
    "OutputReport",
    "QuantReport",
    "sample_metrics",
]
