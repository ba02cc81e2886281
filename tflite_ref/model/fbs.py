"""A small parser for the FlatBuffers schema language, enough for TFLite's ``schema.fbs``.

It turns the schema into the *layout* the verifier needs: for every table, each field's vtable
slot and wire kind (scalar of N bytes, string, vector of what, sub-table, union). The layout ships
as the generated module ``_layout.py``; regenerate it after updating ``schema/schema.fbs`` with::

    python -m tflite_ref.model.fbs schema/schema.fbs > tflite_ref/model/_layout.py

The schema's enums the rest of the package names (operators, tensor types, options unions,
activations, padding) ship the same way, as explicit ``IntEnum`` classes in ``_enums.py`` (so a
type checker sees every member)::

    python -m tflite_ref.model.fbs --enums schema/schema.fbs > tflite_ref/model/_enums.py

``tests/test_verify.py`` checks that both shipped modules equal a fresh parse of
``schema/schema.fbs``, and ``tests/test_schema.py`` that the ``tflite`` bindings agree.
"""

from __future__ import annotations

import pprint
import re
import sys
from typing import Any

SCALAR_SIZES = {
    "bool": 1, "byte": 1, "ubyte": 1, "int8": 1, "uint8": 1,
    "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
    "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4,
    "long": 8, "ulong": 8, "int64": 8, "uint64": 8, "double": 8, "float64": 8,
}

_TOKEN = re.compile(r"(?s)(table|struct|enum|union)\s+(\w+)\s*(?::\s*(\w+))?\s*(\([^)]*\))?\s*\{(.*?)\}")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def parse(text: str) -> dict[str, Any]:
    """``{"root": name, "tables": {name: [(slot, field, kind)]}, "unions": {name: {code: table}}}``.

    Kinds: ``("scalar", size)``, ``("string",)``, ``("table", name)``, ``("struct", size)``,
    ``("vector", elem_kind)``, ``("union_type",)`` and ``("union", union_name)``.
    """
    text = _strip_comments(text)
    enums: dict[str, int] = {}
    unions: dict[str, dict[int, str]] = {}
    raw_tables: dict[str, str] = {}
    structs: dict[str, str] = {}
    for kind, name, base, _attrs, body in _TOKEN.findall(text):
        if kind == "enum":
            enums[name] = SCALAR_SIZES[base]
        elif kind == "union":
            members: dict[int, str] = {}
            code = 0
            for entry in (e.strip() for e in body.split(",")):
                if not entry:
                    continue
                entry = re.sub(r"\([^)]*\)", "", entry).strip()
                m = re.fullmatch(r"(?:\w+\s*:\s*)?(\w+)(?:\s*=\s*(\d+))?", entry)
                if not m:
                    raise ValueError(f"union {name}: cannot parse member {entry!r}")
                code = int(m.group(2)) if m.group(2) else code + 1
                members[code] = m.group(1)
            unions[name] = members
        elif kind == "table":
            raw_tables[name] = body
        else:
            structs[name] = body
    struct_sizes = {n: _struct_size(b, enums) for n, b in structs.items()}
    tables: dict[str, list[tuple[int, str, tuple[Any, ...]]]] = {}
    for name, body in raw_tables.items():
        fields = []
        slot = 0
        for decl in (d.strip() for d in body.split(";")):
            if not decl:
                continue
            m = re.fullmatch(r"(?s)(\w+)\s*:\s*(\[?\s*\w+\s*\]?)\s*(?:=\s*[^()]+?)?\s*(\(.*\))?", decl)
            if not m:
                raise ValueError(f"table {name}: cannot parse field {decl!r}")
            fname, ftype, attrs = m.group(1), re.sub(r"\s", "", m.group(2)), m.group(3) or ""
            id_attr = re.search(r"\bid\s*:\s*(\d+)", attrs)
            if id_attr:
                slot = int(id_attr.group(1))
            kind = _kind(ftype, enums, unions, raw_tables, struct_sizes)
            if kind[0] == "union":
                fields.append((slot, fname + "_type", ("union_type",)))
                slot += 1
            fields.append((slot, fname, kind))
            slot += 1
        tables[name] = fields
    root = re.search(r"root_type\s+(\w+)\s*;", text)
    return {"root": root.group(1) if root else None, "tables": tables, "unions": unions}


