"""Opening databases: migrations, and refusing corrupt, foreign or too-new ones untouched."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from learnloop.core.errors import StorageError
from learnloop.storage.sql.database import Database


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_migrate_is_idempotent(database_url: str) -> None:
    db = Database(database_url)
    assert db.migrate() == (None, db.head())
    assert db.migrate() == (db.head(), db.head())
    assert db.is_current()
    with db.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"jobs", "job_events", "audit_events", "api_keys", "alias_events", "datasets"} <= tables
    db.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'l.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    db.dispose()


def test_refuses_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "learnloop.db"
    path.write_bytes(b"this is my thesis, do not overwrite\n" * 100)
    before = digest(path)
    with pytest.raises(StorageError, match="not a SQLite database"):
        Database(f"sqlite:///{path}").migrate()
    assert digest(path) == before


def test_refuses_a_corrupt_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "learnloop.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    raw = bytearray(path.read_bytes())
    raw[4096:] = b"\xff" * (len(raw) - 4096)  # keep page 1 (schema), trash every table page
    path.write_bytes(bytes(raw))
    before = digest(path)
    with pytest.raises(StorageError):
        Database(f"sqlite:///{path}").migrate()
    assert digest(path) == before


def test_refuses_a_foreign_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "learnloop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    before = digest(path)
    with pytest.raises(StorageError, match=r"invoices.*not a learnloop database"):
        Database(f"sqlite:///{path}").migrate()
    assert digest(path) == before


def test_refuses_a_foreign_postgres_schema(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(StorageError, match="customers"):
        Database(database_url).migrate()


def test_refuses_a_database_from_a_newer_learnloop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    db = Database(url)
    db.migrate()
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    db.dispose()
    with pytest.raises(StorageError, match="newer learnloop"):
        Database(url).migrate()
