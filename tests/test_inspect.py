"""``tflite-ref inspect`` and :mod:`tflite_ref.inspect`, checked against the runtimes, live.

For every model of the shared corpus, the shipped example and our fixture:

* ``tflite-ref inspect M --json`` exits 0 and prints strict JSON (no NaN) with the documented
  keys (run in-process through ``tflite_ref.cli.main.main``: a subprocess per model would cost
  seconds; ``tests/test_cli_errors.py`` covers the real process);
* the rich view renders at 80, 100 and 200 columns and names every operator;
* the JSON agrees with LiteRT (``get_tensor_details``, ``_get_ops_details``, signatures; MACs
  recomputed from LiteRT's shapes) for every model LiteRT loads, and with the ``tflite``
  bindings read directly (operator codes, tensors, constant bytes) for every model.

LiteRT is never invoked on the corpus: details are complete without ``allocate_tensors`` (which
would add kernel scratch tensors to ``get_tensor_details``), and
``tflm/keyword_scrambled_8bit.tflite`` corrupts LiteRT's heap on invoke.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tflite
from rich.console import Console

from conftest import ROOT, SHARED_MODEL_FILES, model_id
from tflite_ref.cli.main import main
from tflite_ref.cli.render import fmt_quant, render_inspect, short_name
from tflite_ref.examples import example_path
from tflite_ref.inspect import (
    QuantInfo,
    bytes_preview,
    inspect_file,
    inspect_model,
    jsonable,
    key_options,
    operator_macs,
)
from tflite_ref.model import load
from tflite_ref.model.writer import ModelBuilder

EXAMPLE = example_path()
MAC_FIXTURE = ROOT / "tests" / "models" / "inspect_mac_ops_f32.tflite"
ALL_MODELS = [*SHARED_MODEL_FILES, EXAMPLE, MAC_FIXTURE]

# Models LiteRT refuses to construct, and why. They are still compared with the bindings.
LITERT_REFUSES = {
    # Rank-1 biases carry one scale per element but quantized_dimension 3 (copied from the
    # filter). LiteRT's interpreter builder rejects the tensor; TFLite Micro never reads the
    # field for biases and runs the model. We load it with a warning.
    "tflm/person_detect": "quantized_dimension must be in range",
}

# LiteRT reports dtypes as NumPy types; written out here rather than taken from tflite_ref.
LITERT_DTYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT8": np.int8,
    "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8,
    "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64, "BOOL": np.bool_,
}

MAC_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL"}


def _reject_constant(name: str) -> Any:
    raise AssertionError(f"non-JSON constant {name} in --json output")


@functools.lru_cache(maxsize=None)
def cli_json(path: Path, *extra: str) -> dict[str, Any]:
    """``tflite-ref inspect PATH --json`` in-process; parsed strictly (NaN/Infinity refused)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["inspect", str(path), "--json", *extra])
    assert code == 0
    return json.loads(out.getvalue(), parse_constant=_reject_constant)


def litert(path: Path) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(model_path=str(path),
                       experimental_op_resolver_type=OpResolverType.BUILTIN_REF)


def render(path: Path, width: int, tensors: bool = False) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    render_inspect(inspect_file(path), console, tensors=tensors)
    return console.file.getvalue()  # type: ignore[attr-defined]


