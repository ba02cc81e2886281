"""``tflite-ref qdebug``: per-layer quantization error, checked against independent computations.

- **Pairs** (float + int8 models of ``../shared/models``): every metric qdebug reports equals a
  NumPy computation written here from LiteRT's tensors (``BUILTIN_REF``, all tensors preserved):
  the int8 chain and the float model for *accumulated* error; for *local* error, LiteRT running
  the float model's operator alone (a single-op model built here with our writer) on the
  dequantized LiteRT int8 inputs.  Two comparisons:

  * against the same NumPy code fed LiteRT's int8 tensors and tflite_ref's float tensors: 1e-6
    relative -- the measurement itself is exact;
  * against LiteRT's float tensors: 1e-6 relative plus the bound that the two runtimes' float
    kernels' own difference implies (they sum in different orders, about 1e-6 of a tensor's
    magnitude; each bound is derived below from the measured difference).

- **QuantizationDebugger** (TensorFlow's tool): the committed fixture in ``tests/models/qdebug``
  (see ``make_fixtures.py`` there) holds a debug-mode model and the ``layer_statistics`` the
  debugger reported; our five metrics agree to 1e-4 relative.  Rebuilt live when TensorFlow is
  installed.
- **Culprits**: an int8 model with one layer's output scale ruined (edited with our writer)
  puts that layer first by local error.
- The CLI: rich text, ``--json`` contract, ``--csv``, ``--plot``, inputs in their forms, errors.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED_MODELS
from harness import run_litert
from rich.console import Console

import tflite_ref
from tflite_ref.cli.main import main
from tflite_ref.cli.qdebug_cmd import render_qdebug
from tflite_ref.errors import UnsupportedOpError, UsageError
from tflite_ref.model.model import Model, Tensor
from tflite_ref.model.writer import ModelBuilder
from tflite_ref.qdebug import METRIC_NAMES, QD_METRICS, QuantReport, builder_from_model, qdebug
from tflite_ref.qdebug.shadow import TensorEdit, dequantize, float_shadow, quantize

FIXTURES = Path(__file__).parent / "models" / "qdebug"
MLPERF = SHARED_MODELS / "mlperf_tiny"
PAIRS = [
    ("vww_96_int8", "vww_96_float"),
    ("pretrainedResnet_quant", "pretrainedResnet"),
    ("ad01_int8", "ad01_fp32"),
    ("model_ToyCar_quant_fullint", "model_ToyCar"),
]
N_SAMPLES = 2
EXACT_RTOL = 1e-6


# ------------------------------------------------------------------------------------------------
# Independent NumPy: quantization, metrics, single-op models
# ------------------------------------------------------------------------------------------------
def np_quantize(x: np.ndarray, t: Tensor) -> np.ndarray:
    """TFLite's AffineQuantize written out: float32 division, ties away from zero, clamp."""
    assert t.quantization is not None and t.dtype is not None
    s, z = np.float32(t.quantization.scale[0]), int(t.quantization.zero_point[0])
    v = (x.astype(np.float32) / s).astype(np.float64)
    r = np.trunc(v + np.copysign(0.5, v))
    info = np.iinfo(t.dtype)
    return np.clip(r + z, info.min, info.max).astype(t.dtype)


def np_real(t: Tensor, v: np.ndarray) -> np.ndarray:
    """Dequantize in float32 arithmetic (one rounding of an exact product), or pass floats."""
    q = t.quantization
    if q is None or not q.scale.size or v.dtype.kind == "f":
        return v.astype(np.float32)
    assert q.scale.size == 1, "activations here are per-tensor"
    return (np.float32(q.scale[0]) * (v.astype(np.float32) - np.float32(q.zero_point[0])))


