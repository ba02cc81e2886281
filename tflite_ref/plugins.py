"""Custom-operator plug-ins: run models whose custom operators you implement in Python.

A custom operator (``BuiltinOperator.CUSTOM`` with a ``custom_code``) needs a kernel registered
under its code before ``allocate_tensors()``; without one the interpreter raises
:class:`~tflite_ref.errors.UnsupportedOpError` naming the code.  The contract is the one every
built-in kernel follows (:mod:`tflite_ref.kernels.registry`)::

    import numpy as np
    import tflite_ref

    def prepare(ctx):                        # once, at allocate_tensors()
        alpha = ctx.custom_options["alpha"]  # the FlexBuffer custom options, decoded
        ctx.set_output_shape(0, ctx.input_shape(0))
        return np.float32(alpha)             # any object: eval receives it as `data`

    def eval(alpha, x):                      # every invoke(): the inputs as NumPy arrays
        return (x * alpha).astype(np.float32)  # one array per output (a tuple for several)

    tflite_ref.register_kernel("MyScale", prepare, eval)

``prepare(ctx)`` gets an :class:`~tflite_ref.kernels.registry.OpContext`: ``ctx.custom_options``
(the decoded FlexBuffer -- a dict for the usual map -- or None), ``ctx.op.custom_options`` (the
raw bytes), ``ctx.input(i)`` / ``ctx.output(j)`` (tensors: type, quantization, constant data),
``ctx.input_shape(i)``, ``ctx.const(i)``, ``ctx.emulate``; it declares output shapes with
``ctx.set_output_shape(j, shape)`` (default: the shape the model declares) or
``ctx.set_dynamic_output(j)`` when eval decides them, and rejects a model with ``ctx.fail(msg)``.
``prepare=None`` keeps the declared shapes and passes ``ctx.custom_options`` to eval.
``eval(data, *inputs)`` returns arrays of the output tensors' dtypes (``None`` stands for an
absent optional input).  An exception raised by either function reaches the caller as
:class:`~tflite_ref.errors.KernelRuntimeError` naming the operator, with the original chained.

Registrations are global to the process and apply to interpreters allocated afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tflite_ref.errors import UsageError
from tflite_ref.kernels import registry
from tflite_ref.kernels.registry import EMULATIONS, Kernel, OpContext

PrepareFn = Callable[[OpContext], Any]
EvalFn = Callable[..., Any]

_shipped: dict[str, Kernel] = {}  # kernels of ours that a plug-in replaced, to restore


def _default_prepare(ctx: OpContext) -> Any:
    return ctx.custom_options


def register_kernel(name: str, prepare: PrepareFn | None, eval: EvalFn, *,
                    emulate: str | Sequence[str] = EMULATIONS, replace: bool = False) -> None:
    """Run custom operator ``name`` with ``prepare``/``eval`` (see the module docstring).

    ``emulate`` lists the runtimes whose behaviour the kernel stands for (default both
    ``"tflite"`` and ``"tflm"``); an interpreter with another emulation reports the operator as
    unsupported.  Registering a name twice, or a name tflite_ref ships a kernel for
    (``TFLite_Detection_PostProcess``), needs ``replace=True``.
    """
    if not isinstance(name, str) or not name:
        raise UsageError(f"register_kernel: the custom operator's name must be a non-empty "
                         f"string, not {name!r}")
    if prepare is not None and not callable(prepare):
        raise UsageError(f"register_kernel({name!r}): prepare must be callable or None")
    if not callable(eval):
        raise UsageError(f"register_kernel({name!r}): eval must be callable")
    emulations = (emulate,) if isinstance(emulate, str) else tuple(emulate)
    unknown = [e for e in emulations if e not in EMULATIONS]
    if not emulations or unknown:
        raise UsageError(f"register_kernel({name!r}): emulate must name some of "
                         f"{', '.join(EMULATIONS)}, not {emulate!r}")
    existing = registry.registered_custom().get(name)
    if existing is not None and not replace:
        who = "a plug-in" if existing.plugin else "tflite_ref itself"
        raise UsageError(f"custom operator {name!r} already has a kernel (registered by {who}); "
                         "pass replace=True to replace it")
    if existing is not None and not existing.plugin:
        _shipped[name] = existing
    registry.register_custom(name, prepare if prepare is not None else _default_prepare, eval,
                             emulations=emulations, plugin=True, replace=True)


def unregister_kernel(name: str) -> None:
    """Remove the plug-in kernel of ``name`` (restoring tflite_ref's own, if it replaced one)."""
    existing = registry.registered_custom().get(name)
    if existing is None or not existing.plugin:
        raise UsageError(f"custom operator {name!r} has no plug-in kernel to remove")
    registry.unregister_custom(name)
    shipped = _shipped.pop(name, None)
    if shipped is not None:
        registry.register_custom(name, shipped.prepare, shipped.eval,
                                 emulations=shipped.emulations, plugin=False)


def custom_kernels() -> dict[str, str]:
    """Custom operators that have a kernel: name -> ``"plug-in"`` or ``"built-in"``."""
    return {name: "plug-in" if k.plugin else "built-in"
            for name, k in sorted(registry.registered_custom().items())}


__all__ = ["EvalFn", "PrepareFn", "custom_kernels", "register_kernel", "unregister_kernel"]