def _struct_size(body: str, enums: dict[str, int]) -> int:
    size = 0
    for decl in (d.strip() for d in body.split(";")):
        if decl:
            t = decl.split(":")[1].split("(")[0].split("=")[0].strip()
            size += SCALAR_SIZES.get(t) or enums[t]
    return size


def _kind(ftype: str, enums: dict[str, int], unions: dict[str, Any], tables: dict[str, str],
          structs: dict[str, int]) -> tuple[Any, ...]:
    if ftype.startswith("["):
        inner = _kind(ftype[1:-1], enums, unions, tables, structs)
        return ("vector", inner)
    if ftype in SCALAR_SIZES:
        return ("scalar", SCALAR_SIZES[ftype])
    if ftype in enums:
        return ("scalar", enums[ftype])
    if ftype == "string":
        return ("string",)
    if ftype in unions:
        return ("union", ftype)
    if ftype in tables:
        return ("table", ftype)
    if ftype in structs:
        return ("struct", structs[ftype])
    raise ValueError(f"unknown type {ftype!r}")


# The enums ``tflite_ref.model.schema`` exports; unions get their implicit ``NONE = 0``.
EXPORTED_ENUMS = ("BuiltinOperator", "TensorType", "BuiltinOptions", "BuiltinOptions2",
                  "ActivationFunctionType", "Padding")


def parse_enums(text: str) -> dict[str, dict[str, int]]:
    """Every enum and union of the schema: ``{name: {member: code}}`` in declaration order
    (an enum member without ``= n`` is the previous code + 1; a union's members count from
    ``NONE = 0``)."""
    out: dict[str, dict[str, int]] = {}
    for kind, name, _base, _attrs, body in _TOKEN.findall(_strip_comments(text)):
        if kind not in ("enum", "union"):
            continue
        members: dict[str, int] = {} if kind == "enum" else {"NONE": 0}
        code = -1 if kind == "enum" else 0
        for entry in (e.strip() for e in body.split(",")):
            entry = re.sub(r"\([^)]*\)", "", entry).strip()  # attributes such as (deprecated)
            if not entry:
                continue
            m = re.fullmatch(r"(?:\w+\s*:\s*)?(\w+)(?:\s*=\s*(-?\d+))?", entry)
            if not m:
                raise ValueError(f"{kind} {name}: cannot parse member {entry!r}")
            code = int(m.group(2)) if m.group(2) else code + 1
            members[m.group(1)] = code
        out[name] = members
    return out


def render_enums(enums: dict[str, dict[str, int]], source: str) -> str:
    lines = [f'"""Generated from {source} by ``python -m tflite_ref.model.fbs --enums``; do not '
             'edit."""', "", "from __future__ import annotations", "", "import enum", ""]
    for name in EXPORTED_ENUMS:
        lines += ["", f"class {name}(enum.IntEnum):"]
        lines += [f"    {member} = {code}" for member, code in enums[name].items()]
        lines.append("")
    return "\n".join(lines)


def render_module(layout: dict[str, Any], source: str) -> str:
    return (
        f'"""Generated from {source} by ``python -m tflite_ref.model.fbs``; do not edit."""\n\n'
        f"LAYOUT = {pprint.pformat(layout, width=100, sort_dicts=True)}\n"
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    want_enums = args[:1] == ["--enums"]
    path = args[-1]
    with open(path, encoding="utf-8") as f:
        schema_text = f.read()
    sys.stdout.write(render_enums(parse_enums(schema_text), path) if want_enums
                     else render_module(parse(schema_text), path))