def np_sample(dq: np.ndarray, ref: np.ndarray, q: np.ndarray | None, t: Tensor
              ) -> dict[str, float]:
    d = (dq.astype(np.float32) - ref.astype(np.float32)).astype(np.float64).ravel()
    a, r = dq.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
    mean = d.sum() / d.size
    na, nr = math.sqrt(float(np.sum(a * a))), math.sqrt(float(np.sum(r * r)))
    cos = 1.0 if na == nr == 0 else 0.0 if na == 0 or nr == 0 else float(np.sum(a * r)) / na / nr
    out = {"num_elements": float(d.size), "mean_error": float(mean),
           "stddev": math.sqrt(float(np.sum((d - mean) ** 2)) / d.size),
           "max_abs_error": float(np.abs(d).max()), "mean_squared_error": float(np.sum(d * d)) / d.size,
           "cosine": cos, "signal_power": float(np.sum(r * r)) / r.size,
           "saturated_fraction": math.nan}
    if q is not None and t.quantization is not None and t.quantization.scale.size:
        info = np.iinfo(t.dtype)  # type: ignore[arg-type]
        s = float(t.quantization.scale[0])
        lo = float(np_real(t, np.array([info.min], t.dtype))[0]) - s / 2
        hi = float(np_real(t, np.array([info.max], t.dtype))[0]) + s / 2
        clipped = ((q.ravel() == info.max) & (r > hi)) | ((q.ravel() == info.min) & (r < lo))
        out["saturated_fraction"] = float(clipped.sum()) / d.size
    return out


def np_aggregate(samples: list[dict[str, float]], t: Tensor) -> dict[str, float]:
    keys = samples[0].keys()
    m = {k: float(np.mean([s[k] for s in samples])) for k in keys}
    q = t.quantization
    scale = float(q.scale[0]) if q is not None and q.scale.size and t.dtype.kind in "iu" else None  # type: ignore[union-attr]
    m["rmse_over_scale"] = math.sqrt(m["mean_squared_error"]) / scale if scale else math.nan
    mse, p = m["mean_squared_error"], m["signal_power"]
    m["sqnr_db"] = math.inf if mse == 0 else 10 * math.log10(p / mse)
    return m


def single_op_model(model: Model, op_index: int) -> tuple[bytes, list[int]]:
    """Operator ``op_index`` of ``model`` alone; returns the bytes and its activation inputs
    (tensor indices of ``model``) in the single-op model's input order."""
    sg = model.subgraphs[0]
    op = sg.operators[op_index]
    mb = ModelBuilder(description="single op")
    sb = mb.subgraph("op")
    handles: dict[int, Any] = {}
    feeds: list[int] = []

    def tensor(ti: int) -> Any:
        if ti not in handles:
            t = sg.tensors[ti]
            q = t.quantization
            kw: dict[str, Any] = {}
            if q is not None and q.scale.size:
                kw = {"scale": q.scale.tolist(), "zero_point": q.zero_point.tolist(),
                      "quantized_dimension": q.quantized_dimension}
            if t.data is not None:
                handles[ti] = sb.tensor(t.name, t.shape, t.type, np.asarray(t.data), **kw)
            else:
                handles[ti] = sb.tensor(t.name, t.shape, t.type, **kw)
        return handles[ti]

    ins = []
    for ti in op.inputs:
        if ti < 0:
            ins.append(None)
            continue
        h = tensor(ti)
        if sg.tensors[ti].data is None and ti not in feeds:
            feeds.append(ti)
            sb.inputs.append(h)
        ins.append(h)
    outs = [tensor(ti) for ti in op.outputs]
    sb.operator(op.builtin_code, ins, outs, dict(op.options) if op.options_type else None,
                version=op.version, options_member=op.options_type or "NONE")
    sb.outputs = outs
    return mb.build(), feeds


def run_ours(content: bytes, inputs: list[np.ndarray]) -> dict[int, np.ndarray]:
    it = tflite_ref.Interpreter(model_content=content)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    out = {}
    for d in it.get_tensor_details():
        try:
            out[d["index"]] = it.get_tensor(d["index"])
        except UsageError:
            continue
    return out


def assert_close(got: float | None, want: float, what: str, rtol: float = EXACT_RTOL,
                 atol: float = 0.0) -> None:
    if got is None:  # JSON null: not finite (an infinite SQNR) or not defined
        assert not math.isfinite(want), f"{what}: reported null, expected {want}"
        return
    if math.isinf(want) or math.isinf(got):
        assert got == want, f"{what}: {got} != {want}"
        return
    if math.isnan(want):
        assert math.isnan(got), f"{what}: {got}, expected NaN"
        return
    assert abs(got - want) <= rtol * abs(want) + atol, (
        f"{what}: {got!r} vs {want!r} (diff {abs(got - want):.3g}, allowed "
        f"{rtol * abs(want) + atol:.3g})")


