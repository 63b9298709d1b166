"""The JSON edge rule: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON.

Python's ``json`` (and pydantic's JSON parser) accept these three tokens, so without a check a
bare ``NaN`` in a request would become a float NaN — a "missing" feature value, a ``null`` in a
stored feedback event. RFC 8259 has no such tokens: :func:`nonstandard_constants` finds them so
the request middleware can refuse the request with 422 naming each place, before any route sees
the body.

It is cheap for ordinary bodies: a byte search for ``NaN``/``Infinity`` first; only a body that
holds one of them (as a token or inside a string) is parsed, once, to tell which.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from email.message import Message
from typing import Any

from learnloop.core.errors import Issue

CONSTANTS = (b"NaN", b"Infinity")  # "-Infinity" holds "Infinity"
OIP_HEADER_LENGTH = b"inference-header-content-length"


class _Constant:
    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token


def scanned_length(headers: Mapping[bytes, bytes]) -> int | None:
    """How many leading bytes of the body are JSON to check: all of a JSON body (``-1``), the
    JSON header of an Open Inference Protocol binary request, or ``None`` (not JSON)."""
    header = headers.get(OIP_HEADER_LENGTH)
    if header is not None:
        return int(header) if header.isdigit() else None
    content_type = headers.get(b"content-type")
    if content_type is None:
        return -1  # routes that read the body themselves may parse it as JSON
    if content_type.startswith(b"application/json"):  # the common case, without a parser
        return -1
    message = Message()
    message["content-type"] = content_type.decode("latin-1")
    subtype = message.get_content_subtype()
    return -1 if subtype == "json" or subtype.endswith("+json") else None


def nonstandard_constants(body: bytes) -> list[Issue]:
    """One issue per ``NaN``/``Infinity``/``-Infinity`` token in the JSON ``body``, at its field
    path (``body.inputs.0.temperature``). Empty for standard JSON, for these words inside
    strings, and for a body that is not JSON at all (the route reports that itself)."""
    if not any(token in body for token in CONSTANTS):
        return []
    try:
        parsed = json.loads(body, parse_constant=_Constant)
    except ValueError:  # not JSON (or not UTF-8): not this rule's business
        return []
    return [
        Issue(".".join(["body", *path]), f"{token} is not valid JSON; send a number or null")
        for path, token in _constants(parsed, [])
    ]


def _constants(value: Any, path: list[str]) -> Iterator[tuple[list[str], str]]:
    if isinstance(value, _Constant):
        yield path, value.token
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _constants(inner, [*path, str(key)])
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _constants(inner, [*path, str(i)])
