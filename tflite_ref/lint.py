"""Lint a converted model: things that make runtimes disagree, refuse it or waste space.

``lint(model) -> LintReport``; every :class:`Finding` names the tensor, operator or buffer and
says what to do.  The rules (:data:`RULES`) are static -- nothing runs -- and each one cites the
runtime code it is about:

* ``quantized-dimension``: a ``quantized_dimension`` outside the tensor's rank.  LiteRT's
  ``InterpreterBuilder::ParseQuantization`` refuses the model ("quantized_dimension must be in
  range"), even for a single scale; TFLite Micro never reads the field and runs it.
* ``float-island``: DEQUANTIZE → float operators → QUANTIZE inside an integer model.
* ``mcu-dtype``: INT64 / BOOL / FLOAT64 / STRING / COMPLEX tensors, which few TFLite Micro
  kernels take (an MCU target).
* ``dynamic-shape``: ``shape_signature`` with -1 (or unranked tensors): TFLite Micro plans the
  arena once, with the stored shapes.
* ``unused-tensor``, ``unused-buffer``, ``duplicate-buffer``: dead weight in the file.
* ``scale``: zero or denormal scales, per-channel scales spanning more than 2^16.
* ``bias-scale``: a bias whose scale is not ``s_in·s_w`` (LiteRT's per-tensor check
  ``GetQuantizedConvolutionMultipler`` refuses more than 2 % of an output step; per-channel
  kernels silently rescale the bias).
* ``softmax-logistic``: SOFTMAX / LOGISTIC / TANH quantization that aborts or is refused:
  ``beta·s_in·2^26 <= 1`` fails ``QuantizeMultiplierGreaterThanOne``'s CHECK (both runtimes abort
  in Prepare); output scales the kernels insist on (TFLM: exactly 1/256; LiteRT: within 0.1 %).
* ``missing-signature``: no SignatureDef (signature runners and tooling need one).

The model must load (:func:`tflite_ref.load` refuses what no runtime accepts); lint is about what
one runtime accepts and another does not, or what works but should not be shipped.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_ref.model.model import Model, Operator, Subgraph, Tensor

SEVERITIES = ("error", "warning", "info")

RULES: dict[str, tuple[str, str]] = {
    "quantized-dimension": ("error", "quantized_dimension outside the tensor's rank"),
    "float-island": ("warning", "DEQUANTIZE -> float ops -> QUANTIZE inside an integer model"),
    "mcu-dtype": ("warning", "tensor types TFLite Micro kernels rarely take"),
    "dynamic-shape": ("warning", "dynamic (-1) or unknown tensor shapes"),
    "unused-tensor": ("info", "tensors no operator or subgraph uses"),
    "unused-buffer": ("info", "buffers with data that nothing references"),
    "duplicate-buffer": ("info", "constant data stored more than once"),
    "scale": ("warning", "zero, denormal or widely spread quantization scales"),
    "bias-scale": ("warning", "bias scale differs from input scale x filter scale"),
    "softmax-logistic": ("error", "SOFTMAX/LOGISTIC/TANH quantization kernels abort on or refuse"),
    "missing-signature": ("info", "no SignatureDef"),
}

_MCU_TYPES = ("INT64", "BOOL", "FLOAT64", "STRING", "COMPLEX64", "COMPLEX128", "UINT64",
              "RESOURCE", "VARIANT")
_INT_TYPES = ("INT8", "UINT8", "INT16", "INT4")
_FLOAT_TYPES = ("FLOAT32", "FLOAT16")
_DENORMAL = float(np.finfo(np.float32).tiny)
MAX_SCALE_SPREAD = 2.0**16
MAX_LISTED = 6


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: str  # "error", "warning", "info"
    message: str  # what is wrong and where
    fix: str  # what to do
    subgraph: int | None = None
    operator: int | None = None
    tensor: int | None = None
    buffer: int | None = None

    @property
    def where(self) -> str:
        parts = []
        if self.subgraph is not None:
            parts.append(f"subgraph {self.subgraph}")
        if self.operator is not None:
            parts.append(f"operator {self.operator}")
        if self.tensor is not None:
            parts.append(f"tensor {self.tensor}")
        if self.buffer is not None:
            parts.append(f"buffer {self.buffer}")
        return ", ".join(parts) or "model"


@dataclass(frozen=True)
class LintReport:
    model: str
    findings: tuple[Finding, ...]
    rules: tuple[str, ...] = field(default=tuple(RULES))

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def rule(self, name: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.rule == name)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "rules": list(self.rules),
                "counts": {s: self.count(s) for s in SEVERITIES},
                "findings": [{"rule": f.rule, "severity": f.severity, "where": f.where,
                              "subgraph": f.subgraph, "operator": f.operator,
                              "tensor": f.tensor, "buffer": f.buffer, "message": f.message,
                              "fix": f.fix} for f in self.findings]}

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(f"<tr><td>{f.severity}</td><td>{f.rule}</td><td>{escape(f.where)}</td>"
                       f"<td>{escape(f.message)}<br><i>→ {escape(f.fix)}</i></td></tr>"
                       for f in self.findings)
        return (f"<table><tr><th>severity</th><th>rule</th><th>where</th><th>finding</th></tr>"
                f"{rows or '<tr><td colspan=4>no findings</td></tr>'}</table>")

    def __rich__(self) -> Any:
        """A table for ``inspect --lint`` and the report (rich's rendering protocol)."""
        from rich import box
        from rich.markup import escape
        from rich.table import Table

        colour = {"error": "bold red", "warning": "yellow", "info": "cyan"}
        t = Table(title=f"lint: {self.count('error')} errors, {self.count('warning')} warnings,"
                        f" {self.count('info')} notes", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
        for col in ("severity", "rule", "where", "finding / what to do"):
            t.add_column(col, overflow="fold", no_wrap=col == "severity")
        for f in self.findings:
            t.add_row(f"[{colour[f.severity]}]{f.severity}[/]", f.rule, escape(f.where),
                      f"{escape(f.message)}\n[dim]→ {escape(f.fix)}[/]")
        if not self.findings:
            t.add_row("", "", "", "no findings")
        return t


# ------------------------------------------------------------------------------------------------
# Rules
# ------------------------------------------------------------------------------------------------
def _finding(rule: str, message: str, fix: str, **where: Any) -> Finding:
    return Finding(rule, RULES[rule][0], message, fix, **where)


def _tname(t: Tensor) -> str:
    name = t.name.split(";", 1)[0]
    return f"tensor {t.index} {name!r}" if name else f"tensor {t.index}"


def _quantized_dimension(model: Model) -> list[Finding]:
    out = []
    for sg in model.subgraphs:
        bad = [t for t in sg.tensors if t.quantization is not None
               and (t.quantization.scale.size or t.quantization.zero_point.size)
               and len(t.shape) and not 0 <= t.quantization.quantized_dimension < len(t.shape)]
        if not bad:
            continue
        t = bad[0]
        q = t.quantization
        assert q is not None
        more = f" and {len(bad) - 1} more tensors" if len(bad) > 1 else ""
        out.append(_finding(
            "quantized-dimension",
            f"{_tname(t)} ({t.type_name} {list(t.shape)}, {q.scale.size} scale"
            f"{'s' if q.scale.size != 1 else ''}){more} ha{'ve' if more else 's'} "
            f"quantized_dimension {q.quantized_dimension}, outside the tensor's rank: LiteRT "
            "refuses the model (InterpreterBuilder::ParseQuantization: \"quantized_dimension "
            "must be in range\"), even for a single scale; TFLite Micro ignores the field and "
            "runs it",
            "set quantized_dimension to the channel axis (0 for a bias or a per-tensor scale) "
            "when writing the model",
            subgraph=sg.index, tensor=t.index))
    return out


def _consumers(sg: Subgraph) -> dict[int, list[Operator]]:
    users: dict[int, list[Operator]] = defaultdict(list)
    for op in sg.operators:
        for ti in op.inputs:
            if ti >= 0:
                users[ti].append(op)
    return users


def _integer_model(model: Model) -> bool:
    """Some operator computes on int8/uint8/int16 activations (not only conversions)."""
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.opcode in ("QUANTIZE", "DEQUANTIZE", "CAST") or not op.outputs:
                continue
            t = sg.tensors[op.outputs[0]]
            if t.type_name in _INT_TYPES and t.quantization is not None \
                    and t.quantization.is_quantized:
                return True
    return False


def _float_islands(model: Model) -> list[Finding]:
    if not _integer_model(model):
        return []
    out = []
    for sg in model.subgraphs:
        users = _consumers(sg)
        for op in sg.operators:
            if op.opcode != "DEQUANTIZE" or not op.inputs or op.inputs[0] < 0:
                continue
            src = sg.tensors[op.inputs[0]]
            if src.is_constant or src.type_name not in _INT_TYPES:
                continue  # dequantized weights (fp16/int8 storage) are not an island
            island: list[Operator] = []
            ends: list[Operator] = []
            seen: set[int] = set()
            frontier = list(op.outputs)
            while frontier:
                ti = frontier.pop()
                for user in users.get(ti, []):
                    if user.index in seen:
                        continue
                    seen.add(user.index)
                    if user.opcode == "QUANTIZE":
                        ends.append(user)
                        continue
                    outs = [sg.tensors[o] for o in user.outputs]
                    if outs and all(o.type_name in _FLOAT_TYPES for o in outs):
                        island.append(user)
                        frontier.extend(user.outputs)
            if ends and island:
                inner = ", ".join(f"{o.index} {o.opcode}" for o in
                                  sorted(island, key=lambda o: o.index)[:MAX_LISTED])
                more = f" and {len(island) - MAX_LISTED} more" if len(island) > MAX_LISTED else ""
                back = ", ".join(str(e.index) for e in ends)
                out.append(_finding(
                    "float-island",
                    f"operator {op.index} (DEQUANTIZE) leaves the integer graph and operator"
                    f"{'s' if len(ends) > 1 else ''} {back} (QUANTIZE) return to it: in between, "
                    f"{inner}{more} run in float inside an integer model (slow on an MCU, "
                    "another rounding path, and a float kernel the target must provide)",
                    "find why the converter kept them in float (an op without an int8 kernel, "
                    "or a tensor the representative dataset never reached) and quantize them, "
                    "or accept the float cost knowingly",
                    subgraph=sg.index, operator=op.index))
    return out


def _mcu_dtypes(model: Model) -> list[Finding]:
    out = []
    for sg in model.subgraphs:
        by_type: dict[str, list[Tensor]] = defaultdict(list)
        for t in sg.tensors:
            if t.type_name in _MCU_TYPES:
                by_type[t.type_name].append(t)
        for type_name, ts in by_type.items():
            names = ", ".join(_tname(t) for t in ts[:MAX_LISTED])
            more = f" and {len(ts) - MAX_LISTED} more" if len(ts) > MAX_LISTED else ""
            out.append(_finding(
                "mcu-dtype",
                f"{len(ts)} {type_name} tensor{'s' if len(ts) > 1 else ''} ({names}{more}): "
                f"few TFLite Micro kernels take {type_name}, and 64-bit types are slow on a "
                "32-bit MCU",
                "if the model targets a microcontroller, keep indices and shapes INT32 and "
                "masks INT8 (run `tflite-ref micro` for the operators that would fail)",
                subgraph=sg.index, tensor=ts[0].index))
    return out


def _dynamic_shapes(model: Model) -> list[Finding]:
    """A -1 in ``shape_signature`` marks a resizable dimension (the stored ``shape`` holds the
    size used until a resize; TFLite Micro only ever uses that).  A -1 in the stored shape
    itself means the size is known only at run time.  ``has_rank`` is not used: converters
    before 2.3 never wrote it."""
    out = []
    for sg in model.subgraphs:
        unknown = [t for t in sg.tensors if any(d < 0 for d in t.shape)]
        resizable = [t for t in sg.tensors if t.shape_signature is not None
                     and any(d < 0 for d in t.shape_signature) and t not in unknown]
        for ts, rule_sev, what, fix in (
                (unknown, "warning", ("a dimension unknown until run time (-1 in the stored "
                 "shape): LiteRT sizes it during Invoke, TFLite Micro cannot plan it"),
                 ("give the model concrete shapes when converting (fixed input sizes, "
                 "constant shape operands)")),
                (resizable, "info", ("a resizable dimension (-1 in shape_signature, usually the "
                 "batch): LiteRT can resize it; TFLite Micro and fixed-size accelerators use "
                 "the stored size"), ("nothing to do unless a runtime must resize it; convert "
                 "with a concrete batch size to make the file say what it runs with"))):
            if not ts:
                continue
            io = [t for t in ts if t.index in sg.inputs]
            listed = io or ts
            names = ", ".join(f"{_tname(t)} {list(t.shape_signature or t.shape)}"
                              for t in listed[:MAX_LISTED])
            f = _finding("dynamic-shape",
                         f"{len(ts)} tensor{'s' if len(ts) > 1 else ''} with {what} "
                         f"({'inputs ' if io else ''}{names}"
                         f"{', …' if len(listed) > MAX_LISTED else ''})", fix,
                         subgraph=sg.index, tensor=listed[0].index)
            out.append(Finding(f.rule, rule_sev, f.message, f.fix, f.subgraph, None, f.tensor))
    return out


def _unused(model: Model) -> list[Finding]:
    out = []
    referenced_buffers: set[int] = set()
    for sg in model.subgraphs:
        used: set[int] = set(sg.inputs) | set(sg.outputs)
        for op in sg.operators:
            used.update(i for i in op.inputs if i >= 0)
            used.update(op.outputs)
            used.update(i for i in op.intermediates if i >= 0)
        unused = [t for t in sg.tensors if t.index not in used]
        for t in sg.tensors:
            referenced_buffers.add(t.buffer)
        if unused:
            nbytes = sum(t.buffer_bytes for t in unused)
            names = ", ".join(_tname(t) for t in unused[:MAX_LISTED])
            more = f" and {len(unused) - MAX_LISTED} more" if len(unused) > MAX_LISTED else ""
            out.append(_finding(
                "unused-tensor",
                f"{len(unused)} tensor{'s' if len(unused) > 1 else ''} no operator reads or "
                f"writes and that are not subgraph inputs or outputs ({names}{more})"
                + (f", holding {nbytes} bytes of constant data" if nbytes else ""),
                "strip them (re-convert, or rewrite the file without them)",
                subgraph=sg.index, tensor=unused[0].index))
    referenced_buffers.update(m.buffer for m in model.metadata)
    dead = [b for b in model.buffers[1:] if b.size and b.index not in referenced_buffers]
    if dead:
        out.append(_finding(
            "unused-buffer",
            f"{len(dead)} buffer{'s' if len(dead) > 1 else ''} with data no tensor or metadata "
            f"entry references ({', '.join(str(b.index) for b in dead[:MAX_LISTED])}"
            f"{', …' if len(dead) > MAX_LISTED else ''}): {sum(b.size for b in dead)} bytes "
            "of the file are never read",
            "rewrite the file without them",
            buffer=dead[0].index))
    return out


def _duplicate_buffers(model: Model) -> list[Finding]:
    groups: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    for b in model.buffers[1:]:
        if b.size >= 16 and b.data is not None:
            raw = bytes(b.data)
            groups[(len(raw), raw)].append(b.index)
    out = []
    for (size, _raw), idx in groups.items():
        if len(idx) > 1:
            out.append(_finding(
                "duplicate-buffer",
                f"buffers {', '.join(map(str, idx[:MAX_LISTED]))} hold the same {size} bytes: "
                f"{size * (len(idx) - 1)} bytes stored more than once",
                "point the tensors at one buffer (the converter shares identical constants "
                "only within a subgraph)", buffer=idx[0]))
    return out


def _scales(model: Model) -> list[Finding]:
    out = []
    for sg in model.subgraphs:
        spread: list[tuple[float, Tensor]] = []
        for t in sg.tensors:
            q = t.quantization
            if q is None or not q.scale.size or t.type_name in _FLOAT_TYPES:
                continue
            s = q.scale.astype(np.float64)
            if np.any(s == 0):
                out.append(Finding(
                    "scale", "error", f"{_tname(t)} has a zero scale (scale["
                    f"{int(np.argmax(s == 0))}]): quantized kernels divide by it or refuse "
                    "the tensor", "re-quantize with data that reaches this tensor (even a "
                    "constant-zero channel needs a positive scale)", sg.index, None, t.index))
                continue
            small = (s > 0) & (s < _DENORMAL)
            if np.any(small):
                out.append(_finding(
                    "scale", f"{_tname(t)} has a denormal scale {float(s[small][0]):.3g}: "
                    "multipliers derived from it flush to 0 (QuantizeMultiplier) and float "
                    "arithmetic on it loses precision",
                    "check the calibration range of this tensor", subgraph=sg.index,
                    tensor=t.index))
            if s.size > 1 and s.min() > 0 and s.max() / s.min() > MAX_SCALE_SPREAD:
                spread.append((float(s.max() / s.min()), t))
        if spread:
            spread.sort(key=lambda p: -p[0])
            ratio, t = spread[0]
            q = t.quantization
            assert q is not None
            others = (f"; {len(spread) - 1} more tensors spread over 2^16 "
                      f"({', '.join(str(u.index) for _, u in spread[1:MAX_LISTED])}"
                      f"{', …' if len(spread) > MAX_LISTED else ''})" if len(spread) > 1 else "")
            out.append(_finding(
                "scale",
                f"{_tname(t)}: its {q.scale.size} per-channel scales span {ratio:.3g}x "
                f"({float(q.scale.min()):.3g} .. {float(q.scale.max()):.3g}){others}. Channels "
                "at the small end are nearly dead, or their range collapsed in calibration; "
                "their multipliers sit far from the others'",
                "look at those channels (prune dead filters; check the batch-norm folding and "
                "the representative data)", subgraph=sg.index, tensor=t.index))
    return out


def _bias_scales(model: Model) -> list[Finding]:
    out = []
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") \
                    or len(op.inputs) < 3 or op.inputs[2] < 0:
                continue
            x, w, b = (sg.tensors[i] for i in op.inputs[:3])
            y = sg.tensors[op.outputs[0]]
            qx, qw, qb, qy = (t.quantization for t in (x, w, b, y))
            if qx is None or qw is None or qb is None or qy is None \
                    or not (qx.scale.size and qw.scale.size and qb.scale.size and qy.scale.size) \
                    or x.type_name not in _INT_TYPES:
                continue
            sw = qw.scale.astype(np.float64)
            sb = qb.scale.astype(np.float64)
            if sb.size not in (1, sw.size) and sw.size != 1:
                continue
            want = float(qx.scale[0]) * sw
            got = np.broadcast_to(sb, want.shape) if sb.size != want.size else sb
            rel = np.abs(got - want) / np.where(want > 0, want, 1.0)
            step = np.abs(got - want) / float(qy.scale[0])
            k = int(np.argmax(rel))
            per_tensor = sw.size == 1 and sb.size == 1
            refused = per_tensor and float(step.max()) > 0.02
            if float(rel[k]) > 1e-3 or refused:
                what = ("LiteRT refuses it in Prepare (GetQuantizedConvolutionMultipler: the bias "
                        "scale must be within 2 % of an output step of s_in·s_w)" if refused else
                        "the kernel adds the bias integers as if their scale were s_in·s_w, so "
                        "the bias is silently rescaled")
                out.append(_finding(
                    "bias-scale",
                    f"operator {op.index} ({op.opcode}): bias {_tname(b)} scale "
                    f"{float(got[k]):.6g} differs from s_in·s_w = {float(want[k]):.6g} by "
                    f"{100 * float(rel[k]):.2g} %" + (f" (channel {k})" if want.size > 1 else "")
                    + f": {what}",
                    "re-quantize the bias as round(b / (s_in·s_w)) with scale s_in·s_w",
                    subgraph=sg.index, operator=op.index, tensor=b.index))
    return out


def _softmax_logistic(model: Model) -> list[Finding]:
    from tflite_ref.quant.multipliers import logistic_tanh_int8_input_scaling

    out = []
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.opcode not in ("SOFTMAX", "LOGISTIC", "TANH") or not op.inputs:
                continue
            x, y = sg.tensors[op.inputs[0]], sg.tensors[op.outputs[0]]
            qx, qy = x.quantization, y.quantization
            if x.type_name not in ("INT8", "UINT8") or qx is None or not qx.scale.size \
                    or qy is None or not qy.scale.size:
                continue
            s_in, s_out, z_out = float(qx.scale[0]), float(qy.scale[0]), int(qy.zero_point[0])
            where = {"subgraph": sg.index, "operator": op.index, "tensor": x.index}
            if op.opcode == "SOFTMAX":
                beta = float(np.float32(op.options.get("beta", 1.0)))
                if not beta * s_in * float(1 << 26) > 1.0:
                    out.append(_finding(
                        "softmax-logistic",
                        f"operator {op.index} (SOFTMAX): beta {beta:g} · input scale {s_in:.3g}"
                        f" · 2^26 = {beta * s_in * 2**26:.3g} <= 1, so PreprocessSoftmaxScaling's"
                        " QuantizeMultiplierGreaterThanOne fails its CHECK: LiteRT and TFLite "
                        "Micro abort (SIGABRT) while preparing the model",
                        "give the SOFTMAX input a larger scale (its real range is tiny: the "
                        "calibration data may not reach it)", **where))
                if y.type_name == "INT8" and (np.float32(s_out) != np.float32(1 / 256)
                                              or z_out != -128):
                    near = abs(s_out - 1 / 256) <= 0.001 / 256 and z_out == -128
                    out.append(_finding(
                        "softmax-logistic",
                        f"operator {op.index} (SOFTMAX): output scale {s_out:.9g}, zero point "
                        f"{z_out}; TFLite Micro requires exactly 1/256 and -128 "
                        "(softmax_common.cc), LiteRT 1/256 within 0.1 %"
                        + (": LiteRT runs it, TFLite Micro refuses it" if near else
                           ": both runtimes refuse it"),
                        "quantize the SOFTMAX output with scale 1/256 and zero point -128",
                        **where))
            elif x.type_name == "INT8":
                if op.opcode == "LOGISTIC" and (s_out != 1 / 256 or z_out != -128):
                    out.append(_finding(
                        "softmax-logistic",
                        f"operator {op.index} (LOGISTIC): output scale {s_out:.9g}, zero point "
                        f"{z_out}: LiteRT requires scale 1/256 (SigmoidPrepare), TFLite Micro "
                        "zero point -128 (logistic_common.cc)",
                        "quantize the LOGISTIC output with scale 1/256 and zero point -128",
                        **where))
                m, _shift, _radius = logistic_tanh_int8_input_scaling(s_in)
                if m < 0:
                    out.append(_finding(
                        "softmax-logistic",
                        f"operator {op.index} ({op.opcode}): input scale {s_in!r} makes TFLite "
                        "Micro's input multiplier round to 2^31, which wraps to INT32_MIN "
                        "(logistic_common.cc/tanh_common.cc CalculateArithmeticOpData has no "
                        "fix-up): its outputs have the wrong sign",
                        "nudge the input scale by one float32 ulp when quantizing", **where))
    return out


def _signatures(model: Model) -> list[Finding]:
    if model.signatures:
        return []
    return [_finding("missing-signature",
                     "the model has no SignatureDef: LiteRT's get_signature_runner() and "
                     "signature-based tooling cannot address its inputs and outputs by name",
                     "convert from a SavedModel or tf.function with a signature "
                     "(TFLiteConverter.from_saved_model / from_concrete_functions)")]


_CHECKS = (
    ("quantized-dimension", _quantized_dimension), ("float-island", _float_islands),
    ("mcu-dtype", _mcu_dtypes), ("dynamic-shape", _dynamic_shapes), ("unused-tensor", _unused),
    ("duplicate-buffer", _duplicate_buffers), ("scale", _scales),
    ("bias-scale", _bias_scales), ("softmax-logistic", _softmax_logistic),
    ("missing-signature", _signatures),
)


def lint(model: Model | str | os.PathLike[str] | bytes,
         rules: tuple[str, ...] | list[str] | None = None) -> LintReport:
    """Run the lint rules (default: all of :data:`RULES`) over ``model``."""
    from tflite_ref.errors import UsageError
    from tflite_ref.trace import as_model

    m = as_model(model)
    chosen = tuple(RULES) if rules is None else tuple(rules)
    unknown = [r for r in chosen if r not in RULES]
    if unknown:
        raise UsageError(f"unknown lint rule {unknown[0]!r}; rules: {', '.join(RULES)}")
    findings: list[Finding] = []
    for name, check in _CHECKS:
        # _unused reports unused-tensor and unused-buffer together
        if name in chosen or (name == "unused-tensor" and "unused-buffer" in chosen):
            findings.extend(f for f in check(m) if f.rule in chosen)
    order = {s: k for k, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: (order[f.severity], f.subgraph or 0, f.operator or -1))
    return LintReport(m.path or "<bytes>", tuple(findings), chosen)


__all__ = ["RULES", "SEVERITIES", "Finding", "LintReport", "lint"]
