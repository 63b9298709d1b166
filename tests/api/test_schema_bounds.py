"""Every string, number, list and object a client sends is bounded, as the schema says.

The rule is checked on the served OpenAPI description, so a route or field added later without
bounds fails here: numbers need a minimum and a maximum (or an enum), strings a maximum length
(or an enum, a format, or a pattern whose repetitions are all bounded), lists a maximum number of
items, free-form objects a maximum number of properties. Bounds that only live in code would
not reach clients, generated SDKs or the fuzzer.
"""

from __future__ import annotations

import re
from typing import Any

from tests.api.conftest import Served

UNBOUNDED_REPEAT = re.compile(r"(?<!\\)[*+]|\{\d+,\}")


def _bounded_pattern(pattern: str) -> bool:
    return (
        pattern.startswith("^") and pattern.endswith("$") and not UNBOUNDED_REPEAT.search(pattern)
    )


def _problems(spec: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]) -> set[str]:
    components = spec["components"]["schemas"]
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return set()
        return _problems(spec, components[name], name, seen | {name})
    found: set[str] = set()
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            found |= _problems(spec, part, where, seen)
    kind = schema.get("type")
    if "enum" in schema or "const" in schema:
        return found
    if kind in ("integer", "number"):
        low = "minimum" in schema or "exclusiveMinimum" in schema
        high = "maximum" in schema or "exclusiveMaximum" in schema
        if not (low and high):
            found.add(f"{where}: number without both bounds")
    elif kind == "string":
        pattern = schema.get("pattern")
        if not (
            "maxLength" in schema
            or schema.get("format") in ("date-time", "date", "binary")
            or (pattern and _bounded_pattern(pattern))
        ):
            found.add(f"{where}: string without a maximum length")
    elif kind == "array":
        if "maxItems" not in schema:
            found.add(f"{where}: list without a maximum number of items")
        if "items" in schema:
            found |= _problems(spec, schema["items"], f"{where}[]", seen)
    elif kind == "object" or "properties" in schema:
        extra = schema.get("additionalProperties")
        if extra not in (None, False) and "maxProperties" not in schema:
            found.add(f"{where}: object without a maximum number of properties")
        if extra is None and not schema.get("properties") and "maxProperties" not in schema:
            found.add(f"{where}: free-form object without a maximum number of properties")
        if isinstance(extra, dict):
            found |= _problems(spec, extra, f"{where}.*", seen)
        for name, prop in schema.get("properties", {}).items():
            found |= _problems(spec, prop, f"{where}.{name}", seen)
    return found


def test_every_client_input_in_the_schema_is_bounded(served: Served) -> None:
    spec = served.client.get("/openapi.json").json()
    problems: set[str] = set()
    for route, operations in spec["paths"].items():
        for method, op in operations.items():
            here = f"{method.upper()} {route}"
            for p in op.get("parameters", []):
                problems |= _problems(spec, p["schema"], f"{here} ?{p['name']}", set())
            for content in op.get("requestBody", {}).get("content", {}).values():
                if "schema" in content:
                    problems |= _problems(spec, content["schema"], f"{here} body", set())
    assert not problems, "\n".join(sorted(problems))


def test_the_rule_itself_catches_unbounded_fields() -> None:
    spec: dict[str, Any] = {"components": {"schemas": {}}}
    cases = {
        "number": {"type": "integer", "minimum": 0},
        "string": {"type": "string", "pattern": "^[a-z]+$"},
        "list": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 1}},
        "object": {"type": "object", "additionalProperties": True},
    }
    for name, schema in cases.items():
        assert _problems(spec, schema, name, set()), name
    bounded = {"type": "string", "pattern": "^[a-z]{1,8}$"}
    assert not _problems(spec, bounded, "ok", set())