# ------------------------------------------------------------------------------------------------
# The comparison with LiteRT
# ------------------------------------------------------------------------------------------------
def _samples(qm: Model, rng: np.random.Generator) -> list[np.ndarray]:
    """Uniform over the quantized input's real range (the QUANTIZE after a float input)."""
    sg = qm.subgraphs[0]
    t = sg.tensors[sg.inputs[0]]
    rt = t
    if t.dtype.kind == "f":  # type: ignore[union-attr]
        rt = next(sg.tensors[op.outputs[0]] for op in sg.operators
                  if op.name == "QUANTIZE" and op.inputs[0] == t.index)
    q = rt.quantization
    assert q is not None
    lo = float(q.scale[0]) * (-128 - int(q.zero_point[0]))
    hi = float(q.scale[0]) * (127 - int(q.zero_point[0]))
    return [rng.uniform(lo, hi, t.shape).astype(np.float32) for _ in range(N_SAMPLES)]


def check_against_litert(report: QuantReport, qm: Model, rm: Model, ref_bytes: bytes,
                         samples: list[np.ndarray], counterpart: dict[int, int],
                         ref_op: dict[int, int], stats: dict[str, float]) -> None:
    """Every layer's accumulated and local metrics against NumPy on LiteRT's tensors."""
    qsg, rsg = qm.subgraphs[0], rm.subgraphs[0]
    q_in = qsg.tensors[qsg.inputs[0]]
    per_layer: dict[int, dict[str, list[Any]]] = {}
    for x in samples:
        qx = np_quantize(x, q_in) if q_in.dtype.kind in "iu" else x  # type: ignore[union-attr]
        lit_q = run_litert(qm.content, [qx])
        ours_q = run_ours(qm.content, [qx])
        lit_r = run_litert(ref_bytes, [x])
        ours_r = run_ours(ref_bytes, [x])
        for op in qsg.operators:
            for ti in op.outputs:
                # The integer chain is LiteRT's, bit for bit.
                np.testing.assert_array_equal(ours_q[ti], lit_q[ti], err_msg=f"tensor {ti}")
        for op in qsg.operators:
            ti = op.outputs[0]
            t = qsg.tensors[ti]
            dq = np_real(t, lit_q[ti])
            qv = lit_q[ti] if t.dtype.kind in "iu" else None  # type: ignore[union-attr]
            acc = per_layer.setdefault(ti, {"acc": [], "loc": []})
            refs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            ri = counterpart[ti]
            refs["acc"] = (np_real(rsg.tensors[ri], lit_r[ri]).reshape(dq.shape),
                           np_real(rsg.tensors[ri], ours_r[ri]).reshape(dq.shape))
            if op.name in ("QUANTIZE", "DEQUANTIZE"):
                src = qsg.tensors[op.inputs[0]]
                v = np_real(src, lit_q[src.index]).reshape(dq.shape)
                refs["loc"] = (v, v)
            else:
                content, feeds = single_op_model(rm, ref_op[op.index])
                # Feed the reference op this op's own inputs from LiteRT, dequantized.
                slot_of = {rsg.operators[ref_op[op.index]].inputs[j]: qi
                           for j, qi in enumerate(op.inputs)}
                feed = [np_real(qsg.tensors[slot_of[fi]], lit_q[slot_of[fi]]).reshape(
                    rsg.tensors[fi].shape) for fi in feeds]
                out_l = run_litert(content, feed)
                out_o = run_ours(content, feed)
                last = max(out_o)  # the single-op model's output is its last tensor
                refs["loc"] = (out_l[last].reshape(dq.shape), out_o[last].reshape(dq.shape))
            for which, (ref_l, ref_o) in refs.items():
                # The float reference is LiteRT's to the bit (float kernels add in the reference
                # kernels' order), so NumPy on LiteRT's tensors is the one expectation.
                np.testing.assert_array_equal(ref_o, ref_l, err_msg=f"{which} reference of {ti}")
                acc[which].append(np_sample(dq, ref_l, qv, t))
    assert {lr.tensor_index for lr in report.layers} >= set(per_layer)
    for ti, acc in per_layer.items():
        lr = report.layer(ti)
        t = qsg.tensors[ti]
        for which, got in (("acc", lr.accumulated), ("loc", lr.local)):
            assert got is not None, f"{lr.tensor}: no {which} metrics ({lr.notes})"
            want_all = np_aggregate(acc[which], t)
            reported = got.as_dict()
            for m in METRIC_NAMES:
                what = f"op {lr.operator} {lr.opcode} {which} {m} (vs NumPy on LiteRT's tensors)"
                want = want_all[m]
                if m in ("rmse_over_scale", "saturated_fraction") and math.isnan(want):
                    assert reported[m] is None, what
                    continue
                # mean_error is a difference of similar sums: its floor is the error's size.
                floor = 1e-12 * want_all["max_abs_error"] if m == "mean_error" else 0.0
                assert_close(reported[m], want, what, atol=floor)
                if reported[m] is not None and want and math.isfinite(want):
                    stats[m] = max(stats.get(m, 0.0), abs(reported[m] - want) / abs(want))


