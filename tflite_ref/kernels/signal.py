"""Custom kernels: TFLite Micro's signal-processing library (the micro_speech audio front end).

Upstream (read, not copied): tensorflow/tflite-micro ``signal/micro/kernels/*.cc`` (options,
Prepare checks, how Eval walks the tensors) and ``signal/src/*.cc`` (the arithmetic), with the
vendored kiss_fft v130 (``_kiss_fft_guts.h``, ``kiss_fft.c``, ``tools/kiss_fftr.c``, patched by
``third_party/kissfft/kissfft.patch``) behind ``signal/src/kiss_fft_wrappers``.

LiteRT has no kernels for these custom operators, so they are registered for ``emulate="tflm"``
only.  All are integer code on unsigned/signed 16-, 32- and 64-bit values whose C semantics
(wrap-around on narrowing stores, ``uint32`` products that overflow, arithmetic right shifts) we
reproduce with explicit masks and NumPy's wrapping integer arrays:

=================================== =========================================================
``SignalWindow``                    ``(x * w) >> shift`` saturated to int16 (``window.cc``)
``SignalFftAutoScale``              shift left by ``15 - msb(max|x|)`` (``fft_auto_scale.cc``)
``SignalRfft``                      kiss_fftr: fixed-point int16/int32 or float32 real FFT
``SignalEnergy``                    ``re² + im²`` per bin in ``[start_index, end_index)``
``SignalFilterBank``                triangular mel channels, uint64 accumulators
``SignalFilterBankSquareRoot``      rounded integer square root, ``>> scale_bits``
``SignalFilterBankSpectralSubtraction`` noise estimate kept between invokes (kernel state)
``SignalPCAN``                      per-channel auto gain from a 125-entry LUT
``SignalFilterBankLog``             fixed-point natural log (``log.cc``)
=================================== =========================================================

Options: TFLM reads them with ``FlexbufferWrapper::ElementAsInt32(i)``, i.e. the *i-th value of
the FlexBuffer map*, whose keys are stored sorted; we read them the same way (by position in the
sorted keys), except ``SignalRfft``'s ``T`` which TFLM looks up by name.

Where TFLM would read or write out of bounds (index options past a tensor, a window that does not
tile its input, shifts of 32 bits or more, which are undefined in C), we refuse the model in
prepare (or raise :class:`~tflite_ref.errors.KernelRuntimeError` at invoke when the offending
values are not constant) instead of guessing what the memory held.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tflite_ref.errors import KernelRuntimeError
from tflite_ref.kernels.registry import OpContext, register_custom
from tflite_ref.kernels.registry import TensorType as T

TFLM_ONLY = ("tflm",)
_M32 = np.uint64(0xFFFFFFFF)

I16 = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]


# =============================================================================================
# Shared helpers
# =============================================================================================
def _option_values(ctx: OpContext) -> list[Any]:
    """The custom options' values in FlexBuffer map order (keys sorted bytewise)."""
    opts = ctx.custom_options
    if opts is None:
        return []
    if not isinstance(opts, dict):
        ctx.fail(f"custom options must be a FlexBuffer map, not {type(opts).__name__}")
    return [opts[k] for k in sorted(opts, key=lambda k: str(k).encode())]


def _element_int32(ctx: OpContext, index: int, name: str) -> int:
    """``FlexbufferWrapper::ElementAsInt32(index)``: the map's ``index``-th value (``name`` in a
    well-formed model), as ``static_cast<int32_t>`` of the stored integer."""
    values = _option_values(ctx)
    if index >= len(values):
        ctx.fail(f"custom options have {len(values)} entries; TFLM reads {name!r} from entry "
                 f"{index} (keys in sorted order)")
    value = values[index]
    if isinstance(value, (bool, np.bool_)):
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        # TFLM reinterprets the stored bytes as an integer; we do not guess their layout.
        ctx.fail(f"custom option {name!r} (entry {index}) must be an integer, not {value!r}")
    return (int(value) + 2**31) % 2**32 - 2**31


def _require_shift(ctx: OpContext, name: str, value: int, width: int) -> None:
    """A C shift by ``value`` of a ``width``-bit operand is undefined outside ``[0, width)``."""
    if not 0 <= value < width:
        ctx.fail(f"{name} is {value}; it shifts a {width}-bit value, so it must lie in "
                 f"[0, {width - 1}] (TFLM's shift would be undefined behaviour)")


def _require_rank(ctx: OpContext, what: str, shape: Sequence[int], rank: int) -> None:
    if len(shape) != rank:
        ctx.fail(f"{what} has shape {list(shape)}; TFLM requires rank {rank}")


def _require_io(ctx: OpContext, n_in: int, n_out: int) -> None:
    if ctx.num_inputs != n_in or ctx.num_outputs != n_out:
        ctx.fail(f"takes {n_in} inputs and {n_out} outputs, not {ctx.num_inputs} and "
                 f"{ctx.num_outputs}")
    for i in range(n_in):
        ctx.require_input(i)


def _bit_length(x: npt.NDArray[np.integer]) -> I64:
    """Position of the highest set bit (0 for 0): ``32 - __builtin_clz(x)`` for ``x != 0``.

    float64 holds every value below 2**53 exactly, so ``frexp``'s exponent is exact.
    """
    return np.frexp(x.astype(np.float64))[1].astype(np.int64)


def _data_error(locator: str, message: str) -> KernelRuntimeError:
    return KernelRuntimeError(f"{locator}: {message}")


# =============================================================================================
# SignalWindow  (signal/micro/kernels/window.cc, signal/src/window.cc)
# =============================================================================================
@dataclass(frozen=True, slots=True)
class WindowData:
    shift: int
    window_size: int


def prepare_window(ctx: OpContext) -> WindowData:
    _require_io(ctx, 2, 1)
    ctx.expect_types(input0=T.INT16, input1=T.INT16, output0=T.INT16)
    shift = _element_int32(ctx, 0, "shift")
    _require_shift(ctx, "shift", shift, 32)
    shape, wshape = ctx.input_shape(0), ctx.input_shape(1)
    if len(shape) < 1:
        ctx.fail("the input must have rank >= 1")
    _require_rank(ctx, "the window", wshape, 1)
    size, n = math.prod(shape), wshape[0]
    # TFLM applies the window to consecutive chunks of `n` samples: a partial last chunk would
    # read the window and write the output past their ends.
    if n <= 0 or size % n:
        ctx.fail(f"the input has {size} samples, not a multiple of the window's {n}")
    ctx.set_output_shape(0, shape)
    return WindowData(shift, n)


