"""Opening, checking and migrating the SQL store.

SQLite (the default) runs in WAL mode with a busy timeout; every write transaction starts with
``BEGIN IMMEDIATE`` so writers queue on the database lock instead of failing mid-transaction,
and inside one process writers also queue on a lock, so there is one writer at a time. Several
processes (``serve`` + ``worker``) can share the file safely. PostgreSQL is used by URL.

A database that is not learnloop's is never touched: a file that is not SQLite, a SQLite file
that fails its integrity check, a database with tables but no ``learnloop_meta`` marker, or one
migrated by a newer learnloop all raise :class:`StorageError` before anything is written.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from learnloop.core.errors import StorageError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_HEADER = b"SQLite format 3\x00"
APP_MARKER = "learnloop"
# alembic's op/context proxies are process-global; MLflow's stores migrate with alembic too
ALEMBIC_LOCK = threading.RLock()


class Database:
    """One SQL database: engine, transactions and schema checks."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = 30_000,
        pool_size: int = 5,
        sqlite_synchronous: str = "FULL",
    ) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._write_lock = threading.RLock() if self.is_sqlite else None
        if self.is_sqlite:
            path = parsed.database
            if path and path != ":memory:":
                self._check_sqlite_file(Path(path))
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(
                url, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False}
            )
            _install_sqlite_hooks(self.engine, busy_timeout_ms, sqlite_synchronous)
        else:
            self.engine = sa.create_engine(
                url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
        self._writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on error."""
        lock = self._write_lock or nullcontext()
        with lock, Session(self._writer, expire_on_commit=False) as s, s.begin():
            yield s

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only snapshot."""
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()

    # -- identity & migrations ----------------------------------------------------------------

    @staticmethod
    def _check_sqlite_file(path: Path) -> None:
        if not path.exists() or path.stat().st_size == 0:
            return
        with open(path, "rb") as fh:
            header = fh.read(16)
        if header != SQLITE_HEADER:
            raise StorageError(
                f"{path} is not a SQLite database (bad header); refusing to open or overwrite it"
            )

    def check(self) -> str | None:
        """Verify the database is empty or learnloop's; return its migration revision.

        Raises ``StorageError`` for corrupt, foreign or too-new databases. SQLite files are
        probed through a read-only connection, so a refused file is left byte-for-byte as is."""
        try:
            if self.is_sqlite:
                tables, app, revision = self._probe_sqlite()
            else:
                tables, app, revision = self._probe(self.engine)
        except (sa.exc.DatabaseError, sqlite3.DatabaseError) as e:
            raise StorageError(f"cannot read database {self._where()}: {e}") from e
        if not tables:
            return None
        if "learnloop_meta" not in tables:
            shown = ", ".join(sorted(tables)[:5])
            raise StorageError(
                f"database {self._where()} holds tables ({shown}) but is not a learnloop "
                "database; refusing to use it. Point LEARNLOOP_DATABASE__URL or LEARNLOOP_HOME "
                "elsewhere."
            )
        if app != APP_MARKER:
            raise StorageError(f"database {self._where()} is not a learnloop database")
        known = {s.revision for s in ScriptDirectory.from_config(self._alembic()).walk_revisions()}
        if revision is not None and revision not in known:
            raise StorageError(
                f"database {self._where()} was migrated by a newer learnloop "
                f"(revision {revision}); upgrade learnloop to use it"
            )
        return revision

    def _probe_sqlite(self) -> tuple[set[str], str | None, str | None]:
        path = make_url(self.url).database
        if not path or path == ":memory:" or not Path(path).exists():
            return set(), None, None
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            ok = conn.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise StorageError(f"database {self._where()} is corrupt: {ok}")
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            app = revision = None
            if "learnloop_meta" in tables:
                row = conn.execute("SELECT value FROM learnloop_meta WHERE key = 'app'").fetchone()
                app = row[0] if row else None
            if "alembic_version" in tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
            return tables, app, revision
        finally:
            conn.close()

    @staticmethod
    def _probe(engine: Engine) -> tuple[set[str], str | None, str | None]:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            app = revision = None
            if "learnloop_meta" in tables:
                app = conn.execute(
                    sa.text("SELECT value FROM learnloop_meta WHERE key = 'app'")
                ).scalar()
                revision = MigrationContext.configure(conn).get_current_revision()
            return tables, app, revision

    def migrate(self) -> tuple[str | None, str]:
        """Check, then apply pending migrations. Returns (revision before, revision after)."""
        with ALEMBIC_LOCK:  # alembic's op/context proxies are process-global
            before = self.check()
            with self.engine.begin() as conn:
                cfg = self._alembic()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
            return before, self.head()

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head(self) -> str:
        head = ScriptDirectory.from_config(self._alembic()).get_current_head()
        assert head is not None
        return head

    def is_current(self) -> bool:
        return self.current_revision() == self.head()

    def _alembic(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def _where(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)


def _install_sqlite_hooks(engine: Engine, busy_timeout_ms: int, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
