"""Custom operators: the plug-in API (``tflite_ref.register_kernel``), the one-line error for a
custom operator without a kernel, and ``TFLite_Detection_PostProcess``, the custom kernel we ship.

Detection post-processing is compared with LiteRT (``BUILTIN_REF``, which has it built in) bit
for bit -- boxes, classes, scores and the count -- over float and uint8 inputs, fast and regular
NMS, one or several classes per detection, with scores quantized so that ties are common (the
order of equal scores is where implementations differ).  Regular NMS is compared with LiteRT
running one thread: with several, LiteRT hands classes to worker threads dynamically and may
order equal scores of different classes otherwise (see ``kernels/detection.py``).  Against
TFLite Micro: float inputs (it has no uint8 path).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from harness import assert_matches_litert, assert_matches_tflm, part2_models, run_ours

import tflite_ref
from tflite_ref.errors import (
    KernelRuntimeError,
    ModelValidationError,
    UnsupportedOpError,
    UsageError,
)
from tflite_ref.kernels.registry import OpContext

M = part2_models()


# =============================================================================================
# Plug-ins
# =============================================================================================
@pytest.fixture
def my_scale() -> Iterator[list[Any]]:
    """Registers ``MyScale`` (y = alpha * x) for one test; yields what prepare was given."""
    seen: list[Any] = []

    def prepare(ctx: OpContext) -> np.float32:
        seen.append(ctx.custom_options)
        ctx.set_output_shape(0, ctx.input_shape(0))
        return np.float32(ctx.custom_options["alpha"])

    def eval(alpha: np.float32, x: np.ndarray) -> np.ndarray:
        return (x * alpha).astype(np.float32)

    tflite_ref.register_kernel("MyScale", prepare, eval)
    try:
        yield seen
    finally:
        tflite_ref.unregister_kernel("MyScale")


def test_user_registered_kernel_runs_the_model(my_scale: list[Any]) -> None:
    x = np.array([[1.0, -2.0, 0.5], [3.0, -0.25, 0.0]], np.float32)
    it = run_ours(M.fixture("custom_scale"), [x])
    assert my_scale == [{"alpha": 2.5}]
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]),
                                  np.maximum(x * np.float32(2.5), 0))
    assert tflite_ref.custom_kernels()["MyScale"] == "plug-in"
    it = run_ours(M.fixture("custom_scale"), [x], "tflm")  # registered for both emulations
    assert it.get_tensor(it.get_output_details()[0]["index"])[0, 0] == 2.5


def test_prepare_none_passes_the_options() -> None:
    tflite_ref.register_kernel("MyScale", None,
                               lambda opts, x: (x * np.float32(opts["alpha"])).astype(x.dtype))
    try:
        it = run_ours(M.fixture("custom_scale"), [np.ones((2, 3), np.float32)])
        assert it.get_tensor(it.get_output_details()[0]["index"]).tolist() == [[2.5] * 3] * 2
    finally:
        tflite_ref.unregister_kernel("MyScale")


def test_unknown_custom_op_is_a_one_line_error_naming_it() -> None:
    it = tflite_ref.Interpreter(model_content=M.fixture("unknown_custom"))
    with pytest.raises(UnsupportedOpError) as info:
        it.allocate_tensors()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("subgraph 0, operator 0 (CUSTOM:NoSuchOp): custom operator "
                              "'NoSuchOp' has no kernel")
    assert "tflite_ref.register_kernel('NoSuchOp', prepare, eval)" in message


def test_unregistered_kernel_is_unknown_again(my_scale: list[Any]) -> None:
    tflite_ref.unregister_kernel("MyScale")
    try:
        with pytest.raises(UnsupportedOpError, match="'MyScale' has no kernel"):
            tflite_ref.Interpreter(model_content=M.fixture("custom_scale")).allocate_tensors()
    finally:
        tflite_ref.register_kernel("MyScale", None, lambda o, x: x)  # for the fixture's cleanup


def test_registration_rules() -> None:
    ident = lambda data, x: x
    tflite_ref.register_kernel("Twice", None, ident)
    try:
        with pytest.raises(UsageError, match="already has a kernel .registered by a plug-in.; "
                                             "pass replace=True"):
            tflite_ref.register_kernel("Twice", None, ident)
        tflite_ref.register_kernel("Twice", None, ident, replace=True)
    finally:
        tflite_ref.unregister_kernel("Twice")
    with pytest.raises(UsageError, match="registered by tflite_ref itself"):
        tflite_ref.register_kernel("TFLite_Detection_PostProcess", None, ident)
    with pytest.raises(UsageError, match="no plug-in kernel to remove"):
        tflite_ref.unregister_kernel("TFLite_Detection_PostProcess")
    with pytest.raises(UsageError, match="emulate must name some of"):
        tflite_ref.register_kernel("X", None, ident, emulate="tpu")
    with pytest.raises(UsageError, match="non-empty string"):
        tflite_ref.register_kernel("", None, ident)


def test_replacing_a_shipped_kernel_and_restoring_it() -> None:
    data = M.detection(dtype="FLOAT32")
    tflite_ref.register_kernel("TFLite_Detection_PostProcess", None,
                               lambda o, b, s, a: (np.zeros((1, 10, 4), np.float32),
                                                   np.zeros((1, 10), np.float32),
                                                   np.zeros((1, 10), np.float32),
                                                   np.full(1, 42, np.float32)), replace=True)
    try:
        it = run_ours(data, _detection_inputs(data, 0))
        assert it.get_tensor(it.get_output_details()[3]["index"])[0] == 42
    finally:
        tflite_ref.unregister_kernel("TFLite_Detection_PostProcess")
    assert tflite_ref.custom_kernels()["TFLite_Detection_PostProcess"] == "built-in"
    assert_matches_litert(data, _detection_inputs(data, 0))


def test_plugin_restricted_to_one_emulation() -> None:
    tflite_ref.register_kernel("MyScale", None, lambda o, x: x, emulate="tflite")
    try:
        run_ours(M.fixture("custom_scale"), [np.ones((2, 3), np.float32)])
        with pytest.raises(UnsupportedOpError, match="no emulation of 'tflm'"):
            tflite_ref.Interpreter(model_content=M.fixture("custom_scale"),
                                   emulate="tflm").allocate_tensors()
    finally:
        tflite_ref.unregister_kernel("MyScale")


@pytest.mark.parametrize("eval_fn,pattern", [
    (lambda o, x: 1 / 0, (r"the eval function registered for custom operator 'MyScale' raised "
                          r"ZeroDivisionError")),
    (lambda o, x: x.astype(np.float64), r"returned output 0 as float64; tensor 1 'y' is FLOAT32"),
    (lambda o, x: x[:1], (r"returned output 0 with shape \(1, 3\), prepare planned \(2, 3\); "
                          r"call ctx.set_output_shape\(\)")),
    (lambda o, x: (x, x), r"returned 2 outputs, the operator has 1"),
])
def test_plugin_failures_name_the_operator(eval_fn: Any, pattern: str) -> None:
    tflite_ref.register_kernel("MyScale", None, eval_fn)
    try:
        it = tflite_ref.Interpreter(model_content=M.fixture("custom_scale"))
        it.allocate_tensors()
        it.set_tensor(0, np.ones((2, 3), np.float32))
        with pytest.raises(KernelRuntimeError, match=r"subgraph 0, operator 0 \(CUSTOM:MyScale\)"
                                                     r": .*" + pattern):
            it.invoke()
    finally:
        tflite_ref.unregister_kernel("MyScale")


def test_plugin_prepare_failure_is_chained() -> None:
    def prepare(ctx: OpContext) -> None:
        raise KeyError("beta")

    tflite_ref.register_kernel("MyScale", prepare, lambda o, x: x)
    try:
        with pytest.raises(KernelRuntimeError, match="prepare function registered for custom "
                                                     "operator 'MyScale' raised KeyError") as info:
            tflite_ref.Interpreter(model_content=M.fixture("custom_scale")).allocate_tensors()
        assert isinstance(info.value.__cause__, KeyError)
    finally:
        tflite_ref.unregister_kernel("MyScale")


# =============================================================================================
# TFLite_Detection_PostProcess
# =============================================================================================
def _detection_inputs(data: bytes, seed: int, step: float = 1 / 16) -> list[np.ndarray]:
    """Box encodings around 0 and class scores in [0, 1); float scores rounded to ``step`` so
    that ties are common."""
    sg = tflite_ref.load(data).subgraphs[0]
    boxes, scores = (sg.tensors[i] for i in sg.inputs)
    rng = np.random.default_rng(seed)
    if boxes.type_name == "UINT8":
        b = rng.integers(88, 168, boxes.shape).astype(np.uint8)
    else:
        b = rng.normal(0, 1, boxes.shape).astype(np.float32)
    if scores.type_name == "UINT8":
        s = rng.integers(0, 256, scores.shape).astype(np.uint8)
    else:
        s = (np.round(rng.uniform(0, 1, scores.shape) / step) * step).astype(np.float32)
    return [b, s]


def _litert_one_thread(data: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=data, num_threads=1,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [np.array(it.get_tensor(d["index"])) for d in it.get_output_details()]


DETECTION_CASES = [
    # (box dtype, score dtype, regular NMS, classes per detection, background column)
    ("FLOAT32", "FLOAT32", False, 1, True),
    ("FLOAT32", "FLOAT32", False, 3, True),
    ("FLOAT32", "FLOAT32", True, 1, True),
    ("FLOAT32", "FLOAT32", True, 1, False),
    ("UINT8", "UINT8", False, 1, True),
    ("UINT8", "UINT8", False, 3, True),
    ("UINT8", "UINT8", False, 6, False),
    ("UINT8", "UINT8", True, 1, True),
    ("FLOAT32", "UINT8", False, 2, True),
    ("UINT8", "FLOAT32", True, 1, True),
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("box,score,regular,per_box,background", DETECTION_CASES,
                         ids=lambda v: {True: "regular", False: "fast"}.get(v, str(v))
                         if isinstance(v, bool) else str(v))
def test_detection_postprocess_matches_litert(box: str, score: str, regular: bool, per_box: int,
                                              background: bool, seed: int) -> None:
    data = M.detection(boxes=48 + 8 * seed, dtype=box, score_dtype=score, background=background,
                       salt=seed, options={"use_regular_nms": regular,
                                           "max_classes_per_detection": per_box,
                                           "nms_score_threshold": 0.25 if seed % 2 else 0.5})
    inputs = _detection_inputs(data, seed)
    ours = run_ours(data, inputs)
    theirs = _litert_one_thread(data, inputs)
    written = 10 if regular else None  # regular NMS writes max_detections entries; LiteRT leaves
    names = ["boxes", "classes", "scores", "count"]  # the rest of its outputs unwritten
    for d, ref, name in zip(ours.get_output_details(), theirs, names):
        mine = ours.get_tensor(d["index"])
        assert mine.shape == ref.shape and mine.dtype == ref.dtype, name
        if name != "count":
            mine, ref = mine[:, :written], ref[:, :written]
        np.testing.assert_array_equal(mine, ref, err_msg=name)
    assert 0 < ours.get_tensor(ours.get_output_details()[3]["index"])[0] <= 10


@pytest.mark.parametrize("dtype", ["FLOAT32", "UINT8"])
def test_detection_as_ssd_uses_it_vs_litert(dtype: str) -> None:
    """The default interpreter (LiteRT's default thread count), every tensor."""
    data = M.detection(dtype=dtype)
    for seed in range(3):
        assert assert_matches_litert(data, _detection_inputs(data, seed)) == 6


@pytest.mark.parametrize("regular", [False, True])
def test_detection_postprocess_matches_tflm(regular: bool) -> None:
    data = M.detection(dtype="FLOAT32", salt=7, options={"use_regular_nms": regular})
    for seed in range(4):
        assert_matches_tflm(data, _detection_inputs(data, seed, step=1 / 8))


def test_detection_tflm_emulation_refuses_uint8() -> None:
    with pytest.raises(UnsupportedOpError, match="TFLite Micro's kernel takes FLOAT32"):
        tflite_ref.Interpreter(model_content=M.detection(dtype="UINT8"),
                               emulate="tflm").allocate_tensors()


def test_detection_tflm_fast_nms_with_several_classes_would_overflow() -> None:
    """TFLM steps the output slot per entry *and* per box (``n * output_box_index + col``):
    with two classes per detection it writes past its outputs; we stop there."""
    data = M.detection(dtype="FLOAT32", options={"max_classes_per_detection": 2})
    it = tflite_ref.Interpreter(model_content=data, emulate="tflm")
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), _detection_inputs(data, 1)):
        it.set_tensor(d["index"], x)
    with pytest.raises(KernelRuntimeError, match="would write detection 20 past the 20 output"):
        it.invoke()


