"""The float32 arithmetic of the recurrent kernels (RNN, SVDF, LSTM), in each runtime's order.

A float sum of products has as many results as there are orders of adding its terms; the
recurrent kernels feed each step's output into the next step, so an ulp lost in one step is
carried on.  Every function here reproduces one runtime's order exactly -- float32 products
rounded before they are added (the builds do not fuse them into FMAs), partial sums in the
runtime's lanes, lanes reduced in the runtime's tree -- verified bit for bit against
ai-edge-litert 2.3.0 (x86-64) and the tflite-micro wheel by tests/kernels/test_recurrent.py.

LiteRT ``tensor_utils`` (``tflite/kernels/internal/tensor_utils.cc`` picks
``optimized/sse_tensor_utils.h`` on an SSSE3 build; its float functions are
``NEON_OR_PORTABLE``, and ``optimized/neon_check.h`` defines ``USE_NEON`` on an SSE4.1 build,
mapping the NEON intrinsics onto SSE through NEON_2_SSE -- no FMA):

* :func:`neon_matrix_batch_vector_multiply_accumulate` -- ``NeonMatrixBatchVectorMultiplyAccumulate``
  (``optimized/neon_tensor_utils.cc``), the float product of RNN (``kernel_utils.cc``
  ``RnnBatchStep``) and of SVDF's features (``reference/svdf.h`` ``EvalFloatSVDF``);
* :func:`neon_vector_vector_dot`, :func:`neon_reduction_sum` -- ``NeonVectorVectorDotProduct``,
  ``NeonReductionSumVector`` (SVDF's time filter and rank sum).

LiteRT ``lstm_eval.cc`` does not use ``tensor_utils`` for its float gate products: its own
``MatrixBatchVectorMultiplyAccumulate`` runs ``optimized_ops::FullyConnected``, i.e.
``cpu_backend_gemm`` -- on x86 without ruy that is Eigen (``cpu_backend_gemm_x86.h`` defers
float to ``GemmImplUsingEigen``, ``cpu_backend_gemm_eigen.cc``).  :func:`eigen_product`
follows Eigen's choice of algorithm for the shapes the LSTM passes.  The wheel is an SSE build
without AVX or FMA (measured): Eigen's packets hold 4 floats (``Packet4f``), every ``pmadd`` is
a multiply then an add, and its GEMM kernel works on 8-row panels (``mr`` 8, not 12).

TFLite Micro's float kernels are reference loops: :func:`sequential_matmul` (the
``reference_ops::FullyConnected`` loop, common.py's ``float32_dot_in_order``),
and :func:`activation_val_float` (``ActivationValFloat``, ``micro/kernels/activation_utils.h``;
the LSTM's ``Sigmoid`` / ``Tanh`` are ``reference_ops::Logistic`` / ``Tanh``, activations.py's
float LOGISTIC and TANH kernels).
``std::exp`` and ``std::tanh`` of a float are the C library's ``expf`` / ``tanhf``, which glibc
does not round correctly in every case (2.36: ``tanhf`` differs from the correctly rounded value
for about 5 % of floats drawn uniformly from [−10, 10], ``expf`` for 0.04 %): they are the
process's C library's (unary.py :func:`~tflite_ref.kernels.unary.libm_float`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tflite_ref.errors import InternalError
from tflite_ref.kernels.common import float32_dot_in_order
from tflite_ref.kernels.unary import libm_float

__all__ = [
    "activation_val_float",
    "c_clip",
    "eigen_product",
    "neon_matrix_batch_vector_multiply_accumulate",
    "neon_reduction_sum",
    "neon_vector_vector_dot",
    "sequential_matmul",
]

F32 = np.float32
F32A = NDArray[np.float32]

_NEON_LANES = 4  # float32x4_t (NEON_2_SSE: one __m128)
_EIGEN_PACKET = 4  # Eigen's Packet4f on the SSE build (see the module doc)


# =============================================================================================
# Helpers
# =============================================================================================
def _lanes(matrix: F32A, vectors: F32A, lanes: int = _NEON_LANES) -> F32A:
    """``lane[j] += m[c + j] · v[c + j]`` over the full blocks of ``lanes`` columns, every
    product and sum rounded to float32: shape ``(..., N, lanes)`` for ``matrix`` (N, K) and
    ``vectors`` (..., K).  One NumPy pass per block, vectorised over rows and batches."""
    n, k = matrix.shape
    acc = np.zeros(vectors.shape[:-1] + (n, lanes), F32)
    term = np.empty_like(acc)
    for c in range(0, k - k % lanes, lanes):
        np.multiply(matrix[:, c:c + lanes], vectors[..., None, c:c + lanes], out=term)
        acc += term
    return acc


def _add_products_in_order(acc: F32A, matrix: F32A, vectors: F32A, start: int) -> F32A:
    """``acc += m[k] · v[k]`` for ``k = start .. K-1``, one rounded product and sum at a time."""
    for c in range(start, matrix.shape[1]):
        acc = acc + matrix[:, c] * vectors[..., None, c]
    return acc


def c_clip(v: F32A, clip: float) -> F32A:
    """``std::max(std::min(clip, v), -clip)`` (``PortableCwiseClipping``, TFLM ``Clipping``):
    unlike ``np.clip``, a NaN comes out as ``clip`` (``std::min(clip, NaN)`` is ``clip``)."""
    c = F32(clip)
    low = np.where(v < c, v, c)
    out: F32A = np.where(low < -c, -c, low).astype(F32)
    return out


# =============================================================================================
# LiteRT tensor_utils through NEON_2_SSE
# =============================================================================================
def neon_matrix_batch_vector_multiply_accumulate(matrix: F32A, vectors: F32A, result: F32A
                                                 ) -> F32A:
    """``NeonMatrixBatchVectorMultiplyAccumulate`` (float): per batch row and matrix row, four
    lanes accumulate ``vmlaq_f32`` (a multiply, then an add) over the full blocks of 4 columns;
    ``*result += lane0 + lane1 + lane2 + lane3`` (``AccumulateNeonLane`` off aarch64: left to
    right); then each remaining column's product is added to ``*result`` in order.

    ``matrix`` (N, K), ``vectors`` (..., K), ``result`` broadcastable to (..., N)."""
    k = matrix.shape[1]
    lanes = _lanes(matrix, vectors)
    total = ((lanes[..., 0] + lanes[..., 1]) + lanes[..., 2]) + lanes[..., 3]
    out = _add_products_in_order(result + total, matrix, vectors, k - k % _NEON_LANES)
    return np.asarray(out, dtype=F32)


def neon_vector_vector_dot(a: F32A, b: F32A) -> F32A:
    """``NeonVectorVectorDotProduct`` along the last axis: four lanes ``lane += a·b`` over the
    full blocks of 4, the lanes summed left to right, then the tail added in order."""
    n = a.shape[-1]
    body = n - n % _NEON_LANES
    lanes = np.zeros(np.broadcast_shapes(a.shape[:-1], b.shape[:-1]) + (_NEON_LANES,), F32)
    for k in range(0, body, _NEON_LANES):
        lanes = lanes + a[..., k:k + _NEON_LANES] * b[..., k:k + _NEON_LANES]
    acc = ((lanes[..., 0] + lanes[..., 1]) + lanes[..., 2]) + lanes[..., 3]
    for k in range(body, n):
        acc = acc + a[..., k] * b[..., k]
    return np.asarray(acc, dtype=F32)


def neon_reduction_sum(a: F32A) -> F32A:
    """``NeonReductionSumVector`` (float) along the last axis: the lanes of
    :func:`neon_vector_vector_dot` over plain values."""
    n = a.shape[-1]
    body = n - n % _NEON_LANES
    lanes = np.zeros(a.shape[:-1] + (_NEON_LANES,), F32)
    for k in range(0, body, _NEON_LANES):
        lanes = lanes + a[..., k:k + _NEON_LANES]
    acc = ((lanes[..., 0] + lanes[..., 1]) + lanes[..., 2]) + lanes[..., 3]
    for k in range(body, n):
        acc = acc + a[..., k]
    return np.asarray(acc, dtype=F32)


# =============================================================================================
# LiteRT lstm_eval.cc: Eigen's matrix products
# =============================================================================================
# Eigen/src/Core/GeneralProduct.h: below this rhs.rows() + dst.rows() + dst.cols(), a dynamic
# GEMM is evaluated coefficient by coefficient ("lazy product").
_EIGEN_GEMM_TO_COEFFBASED_THRESHOLD = 20


def _predux(lanes: F32A) -> F32A:
    """Eigen ``predux<Packet4f>`` (SSE, arch/SSE/Reductions.h): ``tmp = a + movehl(a)``, then
    ``tmp[0] + tmp[1]`` -- ``(a0 + a2) + (a1 + a3)``."""
    return np.asarray((lanes[..., 0] + lanes[..., 2]) + (lanes[..., 1] + lanes[..., 3]), F32)


def _eigen_gemv(matrix: F32A, vectors: F32A, into_zero: bool = True) -> F32A:
    """``general_matrix_vector_product<..., RowMajor, ...>::run`` (products/GeneralMatrixVector.h)
    for every row of ``vectors`` on its own: per matrix row, a ``Packet4f`` accumulates
    ``pmadd`` (multiply, then add) over the full blocks of 4 columns, ``cc = predux(c)``, the
    remaining columns are added to ``cc`` one by one, and ``res += alpha · cc`` into the zeroed
    destination (the row grouping by 8, 4, 2, 1 changes nothing per row).  ``into_zero=False``:
    the sums as they are, for the coefficient-based product's plain assignment."""
    k = matrix.shape[1]
    cc = _predux(_lanes(matrix, vectors, _EIGEN_PACKET))
    cc = _add_products_in_order(cc, matrix, vectors, k - k % _EIGEN_PACKET)
    return np.asarray(F32(0) + cc if into_zero else cc, dtype=F32)


