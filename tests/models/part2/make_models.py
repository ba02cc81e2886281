"""Build the fixture models of the interpreter's second part (control flow, state, sparse and
float16 weights, custom operators) with our own writer.

Run from the repository root (dev-only; the outputs are committed beside this file)::

    python tests/models/part2/make_models.py

Deterministic (fixed seeds, no converter): the tests import this module, build every model again
and check the committed bytes are the same (``test_control_flow.py::test_fixtures_are_current``).
TensorFlow is not a dependency, so the "Keras LSTM lowered to a WHILE loop" fixtures are the
graph that TensorFlow's converter makes of an unfused ``keras.layers.LSTM`` written here by hand:
a WHILE over the time steps whose body gathers step ``t`` of the sequence and computes
``z = x_t W + h U + b`` (FULLY_CONNECTED, ADD), splits it into the gates ``i, f, g, o`` (SPLIT),
and updates ``c = sigmoid(f) * c + sigmoid(i) * tanh(g)``, ``h = sigmoid(o) * tanh(c)``
(LOGISTIC, TANH, MUL, ADD), with the converter's two-counter condition
``t < T and t < max_iterations`` (LESS, LOGICAL_AND).

Models (``<name>.tflite``)
--------------------------
while_count_int8
    Loop variables ``(i, n, x)``: while ``i < n``, ``x = x + step`` (int8 ADD, saturating)
    and ``i = i + 1``; ``n`` and ``x`` are inputs.  Subgraphs: main, cond, body.
lstm_while_static
    The Keras LSTM loop above (batch 1, 5 steps, 3 features, 4 units) followed by a dense head
    (FULLY_CONNECTED) on the last ``h``; shapes never change, so TFLM runs it too.
lstm_while_sequence
    The same loop also returning the whole sequence: the body concatenates ``h`` to an
    accumulator (``return_sequences=True``), so that loop variable grows by one row per step
    and the WHILE outputs are dynamic (LiteRT's ``Eval_dynamic``); a TANH after the loop is
    prepared only once that shape is known.
if_float
    ``IF(c, x)``: the then-branch computes ``relu(x + x)``, the else-branch ``tanh(x * x)``.
if_dynamic
    The branches return different shapes (RESHAPE to ``[6]`` vs TRANSPOSE to ``[3, 2]``), so
    the IF output is dynamic; NEG follows it.
call_float / call_inlined
    CALL of a subgraph computing ``(a + b) * a``, and the same graph inlined (LiteRT has no CALL
    kernel: the inlined model is the reference).
while_forever
    A condition that never turns false (``i >= 0`` while ``i`` counts up), for the iteration
    budget.
nested_if
    IF inside IF inside IF (depth 4 with the main graph), for the nesting budget.
var_accumulate
    CALL_ONCE runs an init subgraph assigning ``[1, 2, 3, 4]`` to resource variable ``acc``;
    every invoke reads it, adds the input and assigns the sum back (VAR_HANDLE, READ_VARIABLE,
    ASSIGN_VARIABLE).
var_read_before_assign
    READ_VARIABLE of a variable nothing assigned yet (LiteRT refuses at invoke, TFLM reads its
    zero default).
var_in_while
    A resource handle passed into a WHILE body as a loop variable; the body adds ``x`` to the
    variable three times.
int8_variable_tensor
    ``y = x + v`` (int8) with ``v`` a variable tensor of zero point -4: it starts, and resets,
    at its zero point.
sparse_fc_float / sparse_fc_int8 / sparse_fc_block
    DENSIFY -> FULLY_CONNECTED with pruned weights stored sparse: float32 CSR rows (traversal
    [0, 1], formats DENSE/SPARSE_CSR), int8 per-channel weights, and float32 in 1x4 blocks
    (block_map [1], traversal [0, 1, 2]).
float16_fc / float16_conv
    float16 weights DEQUANTIZEd to float32 feeding FULLY_CONNECTED / CONV_2D (the converter's
    ``float16`` post-training quantization layout).
custom_scale
    ``CUSTOM:MyScale`` with FlexBuffer options ``{"alpha": 2.5}`` (for a user plug-in).
unknown_custom
    ``CUSTOM:NoSuchOp``, which nobody implements.

Built on the fly, not committed
-------------------------------
``detection(...)``
    ``TFLite_Detection_PostProcess`` as SSD MobileNet uses it (float or uint8 box encodings and
    class predictions, constant anchors, fast or regular NMS), in the many variants its tests
    need.  Not committed: ``tests/micro/test_micro_vs_wheel.py`` checks the TFLM arena estimate
    of every ``.tflite`` under ``tests/``, and the estimator does not model this kernel's
    scratch buffers yet.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from flatbuffers import flexbuffers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tflite_ref.model.writer import (
    DimensionMetadata,
    ModelBuilder,
    Sparsity,
    SubgraphBuilder,
    TensorSpec,
)

SEED = 20261104


def _rng(salt: int) -> np.random.Generator:
    return np.random.default_rng(SEED + salt)


def _i32(v: int) -> np.ndarray:
    return np.array(v, dtype=np.int32)


# =============================================================================================
# Control flow
# =============================================================================================
def while_count_int8() -> bytes:
    mb = ModelBuilder(description="WHILE counting loop, int8 accumulation")
    main, cond, body = mb.subgraph("main"), mb.subgraph("cond"), mb.subgraph("body")
    q = {"scale": 0.25, "zero_point": 3}
    n = main.tensor("n", [], "INT32")
    x = main.tensor("x", [1, 8], "INT8", **q)
    i0 = main.tensor("i0", [], "INT32", _i32(0))
    i_out = main.tensor("i_out", [], "INT32")
    n_out = main.tensor("n_out", [], "INT32")
    x_out = main.tensor("x_out", [1, 8], "INT8", **q)
    main.operator("WHILE", [i0, n, x], [i_out, n_out, x_out],
                  {"cond_subgraph_index": cond, "body_subgraph_index": body})
    main.inputs, main.outputs = [n, x], [i_out, x_out]

    ci, cn = cond.tensor("i", [], "INT32"), cond.tensor("n", [], "INT32")
    cx = cond.tensor("x", [1, 8], "INT8", **q)
    flag = cond.tensor("flag", [], "BOOL")
    cond.operator("LESS", [ci, cn], [flag])
    cond.inputs, cond.outputs = [ci, cn, cx], [flag]

    bi, bn = body.tensor("i", [], "INT32"), body.tensor("n", [], "INT32")
    bx = body.tensor("x", [1, 8], "INT8", **q)
    one = body.tensor("one", [], "INT32", _i32(1))
    step = body.tensor("step", [1, 8], "INT8",
                       np.array([[-7, -3, 0, 1, 2, 5, 9, 30]], np.int8), scale=0.1, zero_point=-2)
    bi2 = body.tensor("i_next", [], "INT32")
    bx2 = body.tensor("x_next", [1, 8], "INT8", **q)
    body.operator("ADD", [bi, one], [bi2])
    body.operator("ADD", [bx, step], [bx2])
    body.inputs, body.outputs = [bi, bn, bx], [bi2, bn, bx2]
    return mb.build()


LSTM_STEPS, LSTM_FEATURES, LSTM_UNITS, LSTM_CLASSES = 5, 3, 4, 2


def _lstm_weights() -> dict[str, np.ndarray]:
    rng = _rng(1)
    u, f = LSTM_UNITS, LSTM_FEATURES
    return {
        "kernel": rng.normal(0, 0.6, (4 * u, f)).astype(np.float32),  # FC weights [out, in]
        "recurrent": rng.normal(0, 0.6, (4 * u, u)).astype(np.float32),
        "bias": rng.normal(0, 0.2, (4 * u,)).astype(np.float32),
        "head": rng.normal(0, 0.6, (LSTM_CLASSES, u)).astype(np.float32),
        "head_bias": rng.normal(0, 0.1, (LSTM_CLASSES,)).astype(np.float32),
    }


def lstm_while(sequence: bool) -> bytes:
    """A Keras LSTM lowered to WHILE (see the module docstring); ``sequence`` adds the growing
    ``return_sequences`` accumulator."""
    w = _lstm_weights()
    T, F, U = LSTM_STEPS, LSTM_FEATURES, LSTM_UNITS
    mb = ModelBuilder(description="Keras-style LSTM lowered to a WHILE loop")
    main, cond, body = mb.subgraph("main"), mb.subgraph("while_cond"), mb.subgraph("while_body")

    def loop_vars(sg: SubgraphBuilder) -> list[TensorSpec]:
        out = [sg.tensor("time", [], "INT32"), sg.tensor("max_iterations", [], "INT32"),
               sg.tensor("inputs", [T, 1, F], "FLOAT32"), sg.tensor("h", [1, U], "FLOAT32"),
               sg.tensor("c", [1, U], "FLOAT32")]
        if sequence:
            out.append(sg.tensor("sequence", [1, U], "FLOAT32", shape_signature=[-1, U]))
        return out

    # main: x [1, T, F] -> time-major [T, 1, F] -> WHILE -> dense head on the last h
    x = main.tensor("x", [1, T, F], "FLOAT32")
    perm = main.tensor("perm", [3], "INT32", np.array([1, 0, 2], np.int32))
    xt = main.tensor("x_time_major", [T, 1, F], "FLOAT32")
    main.operator("TRANSPOSE", [x, perm], [xt])
    t0 = main.tensor("time0", [], "INT32", _i32(0))
    tmax = main.tensor("max_iterations", [], "INT32", _i32(T))
    zeros = np.zeros((1, U), np.float32)
    h0 = main.tensor("h0", [1, U], "FLOAT32", zeros)
    c0 = main.tensor("c0", [1, U], "FLOAT32", zeros)
    ins = [t0, tmax, xt, h0, c0]
    if sequence:
        ins.append(main.tensor("sequence0", [1, U], "FLOAT32", zeros))
    outs = [main.tensor(n, s, typ, shape_signature=sig) for n, s, typ, sig in (
        ("time_out", [], "INT32", None), ("max_iterations_out", [], "INT32", None),
        ("inputs_out", [T, 1, F], "FLOAT32", None), ("h_last", [1, U], "FLOAT32", None),
        ("c_last", [1, U], "FLOAT32", None))]
    if sequence:
        outs.append(main.tensor("sequence_out", [1, U], "FLOAT32", shape_signature=[-1, U]))
    main.operator("WHILE", ins, outs, {"cond_subgraph_index": cond, "body_subgraph_index": body})
    head = main.tensor("head_kernel", [LSTM_CLASSES, U], "FLOAT32", w["head"])
    head_b = main.tensor("head_bias", [LSTM_CLASSES], "FLOAT32", w["head_bias"])
    logits = main.tensor("logits", [1, LSTM_CLASSES], "FLOAT32")
    main.operator("FULLY_CONNECTED", [outs[3], head, head_b], [logits])
    main.inputs, main.outputs = [x], [logits, outs[4]]
    if sequence:
        seq_act = main.tensor("sequence_tanh", [1, U], "FLOAT32", shape_signature=[-1, U])
        main.operator("TANH", [outs[5]], [seq_act])
        main.outputs.append(seq_act)

    # cond: time < T and time < max_iterations
    cv = loop_vars(cond)
    limit = cond.tensor("steps", [], "INT32", _i32(T))
    less1, less2 = cond.tensor("less_steps", [], "BOOL"), cond.tensor("less_max", [], "BOOL")
    flag = cond.tensor("keep_going", [], "BOOL")
    cond.operator("LESS", [cv[0], limit], [less1])
    cond.operator("LESS", [cv[0], cv[1]], [less2])
    cond.operator("LOGICAL_AND", [less1, less2], [flag])
    cond.inputs, cond.outputs = cv, [flag]

    # body: one LSTM step
    bv = loop_vars(body)
    time, _, seq_in, h, c = bv[:5]
    xs = body.tensor("x_t", [1, F], "FLOAT32")
    body.operator("GATHER", [seq_in, time], [xs], {"axis": 0})
    kern = body.tensor("kernel", [4 * U, F], "FLOAT32", w["kernel"])
    rec = body.tensor("recurrent_kernel", [4 * U, U], "FLOAT32", w["recurrent"])
    bias = body.tensor("bias", [4 * U], "FLOAT32", w["bias"])
    zx = body.tensor("z_x", [1, 4 * U], "FLOAT32")
    zh = body.tensor("z_h", [1, 4 * U], "FLOAT32")
    z = body.tensor("z", [1, 4 * U], "FLOAT32")
    body.operator("FULLY_CONNECTED", [xs, kern, bias], [zx])
    body.operator("FULLY_CONNECTED", [h, rec, None], [zh])
    body.operator("ADD", [zx, zh], [z])
    axis = body.tensor("split_axis", [], "INT32", _i32(1))
    gates = [body.tensor(f"gate_{g}", [1, U], "FLOAT32") for g in "ifgo"]
    body.operator("SPLIT", [axis, z], gates, {"num_splits": 4})
    gi, gf, go = (body.tensor(f"sigmoid_{g}", [1, U], "FLOAT32") for g in "ifo")
    gg = body.tensor("tanh_g", [1, U], "FLOAT32")
    body.operator("LOGISTIC", [gates[0]], [gi])
    body.operator("LOGISTIC", [gates[1]], [gf])
    body.operator("TANH", [gates[2]], [gg])
    body.operator("LOGISTIC", [gates[3]], [go])
    fc, ig = body.tensor("f_c", [1, U], "FLOAT32"), body.tensor("i_g", [1, U], "FLOAT32")
    c_next = body.tensor("c_next", [1, U], "FLOAT32")
    body.operator("MUL", [gf, c], [fc])
    body.operator("MUL", [gi, gg], [ig])
    body.operator("ADD", [fc, ig], [c_next])
    tc = body.tensor("tanh_c", [1, U], "FLOAT32")
    h_next = body.tensor("h_next", [1, U], "FLOAT32")
    body.operator("TANH", [c_next], [tc])
    body.operator("MUL", [go, tc], [h_next])
    one = body.tensor("one", [], "INT32", _i32(1))
    t_next = body.tensor("time_next", [], "INT32")
    body.operator("ADD", [time, one], [t_next])
    body_outs = [t_next, bv[1], seq_in, h_next, c_next]
    if sequence:
        grown = body.tensor("sequence_next", [2, U], "FLOAT32", shape_signature=[-1, U])
        body.operator("CONCATENATION", [bv[5], h_next], [grown], {"axis": 0})
        body_outs.append(grown)
    body.inputs, body.outputs = bv, body_outs
    return mb.build()


def if_float() -> bytes:
    mb = ModelBuilder(description="IF with two float branches")
    main, then, other = mb.subgraph("main"), mb.subgraph("then"), mb.subgraph("else")
    c = main.tensor("c", [1], "BOOL")
    x = main.tensor("x", [2, 3], "FLOAT32")
    y = main.tensor("y", [2, 3], "FLOAT32")
    z = main.tensor("z", [2, 3], "FLOAT32")
    main.operator("IF", [c, x], [y], {"then_subgraph_index": then, "else_subgraph_index": other})
    main.operator("ABS", [y], [z])
    main.inputs, main.outputs = [c, x], [z]
    for sg, op, act in ((then, "ADD", "RELU"), (other, "MUL", "TANH")):
        a = sg.tensor("a", [2, 3], "FLOAT32")
        t = sg.tensor("t", [2, 3], "FLOAT32")
        r = sg.tensor("r", [2, 3], "FLOAT32")
        sg.operator(op, [a, a], [t])
        sg.operator(act, [t], [r])
        sg.inputs, sg.outputs = [a], [r]
    return mb.build()


def if_dynamic() -> bytes:
    mb = ModelBuilder(description="IF whose branches return different shapes")
    main, then, other = mb.subgraph("main"), mb.subgraph("then"), mb.subgraph("else")
    c = main.tensor("c", [], "BOOL")
    x = main.tensor("x", [2, 3], "FLOAT32")
    y = main.tensor("y", [6], "FLOAT32", shape_signature=[-1])
    z = main.tensor("z", [6], "FLOAT32", shape_signature=[-1])
    main.operator("IF", [c, x], [y], {"then_subgraph_index": then, "else_subgraph_index": other})
    main.operator("NEG", [y], [z])
    main.inputs, main.outputs = [c, x], [z]
    a = then.tensor("a", [2, 3], "FLOAT32")
    shape = then.tensor("shape", [1], "INT32", np.array([6], np.int32))
    r = then.tensor("flat", [6], "FLOAT32")
    then.operator("RESHAPE", [a, shape], [r], {"new_shape": [6]})
    then.inputs, then.outputs = [a], [r]
    a = other.tensor("a", [2, 3], "FLOAT32")
    perm = other.tensor("perm", [2], "INT32", np.array([1, 0], np.int32))
    r = other.tensor("transposed", [3, 2], "FLOAT32")
    other.operator("TRANSPOSE", [a, perm], [r])
    other.inputs, other.outputs = [a], [r]
    return mb.build()


def _call_body(sg: SubgraphBuilder, a: Any, b: Any, out: Any) -> None:
    s = sg.tensor("sum", [1, 4], "FLOAT32")
    sg.operator("ADD", [a, b], [s])
    sg.operator("MUL", [s, a], [out])


def call_float(inlined: bool) -> bytes:
    mb = ModelBuilder(description="CALL of a subgraph" if not inlined else "CALL, inlined")
    main = mb.subgraph("main")
    a = main.tensor("a", [1, 4], "FLOAT32")
    b = main.tensor("b", [1, 4], "FLOAT32")
    y = main.tensor("y", [1, 4], "FLOAT32")
    z = main.tensor("z", [1, 4], "FLOAT32")
    if inlined:
        _call_body(main, a, b, y)
    else:
        fn = mb.subgraph("fn")
        fa, fb = fn.tensor("a", [1, 4], "FLOAT32"), fn.tensor("b", [1, 4], "FLOAT32")
        fy = fn.tensor("y", [1, 4], "FLOAT32")
        _call_body(fn, fa, fb, fy)
        fn.inputs, fn.outputs = [fa, fb], [fy]
        main.operator("CALL", [a, b], [y], {"subgraph": fn})
    main.operator("RELU", [y], [z])
    main.inputs, main.outputs = [a, b], [z]
    return mb.build()


def while_forever() -> bytes:
    mb = ModelBuilder(description="WHILE whose condition never turns false")
    main, cond, body = mb.subgraph("main"), mb.subgraph("cond"), mb.subgraph("body")
    i0 = main.tensor("i0", [], "INT32")
    i_out = main.tensor("i_out", [], "INT32")
    main.operator("WHILE", [i0], [i_out], {"cond_subgraph_index": cond, "body_subgraph_index": body})
    main.inputs, main.outputs = [i0], [i_out]
    ci = cond.tensor("i", [], "INT32")
    zero = cond.tensor("zero", [], "INT32", _i32(0))
    flag = cond.tensor("flag", [], "BOOL")
    cond.operator("GREATER_EQUAL", [ci, zero], [flag])
    cond.inputs, cond.outputs = [ci], [flag]
    bi = body.tensor("i", [], "INT32")
    one = body.tensor("one", [], "INT32", _i32(1))
    bi2 = body.tensor("i_next", [], "INT32")
    body.operator("ADD", [bi, one], [bi2])
    body.inputs, body.outputs = [bi], [bi2]
    return mb.build()


def nested_if(depth: int = 3) -> bytes:
    """``depth`` IFs, each branch of level k an IF of level k+1; the innermost negates x."""
    mb = ModelBuilder(description=f"{depth} nested IFs")
    graphs = [mb.subgraph("main")] + [mb.subgraph(f"level{k}") for k in range(1, depth + 1)]
    for k, sg in enumerate(graphs):
        c = sg.tensor("c", [], "BOOL")
        x = sg.tensor("x", [3], "FLOAT32")
        y = sg.tensor("y", [3], "FLOAT32")
        if k < depth:
            inner = graphs[k + 1]
            sg.operator("IF", [c, c, x], [y],
                        {"then_subgraph_index": inner, "else_subgraph_index": inner})
        else:
            sg.operator("NEG", [x], [y])
        sg.inputs, sg.outputs = ([c, x], [y])
    return mb.build()


# =============================================================================================
# State
# =============================================================================================
def var_accumulate() -> bytes:
    mb = ModelBuilder(description="CALL_ONCE initialises a resource variable; invokes add to it")
    main, init = mb.subgraph("main"), mb.subgraph("init")
    ih = init.tensor("handle", [], "RESOURCE")
    start = init.tensor("start", [1, 4], "FLOAT32", np.array([[1, 2, 3, 4]], np.float32))
    init.operator("VAR_HANDLE", [], [ih], {"shared_name": "acc"})
    init.operator("ASSIGN_VARIABLE", [ih, start], [])
    x = main.tensor("x", [1, 4], "FLOAT32")
    h = main.tensor("handle", [], "RESOURCE")
    old = main.tensor("old", [1, 4], "FLOAT32")
    new = main.tensor("new", [1, 4], "FLOAT32")
    main.operator("CALL_ONCE", [], [], {"init_subgraph_index": init})
    main.operator("VAR_HANDLE", [], [h], {"shared_name": "acc"})
    main.operator("READ_VARIABLE", [h], [old])
    main.operator("ADD", [old, x], [new])
    main.operator("ASSIGN_VARIABLE", [h, new], [])
    main.inputs, main.outputs = [x], [new]
    return mb.build()


def var_read_before_assign() -> bytes:
    mb = ModelBuilder(description="READ_VARIABLE before any ASSIGN_VARIABLE")
    main = mb.subgraph("main")
    x = main.tensor("x", [1, 4], "FLOAT32")
    h = main.tensor("handle", [], "RESOURCE")
    old = main.tensor("old", [1, 4], "FLOAT32")
    new = main.tensor("new", [1, 4], "FLOAT32")
    main.operator("VAR_HANDLE", [], [h], {"shared_name": "never_assigned"})
    main.operator("READ_VARIABLE", [h], [old])
    main.operator("ADD", [old, x], [new])
    main.operator("ASSIGN_VARIABLE", [h, new], [])
    main.inputs, main.outputs = [x], [new]
    return mb.build()


def var_in_while() -> bytes:
    mb = ModelBuilder(description="a resource handle as a WHILE loop variable")
    main, cond, body = mb.subgraph("main"), mb.subgraph("cond"), mb.subgraph("body")
    x = main.tensor("x", [2], "FLOAT32")
    h = main.tensor("handle", [], "RESOURCE")
    zeros = main.tensor("zeros", [2], "FLOAT32", np.zeros(2, np.float32))
    i0 = main.tensor("i0", [], "INT32", _i32(0))
    outs = [main.tensor("i_out", [], "INT32"), main.tensor("handle_out", [], "RESOURCE"),
            main.tensor("x_out", [2], "FLOAT32")]
    total = main.tensor("total", [2], "FLOAT32")
    main.operator("VAR_HANDLE", [], [h], {"shared_name": "total"})
    main.operator("ASSIGN_VARIABLE", [h, zeros], [])
    main.operator("WHILE", [i0, h, x], outs,
                  {"cond_subgraph_index": cond, "body_subgraph_index": body})
    main.operator("READ_VARIABLE", [outs[1]], [total])
    main.inputs, main.outputs = [x], [total]
    ci, ch, cx = (cond.tensor("i", [], "INT32"), cond.tensor("handle", [], "RESOURCE"),
                  cond.tensor("x", [2], "FLOAT32"))
    three = cond.tensor("three", [], "INT32", _i32(3))
    flag = cond.tensor("flag", [], "BOOL")
    cond.operator("LESS", [ci, three], [flag])
    cond.inputs, cond.outputs = [ci, ch, cx], [flag]
    bi, bh, bx = (body.tensor("i", [], "INT32"), body.tensor("handle", [], "RESOURCE"),
                  body.tensor("x", [2], "FLOAT32"))
    one = body.tensor("one", [], "INT32", _i32(1))
    bi2 = body.tensor("i_next", [], "INT32")
    cur = body.tensor("current", [2], "FLOAT32")
    nxt = body.tensor("next", [2], "FLOAT32")
    body.operator("ADD", [bi, one], [bi2])
    body.operator("READ_VARIABLE", [bh], [cur])
    body.operator("ADD", [cur, bx], [nxt])
    body.operator("ASSIGN_VARIABLE", [bh, nxt], [])
    body.inputs, body.outputs = [bi, bh, bx], [bi2, bh, bx]
    return mb.build()


def int8_variable_tensor() -> bytes:
    mb = ModelBuilder(description="int8 variable tensor starting at its zero point")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [1, 6], "INT8", scale=0.5, zero_point=2)
    v = sg.tensor("v", [1, 6], "INT8", scale=0.25, zero_point=-4, is_variable=True)
    y = sg.tensor("y", [1, 6], "INT8", scale=0.5, zero_point=1)
    sg.operator("ADD", [x, v], [y])
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


# =============================================================================================
# Sparse and float16 weights
# =============================================================================================
def csr_encode(dense: np.ndarray, block: tuple[int, int] | None = None,
               index_dtype: Any = np.int32) -> tuple[np.ndarray, Sparsity]:
    """A 2-D array as TFLite's sparse layout: rows DENSE, columns SPARSE_CSR; with ``block``
    ``(1, k)``, columns in blocks of k (block_map [1]) kept when a block has a non-zero, the
    block itself DENSE -- what the converter's sparsification writes."""
    rows, cols = dense.shape
    if block is None:
        segs, idx, vals = [0], [], []
        for r in range(rows):
            nz = np.flatnonzero(dense[r])
            idx += nz.tolist()
            vals += dense[r, nz].tolist()
            segs.append(len(idx))
        sp = Sparsity(traversal_order=[0, 1], block_map=[], dim_metadata=[
            DimensionMetadata("DENSE", rows),
            DimensionMetadata("SPARSE_CSR", array_segments=np.array(segs, index_dtype),
                              array_indices=np.array(idx, index_dtype))])
        return np.array(vals, dtype=dense.dtype), sp
    br, bc = block
    assert br == 1 and cols % bc == 0
    blocks = dense.reshape(rows, cols // bc, bc)
    segs, idx, chunks = [0], [], []
    for r in range(rows):
        nz = np.flatnonzero(np.any(blocks[r] != 0, axis=1))
        idx += nz.tolist()
        chunks += [blocks[r, b] for b in nz]
        segs.append(len(idx))
    sp = Sparsity(traversal_order=[0, 1, 2], block_map=[1], dim_metadata=[
        DimensionMetadata("DENSE", rows),
        DimensionMetadata("SPARSE_CSR", array_segments=np.array(segs, index_dtype),
                          array_indices=np.array(idx, index_dtype)),
        DimensionMetadata("DENSE", bc)])
    vals = np.concatenate(chunks) if chunks else np.zeros(0, dense.dtype)
    return vals.astype(dense.dtype), sp


def pruned(shape: tuple[int, int], density: float, salt: int,
           block: tuple[int, int] | None = None) -> np.ndarray:
    rng = _rng(salt)
    w = rng.normal(0, 0.5, shape).astype(np.float32)
    if block is None:
        mask = rng.random(shape) < density
    else:
        mask = np.repeat(rng.random((shape[0], shape[1] // block[1])) < density, block[1], axis=1)
    return np.where(mask, w, np.float32(0)).astype(np.float32)


def sparse_fc(kind: str) -> bytes:
    """DENSIFY -> FULLY_CONNECTED; ``kind`` is ``float``, ``int8`` or ``block``."""
    units, inputs = 6, 16
    mb = ModelBuilder(description=f"sparse FULLY_CONNECTED ({kind})")
    sg = mb.subgraph("main")
    if kind == "int8":
        wf = pruned((units, inputs), 0.3, 11)
        scales = np.maximum(np.abs(wf).max(axis=1), 1e-3) / 127
        wq = np.round(wf / scales[:, None]).astype(np.int8)
        vals, sp = csr_encode(wq, index_dtype=np.uint8)
        x = sg.tensor("x", [2, inputs], "INT8", scale=0.05, zero_point=-1)
        ws = sg.tensor("w_sparse", [units, inputs], "INT8", vals, sparsity=sp,
                       scale=scales.tolist(), zero_point=[0] * units, quantized_dimension=0)
        w = sg.tensor("w", [units, inputs], "INT8", scale=scales.tolist(), zero_point=[0] * units,
                      quantized_dimension=0)
        bias = (_rng(12).normal(0, 0.3, units) / (0.05 * scales)).round().astype(np.int32)
        b = sg.tensor("b", [units], "INT32", bias, scale=(0.05 * scales).tolist(),
                      zero_point=[0] * units, quantized_dimension=0)
        y = sg.tensor("y", [2, units], "INT8", scale=0.08, zero_point=3)
    else:
        block = (1, 4) if kind == "block" else None
        wf = pruned((units, inputs), 0.4, 13 if block else 14, block)
        vals, sp = csr_encode(wf, block)
        x = sg.tensor("x", [2, inputs], "FLOAT32")
        ws = sg.tensor("w_sparse", [units, inputs], "FLOAT32", vals, sparsity=sp)
        w = sg.tensor("w", [units, inputs], "FLOAT32")
        b = sg.tensor("b", [units], "FLOAT32", _rng(15).normal(0, 0.3, units).astype(np.float32))
        y = sg.tensor("y", [2, units], "FLOAT32")
    sg.operator("DENSIFY", [ws], [w])
    sg.operator("FULLY_CONNECTED", [x, w, b], [y])
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def float16_fc() -> bytes:
    mb = ModelBuilder(description="float16 weights -> FULLY_CONNECTED")
    sg = mb.subgraph("main")
    rng = _rng(21)
    x = sg.tensor("x", [3, 10], "FLOAT32")
    w16 = sg.tensor("w_f16", [5, 10], "FLOAT16", rng.normal(0, 0.5, (5, 10)).astype(np.float16))
    b16 = sg.tensor("b_f16", [5], "FLOAT16", rng.normal(0, 0.5, 5).astype(np.float16))
    w = sg.tensor("w", [5, 10], "FLOAT32")
    b = sg.tensor("b", [5], "FLOAT32")
    y = sg.tensor("y", [3, 5], "FLOAT32")
    sg.operator("DEQUANTIZE", [w16], [w])
    sg.operator("DEQUANTIZE", [b16], [b])
    sg.operator("FULLY_CONNECTED", [x, w, b], [y], {"fused_activation_function": "RELU"})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


def float16_conv() -> bytes:
    mb = ModelBuilder(description="float16 weights -> CONV_2D")
    sg = mb.subgraph("main")
    rng = _rng(22)
    x = sg.tensor("x", [1, 7, 7, 3], "FLOAT32")
    w16 = sg.tensor("w_f16", [4, 3, 3, 3], "FLOAT16",
                    rng.normal(0, 0.4, (4, 3, 3, 3)).astype(np.float16))
    b16 = sg.tensor("b_f16", [4], "FLOAT16", rng.normal(0, 0.2, 4).astype(np.float16))
    w = sg.tensor("w", [4, 3, 3, 3], "FLOAT32")
    b = sg.tensor("b", [4], "FLOAT32")
    y = sg.tensor("y", [1, 4, 4, 4], "FLOAT32")
    sg.operator("DEQUANTIZE", [w16], [w])
    sg.operator("DEQUANTIZE", [b16], [b])
    sg.operator("CONV_2D", [x, w, b], [y], {"padding": "SAME", "stride_w": 2, "stride_h": 2,
                                             "fused_activation_function": "RELU6"})
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


# =============================================================================================
# Custom operators
# =============================================================================================
def custom_scale() -> bytes:
    mb = ModelBuilder(description="a user custom operator")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [2, 3], "FLOAT32")
    y = sg.tensor("y", [2, 3], "FLOAT32")
    z = sg.tensor("z", [2, 3], "FLOAT32")
    sg.operator("CUSTOM:MyScale", [x], [y], custom_options=flexbuffers.Dumps({"alpha": 2.5}))
    sg.operator("RELU", [y], [z])
    sg.inputs, sg.outputs = [x], [z]
    return mb.build()


def unknown_custom() -> bytes:
    mb = ModelBuilder(description="a custom operator nobody implements")
    sg = mb.subgraph("main")
    x = sg.tensor("x", [4], "FLOAT32")
    y = sg.tensor("y", [4], "FLOAT32")
    sg.operator("CUSTOM:NoSuchOp", [x], [y], custom_options=flexbuffers.Dumps({"k": 1}))
    sg.inputs, sg.outputs = [x], [y]
    return mb.build()


DETECTION_DEFAULTS: dict[str, Any] = {
    "max_detections": 10, "max_classes_per_detection": 1, "detections_per_class": 5,
    "use_regular_nms": False, "nms_score_threshold": 0.3, "nms_iou_threshold": 0.5,
    "num_classes": 6, "y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0}


def detection(boxes: int = 64, dtype: str = "FLOAT32", score_dtype: str | None = None,
              background: bool = True, options: dict[str, Any] | None = None,
              salt: int = 0, output_entries: int | None = None,
              anchors: np.ndarray | None = None, raw_options: bytes | None = None) -> bytes:
    """``TFLite_Detection_PostProcess`` on inputs (box encodings, class predictions) with
    constant anchors (random unless given); ``dtype`` for the boxes/anchors, ``score_dtype``
    for the classes; ``raw_options`` replaces the FlexBuffer options."""
    opts = {**DETECTION_DEFAULTS, **(options or {})}
    score_dtype = score_dtype or dtype
    n, ncls = boxes, int(opts["num_classes"]) + (1 if background else 0)
    rng = _rng(100 + salt)
    if anchors is None:
        anchors = np.stack([rng.uniform(0, 1, n), rng.uniform(0, 1, n),
                            rng.uniform(0.05, 0.4, n), rng.uniform(0.05, 0.4, n)],
                           axis=1).astype(np.float32)
    mb = ModelBuilder(description="SSD post-processing")
    sg = mb.subgraph("main")
    bq: dict[str, Any] = {"scale": 0.05, "zero_point": 128} if dtype == "UINT8" else {}
    sq: dict[str, Any] = {"scale": 1 / 256, "zero_point": 0} if score_dtype == "UINT8" else {}
    b = sg.tensor("raw_boxes", [1, n, 4], dtype, **bq)
    s = sg.tensor("raw_scores", [1, n, ncls], score_dtype, **sq)
    if dtype == "UINT8":
        a = sg.tensor("anchors", [n, 4], "UINT8",
                      np.clip(np.round(anchors / 0.004), 0, 255).astype(np.uint8),
                      scale=0.004, zero_point=0)
    else:
        a = sg.tensor("anchors", list(anchors.shape), "FLOAT32", anchors)
    m = output_entries if output_entries is not None else (
        int(opts["max_detections"]) * int(opts["max_classes_per_detection"]))
    outs = [sg.tensor("detection_boxes", [1, m, 4], "FLOAT32"),
            sg.tensor("detection_classes", [1, m], "FLOAT32"),
            sg.tensor("detection_scores", [1, m], "FLOAT32"),
            sg.tensor("num_detections", [1], "FLOAT32")]
    sg.operator("CUSTOM:TFLite_Detection_PostProcess", [b, s, a], outs,
                custom_options=raw_options if raw_options is not None
                else flexbuffers.Dumps(opts))
    sg.inputs, sg.outputs = [b, s], outs
    return mb.build()


# =============================================================================================
FIXTURES: dict[str, Callable[[], bytes]] = {
    "while_count_int8": while_count_int8,
    "lstm_while_static": lambda: lstm_while(False),
    "lstm_while_sequence": lambda: lstm_while(True),
    "if_float": if_float,
    "if_dynamic": if_dynamic,
    "call_float": lambda: call_float(False),
    "call_inlined": lambda: call_float(True),
    "while_forever": while_forever,
    "nested_if": nested_if,
    "var_accumulate": var_accumulate,
    "var_read_before_assign": var_read_before_assign,
    "var_in_while": var_in_while,
    "int8_variable_tensor": int8_variable_tensor,
    "sparse_fc_float": lambda: sparse_fc("float"),
    "sparse_fc_int8": lambda: sparse_fc("int8"),
    "sparse_fc_block": lambda: sparse_fc("block"),
    "float16_fc": float16_fc,
    "float16_conv": float16_conv,
    "custom_scale": custom_scale,
    "unknown_custom": unknown_custom,
}


def fixture(name: str) -> bytes:
    """The committed bytes of fixture ``name``."""
    return (HERE / f"{name}.tflite").read_bytes()


def main() -> None:
    for name, make in FIXTURES.items():
        (HERE / f"{name}.tflite").write_bytes(make())
        print(f"wrote {name}.tflite")  # dev script: printing is its output


if __name__ == "__main__":
    main()
