"""The fuzzing harness in the test suite: it classifies misbehaviour correctly, its mutants are
deterministic, and a bounded deterministic run (500 mutants of the small corpus models through
``load``, ``inspect --json``, ``run --json`` and ``micro --json``) ends with no uncaught
exception, crash, timeout or memory-limit hit, and a locator on every error.

The long run is ``python benchmarks/fuzz.py --count 10000`` (see its docstring).
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzz  # noqa: E402

SMALL = 60_000  # bytes: the 12 small models, so that 500 mutants take well under a minute
BOUNDED_SECONDS = 60


def test_harness_classifies_misbehaviour(tmp_path: Path) -> None:
    model = min(fuzz.corpus(fuzz.DEFAULT_CORPUS), key=lambda b: len(b.data))
    recs = fuzz.run_commands(["load", "_crash", "_hang", "_memory", "_exit", "inspect"],
                             str(model.path), str(tmp_path), timeout=6.0, memory=2 * fuzz.GiB)
    got = [(r["command"], r["outcome"]) for r in recs]
    assert got == [("load", "accepted"), ("_crash", "crash"), ("_hang", "timeout"),
                   ("_memory", "memory"), ("_exit", "crash"), ("inspect", "accepted")]


def test_mutants_are_deterministic() -> None:
    bases = fuzz.corpus(fuzz.DEFAULT_CORPUS, SMALL)
    for index in range(40):
        a, b = fuzz.make_mutant(7, index, bases), fuzz.make_mutant(7, index, bases)
        assert (a.base, a.strategy, a.detail, a.data) == (b.base, b.strategy, b.detail, b.data)


def test_structure_aware_mutations_cover_every_site_kind() -> None:
    bases = fuzz.corpus(fuzz.DEFAULT_CORPUS, SMALL)
    kinds = {s.kind for b in bases for s in b.sites}
    assert kinds == {"uoffset", "soffset", "vtable_size", "table_size", "vtable_entry",
                     "vector_length", "string_length", "union_type", "scalar", "vector_data"}


def test_semantic_rebuild_round_trips() -> None:
    import tflite_ref

    for base in fuzz.corpus(fuzz.DEFAULT_CORPUS, SMALL):
        again = tflite_ref.load(fuzz.builder_from_model(base.model).build())
        assert [op.opcode for op in again.main.operators] == \
               [op.opcode for op in base.model.main.operators]


def test_bounded_fuzz_run() -> None:
    cfg = fuzz.Config(seed=0, max_bytes=SMALL, minimize=False)
    start = time.perf_counter()
    s = fuzz.campaign(500, cfg, workers=2)
    elapsed = time.perf_counter() - start
    report = io.StringIO()
    fuzz.render(s, report)
    assert s.mutants == 500 and not s.harness_errors, report.getvalue()
    assert s.failure_count == 0, report.getvalue()
    assert s.errors and s.locator_share == 1.0, report.getvalue()
    assert s.outcomes.get("accepted") and s.outcomes.get("error ModelFormatError")
    # A minute on an idle 2-core machine; a loaded CI runner gets twice that before it counts.
    assert elapsed < 2 * BOUNDED_SECONDS, report.getvalue()
