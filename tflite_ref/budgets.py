"""Resource budgets: how much a model may make tflite_ref read, allocate, loop and wait.

A ``.tflite`` file is untrusted input, and a small file can ask for a lot: a 2^40-element FILL,
a WHILE loop that never ends, a FlatBuffer that aliases one subgraph thousands of times.  Every
such request is checked against a :class:`Budgets` value *before* the work or the allocation
happens, and exceeding it raises :class:`~tflite_ref.errors.ResourceLimitError` naming the
budget, the value asked for and where in the model it was asked for.

Defaults follow ``shared/docs/hostile-models.md``.  Three ways to change them, innermost wins:

- API: ``tflite_ref.load(path, budgets=Budgets(activation_bytes=4 << 30))``, or for everything
  in a block (loading, allocation, invoke)::

      with tflite_ref.budgets.use(invoke_seconds=5, tensor_elements=1 << 24):
          it = tflite_ref.Interpreter(model_path=p); it.allocate_tensors(); it.invoke()

- CLI: ``--budget NAME=VALUE`` (repeatable; see :func:`add_arguments`), e.g.
  ``--budget activation_bytes=4GiB --budget invoke_seconds=30``.
- Environment: ``TFLITE_REF_BUDGETS="invoke_seconds=5,file_bytes=64MiB"`` sets the process
  default (handy for harnesses and CI, which run the CLI as a child process).

The check functions take the budgets to use as an optional last argument; None means the
current ones (:func:`current`).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import dataclasses
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tflite_ref.errors import (
    Locator,
    ModelValidationError,
    ResourceLimitError,
    UsageError,
    parse_locator,
)

GiB = 1 << 30
ENV_VAR = "TFLITE_REF_BUDGETS"


@dataclass(frozen=True, slots=True)
class Budgets:
    """Limits on the work a model may cause.  None disables a limit (trusted models only)."""

    #: Bytes of the ``.tflite`` file.  A FlatBuffer is < 2 GiB by construction; raise this for
    #: models that store their buffers after the FlatBuffer (the converter's > 2 GB layout).
    file_bytes: int | None = 2 * GiB
    #: Logical tables a reader would decode, counting every alias (the C++ Verifier's
    #: ``max_tables``).
    tables: int | None = 1_000_000
    #: Logical tables per distinct table, once past 10,000 logical tables: how much aliasing
    #: (one table referenced from many places) may multiply the reader's work.  Converters
    #: share only empty options tables (at most 1.13 over the model corpus); a 14 KB file that
    #: references one 600-tensor subgraph 1,600 times asks for 1,600.
    table_aliasing: float | None = 8.0
    #: Nesting of FlatBuffer tables (the C++ Verifier's ``max_depth``).
    depth: int | None = 64
    #: Elements of any one tensor, declared or computed (TFLite's int32 element counts).
    tensor_elements: int | None = 2**31 - 1
    #: Bytes of one data-dependent output allocated at invoke (FILL, RANGE, TILE, ...).
    tensor_bytes: int | None = 1 * GiB
    #: Bytes of all activations (non-constant tensors) planned at allocate time.
    activation_bytes: int | None = 1 * GiB
    #: Iterations of one WHILE loop per invoke.
    control_flow_iterations: int | None = 1_000_000
    #: Subgraphs nested through IF/WHILE/CALL_ONCE/CALL (also the recursion limit at run time).
    control_flow_depth: int | None = 32
    #: Wall-clock seconds of one ``invoke()``, checked between operators.
    invoke_seconds: float | None = 60.0

    def replace(self, **changes: Any) -> Budgets:
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise UsageError(f"unknown budget {sorted(unknown)[0]!r}; budgets are "
                             + ", ".join(_FIELDS))
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_spec(cls, spec: str, base: Budgets | None = None) -> Budgets:
        """``"invoke_seconds=5, activation_bytes=512MiB, tables=none"`` -> Budgets."""
        changes: dict[str, Any] = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            name, sep, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in _FIELDS:
                raise UsageError(f"budget {item!r}: expected NAME=VALUE with NAME one of "
                                 + ", ".join(_FIELDS))
            changes[name] = parse_value(name, value.strip())
        return (base if base is not None else cls()).replace(**changes)


_FIELDS = tuple(f.name for f in dataclasses.fields(Budgets))
_FLOAT_FIELDS = {"invoke_seconds", "table_aliasing"}
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
          "s": 1, "ms": 1e-3, "min": 60}
_VALUE = re.compile(r"(?i)^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*(\^\s*\d+)?\s*([a-z]*)\s*$")


def parse_value(name: str, text: str) -> int | float | None:
    """``"1GiB"`` -> 1073741824, ``"2^31"`` -> 2147483648, ``"none"`` -> None (no limit)."""
    if text.lower() in ("none", "off", "unlimited", "inf"):
        return None
    m = _VALUE.match(text)
    unit = m.group(3).lower() if m else ""
    if not m or unit not in _UNITS:
        raise UsageError(f"budget {name}={text!r}: not a number (examples: 1000000, 512MiB, "
                         "2^31, 30s, none)")
    number = float(m.group(1))
    if m.group(2):
        number = number ** int(m.group(2).lstrip("^ "))
    number *= _UNITS[unit]
    if number < 0 or not math.isfinite(number):
        raise UsageError(f"budget {name}={text!r}: must be a non-negative number")
    return float(number) if name in _FLOAT_FIELDS else int(number)


# -- the current budgets ---------------------------------------------------------------------------
def _from_environment() -> Budgets:
    spec = os.environ.get(ENV_VAR, "")
    return Budgets.from_spec(spec) if spec.strip() else Budgets()


_current: contextvars.ContextVar[Budgets | None] = contextvars.ContextVar(
    "tflite_ref_budgets", default=None)
_process_default: Budgets | None = None


def current() -> Budgets:
    """The budgets in force: the innermost :func:`use`, else the process default."""
    active = _current.get()
    if active is not None:
        return active
    global _process_default
    if _process_default is None:
        _process_default = _from_environment()
    return _process_default


def resolve(budgets: Budgets | None) -> Budgets:
    """``budgets`` if given, else :func:`current` ("None means default")."""
    return budgets if budgets is not None else current()


def set_default(budgets: Budgets | None) -> None:
    """Set the process-wide default (None: back to the defaults and ``TFLITE_REF_BUDGETS``)."""
    global _process_default
    _process_default = budgets


@contextlib.contextmanager
def use(budgets: Budgets | None = None, **changes: Any) -> Iterator[Budgets]:
    """Run a block under ``budgets`` (default: the current ones) with ``changes`` applied."""
    b = resolve(budgets).replace(**changes) if changes else resolve(budgets)
    token = _current.set(b)
    try:
        yield b
    finally:
        _current.reset(token)


# -- CLI -------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--budget NAME=VALUE`` (repeatable) to a subcommand's parser."""
    parser.add_argument(
        "--budget", action="append", default=[], metavar="NAME=VALUE",
        help="change a resource limit, e.g. activation_bytes=4GiB, invoke_seconds=30, "
             "tensor_elements=2^31, file_bytes=none; names: " + ", ".join(_FIELDS))


