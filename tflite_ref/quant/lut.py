"""Lookup tables of TFLite's int8 / int16 kernels, built the way the C++ builds them.

Source (read, not copied): ``tensorflow/lite/kernels/internal/common.h`` -- ``LUTPopulate``
(``detail::LUTPopulateInt8`` and ``detail::LUTPopulateInt16<FloatT>``) and the two ``LUTLookup``
overloads; the transforms come from LiteRT ``tflite/kernels/activations.cc`` (``SigmoidPrepare``,
``TanhPrepare``, int16 ``SoftmaxPrepare``) and TFLM ``micro/kernels/softmax_common.cc``.

Every float intermediate is reproduced in the C++ type (``np.float32`` for ``float``), in the
C++ evaluation order.  What cannot be derived from the source is the C library: ``std::exp`` /
``std::tanh`` call libm's ``expf`` / ``tanhf`` / ``exp``, and glibc's ``tanhf`` is *not*
correctly rounded (on glibc 2.36 it differs from the correctly rounded value for ~23 % of float32
arguments in [2^-20, 32]; ``expf`` for ~0.04 %).  The kernels' tables also call ``expm1f``
(ELU), ``erfcf`` (GELU) and ``logf`` (LOG); all of them are here, loaded the same way.  That changes LUT entries now and then (LiteRT's
TANH LUT differed in about 1 of 3000 random parameter sets when built from correctly rounded
values).  So the default *math backend* calls the C library of this process through ``ctypes``
-- the same function the runtime calls -- and falls back to NumPy (float64, rounded to float32:
correctly rounded) when no C math library can be loaded.  Pass ``backend="numpy"`` for a
platform-independent table.

LUT order: the int8 tables here are indexed by ``q - qmin`` (value order, ``lut[0]`` is the entry
for -128).  The C++ stores the int8 table in *memory* order ``[0, 1, ..., 127, -128, ..., -1]``
(it indexes with ``static_cast<uint8_t>(q)``); ``np.roll(lut, -128)`` converts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from typing import Callable, Literal

import numpy as np
import numpy.typing as npt

from tflite_ref.errors import UsageError
from tflite_ref.quant.fixedpoint import (
    INT16_MAX,
    INT16_MIN,
    round_away,
    saturating_cast,
    static_cast_int32,
)

__all__ = [
    "MathBackend",
    "libm_available",
    "c_expf",
    "c_tanhf",
    "c_expm1f",
    "c_erfcf",
    "c_logf",
    "c_exp",
    "logistic_f32",
    "tanh_f32",
    "OutOfRange",
    "lut_populate_int8",
    "lut_lookup_int8",
    "logistic_lut_int8",
    "tanh_lut_int8",
    "lut_populate_int16",
    "lut_lookup_int16",
    "softmax_int16_luts",
    "LUT_INT16_SIZE",
]

#: ``"libm"``: the process's C math library via ctypes (what the runtime calls);
#: ``"numpy"``: NumPy float64, rounded to float32 for the float functions.
MathBackend = Literal["libm", "numpy"]

#: ``LUTSize<int16_t>()``: 512 intervals indexed by the high 9 bits, plus one end point.
LUT_INT16_SIZE = 513

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# C math functions
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _libm() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("m")
    candidates = [name] if name else []
    candidates += ["libm.so.6", "libSystem.dylib", "ucrtbase.dll", "msvcrt.dll"]
    for cand in candidates:
        try:
            lib = ctypes.CDLL(cand)
            for fn in ("expf", "tanhf", "exp"):
                getattr(lib, fn)
        except (OSError, AttributeError):
            continue
        return lib
    return None


# The C functions the kernels' tables call, with their C argument / result type.
_C_TYPES = {"expf": ctypes.c_float, "tanhf": ctypes.c_float, "expm1f": ctypes.c_float,
            "erfcf": ctypes.c_float, "logf": ctypes.c_float, "exp": ctypes.c_double}


@functools.lru_cache(maxsize=None)
def _libm_function(name: str) -> Callable[[float], float] | None:
    """C math function ``name`` of this process's C library, or None when it has none."""
    lib = _libm()
    fn = getattr(lib, name, None) if lib is not None else None
    if fn is None:
        return None
    ctype = _C_TYPES[name]
    fn.restype, fn.argtypes = ctype, [ctype]
    return fn  # type: ignore[no-any-return]


def libm_available() -> bool:
    """Whether the ``"libm"`` backend can be used in this process."""
    return _libm() is not None


def _resolve(backend: MathBackend | None) -> MathBackend:
    if backend is None:
        return "libm" if libm_available() else "numpy"
    if backend not in ("libm", "numpy"):
        raise UsageError(f"math backend must be 'libm' or 'numpy', got {backend!r}")
    if backend == "libm" and not libm_available():
        raise UsageError("no C math library could be loaded for backend='libm'")
    return backend


