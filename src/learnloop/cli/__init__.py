"""The ``learnloop`` command line (Typer + Rich).

Commands work on the local home (``LEARNLOOP_HOME``, default ``./.learnloop``) through the same
services as the API: ``serve``, ``worker``, ``migrate``, ``demo``, ``keys``, ``dataset``,
``train``, ``jobs``, ``models``, ``versions``, ``alias``, ``predict``.

A mistake on the command line is one line on stderr and exit 2; a refusal by a service is
exit 1 (see ``cli/common.py``); ``learnloop --debug …`` shows the traceback of an unexpected
error.
"""

from __future__ import annotations

from learnloop.cli.app import app


def main() -> None:
    app(prog_name="learnloop")  # also under ``python -m learnloop``


__all__ = ["app", "main"]
