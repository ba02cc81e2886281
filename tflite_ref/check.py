"""Differential testing: tflite_ref and the native runtimes on the same inputs, tensor by tensor.

``check(model, against=("litert-ref",), inputs=None, emulate="tflite") -> CheckReport``

tflite_ref runs in this process; each native runtime (:mod:`tflite_ref.native`: LiteRT's reference
kernels, LiteRT's default with XNNPACK, TFLite Micro) runs in a child process, so that a runtime
that crashes, hangs or runs out of memory becomes a :class:`RuntimeFinding` in the report.

Every tensor both sides expose is compared: integer tensors in quantization steps (LSB: the
difference of the stored integers), float tensors relative to the tensor's magnitude. Each
difference is classified, from the operator's own contribution:

- ``exact``: bit-identical; ``tolerance``: a float tensor within ``rtol`` of the runtime's.
- ``propagated``: the operator's inputs already differ and, re-run by tflite_ref on the
  *runtime's* inputs, the operator agrees with the runtime: it only carries an earlier difference.
- ``rounding``: at most ±1 LSB on a minority of elements, from an operator where the two
  runtimes' arithmetic is known to round differently (:data:`KNOWN_DIVERGENCES`, drawn from
  ``docs/integer-arithmetic.md`` §4).
- ``known``: a known difference of algorithm between the runtimes (e.g. TFLite Micro's RELU6
  does not requantize), of any size.
- ``real``: nothing above explains it.

The emulated runtime (``litert-ref`` for ``emulate="tflite"``, ``tflm`` for ``"tflm"``) has no
known divergences from tflite_ref: there, any integer difference is ``real`` (or ``propagated``
from one). The tool computes; :mod:`tflite_ref.cli.check_cmd` renders.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_ref import native
from tflite_ref.errors import UsageError
from tflite_ref.interpreter import Interpreter
from tflite_ref.kernels.registry import OpContext, key_dtype, lookup
from tflite_ref.model.model import Model, Operator, Subgraph, Tensor
from tflite_ref.model.reader import load
from tflite_ref.runner import random_input

EMULATED_RUNTIME = {"tflite": "litert-ref", "tflm": "tflm"}
CLASSES = ("exact", "tolerance", "propagated", "rounding", "known", "real")  # by severity
DIVERGENT = frozenset(("propagated", "rounding", "known", "real"))
POLICIES = {
    "emulated": "integer tensors exact and float tensors within rtol against the emulated "
                "runtime; no unexplained (real) divergence against the others",
    "any": "every tensor exact (float: within rtol) against every runtime",
    "real": "no unexplained (real) divergence against any runtime",
    "crash": "only a runtime failure (crash, refusal, timeout, memory) fails",
}
DEFAULT_RTOL = 1e-3
FLOAT_ATOL = 1e-6  # float tensors near zero everywhere: below this nothing is a difference
# A rounding difference needs the exact result to sit near a rounding boundary, so it touches a
# minority of elements (0.04-0.6 % for XNNPACK vs reference conv/FC; up to 18 % for XNNPACK
# RESIZE_BILINEAR and tie-heavy QUANTIZE). An off-by-one on most elements is a bug, not rounding.
ROUNDING_MAX_SHARE = 0.25
HIST_CLIP = 16  # histogram bins beyond ±16 LSB are pooled into ±16


# ------------------------------------------------------------------------------------------------
# Known divergences between the runtimes' arithmetic
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KnownDivergence:
    """Where two runtimes are known to compute an operator differently, and why."""

    runtimes: frozenset[str]  # the two runtimes this entry is between
    ops: tuple[str, ...]
    dtypes: tuple[str, ...]  # type of the operator's first output; () = any
    reason: str
    max_lsb: int | None = 1  # 1: rounding-class; None: a different algorithm, any size
    undelegated: str = ""  # LiteRT default: the reason when XNNPACK did not take the node


_REF_AUTO = frozenset(("litert-ref", "litert"))
_REF_TFLM = frozenset(("litert-ref", "tflm"))
_RUY = ("not delegated to XNNPACK here: LiteRT's optimized kernel (ruy/NEON-style) follows the "
        "rounding doubling high multiply with a round-half-up shift, the reference kernel with a "
        "round-half-away shift")

KNOWN_DIVERGENCES: tuple[KnownDivergence, ...] = (
    # LiteRT reference (BUILTIN_REF) vs LiteRT default (AUTO = optimized kernels + XNNPACK), §1.6
    KnownDivergence(_REF_AUTO, ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"),
                    ("INT8", "UINT8"),
                    "XNNPACK requantizes in fp32 (scale fl32(s_in*s_w/s_out), round half to "
                    "even); LiteRT's reference kernel uses the double-rounding integer multiplier "
                    "(SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT)", 1, _RUY),
    KnownDivergence(_REF_AUTO, ("FULLY_CONNECTED",), ("INT8", "UINT8"),
                    "XNNPACK requantizes in fp32 (round half to even); LiteRT's reference kernel "
                    "in double precision (round half away from zero)", 1, _RUY),
    KnownDivergence(_REF_AUTO, ("MUL",), ("INT8", "UINT8"),
                    "XNNPACK requantizes the product in fp32; LiteRT's reference kernel with the "
                    "double-rounding integer multiplier"),
    KnownDivergence(_REF_AUTO, ("QUANTIZE",), ("INT8", "UINT8", "INT16"),
                    "from float, XNNPACK multiplies by the float32 reciprocal of the scale and "
                    "rounds half to even where the reference divides and rounds half away (exact "
                    "ties differ); from an integer, XNNPACK requantizes in fp32, the reference "
                    "with the integer multiplier"),
    KnownDivergence(_REF_AUTO, ("MEAN",), ("INT8", "UINT8"),
                    "XNNPACK's MEAN rounds once; the reference kernel's multiplier rounds twice "
                    "(LiteRT's optimized Mean, when XNNPACK does not take it, is another "
                    "algorithm: a float zero-point bias and ruy-style rounding)"),
    KnownDivergence(_REF_AUTO, ("LEAKY_RELU",), ("INT8", "UINT8"),
                    "XNNPACK's LEAKY_RELU arithmetic differs from the reference's two integer "
                    "multipliers"),
    KnownDivergence(_REF_AUTO, ("RESIZE_BILINEAR",), ("INT8", "UINT8"),
                    "XNNPACK interpolates with its own fixed-point weights; the reference kernel "
                    "with 10-bit integer weights and round-half-away"),
    KnownDivergence(_REF_AUTO, ("ADD", "SUB"), ("INT8", "UINT8"),
                    "XNNPACK's quantized ADD/SUB arithmetic is its own (not modelled here); it "
                    "differs from the reference's double-rounding multipliers by one, rarely"),
    KnownDivergence(_REF_AUTO, ("LOGISTIC", "TANH"), ("INT8", "UINT8"),
                    "XNNPACK builds its own lookup table (equal to the reference's in the tests "
                    "so far; not modelled here)"),
    # LiteRT reference vs TFLite Micro, §4
    KnownDivergence(_REF_TFLM, ("FULLY_CONNECTED",), ("INT8",),
                    "LiteRT's reference kernel requantizes in double precision "
                    "(round(acc*s_in*s_w/s_out)), TFLite Micro with the integer multiplier "
                    "(double rounding)"),
    KnownDivergence(_REF_TFLM, ("FULLY_CONNECTED",), ("INT16",),
                    "TFLite Micro accumulates int16x8 FULLY_CONNECTED in int64 with a 15-bit "
                    "reduced multiplier; LiteRT requantizes in double precision"),
    KnownDivergence(_REF_TFLM, ("SUB",), ("INT8", "INT16"),
                    "TFLite Micro derives SUB's multipliers in float32, LiteRT in double: their "
                    "low bits differ"),
    KnownDivergence(_REF_TFLM, ("MUL",), ("INT8", "INT16"),
                    "LiteRT derives MUL's multiplier from a float32 quotient, TFLite Micro in "
                    "double: their low bits differ"),
    KnownDivergence(_REF_TFLM, ("LOGISTIC", "TANH"), ("INT8",),
                    "LiteRT uses a 256-entry float table, TFLite Micro gemmlowp fixed point: rare "
                    "table entries differ by one"),
    KnownDivergence(_REF_TFLM, ("ADD",), ("INT16",),
                    "LiteRT takes a power-of-two path for int16 ADD when every scale is a power of "
                    "two; TFLite Micro always takes the general path"),
    KnownDivergence(_REF_TFLM, ("RELU6",), ("INT8",),
                    "TFLite Micro's standalone RELU6 clamps in the input's quantization without "
                    "requantizing; LiteRT requantizes to the output's", None),
    KnownDivergence(_REF_TFLM, ("UNIDIRECTIONAL_SEQUENCE_LSTM",), ("INT8", "INT16"),
                    "LiteRT's integer LSTM (EvalInteger8x8_16: gate scales from the model's "
                    "intermediates) and TFLite Micro's LstmStep are different implementations",
                    None),
    KnownDivergence(_REF_TFLM, ("SVDF",), ("INT8",),
                    "TFLite Micro keeps the state's zero point (and an 8-bit state where LiteRT "
                    "reads int16)", None),
)


def known_divergence(emulated: str, runtime: str, opcode: str, dtype: str
                     ) -> KnownDivergence | None:
    """The known difference between ``emulated`` (the runtime tflite_ref reproduces) and
    ``runtime`` for ``opcode`` with output type ``dtype``; None when none is known.

    TFLite Micro vs LiteRT's default goes through the reference: both entries apply.
    """
    if emulated == runtime:
        return None
    pairs = [frozenset((emulated, runtime))]
    if pairs[0] == frozenset(("tflm", "litert")):
        pairs = [_REF_AUTO, _REF_TFLM]
    found = [kd for pair in pairs for kd in KNOWN_DIVERGENCES
             if kd.runtimes == pair and opcode in kd.ops and (not kd.dtypes or dtype in kd.dtypes)]
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    # Two roundings of (nearly) the same real value still differ by at most one step.
    bound = None if any(kd.max_lsb is None for kd in found) else 1
    return KnownDivergence(frozenset((emulated, runtime)), (opcode,), (dtype,),
                           "; and ".join(kd.reason for kd in found), bound,
                           next((kd.undelegated for kd in found if kd.undelegated), ""))


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DiffStats:
    """How two values of one tensor differ, over every compared sample."""

    elements: int  # compared elements (all samples)
    differing: int  # elements not bit-identical (NaN vs NaN counts as equal)
    max_abs: float  # max |ours - theirs| (integers: in LSB)
    max_rel: float | None  # float tensors: max_abs / max |theirs|
    histogram: tuple[tuple[int, int], ...] = ()  # integers: (ours - theirs, count), ±16 pooled

    @property
    def share(self) -> float:
        return self.differing / self.elements if self.elements else 0.0

    @property
    def max_lsb(self) -> int:
        return int(self.max_abs)


@dataclass(frozen=True, slots=True)
class InputAgreement:
    """One input of the operator that produced a divergent tensor, compared at that sample."""

    slot: int
    index: int  # tensor index; -1 for an absent optional input
    name: str
    state: str  # "exact", "tolerance", "differs", "constant", "not exposed", "absent"
    max_abs: float | None = None


@dataclass(frozen=True, slots=True)
class TensorDiff:
    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    numeric: str  # "integer", "float" or "bool"
    operator: int | None  # the operator that produced it (or whose state it is)
    opcode: str | None
    role: str  # "output", "intermediate" or "state"
    samples: int  # samples in which the runtime exposed it
    diff: DiffStats
    cls: str  # one of CLASSES: the worst over the samples
    local: DiffStats | None = None  # the operator re-run on the runtime's inputs, when it was
    explanation: str | None = None
    first_sample: int | None = None  # first sample where it was divergent
    inputs: tuple[InputAgreement, ...] = ()  # at first_sample, when divergent
    note: str | None = None

    @property
    def divergent(self) -> bool:
        return self.cls in DIVERGENT


@dataclass(frozen=True, slots=True)
class RuntimeFinding:
    """The native runtime failed on the model (see :class:`tflite_ref.native.NativeFailure`)."""

    run: str  # "plain", "preserve-all" (the run that keeps every tensor) or "both"
    kind: str  # "crash", "refused", "error", "timeout", "out-of-memory"
    stage: str
    sample: int | None
    message: str
    signal: str | None = None
    stderr_tail: str = ""


@dataclass(frozen=True, slots=True)
class RuntimeReport:
    runtime: str  # "litert-ref", "litert", "tflm"
    title: str
    version: str | None
    emulated: bool  # the runtime tflite_ref's emulation reproduces
    exposes: str  # "all tensors", "outputs" or "nothing" (it failed before a sample)
    samples: int  # samples compared
    tensors: tuple[TensorDiff, ...]  # in execution order
    first_divergence: TensorDiff | None
    counts: Mapping[str, int]
    passed: bool
    reasons: tuple[str, ...]  # why it failed the policy
    findings: tuple[RuntimeFinding, ...] = ()  # the runtime failed (a finding in itself)
    notes: tuple[str, ...] = ()

    def worst(self, limit: int | None = None) -> tuple[TensorDiff, ...]:
        """Tensors by class severity, then size of the difference; exact ones last."""
        ranked = sorted(self.tensors, key=lambda t: (-CLASSES.index(t.cls),
                                                     -(t.diff.max_rel if t.numeric == "float"
                                                       and t.diff.max_rel is not None
                                                       else t.diff.max_abs),
                                                     -t.diff.share, t.index))
        return tuple(ranked[:limit] if limit is not None else ranked)


@dataclass(frozen=True, slots=True)
class CheckReport:
    model: str
    emulate: str
    policy: str
    rtol: float
    samples: int
    seed: int | None  # None when the inputs were given
    runtimes: tuple[RuntimeReport, ...]
    operators: int

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.runtimes)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------
InputSample = Mapping[str, np.ndarray]
Progress = Callable[[str, int, int], None]


def _input_aliases(model: Model) -> dict[str, int]:
    sg = model.subgraphs[0]
    names: dict[str, int] = {}
    for k, ti in enumerate(sg.inputs):
        names[str(k)] = ti
        names[sg.tensors[ti].name] = ti
    for sd in model.signatures:
        if sd.subgraph_index == 0:
            names.update(sd.inputs)
    return names


def _as_input(t: Tensor, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if t.dtype is None or arr.dtype == t.dtype:
        return arr
    q = t.quantization
    if arr.dtype.kind == "f" and t.dtype.kind in "iu" and q is not None and q.scale.size == 1:
        # Real values for a quantized input: quantize as LiteRT's reference QUANTIZE does
        # (float32 division, round half away from zero).
        v = (arr.astype(np.float32) / np.float32(q.scale[0])).astype(np.float64)
        info = np.iinfo(t.dtype)
        q_int: np.ndarray = np.clip(np.trunc(v + np.copysign(0.5, v)) + int(q.zero_point[0]),
                                    info.min, info.max)
        return q_int.astype(t.dtype)
    if arr.dtype.kind in "iub" and t.dtype.kind in "iub" or arr.dtype.kind == t.dtype.kind:
        return arr.astype(t.dtype)
    raise UsageError(f"input tensor {t.index} {t.name!r} is {t.type_name}; got {arr.dtype} values")


def input_samples(model: Model, inputs: InputSample | Sequence[InputSample] | None,
                  samples: int = 1, seed: int | None = 0) -> list[list[np.ndarray]]:
    """One list of arrays (in the order of subgraph 0's inputs) per sample.

    ``inputs`` maps input names (tensor names, signature names or positions ``"0"``...) to arrays,
    or is a sequence of such mappings, one per sample. Inputs not given are random (seeded, as
    ``tflite-ref run``). Without ``inputs``: ``samples`` random samples.
    """
    sg = model.subgraphs[0]
    if inputs is None:
        given: list[InputSample] = [{} for _ in range(samples)]
    elif isinstance(inputs, Mapping):
        given = [inputs]
    else:
        given = list(inputs)
        if not given:
            raise UsageError("no input samples given")
    aliases = _input_aliases(model)
    rng = np.random.default_rng(seed)
    out = []
    for k, sample in enumerate(given):
        by_index: dict[int, np.ndarray] = {}
        for name, value in sample.items():
            ti = aliases.get(name)
            if ti is None:
                raise UsageError(f"sample {k}: the model has no input named {name!r}; inputs: "
                                 + ", ".join(repr(sg.tensors[i].name) for i in sg.inputs))
            by_index[ti] = _as_input(sg.tensors[ti], value)
        row = []
        for ti in sg.inputs:
            t = sg.tensors[ti]
            row.append(by_index[ti] if ti in by_index else random_input(t, t.shape, rng))
        out.append(row)
    return out


def split_samples(model: Model, arrays: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Arrays for named inputs, with a leading sample axis on *every* array (``[N, *shape]``), as
    N samples; otherwise as one sample. ``arr_<k>`` (``np.savez`` without names) means input k."""
    aliases = _input_aliases(model)
    sg = model.subgraphs[0]
    named: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if key.startswith("arr_") and key[4:].isdigit() and key not in aliases:
            key = key[4:]
        if key not in aliases:
            raise UsageError(f"the model has no input named {key!r}; inputs: "
                             + ", ".join(repr(sg.tensors[i].name) for i in sg.inputs))
        named[key] = np.asarray(value)
    if not named:
        raise UsageError("the inputs file holds no arrays")
    batched = [len(v.shape) == len(sg.tensors[aliases[k]].shape) + 1 and
               tuple(v.shape[1:]) == sg.tensors[aliases[k]].shape for k, v in named.items()]
    counts = {v.shape[0] for v in named.values()}
    if all(batched) and len(counts) == 1:
        return [{k: v[n] for k, v in named.items()} for n in range(counts.pop())]
    return [named]


# ------------------------------------------------------------------------------------------------
# Comparing one tensor
# ------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Diff:
    """One tensor at one sample."""

    elements: int
    differing: int
    max_abs: float
    max_rel: float | None
    within_tol: bool
    hist: Counter[int] | None
    mismatch: str | None = None  # shape or dtype mismatch

    @property
    def exact(self) -> bool:
        return self.mismatch is None and self.differing == 0

    @property
    def share(self) -> float:
        return self.differing / self.elements if self.elements else 0.0


def _numeric(dtype: np.dtype) -> str | None:
    if dtype.kind == "b":
        return "bool"
    if dtype.kind in "iu":
        return "integer"
    if dtype.kind in "fc":
        return "float"
    return None  # strings, resources: not compared


def compare_arrays(ours: np.ndarray, theirs: np.ndarray, rtol: float = DEFAULT_RTOL) -> _Diff:
    """Integers in LSB (plain difference of the stored values); floats relative to the magnitude
    of ``theirs``. Shape first, then dtype, then values."""
    if ours.shape != theirs.shape:
        if ours.size == theirs.size and ours.dtype == theirs.dtype:
            # TFLite Micro's Python outputs may drop or add unit dimensions
            theirs = theirs.reshape(ours.shape)
        else:
            return _Diff(ours.size, ours.size, float("inf"), None, False, None,
                         f"shape {list(ours.shape)} vs {list(theirs.shape)}")
    if ours.dtype != theirs.dtype:
        return _Diff(ours.size, ours.size, float("inf"), None, False, None,
                     f"dtype {ours.dtype} vs {theirs.dtype}")
    kind = _numeric(ours.dtype)
    if kind == "float":
        if ours.dtype.kind == "c":
            a = np.stack([ours.real, ours.imag]).astype(np.float64)
            b = np.stack([theirs.real, theirs.imag]).astype(np.float64)
        else:
            a, b = ours.astype(np.float64), theirs.astype(np.float64)
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        same = (a == b) | (nan_a & nan_b)
        differing = int(a.size - np.count_nonzero(same))
        if ours.dtype.kind == "c":
            differing = int(np.count_nonzero(~(same[0] & same[1])))
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.where(same, 0.0, np.abs(a - b))
        err = np.where(np.isnan(err), np.inf, err)  # NaN on one side only
        max_abs = float(err.max()) if err.size else 0.0
        finite = b[np.isfinite(b)]
        mag = float(np.abs(finite).max()) if finite.size else 0.0
        max_rel = max_abs / mag if mag > 0 else (0.0 if max_abs == 0 else float("inf"))
        return _Diff(ours.size, differing, max_abs, max_rel, max_abs <= rtol * mag + FLOAT_ATOL,
                     None)
    d = ours.astype(np.int64) - theirs.astype(np.int64)
    if ours.dtype.kind == "u" and ours.dtype.itemsize == 8:  # uint64 beyond int64: exact in object
        d = ours.astype(object) - theirs.astype(object)
    nz = d[d != 0]
    differing = int(nz.size)
    max_abs = float(np.abs(nz).max()) if differing else 0.0
    hist: Counter[int] = Counter()
    if differing:
        vals, counts = np.unique(np.clip(nz.astype(np.int64), -HIST_CLIP, HIST_CLIP),
                                 return_counts=True)
        hist.update({int(v): int(c) for v, c in zip(vals, counts)})
    return _Diff(ours.size, differing, max_abs, None, differing == 0, hist)


# ------------------------------------------------------------------------------------------------
# Accumulating over samples
# ------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Stats:
    elements: int = 0
    differing: int = 0
    max_abs: float = 0.0
    max_rel: float | None = None
    hist: Counter[int] = field(default_factory=Counter)

    def add(self, d: _Diff) -> None:
        self.elements += d.elements
        self.differing += d.differing
        self.max_abs = max(self.max_abs, d.max_abs)
        if d.max_rel is not None:
            self.max_rel = d.max_rel if self.max_rel is None else max(self.max_rel, d.max_rel)
        if d.hist:
            self.hist.update(d.hist)

    def freeze(self) -> DiffStats:
        return DiffStats(self.elements, self.differing, self.max_abs, self.max_rel,
                         tuple(sorted(self.hist.items())))


@dataclass(slots=True)
class _Target:
    """A tensor to compare: an operator's output, or a state tensor it updates."""

    index: int
    tensor: Tensor
    op: Operator | None
    role: str
    numeric: str
    output_slot: int | None  # position among the graph outputs
    samples: int = 0
    stats: _Stats = field(default_factory=_Stats)
    local: _Stats | None = None
    cls: str = "exact"
    explanation: str | None = None
    first_sample: int | None = None
    inputs: tuple[InputAgreement, ...] = ()
    note: str | None = None


def _targets(sg: Subgraph) -> list[_Target]:
    scratch = {i for op in sg.operators for i in op.intermediates}
    seen: set[int] = set(sg.inputs)
    out: list[_Target] = []
    outputs = {ti: k for k, ti in enumerate(sg.outputs)}

    def add(ti: int, op: Operator, role: str) -> None:
        t = sg.tensors[ti]
        kind = _numeric(t.dtype) if t.dtype is not None else None
        if ti in seen or ti in scratch or kind is None:
            return
        if t.data is not None and not t.is_variable:
            return  # constants are the file's bytes on both sides
        seen.add(ti)
        role = "output" if ti in outputs else role
        out.append(_Target(ti, t, op, role, kind, outputs.get(ti)))

    for op in sg.operators:
        for ti in op.outputs:
            if ti >= 0:
                add(ti, op, "intermediate")
        for ti in op.inputs:  # state the operator updates in place (SVDF, LSTM, ...)
            if ti >= 0 and sg.tensors[ti].is_variable:
                add(ti, op, "state")
    return out


# ------------------------------------------------------------------------------------------------
# Re-running one operator on the runtime's inputs
# ------------------------------------------------------------------------------------------------
class _LocalRunner:
    """Runs a single operator with tflite_ref's kernel on given inputs (prepared once per op).

    It uses the public kernel contract (``lookup`` → ``prepare`` → ``eval``), so a kernel
    replaced in the registry is the one that runs.
    """

    def __init__(self, model: Model, emulate: str) -> None:
        self.model = model
        self.emulate = emulate
        self._prepared: dict[tuple[int, tuple[Any, ...]], tuple[Any, Any]] = {}

    def run(self, op: Operator, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray] | None:
        sg = self.model.subgraphs[op.subgraph]
        shapes = tuple(None if x is None else tuple(x.shape) for x in inputs)
        key = (op.index, shapes)
        try:
            if key not in self._prepared:
                ctx = OpContext(model=self.model, subgraph=sg, op=op, emulate=self.emulate,
                                input_shapes=shapes)
                kernel = lookup(op, key_dtype(op, sg), ctx.describe_types(), self.emulate)
                self._prepared[key] = (kernel, kernel.prepare(ctx))
            kernel, data = self._prepared[key]
            # copies: stateful kernels may update their inputs in place
            result = kernel.eval(data, *[None if x is None else np.array(x) for x in inputs])
        except Exception:  # noqa: BLE001 - without a local run the global difference is used
            return None
        outs = result if isinstance(result, (tuple, list)) else (result,)
        return [np.asarray(o) for o in outs]


# ------------------------------------------------------------------------------------------------
# The check
# ------------------------------------------------------------------------------------------------
def _classify(d: _Diff, basis: _Diff | None, inputs_state: str, kd: KnownDivergence | None,
              numeric: str, upstream_known: bool) -> str:
    if d.exact:
        return "exact"
    if numeric == "float" and d.mismatch is None and d.within_tol:
        return "tolerance"
    if basis is None:  # the inputs differ and the operator could not be re-run on them
        return "propagated"
    if basis.mismatch is None and (basis.exact or numeric == "float" and basis.within_tol):
        return "propagated"
    if kd is not None and basis.mismatch is None and numeric != "float":
        if kd.max_lsb is None:
            return "known"
        if basis.max_abs <= kd.max_lsb and basis.share <= ROUNDING_MAX_SHARE:
            return "rounding"
    if inputs_state == "unknown" and upstream_known:
        return "propagated"  # outputs only: an earlier known divergence may carry through
    return "real"


class _RuntimeCheck:
    """Compares tflite_ref with one native runtime, sample by sample."""

    def __init__(self, runtime: str, emulated: str, model: Model, targets: list[_Target],
                 local: _LocalRunner, rtol: float) -> None:
        self.runtime = runtime
        self.emulated = emulated
        self.model = model
        self.sg = model.subgraphs[0]
        self.targets = targets
        self.local = local
        self.rtol = rtol
        self.samples = 0
        self.exposes_all = False
        self.delegated: frozenset[int] = frozenset()
        self.notes: list[str] = []
        self._upstream_known = self._known_upstream()

    def set_meta(self, meta: native.NativeMeta | None) -> None:
        if meta is not None:
            self.exposes_all = meta.exposes_all
            self.delegated = meta.delegated
            self.notes.extend(meta.notes)

    def _known_for(self, op: Operator) -> KnownDivergence | None:
        out = self.sg.tensors[op.outputs[0]] if op.outputs and op.outputs[0] >= 0 else None
        return known_divergence(self.emulated, self.runtime, op.opcode,
                                out.type_name if out is not None else "")

    def _known_upstream(self) -> set[int]:
        """Tensors downstream of an operator with a known divergence (for outputs-only runs)."""
        marked: set[int] = set()
        for op in self.sg.operators:
            if self._known_for(op) is not None or any(i in marked for i in op.inputs if i >= 0):
                marked.update(i for i in op.outputs if i >= 0)
        return marked

    def _explain(self, tgt: _Target, cls: str, kd: KnownDivergence | None,
                 rerun: bool) -> str | None:
        if cls in ("rounding", "known") and kd is not None:
            text = kd.reason
            if self.runtime == "litert" and kd.undelegated and self.exposes_all \
                    and tgt.index not in self.delegated:
                text = kd.undelegated
            return f"{tgt.op.opcode if tgt.op else ''}: {text}"
        if cls == "propagated" and rerun:
            return ("re-run on the runtime's own inputs, the operator agrees with it: the "
                    "difference comes from an earlier tensor")
        if cls == "propagated":
            return ("the operator's inputs already differ (it was not re-run on the runtime's: "
                    "a stateful operator, or intermediates not exposed)")
        if cls == "real":
            other = "" if self.runtime == self.emulated else (
                f" between {self.emulated} and {self.runtime}")
            what = f"{tgt.op.opcode}/{self.sg.tensors[tgt.op.outputs[0]].type_name}" \
                if tgt.op is not None and tgt.op.outputs else "this tensor"
            return f"no known arithmetic difference{other} explains {what}"
        return None

    def add_sample(self, k: int, ours: Mapping[int, np.ndarray],
                   plain: native.NativeSample | None, kept: native.NativeSample | None) -> None:
        """Compare sample ``k``: graph outputs from the ``plain`` run (authoritative), everything
        else from the preserve-all run ``kept``; either may be missing when its run failed."""
        theirs = plain if plain is not None else kept
        if theirs is None:
            return
        self.samples += 1
        preserved = kept.tensors if kept is not None else {}
        if plain is None:
            note = "the plain run failed: outputs are compared with the preserve-all run's"
            if note not in self.notes:
                self.notes.append(note)

        def value(ti: int) -> np.ndarray | None:
            if ti in ours and ti in self.sg.inputs:
                return ours[ti]  # the same array was fed to both
            if ti in preserved:
                return preserved[ti]
            for slot, oi in enumerate(self.sg.outputs):
                if oi == ti and slot < len(theirs.outputs):
                    return theirs.outputs[slot]
            return None

        for tgt in self.targets:
            mine = ours.get(tgt.index)
            other: np.ndarray | None
            if tgt.output_slot is not None and tgt.output_slot < len(theirs.outputs):
                other = theirs.outputs[tgt.output_slot]
                again = preserved.get(tgt.index) if plain is not None else None
                if again is not None and not compare_arrays(again, other, 0.0).exact:
                    note = (f"output tensor {tgt.index} differs between the plain and the "
                            f"preserve-all run; outputs are compared with the plain run")
                    if note not in self.notes:
                        self.notes.append(note)
            else:
                other = preserved.get(tgt.index)
            if mine is None or other is None:
                continue
            d = compare_arrays(mine, other, self.rtol)
            tgt.samples += 1
            tgt.stats.add(d)
            if d.exact or tgt.numeric == "float" and d.mismatch is None and d.within_tol:
                if tgt.cls == "exact" and not d.exact:
                    tgt.cls = "tolerance"
                continue
            cls, local, agreement = self._judge(tgt, d, ours, value)
            if local is not None:
                if tgt.local is None:
                    tgt.local = _Stats()
                tgt.local.add(local)
            if CLASSES.index(cls) > CLASSES.index(tgt.cls):
                tgt.cls = cls
                tgt.explanation = self._explain(tgt, cls, self._known_for(tgt.op)
                                                if tgt.op is not None else None,
                                                local is not None)
            if cls in DIVERGENT and tgt.first_sample is None:
                tgt.first_sample = k
                tgt.inputs = agreement
                if d.mismatch:
                    tgt.note = d.mismatch

    def _judge(self, tgt: _Target, d: _Diff, ours: Mapping[int, np.ndarray],
               value: Callable[[int], np.ndarray | None]
               ) -> tuple[str, _Diff | None, tuple[InputAgreement, ...]]:
        op = tgt.op
        kd = self._known_for(op) if op is not None else None
        if op is None:
            return _classify(d, d, "unknown", kd, tgt.numeric, False), None, ()
        agreement: list[InputAgreement] = []
        theirs_in: list[np.ndarray | None] = []
        state = "agree"
        for slot, ti in enumerate(op.inputs):
            if ti < 0:
                agreement.append(InputAgreement(slot, -1, "", "absent"))
                theirs_in.append(None)
                continue
            t = self.sg.tensors[ti]
            if t.data is not None and not t.is_variable:
                agreement.append(InputAgreement(slot, ti, t.name, "constant"))
                theirs_in.append(t.data)
                continue
            if t.is_variable:  # seen only after the operator updated it: not its input value
                agreement.append(InputAgreement(slot, ti, t.name, "state"))
                theirs_in.append(None)
                continue
            other = value(ti)
            mine = ours.get(ti)
            theirs_in.append(other)
            if other is None or mine is None:
                agreement.append(InputAgreement(slot, ti, t.name, "not exposed"))
                state = "unknown" if state == "agree" else state
                continue
            di = compare_arrays(mine, other, self.rtol)
            if di.exact:
                agreement.append(InputAgreement(slot, ti, t.name, "exact"))
            else:
                close = (t.dtype is not None and _numeric(t.dtype) == "float"
                         and di.mismatch is None and di.within_tol)
                agreement.append(InputAgreement(slot, ti, t.name,
                                                "tolerance" if close else "differs", di.max_abs))
                state = "differ"
        upstream = tgt.index in self._upstream_known
        if state == "agree":
            return _classify(d, d, state, kd, tgt.numeric, upstream), None, tuple(agreement)
        if state == "unknown":
            return _classify(d, d, state, kd, tgt.numeric, upstream), None, tuple(agreement)
        # The inputs differ: re-run the operator on the runtime's inputs to see its own share.
        stateful = any(ti >= 0 and self.sg.tensors[ti].is_variable for ti in op.inputs)
        local: _Diff | None = None
        other = value(tgt.index)
        if not stateful and other is not None:  # state after invoke is not the op's input
            outs = self.local.run(op, theirs_in)
            if outs is not None and tgt.index in op.outputs:
                local = compare_arrays(outs[op.outputs.index(tgt.index)], other, self.rtol)
        return _classify(d, local, state, kd, tgt.numeric, upstream), local, tuple(agreement)

    def report(self, policy: str, title: str, version: str | None,
               failures: Sequence[tuple[str, native.NativeFailure]]) -> RuntimeReport:
        tensors = tuple(
            TensorDiff(
                index=t.index, name=t.tensor.name, dtype=t.tensor.type_name,
                shape=tuple(int(s) for s in t.tensor.shape), numeric=t.numeric,
                operator=t.op.index if t.op is not None else None,
                opcode=t.op.opcode if t.op is not None else None, role=t.role,
                samples=t.samples, diff=t.stats.freeze(), cls=t.cls,
                local=t.local.freeze() if t.local is not None else None,
                explanation=t.explanation, first_sample=t.first_sample, inputs=t.inputs,
                note=t.note)
            for t in self.targets if t.samples)
        first = next((t for t in tensors if t.divergent), None)
        counts = {c: sum(1 for t in tensors if t.cls == c) for c in CLASSES}
        emulated = self.runtime == self.emulated
        runs = {"plain": "plain run", "preserve-all": "preserve-all run", "both": "both runs"}
        reasons = [f"{self.runtime}: {f.kind} during {f.stage} ({runs[run]})"
                   for run, f in failures]
        bad: tuple[str, ...] = ()
        if policy == "any" or policy == "emulated" and emulated:
            bad = tuple(DIVERGENT)
        elif policy in ("real", "emulated"):
            bad = ("real",)
        failing = [t for t in tensors if t.cls in bad]
        if failing:
            what = "differ" if bad != ("real",) else "diverge without a known cause"
            reasons.append(f"{len(failing)} tensor(s) {what}; first: tensor {failing[0].index} "
                           f"{failing[0].name!r} ({failing[0].opcode}, {failing[0].cls})")
        exposes = ("nothing" if self.samples == 0 else
                   "all tensors" if self.exposes_all else "outputs")
        return RuntimeReport(
            runtime=self.runtime, title=title, version=version, emulated=emulated,
            exposes=exposes, samples=self.samples, tensors=tensors, first_divergence=first,
            counts=counts, passed=not reasons, reasons=tuple(reasons),
            findings=tuple(RuntimeFinding(run, f.kind, f.stage, f.sample, f.message, f.signal,
                                          f.stderr_tail) for run, f in failures),
            notes=tuple(self.notes))


def _parse_against(against: str | Sequence[str] | None, emulate: str) -> list[str]:
    if against is None:
        names = [EMULATED_RUNTIME[emulate]]
    elif isinstance(against, str):
        names = [a.strip() for a in against.split(",") if a.strip()]
    else:
        names = [str(a) for a in against]
    if not names:
        raise UsageError("give at least one runtime to check against: "
                         + ", ".join(native.RUNTIMES))
    for name in names:
        if name not in native.RUNTIMES:
            raise UsageError(f"unknown runtime {name!r}; choose from {', '.join(native.RUNTIMES)}")
    return list(dict.fromkeys(names))


def check(model: str | os.PathLike[str] | bytes | Model,
          against: str | Sequence[str] | None = None,
          inputs: InputSample | Sequence[InputSample] | None = None, *,
          emulate: str = "tflite", samples: int = 1, seed: int | None = 0,
          policy: str = "emulated", rtol: float = DEFAULT_RTOL,
          intermediates: bool = True, timeout: float = native.DEFAULT_TIMEOUT,
          memory_limit: int | None = native.DEFAULT_MEMORY_LIMIT,
          on_progress: Progress | None = None) -> CheckReport:
    """Run ``model`` in tflite_ref (``emulate``) and in each runtime of ``against`` on the same
    inputs, and compare every tensor both sides expose.

    ``against``: runtime names (``litert-ref``, ``litert``, ``tflm``) or one comma-separated
    string; by default the runtime ``emulate`` reproduces. ``inputs``: see :func:`input_samples`.
    ``intermediates=False`` compares graph outputs only. ``on_progress(stage, done, total)`` is
    called after each sample. A runtime that fails is a finding in the report; an operator
    tflite_ref cannot run raises :class:`~tflite_ref.errors.UnsupportedOpError`, a runtime that is
    not installed :class:`~tflite_ref.errors.UsageError`.
    """
    if emulate not in EMULATED_RUNTIME:
        raise UsageError(f"emulate must be one of {', '.join(EMULATED_RUNTIME)}, not {emulate!r}")
    if policy not in POLICIES:
        raise UsageError(f"unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
    if samples < 1:
        raise UsageError(f"samples must be at least 1, not {samples}")
    runtimes = _parse_against(against, emulate)
    for name in runtimes:
        native.require_runtime(name)
    if not isinstance(model, Model):
        model = load(model if isinstance(model, bytes) else os.fspath(model))
    sg = model.subgraphs[0]
    feeds = input_samples(model, inputs, samples, seed)
    # Prepare our side first: an operator tflite_ref cannot run is exit 2 before any child starts.
    ours = Interpreter(model=model, emulate=emulate)
    for ti, x in zip(sg.inputs, feeds[0]):
        if tuple(x.shape) != sg.tensors[ti].shape:
            ours.resize_tensor_input(ti, x.shape)
    ours.allocate_tensors()

    targets_by_runtime = {name: _targets(sg) for name in runtimes}
    fetch: list[int] = []
    if intermediates:
        wanted = {t.index for t in targets_by_runtime[runtimes[0]]}
        for op in sg.operators:  # and every computed input, for the local re-runs
            wanted.update(i for i in op.inputs if i >= 0 and i not in sg.inputs
                          and (sg.tensors[i].data is None or sg.tensors[i].is_variable))
        scratch = {i for op in sg.operators for i in op.intermediates}
        fetch = sorted(i for i in wanted if i not in scratch and 0 <= i < len(sg.tensors))
    source = model.path if model.path else model.content
    runs: list[native.NativeRun] = []
    try:
        plain: dict[str, native.NativeRun] = {}
        kept: dict[str, native.NativeRun] = {}
        for name in runtimes:  # the children work while tflite_ref runs
            plain[name] = native.start(name, source, feeds, input_indices=sg.inputs,
                                       num_outputs=len(sg.outputs), timeout=timeout,
                                       memory_limit=memory_limit)
            runs.append(plain[name])
            if fetch:
                kept[name] = native.start(name, source, feeds, input_indices=sg.inputs,
                                          num_outputs=len(sg.outputs), preserve=True,
                                          fetch=fetch, timeout=timeout, memory_limit=memory_limit)
                runs.append(kept[name])
        local = _LocalRunner(model, emulate)
        checks = {name: _RuntimeCheck(name, EMULATED_RUNTIME[emulate], model,
                                      targets_by_runtime[name], local, rtol)
                  for name in runtimes}
        for k, feed in enumerate(feeds):
            mine = _run_ours(ours, sg, feed, k)
            for name, rc in checks.items():
                if k == 0 and name in kept:  # asked only now: the child allocated meanwhile
                    rc.set_meta(kept[name].meta())
                rc.add_sample(k, mine, _sample(plain[name], k),
                              _sample(kept[name], k) if name in kept else None)
            if on_progress is not None:
                on_progress("sample", k + 1, len(feeds))
        reports = []
        for name in runtimes:
            failures = [(label, run.failure) for label, run in
                        (("plain", plain[name]), ("preserve-all", kept.get(name)))
                        if run is not None and run.failure is not None]
            if len(failures) == 2 and _same_failure(failures[0][1], failures[1][1]):
                failures = [("both", failures[0][1])]
            reports.append(checks[name].report(policy, native.RUNTIMES[name].title,
                                               native.runtime_version(name), failures))
    finally:
        for run in runs:
            run.close()
    return CheckReport(model=model.path or "<bytes>", emulate=emulate, policy=policy, rtol=rtol,
                       samples=len(feeds), seed=seed if inputs is None else None,
                       runtimes=tuple(reports), operators=len(sg.operators))


def _same_failure(a: native.NativeFailure, b: native.NativeFailure) -> bool:
    return (a.kind, a.stage, a.message) == (b.kind, b.stage, b.message)


def _sample(run: native.NativeRun, k: int) -> native.NativeSample | None:
    return run.sample(k) if run.failure is None else None


def _run_ours(it: Interpreter, sg: Subgraph, feed: Sequence[np.ndarray], k: int
              ) -> dict[int, np.ndarray]:
    if k:
        it.reset_all_variables()  # every sample starts from the initial state
    for ti, x in zip(sg.inputs, feed):
        it.set_tensor(ti, x)
    it.invoke()
    values: dict[int, np.ndarray] = {}
    for t in sg.tensors:
        if t.data is not None and not t.is_variable:
            continue
        try:
            values[t.index] = it.get_tensor(t.index)
        except UsageError:
            continue  # nothing wrote it (an unused optional slot, an operator intermediate)
    return values


__all__ = [
    "CLASSES",
    "DEFAULT_RTOL",
    "EMULATED_RUNTIME",
    "HIST_CLIP",
    "KNOWN_DIVERGENCES",
    "POLICIES",
    "CheckReport",
    "DiffStats",
    "InputAgreement",
    "KnownDivergence",
    "RuntimeFinding",
    "RuntimeReport",
    "TensorDiff",
    "check",
    "compare_arrays",
    "input_samples",
    "known_divergence",
    "split_samples",
]