def from_args(args: argparse.Namespace) -> Budgets:
    """The budgets a parsed command line asks for (``--budget`` over the current ones)."""
    return Budgets.from_spec(",".join(getattr(args, "budget", None) or ()), base=current())


# -- checks ------------------------------------------------------------------------------------------
def _fmt(n: float) -> str:
    """``1,073,741,824 (2^30)``: exact, with the power of two when it is one."""
    if isinstance(n, float):
        return f"{n:.3g}"
    if n >= 10**30:  # a product of hostile dims: the exact digits would only get in the way
        return f"about 2^{n.bit_length() - 1}"
    text = f"{n:,}"
    if n >= 1024 and n & (n - 1) == 0:
        text += f" (2^{n.bit_length() - 1})"
    return text


def _locator(where: str | Locator | None) -> tuple[str, Locator | None]:
    if isinstance(where, Locator):
        return str(where), where
    text = where or ""
    return text, parse_locator(text) if text else None


def _exceeded(where: str | Locator | None, what: str, budget_name: str, limit: float,
              ) -> ResourceLimitError:
    text, loc = _locator(where)
    prefix = f"{text}: " if text else ""
    return ResourceLimitError(
        f"{prefix}{what} > the {budget_name} budget of {_fmt(limit)} "
        f"(raise it with --budget {budget_name}=VALUE if the model is trusted)",
        locator=loc, cve_class="M")


def check_file_size(size: int, budgets: Budgets | None = None) -> None:
    limit = resolve(budgets).file_bytes
    if limit is not None and size > limit:
        raise _exceeded(Locator(path="file"),
                        f"the file is {_fmt(size)} bytes", "file_bytes", limit)


def element_count(shape: Sequence[int], where: str | Locator | None = None,
                  budgets: Budgets | None = None) -> int:
    """Elements of ``shape`` as a Python int, checked against ``tensor_elements`` dim by dim
    (NumPy's ``prod`` wraps silently; Python ints never do, but a product of attacker-chosen
    dims can still be astronomically large, so stop as soon as the budget is passed)."""
    limit = resolve(budgets).tensor_elements
    n = 1
    for d in shape:
        if d < 0:
            text, loc = _locator(where)
            raise ModelValidationError(f"{text + ': ' if text else ''}negative dimension in "
                                       f"shape {list(shape)}", locator=loc, cve_class="E")
        n *= int(d)
        if limit is not None and n > limit and 0 not in shape:
            total = math.prod(shape)
            count = f"about 2^{total.bit_length() - 1}" if total >= 10**30 else str(total)
            raise _exceeded(where, f"shape {list(shape)} has {count} elements",
                            "tensor_elements", limit)
    return n


