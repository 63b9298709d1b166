"""Migration 0009 on a database that already has alias history: every alias gets its pointer
from its latest event, and the next move continues that chain."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from learnloop.core.stores import AliasMove
from learnloop.storage.sql.database import ALEMBIC_LOCK, Database
from learnloop.storage.sql.stores import SqlAliasHistory


@pytest.fixture
def at_0008(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    with ALEMBIC_LOCK, database.engine.begin() as conn:
        cfg = database._alembic()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
    yield database
    database.dispose()


def test_upgrade_points_every_alias_at_its_latest_event(at_0008: Database) -> None:
    rows = [
        ("m", "champion", "set", None, "1"),
        ("m", "champion", "set", "1", "2"),
        ("m", "challenger", "set", None, "3"),
        ("m", "champion", "rollback", "2", "1"),
        ("m", "old", "set", None, "4"),
        ("m", "old", "delete", "4", None),
    ]
    with at_0008.engine.begin() as conn:
        for i, (model, alias, action, before, after) in enumerate(rows):
            conn.execute(
                sa.text(
                    "INSERT INTO alias_events (model, alias, action, from_version, to_version, "
                    "actor, reason, at) VALUES (:m, :a, :act, :f, :t, 'x', '', :at)"
                ),
                {
                    "m": model,
                    "a": alias,
                    "act": action,
                    "f": before,
                    "t": after,
                    "at": f"2026-01-01 00:00:0{i}",
                },
            )
    at_0008.migrate()
    with at_0008.engine.connect() as conn:
        pointers = conn.execute(
            sa.text("SELECT alias, version, seq FROM alias_pointers ORDER BY alias")
        ).all()
    assert [tuple(p) for p in pointers] == [
        ("challenger", "3", 1),
        ("champion", "1", 3),
        ("old", None, 2),
    ]
    moved = SqlAliasHistory(at_0008).move(
        "m", "champion", lambda chain: [AliasMove("set", "5", "y")]
    )
    assert [(e.from_version, e.to_version) for e in moved] == [("1", "5")]
    with at_0008.engine.connect() as conn:
        head = conn.execute(
            sa.text("SELECT version, seq FROM alias_pointers WHERE alias = 'champion'")
        ).one()
    assert tuple(head) == ("5", 4)
