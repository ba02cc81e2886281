"""Dev-only: convert small TensorFlow/Keras models into ``tests/test_issue4_models.py``'s fixtures.

    /tmp/tfvenv/bin/python tests/models/tf/make_fixtures.py [OUT_DIR]    # TensorFlow 2.21

TensorFlow is not a dependency of tflite_ref or of its tests: this script is run by hand, in a
throwaway environment, and its outputs are committed beside it.  Weights come from fixed seeds,
so a rerun with the same TensorFlow gives the same models.  After converting, it runs each model
once in TensorFlow and in ``tf.lite.Interpreter`` and prints the largest difference, a sanity
check that the converter kept the model's meaning.

Fixtures (``<name>.tflite``) and the recipe that produces each:

keras_lstm_while
    ``keras.layers.LSTM(8, return_sequences=True)`` on a [2, 6, 4] input, then ``Dense(3)``.
    TensorFlow 2.21 ships Keras 3, whose LSTM no longer marks its step function with Keras 2's
    ``api_implements="lstm_<id>"`` attribute, so the converter does not fuse it: the layer
    becomes a WHILE loop (``t < T and t < max_iterations``) whose body GATHERs step ``t``, runs
    two FULLY_CONNECTED, SPLITs the gates and writes ``h`` into the output sequence
    (CONCATENATION/SLICE, the lowered TensorList).
dynamic_range_keras_lstm_while
    The same loop with 32 units over 32 features, converted with
    ``optimizations=[tf.lite.Optimize.DEFAULT]`` and no representative dataset: its kernels
    (32x128, 32x128) are large enough to be stored int8, so the loop body holds hybrid
    FULLY_CONNECTEDs.
keras_lstm_fused / dynamic_range_lstm
    A fused UNIDIRECTIONAL_SEQUENCE_LSTM (32 units, [2, 6, 32] input, float32 / dynamic-range
    int8 weights).  The converter fuses a function that carries Keras 2's attributes
    (``api_implements="lstm_…"``, ``time_major``, ``go_backwards``; mlir/lite
    ``prepare_composite_functions_tf.cc``) and takes ``(inputs, h0, c0, kernel,
    recurrent_kernel, bias)`` with five results; here that function is written out (Keras'
    ``standard_lstm``: gates i, f, c, o, ``tf.scan`` over time) and the model is converted from a
    SavedModel (``from_concrete_functions`` inlines the function before the fusion pass sees it).
    The fused op takes ``cell_clip = 10`` and variable state tensors, so the LSTM carries its
    state from one invoke to the next; the dynamic-range one has ``asymmetric_quantize_inputs``.
tf_cond_if
    ``tf.cond(flag, lambda: 2·sigmoid(x @ W), lambda: tanh(2x) - 1)`` on a [2, 4] input and a
    boolean scalar: IF with two branch subgraphs.  (``relu(x @ W)`` would do, but TF 2.21's
    converter drops that relu: it fuses it into the branch's BATCH_MATMUL, which has no fused
    activation -- the sanity check below caught it.)
tf_variable
    A ``tf.Module`` whose ``tf.Variable`` (initial value ``[[0, 1, 2, 3]]``) is updated on every
    call (``acc = 0.5·acc + x``, returns ``2·acc``), converted with
    ``experimental_enable_resource_variables``: CALL_ONCE runs an init subgraph (VAR_HANDLE,
    ASSIGN_VARIABLE), the main graph reads, updates and writes the variable (VAR_HANDLE,
    READ_VARIABLE, ASSIGN_VARIABLE).
dynamic_range_conv
    Conv2D(16, 3x3, ReLU) -> Conv2D(16, 3x3, stride 2, ReLU) -> DepthwiseConv2D(3x3, depth
    multiplier 8) on [1, 8, 8, 3], dynamic-range: the first conv (432 weights) stays float, the
    other two are hybrid with per-channel int8 filters.
dynamic_range_fc
    Dense(64, ReLU) -> Dense(32, tanh) on [3, 40], dynamic-range (hybrid FULLY_CONNECTED, the
    tanh a separate TANH).
float16_weights
    Conv2D(8, 3x3, ReLU) -> Flatten -> Dense(10) with ``supported_types = [tf.float16]``: the
    weights are stored float16 and DEQUANTIZEd to float32 at run time.
sparse_fc / sparse_fc_hybrid
    Dense(48, ReLU) on [2, 64] whose kernel was pruned by hand (tfmot is not needed: zeros are
    zeros) to 20 % random density, converted with ``tf.lite.Optimize.EXPERIMENTAL_SPARSITY``:
    the converter stores the kernel sparse (traversal order [0, 1], DENSE rows, SPARSE_CSR
    columns) and inserts DENSIFY before FULLY_CONNECTED.  ``sparse_fc_hybrid`` adds
    ``Optimize.DEFAULT``: an int8 sparse kernel, DENSIFY, hybrid FULLY_CONNECTED.
sparse_fc_block
    The same layer pruned to whole 1x4 blocks (4 consecutive inputs of one unit, 25 % kept): the
    converter keeps the weights sparse *in* FULLY_CONNECTED (block map [1], traversal [0, 1, 2]),
    no DENSIFY -- LiteRT's FULLY_CONNECTED multiplies 1x4-block sparse float weights itself.
    This is the "sparse FULLY_CONNECTED".
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _seed_weights(model: Any, seed: int, sd: float = 0.3) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.normal(0, sd, w.shape).astype(np.float32) for w in ws])


def _from_keras(model: Any, **options: Any) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    for k, v in options.items():
        setattr(conv, k, v)
    return bytes(conv.convert())


def _from_saved_model(module: Any, fn: Any, **options: Any) -> bytes:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as d:
        tf.saved_model.save(module, d, signatures=fn.get_concrete_function())
        conv = tf.lite.TFLiteConverter.from_saved_model(d)
        for k, v in options.items():
            setattr(conv, k, v)
        return bytes(conv.convert())


# -- (a) Keras LSTM lowered to WHILE --------------------------------------------------------------
def keras_lstm(units: int, features: int, seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((6, features), batch_size=2)
    y = keras.layers.LSTM(units, return_sequences=True)(inp)
    y = keras.layers.Dense(3)(y)
    model = keras.Model(inp, y)
    _seed_weights(model, seed)
    return model


# -- a fused UNIDIRECTIONAL_SEQUENCE_LSTM ---------------------------------------------------------
def fused_lstm_module(units: int = 32, features: int = 32, seed: int = 5) -> tuple[Any, Any]:
    """A module whose ``__call__`` runs a Keras-2-style ``standard_lstm`` function."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    kernel = tf.constant(rng.normal(0, 0.3, (features, 4 * units)).astype(np.float32))
    recurrent = tf.constant(rng.normal(0, 0.3, (units, 4 * units)).astype(np.float32))
    bias = tf.constant(rng.normal(0, 0.1, (4 * units,)).astype(np.float32))
    batch, steps = 2, 6

    @tf.function(experimental_attributes={"api_implements": "lstm_tflite_ref_fixture",
                                          "api_preferred_device": "CPU", "time_major": False,
                                          "go_backwards": False}, autograph=False)
    def standard_lstm(inputs: Any, init_h: Any, init_c: Any, kernel: Any,
                      recurrent_kernel: Any, bias: Any) -> tuple[Any, ...]:
        def step(carry: tuple[Any, Any], x_t: Any) -> tuple[Any, Any]:
            h, c = carry
            z = tf.matmul(x_t, kernel) + tf.matmul(h, recurrent_kernel) + bias
            zi, zf, zc, zo = tf.split(z, 4, axis=1)
            c = tf.sigmoid(zf) * c + tf.sigmoid(zi) * tf.tanh(zc)
            return tf.sigmoid(zo) * tf.tanh(c), c

        hs, cs = tf.scan(step, tf.transpose(inputs, [1, 0, 2]), initializer=(init_h, init_c))
        outputs = tf.transpose(hs, [1, 0, 2])
        return outputs[:, -1], outputs, hs[-1], cs[-1], tf.constant(0.0)

    class FusedLstm(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([batch, steps, features], tf.float32)])
        def __call__(self, x: Any) -> Any:
            zeros = tf.zeros([batch, units])
            return standard_lstm(x, zeros, zeros, kernel, recurrent, bias)[1]

    module = FusedLstm()
    return module, module.__call__