def expected_macs(op_name: str, shapes: list[tuple[int, ...] | None], out: tuple[int, ...],
                  options: dict[str, Any]) -> int:
    """The MAC formulas of the brief, applied to shapes the caller got from LiteRT."""
    if op_name == "CONV_2D":  # filter [O, kh, kw, I/groups]
        return math.prod(out) * shapes[1][1] * shapes[1][2] * shapes[1][3]
    if op_name == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, O]
        return math.prod(out) * shapes[1][1] * shapes[1][2]
    if op_name == "FULLY_CONNECTED":  # weights [N, K]; batches = out / N
        n, k = shapes[1]
        return (math.prod(out) // n) * n * k
    if op_name == "TRANSPOSE_CONV":  # (output_shape, weights [O, kh, kw, I], input)
        w, x = shapes[1], shapes[2]
        return math.prod(x) * w[1] * w[2] * w[0]
    if op_name == "BATCH_MATMUL":
        x = shapes[0]
        m, k = (x[-1], x[-2]) if options.get("adj_x") else (x[-2], x[-1])
        n = out[-1]
        return (math.prod(out) // (m * n)) * m * n * k
    raise AssertionError(op_name)


# ------------------------------------------------------------------------------------------------
# Every model: JSON, rendering, LiteRT, bindings
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL_MODELS, ids=model_id)
def test_json_view(path: Path) -> None:
    data = cli_json(path)
    assert data["file"] == str(path)
    assert data["size_bytes"] == path.stat().st_size
    assert data["version"] == 3
    assert isinstance(data["description"], str)
    assert isinstance(data["signatures"], list) and isinstance(data["metadata"], dict)
    assert isinstance(data["warnings"], list)
    assert data["subgraphs"]
    for sg in data["subgraphs"]:
        assert {"name", "inputs", "outputs", "tensors", "operators"} <= sg.keys()
        for t in sg["tensors"]:
            assert {"index", "name", "dtype", "shape", "shape_signature", "buffer", "bytes",
                    "is_variable", "quantization"} <= t.keys()
            q = t["quantization"]
            assert q is None or {"scale", "zero_point", "quantized_dimension"} <= q.keys()
        for k, op in enumerate(sg["operators"]):
            assert op["index"] == k
            assert {"opcode", "version", "inputs", "outputs", "options"} <= op.keys()
            assert isinstance(op["macs"], int) and op["macs"] >= 0
            if op["opcode"] not in MAC_OPS:
                assert op["macs"] == 0
    assert data["macs"] == sum(sg["macs"] for sg in data["subgraphs"])


@pytest.mark.parametrize("path", ALL_MODELS, ids=model_id)
def test_human_view_renders(path: Path) -> None:
    text = render(path, 100)
    ops = [op for sg in cli_json(path)["subgraphs"] for op in sg["operators"]]
    for op in ops:
        # Narrow tables (< 140 columns) show a custom op by its code, marked "custom".
        name = op["opcode"].split(":", 1)[1] if op["opcode"].startswith("CUSTOM:") else op["opcode"]
        assert name in text, f"operator {op['index']} {op['opcode']} missing from the view"
    wide = render(path, 200, tensors=True)
    for op in ops:
        assert op["opcode"] in wide
    for line in render(path, 80).splitlines():
        assert len(line) <= 80


@pytest.mark.parametrize("path", ALL_MODELS, ids=model_id)
def test_matches_litert(path: Path) -> None:
    refusal = LITERT_REFUSES.get(model_id(path))
    if refusal is not None:
        with pytest.raises(ValueError, match=refusal):
            litert(path)
        return
    # Construction resolves kernels only at allocate_tensors(), so models whose custom ops
    # LiteRT lacks (audio_preprocessor_*: Signal*, person_detect_vela: ethos-u) still give
    # complete details here.
    it = litert(path)
    data = cli_json(path)
    sg = data["subgraphs"][0]  # LiteRT's details describe the primary subgraph
    details = it.get_tensor_details()
    assert len(details) == len(sg["tensors"])
    for d in details:
        t = sg["tensors"][d["index"]]
        where = f"tensor {d['index']} {d['name']!r}"
        assert t["name"] == d["name"], where
        assert t["shape"] == d["shape"].tolist(), where
        assert (t["shape_signature"] or t["shape"]) == d["shape_signature"].tolist(), where
        assert t["dtype"] in LITERT_DTYPES, f"{where}: {t['dtype']} not in the test's table"
        assert np.dtype(d["dtype"]) == np.dtype(LITERT_DTYPES[t["dtype"]]), where
        qp = d["quantization_parameters"]
        q = t["quantization"] or {"scale": [], "zero_point": [], "quantized_dimension": 0}
        np.testing.assert_array_equal(np.array(q["scale"], dtype=np.float32), qp["scales"],
                                      err_msg=where)
        np.testing.assert_array_equal(np.array(q["zero_point"], dtype=np.int64),
                                      qp["zero_points"].astype(np.int64), err_msg=where)
        assert q["quantized_dimension"] == qp["quantized_dimension"], where
    shapes = {d["index"]: tuple(d["shape"].tolist()) for d in details}
    ops = it._get_ops_details()
    assert len(ops) == len(sg["operators"])
    for d in ops:
        op = sg["operators"][d["index"]]
        where = f"operator {d['index']} {op['opcode']}"
        # LiteRT names a custom op by its custom code alone.
        assert op["opcode"] in (d["op_name"], f"CUSTOM:{d['op_name']}"), where
        assert op["inputs"] == d["inputs"].tolist(), where
        assert op["outputs"] == d["outputs"].tolist(), where
        if d["op_name"] in MAC_OPS:
            ins = [shapes.get(i) for i in d["inputs"].tolist()]
            want = expected_macs(d["op_name"], ins, shapes[d["outputs"][0]], op["options"])
            assert op["macs"] == want, where
    signatures = it.get_signature_list()
    assert sorted(signatures) == sorted(s["key"] for s in data["signatures"])
    for s in data["signatures"]:
        assert sorted(signatures[s["key"]]["inputs"]) == sorted(s["inputs"])
        assert sorted(signatures[s["key"]]["outputs"]) == sorted(s["outputs"])


def _bindings_opcode(model: tflite.Model, op: tflite.Operator) -> str:
    oc = model.OperatorCodes(op.OpcodeIndex())
    # schema_utils.cc GetBuiltinCode: the larger of the two fields.
    code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if isinstance(v, int)}
    if names[code] == "CUSTOM":
        return "CUSTOM:" + oc.CustomCode().decode()
    return names[code]


