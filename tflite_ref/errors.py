"""One error hierarchy for tflite_ref.

Every error that is the model's or the user's fault derives from :class:`TFLiteRefError`; the CLI
prints such an error as one line and exits 2.  Anything else escaping the library is a bug in
tflite_ref (:class:`InternalError` or a plain exception) and keeps its traceback.

Messages carry a *locator*: the table and index of the offending thing, e.g.
``subgraph 0, operator 12 (CONV_2D): input 3 is tensor 977, but the subgraph has 212 tensors``.
The same locator is available as data, :attr:`TFLiteRefError.locator` (a :class:`Locator`), so
tools (the fuzzing harness, ``--json`` output, editors) need not parse messages; and
:attr:`TFLiteRefError.cve_class` holds the advisory class (``"A"`` .. ``"M"`` of
``shared/docs/hostile-models.md``) where one applies.

Raisers that know the locator pass it (``locator=Locator(subgraph=0, tensor=5)``); for the
others -- kernels raising ``f"{op.locator}: ..."`` -- the locator is recovered from the
message's leading text, which every raiser in tflite_ref writes in one of the shapes of
:func:`op_locator`, :func:`tensor_locator` or a schema path (``model.subgraphs[0].tensors[3]
@0x1a2c``).  A message with no such prefix has ``locator`` None: that is what the harness counts
as an error *without* a locator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any

# Advisory classes of shared/docs/hostile-models.md (the letters are stable; see that table).
CVE_CLASSES = {
    "A": "structural FlatBuffer parsing",
    "B": "index out of range",
    "C": "graph topology",
    "D": "axis or negative index",
    "E": "shape consistency",
    "F": "division by zero",
    "G": "integer overflow in size math",
    "H": "data-dependent index",
    "I": "null or optional tensor",
    "J": "quantization parameters",
    "K": "sparsity metadata",
    "L": "arena or planner corruption",
    "M": "denial of service (loops, huge allocations)",
}


@dataclass(frozen=True, slots=True)
class Locator:
    """Where in the model a problem is: every field optional, as precise as the raiser knows.

    ``path`` is the schema path of a FlatBuffer location (``model.subgraphs[0].tensors[3].name``)
    and ``byte_offset`` its position in the file; ``table``/``index`` name an entry of a
    model-level table (``operator_codes``, ``buffers``, ``metadata``, ``signature_defs``);
    ``slot`` is the operand or field inside the entity (``input 1``, ``option stride_w``,
    ``scale[0]``).
    """

    subgraph: int | None = None
    operator: int | None = None
    opcode: str | None = None
    tensor: int | None = None
    tensor_name: str | None = None
    buffer: int | None = None
    table: str | None = None
    index: int | None = None
    slot: str | None = None
    path: str | None = None
    byte_offset: int | None = None

    def __str__(self) -> str:
        """The compact form of the shared doc, e.g.
        ``subgraphs[0].operators[149] (ADD) .inputs[1] -> tensor 57 'conv2d/bias' buffer 12``."""
        parts: list[str] = []
        if self.path is not None:
            parts.append(self.path)
        elif self.subgraph is not None:
            head = f"subgraphs[{self.subgraph}]"
            if self.operator is not None:
                head += f".operators[{self.operator}]"
                if self.opcode:
                    head += f" ({self.opcode})"
            parts.append(head)
        elif self.table is not None:
            parts.append(self.table if self.index is None else f"{self.table}[{self.index}]")
        if self.slot:
            parts.append(f".{self.slot}" if parts else self.slot)
        if self.tensor is not None:
            label = f" {self.tensor_name!r}" if self.tensor_name else ""
            parts.append(("-> " if parts else "") + f"tensor {self.tensor}{label}")
        if self.buffer is not None:
            parts.append(f"buffer {self.buffer}")
        if self.byte_offset is not None:
            parts.append(f"@ byte {self.byte_offset:#x}")
        return " ".join(parts) if parts else "model"

    def as_dict(self) -> dict[str, Any]:
        """The fields that are set (for ``--json`` error reports)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def with_(self, **changes: Any) -> Locator:
        return replace(self, **changes)


class TFLiteRefError(Exception):
    """Root of every error tflite_ref raises on purpose.

    ``locator`` (keyword) says where in the model; when omitted it is parsed from the message's
    leading locator text (see the module docstring).  ``cve_class`` (keyword) is the advisory
    class letter; subclasses may set a default.
    """

    default_cve_class: str | None = None

    def __init__(self, *args: Any, locator: Locator | None = None,
                 cve_class: str | None = None) -> None:
        super().__init__(*args)
        message = str(args[0]) if args else ""
        self.locator: Locator | None = locator if locator is not None else parse_locator(message)
        self.cve_class: str | None = cve_class if cve_class is not None else self.default_cve_class

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the structured fields across pickling (multiprocessing, the fuzzing harness).
        return (_rebuild, (type(self), self.args, self.locator, self.cve_class))

    def as_dict(self) -> dict[str, Any]:
        """``{"type", "message", "locator", "cve_class"}`` for machine-readable error output."""
        return {"type": type(self).__name__, "message": str(self),
                "locator": self.locator.as_dict() if self.locator is not None else None,
                "cve_class": self.cve_class}