# -- (b) IF ---------------------------------------------------------------------------------------
def cond_module() -> tuple[Any, Any]:
    import tensorflow as tf

    w = tf.constant(np.random.default_rng(1).normal(0, 0.5, (4, 4)).astype(np.float32))

    class Cond(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([2, 4], tf.float32),
                                      tf.TensorSpec([], tf.bool)])
        def __call__(self, x: Any, flag: Any) -> Any:
            # Not relu(x @ W): TF 2.21's converter fuses that relu into the branch's
            # BATCH_MATMUL, which has no fused activation, and the relu is lost.
            return tf.cond(flag, lambda: tf.sigmoid(tf.matmul(x, w)) * 2.0,
                           lambda: tf.tanh(x * 2.0) - 1.0)

    module = Cond()
    return module, module.__call__


# -- (c) a variable across invocations ------------------------------------------------------------
def variable_module() -> tuple[Any, Any]:
    import tensorflow as tf

    class Accumulate(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.acc = tf.Variable(np.arange(4, dtype=np.float32).reshape(1, 4))

        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def __call__(self, x: Any) -> Any:
            self.acc.assign(self.acc * 0.5 + x)
            return self.acc * 2.0

    module = Accumulate()
    return module, module.__call__


# -- (d) dynamic range CONV / FC, (e) float16, (f) sparse -----------------------------------------
def cnn(seed: int = 2) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=8, padding="same")(x)
    model = keras.Model(inp, x)
    _seed_weights(model, seed)
    return model