@pytest.fixture(scope="module")
def litert_deviation() -> dict[str, float]:
    """Largest relative deviation from NumPy-on-LiteRT per metric, over all pairs (for docs)."""
    return {}


def _independent_pairing(qm: Model, fm: Model) -> tuple[dict[int, int], dict[int, int]]:
    """Quantized -> float tensors and operators by position: the pairs keep the operator order,
    with QUANTIZE/DEQUANTIZE extra in the quantized model (identities)."""
    qsg, fsg = qm.subgraphs[0], fm.subgraphs[0]
    body = [op for op in qsg.operators if op.name not in ("QUANTIZE", "DEQUANTIZE")]
    assert [op.opcode for op in body] == [op.opcode for op in fsg.operators]
    tensors = {qi: fi for qi, fi in zip(qsg.inputs, fsg.inputs)}
    ops = {}
    for qop, fop in zip(body, fsg.operators):
        ops[qop.index] = fop.index
        tensors.update(zip(qop.outputs, fop.outputs))
    for op in qsg.operators:
        if op.name in ("QUANTIZE", "DEQUANTIZE"):
            tensors[op.outputs[0]] = tensors[op.inputs[0]]
    return tensors, ops


@pytest.mark.parametrize("quant,flt", PAIRS, ids=[q for q, _ in PAIRS])
def test_pair_metrics_equal_numpy_on_litert(quant: str, flt: str,
                                            litert_deviation: dict[str, float]) -> None:
    qm = tflite_ref.load(MLPERF / f"{quant}.tflite")
    fm = tflite_ref.load(MLPERF / f"{flt}.tflite")
    samples = _samples(qm, np.random.default_rng(11))
    report = qdebug(qm, fm, inputs=[np.stack(samples)])
    assert report.samples == N_SAMPLES and report.reference == "float model"
    tensors, ops = _independent_pairing(qm, fm)
    fsg = fm.subgraphs[0]
    for lr in report.layers:  # the matching qdebug did by name and graph is the positional one
        assert lr.float_tensor == fsg.tensors[tensors[lr.tensor_index]].name, lr.tensor
    assert not report.unmatched_tensors
    check_against_litert(report, qm, fm, fm.content, samples, tensors, ops, litert_deviation)
    # Model level: output SQNR and top-1 agreement.
    out = report.outputs[0]
    assert out.metrics is not None and report.sqnr_db == out.metrics.sqnr_db
    assert out.top1_agreement is not None and 0.0 <= out.top1_agreement <= 1.0


def test_float_shadow_metrics_equal_numpy_on_litert() -> None:
    """Without a float model the reference is the shadow, which LiteRT runs as well."""
    qm = tflite_ref.load(MLPERF / "model_ToyCar_quant_fullint.tflite")
    samples = _samples(qm, np.random.default_rng(5))
    report = qdebug(qm, inputs=[np.stack(samples)])
    assert report.reference == "float shadow" and report.float_model is None
    shadow = float_shadow(qm)
    qsg, ssg = qm.subgraphs[0], shadow.model.subgraphs[0]
    # The shadow holds the quantized constants, dequantized, as float32; no quantized tensor.
    for t in qsg.tensors:
        st = ssg.tensors[t.index]
        if t.data is not None and t.quantization is not None and t.quantization.scale.size:
            assert st.type_name == "FLOAT32" and st.quantization is None
            q = t.quantization
            shape = [1] * t.data.ndim
            if q.scale.size > 1:
                shape[q.quantized_dimension] = q.scale.size
            want = (q.scale.astype(np.float64).reshape(shape)
                    * (t.data.astype(np.float64) - q.zero_point.reshape(shape)))
            np.testing.assert_array_equal(st.data, want.astype(np.float32))
    counterpart = {t.index: shadow.source(t.index) for t in qsg.tensors}
    kept = [op.index for op in qsg.operators if op.index not in shadow.removed_ops]
    assert [qsg.operators[i].opcode for i in kept] == [op.opcode for op in ssg.operators]
    check_against_litert(report, qm, shadow.model, shadow.content, samples, counterpart,
                         {q: r for r, q in enumerate(kept)}, {})


