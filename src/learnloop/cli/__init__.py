"""The ``learnloop`` command line (Typer + Rich).

Commands work on the local home (``LEARNLOOP_HOME``, default ``./.learnloop``) through the same
services as the API: ``serve``, ``worker``, ``migrate``, ``demo``, ``keys``, ``dataset``,
``train``, ``jobs``, ``models``, ``versions``, ``alias``, ``predict``.
"""

from __future__ import annotations

from learnloop.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
