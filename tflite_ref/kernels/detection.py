"""Custom kernel: ``TFLite_Detection_PostProcess`` (SSD box decoding and non-max suppression).

Upstream (read, not copied): LiteRT ``tflite/kernels/detection_postprocess.cc`` (built into
LiteRT's resolvers, BUILTIN_REF included); TFLM ``micro/kernels/detection_postprocess.cc``.

Inputs: box encodings ``[1, boxes, >=4]`` (y, x, h, w per box), class predictions
``[1, boxes, classes (+1 background)]`` and anchors ``[boxes, 4]`` (y, x, h, w).  Outputs, all
float32: boxes ``[1, M, 4]`` (ymin, xmin, ymax, xmax), classes ``[1, M]``, scores ``[1, M]`` and
the number of detections ``[1]``, with ``M = max_detections * max_classes_per_detection``.
Options come from the operator's FlexBuffer map (``max_detections``, ``max_classes_per_detection``,
``detections_per_class`` (100), ``use_regular_nms`` (false), ``nms_score_threshold``,
``nms_iou_threshold``, ``num_classes``, ``y_scale``, ``x_scale``, ``h_scale``, ``w_scale``), read
as flexbuffers' ``AsInt32``/``AsFloat``/``AsBool`` read them (absent: 0).

Arithmetic, reproduced operation by operation:

* decoding in double, rounded to float once per centre / half-size, then the corners in float
  (``DecodeCenterSizeBoxes``); uint8 box encodings and anchors are dequantized in float,
  ``(float(q) - zero_point) * scale``;
* uint8 class predictions dequantized as ``float(double(scale) * (q - zero_point))``
  (``optimized_ops::Dequantize``, whose x86 path is that loop);
* intersection-over-union in float with ``std::max``/``std::min`` semantics.

Orders, which decide the result when scores tie:

* scores above the threshold are sorted by a stable descending sort (both runtimes);
* fast NMS picks each box's top classes: LiteRT with ``ArgMaxVector`` (first maximum) for one
  class and ``std::partial_sort`` for several -- not stable, so we replay libstdc++'s heap
  select + sort_heap (the library the Linux wheels use); TFLM breaks ties by class index;
* regular NMS merges each class's selections into the running top list with
  ``std::inplace_merge`` (stable: earlier classes first on equal scores).  This is LiteRT's
  single-thread order; with several threads LiteRT hands classes to workers dynamically, so equal
  scores of different classes can come out in another order there.  TFLM's per-class partial
  sort with index tie-break gives the same order as the stable merge.

Emulation differences (``emulate="tflm"``): TFLM takes float32 inputs only, refuses a decoded box
with ``ymin >= ymax`` (LiteRT: ``>``), and in fast NMS with several classes per detection steps the
output slot by one per class *and* per box (``box_offset = n * output_box_index + col`` with
``output_box_index`` counting entries), reporting entries rather than boxes in
``num_detections``; we reproduce that and raise where it would write past the outputs.

Entries after the detections are zero here.  LiteRT's fast path leaves them unwritten: they hold
whatever the output buffer held (zero after allocation, the previous invoke's values later).
Hostile options (hostile-models class 21/G: ``max_detections * max_classes_per_detection``
overflowing, tensorflow#111638) are range-checked in prepare, before anything is multiplied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_ref.errors import KernelRuntimeError
from tflite_ref.kernels.registry import OpContext, register_custom
from tflite_ref.kernels.registry import TensorType as T

CUSTOM_CODE = "TFLite_Detection_PostProcess"
_NUM_COORDS = 4
_DEFAULT_DETECTIONS_PER_CLASS = 100  # kNumDetectionsPerClass
_INT32_MAX = 2**31 - 1


# =============================================================================================
# Options
# =============================================================================================
def _as_int32(value: Any) -> int:
    """flexbuffers ``Reference::AsInt32``: ``static_cast<int32_t>(AsInt64())`` (absent: 0)."""
    if value is None:
        return 0
    if isinstance(value, float):
        if not np.isfinite(value):
            return 0
        value = int(value)  # AsInt64 of a float truncates toward zero
    if not isinstance(value, (int, bool, np.integer)):
        return 0
    return (int(value) + 2**31) % 2**32 - 2**31


def _as_float(value: Any) -> np.float32:
    """``Reference::AsFloat``: ``static_cast<float>`` of the number (absent: 0)."""
    result: np.float32 = np.float32(0.0)
    if isinstance(value, (int, float, bool, np.integer, np.floating)):
        with np.errstate(over="ignore"):
            result = np.float32(float(value))
    return result


def _as_bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, (int, float, bool, np.integer, np.floating)):
        return bool(value)
    return False


@dataclass(frozen=True, slots=True)
class DetectionOptions:
    max_detections: int
    max_classes_per_detection: int
    detections_per_class: int
    use_regular_nms: bool
    score_threshold: np.float32
    iou_threshold: np.float32
    num_classes: int
    scale_y: np.float32
    scale_x: np.float32
    scale_h: np.float32
    scale_w: np.float32


def detection_options(ctx: OpContext) -> DetectionOptions:
    m = ctx.custom_options
    if not isinstance(m, dict):
        ctx.fail("custom options are not a FlexBuffer map; TFLite_Detection_PostProcess reads "
                 "its parameters from one")
    dpc = m.get("detections_per_class")
    return DetectionOptions(
        max_detections=_as_int32(m.get("max_detections")),
        max_classes_per_detection=_as_int32(m.get("max_classes_per_detection")),
        detections_per_class=_DEFAULT_DETECTIONS_PER_CLASS if dpc is None else _as_int32(dpc),
        use_regular_nms=_as_bool(m.get("use_regular_nms"), False),
        score_threshold=_as_float(m.get("nms_score_threshold")),
        iou_threshold=_as_float(m.get("nms_iou_threshold")),
        num_classes=_as_int32(m.get("num_classes")),
        scale_y=_as_float(m.get("y_scale")), scale_x=_as_float(m.get("x_scale")),
        scale_h=_as_float(m.get("h_scale")), scale_w=_as_float(m.get("w_scale")))


# =============================================================================================
# Prepare
# =============================================================================================
@dataclass(frozen=True, slots=True)
class DetectionData:
    opts: DetectionOptions
    tflm: bool
    locator: str
    num_boxes: int
    classes_with_background: int
    label_offset: int
    output_entries: int  # M = max_detections * max_classes_per_detection
    box_quant: tuple[int, np.float32] | None  # uint8 box encodings: (zero point, scale)
    anchor_quant: tuple[int, np.float32] | None
    score_quant: tuple[int, float] | None  # uint8 class predictions


def _legacy_quant(ctx: OpContext, i: int) -> tuple[int, np.float32]:
    """``TfLiteTensor::params``: the tensor's one scale and zero point (0 when absent)."""
    t = ctx.require_input(i)
    q = t.quantization
    if q is None or q.scale.size != 1:
        return 0, np.float32(0.0)
    return int(q.zero_point[0]) if q.zero_point.size else 0, np.float32(q.scale[0])