def mlp(seed: int = 3) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((40,), batch_size=3)
    x = keras.layers.Dense(64, activation="relu")(inp)
    x = keras.layers.Dense(32, activation="tanh")(x)
    model = keras.Model(inp, x)
    _seed_weights(model, seed)
    return model


def small_cnn(seed: int = 4) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(10)(x)
    model = keras.Model(inp, x)
    _seed_weights(model, seed)
    return model


def pruned_dense(block: bool, seed: int = 6) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((64,), batch_size=2)
    model = keras.Model(inp, keras.layers.Dense(48, activation="relu")(inp))
    _seed_weights(model, seed)
    rng = np.random.default_rng(seed)
    w, b = model.layers[1].get_weights()
    if block:  # whole blocks of 4 consecutive inputs of one unit: 1x4 blocks of the TFLite
        # weights [units, inputs], which are the transposed Keras kernel [inputs, units]
        mask = np.repeat(rng.uniform(size=(16, 48)) < 0.25, 4, axis=0)
    else:
        mask = rng.uniform(size=w.shape) < 0.2
    model.layers[1].set_weights([(w * mask).astype(np.float32), b])
    return model


Fixture = tuple[Callable[[], bytes], Callable[..., Any]]  # (convert, the TensorFlow function)


def _keras(model: Any, **options: Any) -> Fixture:
    return (lambda: _from_keras(model, **options)), (lambda **kw: model(*kw.values()))


def _module(made: tuple[Any, Any], **options: Any) -> Fixture:
    module, fn = made
    return (lambda: _from_saved_model(module, fn, **options)), fn


def fixtures() -> dict[str, Fixture]:
    import tensorflow as tf

    default = [tf.lite.Optimize.DEFAULT]
    sparsity = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    return {
        "keras_lstm_while": _keras(keras_lstm(8, 4, seed=0)),
        "dynamic_range_keras_lstm_while": _keras(keras_lstm(32, 32, seed=1),
                                                 optimizations=default),
        "keras_lstm_fused": _module(fused_lstm_module()),
        "dynamic_range_lstm": _module(fused_lstm_module(), optimizations=default),
        "tf_cond_if": _module(cond_module()),
        "tf_variable": _module(variable_module(), experimental_enable_resource_variables=True),
        "dynamic_range_conv": _keras(cnn(), optimizations=default),
        "dynamic_range_fc": _keras(mlp(), optimizations=default),
        "float16_weights": _keras(small_cnn(), optimizations=default,
                                  target_spec=_float16_spec()),
        "sparse_fc": _keras(pruned_dense(block=False), optimizations=sparsity),
        "sparse_fc_block": _keras(pruned_dense(block=True), optimizations=sparsity),
        "sparse_fc_hybrid": _keras(pruned_dense(block=False), optimizations=sparsity + default),
    }


def _float16_spec() -> Any:
    import tensorflow as tf

    spec = tf.lite.TargetSpec()
    spec.supported_types = [tf.float16]
    return spec


def _sanity(name: str, content: bytes, reference: Callable[..., Any]) -> str:
    """Largest |TFLite − TensorFlow| on one random input (the first call: the variable and the
    LSTM states start from their initial values on both sides), for the log."""
    import tensorflow as tf

    # Without XNNPACK, which refuses the sparse hybrid FULLY_CONNECTED.
    runner = tf.lite.Interpreter(
        model_content=content, experimental_op_resolver_type=(
            tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ).get_signature_runner()
    rng = np.random.default_rng(0)
    feeds = {}
    for key, d in runner.get_input_details().items():
        feeds[key] = (np.array(True) if d["dtype"] == np.bool_
                      else rng.uniform(-1, 1, d["shape"]).astype(d["dtype"]))
    ours = next(iter(runner(**feeds).values()))
    theirs = np.asarray(reference(**feeds))
    err = float(np.abs(ours - theirs.reshape(ours.shape)).max())
    return f"{name}: {len(content)} bytes, max |TFLite - TF| = {err:.3g} (max |y| " \
           f"{float(np.abs(theirs).max()):.3g})"


def build(out_dir: Path) -> dict[str, bytes]:
    out_dir.mkdir(parents=True, exist_ok=True)
    built = {}
    for name, (convert, reference) in fixtures().items():
        content = convert()
        (out_dir / f"{name}.tflite").write_bytes(content)
        built[name] = content
        print(_sanity(name, content, reference))
    return built


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