def signal_window(data: WindowData, x: I16, w: I16) -> I16:
    """``ApplyWindow``: ``(int32(x) * w) >> shift``, saturated to int16, chunk by chunk."""
    rows = x.reshape(-1, data.window_size).astype(np.int32)
    raw = (rows * w.astype(np.int32)) >> data.shift  # |x·w| < 2**30: no int32 overflow
    out: I16 = np.clip(raw, -32768, 32767).astype(np.int16).reshape(x.shape)
    return out


# =============================================================================================
# SignalFftAutoScale  (fft_auto_scale_kernel.cc, signal/src/fft_auto_scale.cc, max_abs.cc)
# =============================================================================================
@dataclass(frozen=True, slots=True)
class FftAutoScaleData:
    size: int


def prepare_fft_auto_scale(ctx: OpContext) -> FftAutoScaleData:
    _require_io(ctx, 1, 2)
    ctx.expect_types(input0=T.INT16, output0=T.INT16, output1=T.INT32)
    shape = ctx.input_shape(0)
    _require_rank(ctx, "the input", shape, 1)
    ctx.set_output_shape(0, shape)
    ctx.set_output_shape(1, ())
    return FftAutoScaleData(shape[0])


def _max_abs16(x: I16) -> int:
    """``MaxAbs16`` (portable path), including what it does with -32768.

    The loop keeps an int16 ``max`` (start 0): ``if v > max: max = v elif -v > max: max = -v``.
    ``-(-32768)`` stored in int16 is -32768 again, so after the last -32768 ``max`` is negative;
    it then follows the input while the input keeps rising through negative values, and the first
    value that does not (``v >= 0`` or ``v <= previous``) makes it ``|v|``, after which it is the
    running maximum of ``|v|`` again.
    """
    hits = np.flatnonzero(x == -32768)
    if hits.size == 0:
        return int(np.abs(x.astype(np.int32)).max(initial=0))
    tail = x[hits[-1]:].astype(np.int32)
    ends = np.flatnonzero((tail[1:] >= 0) | (tail[1:] <= tail[:-1]))
    if ends.size == 0:
        return int(tail[-1])
    return int(np.abs(tail[ends[0] + 1:]).max())


def signal_fft_auto_scale(data: FftAutoScaleData, x: I16) -> tuple[I16, I32]:
    """``FftAutoScale``: scale bits ``16 - MostSignificantBit32(max) - 1``, at least 0.

    ``max`` is converted to uint32: a negative one (see :func:`_max_abs16`) has bit 31 set and,
    like 0 (``MostSignificantBit32(0)`` is 32 with GCC's builtin), gives no scaling.
    """
    m = _max_abs16(x)
    scale_bits = 15 - m.bit_length() if m > 0 else 0
    out = (x.astype(np.int32) << scale_bits).astype(np.int16)  # int16 store: wraps
    return out, np.array(scale_bits, dtype=np.int32)


