"""Representative inputs for qdebug: real-valued samples, one array per model input.

Sources: an ``.npz`` (keyed by input tensor or signature name, or positionally ``arr_0``,
``arr_1``, …) or ``.npy`` file, where a leading axis may hold several samples; a folder of
``.npy``/``.npz`` files or images (one sample per file; images need Pillow); or random values.

Samples are kept as real (float32) values.  An integer array given for a quantized input is taken
as already quantized and dequantized here, so every model of the comparison starts from the same
real numbers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Union

import numpy as np

from tflite_ref.errors import UsageError
from tflite_ref.model.model import Model, Subgraph, Tensor
from tflite_ref.qdebug.shadow import dequantize, is_quantized, real_range

Sample = list[np.ndarray]  # one real-valued array per subgraph-0 input, in input order
InputsSpec = Union[str, "os.PathLike[str]", Mapping[str, np.ndarray], Sequence[np.ndarray]]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def _input_names(model: Model) -> dict[str, int]:
    """name -> position among subgraph 0's inputs: tensor names, then signature names."""
    sg = model.subgraphs[0]
    out = {sg.tensors[ti].name: k for k, ti in enumerate(sg.inputs)}
    for sd in model.signatures:
        if sd.subgraph_index == 0:
            for name, ti in sd.inputs.items():
                if ti in sg.inputs:
                    out.setdefault(name, sg.inputs.index(ti))
    return out


def _feeds_quantize(sg: Subgraph, ti: int) -> Tensor | None:
    """The quantized output of a QUANTIZE reading tensor ``ti``, if any (its real range)."""
    for op in sg.operators:
        if op.name == "QUANTIZE" and op.inputs and op.inputs[0] == ti:
            out = sg.tensors[op.outputs[0]]
            if is_quantized(out) and out.quantization is not None and \
                    out.quantization.scale.size == 1:
                return out
    return None


def input_range(model: Model, position: int) -> tuple[float, float] | None:
    """The real range the quantized model accepts at input ``position``, when it says."""
    sg = model.subgraphs[0]
    t = sg.tensors[sg.inputs[position]]
    if is_quantized(t) and t.quantization is not None and t.quantization.scale.size == 1:
        return real_range(t)
    q = _feeds_quantize(sg, t.index)
    return real_range(q) if q is not None else None


def random_samples(model: Model, count: int, seed: int) -> list[Sample]:
    """Uniform over each input's representable real range (or [-1, 1) where it has none)."""
    if count < 1:
        raise UsageError(f"--samples must be at least 1, not {count}")
    rng = np.random.default_rng(seed)
    sg = model.subgraphs[0]
    out = []
    for _ in range(count):
        sample = []
        for k, ti in enumerate(sg.inputs):
            t = sg.tensors[ti]
            if t.dtype is None or t.dtype.kind not in "fiu" or (t.dtype.kind in "iu"
                                                                 and not is_quantized(t)):
                raise UsageError(f"input {k} {t.name!r} is {t.type_name} without quantization; "
                                 "give its values with --inputs")
            lo, hi = input_range(model, k) or (-1.0, 1.0)
            sample.append(rng.uniform(lo, hi, size=t.shape).astype(np.float32))
        out.append(sample)
    return out


def _split(arr: np.ndarray, t: Tensor, what: str) -> list[np.ndarray]:
    """One array per sample: the tensor's shape, or a leading axis of samples."""
    shape = t.shape
    if arr.shape == shape:
        return [arr]
    if arr.ndim == len(shape) + 1 and arr.shape[1:] == shape:
        return list(arr)
    if len(shape) >= 1 and shape[0] == 1 and arr.ndim == len(shape) and arr.shape[1:] == shape[1:]:
        return [a[None] for a in arr]
    if arr.size == int(np.prod(shape)):
        return [arr.reshape(shape)]
    raise UsageError(f"{what}: shape {list(arr.shape)} does not fit input {t.name!r} of shape "
                     f"{list(shape)} (nor a leading axis of samples of that shape)")


