"""Checks a ``sgpy VERB --json`` answer against ``sgpy/cli_schema.json`` (docs/cli.rst, "JSON schema").

The schema is a small subset of JSON Schema draft 2020-12, and this is its
whole validator (no third-party one is a dependency): ``type`` (a name or a
list of names), ``properties``, ``required``, ``patternProperties``,
``additionalProperties`` (false, or a schema), ``items``, ``anyOf`` and
``$ref`` to ``#/$defs/NAME``.  A keyword it does not know is an error in
the schema, so that the file cannot drift into what nothing checks.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List

from sgpy.cli import JSON_SCHEMA_PATH

#: The keywords :func:`problems` understands; any other in the schema is a mistake of the schema.
KEYWORDS = frozenset({"type", "properties", "required", "patternProperties", "additionalProperties", "items",
                      "anyOf", "$ref"})

#: JSON type name -> what Python's json module makes of it (bool is not an integer; an integer is a number).
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def load() -> Dict[str, Any]:
    """The schema file as the package ships it."""
    with open(JSON_SCHEMA_PATH, encoding="utf-8") as f:
        doc: Dict[str, Any] = json.load(f)
    return doc


def problems(value: Any, schema: Dict[str, Any], root: Dict[str, Any], where: str = "$") -> List[str]:
    """What is wrong with ``value`` under ``schema`` (empty when nothing): one line each, with its JSON path."""
    unknown = set(schema) - KEYWORDS
    if unknown:
        raise AssertionError(f"{where}: the schema uses keywords this check does not know: {sorted(unknown)}")
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return problems(value, root["$defs"][name], root, where)
    if "anyOf" in schema:
        found = [problems(value, s, root, where) for s in schema["anyOf"]]
        return [] if any(not f for f in found) else [p for f in found for p in f]
    out: List[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[n](value) for n in names):
            return [f"{where}: {type(value).__name__} {value!r:.60} is not {' or '.join(names)}"]
    if isinstance(value, dict):
        props = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{where}: the key {key!r} is missing")
        for key, item in value.items():
            path = f"{where}.{key}"
            matched = [s for p, s in patterns.items() if re.search(p, key)]
            if key in props:
                out += problems(item, props[key], root, path)
            for s in matched:
                out += problems(item, s, root, path)
            if key not in props and not matched:
                extra = schema.get("additionalProperties", True)
                if extra is False:
                    out.append(f"{where}: the key {key!r} is not in the schema")
                elif isinstance(extra, dict):
                    out += problems(item, extra, root, path)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += problems(item, schema["items"], root, f"{where}[{i}]")
    return out


def check(doc: Any, variant: str) -> None:
    """Fail unless ``doc`` has exactly the keys and types the schema gives for ``variant`` (or the error object
    when ``variant`` is ``"error"``)."""
    root = load()
    schema = root["$defs"]["error"] if variant == "error" else root["variants"][variant]
    found = problems(doc, schema, root)
    assert not found, f"sgpy {variant} --json does not match its schema:\n" + "\n".join(found)