def _c_math(name: str, x: npt.ArrayLike, backend: MathBackend | None,
            correctly_rounded: Callable[[F64], F64]) -> np.ndarray:
    """C function ``name`` elementwise on ``x`` (float32 for ``...f``, else float64): through
    ctypes with the ``"libm"`` backend (a Python loop: prepare-time tables only), else
    ``correctly_rounded`` in float64, rounded to the C type."""
    ctype = _C_TYPES[name]
    dtype = np.float64 if ctype is ctypes.c_double else np.float32
    a = np.asarray(x, dtype=dtype)
    fn = _libm_function(name) if _resolve(backend) == "libm" else None
    if fn is None:
        if backend == "libm":
            raise UsageError(f"the C math library has no {name}")
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return correctly_rounded(a.astype(np.float64)).astype(dtype)
    flat = [fn(float(v)) for v in a.ravel()]
    return np.asarray(flat, dtype=dtype).reshape(a.shape)


def c_expf(x: npt.ArrayLike, *, backend: MathBackend | None = None) -> F32:
    """C ``expf`` (``std::exp(float)``) elementwise on float32 values."""
    return _c_math("expf", x, backend, np.exp)


def c_tanhf(x: npt.ArrayLike, *, backend: MathBackend | None = None) -> F32:
    """C ``tanhf`` (``std::tanh(float)``) elementwise on float32 values."""
    return _c_math("tanhf", x, backend, np.tanh)


def c_expm1f(x: npt.ArrayLike, *, backend: MathBackend | None = None) -> F32:
    """C ``expm1f`` (``std::expm1(float)``, LiteRT's ELU table) elementwise on float32 values."""
    return _c_math("expm1f", x, backend, np.expm1)


def c_erfcf(x: npt.ArrayLike, *, backend: MathBackend | None = None) -> F32:
    """C ``erfcf`` (``std::erfc(float)``, the GELU tables) elementwise on float32 values."""
    return _c_math("erfcf", x, backend, np.vectorize(math.erfc, otypes=[np.float64]))


def c_logf(x: npt.ArrayLike, *, backend: MathBackend | None = None) -> F32:
    """C ``logf`` (``std::log(float)``, the LOG tables) elementwise on float32 values; glibc's is
    not correctly rounded."""
    return _c_math("logf", x, backend, np.log)


def c_exp(x: npt.ArrayLike, *, backend: MathBackend | None = None) -> F64:
    """C ``exp`` (``std::exp(double)``) elementwise on float64 values."""
    return _c_math("exp", x, backend, np.exp)


def logistic_f32(x: npt.ArrayLike, *, backend: MathBackend | None = None) -> F32:
    """The LOGISTIC LUT transform of LiteRT ``SigmoidPrepare``: ``1.0f / (1.0f + expf(-x))``."""
    a = np.asarray(x, dtype=np.float32)
    one = np.float32(1.0)
    with np.errstate(over="ignore"):
        out: F32 = one / (one + c_expf(-a, backend=backend))
    return out


def tanh_f32(x: npt.ArrayLike, *, backend: MathBackend | None = None) -> F32:
    """The TANH LUT transform of LiteRT ``TanhPrepare``: ``tanhf(x)``."""
    return c_tanhf(x, backend=backend)


# --------------------------------------------------------------------------------------------
# int8 / uint8 tables
# --------------------------------------------------------------------------------------------


#: How ``(int32_t)`` of an out-of-range or NaN float comes out in a table builder (undefined in
#: C++): ``"saturate"`` -- clamped to the limits, NaN -> 0 (:func:`saturating_cast`);
#: ``"int32_min"`` -- x86's ``cvttss2si`` result INT32_MIN (:func:`static_cast_int32`).
OutOfRange = Literal["saturate", "int32_min"]