# ------------------------------------------------------------------------------------------------
# QuantizationDebugger
# ------------------------------------------------------------------------------------------------
# The issue asks for 1e-4; with the float kernels in LiteRT's order the fixture agrees to 1.2e-7
# (local) and 6.4e-8 (accumulated), measured on the committed fixture.
QD_RTOL = 1e-6
# With its default (optimized) kernels the debugger's own figures move: the fixture run measured
# up to 9.8% (FULLY_CONNECTED stddev; 4 outputs, where a few ±1 LSB roundings of the optimized
# int8 kernel weigh heavily).  Compared loosely, only to catch a wrong definition.
QD_DEFAULT_RTOL = 0.15


def _reads_model_input(qm: Model, op_index: int) -> bool:
    """The op reads the model's float input through QUANTIZE: QuantizationDebugger's float op
    then reads the raw float input (no DEQUANTIZE to read), so its layer-by-layer figure there
    includes the input's quantization -- our accumulated error, not our local one."""
    sg = qm.subgraphs[0]
    op = sg.operators[op_index]
    producers = {o: p for p in sg.operators for o in p.outputs}
    return any(i in producers and producers[i].name == "QUANTIZE"
               and producers[i].inputs[0] in sg.inputs for i in op.inputs if i >= 0)


def check_quantization_debugger(folder: Path, expected: dict[str, Any]) -> None:
    qm = tflite_ref.load(folder / "quant.tflite")
    report = qdebug(qm, folder / "float.tflite", inputs=folder / "samples.npz")
    assert report.samples == expected["samples"]
    compared = 0
    for kernels, rtol in (("builtin_ref", QD_RTOL), ("default", QD_DEFAULT_RTOL)):
        for key, which in (("layer_statistics", "local"),
                           ("whole_model_layer_statistics", "accumulated")):
            for name, stats in expected[f"{key}_{kernels}"].items():
                lr = report.layer(name)
                side = which
                if which == "local" and lr.opcode == "AVERAGE_POOL_2D":
                    # The converter quantizes the "float" reference of this same-scale op too:
                    # the debugger compares int8 with int8 there and reports ~0.
                    assert stats["mean_squared_error"] < 1e-12, name
                    continue
                if which == "local" and _reads_model_input(qm, lr.operator):
                    side = "accumulated"
                m = getattr(lr, side)
                assert m is not None
                q = expected["quantization"][name]
                assert lr.scale == pytest.approx(q["scale"], rel=1e-7) and lr.zero_point == q[
                    "zero_point"]
                for metric in QD_METRICS:
                    got, want = getattr(m, metric), stats[metric]
                    # A signed mean cancels: judge it against the error's RMS, not itself.
                    floor = rtol * math.sqrt(stats["mean_squared_error"]) \
                        if metric == "mean_error" else 0.0
                    assert abs(got - want) <= rtol * abs(want) + floor, (
                        f"{name} {which} {metric} ({kernels} kernels): ours {got!r}, "
                        f"QuantizationDebugger {want!r}")
                    compared += 1
    assert compared >= 2 * 5 * (len(expected["layer_statistics_builtin_ref"]) - 1)


def test_quantization_debugger_committed_fixture() -> None:
    expected = json.loads((FIXTURES / "expected.json").read_text())
    check_quantization_debugger(FIXTURES, expected)
    # The names we report are what the converter takes in denylisted_nodes: the fixture
    # script passed two of them and those layers came back float32.
    assert expected["denylisted_nodes_check"] and all(
        v == "float32" for v in expected["denylisted_nodes_check"].values())