def _real(t: Tensor, arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype.kind in "iu" and is_quantized(t) and arr.dtype == t.dtype:
        return dequantize(t, arr)  # already quantized values for this input
    if arr.dtype.kind not in "fiub":
        raise UsageError(f"{what}: {arr.dtype} values cannot feed input {t.name!r}")
    return arr.astype(np.float32)


def samples_from_arrays(model: Model, arrays: Mapping[str, np.ndarray] | Sequence[np.ndarray],
                        what: str = "inputs") -> list[Sample]:
    sg = model.subgraphs[0]
    names = _input_names(model)
    by_pos: dict[int, np.ndarray] = {}
    if isinstance(arrays, Mapping):
        for key, value in arrays.items():
            if key in names:
                k = names[key]
            elif key.startswith("arr_") and key[4:].isdigit():
                k = int(key[4:])
            elif key.isdigit():
                k = int(key)
            else:
                raise UsageError(f"{what}: {key!r} names no input; the model's inputs: "
                                 + ", ".join(repr(sg.tensors[i].name) for i in sg.inputs))
            if not 0 <= k < len(sg.inputs):
                raise UsageError(f"{what}: {key!r}: the model has {len(sg.inputs)} input(s)")
            by_pos[k] = np.asarray(value)
    else:
        by_pos = {k: np.asarray(v) for k, v in enumerate(arrays)}
    missing = [sg.tensors[sg.inputs[k]].name for k in range(len(sg.inputs)) if k not in by_pos]
    if missing:
        raise UsageError(f"{what}: no values for input(s) {', '.join(map(repr, missing))}")
    per_input = []
    for k, ti in enumerate(sg.inputs):
        t = sg.tensors[ti]
        per_input.append([_real(t, a, what) for a in _split(by_pos[k], t, what)])
    counts = {len(v) for v in per_input}
    if len(counts) != 1:
        raise UsageError(f"{what}: the inputs hold different numbers of samples "
                         f"({', '.join(str(len(v)) for v in per_input)})")
    return [[per_input[k][s] for k in range(len(sg.inputs))] for s in range(counts.pop())]


def _load_array_file(path: Path) -> Mapping[str, np.ndarray] | list[np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if isinstance(loaded, np.ndarray):
        return [loaded]
    with loaded:
        return {k: loaded[k] for k in loaded.files}


def _image(model: Model, path: Path) -> Sample:
    try:
        from PIL import Image  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise UsageError(f"{path}: decoding images needs Pillow (pip install "
                         "'tflite-ref[images]'), or give the samples as .npy/.npz") from None
    sg = model.subgraphs[0]
    if len(sg.inputs) != 1:
        raise UsageError(f"{path}: images can feed a model with one input, this one has "
                         f"{len(sg.inputs)}")
    t = sg.tensors[sg.inputs[0]]
    if len(t.shape) != 4 or t.shape[3] not in (1, 3):
        raise UsageError(f"{path}: input {t.name!r} of shape {list(t.shape)} is not an NHWC "
                         "image with 1 or 3 channels")
    _, h, w, c = t.shape
    try:
        with Image.open(path) as img:
            mode = "L" if c == 1 else "RGB"
            resized = img.convert(mode).resize((w, h), Image.Resampling.BILINEAR)
            pixels = np.asarray(resized, dtype=np.float32).reshape(1, h, w, c)
    except OSError as exc:
        raise UsageError(f"cannot decode image {path}: {exc}") from None
    # Pixels 0..255 map linearly onto the real range the quantized input accepts (e.g. [0, 1]
    # for scale 1/255, zero point -128): the range its calibration data had.
    rng = input_range(model, 0)
    if rng is not None:
        lo, hi = rng
        pixels = (lo + (hi - lo) * (pixels / np.float32(255.0))).astype(np.float32)
    return [pixels]


def samples_from_dir(model: Model, directory: Path) -> list[Sample]:
    files = sorted(p for p in directory.iterdir()
                   if p.suffix.lower() in (".npy", ".npz", *IMAGE_SUFFIXES))
    if not files:
        raise UsageError(f"{directory}: no .npy, .npz or image files")
    out: list[Sample] = []
    for p in files:
        if p.suffix.lower() in IMAGE_SUFFIXES:
            out.append(_image(model, p))
        else:
            out.extend(samples_from_arrays(model, _load_array_file(p), str(p)))
    return out


def load_samples(model: Model, inputs: InputsSpec | None = None, samples: int | None = None,
                 seed: int = 0) -> tuple[list[Sample], str]:
    """The samples and a short description of where they came from."""
    if inputs is None:
        count = 8 if samples is None else samples
        return random_samples(model, count, seed), f"random (seed {seed})"
    if isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs)
        if path.is_dir():
            got = samples_from_dir(model, path)
            source = f"{len(got)} file sample(s) from {path}/"
        elif path.suffix.lower() in (".npy", ".npz"):
            got = samples_from_arrays(model, _load_array_file(path), str(path))
            source = str(path)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            got, source = [_image(model, path)], str(path)
        elif not path.exists():
            raise UsageError(f"--inputs {path}: no such file or directory")
        else:
            raise UsageError(f"--inputs {path}: give an .npz, .npy, image or a directory")
    else:
        got, source = samples_from_arrays(model, inputs), "given arrays"
    if samples is not None:
        got = got[:samples]
    if not got:
        raise UsageError("no samples to measure")
    return got, source


__all__ = ["InputsSpec", "Sample", "input_range", "load_samples", "random_samples",
           "samples_from_arrays", "samples_from_dir"]
