"""File paths that come from clients, confined to configured roots.

A request may name a file for the server to read (a batch job's input); the server must not
become a way to read anything else it can reach. :class:`FileRoots` turns the client's text into
a real file inside one of the roots, or refuses:

* relative paths are taken from the first root; absolute ones must already lie inside a root;
* the path is resolved (``..`` and every symlink, at any depth) *before* the containment check,
  so a link inside a root that points outside it is refused like the outside file itself;
* the text is taken literally: nothing is URL-decoded, so ``%2e%2e%2f`` is a (missing) file name,
  never a way up; NUL bytes, control characters and over-long paths are refused;
* only regular files are accepted (no folders, devices or FIFOs).

Refusals are ``InvalidInput`` naming the field and echoing only what the client sent, never a
server path. Jobs resolve again when they run, so a file swapped for a link after submission is
caught then.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from learnloop.core.errors import InvalidInput, Issue

MAX_PATH_CHARS = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class FileRoots:
    """The folders client-named files must lie in (thread-safe: immutable after construction)."""

    def __init__(self, roots: Sequence[Path]) -> None:
        if not roots:
            raise ValueError("at least one root folder is needed")
        self.roots = tuple(Path(r).expanduser().resolve() for r in roots)

    def resolve(self, raw: str, loc: str = "path") -> Path:
        """The real file ``raw`` names inside a root; ``InvalidInput`` (at ``loc``) otherwise."""
        shown = raw if len(raw) <= 200 else raw[:200] + "…"
        if not raw or len(raw) > MAX_PATH_CHARS:
            raise _refuse(loc, f"give a file path of 1 to {MAX_PATH_CHARS} characters")
        if _CONTROL.search(raw):
            raise _refuse(loc, "control characters are not allowed in a path")
        if _SCHEME.match(raw):
            raise _refuse(loc, f"{shown!r}: give a file path, not a URL")
        given = Path(raw).expanduser() if raw.startswith("~") else Path(raw)
        candidate = given if given.is_absolute() else self.roots[0] / given
        try:
            real = candidate.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            raise _refuse(loc, f"{shown!r}: no such file in the import folders") from None
        except (OSError, RuntimeError):  # permission denied, symlink loop, name too long
            raise _refuse(loc, f"{shown!r}: cannot be opened") from None
        if not any(real.is_relative_to(root) for root in self.roots):
            raise _refuse(
                loc,
                f"{shown!r} is outside the import folders (files must lie in a configured "
                "import folder; relative paths start there)",
            )
        if not real.is_file():
            raise _refuse(loc, f"{shown!r}: not a regular file")
        if not os.access(real, os.R_OK):
            raise _refuse(loc, f"{shown!r}: cannot be opened")
        return real

    def display(self, path: Path) -> str:
        """``path`` relative to its root, for messages and results (never the server's layout)."""
        real = path.resolve()
        for root in self.roots:
            if real.is_relative_to(root):
                return real.relative_to(root).as_posix()
        return path.name


def _refuse(loc: str, message: str) -> InvalidInput:
    return InvalidInput("invalid path", [Issue(loc, message)])