def lut_populate_int8(
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    transform: Callable[[F32], F32],
    *,
    dtype: npt.DTypeLike = np.int8,
    out_of_range: OutOfRange | None = None,
) -> np.ndarray:
    """``LUTPopulate<int8_t / uint8_t>`` (``detail::LUTPopulateInt8``), in value order.

    For every ``v`` in the type's range, all in float32:
    ``deq = s_in · float(v - z_in)``; ``t = transform(deq)``;
    ``r = roundf(t · (1.0f / s_out))``; ``q = (int32)(r + float(z_out))``; clamp to the type.
    ``transform`` maps a float32 array to a float32 array (a closure covers
    ``transform_params``).  Returns 256 entries of ``dtype``, entry ``i`` for ``v = qmin + i``.

    ``(int32)`` of an out-of-range or NaN float is undefined in C++, and the builds differ
    (measured live, tests/quant/test_live_runtimes.py::test_lut_out_of_range_live): LiteRT's
    ``LUTPopulate<int8_t>`` saturates (the compiler merged conversion and clamp: a huge EXP or
    TANH value gives 127, NaN from ``0 · (1/s_out) = 0 · inf`` gives 0), so ``"saturate"`` is the
    default for int8; its ``LUTPopulate<uint8_t>`` converts as x86's ``cvttss2si`` (INT32_MIN,
    clamped to 0), the default for uint8 -- and TFLM's ELU table does too (pass
    ``out_of_range="int32_min"``).
    """
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise UsageError(f"lut_populate_int8 builds int8 or uint8 tables, not {dt}")
    if out_of_range is None:
        out_of_range = "saturate" if dt == np.dtype(np.int8) else "int32_min"
    if out_of_range not in ("saturate", "int32_min"):
        raise UsageError(f"out_of_range must be 'saturate' or 'int32_min', got {out_of_range!r}")
    info = np.iinfo(dt)
    vals = np.arange(int(info.min), int(info.max) + 1, dtype=np.int64)
    s_in, s_out = np.float32(input_scale), np.float32(output_scale)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inverse_scale = np.float32(1.0) / s_out
        dequantized = s_in * (vals - int(input_zero_point)).astype(np.float32)
        transformed = np.asarray(transform(dequantized), dtype=np.float32)
        rescaled = round_away(transformed * inverse_scale)
        summed = rescaled + np.float32(output_zero_point)  # float + int -> float in C++
    if out_of_range == "saturate":
        quantized = saturating_cast(summed, np.int32).astype(np.int64)
    else:
        quantized = static_cast_int32(summed)
    return np.clip(quantized, int(info.min), int(info.max)).astype(dt)


def lut_lookup_int8(values: npt.ArrayLike, lut: np.ndarray) -> np.ndarray:
    """``LUTLookup`` for int8 / uint8 on a value-ordered table from :func:`lut_populate_int8`."""
    v = np.asarray(values)
    if v.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise UsageError(f"lut_lookup_int8 expects int8 or uint8 values, got {v.dtype}")
    return lut[v.astype(np.int64) - int(np.iinfo(v.dtype).min)]


def logistic_lut_int8(
    input_scale: float,
    input_zero_point: int,
    output_scale: float = 1.0 / 256,
    output_zero_point: int = -128,
    *,
    backend: MathBackend | None = None,
) -> npt.NDArray[np.int8]:
    """LiteRT's int8 LOGISTIC table (``SigmoidPrepare``, REF and optimized kernels).

    LiteRT requires ``output_scale == 1/256`` (checked by the caller, not here).  TFLM computes
    int8 LOGISTIC in gemmlowp fixed point instead (:func:`tflite_ref.quant.fixedpoint.logistic`).
    """
    return lut_populate_int8(
        input_scale, input_zero_point, output_scale, output_zero_point,
        lambda x: logistic_f32(x, backend=backend),
    )


def tanh_lut_int8(
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    *,
    backend: MathBackend | None = None,
) -> npt.NDArray[np.int8]:
    """LiteRT's int8 TANH table (``TanhPrepare``); TFLM uses gemmlowp fixed point instead."""
    return lut_populate_int8(
        input_scale, input_zero_point, output_scale, output_zero_point,
        lambda x: tanh_f32(x, backend=backend),
    )


# --------------------------------------------------------------------------------------------
# int16 tables (513 entries, 7-bit linear interpolation)
# --------------------------------------------------------------------------------------------


