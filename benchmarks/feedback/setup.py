"""A learnloop home (or PostgreSQL schema) ready for feedback load: migrated, an ingest key,
and a ledger of predictions the events refer to."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from learnloop.container import Container
from learnloop.core.auth import Role
from learnloop.core.ids import new_id
from learnloop.core.ledger import PredictionRecord
from learnloop.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Prepared:
    home: Path
    env: dict[str, str]
    token: str
    prediction_ids: list[str]


def server_env(home: Path, database_url: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "LEARNLOOP_HOME": str(home),
        "LEARNLOOP_JOBS__WORKERS": "0",
        "LEARNLOOP_LOGGING__LEVEL": "WARNING",
        "LEARNLOOP_API__MAX_BODY_BYTES": str(16 * 1024 * 1024),
    }
    if database_url:
        env["LEARNLOOP_DATABASE__URL"] = database_url
    return env


def prepare(home: Path, database_url: str | None = None, predictions: int = 2_000) -> Prepared:
    """Migrate, create an ingest key, and write ``predictions`` ledger rows to refer to."""
    settings = Settings(home=home, database={"url": database_url})  # type: ignore[arg-type]
    c = Container(settings).open()
    try:
        _, token = c.keys.create(Role.INGEST, "feedback-bench", actor="bench")
        now = datetime.now(UTC)
        ids = [new_id() for _ in range(predictions)]
        c.predictions.append_many(
            [
                PredictionRecord(
                    id=pid,
                    model="bench",
                    version="1",
                    arm="champion",
                    subject_id=f"user-{i % 500}",
                    input_hash=f"{i:032x}",
                    inputs={"x": i},
                    output={"prediction": i % 2, "probabilities": {"0": 0.4, "1": 0.6}},
                    latency_ms=1.0,
                    cache_hit=False,
                    served_by={"version": "1"},
                    created_at=now,
                )
                for i, pid in enumerate(ids)
            ]
        )
    finally:
        c.close()
    return Prepared(home, server_env(home, database_url), token, ids)


def serve_cmd(port: int, processes: int = 1) -> list[str]:
    return [
        str(BIN / "learnloop"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--processes",
        str(processes),
    ]