def prepare_detection_postprocess(ctx: OpContext) -> DetectionData:
    opts = detection_options(ctx)
    tflm = ctx.emulate == "tflm"
    if ctx.num_inputs != 3 or ctx.num_outputs != 4:
        ctx.fail(f"takes 3 inputs (box encodings, class predictions, anchors) and 4 outputs, "
                 f"not {ctx.num_inputs} and {ctx.num_outputs}")
    boxes, scores, anchors = (ctx.require_input(i) for i in range(3))
    bshape, sshape, ashape = (ctx.input_shape(i) for i in range(3))
    if len(bshape) != 3 or len(sshape) != 3 or len(ashape) != 2:
        ctx.fail(f"box encodings {list(bshape)}, class predictions {list(sshape)} and anchors "
                 f"{list(ashape)} must have ranks 3, 3 and 2")
    n = bshape[1]
    if bshape[0] != 1 or bshape[2] < _NUM_COORDS:
        ctx.fail(f"box encodings have shape {list(bshape)}; expected [1, boxes, >=4]")
    if sshape[0] != 1 or sshape[1] != n:
        ctx.fail(f"class predictions have shape {list(sshape)}; expected [1, {n}, classes]")
    # LiteRT reads the anchors four values per box whatever their shape: fewer rows or other
    # columns would make it read out of bounds or misaligned.
    if tuple(ashape) != (n, _NUM_COORDS):
        ctx.fail(f"anchors have shape {list(ashape)}; expected [{n}, 4]")
    ncwb = sshape[2]
    if not 1 <= opts.num_classes <= ncwb or ncwb - opts.num_classes > 1:
        ctx.fail(f"num_classes is {opts.num_classes} and the class predictions have {ncwb} "
                 "columns; they must be equal, or one more (a background class)")
    if opts.max_detections < 0 or opts.max_classes_per_detection < 1:
        ctx.fail(f"max_detections ({opts.max_detections}) must be >= 0 and "
                 f"max_classes_per_detection ({opts.max_classes_per_detection}) >= 1")
    entries = opts.max_detections * opts.max_classes_per_detection
    if entries > _INT32_MAX:
        ctx.fail(f"max_detections * max_classes_per_detection = {entries} overflows int32 "
                 "(LiteRT would size its outputs with the wrapped product)")
    if not (0.0 < opts.iou_threshold <= 1.0):
        ctx.fail(f"nms_iou_threshold is {float(opts.iou_threshold)}; it must lie in (0, 1]")
    if opts.use_regular_nms:
        dpc = opts.detections_per_class if tflm else min(opts.detections_per_class,
                                                         opts.max_detections)
        if dpc <= 0:
            ctx.fail(f"regular NMS keeps {dpc} detections per class; it must be > 0")
    float_only = (T.FLOAT32,) if tflm else (T.FLOAT32, T.UINT8)
    for t, what in ((boxes, "box encodings"), (scores, "class predictions")):
        if t.type not in float_only:
            ctx.unsupported(f"{what} are {t.type_name}; "
                            + ("TFLite Micro's kernel takes FLOAT32" if tflm
                               else "the kernel takes FLOAT32 or UINT8"))
    want_anchor = T.UINT8 if boxes.type == T.UINT8 else T.FLOAT32
    if anchors.type != want_anchor:
        ctx.fail(f"anchors are {anchors.type_name}; with {boxes.type_name} box encodings they "
                 f"must be {T(want_anchor).name}")
    for j in range(4):
        if ctx.output(j).type != T.FLOAT32:
            ctx.fail(f"output {j} is {ctx.output(j).type_name}; the outputs are FLOAT32")
    shapes = ((1, entries, _NUM_COORDS), (1, entries), (1, entries), (1,))
    for j, shape in enumerate(shapes):
        if tflm and ctx.output(j).shape != shape:
            # TFLM does not resize outputs: it writes into what the model declares.
            ctx.fail(f"output {j} has shape {list(ctx.output(j).shape)}; the options make it "
                     f"{list(shape)}")
        ctx.set_output_shape(j, shape)
    box_q = _legacy_quant(ctx, 0) if boxes.type == T.UINT8 else None
    anchor_q = _legacy_quant(ctx, 2) if boxes.type == T.UINT8 else None
    score_q = None
    if scores.type == T.UINT8:
        zp, scale = _legacy_quant(ctx, 1)
        score_q = (zp, float(scale))
    return DetectionData(opts, tflm, ctx.op.locator, n, ncwb, ncwb - opts.num_classes, entries,
                         box_q, anchor_q, score_q)


