"""TFLite Micro's signal-library custom operators (``tflite_ref/kernels/signal.py``) vs TFLM.

Each operator runs as a single-op custom model built with our writer (options as FlexBuffers),
in the TFLite Micro Python interpreter and in ours with ``emulate="tflm"``; outputs must be
equal (integers exactly; SignalRfft's float32 path is held to the same exactness, since we run
kiss_fft's float operations in kiss_fft's order).  LiteRT has no kernels for these operators,
so nothing here runs against LiteRT, and our kernels refuse ``emulate="tflite"`` (tested).

The two micro_speech front ends (``tflm/audio_preprocessor_{float,int8}.tflite``) are compared
end to end over several invokes -- SignalFilterBankSpectralSubtraction keeps a noise estimate
between invokes -- on every tensor TFLM preserves, except the bins SignalEnergy leaves
unwritten (TFLM leaves arena garbage there; we write 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from conftest import SHARED_MODELS
from flatbuffers import flexbuffers
from harness import assert_tensor_matches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tflite_ref
from tflite_ref.errors import ModelValidationError, UnsupportedOpError
from tflite_ref.model.writer import ModelBuilder

MODELS = SHARED_MODELS / "tflm"
HSET = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

Spec = tuple[Sequence[int], str, Any]  # (shape, dtype, constant data or None)


# -- models and runtimes --------------------------------------------------------------------------
def custom_model(code: str, inputs: Sequence[Spec], outputs: Sequence[tuple[Sequence[int], str]],
                 options: dict[str, Any] | None) -> bytes:
    mb = ModelBuilder(description=f"{code} test")
    sg = mb.subgraph(name="main")
    ins = [sg.tensor(f"in{i}", list(shape), dtype, data=data)
           for i, (shape, dtype, data) in enumerate(inputs)]
    outs = [sg.tensor(f"out{j}", list(shape), dtype) for j, (shape, dtype) in enumerate(outputs)]
    sg.operator(f"CUSTOM:{code}", ins, outs,
                custom_options=None if options is None else bytes(flexbuffers.Dumps(options)))
    sg.inputs = [t for t, (_, _, data) in zip(ins, inputs) if data is None]
    sg.outputs = outs
    return mb.build()


def tflm_interpreter(model: bytes, preserve_all: bool = False) -> Any:
    from tflite_micro.python.tflite_micro import runtime

    cfg = (runtime.InterpreterConfig.kPreserveAllTensors if preserve_all
           else runtime.InterpreterConfig.kAllocationRecording)
    return runtime.Interpreter.from_bytes(model, arena_size=1 << 20, intrepreter_config=cfg)


def ours_interpreter(model: bytes) -> tflite_ref.Interpreter:
    it = tflite_ref.Interpreter(model_content=model, emulate="tflm")
    it.allocate_tensors()
    return it


def run_both(model: bytes, invokes: Sequence[Sequence[np.ndarray]]
             ) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    """Per invoke: (TFLM outputs, our outputs), one interpreter each for all invokes."""
    ref, ours = tflm_interpreter(model), ours_interpreter(model)
    n_out = len(ours.get_output_details())
    results = []
    for inputs in invokes:
        for k, x in enumerate(inputs):
            ref.set_input(x, k)
        for d, x in zip(ours.get_input_details(), inputs):
            ours.set_tensor(d["index"], x)
        ref.invoke()
        ours.invoke()
        r = [np.array(ref.get_output(j)) for j in range(n_out)]
        o = [ours.get_tensor(d["index"]) for d in ours.get_output_details()]
        results.append(([x.reshape(y.shape) if x.size == y.size else x for x, y in zip(r, o)], o))
    return results


def check(model: bytes, *invokes: Sequence[np.ndarray], rtol: float = 0.0) -> None:
    for n, (ref, ours) in enumerate(run_both(model, invokes)):
        for j, (r, o) in enumerate(zip(ref, ours)):
            assert_tensor_matches(o, r, f"invoke {n} output {j}", rtol=rtol, atol=0.0)


def int_array(rng: np.random.Generator, shape: Sequence[int], dtype: Any,
              lo: int | None = None, hi: int | None = None) -> np.ndarray:
    info = np.iinfo(dtype)
    lo = info.min if lo is None else lo
    hi = info.max if hi is None else hi
    return rng.integers(lo, hi, size=tuple(shape), endpoint=True, dtype=dtype)


seeds = st.integers(0, 2**32 - 1)


# -- SignalWindow ---------------------------------------------------------------------------------
def window_model(shape: Sequence[int], n: int, shift: int, window: np.ndarray) -> bytes:
    return custom_model("SignalWindow", [(shape, "INT16", None), ((n,), "INT16", window)],
                        [(shape, "INT16")], {"shift": shift})


@pytest.mark.parametrize("shape,n,shift", [
    ((1, 480), 480, 12), ((3, 16), 16, 0), ((2, 4, 8), 8, 15), ((2, 8), 4, 31), ((5,), 5, 20)],
    ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v))
def test_window(shape: tuple[int, ...], n: int, shift: int) -> None:
    rng = np.random.default_rng(n + shift)
    window = int_array(rng, (n,), np.int16)
    check(window_model(shape, n, shift, window), [int_array(rng, shape, np.int16)],
          [np.full(shape, -32768, np.int16)])


@HSET
@given(seed=seeds, rows=st.integers(1, 4), n=st.integers(1, 64), shift=st.integers(0, 31))
def test_window_hypothesis(seed: int, rows: int, n: int, shift: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (rows, n)
    check(window_model(shape, n, shift, int_array(rng, (n,), np.int16)),
          [int_array(rng, shape, np.int16)])


# -- SignalFftAutoScale ---------------------------------------------------------------------------
def auto_scale_model(n: int) -> bytes:
    return custom_model("SignalFftAutoScale", [((n,), "INT16", None)],
                        [((n,), "INT16"), ((), "INT32")], None)


@pytest.mark.parametrize("values", [
    [0, 0, 0, 0], [1, -1, 0, 0], [100, -3000, 7, 2], [32767, 0, 1, 5], [-32767, 3, 3, 3],
    # -32768 makes MaxAbs16's int16 running maximum negative; then it follows rising negatives
    [-32768, -5, -3, -4, 2], [4, -32768, -100, -50, -10], [1000, 3, -32768],
    [-32768, 200, -32768, -7, 6], [-32768, -32768, -1, -1, 9]],
    ids=lambda v: "_".join(map(str, v)))
def test_fft_auto_scale(values: list[int]) -> None:
    x = np.array(values, dtype=np.int16)
    check(auto_scale_model(x.size), [x])


@HSET
@given(seed=seeds, n=st.integers(1, 64), bits=st.integers(0, 15), mins=st.integers(0, 3))
def test_fft_auto_scale_hypothesis(seed: int, n: int, bits: int, mins: int) -> None:
    rng = np.random.default_rng(seed)
    x = int_array(rng, (n,), np.int16, -(1 << bits), (1 << bits) - 1)
    x[rng.integers(0, n, size=mins)] = -32768
    check(auto_scale_model(n), [x])


# -- SignalRfft -----------------------------------------------------------------------------------
RFFT_TYPES = {"int16": (7, "INT16", np.int16), "int32": (2, "INT32", np.int32),
              "float32": (0, "FLOAT32", np.float32)}


def rfft_model(tname: str, rows: int | None, length: int, fft_length: int) -> bytes:
    t, dtype, _ = RFFT_TYPES[tname]
    lead = () if rows is None else (rows,)
    return custom_model("SignalRfft", [((*lead, length), dtype, None)],
                        [((*lead, fft_length + 2), dtype)], {"T": t, "fft_length": fft_length})


def rfft_input(rng: np.random.Generator, tname: str, shape: Sequence[int], amp_bits: int
               ) -> np.ndarray:
    dt = RFFT_TYPES[tname][2]
    if tname == "float32":
        return rng.uniform(-1, 1, size=tuple(shape)).astype(np.float32) * np.float32(2**amp_bits)
    bits = min(amp_bits, 15 if tname == "int16" else 31)
    return int_array(rng, shape, dt, -(1 << bits), (1 << bits) - 1)


@pytest.mark.parametrize("tname", list(RFFT_TYPES))
@pytest.mark.parametrize("rows,length,fft_length", [
    (None, 480, 512), (2, 480, 512), (None, 512, 512), (None, 3, 4), (1, 8, 8),
    (None, 100, 128), (3, 200, 256), (None, 1000, 1024),
    # mixed radix: n = fft_length/2 = 3, 5, 6, 9, 15, 60.  Lengths with other prime factors
    # (and fft_length 2) crash TFLM (kf_bfly_generic's scratch is a null pointer there).
    (None, 6, 6), (None, 10, 10), (None, 11, 12), (None, 18, 18), (None, 30, 30),
    (2, 100, 120)],
    ids=lambda v: "-" if v is None else str(v))
def test_rfft(tname: str, rows: int | None, length: int, fft_length: int) -> None:
    rng = np.random.default_rng(fft_length)
    shape = (length,) if rows is None else (rows, length)
    model = rfft_model(tname, rows, length, fft_length)
    big = rfft_input(rng, tname, shape, 31)  # full scale: fixed-point stores wrap
    check(model, [rfft_input(rng, tname, shape, 12)], [big])


@HSET
@given(seed=seeds, tname=st.sampled_from(list(RFFT_TYPES)), rows=st.integers(1, 3),
       fft_length=st.sampled_from([4, 8, 16, 32, 64, 128, 256, 512, 6, 12, 20, 24, 40, 90]),
       cut=st.floats(0.05, 1.0), amp_bits=st.integers(0, 31))
def test_rfft_hypothesis(seed: int, tname: str, rows: int, fft_length: int, cut: float,
                         amp_bits: int) -> None:
    rng = np.random.default_rng(seed)
    length = max(1, int(fft_length * cut))
    check(rfft_model(tname, rows, length, fft_length),
          [rfft_input(rng, tname, (rows, length), amp_bits)])


# -- SignalEnergy ---------------------------------------------------------------------------------
def energy_check(bins: int, start: int, end: int, x: np.ndarray) -> None:
    model = custom_model("SignalEnergy", [((2 * bins,), "INT16", None)], [((bins,), "UINT32")],
                         {"end_index": end, "start_index": start})
    (ref, ours), = run_both(model, [[x]])
    # TFLM writes bins [start, end) only; the rest of its output is whatever the arena held.
    assert_tensor_matches(ours[0][start:end], ref[0][start:end], "energy bins")
    assert not ours[0][:start].any() and not ours[0][end:].any()


@pytest.mark.parametrize("bins,start,end", [(257, 5, 241), (257, 0, 257), (8, 3, 3), (8, 7, 8)])
def test_energy(bins: int, start: int, end: int) -> None:
    rng = np.random.default_rng(bins + start)
    x = int_array(rng, (2 * bins,), np.int16)
    x[:4] = -32768  # (-32768)**2 * 2 = 2**31: wraps int32, fits uint32
    energy_check(bins, start, end, x)


@HSET
@given(seed=seeds, bins=st.integers(1, 80), a=st.floats(0, 1), b=st.floats(0, 1))
def test_energy_hypothesis(seed: int, bins: int, a: float, b: float) -> None:
    rng = np.random.default_rng(seed)
    start, end = sorted((int(a * bins), int(b * bins)))
    energy_check(bins, start, end, int_array(rng, (2 * bins,), np.int16))


# -- SignalFilterBank -----------------------------------------------------------------------------
def filter_bank_tables(rng: np.random.Generator, n_in: int, nc: int, max_width: int,
                       negative_weights: bool) -> tuple[np.ndarray, ...]:
    widths = rng.integers(0, max_width, size=nc + 1, endpoint=True).astype(np.int16)
    freq = np.array([rng.integers(0, n_in - w + 1) for w in widths], dtype=np.int16)
    wstarts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int16)
    n_w = max(1, int(widths.sum()))
    lo = -32768 if negative_weights else 0
    weights = int_array(rng, (n_w,), np.int16, lo, 4096)
    unweights = int_array(rng, (n_w,), np.int16, lo, 4096)
    return weights, unweights, freq, wstarts, widths


def filter_bank_model(n_in: int, nc: int, tables: Sequence[np.ndarray]) -> bytes:
    weights, unweights, freq, wstarts, widths = tables
    ins: list[Spec] = [((n_in,), "UINT32", None)]
    ins += [((t.size,), "INT16", t) for t in (weights, unweights, freq, wstarts, widths)]
    return custom_model("SignalFilterBank", ins, [((nc,), "UINT64")], {"num_channels": nc})


def test_filter_bank_micro_speech_tables() -> None:
    """The 40-channel mel tables of the audio front end, with spectra of every scale."""
    sg = tflite_ref.load((MODELS / "audio_preprocessor_int8.tflite").read_bytes()).subgraphs[0]
    op = next(o for o in sg.operators if o.custom_code == "SignalFilterBank")
    tables = [sg.tensors[i].data for i in op.inputs[1:]]
    model = filter_bank_model(257, 40, tables)
    rng = np.random.default_rng(0)
    check(model, [int_array(rng, (257,), np.uint32, 0, 2**20)],
          [int_array(rng, (257,), np.uint32)], [np.full(257, 2**32 - 1, np.uint32)])


@HSET
@given(seed=seeds, n_in=st.integers(1, 64), nc=st.integers(1, 24), max_width=st.integers(0, 12),
       negative=st.booleans())
def test_filter_bank_hypothesis(seed: int, n_in: int, nc: int, max_width: int,
                                negative: bool) -> None:
    rng = np.random.default_rng(seed)
    tables = filter_bank_tables(rng, n_in, nc, min(max_width, n_in), negative)
    check(filter_bank_model(n_in, nc, tables), [int_array(rng, (n_in,), np.uint32)])


# -- SignalFilterBankSquareRoot -------------------------------------------------------------------
def square_root_model(n: int) -> bytes:
    return custom_model("SignalFilterBankSquareRoot",
                        [((n,), "UINT64", None), ((), "INT32", None)], [((n,), "UINT32")], None)


def test_square_root_edges() -> None:
    r = np.arange(0, 2**32, 2**32 // 7, dtype=np.uint64)
    edges = [0, 1, 2, 3, 4, 5, 8, 2**32 - 1, 2**32, 2**32 + 1, 2**64 - 1, 2**64 - 2,
             65535**2, 65535**2 + 65535, 65535**2 + 65536, (2**32 - 1)**2 + 2**32 - 2,
             (2**32 - 1)**2 + 2**32 - 1]
    x = np.concatenate([np.array(edges, dtype=np.uint64), r * r, r * r + r, r * r + r + 1,
                        r * r - 1])
    check(square_root_model(x.size), *[[x, np.array(s, np.int32)] for s in (0, 1, 7, 31)])


@HSET
@given(seed=seeds, n=st.integers(1, 64), bits=st.integers(1, 64), scale=st.integers(0, 31))
def test_square_root_hypothesis(seed: int, n: int, bits: int, scale: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2**bits, size=n, dtype=np.uint64, endpoint=False)
    check(square_root_model(n), [x, np.array(scale, np.int32)])


# -- SignalFilterBankSpectralSubtraction ----------------------------------------------------------
MICRO_SPEECH_SS = {"alternate_one_minus_smoothing": 15401, "alternate_smoothing": 983,
                   "clamping": False, "min_signal_remaining": 819, "num_channels": 40,
                   "one_minus_smoothing": 15975, "smoothing": 409, "smoothing_bits": 10,
                   "spectral_subtraction_bits": 14}


def spectral_subtraction_model(options: dict[str, Any]) -> bytes:
    nc = options["num_channels"]
    return custom_model("SignalFilterBankSpectralSubtraction", [((nc,), "UINT32", None)],
                        [((nc,), "UINT32"), ((nc,), "UINT32")], options)


@pytest.mark.parametrize("clamping", [False, True], ids=["noclamp", "clamp"])
def test_spectral_subtraction_state(clamping: bool) -> None:
    """Ten invokes: the noise estimate carries over; loud then quiet frames hit the clamp."""
    options = {**MICRO_SPEECH_SS, "clamping": clamping}
    rng = np.random.default_rng(int(clamping))
    frames = [[int_array(rng, (40,), np.uint32, 0, 2**(22 if k < 5 else 8))] for k in range(10)]
    check(spectral_subtraction_model(options), *frames)


@HSET
@given(seed=seeds, nc=st.integers(1, 48), sm=st.integers(0, 2**14), alt=st.integers(0, 2**14),
       ss_bits=st.integers(0, 63), s_bits=st.integers(0, 31), min_sig=st.integers(0, 2**14),
       clamping=st.booleans(), wide=st.booleans())
def test_spectral_subtraction_hypothesis(seed: int, nc: int, sm: int, alt: int, ss_bits: int,
                                         s_bits: int, min_sig: int, clamping: bool,
                                         wide: bool) -> None:
    rng = np.random.default_rng(seed)
    options = {"alternate_one_minus_smoothing": (1 << 14) - alt, "alternate_smoothing": alt,
               "clamping": clamping, "min_signal_remaining": min_sig, "num_channels": nc,
               "one_minus_smoothing": (1 << 14) - sm, "smoothing": sm, "smoothing_bits": s_bits,
               "spectral_subtraction_bits": ss_bits}
    hi = 2**32 - 1 if wide else 2**16
    check(spectral_subtraction_model(options),
          *[[int_array(rng, (nc,), np.uint32, 0, hi)] for _ in range(4)])


def test_spectral_subtraction_reset() -> None:
    from tflite_micro.python.tflite_micro import runtime  # noqa: F401

    model = spectral_subtraction_model(MICRO_SPEECH_SS)
    ref, ours = tflm_interpreter(model), ours_interpreter(model)
    rng = np.random.default_rng(3)
    frames = [int_array(rng, (40,), np.uint32, 0, 2**20) for _ in range(3)]
    for k, x in enumerate(frames):
        if k == 2:
            ref.reset()
            ours.reset_all_variables()
        ref.set_input(x, 0)
        ref.invoke()
        ours.set_tensor(ours.get_input_details()[0]["index"], x)
        ours.invoke()
    for j, d in enumerate(ours.get_output_details()):
        assert_tensor_matches(ours.get_tensor(d["index"]), np.array(ref.get_output(j)),
                              f"output {j} after reset")


# -- SignalPCAN -----------------------------------------------------------------------------------
def micro_speech_gain_lut() -> np.ndarray:
    sg = tflite_ref.load((MODELS / "audio_preprocessor_int8.tflite").read_bytes()).subgraphs[0]
    op = next(o for o in sg.operators if o.custom_code == "SignalPCAN")
    lut = sg.tensors[op.inputs[2]].data
    assert lut is not None
    return np.asarray(lut)


def pcan_model(n: int, snr_shift: int, lut: np.ndarray) -> bytes:
    return custom_model("SignalPCAN", [((n,), "UINT32", None), ((n,), "UINT32", None),
                                       ((lut.size,), "INT16", lut)],
                        [((n,), "UINT32")], {"snr_shift": snr_shift})


def test_pcan_micro_speech_lut() -> None:
    lut = micro_speech_gain_lut()
    rng = np.random.default_rng(5)
    # noise estimates across every LUT interval (x <= 2, then one per leading-bit position)
    noise = np.concatenate([np.arange(0, 40, dtype=np.uint64),
                            (np.uint64(1) << np.arange(2, 32, dtype=np.uint64)),
                            (np.uint64(3) << np.arange(1, 31, dtype=np.uint64))]
                           ).astype(np.uint32)
    n = noise.size
    check(pcan_model(n, 6, lut), [int_array(rng, (n,), np.uint32, 0, 2**16), noise],
          [int_array(rng, (n,), np.uint32), int_array(rng, (n,), np.uint32)])


@HSET
@given(seed=seeds, n=st.integers(1, 64), snr_shift=st.integers(0, 63), own_lut=st.booleans(),
       bits=st.integers(1, 32))
def test_pcan_hypothesis(seed: int, n: int, snr_shift: int, own_lut: bool, bits: int) -> None:
    rng = np.random.default_rng(seed)
    lut = int_array(rng, (125,), np.int16) if own_lut else micro_speech_gain_lut()
    check(pcan_model(n, snr_shift, lut),
          [int_array(rng, (n,), np.uint32, 0, 2**bits - 1), int_array(rng, (n,), np.uint32)])


# -- SignalFilterBankLog --------------------------------------------------------------------------
def log_model(n: int, bits: int, scale: int) -> bytes:
    return custom_model("SignalFilterBankLog", [((n,), "UINT32", None)], [((n,), "INT16")],
                        {"input_correction_bits": bits, "output_scale": scale})


def test_log_edges() -> None:
    x = np.concatenate([np.arange(0, 70), 1 << np.arange(32, dtype=np.uint64),
                        (1 << np.arange(1, 33, dtype=np.uint64)) - 1,
                        [2**32 - 1, 65535, 65537, 123456789]]).astype(np.uint32)
    check(log_model(x.size, 3, 64), [x])
    check(log_model(x.size, 0, 1 << 20), [x])  # out_scale * loge wraps uint32


@HSET
@given(seed=seeds, n=st.integers(1, 64), bits=st.integers(0, 31), scale=st.integers(-2**31,
                                                                                    2**31 - 1))
def test_log_hypothesis(seed: int, n: int, bits: int, scale: int) -> None:
    rng = np.random.default_rng(seed)
    check(log_model(n, bits, scale), [int_array(rng, (n,), np.uint32)])


# -- refusals -------------------------------------------------------------------------------------
@pytest.mark.parametrize("model,match", [
    (lambda: window_model((2, 7), 4, 12, np.ones(4, np.int16)), "not a multiple"),
    (lambda: window_model((1, 8), 8, 32, np.ones(8, np.int16)), "shift is 32"),
    (lambda: rfft_model("int16", None, 9, 8), "last dimension is 9"),
    (lambda: rfft_model("int16", None, 5, 7), "even length"),
    (lambda: rfft_model("int16", None, 2, 2), "radix 1"),
    (lambda: rfft_model("float32", None, 14, 14), "radix 7"),
    (lambda: custom_model("SignalEnergy", [((20,), "INT16", None)], [((10,), "UINT32")],
                          {"end_index": 11, "start_index": 0}), "do not fit"),
    (lambda: custom_model("SignalFilterBankLog", [((4,), "UINT32", None)], [((4,), "INT16")],
                          {"input_correction_bits": 40, "output_scale": 1}), "correction_bits"),
], ids=["window-tiling", "window-shift", "rfft-too-long", "rfft-odd", "rfft-length-2",
     "rfft-radix-7", "energy-range", "log-shift"])
def test_prepare_refuses(model: Any, match: str) -> None:
    with pytest.raises(ModelValidationError, match=match):
        ours_interpreter(model())


def test_tflite_emulation_refuses() -> None:
    """LiteRT has no signal kernels: the LiteRT emulation reports the operator unsupported."""
    it = tflite_ref.Interpreter(model_content=auto_scale_model(4), emulate="tflite")
    with pytest.raises(UnsupportedOpError, match="tflm"):
        it.allocate_tensors()


# -- the micro_speech audio front ends, end to end ------------------------------------------------
@pytest.mark.parametrize("name", ["float", "int8"])
def test_audio_preprocessor(name: str) -> None:
    """Eight 30 ms frames of varied loudness through both front ends; every tensor TFLM keeps
    (kPreserveAllTensors) equals ours after every invoke."""
    model = (MODELS / f"audio_preprocessor_{name}.tflite").read_bytes()
    sg = tflite_ref.load(model).subgraphs[0]
    ref, ours = tflm_interpreter(model, preserve_all=True), ours_interpreter(model)
    energy = next(o for o in sg.operators if o.custom_code == "SignalEnergy")
    opts = energy.custom_options_decoded
    start, end = opts["start_index"], opts["end_index"]
    # SignalEnergy's output and what is computed from it elementwise (the CAST after it)
    partial = {energy.outputs[0]} | {c.outputs[0] for c in sg.operators
                                     if energy.outputs[0] in c.inputs and c.name == "CAST"}
    rng = np.random.default_rng(7)
    t = np.arange(480) / 16000
    for k, amp in enumerate([30000, 3000, 100, 32767, 5, 20000, 0, 12000]):
        x = (amp * np.sin(2 * np.pi * (300 + 500 * k) * t)
             + rng.normal(0, amp / 10 + 1, 480)).clip(-32768, 32767).astype(np.int16)[None]
        if k == 3:
            x[0, 100] = -32768
        ref.set_input(x, 0)
        ref.invoke()
        ours.set_tensor(ours.get_input_details()[0]["index"], x)
        ours.invoke()
        for op in sg.operators:
            for ti in op.outputs:
                r = np.array(ref.GetTensor(ti, 0)["tensor_data"])
                o = ours.get_tensor(ti)
                r = r.reshape(o.shape) if r.size == o.size else r
                if ti in partial:  # TFLM leaves the other bins unwritten (arena garbage)
                    r, o = r[start:end], o[start:end]
                assert_tensor_matches(o, r, f"invoke {k} tensor {ti} ({op.opcode})", rtol=0,
                                      atol=0)