def test_quantization_debugger_live(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed (it is no project "
                        "dependency); the committed fixture in tests/models/qdebug, made with "
                        "TensorFlow 2.21.0 by make_fixtures.py, covers this comparison")
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.build(tmp_path)
    check_quantization_debugger(tmp_path, expected)


# ------------------------------------------------------------------------------------------------
# Culprits: a deliberately ruined scale
# ------------------------------------------------------------------------------------------------
def ruin_scale(model: Model, tensor_index: int, factor: float) -> bytes:
    """Multiply one activation's scale by ``factor``, as if calibration had picked a bad range.

    Consumers stay consistent (their bias scale is input scale x weight scale; LiteRT and
    tflite_ref check it), so the biases they add are rescaled to keep their real values.
    """
    sg = model.subgraphs[0]
    biases = {op.inputs[2] for op in sg.operators
              if tensor_index in op.inputs[:1] and len(op.inputs) > 2 and op.inputs[2] >= 0
              and op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")}

    def hook(_sg: Any, t: Tensor) -> TensorEdit | None:
        from tflite_ref.model.writer import Quantization

        if t.index != tensor_index and t.index not in biases:
            return None
        q = t.quantization
        assert q is not None
        quant = Quantization(scale=(q.scale * factor).tolist(), zero_point=q.zero_point.tolist(),
                             quantized_dimension=q.quantized_dimension)
        data = None
        if t.index in biases:
            data = np.round(t.data.astype(np.float64) / factor).astype(np.int32)  # type: ignore[union-attr]
        return TensorEdit(t.type, data, quant)

    return builder_from_model(model, hook).build()


@pytest.mark.parametrize("factor", [1 / 16, 32.0], ids=["range-too-narrow", "range-too-wide"])
@pytest.mark.parametrize("with_float", [False, True], ids=["shadow", "float-model"])
def test_ruined_scale_tops_local_culprits(factor: float, with_float: bool) -> None:
    qm = tflite_ref.load(MLPERF / "vww_96_int8.tflite")
    victim_op = 12  # a CONV_2D in the middle, feeding a depthwise conv
    victim = qm.subgraphs[0].operators[victim_op].outputs[0]
    ruined = tflite_ref.load(ruin_scale(qm, victim, factor))
    assert ruined.subgraphs[0].tensors[victim].quantization.scale[0] == pytest.approx(  # type: ignore[union-attr]
        qm.subgraphs[0].tensors[victim].quantization.scale[0] * factor)  # type: ignore[union-attr]
    flt = MLPERF / "vww_96_float.tflite" if with_float else None
    report = qdebug(ruined, flt, samples=3, seed=1)
    first = report.culprits_local[0]
    assert (first.tensor_index, first.operator) == (victim, victim_op), [
        (c.operator, c.opcode, round(c.value, 1)) for c in report.culprits_local]
    assert report.denylisted_nodes[0] == qm.subgraphs[0].tensors[victim].name
    # The same model unruined does not single this layer out.
    plain = qdebug(qm, flt, samples=3, seed=1)
    assert plain.culprits_local[0].tensor_index != victim
    # Its consumer inherits the damage but adds none of its own.
    consumer = report.layer(qm.subgraphs[0].operators[victim_op + 1].outputs[0])
    before = plain.layer(consumer.tensor_index)
    assert consumer.local is not None and before.local is not None
    assert consumer.local.sqnr_db > first.value + 10
    if factor < 1:
        assert report.layer(victim).local.saturated_fraction > 0.01  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------------
# Matching, inputs, unsupported models
# ------------------------------------------------------------------------------------------------
def test_matching_by_graph_when_names_changed() -> None:
    """Every float tensor renamed: the graph alone pairs the tensors, with the same figures."""
    qpath, fpath = MLPERF / "pretrainedResnet_quant.tflite", MLPERF / "pretrainedResnet.tflite"
    fm = tflite_ref.load(fpath)
    mb = builder_from_model(fm)
    for spec in mb.subgraphs[0].tensors:
        spec.name = f"renamed_{spec.index}"
    renamed = mb.build()
    by_name = qdebug(qpath, fpath, samples=2)
    by_graph = qdebug(qpath, renamed, samples=2)
    assert by_graph.matched_tensors == by_name.matched_tensors and not by_graph.unmatched_tensors
    index = {t.name: t.index for t in fm.subgraphs[0].tensors}
    for a, b in zip(by_name.layers, by_graph.layers):
        assert b.float_tensor == f"renamed_{index[a.float_tensor]}"  # type: ignore[index]
        assert a.accumulated == b.accumulated and a.local == b.local


def test_quantize_matches_litert_quantize() -> None:
    """The input quantization qdebug applies is LiteRT's QUANTIZE, ties included."""
    mb = ModelBuilder()
    sb = mb.subgraph()
    x = sb.tensor("x", [64], "FLOAT32")
    y = sb.tensor("y", [64], "INT8", scale=0.5, zero_point=3)
    sb.operator("QUANTIZE", [x], [y])
    sb.inputs, sb.outputs = [x], [y]
    content = mb.build()
    values = np.concatenate([np.arange(-16, 16) * 0.25, [0.24999999, -0.75, 1e9, -1e9, 63.75,
                                                         -65.25, 0.0, -0.0] * 4]).astype(
        np.float32)[:64]
    lit = run_litert(content, [values])
    t = tflite_ref.load(content).subgraphs[0].tensors[1]
    np.testing.assert_array_equal(quantize(t, values), lit[1])


def test_inputs_in_their_forms(tmp_path: Path) -> None:
    qpath = MLPERF / "ad01_int8.tflite"
    qm = tflite_ref.load(qpath)
    t = qm.subgraphs[0].tensors[qm.subgraphs[0].inputs[0]]
    rng = np.random.default_rng(3)
    xs = rng.uniform(-40, 10, (3, *t.shape)).astype(np.float32)
    reference = qdebug(qpath, inputs=[xs])
    assert reference.samples == 3
    np.savez(tmp_path / "named.npz", **{t.name: xs})
    np.savez(tmp_path / "positional.npz", xs)
    np.save(tmp_path / "plain.npy", xs)
    folder = tmp_path / "dir"
    folder.mkdir()
    for k, x in enumerate(xs):
        np.save(folder / f"{k}.npy", x)
    for source in (tmp_path / "named.npz", tmp_path / "positional.npz", tmp_path / "plain.npy",
                   folder, {t.name: xs}):
        got = qdebug(qpath, inputs=source)
        assert got.samples == 3 and got.layers == reference.layers, source
    # Integer arrays of the input's type are taken as already quantized.
    q = np.stack([quantize(t, x) for x in xs])
    assert qdebug(qpath, inputs=[q]).layers == qdebug(
        qpath, inputs=[np.stack([dequantize(t, x) for x in q])]).layers
    assert qdebug(qpath, inputs=[xs], samples=2).samples == 2
    with pytest.raises(UsageError, match="names no input"):
        qdebug(qpath, inputs={"nope": xs})
    with pytest.raises(UsageError, match="does not fit input"):
        qdebug(qpath, inputs=[xs[:, :, :100]])
    with pytest.raises(UsageError, match="at least 1"):
        qdebug(qpath, samples=0)
    with pytest.raises(UsageError, match="no quantized tensors"):
        qdebug(MLPERF / "ad01_fp32.tflite")


def test_images_need_pillow_or_decode(tmp_path: Path) -> None:
    qpath = MLPERF / "vww_96_int8.tflite"
    img = tmp_path / "cat.png"
    try:
        from PIL import Image
    except ImportError:
        img.write_bytes(b"\x89PNG\r\n\x1a\n")
        with pytest.raises(UsageError, match="Pillow"):
            qdebug(qpath, inputs=img)
        pytest.skip("Pillow is not installed (optional extra 'images'): checked the message "
                    "that says so")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
                    ).save(img)
    report = qdebug(qpath, inputs=tmp_path)
    assert report.samples == 1 and report.layers[0].accumulated is not None


def test_unsupported_operator_is_reported() -> None:
    """A hybrid model (float input, int8 weights): measured when its kernels exist, otherwise
    refused with the operator named (hybrid kernels are being added as this is written)."""
    path = MLPERF / "model_ToyCar_quant.tflite"
    try:
        tflite_ref.Interpreter(model_path=str(path)).allocate_tensors()
    except UnsupportedOpError:
        with pytest.raises(UnsupportedOpError, match="FULLY_CONNECTED"):
            qdebug(path, samples=1)
        return
    report = qdebug(path, MLPERF / "model_ToyCar.tflite", samples=1)
    assert all(lr.scale is None for lr in report.layers)  # float outputs of hybrid layers


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------
def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["qdebug", *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


PAIR = (str(MLPERF / "pretrainedResnet_quant.tflite"), "--float",
        str(MLPERF / "pretrainedResnet.tflite"))


def test_cli_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, *PAIR, "--samples", "2", "--json", "--top", "3")
    assert code == 0
    doc = json.loads(out)
    assert doc["samples"] == 2
    assert {"quantized", "float", "reference", "sqnr_db", "top1_agreement", "outputs"} <= set(
        doc["model"])
    assert doc["model"]["reference"] == "float model"
    layer = doc["layers"][0]
    assert {"tensor", "tensor_index", "operator", "opcode", "scale", "zero_point",
            "accumulated", "local"} <= set(layer)
    assert set(layer["accumulated"]) == set(METRIC_NAMES) == set(layer["local"])
    assert len(doc["culprits"]["local"]) == 3
    assert doc["culprits"]["denylisted_nodes"] == [c["tensor"] for c in doc["culprits"]["local"]]
    # RESHAPE is exact: infinite SQNR, written as null (JSON has no infinity).
    reshape = next(lr for lr in doc["layers"] if lr["opcode"] == "RESHAPE")
    assert reshape["local"]["sqnr_db"] is None and reshape["local"]["mean_squared_error"] == 0


@pytest.mark.parametrize("deep", [False, True], ids=["short-path", "long-path"])
def test_cli_rich_report(tmp_path: Path, deep: bool) -> None:
    quantized, float_model = PAIR[0], PAIR[2]
    if deep:  # a clone deep in the file system: paths fold across lines, labels must not
        where = tmp_path / ("d" * 60) / ("e" * 60)
        where.mkdir(parents=True)
        for name in (quantized, float_model):
            (where / Path(name).name).write_bytes(Path(name).read_bytes())
        quantized, float_model = (str(where / Path(n).name) for n in (quantized, float_model))
    report = qdebug(quantized, float_model, samples=2, top=2)
    buf = io.StringIO()
    render_qdebug(report, Console(file=buf, width=100, color_system=None))
    text = buf.getvalue()
    assert "tflite-ref qdebug" in text and "float model" in text
    assert "where error is introduced" in text and "denylisted_nodes=[" in text
    assert "FULLY_CONNECTED" in text and "SOFTMAX" in text and "top-1 agreement" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_cli_csv_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path, html, svg = tmp_path / "l.csv", tmp_path / "p.html", tmp_path / "p.svg"
    code, _, err = _cli(capsys, *PAIR, "--samples", "1", "--csv", str(csv_path), "--plot",
                        str(html))
    assert code == 0 and "plot written" in err
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 16 and "local_sqnr_db" in rows[0] and "accumulated_cosine" in rows[0]
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "<script" not in page
    assert "src=" not in page and "href=" not in page  # self-contained
    code, _, _ = _cli(capsys, *PAIR, "--samples", "1", "--plot", str(svg), "--json")
    assert code == 0
    root = ET.fromstring(svg.read_text())
    assert root.tag.endswith("svg") and len(root.findall(".//{*}rect")) > 16


def test_cli_png_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "p.png"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        code, _, err = _cli(capsys, *PAIR, "--samples", "1", "--plot", str(png))
        assert code == 2 and "matplotlib" in err and not png.exists()
        pytest.skip("matplotlib is not installed (optional extra 'plot'): checked the message "
                    "that says so")
    code, _, _ = _cli(capsys, *PAIR, "--samples", "1", "--plot", str(png))
    assert code == 0 and png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("args,message", [
    (("--samples", "0"), "at least 1"),
    (("--inputs", "missing.npz"), "cannot read"),
    (("--inputs-dir", "nowhere"), "not a directory"),
    (("--plot", "x.gif"), ".html, .svg or .png"),
])
def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                                 message: str) -> None:
    code, _, err = _cli(capsys, PAIR[0], *args)
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2


def test_cli_help_lists_qdebug(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "qdebug" in capsys.readouterr().out