def _gebp_block(matrix: F32A, vectors: F32A) -> F32A:
    """One ``gebp_kernel`` call (products/GeneralBlockPanelKernel.h) over a block of the depth,
    for the SSE float traits: ``LhsProgress`` 4, ``nr`` 4, ``pk`` 8 and ``mr`` 8 -- two packets,
    ``default_mr``, since ``EIGEN_HAS_SINGLE_INSTRUCTION_MADD`` (FMA) is not defined.

    The destination (N rows, B columns) is cut into row panels of 8 rows, then of 4, then single
    rows, and column panels of 4, then single columns; what adds the products of one element
    depends on its panel pair:

    * 8-row panels, any columns; 4-row panels with single columns; single rows with single
      columns: one accumulator, ``k`` in order;
    * 4-row panel x 4 columns (the "1pX4" kernel's double accumulation): even ``k`` into C, odd
      ``k`` into D over the peeled depth (a multiple of ``pk``), ``C + D``, then the rest in
      order;
    * single row x 4 columns (the "swapped" path, vectorised along k): four accumulators on
      ``k mod 4`` over the depth rounded down to 4, ``(C0 + C1) + (C2 + C3)``, then the rest in
      order."""
    n, k = matrix.shape
    b = vectors.shape[-2]

    def product(c: int) -> F32A:
        return np.asarray(matrix[:, c] * vectors[..., :, None, c], dtype=F32)  # (..., B, N)

    seq = np.zeros(vectors.shape[:-2] + (b, n), F32)
    for c in range(k):
        seq = seq + product(c)
    peeled_kc = k - k % 8
    pair = [np.zeros_like(seq), np.zeros_like(seq)]
    for c in range(peeled_kc):
        pair[c % 2] = pair[c % 2] + product(c)
    one_p_x4 = pair[0] + pair[1]
    for c in range(peeled_kc, k):
        one_p_x4 = one_p_x4 + product(c)
    endk4 = k - k % 4
    quad = [np.zeros_like(seq) for _ in range(4)]
    for c in range(endk4):
        quad[c % 4] = quad[c % 4] + product(c)
    swapped = (quad[0] + quad[1]) + (quad[2] + quad[3])
    for c in range(endk4, k):
        swapped = swapped + product(c)

    peeled_mc2 = n // 8 * 8
    peeled_mc1 = peeled_mc2 + (n - peeled_mc2) // 4 * 4
    rows = np.arange(n)
    in_col_panel = np.arange(b)[:, None] < b // 4 * 4
    out = np.where(in_col_panel & (rows >= peeled_mc2) & (rows < peeled_mc1), one_p_x4, seq)
    return np.asarray(np.where(in_col_panel & (rows >= peeled_mc1), swapped, out), dtype=F32)


