"""Time ``invoke()`` of tflite_ref against LiteRT on the conv models of the shared corpus.

For each model: tflite_ref (``emulate="tflite"``), LiteRT ``BUILTIN_REF`` (the reference kernels
tflite_ref reproduces) and LiteRT's default ``AUTO`` (optimized kernels + XNNPACK), all in this
process, on the same random input.  Each time is the median of ``--runs`` invokes after
``--warmup`` untimed ones.  BLAS is pinned to one thread (set below, before NumPy loads) and
LiteRT runs with ``num_threads=1``, so the comparison is one core against one core.

    python benchmarks/bench_invoke.py                 # table
    python benchmarks/bench_invoke.py --json out.json # also write the numbers
    python benchmarks/bench_invoke.py --models vww_96_int8 kws_ref_model

The figure of merit is the geometric mean over the models of tflite_ref / BUILTIN_REF.
"""

from __future__ import annotations

import os

# Before NumPy (and its BLAS) is imported anywhere: one BLAS thread.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "models"

# The conv models of the corpus (relative to the corpus root, without .tflite).
CONV_MODELS = (
    "mlperf_tiny/vww_96_int8",
    "mlperf_tiny/vww_96_float",
    "mlperf_tiny/kws_ref_model",
    "mlperf_tiny/kws_ref_model_float32",
    "mlperf_tiny/pretrainedResnet",
    "mlperf_tiny/pretrainedResnet_quant",
    "mlperf_tiny/pretrainedResnet_large_float",
    "mlperf_tiny/pretrainedResnet_large_int8",
    "mlperf_tiny/str_ww_ref_model",
    "tflm/micro_speech_quantized",
    "tflm/mobilenet_v2_quantized_1x3x224x224",
)
# Conv models left out on purpose, with the reason printed in the report.
EXCLUDED = {
    "tflm/person_detect": "LiteRT refuses to load it (rank-1 per-channel biases with "
                          "quantized_dimension 3: 'quantized_dimension must be in range [0, 1)'), "
                          "so there is no BUILTIN_REF time to compare",
}


@dataclass
class Row:
    model: str
    ours_ms: float | None = None
    ref_ms: float | None = None
    auto_ms: float | None = None
    note: str = ""

    @property
    def ratio_ref(self) -> float | None:
        return self.ours_ms / self.ref_ms if self.ours_ms and self.ref_ms else None

    @property
    def ratio_auto(self) -> float | None:
        return self.ours_ms / self.auto_ms if self.ours_ms and self.auto_ms else None


def median_ms(invokes: dict[str, Callable[[], Any]], warmup: int, runs: int,
              budget_s: float) -> dict[str, float]:
    """Median wall time in ms of each runtime's ``invoke``.

    The runtimes take turns (one invoke each per round), so a load change on a shared machine
    hits all of them alike; timing stops after ``runs`` rounds or ``budget_s`` (at least 3).
    """
    for _ in range(warmup):
        for invoke in invokes.values():
            invoke()
    times: dict[str, list[float]] = {k: [] for k in invokes}
    start = time.perf_counter()
    for r in range(runs):
        for name, invoke in invokes.items():
            t0 = time.perf_counter()
            invoke()
            times[name].append(time.perf_counter() - t0)
        if r >= 2 and time.perf_counter() - start > budget_s:
            break
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def random_inputs(details: list[dict[str, Any]], rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for d in details:
        dtype = np.dtype(d["dtype"])
        shape = tuple(int(s) for s in d["shape"])
        if dtype.kind == "f":
            out.append(rng.uniform(-1.0, 1.0, shape).astype(dtype))
        else:
            info = np.iinfo(dtype)
            out.append(rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype))
    return out


def litert(model: bytes, resolver: str) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = {"ref": OpResolverType.BUILTIN_REF, "auto": OpResolverType.AUTO}[resolver]
    it = Interpreter(model_content=model, experimental_op_resolver_type=kind, num_threads=1)
    it.allocate_tensors()
    return it


def feed(it: Any, inputs: list[np.ndarray]) -> None:
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)


def bench_model(path: Path, warmup: int, runs: int, budget_s: float) -> Row:
    import tflite_ref

    row = Row(f"{path.parent.name}/{path.stem}")
    model = path.read_bytes()
    rng = np.random.default_rng(0)
    try:
        ref = litert(model, "ref")
    except (RuntimeError, ValueError) as exc:  # LiteRT refuses the model: nothing to compare
        row.note = f"LiteRT REF refuses it: {str(exc).splitlines()[0][:80]}"
        return row
    inputs = random_inputs(ref.get_input_details(), rng)
    feed(ref, inputs)
    auto = litert(model, "auto")
    feed(auto, inputs)
    invokes = {"ref": ref.invoke, "auto": auto.invoke}
    try:
        ours = tflite_ref.Interpreter(model_content=model)
        ours.allocate_tensors()
        feed(ours, inputs)
        invokes["ours"] = ours.invoke
    except tflite_ref.errors.TFLiteRefError as exc:
        row.note = f"tflite_ref cannot run it yet: {str(exc)[:100]}"
    ms = median_ms(invokes, warmup, runs, budget_s)
    row.ref_ms, row.auto_ms, row.ours_ms = ms["ref"], ms["auto"], ms.get("ours")
    return row


def geometric_mean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="model corpus root")
    p.add_argument("--models", nargs="*", help="substrings selecting models (default: all)")
    p.add_argument("--runs", type=int, default=20, help="timed invokes per runtime")
    p.add_argument("--warmup", type=int, default=2, help="untimed invokes first")
    p.add_argument("--budget", type=float, default=20.0,
                   help="seconds per model after which timing stops (at least 3 rounds)")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = p.parse_args(argv)

    names = [m for m in CONV_MODELS if not args.models or any(s in m for s in args.models)]
    rows = []
    for name in names:
        path = args.corpus / f"{name}.tflite"
        if not path.exists():
            rows.append(Row(name, note=f"missing: {path}"))
            continue
        rows.append(bench_model(path, args.warmup, args.runs, args.budget))
        r = rows[-1]
        print(f"  {r.model}: ours {fmt(r.ours_ms, '.2f')} ms, REF {fmt(r.ref_ms, '.2f')} ms, "
              f"AUTO {fmt(r.auto_ms, '.2f')} ms {r.note}", file=sys.stderr, flush=True)

    header = (f"{'model':44} {'tflite_ref ms':>13} {'REF ms':>9} {'AUTO ms':>9} "
              f"{'ours/REF':>9} {'ours/AUTO':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.model:44} {fmt(r.ours_ms, '13.2f')} {fmt(r.ref_ms, '9.2f')} "
              f"{fmt(r.auto_ms, '9.2f')} {fmt(r.ratio_ref, '9.2f')} {fmt(r.ratio_auto, '9.1f')}"
              + (f"  ({r.note})" if r.note else ""))
    for name, why in EXCLUDED.items():
        print(f"{name:44} skipped: {why}")
    ratios = [r.ratio_ref for r in rows if r.ratio_ref is not None]
    gm = geometric_mean(ratios)
    print(f"\ngeometric mean tflite_ref / BUILTIN_REF over {len(ratios)} models: "
          f"{fmt(gm, '.3f')}  (target <= 2.0)")
    if args.json:
        payload = {
            "runs": args.runs, "warmup": args.warmup, "blas_threads": 1,
            "rows": [asdict(r) | {"ratio_ref": r.ratio_ref, "ratio_auto": r.ratio_auto}
                     for r in rows],
            "excluded": EXCLUDED,
            "geomean_ratio_ref": gm,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