def lut_populate_int16(
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    transform: Callable[[np.ndarray], np.ndarray],
    *,
    float_type: type = np.float32,
) -> npt.NDArray[np.int16]:
    """``LUTPopulate<int16_t>`` (``detail::LUTPopulateInt16<FloatT>``): 513 int16 entries.

    ``float_type=np.float32`` is the ``float`` overload; ``np.float64`` the deprecated ``double``
    overload (LiteRT's int16 SOFTMAX uses it).  The input range [-32768, 32767] is cut into 512
    steps; each entry is the sampled value minus half the error the linear interpolation makes at
    the step's midpoint, so that interpolated lookups are unbiased.  ``transform`` maps an array
    of ``float_type`` to ``float_type``.
    """
    ft = np.dtype(float_type).type
    if ft not in (np.float32, np.float64):
        raise UsageError(f"float_type must be float32 or float64, got {float_type!r}")

    def f(x: np.ndarray) -> np.ndarray:
        return np.asarray(transform(np.asarray(x, dtype=ft)), dtype=ft)

    s_in, s_out = ft(input_scale), ft(output_scale)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        input_min = s_in * ft(INT16_MIN - int(input_zero_point))
        input_max = s_in * ft(INT16_MAX - int(input_zero_point))
        output_min = s_out * ft(INT16_MIN - int(output_zero_point))
        output_max = s_out * ft(INT16_MAX - int(output_zero_point))
        nb_steps = 512
        step = (input_max - input_min) / ft(nb_steps)
        half_step = step / ft(2)
        output_scaling_inv = ft(INT16_MAX - INT16_MIN + 1) / (output_max - output_min)
        i = np.arange(nb_steps)
        x0 = input_min + i.astype(ft) * step  # `input_min + i * step`, int * FloatT first
        val = f(x0)
        val_midpoint = f(x0 + half_step)
        val_next = f(input_min + (i + 1).astype(ft) * step)
        sample_val = round_away(val * output_scaling_inv)
        midpoint_interp_val = round_away(
            (val_next * output_scaling_inv + round_away(val * output_scaling_inv)) / ft(2)
        )
        midpoint_val = round_away(val_midpoint * output_scaling_inv)
        midpoint_err = midpoint_interp_val - midpoint_val
        bias = round_away(midpoint_err / ft(2))
        body = np.minimum(np.maximum(sample_val - bias, ft(INT16_MIN)), ft(INT16_MAX))
        last = np.minimum(
            np.maximum(round_away(f(np.asarray([input_max]))[0] * output_scaling_inv),
                       ft(INT16_MIN)),
            ft(INT16_MAX),
        )
    out = np.empty(LUT_INT16_SIZE, dtype=np.int16)
    # The values are clamped to the int16 range in float, so only NaN converts out of range:
    # INT32_MIN, whose low 16 bits are 0 (a saturating conversion would also give 0).
    out[:nb_steps] = static_cast_int32(body).astype(np.int16)
    out[nb_steps] = np.int16(static_cast_int32(np.asarray([last]))[0])
    return out


def lut_lookup_int16(values: npt.ArrayLike, lut: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """``LUTLookup(int16_t, const int16_t* lut)``: 9-bit index, 7-bit linear interpolation.

    ``index = 256 + (v >> 7)``; ``offset = v & 0x7f``; ``slope = (int16)(lut[index+1] -
    lut[index])`` (narrowed to int16, so it wraps for steep tables);
    ``result = (int16)(lut[index] + ((slope · offset + 64) >> 7))``.
    """
    v = np.asarray(values)
    if v.dtype != np.int16:
        raise UsageError(f"lut_lookup_int16 expects int16 values, got {v.dtype}")
    table = np.asarray(lut, dtype=np.int64)
    if table.shape != (LUT_INT16_SIZE,):
        raise UsageError(f"int16 LUT must have {LUT_INT16_SIZE} entries, got {table.shape}")
    v64 = v.astype(np.int64)
    index = 256 + (v64 >> 7)
    offset = v64 & 0x7F
    base = table[index]
    slope = ((table[index + 1] - base + (1 << 15)) & 0xFFFF) - (1 << 15)
    delta = (slope * offset + 64) >> 7
    wrapped: npt.NDArray[np.int64] = ((base + delta + (1 << 15)) & 0xFFFF) - (1 << 15)
    return wrapped.astype(np.int16)


def softmax_int16_luts(
    *, emulate: Literal["tflite", "tflm"] = "tflite", backend: MathBackend | None = None
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16]]:
    """The two tables of int16 SOFTMAX -> ``(exp_lut, one_over_one_plus_x_lut)``.

    ``range = 65535``; ``exp`` over [-10, 0] with ``LUTPopulate(10/range, 32767, 2/range, 0)``,
    ``1/(1+x)`` over [0, 1] with ``LUTPopulate(1/range, -32768, 2/range, 0)``.

    * ``"tflite"`` (LiteRT ``activations.cc``): the ``double`` overload, ``std::exp(double)`` and
      ``1.0 / (1.0 + x)`` in double.
    * ``"tflm"`` (``micro/kernels/softmax_common.cc``): the ``float`` overload with scales
      ``10.0f / range`` etc., ``expf`` and ``1.0f / (1.0f + x)`` in float32.
    """
    if emulate not in ("tflite", "tflm"):
        raise UsageError(f"emulate must be 'tflite' or 'tflm', got {emulate!r}")
    ft = np.float64 if emulate == "tflite" else np.float32
    c_exp_ft = c_exp if emulate == "tflite" else c_expf
    rng = ft(INT16_MAX - INT16_MIN)
    one = ft(1.0)
    # Scales as Python floats (exact for both types); lut_populate_int16 rounds them to ft.
    exp_lut = lut_populate_int16(
        float(ft(10.0) / rng), INT16_MAX, float(ft(2.0) / rng), 0,
        lambda x: c_exp_ft(x, backend=backend), float_type=ft,
    )
    recip_lut = lut_populate_int16(
        float(one / rng), INT16_MIN, float(ft(2.0) / rng), 0, lambda x: one / (one + x),
        float_type=ft,
    )
    return exp_lut, recip_lut