def _l1_data_cache_bytes() -> int:
    """The L1 data cache Eigen's ``queryCacheSizes`` finds through CPUID, as Linux reports it;
    Eigen's own default, 32 KiB, where it cannot be read."""
    try:
        for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
            if ((index / "level").read_text().strip() == "1"
                    and (index / "type").read_text().strip() == "Data"):
                size = (index / "size").read_text().strip()
                return int(size[:-1]) * 1024 if size.endswith("K") else int(size)
    except (OSError, ValueError):
        pass
    return 32 * 1024


def _eigen_kc(depth: int, n: int, b: int) -> int:
    """``evaluateProductBlockingSizesHeuristic`` (single thread) along k: no blocking when every
    dimension is below 48, else at most ``max_kc = ((L1 − mr·nr·4) / (mr·4 + nr·4)) & ~7``
    (680 for 32 KiB), balanced so that the last block is as large as possible."""
    if max(depth, n, b) < 48:
        return depth
    mr, nr, peeling = 8, 4, 8
    max_kc = max(((_l1_data_cache_bytes() - mr * nr * 4) // (mr * 4 + nr * 4)) & ~(peeling - 1),
                 1)
    if depth <= max_kc:
        return depth
    if depth % max_kc == 0:
        return max_kc
    return max_kc - peeling * ((max_kc - 1 - depth % max_kc) // (peeling * (depth // max_kc + 1)))


def _eigen_inner_product(matrix: F32A, vectors: F32A) -> F32A:
    """Eigen's ``dot`` of each matrix row with each vector (Core/InnerProduct.h,
    ``inner_product_impl<Evaluator, true>``, Eigen since 2024-09): four ``Packet4f``
    accumulators take the blocks of 4 in turn (``pmadd``: multiply, then add), the blocks left
    after the last group of four go to accumulators 0, 1, 2, then ``p0 + (p1 + (p2 + p3))``,
    ``predux``, and the tail is added in order.  Fewer than 4 terms: summed in order."""
    k = matrix.shape[1]
    prod = np.asarray(matrix * vectors[..., None, :], dtype=F32)  # (..., N, K)
    if k < 4:
        res = prod[..., 0]
        for c in range(1, k):
            res = res + prod[..., c]
        return np.asarray(res, dtype=F32)
    n_packets = k // 4
    acc = [prod[..., 4 * j:4 * j + 4] for j in range(min(n_packets, 4))]
    for j in range(4, n_packets):  # the quad loop, then the remaining packets, round robin
        acc[j % 4] = acc[j % 4] + prod[..., 4 * j:4 * j + 4]
    while len(acc) > 1:  # p2 += p3; p1 += p2; p0 += p1
        last = acc.pop()
        acc[-1] = acc[-1] + last
    res = _predux(acc[0])
    for c in range(4 * n_packets, k):
        res = res + prod[..., c]
    return np.asarray(res, dtype=F32)


def _eigen_gebp(matrix: F32A, vectors: F32A) -> F32A:
    """``general_matrix_matrix_product`` (products/GeneralMatrixMatrix.h): ``dst.setZero()``,
    then for each block of the depth (:func:`_eigen_kc`) one :func:`_gebp_block` whose result
    is added to the destination (``traits.acc``: ``R += alpha · C``).  Blocking along rows and
    columns only regroups panels (its sizes are multiples of ``mr`` and ``nr``)."""
    k = matrix.shape[1]
    kc = _eigen_kc(k, matrix.shape[0], vectors.shape[-2])
    out = np.zeros(vectors.shape[:-1] + (matrix.shape[0],), F32)
    for start in range(0, k, kc):
        out = out + _gebp_block(matrix[:, start:start + kc], vectors[..., start:start + kc])
    return np.asarray(out, dtype=F32)


def eigen_product(matrix: F32A, vectors: F32A, batched: bool) -> F32A:
    """``W · v`` for every row ``v`` of ``vectors`` (..., B, K), as lstm_eval.cc's
    ``MatrixBatchVectorMultiplyAccumulate`` has Eigen compute it before it adds the result
    buffer: ``eigen_dst = eigen_lhs * eigen_rhs`` with the row-major weights (N, K) and the B
    input rows as the columns of the right-hand side (cpu_backend_gemm_eigen.cc).

    ``batched=False``, or a single row: one input row per call (``n_batch == 1``: a batch-major
    sequence, whose rows LiteRT steps one at a time): the GEMV of ``rhs.col(0)``
    (:func:`_eigen_gemv`), or for a single weight row Eigen's ``dot``
    (``GemvProduct::scaleAndAddTo``'s inner-product fallback, :func:`_eigen_inner_product`).

    ``batched=True`` with B > 1 (the rows of a time-major step, one GEMM): below
    ``EIGEN_GEMM_TO_COEFFBASED_THRESHOLD`` (K + N + B < 20) the coefficient-based product,
    which adds each coefficient's products in the GEMV's order (measured: one ``Packet4f``
    accumulator, ``predux``, the tail in order -- for K <= 15 the same as ``redux``'s two
    accumulators, at K = 16 it is not) and is assigned as is; a single weight row (N = 1) is
    the GEMV of ``rhs^T`` (``GemmProduct::scaleAndAddTo``), the same order per coefficient;
    else ``gebp`` (:func:`_eigen_gebp`).
    """
    n, k = matrix.shape
    b = vectors.shape[-2]
    if not batched or b == 1:
        if n == 1:
            return np.asarray(F32(0) + _eigen_inner_product(matrix, vectors), dtype=F32)
        return _eigen_gemv(matrix, vectors)
    if k + n + b < _EIGEN_GEMM_TO_COEFFBASED_THRESHOLD:
        return _eigen_gemv(matrix, vectors, into_zero=False)
    if n == 1:
        return _eigen_gemv(matrix, vectors)
    return _eigen_gebp(matrix, vectors)


# =============================================================================================
# TFLite Micro: reference loops and the C library's functions
# =============================================================================================
def sequential_matmul(matrix: F32A, vectors: F32A) -> F32A:
    """``reference_ops::FullyConnected``'s ``total += input[d] · weights[out_c, d]`` for every
    row of ``vectors`` (..., K) and matrix row (N, K): float32, d ascending."""
    return float32_dot_in_order(vectors[..., None, :], matrix.T)[..., 0, :]


def _c_max(a: F32A | np.float32, b: F32A) -> F32A:
    """``std::max(a, b)`` (``TfLiteMax``): ``(a < b) ? b : a``."""
    return np.asarray(np.where(a < b, b, a), dtype=F32)


def _c_min(a: F32A, b: np.float32) -> F32A:
    """``std::min(a, b)`` (``TfLiteMin``): ``(b < a) ? b : a``."""
    return np.asarray(np.where(b < a, b, a), dtype=F32)


def activation_val_float(x: F32A, activation: str) -> F32A:
    """TFLM ``ActivationValFloat`` (``micro/kernels/activation_utils.h``) element-wise:
    ``TfLiteMax(0, a)`` etc., ``std::tanh`` (``tanhf``), ``std::signbit``,
    ``1 / (1 + std::exp(−a))``."""
    x = np.asarray(x, dtype=F32)
    if activation == "NONE":
        return x
    if activation == "RELU":
        return _c_max(F32(0), x)
    if activation == "RELU_N1_TO_1":
        return _c_max(F32(-1), _c_min(x, F32(1)))
    if activation == "RELU6":
        return _c_max(F32(0), _c_min(x, F32(6)))
    if activation == "TANH":
        return libm_float("tanhf", np.tanh, x)
    if activation == "SIGN_BIT":
        return np.signbit(x).astype(F32)
    if activation == "SIGMOID":
        with np.errstate(over="ignore"):
            return np.asarray(F32(1) / (F32(1) + libm_float("expf", np.exp, -x)), dtype=F32)
    raise InternalError(f"unknown fused activation {activation!r}")
