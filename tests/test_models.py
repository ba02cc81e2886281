"""Whole-model tests: every real model in ``../shared/models``, every tensor, against the runtimes.

- ``emulate="tflite"``: every tensor LiteRT (``BUILTIN_REF``, ``experimental_preserve_all_tensors``)
  exposes must equal ours — integers exactly, floats bit for bit too (the float kernels add in
  the reference kernels' order) except in the models of ``FLOAT_ORDER_DIFFERS``, where floats
  agree within 1e-3 of the tensor's magnitude — and the outputs again from a run without
  preserve_all_tensors.
- ``emulate="tflm"``: the outputs of TFLite Micro (it exposes no intermediates), the same way.

Native runtimes run in a child process: LiteRT corrupts its heap on some files, TFLM aborts on
others; such a case is reported in the failure message, not a crash of the test session.

Models whose operators belong to later work (recurrent/stateful ops, hybrid quantization, custom
ops) are listed in ``NOT_YET`` with the operator that is missing; for them the test checks that
tflite_ref says so loudly at ``allocate_tensors()`` instead of computing something wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_MODEL_FILES, model_id
from harness import assert_tensor_matches, random_inputs
from native import run_native

import tflite_ref
from tflite_ref.errors import UnsupportedOpError

# model id -> the operator tflite_ref does not run yet (and why), checked by test_not_yet_*.
NOT_YET = {
    "tflm/person_detect_vela": "CUSTOM:ethos-u",  # an Ethos-U NPU command stream; no host runtime
}
# Hybrid models (float activations, int8 weights): TFLite Micro refuses them at Prepare, so they
# are compared with LiteRT only (test_tflm_refuses_what_we_list keeps this honest).
TFLM_REFUSES = {"mlperf_tiny/model_ToyCar_quant", "mlperf_tiny/kws_ref_model_float32"}
# LiteRT's interpreter builder refuses this file (per-axis bias quantization with
# quantized_dimension 3 on rank-1 tensors); TFLite Micro runs it.
LITERT_REFUSES = {"tflm/person_detect"}
# SVDF with an int8 state tensor: LiteRT's kernel assumes int16 state, reads and writes out of
# bounds and corrupts its heap; TFLite Micro runs it. tflite_ref refuses it under emulate="tflite".
LITERT_CRASHES = {"tflm/keyword_scrambled_8bit"}
# TFLite Micro's signal-processing custom ops (the micro_speech audio front end): LiteRT has no
# kernels for them, so they are compared with TFLM only, and emulate="tflite" refuses them.
TFLM_ONLY = {"tflm/audio_preprocessor_float", "tflm/audio_preprocessor_int8"}

RUNNABLE = [p for p in SHARED_MODEL_FILES if model_id(p) not in NOT_YET]
NOT_YET_FILES = [p for p in SHARED_MODEL_FILES if model_id(p) in NOT_YET]
FLOAT_RTOL = 1e-3  # whole model: relative to the tensor's magnitude
# Models whose float tensors are not bit for bit, and the kernel that sums in another order.
# None: every shared model's float tensors are bit for bit against LiteRT and TFLite Micro.
FLOAT_ORDER_DIFFERS: dict[str, str] = {}


def _float_tolerance(path: Path) -> dict[str, float | bool]:
    if model_id(path) in FLOAT_ORDER_DIFFERS:
        return {"rtol": FLOAT_RTOL, "atol": 1e-6, "magnitude_relative": True}
    return {"rtol": 0.0, "atol": 0.0}


def _inputs(path: Path, seed: int = 0) -> list[np.ndarray]:
    return random_inputs(path.read_bytes(), np.random.default_rng(seed))


def _ours(path: Path, inputs: list[np.ndarray], emulate: str) -> tflite_ref.Interpreter:
    it = tflite_ref.Interpreter(model_path=str(path), emulate=emulate)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it


@pytest.mark.parametrize("path", [p for p in RUNNABLE
                                  if model_id(p) not in LITERT_REFUSES | LITERT_CRASHES | TFLM_ONLY],
                         ids=model_id)
def test_every_tensor_matches_litert(path: Path) -> None:
    inputs = _inputs(path)
    ref = run_native("litert", path, inputs)
    assert ref.ok, f"LiteRT failed on {model_id(path)}: {ref.error}"
    ours = _ours(path, inputs, "tflite")
    sg = ours.model.subgraphs[0]
    # An operator's `intermediates` (LSTM gate scales) carry quantization only; no kernel writes them.
    scratch = {i for op in sg.operators for i in op.intermediates}
    compared = 0
    for key, value in ref.tensors.items():
        ti = int(key[1:])
        if ti >= len(sg.tensors) or ti in scratch:
            continue  # LiteRT's own temporaries (kernel scratch tensors) come after the model's
        t = sg.tensors[ti]
        if t.data is not None and not t.is_variable:
            continue  # constants are the file's bytes on both sides
        producer = next((f"operator {op.index} {op.opcode}" for op in sg.operators
                         if ti in op.outputs), "input")
        assert_tensor_matches(ours.get_tensor(ti), value, f"tensor {ti} {t.name!r} ({producer})",
                              **_float_tolerance(path))
        compared += 1
    assert compared >= len(sg.operators)  # every operator's output was compared

    plain = run_native("litert-outputs", path, inputs)
    assert plain.ok, plain.error
    for k, ti in enumerate(sg.outputs):
        assert_tensor_matches(ours.get_tensor(ti), plain.tensors[f"o{k}"], f"output {k}",
                              **_float_tolerance(path))


@pytest.mark.parametrize("path", [p for p in RUNNABLE if model_id(p) not in TFLM_REFUSES],
                         ids=model_id)
def test_outputs_match_tflm(path: Path) -> None:
    inputs = _inputs(path, seed=1)
    ref = run_native("tflm", path, inputs)
    assert ref.ok, f"TFLite Micro failed on {model_id(path)}: {ref.error}"
    ours = _ours(path, inputs, "tflm")
    sg = ours.model.subgraphs[0]
    for k, ti in enumerate(sg.outputs):
        mine = ours.get_tensor(ti)
        theirs = ref.tensors[f"o{k}"].reshape(mine.shape)
        assert_tensor_matches(mine, theirs, f"output {k} tensor {ti} {sg.tensors[ti].name!r}",
                              **_float_tolerance(path))


@pytest.mark.parametrize("mid", sorted(LITERT_CRASHES))
def test_litert_crash_is_reported_and_we_refuse_to_guess(mid: str) -> None:
    """The native crash stays in its child process; our tflite emulation says why it won't run."""
    path = next(p for p in SHARED_MODEL_FILES if model_id(p) == mid)
    res = run_native("litert", path, _inputs(path))
    assert not res.ok, "LiteRT ran it: compare it instead of listing it as a crash"
    with pytest.raises(UnsupportedOpError, match="INT8"):
        tflite_ref.Interpreter(model_path=str(path)).allocate_tensors()


