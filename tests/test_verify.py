"""The FlatBuffer verifier: its layout matches ``schema/schema.fbs``, it accepts every real model,
and random damage to real models yields only tflite_ref's own errors (a small, deterministic run;
the long fuzzing harness lives in ``benchmarks/``)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import ROOT, SHARED_MODEL_FILES, model_id

import tflite_ref
from tflite_ref.errors import TFLiteRefError
from tflite_ref.model import fbs
from tflite_ref.model._layout import LAYOUT
from tflite_ref.model.schema import BuiltinOptions, BuiltinOptions2
from tflite_ref.model.verify import verify_flatbuffer


def test_shipped_layout_is_generated_from_the_schema() -> None:
    fresh = fbs.parse((ROOT / "schema" / "schema.fbs").read_text(encoding="utf-8"))
    assert fresh == LAYOUT, "regenerate: python -m tflite_ref.model.fbs schema/schema.fbs"


def test_shipped_enums_are_generated_from_the_schema() -> None:
    fresh = fbs.render_enums(fbs.parse_enums((ROOT / "schema" / "schema.fbs").read_text(
        encoding="utf-8")), "schema/schema.fbs")
    shipped = (ROOT / "tflite_ref" / "model" / "_enums.py").read_text(encoding="utf-8")
    assert fresh == shipped, \
        "regenerate: python -m tflite_ref.model.fbs --enums schema/schema.fbs"


def test_layout_unions_agree_with_the_bindings() -> None:
    for union, enum in (("BuiltinOptions", BuiltinOptions), ("BuiltinOptions2", BuiltinOptions2)):
        members = {int(m): m.name for m in enum if m.name != "NONE"}
        assert LAYOUT["unions"][union] == members


@pytest.mark.parametrize("path", SHARED_MODEL_FILES, ids=model_id)
def test_real_models_verify(path: Path) -> None:
    assert verify_flatbuffer(path.read_bytes()) > 0


@pytest.mark.parametrize("name", ["tflm/hello_world_int8", "mlperf_tiny/kws_ref_model",
                                  "tflm/keyword_scrambled"])
def test_random_damage_gives_only_our_errors(name: str) -> None:
    data = next(p for p in SHARED_MODEL_FILES if model_id(p) == name).read_bytes()
    rnd = random.Random(name)
    outcomes = {"accepted": 0, "rejected": 0}
    for _ in range(150):
        mutant = bytearray(data)
        kind = rnd.randrange(3)
        if kind == 0:  # flip bytes
            for _ in range(rnd.randint(1, 8)):
                mutant[rnd.randrange(len(mutant))] = rnd.randrange(256)
        elif kind == 1:  # extreme 32-bit words
            pos = rnd.randrange(0, len(mutant) - 4) & ~3
            mutant[pos:pos + 4] = rnd.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x80",
                                              b"\xff\xff\xff\x7f", b"\0\0\0\0"])
        else:  # truncate
            del mutant[rnd.randrange(len(mutant)):]
        try:
            tflite_ref.load(bytes(mutant))
            outcomes["accepted"] += 1
        except TFLiteRefError:
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 0
