"""What clients may see of server-side failures: the message, never a server path or traceback.

Job errors and error bodies pass through :func:`redact`; the full text (traceback included) goes
to the log, where the job id and the request id tie it to what the client saw.
"""

from __future__ import annotations

import re

# an absolute POSIX path of two or more parts (``/srv/x/y.csv``), not the tail of a URL, a
# relative path or an API route written as text (``/v1/...``)
_PATH = re.compile(r"(?<![\w.:/~-])/(?!v[12]/)(?:[\w.@+-]+/)+[\w.@+-]*")
_WINDOWS = re.compile(r"\b[A-Za-z]:\\(?:[^\\\s'\"]+\\)*[^\\\s'\"]*")


MAX_MESSAGE_CHARS = 2_000
"""The longest error message a client gets (a request with 10,000 bad rows stays readable)."""


def redact(text: str | None) -> str | None:
    """``text`` with every absolute file path replaced by ``<path>``."""
    if not text:
        return text
    return _WINDOWS.sub("<path>", _PATH.sub("<path>", text))


def client_message(text: str, suffix: str = "…") -> str:
    """An error message as a client may see it: server paths redacted, at most
    ``MAX_MESSAGE_CHARS`` characters (``suffix`` marks a cut)."""
    shown = redact(text) or ""
    return shown if len(shown) <= MAX_MESSAGE_CHARS else shown[:MAX_MESSAGE_CHARS] + suffix
