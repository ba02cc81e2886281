"""Build the generated fixture models for ``tests/micro`` with our own writer.

Run from the repository root (dev-only; the outputs are committed)::

    python tests/micro/build_models.py

Deterministic (fixed seed, no converter). Each model exercises one rule of TFLite Micro's
arena accounting or op support that the shared corpus does not, and the tests run every one of
them through the ``tflite-micro`` wheel live:

Allocated by TFLM (head/tail/total/minimum must match to the byte):
  svdf_int8, svdf_float        SVDF scratch buffers (two int32 / one), variable activation state
  lstm_float                   UNIDIRECTIONAL_SEQUENCE_LSTM: 4 scratch buffers, 24-input temps
  while_float, if_float        control flow: 3 subgraphs planned together, nested lifetimes
  call_once_var                CALL_ONCE + VAR_HANDLE/ASSIGN/READ_VARIABLE (resource variables)
  variable_add                 a plain variable tensor (tail, step 12)
  offline_partial              OfflineMemoryAllocation: offsets for some tensors, -1 for others
  offline_variable             an offline offset for a variable tensor: head instead of tail
  fc_per_channel_int8          per-channel FULLY_CONNECTED: 2 × 4·C persistent arrays
  softmax_int16                int16 SOFTMAX: two 1026-byte LUTs
  conv_int4                    INT4 filter: an unpacked-filter scratch buffer
  multi_io_int8                2 inputs / 2 outputs, CONV + DEPTHWISE + MEAN + CONCATENATION
  transpose_conv_int8          TRANSPOSE_CONV scratch and per-channel arrays
  branches_float               two branches in an unlucky operator order (order search)
  branches_float_reordered     the same graph in the order the search finds
Rejected by TFLM (``supported`` must be False, with the reason):
  dequantize_fp16              DEQUANTIZE from FLOAT16 (float16 weights)
  densify                      DENSIFY (sparse weights)
  hybrid_conv                  CONV_2D float input with int8 weights
  unknown_custom               a custom op TFLM does not have
  softmax_abort                int8 SOFTMAX whose input scale × beta aborts TFLM (SIGABRT)
  offline_bad_count            OfflineMemoryAllocation with the wrong tensor count
  concat_rescale_int8          int8 CONCATENATION whose inputs' scales differ from the output's
"""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tflite_ref.model.writer import ModelBuilder  # noqa: E402

OUT = Path(__file__).resolve().parent / "models"


