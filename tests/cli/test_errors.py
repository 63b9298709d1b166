"""A mistake on the command line is one line on stderr and exit 2, never a traceback; a refusal
by a service is exit 1; an unexpected error shows its traceback only under ``--debug``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from learnloop.cli import app
from learnloop.cli.common import LearnloopGroup
from learnloop.core.errors import NotFound
from tests.cli.test_cli import run


def invoke(home: Path, *args: str) -> Result:
    """The real ``learnloop`` command, in this process (the root group's ``main`` included)."""
    return CliRunner().invoke(app, list(args), env={"LEARNLOOP_HOME": str(home)})


def assert_one_line_error(result: Result, *needles: str, code: int = 2) -> None:
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    made = {
        "binary": b"\x00\x01\xff\xfe not text",
        "numbers.json": b"[1, 2]",
        "list.yaml": b"- mode: single\n",
        "broken.yaml": b"mode: [single\n",
    }
    for name, content in made.items():
        (tmp_path / name).write_bytes(content)
    return {name: tmp_path / name for name in made}


MISTAKES: list[tuple[list[str], list[str]]] = [
    (["feedback", "import", "{missing}"], ["'file'", "does not exist"]),
    (["feedback", "import", "{dir}"], ["'file'", "is a directory"]),
    (["feedback", "import", "{binary}"], ["'file'", "not UTF-8"]),
    (["predict", "m", "--input", "[1,2]"], ["'--input'", "item 0 is a number"]),
    (["predict", "m", "--input", "null"], ["'--input'", "got null"]),
    (["predict", "m", "--input", '"x"'], ["'--input'", "got a string"]),
    (["predict", "m", "--input", "[]"], ["'--input'", "empty list"]),
    (["predict", "m", "--input", '{"a": '], ["'--input'", "not JSON", "line 1"]),
    (["predict", "m", "--file", "{missing}"], ["'--file'", "does not exist"]),
    (["dataset", "import", "{dir}", "-f", "tabular"], ["'file'", "is a directory"]),
    (["dataset", "import", "{missing}", "-f", "tabular", "-p", "a=1"], ["does not exist"]),
    (["dataset", "dp-release", "ds-1", "{numbers.json}"], ["'queries'", "item 0"]),
    (["deploy", "apply", "m", "{list.yaml}"], ["'spec_file'", "got a list"]),
    (["deploy", "apply", "m", "{broken.yaml}"], ["'spec_file'", "not YAML", "line 2"]),
    (["train", "tabular", "--data", "{missing}", "-m", "m"], ["'--data'", "does not exist"]),
    (["tune", "tabular", "-m", "m", "--dataset-id", "d", "--space", "[1]"], ["'--space'"]),
    (["bench", "kt", "--train", "{missing}", "--test", "{missing}"], ["'--train'"]),
    (["gdpr", "export", "s", "--out", "{missing}/x.json"], ["'--out'", "cannot write"]),
    (["dataset", "from-feedback", "m", "--valid-fraction", "5"], ["'--valid-fraction'"]),
    (["dataset", "from-feedback", "m", "--k", "1"], ["'--k'"]),
    (["al", "select", "m", "--budget", "5", "--strategy", "best"], ["'--strategy'", "margin"]),
    (["train", "tabular", "-d", "{list.yaml}", "-m", "m", "--priority", "top"], ["'--priority'"]),
    (["feedback", "metrics", "--hours", "1e12"], ["'--hours'"]),
]


@pytest.mark.parametrize(
    ("args", "needles"),
    MISTAKES,
    ids=[" ".join(a[:3]) + f"-{i}" for i, (a, _) in enumerate(MISTAKES)],
)
def test_a_command_line_mistake_is_one_line_and_exit_2(
    tmp_path: Path, files: dict[str, Path], args: list[str], needles: list[str]
) -> None:
    names = {"missing": tmp_path / "missing", "dir": tmp_path, **files}
    for name, path in names.items():
        args = [a.replace(f"{{{name}}}", str(path)) for a in args]
    result = invoke(tmp_path / "home", *args)
    assert_one_line_error(result, *needles)
    assert "see 'learnloop " in result.stderr  # where to read how the command is used


def test_a_long_message_stays_on_one_line_in_a_narrow_terminal(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["predict", "m", "--input", json.dumps([{"a": 1}] * 3 + [7])],
        env={"LEARNLOOP_HOME": str(tmp_path), "COLUMNS": "40"},
    )
    assert_one_line_error(result, "item 3 is a number")


def test_a_refusal_by_a_service_is_exit_1_and_names_the_thing(tmp_path: Path) -> None:
    result = invoke(tmp_path / "home", "predict", "no-such-model", "--input", "{}")
    assert_one_line_error(result, "model 'no-such-model' not found", code=1)


@pytest.mark.slow
def test_the_installed_command_reports_a_missing_file_in_one_line(tmp_path: Path) -> None:
    """Through ``python -m learnloop``, as a user runs it (the entry point, not the runner)."""
    missing = tmp_path / "events.jsonl"
    result = run(tmp_path / "home", "feedback", "import", str(missing))
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: Invalid value for 'file': file '{missing}' does not exist. "
        "(see 'learnloop feedback import --help')"
    ]
    assert run(tmp_path / "home", "--debug", "feedback", "import", str(tmp_path)).returncode == 2


def broken_app() -> typer.Typer:
    """A root group like ``learnloop``'s with commands that fail in the ways commands can."""
    demo = typer.Typer(cls=LearnloopGroup, pretty_exceptions_enable=False)

    @demo.callback()
    def options(debug: bool = typer.Option(False, "--debug")) -> None:
        pass

    @demo.command()
    def crash() -> None:
        raise RuntimeError("the disk is full\nsecond line")

    @demo.command()
    def missing() -> None:
        raise NotFound("model", "kt")

    return demo


def test_an_unexpected_error_is_one_line_unless_debug_asks_for_the_traceback() -> None:
    runner = CliRunner()
    quiet = runner.invoke(broken_app(), ["crash"], env={"LEARNLOOP_LOGGING__LEVEL": "INFO"})
    assert_one_line_error(quiet, "unexpected RuntimeError: the disk is full", "--debug", code=1)
    assert "second line" not in quiet.stderr
    loud = runner.invoke(broken_app(), ["--debug", "crash"])
    assert loud.exit_code == 1
    assert "Traceback" in loud.stderr and "second line" in loud.stderr
    assert loud.stderr.strip().splitlines()[-1].startswith("error: unexpected RuntimeError")
    by_level = runner.invoke(broken_app(), ["crash"], env={"LEARNLOOP_LOGGING__LEVEL": "DEBUG"})
    assert by_level.exit_code == 1 and "Traceback" in by_level.stderr
    assert_one_line_error(runner.invoke(broken_app(), ["missing"]), "model 'kt' not found", code=1)