def _rebuild(cls: type[TFLiteRefError], args: tuple[Any, ...], locator: Locator | None,
             cve_class: str | None) -> TFLiteRefError:
    return cls(*args, locator=locator, cve_class=cve_class)


class ModelError(TFLiteRefError, ValueError):
    """The model file is malformed or semantically invalid."""


class ModelFormatError(ModelError):
    """The bytes are not a well-formed TFLite FlatBuffer (truncated, bad offsets, wrong magic)."""

    default_cve_class = "A"


class ModelValidationError(ModelError):
    """The FlatBuffer parses, but the model it describes is inconsistent (indices, shapes, quantization)."""


class UnsupportedOpError(TFLiteRefError):
    """The model is valid, but tflite_ref has no kernel for an operator or dtype combination."""


UnsupportedError = UnsupportedOpError


class ResourceLimitError(TFLiteRefError):
    """A configured budget (file size, elements, bytes, iterations, time) would be exceeded."""

    default_cve_class = "M"


class KernelRuntimeError(TFLiteRefError):
    """A data-dependent fault while invoking (index out of range, integer division by zero)."""


class UsageError(TFLiteRefError, ValueError):
    """The caller asked for something invalid (wrong dtype or shape in set_tensor, bad index)."""


class InternalError(Exception):
    """A bug in tflite_ref itself. Not a TFLiteRefError: the CLI shows its traceback."""


def op_locator(subgraph: int, operator: int, opcode: str) -> str:
    """``subgraph 0, operator 12 (CONV_2D)``: how every operator-level message starts."""
    return f"subgraph {subgraph}, operator {operator} ({opcode})"


def tensor_locator(subgraph: int, tensor: int, name: str | None = None) -> str:
    """``subgraph 0, tensor 5 'conv/bias'``."""
    label = f" {name!r}" if name else ""
    return f"subgraph {subgraph}, tensor {tensor}{label}"


# -- recovering a locator from a message ------------------------------------------------------------
# A file name may precede the locator ("model.tflite: subgraph 0, ..."), so the patterns search
# the first 400 characters instead of anchoring at the start.
_NAME = r"(?:'(?P<name>(?:[^'\\]|\\.)*)'|\"(?P<dname>(?:[^\"\\]|\\.)*)\")"
_OP = re.compile(r"subgraph (?P<sg>\d+), operator (?P<op>\d+)(?: \((?P<opcode>[^)]*)\))?")
_TENSOR = re.compile(r"subgraph (?P<sg>\d+), tensor (?P<t>-?\d+)(?: " + _NAME + ")?")
_SUBGRAPH = re.compile(r"subgraph (?P<sg>\d+)\b")
_PATH = re.compile(r"(?P<path>model(?:\.\w+(?:\[\d+\])*(?:<\w+>)?)*) @0x(?P<pos>[0-9a-f]+)")
_TABLE = re.compile(r"(?P<table>operator_codes|buffers|metadata|signature_defs)\[(?P<i>\d+)\]")
_PATH_INDEX = re.compile(r"(subgraphs|tensors|operators|buffers)\[(\d+)\]")
_OPERATOR_N = re.compile(r"^(?P<opcode>[A-Z][A-Z0-9_:]*) #(?P<op>\d+)\b")


def parse_locator(message: str) -> Locator | None:
    """The locator a message starts with (after an optional file prefix), or None."""
    head = message[:400]
    m = _OP.search(head)
    if m:
        t = re.search(r"\btensor (?P<t>\d+)(?: " + _NAME + ")?", head[m.end():])
        return Locator(subgraph=int(m["sg"]), operator=int(m["op"]), opcode=m["opcode"],
                       tensor=int(t["t"]) if t else None,
                       tensor_name=(t["name"] or t["dname"]) if t else None)
    m = _TENSOR.search(head)
    if m:
        return Locator(subgraph=int(m["sg"]), tensor=int(m["t"]),
                       tensor_name=m["name"] or m["dname"])
    m = _PATH.search(head)
    if m:
        return locator_from_path(m["path"], int(m["pos"], 16))
    m = _TABLE.search(head)
    if m:
        return Locator(table=m["table"], index=int(m["i"]))
    m = _OPERATOR_N.search(head)
    if m:
        return Locator(operator=int(m["op"]), opcode=m["opcode"])
    m = _SUBGRAPH.search(head)
    if m:
        return Locator(subgraph=int(m["sg"]))
    if head.startswith("model"):  # a model-wide property: version, subgraph count, file size
        return Locator(path="model")
    return None


def locator_from_path(path: str, byte_offset: int | None = None) -> Locator:
    """A :class:`Locator` for a schema path, with the subgraph/tensor/operator/buffer it names."""
    found = {k: int(v) for k, v in _PATH_INDEX.findall(path)}
    return Locator(subgraph=found.get("subgraphs"), tensor=found.get("tensors"),
                   operator=found.get("operators"), buffer=found.get("buffers"), path=path,
                   byte_offset=byte_offset)


__all__ = [
    "CVE_CLASSES", "InternalError", "KernelRuntimeError", "Locator", "ModelError",
    "ModelFormatError", "ModelValidationError", "ResourceLimitError", "TFLiteRefError",
    "UnsupportedError", "UnsupportedOpError", "UsageError", "locator_from_path", "op_locator",
    "parse_locator", "tensor_locator",
]
