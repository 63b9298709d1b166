"""What every command shares: the container, error reporting, output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console

from learnloop.container import Container
from learnloop.core.errors import LearnloopError
from learnloop.settings import Settings

console = Console(stderr=True)
out = Console()

T = TypeVar("T")


@contextmanager
def opened(migrate: bool = True) -> Iterator[Container]:
    """A container on the local home; learnloop errors become a message and exit code 1."""
    container = Container(Settings(), migrate=migrate)
    try:
        yield container.open()
    except LearnloopError as e:
        report(e)
        raise typer.Exit(1) from None
    finally:
        container.close()


def report(error: LearnloopError) -> None:
    console.print(f"[bold red]error:[/] {getattr(error, 'summary', error.message)}")
    for issue in getattr(error, "issues", ()):
        console.print(f"  [yellow]{issue.loc}[/]: {issue.message}")


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