# =============================================================================================
# Eval helpers
# =============================================================================================
def _dequantize_f32(q: np.ndarray, zp_scale: tuple[int, np.float32]) -> np.ndarray:
    """``Dequantizer``: ``(static_cast<float>(x) - zero_point) * scale``, all in float."""
    zp, scale = zp_scale
    real: np.ndarray = (q.astype(np.float32) - np.float32(zp)) * scale
    return real


def decode_boxes(data: DetectionData, encodings: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """``DecodeCenterSizeBoxes``: ``[boxes, 4]`` float32 corners (ymin, xmin, ymax, xmax)."""
    enc = encodings[0, :, :_NUM_COORDS]
    if data.box_quant is not None:
        assert data.anchor_quant is not None
        enc = _dequantize_f32(enc, data.box_quant)
        anc = _dequantize_f32(anchors[:, :_NUM_COORDS], data.anchor_quant)
    else:
        anc = anchors[:, :_NUM_COORDS]
    o = data.opts
    y, x, h, w = (enc[:, k].astype(np.float64) for k in range(4))
    ay, ax, ah, aw = (anc[:, k].astype(np.float64) for k in range(4))
    with np.errstate(all="ignore"):
        ycenter = (y / np.float64(o.scale_y) * ah + ay).astype(np.float32)
        xcenter = (x / np.float64(o.scale_x) * aw + ax).astype(np.float32)
        half_h = (0.5 * np.exp(h / np.float64(o.scale_h)) * ah).astype(np.float32)
        half_w = (0.5 * np.exp(w / np.float64(o.scale_w)) * aw).astype(np.float32)
        out = np.stack([ycenter - half_h, xcenter - half_w, ycenter + half_h, xcenter + half_w],
                       axis=1)
    return out.astype(np.float32)


def class_scores(data: DetectionData, predictions: np.ndarray) -> np.ndarray:
    """``[boxes, classes_with_background]`` float32 scores."""
    p: np.ndarray = predictions[0]
    if data.score_quant is None:
        return p
    zp, scale = data.score_quant
    out: np.ndarray = (np.float64(scale) * (p.astype(np.int64) - zp).astype(np.float64))
    return out.astype(np.float32)


def _std_max(a: np.ndarray, b: np.ndarray | np.float32) -> np.ndarray:
    """``std::max<float>(a, b)``: ``(a < b) ? b : a`` (keeps ``a`` when either is NaN)."""
    return np.where(a < b, b, a)


def _std_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``std::min<float>(a, b)``: ``(b < a) ? b : a``."""
    return np.where(b < a, b, a)


def _iou(boxes: np.ndarray, i: int, js: np.ndarray) -> np.ndarray:
    """``ComputeIntersectionOverUnion`` of box ``i`` with each box of ``js``, in float32."""
    bi, bj = boxes[i], boxes[js]
    with np.errstate(all="ignore"):
        area_i = (bi[2] - bi[0]) * (bi[3] - bi[1])
        area_j = (bj[:, 2] - bj[:, 0]) * (bj[:, 3] - bj[:, 1])
        iymin = _std_max(np.full_like(bj[:, 0], bi[0]), bj[:, 0])
        ixmin = _std_max(np.full_like(bj[:, 1], bi[1]), bj[:, 1])
        iymax = _std_min(np.full_like(bj[:, 2], bi[2]), bj[:, 2])
        ixmax = _std_min(np.full_like(bj[:, 3], bi[3]), bj[:, 3])
        zero = np.float32(0.0)
        inter = _std_max(iymax - iymin, zero) * _std_max(ixmax - ixmin, zero)
        iou = inter / (area_i + area_j - inter)
    degenerate = np.logical_or(area_i <= 0, area_j <= 0)
    out: np.ndarray = np.where(degenerate, np.float32(0.0), iou)
    return out.astype(np.float32)


def _validate_boxes(data: DetectionData, boxes: np.ndarray) -> None:
    """``ValidateBoxes``: LiteRT fails on ``ymin > ymax`` or ``xmin > xmax``, TFLM on ``>=``."""
    if data.tflm:
        bad = (boxes[:, 0] >= boxes[:, 2]) | (boxes[:, 1] >= boxes[:, 3])
    else:
        bad = (boxes[:, 0] > boxes[:, 2]) | (boxes[:, 1] > boxes[:, 3])
    if bad.any():
        k = int(np.argmax(bad))
        raise KernelRuntimeError(
            f"{data.locator}: decoded box {k} is {boxes[k].tolist()} (ymin, xmin, ymax, xmax); "
            f"the runtime refuses boxes with min {'>=' if data.tflm else '>'} max")


def nms_single_class(data: DetectionData, boxes: np.ndarray, scores: np.ndarray,
                     max_detections: int) -> list[int]:
    """``NonMaxSuppressionSingleClassHelper``: greedy NMS over the boxes scoring at least the
    threshold, in stable descending score order; returns the selected box indices."""
    o = data.opts
    keep = np.flatnonzero(scores >= o.score_threshold)
    order = keep[np.argsort(-scores[keep], kind="stable")]
    output_size = min(order.size, max_detections)
    selected: list[int] = []
    active = np.ones(order.size, dtype=bool)
    n_active = order.size
    for i in range(order.size):
        if n_active == 0 or len(selected) >= output_size:
            break
        if not active[i]:
            continue
        selected.append(int(order[i]))
        active[i] = False
        n_active -= 1
        rest = np.flatnonzero(active[i + 1:]) + i + 1
        if rest.size:
            suppress = _iou(boxes, int(order[i]), order[rest]) > o.iou_threshold
            active[rest[suppress]] = False
            n_active -= int(suppress.sum())
    return selected


# -- libstdc++'s std::partial_sort, for LiteRT's top classes per box --------------------------------
def _adjust_heap(a: list[int], hole: int, length: int, value: int,
                 comp: Callable[[int, int], bool]) -> None:
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if comp(a[child], a[child - 1]):
            child -= 1
        a[hole] = a[child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        a[hole] = a[child - 1]
        hole = child - 1
    parent = (hole - 1) // 2 if hole > 0 else 0
    while hole > top and comp(a[parent], value):
        a[hole] = a[parent]
        hole = parent
        parent = (hole - 1) // 2 if hole > 0 else 0
    a[hole] = value


def std_partial_sort(a: list[int], middle: int, comp: Callable[[int, int], bool]) -> None:
    """``std::partial_sort(a, a + middle, a + len(a), comp)`` as libstdc++ performs it
    (``__heap_select`` then ``__sort_heap``), in place; the order it leaves equal keys in is
    that library's, which the result of LiteRT's fast NMS depends on."""
    if middle >= 2:
        parent = (middle - 2) // 2
        while True:  # __make_heap
            _adjust_heap(a, parent, middle, a[parent], comp)
            if parent == 0:
                break
            parent -= 1
    for i in range(middle, len(a)):  # __heap_select
        if middle and comp(a[i], a[0]):
            value = a[i]
            a[i] = a[0]
            _adjust_heap(a, 0, middle, value, comp)
    end = middle
    while end > 1:  # __sort_heap
        end -= 1
        value = a[end]
        a[end] = a[0]
        _adjust_heap(a, 0, end, value, comp)


def _top_classes_row(data: DetectionData, row: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best class indices of one box whose scores tie or hold NaN."""
    if k == 1:
        best, best_i = row[0], 0
        for i in range(1, row.size):  # ArgMaxVector: `if (value > max)`, NaN never wins
            if row[i] > best:
                best, best_i = row[i], i
        return np.array([best_i])
    values = row.tolist()
    idx = list(range(row.size))
    std_partial_sort(idx, k, lambda i, j: values[i] > values[j])
    return np.array(idx[:k])


def top_classes(data: DetectionData, cls: np.ndarray, k: int) -> np.ndarray:
    """``[boxes, k]``: each box's ``k`` best class indices, in the order the runtime's sort
    leaves them (see the module docstring)."""
    order = np.argsort(-cls, axis=1, kind="stable")
    tops: np.ndarray = order[:, :k].copy()
    if data.tflm or not cls.size:
        return tops  # partial_sort by (score desc, index asc): a total order
    # Rows whose top k (and the runner-up) are strictly ordered come out the same from every
    # sort; only rows with ties there (or NaNs) need libstdc++'s own order.
    ranked = np.take_along_axis(cls, order[:, : k + 1], axis=1)
    strict = np.all(ranked[:, :-1] > ranked[:, 1:], axis=1) if k > 1 else np.ones(
        cls.shape[0], dtype=bool)
    for r in np.flatnonzero(np.isnan(cls).any(axis=1) | ~strict):
        tops[r] = _top_classes_row(data, cls[r], k)
    return tops


# =============================================================================================
# Eval
# =============================================================================================
def _fast_nms(data: DetectionData, boxes: np.ndarray, scores: np.ndarray,
              out_boxes: np.ndarray, out_classes: np.ndarray, out_scores: np.ndarray) -> int:
    """``NonMaxSuppressionMultiClassFastHelper``: NMS on each box's best score, then its top
    ``max_classes_per_detection`` classes."""
    o = data.opts
    per_box = min(o.max_classes_per_detection, o.num_classes)
    cls = scores[:, data.label_offset:data.label_offset + o.num_classes]
    tops = top_classes(data, cls, per_box)
    max_scores = cls[np.arange(cls.shape[0]), tops[:, 0]]
    selected = nms_single_class(data, boxes, max_scores, o.max_detections)
    entries = 0
    for box_index, s in enumerate(selected):
        for col in range(per_box):
            if data.tflm:
                # TFLM steps output_box_index per entry and multiplies it by the classes count.
                slot = per_box * entries + col
            else:
                slot = o.max_classes_per_detection * box_index + col
            if slot >= data.output_entries:
                raise KernelRuntimeError(
                    f"{data.locator}: TFLite Micro's fast NMS would write detection {slot} "
                    f"past the {data.output_entries} output entries")
            out_boxes[slot] = boxes[s]
            out_classes[slot] = np.float32(tops[s, col])
            out_scores[slot] = cls[s, tops[s, col]]
            entries += 1
    return entries if data.tflm else len(selected)


def _regular_nms(data: DetectionData, boxes: np.ndarray, scores: np.ndarray,
                 out_boxes: np.ndarray, out_classes: np.ndarray, out_scores: np.ndarray) -> int:
    """``NonMaxSuppressionMultiClassRegularHelper``: NMS class by class, each class's picks
    merged (stably, by score) into the running best ``max_detections``."""
    o = data.opts
    ncwb = data.classes_with_background
    per_class = min(o.detections_per_class, o.max_detections)
    best: list[tuple[np.float32, int]] = []  # (score, box * ncwb + class column), sorted
    for col in range(o.num_classes):
        column = scores[:, col + data.label_offset]
        picked = nms_single_class(data, boxes, column, per_class)
        if not picked:
            continue
        new = [(column[s], s * ncwb + col + data.label_offset) for s in picked]
        merged: list[tuple[np.float32, int]] = []
        i = j = 0
        while i < len(best) and j < len(new):  # std::inplace_merge, comp = score >
            if new[j][0] > best[i][0]:
                merged.append(new[j])
                j += 1
            else:
                merged.append(best[i])
                i += 1
        merged += best[i:] + new[j:]
        best = merged[: o.max_detections]
    for k, (score, index) in enumerate(best):
        anchor = index // ncwb
        out_boxes[k] = boxes[anchor]
        out_classes[k] = np.float32(index - anchor * ncwb - data.label_offset)
        out_scores[k] = score
    return len(best)


def detection_postprocess(data: DetectionData, encodings: np.ndarray, predictions: np.ndarray,
                          anchors: np.ndarray) -> tuple[np.ndarray, ...]:
    boxes = decode_boxes(data, encodings, anchors)
    scores = class_scores(data, predictions)
    _validate_boxes(data, boxes)
    m = data.output_entries
    out_boxes = np.zeros((m, _NUM_COORDS), dtype=np.float32)
    out_classes = np.zeros(m, dtype=np.float32)
    out_scores = np.zeros(m, dtype=np.float32)
    nms = _regular_nms if data.opts.use_regular_nms else _fast_nms
    count = nms(data, boxes, scores, out_boxes, out_classes, out_scores)
    return (out_boxes.reshape(1, m, _NUM_COORDS), out_classes.reshape(1, m),
            out_scores.reshape(1, m), np.array([count], dtype=np.float32))


register_custom(CUSTOM_CODE, prepare_detection_postprocess, detection_postprocess)

__all__ = [
    "CUSTOM_CODE",
    "DetectionData",
    "DetectionOptions",
    "class_scores",
    "decode_boxes",
    "nms_single_class",
    "std_partial_sort",
    "top_classes",
]
