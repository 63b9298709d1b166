"""What every command shares: the container, how failures are reported, reading the user's
files and JSON.

Every failure ends as one line on stderr (``error: …``) and an exit code, never a traceback:

- **2** — the command line is wrong: click's own usage errors (a missing argument, an unknown
  option, a value of the wrong type, an input file that does not exist or is a directory) and
  :func:`usage_error`, raised by commands for what click cannot check (a file that cannot be
  read, JSON that does not parse or has the wrong shape).
- **1** — the command ran and was refused or failed: a :class:`LearnloopError` from a service
  (not found, invalid data, conflict, storage…; an ``InvalidInput`` also lists its fields, one
  per line), or an unexpected error, whose traceback is printed only with ``learnloop --debug``
  or ``LEARNLOOP_LOGGING__LEVEL=DEBUG``.

:class:`LearnloopGroup`, the root command, does this for every sub-command.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from learnloop.container import Container
from learnloop.core.errors import LearnloopError
from learnloop.settings import Settings

console = Console(stderr=True)
out = Console()

M = TypeVar("M", bound=BaseModel)


@contextmanager
def opened(migrate: bool | None = True) -> Iterator[Container]:
    """A container on the local home, closed on the way out (errors are reported by the root
    command).

    ``migrate=None`` follows ``database.migrate_on_start``."""
    container = Container(load_settings(), migrate=migrate)
    try:
        yield container.open()
    finally:
        container.close()


def say_error(message: str) -> None:
    """``error: MESSAGE`` on stderr, on one line whatever the terminal width."""
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)


def report(error: LearnloopError) -> None:
    say_error(getattr(error, "summary", error.message))
    for issue in getattr(error, "issues", ()):
        console.print(
            f"  [yellow]{escape(issue.loc)}[/]: {escape(issue.message)}",
            soft_wrap=True,
            highlight=False,
        )


def load_settings() -> Settings:
    """Settings from the environment; a bad value is a message (exit 2), not a traceback."""
    try:
        return Settings()
    except ValidationError as e:
        say_error("invalid settings")
        for err in e.errors():
            where = "__".join(str(p).upper() for p in err["loc"])
            console.print(f"  LEARNLOOP_{escape(where)}: {escape(err['msg'])}", soft_wrap=True)
        raise typer.Exit(2) from None


def usage_error(source: str, message: str) -> NoReturn:
    """Refuse what the user typed: ``error: Invalid value for 'SOURCE': MESSAGE``, exit 2.

    ``source`` names the option or argument (``--input``, ``FILE``)."""
    raise typer.BadParameter(message, param_hint=f"'{source}'")


def read_text(path: Path, source: str) -> str:
    """The UTF-8 text of a file the user named; any failure to read it is a usage error."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        usage_error(source, f"{path} is not UTF-8 text (byte {e.start})")
    except OSError as e:
        usage_error(source, f"cannot read {path}: {e.strerror or e}")


def parse_json(text: str, source: str) -> Any:
    """JSON the user typed or named, or a usage error that says where it stopped parsing."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        usage_error(source, f"not JSON: {e.msg} (line {e.lineno}, column {e.colno})")
    except RecursionError:
        usage_error(source, "JSON nested too deeply")


def json_kind(value: Any) -> str:
    """How a JSON value is named in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def json_object(text: str, source: str) -> dict[str, Any]:
    """A JSON object (``{…}``), or a usage error naming the kind of value given instead."""
    value = parse_json(text, source)
    if not isinstance(value, dict):
        usage_error(source, f"expected a JSON object {{…}}, got {json_kind(value)}")
    return value


def json_objects(text: str, source: str, *, single: bool = True) -> list[dict[str, Any]]:
    """A non-empty JSON list of objects (or, when ``single``, one object, as a list of one)."""
    value = parse_json(text, source)
    shape = (
        "a JSON object or a non-empty list of objects"
        if single
        else "a non-empty JSON list of objects"
    )
    if isinstance(value, dict) and single:
        return [value]
    if not isinstance(value, list):
        usage_error(source, f"expected {shape}, got {json_kind(value)}")
    if not value:
        usage_error(source, f"expected {shape}, got an empty list")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            usage_error(source, f"item {i} is {json_kind(item)}; expected {shape}")
    return value


def parse_params(pairs: Sequence[str] | None, source: str = "--param") -> dict[str, Any]:
    """``key=value`` pairs; values are parsed as JSON when they can be (numbers, lists…)."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            usage_error(source, f"{pair!r}: use key=value")
        try:
            params[key] = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            params[key] = value
    return params


def validated(
    schema: type[M], data: Mapping[str, Any], options: Mapping[str, str] | None = None
) -> M:
    """``schema`` built from what the command line gave; a field it refuses is a usage error
    naming the option (``--valid-fraction``) or argument (``model``) that gave it: the one
    ``options`` maps the field to, else ``--`` and the field name with dashes."""
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        names = dict(options or {})
        problems: dict[str, list[str]] = {}
        for err in e.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            option = names.get(field) or ("--" + field.replace("_", "-") if field else "options")
            rest = ".".join(str(p) for p in err["loc"][1:])
            problems.setdefault(option, []).append(f"{rest}: {err['msg']}" if rest else err["msg"])
        if len(problems) == 1:
            [(option, messages)] = problems.items()
            usage_error(option, "; ".join(messages))
        detail = "; ".join(f"{o}: {', '.join(m)}" for o, m in problems.items())
        raise typer.BadParameter(detail, param_hint=", ".join(f"'{o}'" for o in problems)) from None


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def wants_tracebacks(ctx: typer.Context) -> bool:
    """``learnloop --debug …``, or a DEBUG log level in the settings."""
    if ctx.find_root().params.get("debug"):
        return True
    try:
        return Settings().logging.level.upper() == "DEBUG"
    except ValidationError:
        return False


class LearnloopGroup(TyperGroup):
    """The root ``learnloop`` command: turns every failure of a sub-command into one line on
    stderr and an exit code (see the module docstring)."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort, BrokenPipeError):
            raise  # usage errors and exits: main; a closed stdout: typer exits quietly
        except LearnloopError as e:
            report(e)
            raise typer.Exit(1) from None
        except Exception as e:
            debug = wants_tracebacks(ctx)
            if debug:
                traceback.print_exception(e)
            first = next(iter(str(e).strip().splitlines()), "")
            hint = "" if debug else " (learnloop --debug … shows the traceback)"
            say_error(f"unexpected {type(e).__name__}{': ' + first if first else ''}{hint}")
            raise typer.Exit(1) from None

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except typer.TyperException as e:  # click's errors: usage (exit 2), files
            if type(e).__name__ == "NoArgsIsHelpError":
                sys.exit(2)  # the help is already printed
            ctx = getattr(e, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            say_error(e.format_message() + hint)
            sys.exit(e.exit_code)
        except typer.Abort:
            say_error("aborted")
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)