@pytest.mark.parametrize("path", ALL_MODELS, ids=model_id)
def test_matches_tflite_bindings(path: Path) -> None:
    raw = path.read_bytes()
    m = tflite.Model.GetRootAs(raw, 0)
    data = cli_json(path)
    assert len(data["subgraphs"]) == m.SubgraphsLength()
    tensor_buffers: set[int] = set()
    for si, sg in enumerate(data["subgraphs"]):
        bsg = m.Subgraphs(si)
        assert sg["inputs"] == bsg.InputsAsNumpy().tolist()
        assert sg["outputs"] == bsg.OutputsAsNumpy().tolist()
        assert len(sg["operators"]) == bsg.OperatorsLength()
        for oi, op in enumerate(sg["operators"]):
            assert op["opcode"] == _bindings_opcode(m, bsg.Operators(oi)), f"operator {oi}"
        assert len(sg["tensors"]) == bsg.TensorsLength()
        for ti, t in enumerate(sg["tensors"]):
            bt = bsg.Tensors(ti)
            assert t["name"] == (bt.Name() or b"").decode()  # absent name: empty
            assert t["buffer"] == bt.Buffer()
            if m.Buffers(bt.Buffer()).DataLength():
                tensor_buffers.add(bt.Buffer())
    # Constant bytes: distinct non-empty buffers the tensors point at (none of the corpus
    # stores buffers after the FlatBuffer, where DataLength would be 0).
    size = data["size"]
    assert size["constant_bytes"] == sum(m.Buffers(b).DataLength() for b in tensor_buffers)
    assert sum(r["bytes"] for r in size["by_dtype"]) == size["constant_bytes"]
    assert sum(r["bytes"] for r in size["by_op"]) == size["constant_bytes"]
    assert (size["constant_bytes"] + size["metadata_bytes"] + size["unreferenced_buffer_bytes"]
            + size["structure_bytes"]) == len(raw)


# ------------------------------------------------------------------------------------------------
# The shipped example
# ------------------------------------------------------------------------------------------------
def _build_fixtures_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "build_fixtures", ROOT / "tests" / "models" / "build_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_models_are_what_build_fixtures_writes() -> None:
    module = _build_fixtures_module()
    for path, build in module.OUTPUTS.items():
        assert path.read_bytes() == build(), f"{path} is stale: run tests/models/build_fixtures.py"


def test_example_runs_in_litert() -> None:
    it = litert(EXAMPLE)
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    rng = np.random.default_rng(0)
    for _ in range(3):
        it.set_tensor(inp["index"], rng.integers(-128, 128, size=(1, 16, 16, 1), dtype=np.int8))
        it.invoke()
        q = it.get_tensor(out["index"])
        assert q.shape == (1, 10) and q.dtype == np.int8
        scale, zero_point = out["quantization"]
        probs = (q.astype(np.float64) - zero_point) * scale
        assert abs(probs.sum() - 1.0) < 10 * scale  # a softmax, up to one LSB per class
        assert len(np.unique(q)) > 1  # not saturated to one value


def test_example_contents() -> None:
    data = cli_json(EXAMPLE)
    sg = data["subgraphs"][0]
    assert [op["opcode"] for op in sg["operators"]] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    (inp,) = sg["inputs"]
    assert sg["tensors"][inp]["shape"] == [1, 16, 16, 1]
    assert sg["tensors"][inp]["dtype"] == "INT8"
    conv = sg["operators"][0]
    assert conv["key_options"]["activation"] == "RELU"
    weights = sg["tensors"][conv["inputs"][1]]["quantization"]
    assert len(weights["scale"]) == 8 and weights["quantized_dimension"] == 0
    assert data["min_runtime_version"] == "1.14.0"
    assert [s["key"] for s in data["signatures"]] == ["serving_default"]
    assert data["quantization"]["scheme"] == "int8"


