"""Bounds on what clients send: every string, identifier and free-form object has one.

The numbers live here, once; the wire schemas (``api/schemas.py``, ``core/feedback.py``) and the
families refer to them, and ``docs/limits.md`` lists them. They are not settings: they are part
of the API's contract (the OpenAPI schema shows them) and protect the stores and the metrics,
whatever a deployment's body-size limit (``api.max_body_bytes``) is.

Names and keys (idempotency keys, feature and attribute names) refuse control characters
(``U+0000``–``U+001F`` and ``U+007F``, as the shapes of ``core/identifiers.py`` do for model
names and subject ids wherever they are sent): a NUL byte truncates C strings and cannot be
stored by PostgreSQL, and control characters forge log lines. Free text (comments, string
values) may hold line breaks and tabs but never a NUL.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

MAX_NAME_CHARS = 256
"""Feature names, attribute keys."""
MAX_STRING_CHARS = 10_000
"""A string value: a feature value, a feedback comment, a string label."""
MAX_FEATURES = 10_000
"""Keys of one prediction input."""
MAX_DEPTH = 16
"""Nesting of lists and objects inside one value (a feature value, a label, attributes)."""
MAX_VALUE_BYTES = 64 * 1024
"""A feedback ``value`` (label, correction) as compact JSON."""
MAX_ATTRIBUTES_BYTES = 16 * 1024
"""Feedback ``attributes`` as compact JSON."""
MAX_ATTRIBUTES_KEYS = 100
"""Top-level keys of feedback ``attributes``."""

INT64 = 2**63
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def no_control_characters(value: str) -> str:
    """``value`` unchanged, or ``ValueError`` naming the first control character in it."""
    found = CONTROL.search(value)
    if found is not None:
        raise ValueError(
            f"control character U+{ord(found.group()):04X} at position {found.start()} "
            "is not allowed"
        )
    return value


def value_problem(value: Any, *, depth: int = 0) -> str | None:
    """Why a JSON-like ``value`` breaks the bounds (``None`` when it keeps them): a string over
    ``MAX_STRING_CHARS``, a non-finite number, a key that is not a name (see
    :func:`name_problem`), nesting deeper than ``MAX_DEPTH``."""
    kind = type(value)
    if kind is str:
        return text_problem(value)
    if kind is float:
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if kind is int:
        return None if -INT64 <= value < INT64 else "an integer outside the 64-bit range"
    if value is None or kind is bool:
        return None
    if kind is dict or kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if kind is dict:
            for key, inner in value.items():
                problem = name_problem(key)
                if problem is not None:
                    return f"key {str(key)[:40]!r}: {problem}"
                problem = value_problem(inner, depth=depth + 1)
                if problem is not None:
                    return f"{key}: {problem}"
            return None
        for i, inner in enumerate(value):
            problem = value_problem(inner, depth=depth + 1)
            if problem is not None:
                return f"[{i}]: {problem}"
        return None
    return None  # other Python objects (datetimes, numpy scalars) come from code, not JSON


def text_problem(value: str) -> str | None:
    """Why a free-text string breaks the bounds: too long, or a NUL character."""
    if len(value) > MAX_STRING_CHARS:
        return f"a string of {len(value)} characters (at most {MAX_STRING_CHARS})"
    if "\x00" in value:
        return "a NUL character (U+0000) is not allowed"
    return None


def no_nul(value: str) -> str:
    """``value`` unchanged, or ``ValueError`` when it holds a NUL character."""
    if "\x00" in value:
        raise ValueError("a NUL character (U+0000) is not allowed")
    return value


def name_problem(name: Any) -> str | None:
    """Why ``name`` is not a valid feature or attribute name (``None`` when it is)."""
    if not isinstance(name, str):
        return "names are strings"
    if not name:
        return "an empty name"
    if len(name) > MAX_NAME_CHARS:
        return f"a name of {len(name)} characters (at most {MAX_NAME_CHARS})"
    found = CONTROL.search(name)
    if found is not None:
        return f"control character U+{ord(found.group()):04X} in a name"
    return None


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def bounded_json(value: Any) -> Any:
    """``value`` unchanged if it keeps the bounds of :func:`value_problem`, else ``ValueError``
    saying where (for free-form request fields: params, payloads, conditions, labels)."""
    problem = value_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(bounded_json)]
"""A free-form JSON object from a client: keys are names, numbers finite, integers within
64 bits, strings bounded, nesting at most ``MAX_DEPTH`` (its key count is set per field)."""


def json_object(max_keys: int) -> Any:
    """:data:`JsonObject` with at most ``max_keys`` keys, as a type (the bound comes before the
    validator, so it reaches the JSON schema also inside unions and lists)."""
    return Annotated[dict[str, Any], Field(max_length=max_keys), AfterValidator(bounded_json)]


JsonValue = Annotated[Any, AfterValidator(bounded_json)]
"""Any JSON value from a client, with the bounds of :data:`JsonObject`."""
