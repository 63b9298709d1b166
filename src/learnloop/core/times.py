"""Timestamps received from clients: ISO 8601 text only.

pydantic's ``datetime`` also takes numbers and numeric strings as Unix epoch seconds, so
``?since=0`` or ``?at=0.5`` silently meant a moment in 1970. :data:`Timestamp` takes only an
ISO 8601 date (``2024-05-01``, midnight) or date-time (``2024-05-01T12:00:00Z``,
``2024-05-01T14:00:00+02:00``) of at most 64 characters, and is always timezone-aware: a value
without an offset is read in the server's time zone (as ``.astimezone()`` does). Anything else
is a 422 whose issue names the field. Every ``since``/``until``/``at`` a client sends, in a
query or a body, is annotated with it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

MAX_LENGTH = 64
MIN_YEAR, MAX_YEAR = 1900, 9000
EXAMPLE = "2024-05-01T12:00:00Z"
FORMAT = (
    "An ISO 8601 date (2024-05-01, meaning midnight) or date-time (2024-05-01T12:00:00Z, "
    "2024-05-01T14:00:00+02:00); without an offset, the time is read in the server's time zone. "
    "Numbers (epoch seconds) are refused."
)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_timestamp(value: object) -> datetime:
    """``value`` as an aware datetime, or a ``PydanticCustomError`` saying what to send."""
    if isinstance(value, datetime):  # from Python callers, not the wire
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif not isinstance(value, str):
        raise PydanticCustomError(
            "timestamp_type", f"expected an ISO 8601 date or date-time string such as {EXAMPLE}"
        )
    else:
        if len(value) > MAX_LENGTH:
            raise PydanticCustomError(
                "timestamp_too_long", f"a timestamp has at most {MAX_LENGTH} characters"
            )
        text = value.strip()
        if _NUMBER.fullmatch(text):
            raise PydanticCustomError(
                "timestamp_number",
                f"a number is not a timestamp: send ISO 8601, such as {EXAMPLE}",
            )
        try:
            moment = datetime.fromisoformat(text.upper())  # RFC 3339 allows "t" and "z"
        except ValueError:
            raise PydanticCustomError(
                "timestamp_parsing",
                f"not an ISO 8601 date or date-time: send e.g. 2024-05-01 or {EXAMPLE}",
            ) from None
    try:
        aware = moment if moment.tzinfo is not None else moment.astimezone()
        aware.astimezone(UTC)  # representable everywhere it goes next
    except (OverflowError, ValueError):
        raise PydanticCustomError("timestamp_range", "timestamp out of range") from None
    if not MIN_YEAR <= aware.year <= MAX_YEAR:  # room for windows of years either side
        raise PydanticCustomError(
            "timestamp_range", f"a timestamp lies in the years {MIN_YEAR} to {MAX_YEAR}"
        )
    return aware


Timestamp = Annotated[
    datetime,
    BeforeValidator(parse_timestamp),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "maxLength": MAX_LENGTH,
            "description": FORMAT,
            "examples": [EXAMPLE, "2024-05-01"],
        }
    ),
]
"""A point in time from a client: ISO 8601 only, timezone-aware (see the module docstring)."""