def _part2_models() -> ModuleType:
    """The interpreter tests' fixture builders (tests/models/part2/make_models.py)."""
    path = ROOT / "tests" / "models" / "part2" / "make_models.py"
    spec = importlib.util.spec_from_file_location("micro_part2_make_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
SEED = 20261126
rng = np.random.default_rng(SEED)


def _f32(*shape: int) -> np.ndarray:
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


def _i8(*shape: int) -> np.ndarray:
    return rng.integers(-127, 128, size=shape, dtype=np.int8)


def _offline(offsets: list[int]) -> bytes:
    return struct.pack(f"<{3 + len(offsets)}i", 1, 1, len(offsets), *offsets)


def svdf(kind: str) -> bytes:
    mb = ModelBuilder(description=f"svdf {kind}")
    sg = mb.subgraph("main")
    batch, n_in, n_filters, rank, memory = 1, 16, 8, 2, 4
    units = n_filters // rank
    if kind == "int8":
        x = sg.tensor("x", [batch, n_in], "INT8", scale=0.05, zero_point=0)
        wf = sg.tensor("wf", [n_filters, n_in], "INT8", _i8(n_filters, n_in), scale=0.01,
                       zero_point=0)
        wt = sg.tensor("wt", [n_filters, memory], "INT16",
                       rng.integers(-3000, 3000, (n_filters, memory), dtype=np.int16),
                       scale=0.0001, zero_point=0)
        b = sg.tensor("b", [units], "INT32", rng.integers(-100, 100, units, dtype=np.int32),
                      scale=1e-7, zero_point=0)  # = state scale × weights_time scale
        st = sg.tensor("state", [batch, memory * n_filters], "INT16", scale=0.001,
                       zero_point=0, is_variable=True)
        y = sg.tensor("y", [batch, units], "INT8", scale=0.1, zero_point=0)
    else:
        x = sg.tensor("x", [batch, n_in], "FLOAT32")
        wf = sg.tensor("wf", [n_filters, n_in], "FLOAT32", _f32(n_filters, n_in))
        wt = sg.tensor("wt", [n_filters, memory], "FLOAT32", _f32(n_filters, memory))
        b = sg.tensor("b", [units], "FLOAT32", _f32(units))
        st = sg.tensor("state", [batch, memory * n_filters], "FLOAT32", is_variable=True)
        y = sg.tensor("y", [batch, units], "FLOAT32")
    sg.operator("SVDF", [x, wf, wt, b, st], [y], {"rank": rank})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def lstm_float() -> bytes:
    mb = ModelBuilder(description="lstm float")
    sg = mb.subgraph("main")
    batch, steps, n_in, cell = 1, 3, 4, 5
    x = sg.tensor("x", [batch, steps, n_in], "FLOAT32")
    ins = [x]
    for g in ("i", "f", "c", "o"):
        ins.append(sg.tensor(f"w_{g}", [cell, n_in], "FLOAT32", _f32(cell, n_in)))
    for g in ("i", "f", "c", "o"):
        ins.append(sg.tensor(f"r_{g}", [cell, cell], "FLOAT32", _f32(cell, cell)))
    ins += [None, None, None]  # no peepholes
    for g in ("i", "f", "c", "o"):
        ins.append(sg.tensor(f"b_{g}", [cell], "FLOAT32", _f32(cell)))
    ins += [None, None]  # no projection
    ins.append(sg.tensor("h", [batch, cell], "FLOAT32", is_variable=True))
    ins.append(sg.tensor("c", [batch, cell], "FLOAT32", is_variable=True))
    ins += [None, None, None, None]  # no layer norm
    y = sg.tensor("y", [batch, steps, cell], "FLOAT32")
    sg.operator("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y],
                {"fused_activation_function": "TANH", "time_major": False})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def while_float() -> bytes:
    mb = ModelBuilder(description="while float")
    main = mb.subgraph("main")
    cond = mb.subgraph("cond")
    body = mb.subgraph("body")
    i0 = main.tensor("i0", [], "INT32", np.array(0, dtype=np.int32))
    x = main.tensor("x", [1, 8], "FLOAT32")
    i_out = main.tensor("i_out", [], "INT32")
    y = main.tensor("y", [1, 8], "FLOAT32")
    z = main.tensor("z", [1, 8], "FLOAT32")
    main.operator("WHILE", [i0, x], [i_out, y], {"cond_subgraph_index": cond,
                                                 "body_subgraph_index": body})
    main.operator("ADD", [y, y], [z])
    main.inputs, main.outputs = [x], [z]
    ci = cond.tensor("i", [], "INT32")
    cx = cond.tensor("x", [1, 8], "FLOAT32")
    limit = cond.tensor("limit", [], "INT32", np.array(3, dtype=np.int32))
    flag = cond.tensor("flag", [], "BOOL")
    cond.operator("LESS", [ci, limit], [flag])
    cond.inputs, cond.outputs = [ci, cx], [flag]
    bi = body.tensor("i", [], "INT32")
    bx = body.tensor("x", [1, 8], "FLOAT32")
    one = body.tensor("one", [], "INT32", np.array(1, dtype=np.int32))
    bi2 = body.tensor("i2", [], "INT32")
    bx2 = body.tensor("x2", [1, 8], "FLOAT32")
    body.operator("ADD", [bi, one], [bi2])
    body.operator("ADD", [bx, bx], [bx2])
    body.inputs, body.outputs = [bi, bx], [bi2, bx2]
    return mb.build()


def if_float() -> bytes:
    mb = ModelBuilder(description="if float")
    main = mb.subgraph("main")
    then = mb.subgraph("then")
    other = mb.subgraph("else")
    c = main.tensor("c", [1], "BOOL")
    x = main.tensor("x", [1, 16], "FLOAT32")
    y = main.tensor("y", [1, 16], "FLOAT32")
    main.operator("IF", [c, x], [y], {"then_subgraph_index": then, "else_subgraph_index": other})
    main.inputs, main.outputs = [c, x], [y]
    for sgb, op in ((then, "ADD"), (other, "MUL")):
        a = sgb.tensor("a", [1, 16], "FLOAT32")
        t = sgb.tensor("t", [1, 16], "FLOAT32")
        r = sgb.tensor("r", [1, 16], "FLOAT32")
        sgb.operator(op, [a, a], [t])
        sgb.operator("RELU", [t], [r])
        sgb.inputs, sgb.outputs = [a], [r]
    return mb.build()


def call_once_var() -> bytes:
    """CALL_ONCE initialising a resource variable, then READ/ADD/ASSIGN: the interpreter tests'
    fixture (tests/models/part2/make_models.py ``var_accumulate``), planned by TFLM here."""
    return _part2_models().var_accumulate()


def variable_add() -> bytes:
    mb = ModelBuilder(description="variable tensor")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 10], "FLOAT32")
    v = sg.tensor("v", [1, 10], "FLOAT32", is_variable=True)
    y = sg.tensor("y", [1, 10], "FLOAT32")
    sg.operator("ADD", [x, v], [y])
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def _mlp(mb: ModelBuilder, variable: bool = False) -> list:
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 8], "FLOAT32")
    w1 = sg.tensor("w1", [24, 8], "FLOAT32", _f32(24, 8))
    h = sg.tensor("h", [1, 24], "FLOAT32")
    w2 = sg.tensor("w2", [4, 24], "FLOAT32", _f32(4, 24))
    y = sg.tensor("y", [1, 4], "FLOAT32")
    sg.operator("FULLY_CONNECTED", [x, w1, None], [h])
    tensors = [x, w1, h, w2, y]
    if variable:
        v = sg.tensor("v", [1, 4], "FLOAT32", is_variable=True)
        z = sg.tensor("z", [1, 4], "FLOAT32")
        sg.operator("FULLY_CONNECTED", [h, w2, None], [z])
        sg.operator("ADD", [z, v], [y])
        tensors += [v, z]
    else:
        sg.operator("FULLY_CONNECTED", [h, w2, None], [y])
    sg.inputs, sg.outputs = [x], [y]
    return tensors


