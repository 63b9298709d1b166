"""Short form of the feedback crash test: the server is ``kill -9``-ed and restarted 3 times
while clients send; every acknowledged event is then in the store exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks.feedback.crash import crash_test
from tests.conftest import require_postgres

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_acknowledged_feedback_survives_kill_9(backend: str, tmp_path: Path) -> None:
    if backend == "postgres":
        require_postgres()
        from learnloop.testing.databases import postgres_schema

        with postgres_schema() as url:
            result = asyncio.run(
                crash_test(kills=3, interval_s=1.5, concurrency=8, home=tmp_path, database_url=url)
            )
    else:
        result = asyncio.run(crash_test(kills=3, interval_s=1.5, concurrency=8, home=tmp_path))
    assert result["kills"] == 3
    assert result["acked"] > 100, result
    assert result["failed_requests_retried"] > 0, result  # the kills did interrupt requests
    assert result["acked_lost"] == 0, result
    assert result["duplicated"] == 0, result
    assert result["stored"] == result["acked"] + result["stored_unacked"]
