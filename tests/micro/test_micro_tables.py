"""The cortex-m (and host) tables against the shared doc ``tflm-arena.md``, which measured them.

- §6.2 struct sizes, §6.3 builtin-data sizes and §6.4 kernel ``init`` sizes: our tables must
  hold the doc's values (the 32-bit ones come from probes compiled with arm-none-eabi-gcc 12.2,
  short enums; the host ones were checked against the wheel).
- §11.3: the doc ran a 32-bit Arm build of TFLM under qemu on the corpus; ``--target
  cortex-m`` must reproduce its head/total (recording allocator) and ``arena_used_bytes()``
  (plain ``MicroInterpreter``) for every corpus model we have.

The numbers are read from the doc at test time, not copied here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT, SHARED_MODELS

import tflite_ref
from tflite_ref.micro import CORTEX_M, HOST, estimate
from tflite_ref.micro import ops as ops_table

DOC = ROOT.parent / "shared" / "docs" / "tflm-arena.md"


def _section(title_start: str, next_start: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(title_start)
    return text[start:text.index(next_start, start + 1)]


def _rows(section: str) -> list[list[str]]:
    rows = []
    for line in section.splitlines():
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        cells = [c.strip().replace("*", "").replace("`", "") for c in line.strip("|").split("|")]
        rows.append(cells)
    return rows[1:]  # drop the header


def _ints(cell: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", cell)]


_STRUCT_NAMES = {
    "SingleArenaBufferAllocator / Recording…": ["SingleArenaBufferAllocator",
                                                "RecordingSingleArenaBufferAllocator"],
    "MicroAllocator / RecordingMicroAllocator": ["MicroAllocator", "RecordingMicroAllocator"],
    "TfLiteNode / NodeAndRegistration": [None, "NodeAndRegistration"],
    "ScratchBufferHandle / ScratchBufferRequest": ["ScratchBufferHandle", "ScratchBufferRequest"],
    "MicroResourceVariables / MicroResourceVariable": ["MicroResourceVariables",
                                                       "MicroResourceVariable"],
}


def test_struct_sizes_are_the_docs() -> None:
    """§6.2: ARM column (arm-none-eabi-gcc, short enums) for cortex-m, the wheel's for host."""
    checked = 0
    for cells in _rows(_section("### 6.2 Struct sizes", "### 6.3")):
        name, wheel, arm = cells[0], cells[1], cells[3]
        names = _STRUCT_NAMES.get(name) or [re.sub(r"\s*\(.*\)", "", name)]
        for target, cell in ((CORTEX_M, arm), (HOST, wheel)):
            values = [v.strip() for v in cell.split(" / ")] if len(names) > 1 else [cell]
            if len(names) > 1 and len(values) == 1:  # "28/32": one number per name
                values = values[0].split("/")
            for struct_name, value in zip(names, values, strict=False):
                if struct_name is None or struct_name not in target.structs:
                    continue
                nums = _ints(value)
                size, align = target.structs[struct_name]
                assert size == nums[0], (target.name, struct_name, value)
                if len(names) == 1 and len(nums) > 1:
                    assert align == nums[1], (target.name, struct_name, value)
                checked += 1
    assert checked >= 25


def test_builtin_data_sizes_are_the_docs() -> None:
    """§6.3: every op's builtin-data struct, host wheel and arm-gcc short enums columns."""
    checked = 0
    for cells in _rows(_section("### 6.3 Builtin data", "### 6.4")):
        ops, host, arm = cells[0], cells[2], cells[4]
        for op in (o.strip() for o in ops.split(",")):
            info = ops_table.BUILTINS[op]
            assert info.builtin_data is not None, op
            assert list(info.builtin_data["host"]) == _ints(host), (op, host)
            assert list(info.builtin_data["arm"]) == _ints(arm), (op, arm)
            checked += 1
    assert checked >= 45


def test_init_sizes_are_the_docs() -> None:
    """§6.4: kernel OpData sizes (init, or Prepare where the doc says so)."""
    checked = 0
    for cells in _rows(_section("### 6.4 Kernel `init`", "Zero-alloc kernels")):
        ops, host, arm = cells[0], cells[2], cells[3]
        if ops.startswith("CUSTOM"):
            continue
        in_prepare = "in Prepare" in ops
        for op in (o.strip() for o in re.sub(r"\(.*?\)", "", ops).split(",")):
            if in_prepare:
                sizes = ops_table.PREPARE_OPDATA[op]
            else:
                init = ops_table.BUILTINS[op].init
                assert init is not None, op
                sizes = init
            assert sizes["host"] == _ints(host)[0], (op, host)
            assert sizes["arm"] == _ints(arm)[0], (op, arm)
            checked += 1
    assert checked >= 50


def _arm_measurements() -> list[tuple[Path, tuple[int, int, int]]]:
    out = []
    for cells in _rows(_section("### 11.3 32-bit ARM", "## 13.")):
        name = cells[0]
        corpus, _, file = name.partition("/")
        path = SHARED_MODELS / {"tiny": "mlperf_tiny"}.get(corpus, corpus) / file
        if path.exists():
            head, total = _ints(cells[1])
            out.append((path, (head, total, _ints(cells[3])[0])))
    return out


ARM = _arm_measurements()


@pytest.mark.parametrize("path,measured", ARM, ids=[f"{p.parent.name}/{p.stem}" for p, _ in ARM])
def test_cortex_m_reproduces_the_qemu_arm_build(path: Path, measured: tuple[int, int, int]
                                                ) -> None:
    model = tflite_ref.load(str(path))
    recording = estimate(model, "cortex-m", allocator="recording", search=False).arena
    plain = estimate(model, "cortex-m", search=False).arena
    assert recording is not None and plain is not None
    assert (recording.head, recording.total, plain.total) == measured


def test_arm_measurements_cover_the_corpus() -> None:
    assert len(ARM) >= 25