def check_allocation(where: str | Locator | None, shape: Sequence[int], itemsize: int,
                     budgets: Budgets | None = None) -> int:
    """Call before allocating an array whose shape comes from data (FILL dims, RANGE bounds,
    TILE multiples, BROADCAST_TO shape, RESIZE size, dynamic RESHAPE): raises
    :class:`ResourceLimitError` naming the operator, else returns the byte count."""
    b = resolve(budgets)
    n = element_count(shape, where, b)
    nbytes = n * max(int(itemsize), 1)
    if b.tensor_bytes is not None and nbytes > b.tensor_bytes:
        raise _exceeded(where, f"would allocate {_fmt(nbytes)} bytes for shape {list(shape)}",
                        "tensor_bytes", b.tensor_bytes)
    return nbytes


def check_activation_bytes(total: int, where: str | Locator | None = None,
                           budgets: Budgets | None = None) -> None:
    """Call at allocate time with the bytes of every planned non-constant tensor."""
    limit = resolve(budgets).activation_bytes
    if limit is not None and total > limit:
        raise _exceeded(where, f"the activations need {_fmt(total)} bytes", "activation_bytes",
                        limit)


def activation_bytes(shapes: Sequence[Sequence[int]], itemsizes: Sequence[int],
                     budgets: Budgets | None = None, where: str | Locator | None = None) -> int:
    """Sum of ``prod(shape) * itemsize`` over planned tensors, checked as it grows (so a
    hostile plan is refused without computing every product)."""
    b = resolve(budgets)
    total = 0
    for shape, itemsize in zip(shapes, itemsizes):
        total += element_count(shape, where, b) * max(int(itemsize), 0)
        check_activation_bytes(total, where, b)
    return total


def check_iterations(count: int, where: str | Locator | None = None,
                     budgets: Budgets | None = None) -> None:
    """Call once per WHILE iteration with the running count (1, 2, ...)."""
    limit = resolve(budgets).control_flow_iterations
    if limit is not None and count > limit:
        raise _exceeded(where, f"the loop ran {_fmt(count)} iterations",
                        "control_flow_iterations", limit)


def check_depth(depth: int, where: str | Locator | None = None,
                budgets: Budgets | None = None) -> None:
    """Call when entering a subgraph from IF/WHILE/CALL_ONCE/CALL with the new nesting depth."""
    limit = resolve(budgets).control_flow_depth
    if limit is not None and depth > limit:
        raise _exceeded(where, f"control flow nests {depth} subgraphs deep",
                        "control_flow_depth", limit)


class Deadline:
    """Wall-clock budget of one invoke, checked cooperatively between operators::

        deadline = budgets.Deadline()          # at the start of invoke()
        for op in ops:
            deadline.check(op.locator)         # before each operator (and each loop iteration)
            ...

    A NumPy operation is never interrupted; its work is bounded by the allocation budgets.  A
    kernel that loops in Python over elements (the C library's float functions, called one
    element at a time) calls :func:`check_deadline` between chunks, against the deadline the
    interpreter made current (:meth:`running`) and the operator it last checked.
    """

    __slots__ = ("_end", "limit", "start", "where")

    def __init__(self, budgets: Budgets | None = None) -> None:
        self.limit = resolve(budgets).invoke_seconds
        self.start = time.monotonic()
        self._end = None if self.limit is None else self.start + self.limit
        self.where: str | Locator | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[Deadline]:
        """Make this the deadline :func:`check_deadline` checks, for the block."""
        token = _deadline.set(self)
        try:
            yield self
        finally:
            _deadline.reset(token)

    def check(self, where: str | Locator | None = None) -> None:
        if where is not None:
            self.where = where
        else:
            where = self.where
        if self._end is not None and time.monotonic() > self._end:
            elapsed = time.monotonic() - self.start
            assert self.limit is not None
            raise _exceeded(where, f"invoke has run {elapsed:.1f} s", "invoke_seconds",
                            self.limit)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


__all__ = [
    "ENV_VAR",
    "Budgets",
    "Deadline",
    "activation_bytes",
    "add_arguments",
    "check_activation_bytes",
    "check_allocation",
    "check_depth",
    "check_file_size",
    "check_iterations",
    "current",
    "element_count",
    "from_args",
    "parse_value",
    "resolve",
    "set_default",
    "use",
]


_deadline: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "tflite_ref_deadline", default=None)


def check_deadline() -> None:
    """Inside a long kernel loop: the current invoke's :class:`Deadline`, if any, against the
    operator it last checked (a no-op outside ``invoke()``)."""
    deadline = _deadline.get()
    if deadline is not None:
        deadline.check()