@pytest.mark.parametrize("mid", sorted(TFLM_REFUSES))
def test_tflm_refuses_what_we_list(mid: str) -> None:
    path = next(p for p in SHARED_MODEL_FILES if model_id(p) == mid)
    res = run_native("tflm", path, _inputs(path))
    assert not res.ok and "TFLM failed to allocate tensors" in res.error, res.error


@pytest.mark.parametrize("mid", sorted(TFLM_ONLY))
def test_tflm_only_models(mid: str) -> None:
    """LiteRT cannot resolve these custom ops; our LiteRT emulation says so instead of guessing."""
    path = next(p for p in SHARED_MODEL_FILES if model_id(p) == mid)
    res = run_native("litert", path, _inputs(path))
    assert not res.ok and "unresolved custom op" in res.error, res.error
    with pytest.raises(UnsupportedOpError, match="Signal"):
        tflite_ref.Interpreter(model_path=str(path)).allocate_tensors()


def test_float_order_differs_where_we_list() -> None:
    """Keeps FLOAT_ORDER_DIFFERS honest.  It lists no model: the float kernels of every shared
    model add in their runtime's order, and the whole-model tests above demand the same bits.
    A model listed here must be one whose floats really differ, checked by a test run on it --
    not by a parametrized test left without cases."""
    assert FLOAT_ORDER_DIFFERS == {}, (
        f"{sorted(FLOAT_ORDER_DIFFERS)} listed as not bit for bit: add a test showing that "
        "their float tensors differ from LiteRT's, and say why in the entry")


def test_litert_refuses_what_we_list() -> None:
    """Keeps LITERT_REFUSES honest: if LiteRT starts accepting the file, compare it instead."""
    for mid in LITERT_REFUSES:
        path = next(p for p in SHARED_MODEL_FILES if model_id(p) == mid)
        res = run_native("litert", path, _inputs(path))
        assert not res.ok and "quantized_dimension" in res.error, res.error


@pytest.mark.parametrize("path", NOT_YET_FILES, ids=model_id)
def test_not_yet_supported_models_say_so(path: Path) -> None:
    it = tflite_ref.Interpreter(model_path=str(path))
    with pytest.raises(UnsupportedOpError) as info:
        it.allocate_tensors()
    assert NOT_YET[model_id(path)] in str(info.value)
