"""The shapes of identifiers a client may send, checked once for every transport.

REST takes the ``Annotated`` types at the end of this module (their patterns reach the OpenAPI
schema); OIP v2 over REST and gRPC, the CLI and job payloads call the
``check_*`` functions. A value that cannot name anything is the client's mistake
(``InvalidInput``, HTTP 422), never a lookup that reaches a store and fails there.

==========  ==============================================  =====================================
kind        pattern                                         examples
==========  ==============================================  =====================================
model       letter or digit, then letters, digits ``._-``   ``failure``, ``kt-assist09``
            (≤ 128)
version     a positive integer below 10⁹ (MLflow numbers)   ``1``, ``42``
alias       a letter, then letters, digits ``_-`` (≤ 64)    ``champion``, ``challenger``
object id   letter or digit, then letters, digits ``._:-``  job, dataset, run, prediction, event,
            (≤ 128)                                         key and channel ids
subject id  1–255 characters, no control characters         ``learner-17``, an e-mail address
==========  ==============================================  =====================================

Integers from clients are bounded too (:data:`INT64_MAX` is the widest any store column takes).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from learnloop.core.errors import InvalidInput, Issue

MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
VERSION_PATTERN = r"^[1-9][0-9]{0,8}$"
ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
OBJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
SUBJECT_ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,255}$"

MODEL_RE = re.compile(MODEL_PATTERN)
VERSION_RE = re.compile(VERSION_PATTERN)
ALIAS_RE = re.compile(ALIAS_PATTERN)
OBJECT_ID_RE = re.compile(OBJECT_ID_PATTERN)
SUBJECT_ID_RE = re.compile(SUBJECT_ID_PATTERN)

RESERVED_ALIASES = frozenset({"history"})
"""Alias names that are routes of their own (``/v1/models/{name}/aliases/history``)."""

INT64_MAX = 2**63 - 1
"""The largest integer a client may send where a store keeps it (SQL BIGINT)."""

_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "model": (MODEL_RE, "a letter or digit, then letters, digits, '.', '_' or '-' (≤ 128)"),
    "version": (VERSION_RE, "a version number (a positive integer)"),
    "alias": (ALIAS_RE, "a letter, then letters, digits, '_' or '-' (≤ 64)"),
    "id": (OBJECT_ID_RE, "a letter or digit, then letters, digits, '.', '_', ':' or '-' (≤ 128)"),
    "subject": (SUBJECT_ID_RE, "1 to 255 characters without control characters"),
}


def check(kind: str, value: object, loc: str) -> str:
    """``value`` if it is a string of the ``kind``'s shape (``model``, ``version``, ``alias``,
    ``id``, ``subject``); otherwise ``InvalidInput`` naming ``loc``."""
    pattern, shape = _RULES[kind]
    if not isinstance(value, str) or not pattern.match(value):
        shown = repr(value) if not isinstance(value, str) or len(value) <= 64 else "the value"
        raise InvalidInput(f"invalid {kind}", [Issue(loc, f"{shown} is not {shape}")])
    return value


def check_model(value: object, loc: str = "model") -> str:
    return check("model", value, loc)


def check_version(value: object, loc: str = "version") -> str:
    return check("version", value, loc)


def check_alias(value: object, loc: str = "alias") -> str:
    alias = check("alias", value, loc)
    if alias in RESERVED_ALIASES:
        raise InvalidInput("invalid alias", [Issue(loc, f"{alias!r} is reserved")])
    return alias


def is_version(value: str) -> bool:
    """Whether ``value`` could name a version (used where a bad one simply finds nothing)."""
    return bool(VERSION_RE.match(value))


# -- typed fields (path, query and body) for pydantic and FastAPI ---------------------------------

ModelName = Annotated[
    str,
    Field(
        pattern=MODEL_PATTERN,
        max_length=128,
        description="Model name: a letter or digit, then letters, digits, `.`, `_` or `-`.",
    ),
]
Version = Annotated[
    str,
    Field(
        pattern=VERSION_PATTERN,
        max_length=9,
        description="Version number (a positive integer, as text).",
    ),
]
AliasName = Annotated[
    str,
    Field(
        pattern=ALIAS_PATTERN,
        max_length=64,
        description="Alias: a letter, then letters, digits, `_` or `-`.",
    ),
]
ObjectId = Annotated[
    str,
    Field(
        pattern=OBJECT_ID_PATTERN,
        max_length=128,
        description="Identifier (job, dataset, run, prediction, event, key or channel id).",
    ),
]
SubjectId = Annotated[
    str,
    Field(
        pattern=SUBJECT_ID_PATTERN,
        min_length=1,
        max_length=255,
        description="Subject id (person or entity): 1–255 characters, no control characters.",
    ),
]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="Random seed.")]
Priority = Annotated[int, Field(ge=-1000, le=1000, description="Queue priority (higher first).")]
Cursor = Annotated[
    int, Field(ge=0, le=INT64_MAX, description="Return entries after this sequence number.")
]
Duration = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,6}[smhdw]$",
        max_length=7,
        description="A length of time: a whole number and a unit (`90s`, `15m`, `1h`, `7d`, `2w`).",
    ),
]
Text = Annotated[str, Field(max_length=256, description="A short text (≤ 256 characters).")]
StudyName = Annotated[
    str,
    Field(pattern=MODEL_PATTERN, max_length=128, description="Study name (the model-name rules)."),
]
Finite = Annotated[
    float, Field(ge=-1e300, le=1e300, allow_inf_nan=False, description="A finite number.")
]