def offline_partial() -> bytes:
    mb = ModelBuilder(description="offline plan, partial")
    _mlp(mb)
    # x at 200 (not a multiple of 16), h planned online, y at 0; weights' offsets are ignored.
    mb.metadata("OfflineMemoryAllocation", _offline([200, 0, -1, 0, 0]))
    return mb.build()


def offline_variable() -> bytes:
    mb = ModelBuilder(description="offline plan with a variable")
    _mlp(mb, variable=True)
    # tensors: x w1 h w2 y v z ; the variable v gets offset 256 and so lives in the head.
    mb.metadata("OfflineMemoryAllocation", _offline([-1, -1, -1, -1, -1, 256, -1]))
    return mb.build()


def offline_bad_count() -> bytes:
    mb = ModelBuilder(description="offline plan, wrong count")
    _mlp(mb)
    mb.metadata("OfflineMemoryAllocation", _offline([0, -1, -1]))
    return mb.build()


def fc_per_channel_int8() -> bytes:
    mb = ModelBuilder(description="per-channel fully connected int8")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 12], "INT8", scale=0.02, zero_point=-3)
    w = sg.tensor("w", [24, 12], "INT8", _i8(24, 12), scale=[0.01 + 0.001 * i for i in range(24)],
                  zero_point=[0] * 24, quantized_dimension=0)
    b = sg.tensor("b", [24], "INT32", rng.integers(-50, 50, 24, dtype=np.int32),
                  scale=[0.0002 + 0.00002 * i for i in range(24)], zero_point=[0] * 24)
    h = sg.tensor("h", [1, 24], "INT8", scale=0.05, zero_point=1)
    w2 = sg.tensor("w2", [10, 24], "INT8", _i8(10, 24), scale=[0.02] * 10, zero_point=[0] * 10,
                   quantized_dimension=0)
    y = sg.tensor("y", [1, 10], "INT8", scale=0.1, zero_point=0)
    sg.operator("FULLY_CONNECTED", [x, w, b], [h])
    sg.operator("FULLY_CONNECTED", [h, w2, None], [y])
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def softmax_int16() -> bytes:
    mb = ModelBuilder(description="int16 softmax")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 10], "INT16", scale=0.001, zero_point=0)
    y = sg.tensor("y", [1, 10], "INT16", scale=1 / 32768, zero_point=0)
    sg.operator("SOFTMAX", [x], [y], {"beta": 1.0})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def softmax_abort() -> bytes:
    mb = ModelBuilder(description="int8 softmax whose scale aborts TFLM")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 10], "INT8", scale=1e-9, zero_point=0)
    y = sg.tensor("y", [1, 10], "INT8", scale=1 / 256, zero_point=-128)
    sg.operator("SOFTMAX", [x], [y], {"beta": 1.0})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def conv_int4() -> bytes:
    mb = ModelBuilder(description="int4 conv")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 6, 6, 3], "INT8", scale=0.05, zero_point=0)
    w = sg.tensor("w", [4, 3, 3, 3], "INT4", rng.integers(-8, 8, (4, 3, 3, 3)),
                  scale=[0.05] * 4, zero_point=[0] * 4, quantized_dimension=0)
    b = sg.tensor("b", [4], "INT32", np.zeros(4, np.int32), scale=[0.0025] * 4,
                  zero_point=[0] * 4)
    y = sg.tensor("y", [1, 6, 6, 4], "INT8", scale=0.1, zero_point=0)
    sg.operator("CONV_2D", [x, w, b], [y], {"padding": "SAME", "stride_w": 1, "stride_h": 1})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def multi_io_int8() -> bytes:
    mb = ModelBuilder(description="two inputs, two outputs")
    sg = mb.subgraph("main")
    q = dict(scale=0.05, zero_point=0)
    a = sg.tensor("a", [1, 8, 8, 3], "INT8", **q)
    b_in = sg.tensor("b", [1, 8, 8, 3], "INT8", **q)
    w = sg.tensor("w", [6, 3, 3, 3], "INT8", _i8(6, 3, 3, 3), scale=[0.02] * 6,
                  zero_point=[0] * 6, quantized_dimension=0)
    bias = sg.tensor("bias", [6], "INT32", np.zeros(6, np.int32), scale=[0.001] * 6,
                     zero_point=[0] * 6)
    c1 = sg.tensor("c1", [1, 8, 8, 6], "INT8", **q)
    dw = sg.tensor("dw", [1, 3, 3, 3], "INT8", _i8(1, 3, 3, 3), scale=[0.02] * 3,
                   zero_point=[0] * 3, quantized_dimension=3)
    dwb = sg.tensor("dwb", [3], "INT32", np.zeros(3, np.int32), scale=[0.001] * 3,
                    zero_point=[0] * 3)
    d1 = sg.tensor("d1", [1, 8, 8, 3], "INT8", **q)
    cat = sg.tensor("cat", [1, 8, 8, 9], "INT8", **q)
    axes = sg.tensor("axes", [2], "INT32", np.array([1, 2], np.int32))
    m = sg.tensor("mean", [1, 9], "INT8", **q)
    sg.operator("CONV_2D", [a, w, bias], [c1], {"padding": "SAME", "stride_w": 1, "stride_h": 1})
    sg.operator("DEPTHWISE_CONV_2D", [b_in, dw, dwb], [d1],
                {"padding": "SAME", "stride_w": 1, "stride_h": 1, "depth_multiplier": 1})
    sg.operator("CONCATENATION", [c1, d1], [cat], {"axis": 3})
    sg.operator("MEAN", [cat, axes], [m], {"keep_dims": False})
    sg.inputs, sg.outputs = [a, b_in], [m, d1]
    return mb.build()


