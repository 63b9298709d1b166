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


def redact(text: str | None) -> str | None:
    """``text`` with every absolute file path replaced by ``<path>``."""
    if not text:
        return text
    return _WINDOWS.sub("<path>", _PATH.sub("<path>", text))