def test_detection_degenerate_box_fails_like_litert() -> None:
    anchors = np.tile(np.array([[0.5, 0.5, -0.1, 0.2]], np.float32), (8, 1))  # negative height
    data = M.detection(boxes=8, anchors=anchors)
    inputs = _detection_inputs(data, 0)
    from harness import litert_interpreter

    ref = litert_interpreter(data)
    ref.allocate_tensors()
    for d, x in zip(ref.get_input_details(), inputs):
        ref.set_tensor(d["index"], x)
    with pytest.raises(RuntimeError, match="ValidateBoxes"):
        ref.invoke()
    it = tflite_ref.Interpreter(model_content=data)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    with pytest.raises(KernelRuntimeError, match="decoded box 0 is .*min > max"):
        it.invoke()


def _options(**changes: Any) -> bytes:
    from flatbuffers import flexbuffers

    return bytes(flexbuffers.Dumps({**M.DETECTION_DEFAULTS, **changes}))


@pytest.mark.parametrize("kwargs,pattern", [
    ({"options": {"max_detections": 2**20, "max_classes_per_detection": 2**12},
      "output_entries": 1}, "overflows int32"),
    ({"options": {"nms_iou_threshold": 0.0}}, r"nms_iou_threshold is 0.0; it must lie in \(0, 1\]"),
    ({"raw_options": _options(num_classes=9)},
     "num_classes is 9 and the class predictions have 7 columns"),
    ({"options": {"max_classes_per_detection": 0}}, r"max_classes_per_detection \(0\) >= 1"),
    ({"options": {"use_regular_nms": True, "detections_per_class": 0}},
     "regular NMS keeps 0 detections per class"),
    ({"raw_options": b"\x01\x02\x03"}, "custom options are not a FlexBuffer map"),
    ({"anchors": np.zeros((5, 4), np.float32), "boxes": 6}, r"anchors have shape \[5, 4\]"),
])
def test_detection_hostile_options(kwargs: dict[str, Any], pattern: str) -> None:
    """Range checks before anything is multiplied or read (hostile-models class 21/G)."""
    with pytest.raises(ModelValidationError, match=pattern):
        tflite_ref.Interpreter(model_content=M.detection(**kwargs)).allocate_tensors()