def transpose_conv_int8() -> bytes:
    mb = ModelBuilder(description="transpose conv int8")
    sg = mb.subgraph("main")
    shape = sg.tensor("shape", [4], "INT32", np.array([1, 8, 8, 2], np.int32))
    w = sg.tensor("w", [2, 3, 3, 4], "INT8", _i8(2, 3, 3, 4), scale=[0.02] * 2,
                  zero_point=[0] * 2, quantized_dimension=0)
    x = sg.tensor("x", [1, 4, 4, 4], "INT8", scale=0.05, zero_point=0)
    y = sg.tensor("y", [1, 8, 8, 2], "INT8", scale=0.1, zero_point=0)
    sg.operator("TRANSPOSE_CONV", [shape, w, x], [y], {"padding": "SAME", "stride_w": 2,
                                                       "stride_h": 2})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def branches_float(reordered: bool) -> bytes:
    """x -> FC a1 (256) -> FC a2 (8);  x -> FC b1 (256) -> FC b2 (8);  ADD(a2, b2).
    File order a1, b1, a2, b2 keeps both 1 KiB intermediates alive at once."""
    mb = ModelBuilder(description="branches")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 16], "FLOAT32")
    wa1 = sg.tensor("wa1", [256, 16], "FLOAT32", _f32(256, 16))
    wb1 = sg.tensor("wb1", [256, 16], "FLOAT32", _f32(256, 16))
    wa2 = sg.tensor("wa2", [8, 256], "FLOAT32", _f32(8, 256))
    wb2 = sg.tensor("wb2", [8, 256], "FLOAT32", _f32(8, 256))
    a1 = sg.tensor("a1", [1, 256], "FLOAT32")
    b1 = sg.tensor("b1", [1, 256], "FLOAT32")
    a2 = sg.tensor("a2", [1, 8], "FLOAT32")
    b2 = sg.tensor("b2", [1, 8], "FLOAT32")
    y = sg.tensor("y", [1, 8], "FLOAT32")
    ops = {"a1": ([x, wa1, None], [a1]), "b1": ([x, wb1, None], [b1]),
           "a2": ([a1, wa2, None], [a2]), "b2": ([b1, wb2, None], [b2])}
    for name in (("a1", "a2", "b1", "b2") if reordered else ("a1", "b1", "a2", "b2")):
        sg.operator("FULLY_CONNECTED", *ops[name])
    sg.operator("ADD", [a2, b2], [y])
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def dequantize_fp16() -> bytes:
    mb = ModelBuilder(description="float16 weights")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 8], "FLOAT32")
    w16 = sg.tensor("w16", [4, 8], "FLOAT16", _f32(4, 8).astype(np.float16))
    w = sg.tensor("w", [4, 8], "FLOAT32")
    y = sg.tensor("y", [1, 4], "FLOAT32")
    sg.operator("DEQUANTIZE", [w16], [w])
    sg.operator("FULLY_CONNECTED", [x, w, None], [y])
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def densify() -> bytes:
    from tflite_ref.model.writer import DimensionMetadata, Sparsity

    mb = ModelBuilder(description="sparse weights")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 4], "FLOAT32")
    sp = Sparsity(traversal_order=[0, 1], dim_metadata=[
        DimensionMetadata("DENSE", 2),
        DimensionMetadata("SPARSE_CSR", array_segments=[0, 1, 2], array_indices=[1, 3])])
    ws = sg.tensor("w_sparse", [2, 4], "FLOAT32", np.array([1.0, 2.0], np.float32), sparsity=sp)
    w = sg.tensor("w", [2, 4], "FLOAT32")
    y = sg.tensor("y", [1, 2], "FLOAT32")
    sg.operator("DENSIFY", [ws], [w])
    sg.operator("FULLY_CONNECTED", [x, w, None], [y])
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def hybrid_conv() -> bytes:
    mb = ModelBuilder(description="hybrid conv")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 5, 5, 2], "FLOAT32")
    w = sg.tensor("w", [3, 3, 3, 2], "INT8", _i8(3, 3, 3, 2), scale=[0.01] * 3,
                  zero_point=[0] * 3, quantized_dimension=0)
    b = sg.tensor("b", [3], "FLOAT32", _f32(3))
    y = sg.tensor("y", [1, 5, 5, 3], "FLOAT32")
    sg.operator("CONV_2D", [x, w, b], [y], {"padding": "SAME", "stride_w": 1, "stride_h": 1})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def concat_rescale_int8() -> bytes:
    mb = ModelBuilder(description="int8 concat that needs rescaling")
    sg = mb.subgraph("main")
    a = sg.tensor("a", [1, 4], "INT8", scale=0.05, zero_point=0)
    b = sg.tensor("b", [1, 4], "INT8", scale=0.1, zero_point=0)
    y = sg.tensor("y", [1, 8], "INT8", scale=0.1, zero_point=0)
    sg.operator("CONCATENATION", [a, b], [y], {"axis": 1})
    sg.inputs, sg.outputs = [a, b], [y]
    return mb.build()


