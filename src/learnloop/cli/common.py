"""What every command shares: the container, error reporting, output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from learnloop.container import Container
from learnloop.core.errors import LearnloopError
from learnloop.settings import Settings

console = Console(stderr=True)
out = Console()

T = TypeVar("T")


@contextmanager
def opened(migrate: bool | None = True) -> Iterator[Container]:
    """A container on the local home; learnloop errors become a message and exit code 1.

    ``migrate=None`` follows ``database.migrate_on_start``."""
    container = Container(load_settings(), migrate=migrate)
    try:
        yield container.open()
    except LearnloopError as e:
        report(e)
        raise typer.Exit(1) from None
    finally:
        container.close()


def report(error: LearnloopError) -> None:
    console.print(f"[bold red]error:[/] {escape(getattr(error, 'summary', error.message))}")
    for issue in getattr(error, "issues", ()):
        console.print(f"  [yellow]{escape(issue.loc)}[/]: {escape(issue.message)}")


def load_settings() -> Settings:
    """Settings from the environment; a bad value is a message (exit 2), not a traceback."""
    try:
        return Settings()
    except ValidationError as e:
        console.print("[bold red]error:[/] invalid settings")
        for err in e.errors():
            where = "__".join(str(p).upper() for p in err["loc"])
            console.print(f"  LEARNLOOP_{escape(where)}: {escape(err['msg'])}")
        raise typer.Exit(2) from None


def guarded(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except LearnloopError as e:
        report(e)
        raise typer.Exit(1) from None


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values are parsed as JSON when they can be (numbers, lists…)."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            console.print(f"[bold red]error:[/] --param {pair!r}: use key=value")
            raise typer.Exit(2)
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
