"""Runs a native runtime in a child process, so that its crashes are reported, not fatal.

    python native_worker.py {litert|litert-outputs|tflm} MODEL INPUTS.npz OUT.npz

LiteRT (``BUILTIN_REF``, ``experimental_preserve_all_tensors=True``): every tensor it exposes,
saved as ``t<index>``. ``litert-outputs``: outputs only, without preserve_all_tensors (that flag
has changed outputs in some builds). TFLM: outputs only, as ``o<k>``.
"""

from __future__ import annotations

import sys

import numpy as np


def main() -> None:
    mode, model_path, inputs_path, out_path = sys.argv[1:5]
    with np.load(inputs_path) as f:
        inputs = [f[f"arr_{k}"] for k in range(len(f.files))]
    out: dict[str, np.ndarray] = {}
    if mode.startswith("litert"):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        preserve = mode == "litert"
        it = Interpreter(model_path=model_path,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         experimental_preserve_all_tensors=preserve)
        it.allocate_tensors()
        for d, x in zip(it.get_input_details(), inputs):
            it.set_tensor(d["index"], x)
        it.invoke()
        if preserve:
            for d in it.get_tensor_details():
                try:
                    out[f"t{d['index']}"] = np.array(it.get_tensor(d["index"]))
                except ValueError:
                    continue
        else:
            for k, d in enumerate(it.get_output_details()):
                out[f"o{k}"] = np.array(it.get_tensor(d["index"]))
    elif mode == "tflm":
        from tflite_micro.python.tflite_micro import runtime

        it = runtime.Interpreter.from_file(model_path, arena_size=256 << 20)
        for k, x in enumerate(inputs):
            it.set_input(x, k)
        it.invoke()
        k = 0
        while True:
            try:
                out[f"o{k}"] = np.array(it.get_output(k))
            except Exception:  # noqa: BLE001 - the wheel signals "no such output" this way
                break
            k += 1
    else:
        raise SystemExit(f"unknown mode {mode}")
    np.savez(out_path, **out)


if __name__ == "__main__":
    main()