def unknown_custom() -> bytes:
    mb = ModelBuilder(description="unknown custom op")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 4], "FLOAT32")
    y = sg.tensor("y", [1, 4], "FLOAT32")
    sg.operator("CUSTOM:MyFancyOp", [x], [y], custom_options=b"")
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


MODELS = {
    "svdf_int8": lambda: svdf("int8"),
    "svdf_float": lambda: svdf("float"),
    "lstm_float": lstm_float,
    "while_float": while_float,
    "if_float": if_float,
    "call_once_var": call_once_var,
    "variable_add": variable_add,
    "offline_partial": offline_partial,
    "offline_variable": offline_variable,
    "fc_per_channel_int8": fc_per_channel_int8,
    "softmax_int16": softmax_int16,
    "conv_int4": conv_int4,
    "multi_io_int8": multi_io_int8,
    "transpose_conv_int8": transpose_conv_int8,
    "branches_float": lambda: branches_float(False),
    "branches_float_reordered": lambda: branches_float(True),
    "dequantize_fp16": dequantize_fp16,
    "densify": densify,
    "hybrid_conv": hybrid_conv,
    "unknown_custom": unknown_custom,
    "softmax_abort": softmax_abort,
    "offline_bad_count": offline_bad_count,
    "concat_rescale_int8": concat_rescale_int8,
}


def build_all() -> dict[str, bytes]:
    global rng
    rng = np.random.default_rng(SEED)  # the same bytes whichever subset ran before
    return {name: fn() for name, fn in MODELS.items()}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, data in build_all().items():
        (OUT / f"{name}.tflite").write_bytes(data)
        print(f"{name}.tflite  {len(data)} bytes")


if __name__ == "__main__":
    main()