# =============================================================================================
# SignalRfft  (signal/micro/kernels/rfft.cc, signal/src/rfft_*.cc, kiss_fft v130)
# =============================================================================================
# kiss_fft's scalar arithmetic for one build (FIXED_POINT=16, FIXED_POINT=32 or float).  Complex
# values are pairs of arrays of the scalar type; NumPy's wrapping integer arithmetic is C's
# (implementation-defined) narrowing store, which is modular, so only the non-modular steps --
# the rounding shift of `sround` and `HALF_OF` -- need the wider intermediate C computes in.
Cpx = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, slots=True)
class _KissArith:
    """``_kiss_fft_guts.h`` for one ``kiss_fft_scalar``."""

    dtype: type[np.generic]  # kiss_fft_scalar
    frac_bits: int  # FRACBITS (15 or 31); 0 for float

    @property
    def fixed(self) -> bool:
        return self.frac_bits > 0

    @property
    def samp_max(self) -> int:
        return (1 << self.frac_bits) - 1

    def sround(self, x: I64) -> np.ndarray:
        """``sround``: ``(x + 2**(FRACBITS-1)) >> FRACBITS`` in SAMPPROD, cast to the scalar."""
        return ((x + (1 << (self.frac_bits - 1))) >> self.frac_bits).astype(self.dtype)

    def s_mul(self, a: np.ndarray, b: Any) -> np.ndarray:
        """``S_MUL``: ``sround(smul(a, b))`` (fixed) or ``a * b`` (``b`` a scalar twiddle part)."""
        if not self.fixed:
            prod: np.ndarray = a * b
            return prod
        return self.sround(a.astype(np.int64) * np.asarray(b).astype(np.int64))

    def c_mul(self, a: Cpx, b: Cpx) -> Cpx:
        """``C_MUL``: one rounding per component (fixed: of the exact int64 difference/sum)."""
        ar, ai = a
        br, bi = b
        if not self.fixed:
            return ar * br - ai * bi, ar * bi + ai * br
        ar64, ai64 = ar.astype(np.int64), ai.astype(np.int64)
        br64, bi64 = np.asarray(br).astype(np.int64), np.asarray(bi).astype(np.int64)
        return self.sround(ar64 * br64 - ai64 * bi64), self.sround(ar64 * bi64 + ai64 * br64)

    def fixdiv(self, c: Cpx, div: int) -> Cpx:
        """``C_FIXDIV``: multiply by ``SAMP_MAX / div`` (integer division) and round; float:
        no-op.  This is kiss_fft's per-stage scaling that keeps fixed-point sums in range."""
        if not self.fixed:
            return c
        k = np.int64(self.samp_max // div)
        return self.sround(c[0].astype(np.int64) * k), self.sround(c[1].astype(np.int64) * k)

    def half(self, x: np.ndarray) -> np.ndarray:
        """``HALF_OF`` of a scalar: ``x >> 1`` (fixed) or ``x * 0.5f`` (TFLM's patch)."""
        out: np.ndarray = x >> 1 if self.fixed else x * self.dtype(0.5)
        return out

    def half_sum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``HALF_OF(a + b)``: the sum is an ``int`` (int16 operands are promoted, so it does not
        wrap before the shift; int32 ones wrap) or a float."""
        if not self.fixed:
            out: np.ndarray = (a + b) * self.dtype(0.5)
            return out
        s = a.astype(np.int32) + b.astype(np.int32)
        return (s >> 1).astype(self.dtype)

    def half_diff(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``HALF_OF(a - b)``, as :meth:`half_sum`."""
        if not self.fixed:
            out: np.ndarray = (a - b) * self.dtype(0.5)
            return out
        s = a.astype(np.int32) - b.astype(np.int32)
        return (s >> 1).astype(self.dtype)

    def twiddle(self, phase: float) -> tuple[Any, Any]:
        """``kf_cexp``: fixed ``floor(.5 + SAMP_MAX * cos(phase))``, float ``(float) cos(phase)``.

        ``math.cos`` is the C library's ``cos``, as in the compiled kernel.
        """
        c, s = math.cos(phase), math.sin(phase)
        if self.fixed:
            return (self.dtype(math.floor(0.5 + self.samp_max * c)),
                    self.dtype(math.floor(0.5 + self.samp_max * s)))
        return self.dtype(c), self.dtype(s)


_ARITH: dict[int, _KissArith] = {
    T.INT16: _KissArith(np.int16, 15),
    T.INT32: _KissArith(np.int32, 31),
    T.FLOAT32: _KissArith(np.float32, 0),
}


@dataclass(frozen=True, slots=True)
class _KissStage:
    """One ``kf_work`` level: ``fstride`` blocks of ``radix * m`` outputs, recombined by
    ``kf_bfly<radix>`` with twiddle stride ``fstride``."""

    radix: int
    m: int
    fstride: int
    tw: tuple[Cpx, ...]  # tw[q - 1][k] = twiddles[(q * k * fstride) mod n], q = 1..radix-1
    extra: tuple[Any, ...]  # radix 3: epi3; radix 5: ya, yb (scalar twiddles)


@dataclass(frozen=True, slots=True)
class _KissPlan:
    nfft: int  # complex FFT length (fft_length / 2)
    perm: npt.NDArray[np.intp]  # Fout position -> input index at the leaves of kf_work
    stages: tuple[_KissStage, ...]  # top level first
    super_twiddles: Cpx  # kiss_fftr's, for k = 1 .. nfft/2


def _kf_factor(n: int) -> list[tuple[int, int]]:
    """``kf_factor``: powers of 4, then 2, then odd primes; (radix, remaining length) pairs."""
    out: list[tuple[int, int]] = []
    p = 4
    floor_sqrt = math.floor(math.sqrt(n))
    while True:
        while n % p:
            p = 2 if p == 4 else 3 if p == 2 else p + 2
            if p > floor_sqrt:
                p = n
        n //= p
        out.append((p, n))
        if n <= 1:
            return out


def _kiss_plan(arith: _KissArith, fft_length: int) -> _KissPlan:
    """``kiss_fftr_alloc`` + ``kiss_fft_alloc`` (forward): twiddles and factors, plus the index
    bookkeeping that lets us run each ``kf_work`` level over all its blocks at once."""
    n = fft_length // 2
    pi = 3.141592653589793238462643383279502884197169399375105820974944
    tw_pairs = [arith.twiddle(-2 * pi * i / n) for i in range(n)]
    twr = np.array([t[0] for t in tw_pairs], dtype=arith.dtype)
    twi = np.array([t[1] for t in tw_pairs], dtype=arith.dtype)

    factors = _kf_factor(n)
    stages = []
    pos = np.zeros(1, dtype=np.intp)
    src = np.zeros(1, dtype=np.intp)
    fstride = 1
    for p, m in factors:
        q = np.arange(p, dtype=np.intp)
        pos = (pos[:, None] + q[None, :] * m).ravel()
        src = (src[:, None] + q[None, :] * fstride).ravel()
        k = np.arange(m)
        tw = tuple((twr[(qq * k * fstride) % n], twi[(qq * k * fstride) % n])
                   for qq in range(1, p))
        if p == 3:
            extra: tuple[Any, ...] = ((twr[fstride * m], twi[fstride * m]),)
        elif p == 5:
            extra = ((twr[fstride * m], twi[fstride * m]),
                     (twr[2 * fstride * m], twi[2 * fstride * m]))
        else:
            extra = ()
        stages.append(_KissStage(p, m, fstride, tw, extra))
        fstride *= p
    perm = np.empty(n, dtype=np.intp)
    perm[pos] = src

    half = n // 2
    st = [arith.twiddle(-3.14159265358979323846264338327 * ((i + 1) / n + 0.5))
          for i in range(half)]
    sup = (np.array([t[0] for t in st], dtype=arith.dtype),
           np.array([t[1] for t in st], dtype=arith.dtype))
    return _KissPlan(n, perm, tuple(stages), sup)


def _bfly2(a: _KissArith, s: _KissStage, f: list[Cpx]) -> list[Cpx]:
    x0, x1 = a.fixdiv(f[0], 2), a.fixdiv(f[1], 2)
    t = a.c_mul(x1, s.tw[0])
    return [(x0[0] + t[0], x0[1] + t[1]), (x0[0] - t[0], x0[1] - t[1])]


def _bfly3(a: _KissArith, s: _KissStage, f: list[Cpx]) -> list[Cpx]:
    x0, x1, x2 = (a.fixdiv(c, 3) for c in f)
    s1, s2 = a.c_mul(x1, s.tw[0]), a.c_mul(x2, s.tw[1])
    s3 = (s1[0] + s2[0], s1[1] + s2[1])
    s0 = (s1[0] - s2[0], s1[1] - s2[1])
    y1r, y1i = x0[0] - a.half(s3[0]), x0[1] - a.half(s3[1])
    epi3_i = s.extra[0][1]
    s0 = (a.s_mul(s0[0], epi3_i), a.s_mul(s0[1], epi3_i))  # C_MULBYSCALAR
    y0 = (x0[0] + s3[0], x0[1] + s3[1])
    y2 = (y1r + s0[1], y1i - s0[0])
    return [y0, (y1r - s0[1], y1i + s0[0]), y2]


def _bfly4(a: _KissArith, s: _KissStage, f: list[Cpx]) -> list[Cpx]:
    x0, x1, x2, x3 = (a.fixdiv(c, 4) for c in f)
    s0, s1, s2 = a.c_mul(x1, s.tw[0]), a.c_mul(x2, s.tw[1]), a.c_mul(x3, s.tw[2])
    s5 = (x0[0] - s1[0], x0[1] - s1[1])
    y0 = (x0[0] + s1[0], x0[1] + s1[1])
    s3 = (s0[0] + s2[0], s0[1] + s2[1])
    s4 = (s0[0] - s2[0], s0[1] - s2[1])
    y2 = (y0[0] - s3[0], y0[1] - s3[1])
    y0 = (y0[0] + s3[0], y0[1] + s3[1])
    y1 = (s5[0] + s4[1], s5[1] - s4[0])  # forward transform
    y3 = (s5[0] - s4[1], s5[1] + s4[0])
    return [y0, y1, y2, y3]


def _bfly5(a: _KissArith, s: _KissStage, f: list[Cpx]) -> list[Cpx]:
    (yar, yai), (ybr, ybi) = s.extra
    x0, x1, x2, x3, x4 = (a.fixdiv(c, 5) for c in f)
    s1, s2 = a.c_mul(x1, s.tw[0]), a.c_mul(x2, s.tw[1])
    s3, s4 = a.c_mul(x3, s.tw[2]), a.c_mul(x4, s.tw[3])
    s7 = (s1[0] + s4[0], s1[1] + s4[1])
    s10 = (s1[0] - s4[0], s1[1] - s4[1])
    s8 = (s2[0] + s3[0], s2[1] + s3[1])
    s9 = (s2[0] - s3[0], s2[1] - s3[1])
    m = a.s_mul
    y0 = (x0[0] + (s7[0] + s8[0]), x0[1] + (s7[1] + s8[1]))
    s5 = (x0[0] + m(s7[0], yar) + m(s8[0], ybr), x0[1] + m(s7[1], yar) + m(s8[1], ybr))
    s6 = (m(s10[1], yai) + m(s9[1], ybi), -m(s10[0], yai) - m(s9[0], ybi))
    y1 = (s5[0] - s6[0], s5[1] - s6[1])
    y4 = (s5[0] + s6[0], s5[1] + s6[1])
    s11 = (x0[0] + m(s7[0], ybr) + m(s8[0], yar), x0[1] + m(s7[1], ybr) + m(s8[1], yar))
    s12 = (-m(s10[1], ybi) + m(s9[1], yai), m(s10[0], ybi) - m(s9[0], yai))
    y2 = (s11[0] + s12[0], s11[1] + s12[1])
    y3 = (s11[0] - s12[0], s11[1] - s12[1])
    return [y0, y1, y2, y3, y4]


_BUTTERFLIES: dict[int, Callable[[_KissArith, _KissStage, list[Cpx]], list[Cpx]]] = {
    2: _bfly2, 3: _bfly3, 4: _bfly4, 5: _bfly5}


def _kiss_fft(a: _KissArith, plan: _KissPlan, re: np.ndarray, im: np.ndarray) -> Cpx:
    """``kiss_fft`` (forward) on every row of ``re + i·im``: the recursion of ``kf_work`` run
    level by level, deepest first, each level's butterflies over all its blocks at once."""
    rows, n = re.shape
    re, im = re[:, plan.perm], im[:, plan.perm]
    for st in reversed(plan.stages):
        shape = (rows, st.fstride, st.radix, st.m)
        r4, i4 = re.reshape(shape), im.reshape(shape)
        parts = [(r4[:, :, q, :], i4[:, :, q, :]) for q in range(st.radix)]
        out = _BUTTERFLIES[st.radix](a, st, parts)
        re = np.stack([o[0] for o in out], axis=2).reshape(rows, n)
        im = np.stack([o[1] for o in out], axis=2).reshape(rows, n)
    return re, im


def _kiss_fftr(a: _KissArith, plan: _KissPlan, x: np.ndarray) -> Cpx:
    """``kiss_fftr``: the real input as ``n`` complex pairs (even samples real, odd imaginary),
    one complex FFT, then the split into ``n + 1`` bins (``tools/kiss_fftr.c``)."""
    n = plan.nfft
    rows = x.shape[0]
    tr, ti = _kiss_fft(a, plan, x[:, 0::2], x[:, 1::2])
    out_r = np.zeros((rows, n + 1), dtype=a.dtype)
    out_i = np.zeros((rows, n + 1), dtype=a.dtype)
    tdc = a.fixdiv((tr[:, 0], ti[:, 0]), 2)
    out_r[:, 0] = tdc[0] + tdc[1]
    out_r[:, n] = tdc[0] - tdc[1]
    half = n // 2
    if half:
        k = np.arange(1, half + 1)
        fpk = a.fixdiv((tr[:, k], ti[:, k]), 2)
        fpnk = a.fixdiv((tr[:, n - k], -ti[:, n - k]), 2)  # conj; int16 -(-32768) wraps
        f1k = (fpk[0] + fpnk[0], fpk[1] + fpnk[1])
        f2k = (fpk[0] - fpnk[0], fpk[1] - fpnk[1])
        tw = a.c_mul(f2k, plan.super_twiddles)
        out_r[:, k] = a.half_sum(f1k[0], tw[0])
        out_i[:, k] = a.half_sum(f1k[1], tw[1])
        # Written after bin k, so at k == n/2 (the same bin) these values win, as in C.
        out_r[:, n - k] = a.half_diff(f1k[0], tw[0])
        out_i[:, n - k] = a.half_diff(tw[1], f1k[1])
    return out_r, out_i


@dataclass(frozen=True, slots=True)
class RfftData:
    arith: _KissArith
    plan: _KissPlan
    fft_length: int
    input_length: int
    out_shape: tuple[int, ...]


def prepare_rfft(ctx: OpContext) -> RfftData:
    _require_io(ctx, 1, 1)
    opts = ctx.custom_options
    if not isinstance(opts, dict) or "T" not in opts:
        ctx.fail("custom options must be a FlexBuffer map with 'T' (the tensor type)")
    raw_t = opts["T"]  # RfftInitAll looks "T" up by name (m["T"].AsInt32())
    if not isinstance(raw_t, (int, np.integer)) or isinstance(raw_t, bool):
        ctx.fail(f"custom option 'T' must be an integer, not {raw_t!r}")
    ttype = int(raw_t)
    arith = _ARITH.get(ttype)
    if arith is None:
        ctx.fail(f"T is {ttype}; TFLM's kernel takes INT16 (7), INT32 (2) or FLOAT32 (0)")
    fft_length = _element_int32(ctx, 1, "fft_length")
    ctx.expect_types(input0=ttype, output0=ttype)
    # kiss_fftr_alloc returns NULL for an odd length (TFLM then runs with no state).
    if fft_length < 2 or fft_length % 2:
        ctx.fail(f"fft_length is {fft_length}; kiss_fftr needs an even length >= 2")
    # kf_bfly_generic (radices other than 2, 3, 4, 5 -- and length 1) takes its scratch from
    # KISS_FFT_TMP_ALLOC, which TFLM's kissfft.patch turns into a null pointer: TFLM writes
    # through it and crashes.  We refuse those lengths.
    radices = sorted({p for p, _ in _kf_factor(fft_length // 2)} - set(_BUTTERFLIES))
    if radices:
        ctx.fail(f"fft_length {fft_length} factors (as kiss_fft does, over fft_length/2) into "
                 f"radix {', '.join(map(str, radices))}; TFLM's kiss_fft has no scratch memory "
                 "for such stages (its allocator is patched to return NULL) and crashes. Use "
                 "a length whose half is a product of 2, 3 and 5")
    shape = ctx.input_shape(0)
    if len(shape) < 1:
        ctx.fail("the input must have rank >= 1")
    out_declared = ctx.output(0).shape
    if len(out_declared) != len(shape):
        ctx.fail(f"input rank {len(shape)} and output rank {len(out_declared)} differ")
    input_length = shape[-1]
    if not 0 < input_length <= fft_length:
        ctx.fail(f"the input's last dimension is {input_length}; it must lie in "
                 f"[1, fft_length={fft_length}] (TFLM zero-pads each row to fft_length)")
    out_shape = (*shape[:-1], fft_length + 2)
    # TFLM steps through the output by half its declared last dimension (complex values) and
    # writes fft_length/2 + 1 of them per row: any other size overlaps rows or overruns.
    if out_declared[-1] != fft_length + 2:
        ctx.fail(f"the output's last dimension is {out_declared[-1]}; it must be "
                 f"fft_length + 2 = {fft_length + 2} (fft_length/2 + 1 complex values)")
    ctx.set_output_shape(0, out_shape)
    return RfftData(arith, _kiss_plan(arith, fft_length), fft_length, input_length, out_shape)


def signal_rfft(data: RfftData, x: np.ndarray) -> np.ndarray:
    """``RfftEval``: each row zero-padded to ``fft_length``, ``kiss_fftr``, output interleaved
    ``[re0, im0, re1, im1, ...]`` (``Complex<T>``)."""
    rows = x.reshape(-1, data.input_length)
    padded = np.zeros((rows.shape[0], data.fft_length), dtype=data.arith.dtype)
    padded[:, :data.input_length] = rows
    re, im = _kiss_fftr(data.arith, data.plan, padded)
    out = np.stack([re, im], axis=-1).reshape(data.out_shape)
    return out.astype(data.arith.dtype, copy=False)


# =============================================================================================
# SignalEnergy  (signal/micro/kernels/energy.cc, signal/src/energy.cc)
# =============================================================================================
@dataclass(frozen=True, slots=True)
class EnergyData:
    start: int
    end: int
    out_shape: tuple[int, ...]


def prepare_energy(ctx: OpContext) -> EnergyData:
    _require_io(ctx, 1, 1)
    ctx.expect_types(input0=T.INT16, output0=T.UINT32)
    end = _element_int32(ctx, 0, "end_index")
    start = _element_int32(ctx, 1, "start_index")
    shape, out_shape = ctx.input_shape(0), ctx.output(0).shape
    _require_rank(ctx, "the input", shape, 1)
    _require_rank(ctx, "the output", out_shape, 1)
    bins = shape[0] // 2
    if start < end and (start < 0 or end > min(bins, out_shape[0])):
        ctx.fail(f"bins [{start}, {end}) do not fit the input's {bins} complex values and the "
                 f"output's {out_shape[0]} elements")
    ctx.set_output_shape(0, out_shape)
    return EnergyData(start, end, tuple(out_shape))


def signal_energy(data: EnergyData, x: I16) -> U32:
    """``SpectrumToEnergy``: ``re*re + im*im`` (int32, wrapping only for -32768 twice) stored as
    uint32, for bins ``[start_index, end_index)``.

    TFLM leaves the other output elements unwritten (they keep whatever the arena held); we
    write 0 there.  The audio front end overwrites them with constants right after.
    """
    out = np.zeros(data.out_shape, dtype=np.uint32)
    if data.start < data.end:
        c = x.astype(np.int64)[:2 * data.end].reshape(-1, 2)[data.start:]
        out[data.start:data.end] = ((c[:, 0] * c[:, 0] + c[:, 1] * c[:, 1])
                                    & 0xFFFFFFFF).astype(np.uint32)
    return out


# =============================================================================================
# SignalFilterBank  (signal/micro/kernels/filter_bank.cc, signal/src/filter_bank.cc)
# =============================================================================================
@dataclass(frozen=True, slots=True)
class _FilterBankIndex:
    """Flattened loops of ``FilterbankAccumulateChannels``: for each (channel, j) term, the
    spectrum index ``freq_start + j`` and the weight index ``weight_start + j``."""

    freq: npt.NDArray[np.intp]
    weight: npt.NDArray[np.intp]
    bounds: npt.NDArray[np.intp]  # channel c's terms are [bounds[c], bounds[c+1])


def _filter_bank_index(num_channels: int, freq_starts: np.ndarray, weight_starts: np.ndarray,
                       widths: np.ndarray, n_in: int, n_w: int) -> _FilterBankIndex | str:
    """The index arrays, or a message saying which channel reads out of bounds."""
    nc = num_channels + 1
    for name, arr in (("channel frequency starts", freq_starts),
                      ("channel weight starts", weight_starts), ("channel widths", widths)):
        if arr.shape[0] < nc:
            return f"{name} have {arr.shape[0]} entries; num_channels + 1 = {nc} are read"
    fs = freq_starts[:nc].astype(np.int64)
    ws = weight_starts[:nc].astype(np.int64)
    wd = np.maximum(widths[:nc].astype(np.int64), 0)  # a negative width runs no iteration
    used = wd > 0
    bad = used & ((fs < 0) | (fs + wd > n_in) | (ws < 0) | (ws + wd > n_w))
    if bad.any():
        c = int(np.flatnonzero(bad)[0])
        return (f"channel {c} reads spectrum [{fs[c]}, {fs[c] + wd[c]}) of {n_in} and weights "
                f"[{ws[c]}, {ws[c] + wd[c]}) of {n_w}: out of bounds")
    bounds = np.concatenate([[0], np.cumsum(wd)]).astype(np.intp)
    chan = np.repeat(np.arange(nc), wd)
    j = np.arange(int(bounds[-1])) - bounds[chan]
    return _FilterBankIndex((fs[chan] + j).astype(np.intp), (ws[chan] + j).astype(np.intp),
                            bounds)


@dataclass(frozen=True, slots=True)
class FilterBankData:
    num_channels: int
    n_out: int
    index: _FilterBankIndex | None  # None: the channel tables are computed at run time
    locator: str


def prepare_filter_bank(ctx: OpContext) -> FilterBankData:
    _require_io(ctx, 6, 1)
    ctx.expect_types(input0=T.UINT32, input1=T.INT16, input2=T.INT16, input3=T.INT16,
                     input4=T.INT16, input5=T.INT16, output0=T.UINT64)
    nc = _element_int32(ctx, 0, "num_channels")
    if nc < 0:
        ctx.fail(f"num_channels is {nc}")
    shapes = [ctx.input_shape(i) for i in range(6)]
    for i, s in enumerate(shapes):
        _require_rank(ctx, f"input {i}", s, 1)
    out_shape = ctx.output(0).shape
    _require_rank(ctx, "the output", out_shape, 1)
    # Eval copies the output's size from the num_channels + 1 accumulators, skipping the first.
    if out_shape[0] > nc:
        ctx.fail(f"the output has {out_shape[0]} elements; only num_channels = {nc} are "
                 "computed")
    if shapes[1][0] != shapes[2][0]:
        ctx.fail(f"weights ({shapes[1][0]}) and unweights ({shapes[2][0]}) differ in length")
    freq, wstart, width = (ctx.const(i) for i in (3, 4, 5))
    index = None
    if freq is not None and wstart is not None and width is not None:
        got = _filter_bank_index(nc, freq, wstart, width, shapes[0][0], shapes[1][0])
        if isinstance(got, str):
            ctx.fail(got)
        index = got
    ctx.set_output_shape(0, out_shape)
    return FilterBankData(nc, out_shape[0], index, ctx.op.locator)


def signal_filter_bank(data: FilterBankData, x: U32, weights: I16, unweights: I16,
                       freq_starts: I16, weight_starts: I16, widths: I16) -> U64:
    """``FilterbankAccumulateChannels``: channel c's output is its weighted sum plus the
    previous channel's unweighted sum (the triangles overlap), all in uint64 arithmetic.

    ``int16 weight * uint64 input`` converts the weight to uint64 (a negative weight wraps
    modulo 2**64), and so do the sums: NumPy's uint64 arithmetic is the same ring.
    """
    index = data.index
    if index is None:
        got = _filter_bank_index(data.num_channels, freq_starts, weight_starts, widths,
                                 x.shape[0], weights.shape[0])
        if isinstance(got, str):
            raise _data_error(data.locator, got)
        index = got
    spec = x.astype(np.uint64)[index.freq]
    wt = spec * weights.astype(np.int64).astype(np.uint64)[index.weight]
    un = spec * unweights.astype(np.int64).astype(np.uint64)[index.weight]
    zero = np.zeros(1, dtype=np.uint64)
    cw, cu = np.concatenate([zero, np.cumsum(wt)]), np.concatenate([zero, np.cumsum(un)])
    w_sum = cw[index.bounds[1:]] - cw[index.bounds[:-1]]  # per channel 0..num_channels
    u_sum = cu[index.bounds[1:]] - cu[index.bounds[:-1]]
    acc = w_sum[1:] + u_sum[:-1]  # work_area[1:]: the first channel's weighted sum is dropped
    out: U64 = acc[:data.n_out].astype(np.uint64)
    return out


# =============================================================================================
# SignalFilterBankSquareRoot  (filter_bank_square_root*.cc, square_root_{32,64}.cc)
# =============================================================================================
@dataclass(frozen=True, slots=True)
class SquareRootData:
    locator: str


def prepare_filter_bank_square_root(ctx: OpContext) -> SquareRootData:
    _require_io(ctx, 2, 1)
    ctx.expect_types(input0=T.UINT64, input1=T.INT32, output0=T.UINT32)
    shape = ctx.input_shape(0)
    _require_rank(ctx, "the input", shape, 1)
    _require_rank(ctx, "scale_bits", ctx.input_shape(1), 0)
    ctx.set_output_shape(0, shape)
    return SquareRootData(ctx.op.locator)


def _sqrt64(n: U64) -> U64:
    """``Sqrt64`` (and ``Sqrt32`` below 2**32): floor square root by the bit-by-bit method, then
    +1 when the remainder exceeds the root -- round to nearest -- except at the type's maximum
    (0xFFFF from Sqrt32, 0xFFFFFFFF from Sqrt64).

    The floor root is found from float64's estimate and corrected with exact uint64 squares
    (the root is below 2**32, so its square fits).
    """
    r = np.minimum(np.floor(np.sqrt(n.astype(np.float64))), 0xFFFFFFFF).astype(np.uint64)
    for _ in range(2):
        r = np.where(r * r > n, r - np.uint64(1), r)
    for _ in range(2):
        r1 = r + np.uint64(1)
        r = np.where((r < 0xFFFFFFFF) & (r1 * r1 <= n), r1, r)
    cap = np.where((n >> np.uint64(32)) == 0, np.uint64(0xFFFF), np.uint64(0xFFFFFFFF))
    rounded: U64 = np.where((n - r * r > r) & (r != cap), r + np.uint64(1), r)
    return rounded


def signal_filter_bank_square_root(data: SquareRootData, x: U64, scale_bits: I32) -> U32:
    """``FilterbankSqrt``: ``Sqrt64(x) >> scale_bits`` (a uint32 shift)."""
    s = int(np.asarray(scale_bits).reshape(-1)[0])
    if not 0 <= s < 32:
        raise _data_error(data.locator, f"scale_bits is {s}; a uint32 shift needs [0, 31]")
    root: U64 = _sqrt64(x.astype(np.uint64)) >> np.uint64(s)
    return root.astype(np.uint32)


# =============================================================================================
# SignalFilterBankSpectralSubtraction  (filter_bank_spectral_subtraction.cc, both files)
# =============================================================================================
@dataclass(frozen=True, slots=True)
class SpectralSubtractionData:
    """Options plus the noise estimate, the kernel's own persistent buffer: it survives invokes,
    starts at 0 in prepare and goes back to 0 on ``reset()`` (TFLM's registration ``reset``,
    which ``MicroInterpreter::Reset`` calls for every node)."""

    smoothing: U64  # per channel: even channels `smoothing`, odd ones `alternate_smoothing`
    one_minus_smoothing: U64
    min_signal_remaining: np.uint64
    smoothing_bits: np.uint64
    spectral_subtraction_bits: np.uint64
    clamping: bool
    noise_estimate: U32 = field(compare=False)  # mutated in place by eval

    def reset(self) -> None:
        self.noise_estimate[...] = 0


def prepare_filter_bank_spectral_subtraction(ctx: OpContext) -> SpectralSubtractionData:
    _require_io(ctx, 1, 2)
    ctx.expect_types(input0=T.UINT32, output0=T.UINT32, output1=T.UINT32)
    # Index order = the option names sorted (FlexbufferWrapper reads map values by position).
    alt_oms = _element_int32(ctx, 0, "alternate_one_minus_smoothing")
    alt_sm = _element_int32(ctx, 1, "alternate_smoothing")
    clamping = _element_int32(ctx, 2, "clamping") != 0  # ElementAsBool: nonzero
    min_sig = _element_int32(ctx, 3, "min_signal_remaining")
    nc = _element_int32(ctx, 4, "num_channels")
    oms = _element_int32(ctx, 5, "one_minus_smoothing")
    sm = _element_int32(ctx, 6, "smoothing")
    sbits = _element_int32(ctx, 7, "smoothing_bits")
    ssbits = _element_int32(ctx, 8, "spectral_subtraction_bits")
    _require_shift(ctx, "smoothing_bits", sbits, 32)
    _require_shift(ctx, "spectral_subtraction_bits", ssbits, 64)
    shape = ctx.input_shape(0)
    for what, s in (("the input", shape), ("the output", ctx.output(0).shape),
                    ("the noise estimate", ctx.output(1).shape)):
        _require_rank(ctx, what, s, 1)
        # TFLM loops over num_channels and copies the noise estimate by the output's size.
        if s[0] != nc:
            ctx.fail(f"{what} has {s[0]} elements; num_channels is {nc}")
    u32 = [v & 0xFFFFFFFF for v in (sm, oms, alt_sm, alt_oms, min_sig)]  # uint32 config fields
    even = np.arange(nc) % 2 == 0
    smoothing = np.where(even, u32[0], u32[2]).astype(np.uint64)
    one_minus = np.where(even, u32[1], u32[3]).astype(np.uint64)
    ctx.set_output_shape(0, shape)
    ctx.set_output_shape(1, shape)
    return SpectralSubtractionData(smoothing, one_minus, np.uint64(u32[4]), np.uint64(sbits),
                                   np.uint64(ssbits), clamping, np.zeros(nc, dtype=np.uint32))


def signal_filter_bank_spectral_subtraction(data: SpectralSubtractionData, x: U32
                                            ) -> tuple[U32, U32]:
    """``FilterbankSpectralSubtraction``: a smoothed noise estimate per channel, subtracted from
    the signal with a floor of ``min_signal_remaining`` times the signal.

    ``signal << smoothing_bits`` is a uint32 (wraps); the smoothing sum is uint64 (wraps too),
    shifted and stored back in uint32.
    """
    inp = x.astype(np.uint64)
    scaled = (inp << data.smoothing_bits) & _M32
    noise = ((scaled * data.smoothing + data.noise_estimate.astype(np.uint64)
              * data.one_minus_smoothing) >> data.spectral_subtraction_bits) & _M32
    estimate = np.minimum(noise, scaled)
    if data.clamping:
        noise = estimate
    floor = ((inp * data.min_signal_remaining) >> data.spectral_subtraction_bits) & _M32
    subtracted = (scaled - estimate) >> data.smoothing_bits
    data.noise_estimate[...] = noise.astype(np.uint32)
    return np.maximum(subtracted, floor).astype(np.uint32), data.noise_estimate.copy()


# =============================================================================================
# SignalPCAN  (signal/micro/kernels/pcan.cc, signal/src/pcan_argc_fixed.cc)
# =============================================================================================
_PCAN_SNR_BITS = 12  # kPcanSnrBits
_PCAN_OUTPUT_BITS = 6  # kPcanOutputBits


@dataclass(frozen=True, slots=True)
class PcanData:
    snr_shift: np.uint64
    locator: str


def prepare_pcan(ctx: OpContext) -> PcanData:
    _require_io(ctx, 3, 1)
    ctx.expect_types(input0=T.UINT32, input1=T.UINT32, input2=T.INT16, output0=T.UINT32)
    snr_shift = _element_int32(ctx, 0, "snr_shift")
    _require_shift(ctx, "snr_shift", snr_shift, 64)
    shape = ctx.input_shape(0)
    for i in range(3):
        _require_rank(ctx, f"input {i}", ctx.input_shape(i), 1)
    _require_rank(ctx, "the output", ctx.output(0).shape, 1)
    # Eval copies the output's size from the input and reads the noise estimate per channel.
    if ctx.input_shape(1)[0] < shape[0]:
        ctx.fail(f"the noise estimate has {ctx.input_shape(1)[0]} elements; the input "
                 f"{shape[0]}")
    ctx.set_output_shape(0, shape)
    return PcanData(np.uint64(snr_shift), ctx.op.locator)


def _wide_dynamic_function(x: U64, lut: I16, locator: str) -> I64:
    """``WideDynamicFunction``: ``lut[x]`` for x <= 2, else a quadratic in the 10 bits after
    the leading one, with coefficients ``lut[4*msb(x) - 6 ...]``; int32 arithmetic that may
    wrap, result stored in int16."""
    small = x <= 2
    interval = _bit_length(x)
    base = 4 * interval - 6
    need = int(np.where(small, x, base + 2).max(initial=-1))
    if need >= lut.shape[0]:
        raise _data_error(locator, f"the gain LUT has {lut.shape[0]} entries; entry {need} is "
                                   "read")
    xi = x.astype(np.int64)
    up = np.clip(11 - interval, 0, None)
    down = np.clip(interval - 11, 0, None)
    frac = np.where(interval < 11, xi << up, xi >> down) & 0x3FF
    bi = np.clip(base, 0, None)
    l0, l1, l2 = (lut.astype(np.int64)[np.minimum(bi + d, lut.shape[0] - 1)] for d in range(3))

    def wrap32(v: I64) -> I64:
        return (v + 2**31) % 2**32 - 2**31

    r = (l2 * frac) >> 5
    r = wrap32(r + l1 * 32)  # (uint32)lut[1] << 5, back to int32: lut[1] * 32
    r = wrap32(r * frac)
    r = wrap32(r + (1 << 14)) >> 15
    r = r + l0
    gain = (r + 2**15) % 2**16 - 2**15  # (int16_t)result
    return np.where(small, lut.astype(np.int64)[np.minimum(xi, 2)], gain)


def signal_pcan(data: PcanData, x: U32, noise: U32, lut: I16) -> U32:
    """``ApplyPcanAutoGainControlFixed``: ``snr = (x * gain(noise)) >> snr_shift`` (uint64,
    stored in uint32), then ``PcanShrink``: a square law below ``2 << 12``, linear above."""
    n = x.shape[0]
    gain16 = _wide_dynamic_function(noise[:n].astype(np.uint64), lut, data.locator)
    gain = (gain16 & 0xFFFFFFFF).astype(np.uint64)  # int16 -> uint32: sign-extends
    snr = ((x.astype(np.uint64) * gain) >> data.snr_shift) & _M32
    quad = (snr * snr) >> np.uint64(2 + 2 * _PCAN_SNR_BITS - _PCAN_OUTPUT_BITS)
    lin = (snr >> np.uint64(_PCAN_SNR_BITS - _PCAN_OUTPUT_BITS)) - np.uint64(
        1 << _PCAN_OUTPUT_BITS)
    small = snr < (2 << _PCAN_SNR_BITS)
    out: U64 = np.where(small, quad, lin) & _M32
    return out.astype(np.uint32)


# =============================================================================================
# SignalFilterBankLog  (signal/micro/kernels/filter_bank_log.cc, filter_bank_log.cc, log.cc)
# =============================================================================================
_LOG_SEGMENTS_LOG2 = 7  # kLogSegmentsLog2
_LOG_SCALE_LOG2 = 16  # kLogScaleLog2
_LOG_COEFF = 45426  # kLogCoeff: round(2**16 * ln 2)


def _log_lut() -> I64:
    """``kLogLut``: ``log2(1 + f) - f`` in Q16 at ``f = i / 128`` (129 points, one 0 of
    padding), the correction added to the linear approximation ``log2(1 + f) ~ f``.
    Rounded to nearest, this reproduces all 130 entries of ``signal/src/log.cc``."""
    i = np.arange(1 << _LOG_SEGMENTS_LOG2 | 1, dtype=np.float64)
    f = i / (1 << _LOG_SEGMENTS_LOG2)
    lut = np.floor((np.log2(1 + f) - f) * (1 << _LOG_SCALE_LOG2) + 0.5).astype(np.int64)
    return np.append(lut, 0)


_LOG_LUT = _log_lut()


def _log32(x: U64, out_scale: int) -> U64:
    """``Log32(x, out_scale)`` for ``x >= 2``: ``round(ln(x) * out_scale)`` in fixed point.

    ``out_scale * loge`` is a uint32 product (wraps), as in C.
    """
    integer = _bit_length(x) - 1  # MostSignificantBit32(x) - 1
    frac = x.astype(np.int64) - (np.int64(1) << integer)
    frac = np.where(integer < _LOG_SCALE_LOG2,
                    frac << np.clip(_LOG_SCALE_LOG2 - integer, 0, None),
                    frac >> np.clip(integer - _LOG_SCALE_LOG2, 0, None))
    base_seg = frac >> (_LOG_SCALE_LOG2 - _LOG_SEGMENTS_LOG2)
    c0, c1 = _LOG_LUT[base_seg], _LOG_LUT[base_seg + 1]
    seg_base = base_seg << (_LOG_SCALE_LOG2 - _LOG_SEGMENTS_LOG2)
    rel_pos = ((c1 - c0) * (frac - seg_base)) >> _LOG_SCALE_LOG2  # arithmetic: floors
    fraction = frac + c0 + rel_pos
    log2 = ((integer << _LOG_SCALE_LOG2) + fraction).astype(np.uint64)
    half = np.uint64(1 << (_LOG_SCALE_LOG2 - 1))
    loge = ((np.uint64(_LOG_COEFF) * log2 + half) >> np.uint64(_LOG_SCALE_LOG2)) & _M32
    scaled = ((np.uint64(out_scale & 0xFFFFFFFF) * loge) & _M32) + half
    out: U64 = (scaled & _M32) >> np.uint64(_LOG_SCALE_LOG2)
    return out


@dataclass(frozen=True, slots=True)
class FilterBankLogData:
    input_correction_bits: np.uint64
    output_scale: int


def prepare_filter_bank_log(ctx: OpContext) -> FilterBankLogData:
    _require_io(ctx, 1, 1)
    ctx.expect_types(input0=T.UINT32, output0=T.INT16)
    bits = _element_int32(ctx, 0, "input_correction_bits")
    scale = _element_int32(ctx, 1, "output_scale")
    _require_shift(ctx, "input_correction_bits", bits, 32)
    shape = ctx.input_shape(0)
    _require_rank(ctx, "the input", shape, 1)
    _require_rank(ctx, "the output", ctx.output(0).shape, 1)
    ctx.set_output_shape(0, shape)
    return FilterBankLogData(np.uint64(bits), scale)


def signal_filter_bank_log(data: FilterBankLogData, x: U32) -> I16:
    """``FilterbankLog``: ``min(Log32(x << input_correction_bits, output_scale), INT16_MAX)``
    for shifted values above 1 (the shift is a uint32 one), else 0."""
    scaled = (x.astype(np.uint64) << data.input_correction_bits) & _M32
    big = scaled > 1
    logs = _log32(np.where(big, scaled, np.uint64(2)), data.output_scale)
    out: U64 = np.where(big, np.minimum(logs, np.uint64(32767)), np.uint64(0))
    return out.astype(np.int16)


# =============================================================================================
# Registration
# =============================================================================================
KERNELS: dict[str, tuple[Callable[[OpContext], Any], Callable[..., Any]]] = {
    "SignalWindow": (prepare_window, signal_window),
    "SignalFftAutoScale": (prepare_fft_auto_scale, signal_fft_auto_scale),
    "SignalRfft": (prepare_rfft, signal_rfft),
    "SignalEnergy": (prepare_energy, signal_energy),
    "SignalFilterBank": (prepare_filter_bank, signal_filter_bank),
    "SignalFilterBankSquareRoot": (prepare_filter_bank_square_root,
                                   signal_filter_bank_square_root),
    "SignalFilterBankSpectralSubtraction": (prepare_filter_bank_spectral_subtraction,
                                            signal_filter_bank_spectral_subtraction),
    "SignalPCAN": (prepare_pcan, signal_pcan),
    "SignalFilterBankLog": (prepare_filter_bank_log, signal_filter_bank_log),
}

for _name, (_prepare, _eval) in KERNELS.items():
    register_custom(_name, _prepare, _eval, emulations=TFLM_ONLY)
