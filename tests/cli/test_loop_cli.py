"""``learnloop feedback import`` and ``learnloop gdpr …`` as a user runs them (subprocesses on a
temp home)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from learnloop.container import Container
from tests.cli.test_cli import run
from tests.conftest import fast_settings

pytestmark = pytest.mark.slow


def test_feedback_import_all_or_nothing_then_gdpr(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "migrate").returncode == 0
    good = [
        {"type": "rating", "value": 4, "subject_id": "alice", "idempotency_key": "a1"},
        {"type": "thumbs", "value": "down", "subject_id": "alice", "text": "call me 555-0100"},
        {"type": "click", "subject_id": "bob"},
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        "\n".join(json.dumps(e) for e in [*good, {"type": "rating", "value": 7, "subject_id": "x"}])
    )
    r = run(home, "feedback", "import", str(bad))
    assert r.returncode == 2
    assert "line 4" in r.stdout + r.stderr and "nothing was stored" in r.stdout + r.stderr
    ok = tmp_path / "ok.jsonl"
    ok.write_text("\n".join(json.dumps(e) for e in good) + "\n")
    r = run(home, "feedback", "import", str(ok))
    assert r.returncode == 0, r.stderr
    assert "stored 3, duplicates 0" in r.stdout
    r = run(home, "feedback", "import", str(ok))
    assert "stored 2, duplicates 1" in r.stdout  # only the keyed event is recognised again

    export = tmp_path / "alice.json"
    r = run(home, "gdpr", "export", "alice", "--out", str(export))
    assert r.returncode == 0, r.stderr
    assert len(json.loads(export.read_text())["feedback"]) == 3
    r = run(home, "gdpr", "forget", "alice", "--yes")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["feedback"] == 3
    r = run(home, "gdpr", "find", "alice")
    assert json.loads(r.stdout)["found"]["feedback"] == 0
    c = Container(fast_settings(home)).open()
    try:
        assert [e.subject_id for e in c.feedback_store.list()] == ["bob", "bob"]
    finally:
        c.close()
