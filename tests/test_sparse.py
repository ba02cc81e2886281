"""Compressed weights: sparse constants (DENSIFY and the sparsity metadata) and float16 weights
(DEQUANTIZE from FLOAT16), end to end against LiteRT ``BUILTIN_REF``.

* Sparse FULLY_CONNECTED: pruned weights stored sparse, DENSIFY -> FULLY_CONNECTED, float32 CSR,
  int8 per-channel and float32 1x4 blocks (fixtures in ``tests/models/part2``); every tensor
  equals LiteRT's.
* DENSIFY alone over layouts the converter writes and ones it does not: other traversal orders,
  several sparse levels, blocks on either dimension, two block dimensions, 3-D tensors, float32,
  float16 and int8, int32/uint16/uint8 index vectors -- each densified tensor equals LiteRT's
  and the dense array it was encoded from.  The encoder below is the test's own.
* Layouts where LiteRT's converter would read or write out of bounds are refused
  (hostile-models class 20/K), and TFLite Micro has no DENSIFY.
* float16 weights: DEQUANTIZE(FLOAT16) -> FULLY_CONNECTED and -> CONV_2D.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from harness import assert_matches_litert, part2_models, run_litert, run_ours

import tflite_ref
from tflite_ref.errors import ModelValidationError, UnsupportedOpError
from tflite_ref.model.writer import DimensionMetadata, ModelBuilder, Sparsity

M = part2_models()


# =============================================================================================
# A dense -> sparse encoder (TACO-style, as the schema describes it)
# =============================================================================================
def encode(dense: np.ndarray, order: Sequence[int], formats: str,
           block_map: Sequence[int] = (), block_size: Sequence[int] = (),
           index_dtype: Any = np.int32) -> tuple[np.ndarray, Sparsity]:
    """``dense`` as (stored values, sparsity).  ``formats`` has one letter per traversed
    dimension, ``D`` dense or ``S`` SPARSE_CSR; a sparse level keeps the indices whose sub-tree
    holds a non-zero."""
    rank = dense.ndim
    expanded = list(dense.shape)
    for d, b in zip(block_map, block_size):
        expanded[d] //= b
    expanded += list(block_size)
    # expanded[e0..e_{r-1}, b0..] = dense[orig] with orig[d] = e_d * size + b_k for blocked d
    grid = np.indices(expanded).reshape(len(expanded), -1)
    orig = [grid[d].copy() for d in range(rank)]
    for k, (d, b) in enumerate(zip(block_map, block_size)):
        orig[d] = orig[d] * b + grid[rank + k]
    values = dense[tuple(orig)].reshape(expanded).transpose(order)
    n = values.ndim
    segments: list[list[int]] = [[0] for _ in range(n)]
    indices: list[list[int]] = [[] for _ in range(n)]
    stored: list[Any] = []

    def visit(level: int, prefix: tuple[int, ...]) -> None:
        if level == n:
            stored.append(values[prefix])
            return
        for i in range(values.shape[level]):
            if formats[level] == "D":
                visit(level + 1, prefix + (i,))
            elif np.any(values[prefix + (i,)] != 0):
                indices[level].append(i)
                visit(level + 1, prefix + (i,))
        if formats[level] == "S":
            segments[level].append(len(indices[level]))

    visit(0, ())
    dims = [DimensionMetadata("DENSE", values.shape[k]) if f == "D" else DimensionMetadata(
        "SPARSE_CSR", array_segments=np.array(segments[k], index_dtype),
        array_indices=np.array(indices[k], index_dtype)) for k, f in enumerate(formats)]
    sp = Sparsity(traversal_order=list(order), block_map=list(block_map), dim_metadata=dims)
    return np.array(stored, dtype=dense.dtype), sp


def densify_model(shape: Sequence[int], dtype: str, values: np.ndarray, sp: Sparsity) -> bytes:
    mb = ModelBuilder(description="DENSIFY")
    sg = mb.subgraph("main")
    q: dict[str, Any] = {"scale": 0.1, "zero_point": 0} if dtype == "INT8" else {}
    w = sg.tensor("w_sparse", list(shape), dtype, values, sparsity=sp, **q)
    y = sg.tensor("w", list(shape), dtype, **q)
    sg.operator("DENSIFY", [w], [y])
    sg.outputs = [y]
    return mb.build()


def _dense(shape: Sequence[int], dtype: str, density: float, seed: int,
           block: tuple[Sequence[int], Sequence[int]] = ((), ())) -> np.ndarray:
    rng = np.random.default_rng(seed)
    np_type = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT8": np.int8}[dtype]
    if dtype == "INT8":
        values = rng.integers(-127, 128, shape)
        values[values == 0] = 1
    else:
        values = rng.normal(0, 1, shape)
    coarse = list(shape)
    for d, b in zip(*block):
        coarse[d] //= b
    mask = rng.random(coarse) < density
    mask.flat[-1] = True  # never all zero: an empty buffer is no constant (nothing to densify)
    for d, b in zip(*block):
        mask = np.repeat(mask, b, axis=d)
    return np.where(mask, values, 0).astype(np_type)


LAYOUTS = [
    # (shape, traversal order, formats, block_map, block_size)
    ((4, 6), (0, 1), "DS", (), ()),  # the converter's CSR
    ((4, 6), (1, 0), "DS", (), ()),  # column-major
    ((4, 6), (0, 1), "SS", (), ()),
    ((4, 6), (0, 1), "SD", (), ()),
    ((2, 3, 4), (0, 1, 2), "DSS", (), ()),
    ((2, 3, 4), (2, 0, 1), "DDS", (), ()),
    ((4, 8), (0, 1, 2), "DSD", (1,), (4,)),  # 1x4 blocks (the converter's block sparsity)
    ((6, 4), (0, 1, 2), "SDD", (0,), (2,)),  # 2x1 blocks
    ((4, 8), (1, 0, 2), "DSD", (1,), (2,)),
    ((4, 8), (0, 1, 2, 3), "DSDD", (0, 1), (2, 4)),  # two block dimensions
]


@pytest.mark.parametrize("dtype", ["FLOAT32", "FLOAT16", "INT8"])
@pytest.mark.parametrize("shape,order,formats,block_map,block_size", LAYOUTS,
                         ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else v)
def test_densify_matches_litert(shape: tuple[int, ...], order: tuple[int, ...], formats: str,
                                block_map: tuple[int, ...], block_size: tuple[int, ...],
                                dtype: str) -> None:
    for seed, density in ((0, 0.35), (1, 0.8), (2, 0.05)):
        dense = _dense(shape, dtype, density, seed, (block_map, block_size))
        values, sp = encode(dense, order, formats, block_map, block_size)
        data = densify_model(shape, dtype, values, sp)
        assert assert_matches_litert(data, []) == 1
        np.testing.assert_array_equal(run_ours(data, []).get_tensor(1), dense)


@pytest.mark.parametrize("index_dtype", [np.uint8, np.uint16, np.int32])
def test_index_vector_types(index_dtype: Any) -> None:
    dense = _dense((5, 7), "FLOAT32", 0.5, 3)
    values, sp = encode(dense, (0, 1), "DS", index_dtype=index_dtype)
    data = densify_model((5, 7), "FLOAT32", values, sp)
    assert_matches_litert(data, [])


def test_a_coordinate_stored_twice_keeps_the_later_value_like_litert() -> None:
    sp = Sparsity(traversal_order=[0, 1], block_map=[], dim_metadata=[
        DimensionMetadata("DENSE", 2),
        DimensionMetadata("SPARSE_CSR", array_segments=np.array([0, 2, 3], np.int32),
                          array_indices=np.array([1, 1, 0], np.int32))])
    data = densify_model((2, 3), "FLOAT32", np.array([5.0, 7.0, 9.0], np.float32), sp)
    assert_matches_litert(data, [])
    np.testing.assert_array_equal(run_ours(data, []).get_tensor(1), [[0, 7, 0], [9, 0, 0]])


# =============================================================================================
# Sparse FULLY_CONNECTED (DENSIFY -> FULLY_CONNECTED)
# =============================================================================================
@pytest.mark.parametrize("kind", ["float", "int8", "block"])
def test_sparse_fully_connected_matches_litert(kind: str) -> None:
    data = M.fixture(f"sparse_fc_{kind}")
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = (rng.integers(-128, 128, (2, 16)).astype(np.int8) if kind == "int8"
             else rng.normal(0, 1, (2, 16)).astype(np.float32))
        assert assert_matches_litert(data, [x]) == 3
    ours = run_ours(data, [x])
    w = next(t.index for t in ours.model.subgraphs[0].tensors if t.name == "w")
    dense = ours.get_tensor(w)
    if kind != "int8":
        expected = M.pruned((6, 16), 0.4, 13 if kind == "block" else 14,
                            (1, 4) if kind == "block" else None)
        np.testing.assert_array_equal(dense, expected)
    assert 0 < np.count_nonzero(dense) < dense.size  # really pruned


def test_densify_is_litert_only() -> None:
    with pytest.raises(UnsupportedOpError, match="no emulation of 'tflm'"):
        tflite_ref.Interpreter(model_content=M.fixture("sparse_fc_float"),
                               emulate="tflm").allocate_tensors()


# =============================================================================================
# Layouts LiteRT's converter mishandles (hostile-models class 20/K)
# =============================================================================================
def _hostile(dims: list[DimensionMetadata], order: list[int], block_map: list[int] = (),
             shape: tuple[int, ...] = (4, 4), n_values: int = 4) -> bytes:
    sp = Sparsity(traversal_order=order, block_map=list(block_map), dim_metadata=dims)
    return densify_model(shape, "FLOAT32", np.ones(n_values, np.float32), sp)


def _seg(*v: int) -> np.ndarray:
    return np.array(v, np.int32)


@pytest.mark.parametrize("model,error,pattern", [
    (lambda: _hostile([DimensionMetadata("DENSE", 4), DimensionMetadata("DENSE", 1)], [0, 1]),
     ModelValidationError, (r"dim_metadata\[1\] is DENSE of size 1, but the dimension it "
                            r"traverses has 4 entries")),
    (lambda: _hostile([DimensionMetadata("DENSE", 2), DimensionMetadata("DENSE", 2),
                       DimensionMetadata("DENSE", 2), DimensionMetadata("DENSE", 2)],
                      [0, 1, 2, 3], [1, 0], n_values=16),
     UnsupportedOpError, r"block_map \[1, 0\] is not strictly ascending"),
    (lambda: _hostile([DimensionMetadata("DENSE", 2), DimensionMetadata("DENSE", 2),
                       DimensionMetadata("DENSE", 2), DimensionMetadata("DENSE", 2)],
                      [0, 1, 3, 2], [0, 1], n_values=16),
     UnsupportedOpError, r"block dimensions traversed in the order \[3, 2\]"),
    (lambda: _hostile([DimensionMetadata("DENSE", 2), DimensionMetadata("DENSE", 4),
                       DimensionMetadata("DENSE", 2)], [2, 1, 0], [0], n_values=16),
     ModelValidationError, r"must list the tensor's 2 dimensions first"),
])
def test_hostile_sparsity_is_refused(model: Any, error: type[Exception], pattern: str) -> None:
    it = tflite_ref.Interpreter(model_content=model())
    with pytest.raises(error, match=pattern):
        it.allocate_tensors()


@pytest.mark.parametrize("segments,indices,pattern", [
    ((0, 2, 4, 6, 8), (0, 1, 0, 1, 0, 1, 0, 1), "addresses 8 values; the buffer holds 4"),
    ((0, 1, 1, 1, 1), (4,), r"array_indices reach 4, outside the 4 entries"),
    ((0, 8), (0, 1, 2, 3) * 2, (r"segments address 8 positions; the dimensions traversed so "
                                r"far hold 4")),
])
def test_sparse_to_dense_bounds(segments: tuple[int, ...], indices: tuple[int, ...],
                                pattern: str) -> None:
    """What the reader's checks (validate.py) let through is still bounded here: the converter
    would read past the values, or write outside the tensor."""
    from tflite_ref.kernels.sparse import sparse_to_dense
    from tflite_ref.model.model import DimensionMetadata as Dim
    from tflite_ref.model.model import Sparsity as ModelSparsity

    sp = ModelSparsity((0, 1), (), (Dim("DENSE", 4, None, None),
                                    Dim("SPARSE_CSR", 0, np.array(segments), np.array(indices))))
    values = np.ones(4, np.float32)
    if "positions" in pattern:  # one row whose run covers every index twice
        sp = ModelSparsity((0, 1), (), (Dim("DENSE", 1, None, None),
                                        Dim("SPARSE_CSR", 0, np.array(segments),
                                            np.array(indices))))
        with pytest.raises(ModelValidationError, match=pattern):
            sparse_to_dense((1, 4), sp, values, "w")
        return
    with pytest.raises(ModelValidationError, match=pattern):
        sparse_to_dense((4, 4), sp, values, "w")


# =============================================================================================
# float16 weights
# =============================================================================================
@pytest.mark.parametrize("name,shape", [("float16_fc", (3, 10)), ("float16_conv", (1, 7, 7, 3))])
def test_float16_weights_match_litert(name: str, shape: tuple[int, ...]) -> None:
    data = M.fixture(name)
    for seed in range(3):
        x = np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32)
        assert assert_matches_litert(data, [x]) == 4  # x, both dequantized constants, y
    ref = run_litert(data, [x])
    ours = run_ours(data, [x])
    w16 = next(t for t in ours.model.subgraphs[0].tensors if t.name == "w_f16")
    w = next(t.index for t in ours.model.subgraphs[0].tensors if t.name == "w")
    np.testing.assert_array_equal(ours.get_tensor(w), w16.data.astype(np.float32))
    np.testing.assert_array_equal(ours.get_tensor(w), ref[w])
    with pytest.raises(UnsupportedOpError, match="DEQUANTIZE kernel does not take FLOAT16"):
        tflite_ref.Interpreter(model_content=data, emulate="tflm").allocate_tensors()
