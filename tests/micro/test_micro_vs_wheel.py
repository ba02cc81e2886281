"""``tflite_ref.micro.estimate`` against the ``tflite-micro`` wheel, live, model by model.

For every model of the shared corpus and every generated fixture (``build_models.py``):

- ``allocates`` (and, for the corpus, ``supported``) equals whether the wheel's interpreter
  allocates the model, and every rejection comes with a reason;
- for every model the wheel allocates, ``--target host`` predicts ``head``, ``tail``, ``total``
  (``print_allocations()`` with a 64 MiB arena) and ``minimum`` (the smallest arena that works,
  by bisection in 16-byte steps) exactly.

The wheel runs in a child process (TFLM aborts on some models). The bisection starts at the
prediction, so a right prediction costs two extra attempts (``minimum`` works, ``minimum - 16``
does not; the search assumes larger arenas never fail).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SHARED_MODEL_FILES, model_id
from tflm_wheel import measure

import tflite_ref
from tflite_ref.micro import estimate
from tflite_ref.micro.targets import WHEEL_VERSION


def _wheel_version() -> str:
    from importlib.metadata import version

    return version("tflite-micro")


VERSION_NOTE = (f"host tables were measured on tflite-micro {WHEEL_VERSION}; installed: "
                f"{_wheel_version()}")

GENERATED = sorted((Path(__file__).parent / "models").glob("*.tflite"))
# The repository's other models (the shipped example, other tests' fixtures) count too.
_ROOT = Path(__file__).resolve().parents[2]
REPO = sorted(p for p in list((_ROOT / "tflite_ref").rglob("*.tflite"))
              + list((_ROOT / "tests").rglob("*.tflite")) if p not in GENERATED)
ALL = [pytest.param(p, id=model_id(p)) for p in SHARED_MODEL_FILES + GENERATED + REPO]


@pytest.mark.parametrize("path", ALL)
def test_host_estimate_matches_the_wheel(path: Path) -> None:
    est = estimate(tflite_ref.load(str(path)), target="host", search=False)
    guess = est.arena.minimum if est.arena else None
    wheel = measure(path, guess)
    assert est.allocates == wheel.allocates, (
        f"predicted allocates={est.allocates} "
        f"({[u.reason for u in est.unsupported] + [h.message for h in est.hazards]}); "
        f"wheel: {wheel.error or 'allocates'} ({VERSION_NOTE})")
    if path in SHARED_MODEL_FILES:  # "Done when": supported == whether TFLM allocates it
        assert est.supported == wheel.allocates
    if not wheel.allocates:
        reasons = [u.reason for u in est.unsupported] + [h.message for h in est.hazards
                                                          if h.aborts]
        assert reasons and all(reasons), "a rejection needs a reason"
        if "signal" in wheel.error:  # TFLM aborted: we must have predicted the crash
            assert any(h.aborts for h in est.hazards), wheel.error
        else:  # the op TFLM names is the op we blame
            blamed = est.unsupported[0]
            assert blamed.opcode.split(":")[0] in wheel.error or blamed.opcode == "", (
                blamed, wheel.error)
        return
    assert est.arena is not None
    got = (est.arena.head, est.arena.tail, est.arena.total, est.arena.minimum)
    want = (wheel.head, wheel.tail, wheel.total, wheel.minimum)
    assert got == want, f"(head, tail, total, minimum) predicted {got}, wheel {want} " \
                        f"({VERSION_NOTE})"


def test_order_search_is_what_tflm_measures() -> None:
    """The order the search finds for branches_float, written to a file
    (branches_float_reordered), gives TFLM exactly the head the search predicted."""
    models = Path(__file__).parent / "models"
    bad = tflite_ref.load(str(models / "branches_float.tflite"))
    est = estimate(bad, "host")
    assert est.order_search is not None and est.order_search.saved > 0
    assert est.order_search.order != tuple(range(len(bad.main.operators)))
    good = models / "branches_float_reordered.tflite"
    wheel = measure(good, estimate(tflite_ref.load(str(good)), "host").arena.minimum)
    assert wheel.head == est.order_search.head
    assert est.arena is not None and est.arena.head - est.order_search.saved == wheel.head