def test_inspect_example_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--example"]) == 0
    out = capsys.readouterr().out
    assert "tiny int8 CNN" in out and "DEPTHWISE_CONV_2D" in out and "1.14.0" in out


def test_mac_fixture_shapes_are_the_runtimes() -> None:
    """The MACs of the fixture come from declared shapes; LiteRT's Prepare recomputes every
    output shape at allocation, so equal shapes before and after mean the MACs are right."""
    it = litert(MAC_FIXTURE)
    before = {d["index"]: d["shape"].tolist() for d in it.get_tensor_details()}
    it.allocate_tensors()
    after = {d["index"]: d["shape"].tolist() for d in it.get_tensor_details()}
    assert {i: after[i] for i in before} == before  # allocation adds scratch tensors only
    data = cli_json(MAC_FIXTURE)
    ops = {op["opcode"]: op["macs"] for op in data["subgraphs"][0]["operators"]}
    assert set(ops) >= {"CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "BATCH_MATMUL"}
    assert all(ops[name] > 0 for name in MAC_OPS - {"DEPTHWISE_CONV_2D"})


# ------------------------------------------------------------------------------------------------
# Options, subgraph selection, JSON hygiene
# ------------------------------------------------------------------------------------------------
def test_subgraph_filter() -> None:
    data = cli_json(MAC_FIXTURE, "--subgraph", "1")
    assert [sg["index"] for sg in data["subgraphs"]] == [1]
    assert data["subgraphs"][0]["name"] == "aux"
    assert data["subgraph_count"] == 2


def test_subgraph_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["inspect", str(MAC_FIXTURE), "--subgraph", "2"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--subgraph 2" in err and "2 subgraphs" in err


def test_tensors_table_lists_tensors(capsys: pytest.CaptureFixture[str]) -> None:
    text = render(MAC_FIXTURE, 120, tensors=True)
    for name in ("conv/w", "tconv/output_shape", "flat/shape", "matmul", "sum"):
        assert name in text
    assert "conv/w" not in render(MAC_FIXTURE, 120, tensors=False)


def _grouped_conv_model(groups: int) -> bytes:
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", [1, 6, 6, 4], "FLOAT32")
    w = sg.tensor("w", [6, 3, 3, 4 // groups], "FLOAT32",
                  data=np.ones((6, 3, 3, 4 // groups), np.float32))
    y = sg.tensor("y", [1, 6, 6, 6], "FLOAT32")
    sg.operator("CONV_2D", [x, w, None], [y], {"padding": "SAME", "stride_w": 1, "stride_h": 1})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_macs_divide_by_groups(groups: int) -> None:
    model = load(_grouped_conv_model(groups))
    out_elements, kh, kw, in_channels = 1 * 6 * 6 * 6, 3, 3, 4
    assert operator_macs(model, 0, 0) == out_elements * kh * kw * in_channels // groups
    assert operator_macs(model, model.subgraphs[0], model.subgraphs[0].operators[0]) == \
        operator_macs(model, 0, 0)


def test_key_options_fold_pairs_and_drop_noise() -> None:
    model = load(EXAMPLE)
    conv, dw, pool, reshape, fc, softmax = model.subgraphs[0].operators
    assert key_options(conv) == {"stride": [2, 2], "padding": "SAME", "activation": "RELU"}
    assert "depth_multiplier" not in key_options(dw)  # 1: what every converter writes
    assert key_options(pool)["filter"] == [2, 2]
    assert "activation" not in key_options(pool)  # NONE
    assert key_options(reshape) == {"new_shape": [-1, 128]}
    assert key_options(softmax) == {}  # beta 1.0


def test_jsonable_has_no_nan() -> None:
    value = {"a": float("nan"), "b": [np.float32(np.inf), np.int64(3)], "c": b"\x00\xff",
             "d": np.array([1.5, np.nan])}
    out = jsonable(value)
    assert out["a"] is None and out["b"] == [None, 3] and out["d"] == [1.5, None]
    assert out["c"] == {"bytes": 2, "hex": "00ff", "truncated": False}
    json.dumps(out, allow_nan=False)


def test_non_finite_quantization_min_max_become_null() -> None:
    mb = ModelBuilder()
    sg = mb.subgraph()
    x = sg.tensor("x", [2], "FLOAT32", quant_min=[float("-inf")], quant_max=[float("nan")])
    y = sg.tensor("y", [2], "FLOAT32")
    sg.operator("RELU", [x], [y])
    sg.inputs, sg.outputs = [x], [y]
    data = inspect_model(load(mb.build())).to_dict()
    q = data["subgraphs"][0]["tensors"][0]["quantization"]
    assert q["min"] == [None] and q["max"] == [None]
    json.dumps(data, allow_nan=False)


def test_metadata_bytes_are_previewed() -> None:
    data = cli_json(MAC_FIXTURE)
    notes = data["metadata"]["notes"]
    assert notes["bytes"] == 180 and notes["truncated"] is True
    assert len(bytes.fromhex(notes["hex"])) == 48
    assert data["metadata"]["min_runtime_version"] == "2.3.0"
    assert bytes_preview(b"3.11.0") == {"bytes": 6, "utf8": "3.11.0", "truncated": False}


# ------------------------------------------------------------------------------------------------
# Quantization summary
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, scheme", [
    ("mlperf_tiny/ad01_fp32", "float"),
    ("mlperf_tiny/ad01_int8", "int8"),
    ("mlperf_tiny/model_ToyCar_quant", "hybrid"),  # dynamic-range: float FC, int8 weights
    ("mlperf_tiny/kws_ref_model_float32", "hybrid"),  # int8 conv weights despite its name
    ("mlperf_tiny/model_ToyCar_quant_fullint", "int8"),  # float I/O through QUANTIZE ops
])
def test_quantization_scheme_of_corpus_models(name: str, scheme: str) -> None:
    (path,) = [p for p in SHARED_MODEL_FILES if model_id(p) == name]
    assert cli_json(path)["quantization"]["scheme"] == scheme


def _fc_model(act: str, weights: str, fp16_dequantize: bool = False) -> bytes:
    mb = ModelBuilder()
    sg = mb.subgraph()
    quant = {} if act == "FLOAT32" else {"scale": 0.1, "zero_point": 0}
    x = sg.tensor("x", [1, 4], act, **quant)
    wq = {"scale": 0.05, "zero_point": 0} if weights == "INT8" else {}
    w = sg.tensor("w", [3, 4], weights, data=np.ones((3, 4), weights.lower()), **wq)
    if fp16_dequantize:
        w32 = sg.tensor("w32", [3, 4], "FLOAT32")
        sg.operator("DEQUANTIZE", [w], [w32])
        w = w32
    y = sg.tensor("y", [1, 3], act, **quant)
    sg.operator("FULLY_CONNECTED", [x, w, None], [y])
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


@pytest.mark.parametrize("act, weights, fp16, scheme", [
    ("FLOAT32", "FLOAT32", False, "float"),
    ("FLOAT32", "INT8", False, "hybrid"),
    ("FLOAT32", "FLOAT16", True, "fp16 weights"),
    ("INT16", "INT8", False, "int16x8"),
    ("INT8", "INT8", False, "int8"),
])
def test_quantization_scheme_of_built_models(act: str, weights: str, fp16: bool,
                                             scheme: str) -> None:
    report = inspect_model(load(_fc_model(act, weights, fp16)))
    assert report.quantization.scheme == scheme
    fc = report.subgraphs[0].operators[-1]
    assert fc.macs == 3 * 4


def test_quantization_granularity_counts() -> None:
    q = cli_json(EXAMPLE)["quantization"]
    # conv and depthwise weights per-channel, FC weights per-tensor; biases follow their weights
    assert (q["weights_per_channel"], q["weights_per_tensor"]) == (2, 1)
    assert q["per_channel"] == 4


# ------------------------------------------------------------------------------------------------
# Rendering helpers
# ------------------------------------------------------------------------------------------------
def test_short_name_keeps_head_and_tail() -> None:
    fused = "model/conv2d_1/Conv2D;model/conv2d_1/BiasAdd;model/conv2d_1/Relu"
    assert short_name(fused) == "model/conv2d_1/Conv2D;…"
    long = "a" * 30 + "MIDDLE" + "z" * 30
    s = short_name(long, 20)
    assert len(s) == 20 and s.startswith("aaa") and s.endswith("zzz") and "…" in s


def test_fmt_quant() -> None:
    assert fmt_quant(None) == ""
    assert fmt_quant(QuantInfo(scale=(0.5,), zero_point=(-128,), quantized_dimension=0)) == \
        "s=0.5 zp=-128"
    per_channel = QuantInfo(scale=(0.25, 0.5, 0.125), zero_point=(0, 0, 0), quantized_dimension=3)
    assert fmt_quant(per_channel) == "3ch@3 s=0.125..0.5 zp=0"
