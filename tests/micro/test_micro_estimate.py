"""``tflite_ref.micro`` as a library and as ``tflite-ref micro``: planner invariants, the order
search, the ``--json`` contract, rendering and plots. Exactness against TFLM itself is
``test_micro_vs_wheel.py``'s job."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import SHARED_MODEL_FILES, SHARED_MODELS, model_id
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

import tflite_ref
from tflite_ref.cli.main import main
from tflite_ref.cli.micro_cmd import plot_png, plot_svg, render_micro
from tflite_ref.errors import UsageError
from tflite_ref.micro import estimate
from tflite_ref.micro import ops as ops_table
from tflite_ref.micro.planner import Buffer, dependencies, greedy_plan, is_topological, search_order

MODELS = Path(__file__).parent / "models"
HELLO = SHARED_MODELS / "tflm" / "hello_world_int8.tflite"
VELA = SHARED_MODELS / "tflm" / "person_detect_vela.tflite"


# -- the greedy planner ---------------------------------------------------------------------------
def _overlap(a: Buffer, b: Buffer) -> bool:
    in_time = not (a.first > b.last or b.first > a.last)
    in_space = a.offset < b.offset + b.size and b.offset < a.offset + a.size
    return in_time and in_space


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 12), st.integers(0, 6)),
                min_size=1, max_size=25))
def test_greedy_plan_never_overlaps_live_buffers(specs: list[tuple[int, int, int]]) -> None:
    bufs = [Buffer("tensor", 0, i, n, first=f, last=f + d) for i, (n, f, d) in enumerate(specs)]
    head = greedy_plan(bufs)
    assert head == max(b.offset + b.size for b in bufs)
    assert all(b.offset % 16 == 0 and b.size % 16 == 0 for b in bufs)
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            assert not _overlap(a, b), (a, b)
    # a lower bound: at every step the live buffers must fit
    steps = range(min(b.first for b in bufs), max(b.last for b in bufs) + 1)
    assert head >= max(sum(b.size for b in bufs if b.first <= t <= b.last) for t in steps)


def test_offline_buffers_keep_their_offsets() -> None:
    bufs = [Buffer("tensor", 0, 0, 20, 0, 1, offline_offset=200),
            Buffer("tensor", 0, 1, 64, 1, 2), Buffer("tensor", 0, 2, 16, 0, 2)]
    assert greedy_plan(bufs) == 232  # 200 + align16(20); online ones fit below
    assert bufs[0].offset == 200 and bufs[1].offset == 0 and bufs[2].offset == 64


@settings(max_examples=50, deadline=None)
@given(st.integers(3, 9).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.lists(st.integers(0, n - 1), max_size=2), min_size=n, max_size=n),
    st.lists(st.integers(1, 200), min_size=n, max_size=n))))
def test_order_search_returns_a_valid_order_no_worse_than_tflms(case: tuple) -> None:
    n, raw_inputs, sizes = case
    # op i reads tensors produced by earlier ops (tensor k = output of op k)
    op_inputs = [[t for t in ins if t < i] for i, ins in enumerate(raw_inputs)]
    op_outputs = [[i] for i in range(n)]
    deps = dependencies(op_inputs, op_outputs)

    def cost(order: list[int]) -> int:
        pos = {op: s for s, op in enumerate(order)}
        bufs = []
        for k in range(n):
            readers = [pos[i] for i in range(n) if k in op_inputs[i]]
            bufs.append(Buffer("tensor", 0, k, sizes[k], pos[k], max([pos[k]] + readers)))
        return greedy_plan(bufs)

    order, best = search_order(n, deps, cost, budget=60)
    assert is_topological(order, deps)
    assert best == cost(order) <= cost(list(range(n)))


# -- estimates on real models ---------------------------------------------------------------------
@pytest.mark.parametrize("path", SHARED_MODEL_FILES, ids=model_id)
@pytest.mark.parametrize("target", ["host", "cortex-m"])
def test_estimate_is_consistent(path: Path, target: str) -> None:
    model = tflite_ref.load(str(path))
    est = estimate(model, target)
    f = est.flash
    assert f.constant_bytes + f.metadata_bytes + f.other_bytes == f.model_bytes == \
        path.stat().st_size
    assert est.tflm_version
    if est.arena is None:
        assert not est.allocates and (est.unsupported or est.hazards)
        return
    a = est.arena
    assert a.total == a.head + a.tail and a.minimum >= a.total and a.minimum % 16 == 0
    assert sum(t.bytes for t in a.tail_items) == a.tail
    assert max((p.offset + p.size for p in est.plan), default=0) == a.head
    o = est.order_search
    assert o is not None and o.saved >= 0 and o.head == a.head - o.saved
    assert sorted(o.order) == list(range(len(model.main.operators)))


def test_resolver_snippet_lists_each_op_once() -> None:
    est = estimate(tflite_ref.load(str(SHARED_MODELS / "tflm" / "micro_speech_quantized.tflite")))
    lines = est.resolver.splitlines()
    adds = [ln for ln in lines if ln.startswith("op_resolver.Add")]
    assert lines[0] == f"static tflite::MicroMutableOpResolver<{len(adds)}> op_resolver;"
    assert sorted(adds) == sorted(set(adds))
    known = {info.add for info in ops_table.BUILTINS.values()}
    assert all(a[len("op_resolver."):-3] in known for a in adds)
    assert "op_resolver.AddSoftmax();" in adds


def test_unknown_custom_op_gets_a_resolver_comment_and_a_reason() -> None:
    est = estimate(tflite_ref.load(str(MODELS / "unknown_custom.tflite")))
    assert not est.supported and "MyFancyOp" in est.unsupported[0].reason
    assert 'AddCustom("MyFancyOp"' in est.resolver


def test_cmsis_nn_needs_an_arm_target() -> None:
    model = tflite_ref.load(str(SHARED_MODELS / "tflm" / "person_detect.tflite"))
    with pytest.raises(UsageError):
        estimate(model, "host", kernels="cmsis-nn")
    ref = estimate(model, "cortex-m")
    cmsis = estimate(model, "cortex-m", kernels="cmsis-nn")
    assert cmsis.kernels == "cmsis-nn" and cmsis.arena and ref.arena
    assert cmsis.arena.tail != ref.arena.tail  # CMSIS-NN OpData sizes differ
    assert any(o.scratch for o in cmsis.operators if o.opcode == "CONV_2D")


def test_json_contract() -> None:
    d = estimate(tflite_ref.load(str(HELLO))).to_json()
    for key in ("target", "kernels", "supported", "unsupported", "hazards", "arena",
                "tflm_version", "plan", "flash_bytes", "macs", "resolver"):
        assert key in d
    assert set(d["arena"]) >= {"head", "tail", "total", "minimum"}
    assert set(d["plan"][0]) >= {"tensor", "offset", "size", "first_op", "last_op"}
    json.dumps(d)
    bad = estimate(tflite_ref.load(str(VELA))).to_json()
    assert bad["supported"] is False and bad["arena"] is None
    assert set(bad["unsupported"][0]) >= {"operator", "opcode", "version", "reason"}


# -- the command line -----------------------------------------------------------------------------
def test_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["micro", str(HELLO)]) == 0
    out = capsys.readouterr().out
    est = estimate(tflite_ref.load(str(HELLO)))
    assert est.arena is not None
    assert f"alignas(16) uint8_t tensor_arena[{est.arena.minimum}];" in out
    assert "op_resolver.AddFullyConnected();" in out
    assert "supported" in out


def test_cli_json_and_exit_code_for_a_rejected_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["micro", str(VELA), "--json", "--target", "cortex-m"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["target"] == "cortex-m" and not d["supported"]
    assert "ethos-u" in d["unsupported"][0]["reason"]


def test_cli_bad_request_exits_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["micro", str(HELLO), "--kernels", "cmsis-nn"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["micro", str(HELLO), "--plot", str(tmp_path / "plan.gif")])
    assert exc.value.code == 2


@pytest.mark.parametrize("suffix", [".svg", ".html", ".png"])
def test_cli_plots(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / f"plan{suffix}"
    assert main(["micro", str(MODELS / "while_float.tflite"), "--plot", str(target)]) == 0
    data = target.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in data
    elif suffix == ".svg":
        root = ET.fromstring(data)
        est = estimate(tflite_ref.load(str(MODELS / "while_float.tflite")))
        rects = [e for e in root.iter() if e.tag.endswith("rect")]
        assert len(rects) == len(est.plan) + 1  # + the background
    else:
        assert b"<svg" in data and b"minimum arena" in data


def test_render_to_a_string_console() -> None:
    est = estimate(tflite_ref.load(str(MODELS / "softmax_abort.tflite")))
    console = Console(file=io.StringIO(), width=100, color_system=None)
    render_micro(est, console, "softmax_abort.tflite")
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "NOT supported" in text and "crash:" in text and "SIGABRT" in text
    assert plot_svg(est).startswith("<svg") and plot_png(est).startswith(b"\x89PNG")


def test_fixtures_are_what_build_models_writes() -> None:
    import build_models

    built = build_models.build_all()
    on_disk = {p.stem for p in MODELS.glob("*.tflite")}
    assert on_disk == set(built), "run python tests/micro/build_models.py"
    for name, data in built.items():
        assert (MODELS / f"{name}.tflite").read_bytes() == data, name
