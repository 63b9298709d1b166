"""Optuna's study storage inside learnloop's own database.

Optuna's tables (``studies``, ``trials``, ``trial_params``, …, ``version_info``) are created
beside learnloop's: in the SQLite file, or in the PostgreSQL schema the URL's ``search_path``
selects. None of their names clash with learnloop's tables. Both projects version their schema
with alembic, which keeps one ``alembic_version`` table per schema: that table stays
learnloop's. So the storage is opened only on a database learnloop has already migrated, with
Optuna's alembic check skipped; Optuna's own schema version is checked against its
``version_info`` row instead. Learnloop's ``Database.check()`` and later migrations are not
disturbed by the extra tables (they only look for ``learnloop_meta`` and ``alembic_version``).

SQLite: every Optuna transaction starts with ``BEGIN IMMEDIATE`` and waits up to
``busy_timeout_s`` for the file lock, so there is one writer at a time across threads and
processes and no transaction fails half-way with "database is locked". Optuna's trial
heartbeats stay off. PostgreSQL: Optuna locks the study row while numbering a new trial, so
threads and worker processes share a study safely.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import make_url

from learnloop.core.errors import StorageError

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

_OPEN_LOCK = threading.Lock()
"""Table creation is not atomic across threads of one process: open one storage at a time."""


def open_study_storage(database_url: str, *, busy_timeout_s: float = 30.0) -> RDBStorage:
    """An Optuna ``RDBStorage`` on learnloop's (already migrated) database.

    Raises ``StorageError`` when the database is not migrated yet (Optuna would otherwise stamp
    its own revision into ``alembic_version``) or when Optuna's tables were written by an
    incompatible Optuna version.
    """
    import optuna
    from optuna.storages import RDBStorage
    from optuna.storages._rdb import models

    url = make_url(database_url)
    is_sqlite = url.get_backend_name() == "sqlite"
    _require_migrated(database_url)
    kwargs: dict[str, Any] = {}
    if is_sqlite:
        kwargs["connect_args"] = {"timeout": busy_timeout_s, "check_same_thread": False}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=4, max_overflow=8)
    with _OPEN_LOCK:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            storage = RDBStorage(database_url, engine_kwargs=kwargs, skip_compatibility_check=True)
        except (sa.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
            raise StorageError(f"cannot open the study storage: {e}") from e
    if is_sqlite:
        _serialize_sqlite(storage.engine, busy_timeout_s)
    with storage.engine.connect() as conn:
        found = conn.execute(sa.text("SELECT schema_version FROM version_info")).scalar()
    if found != models.SCHEMA_VERSION:
        raise StorageError(
            f"Optuna tables have schema version {found}, this Optuna expects "
            f"{models.SCHEMA_VERSION}: install the Optuna version that created them"
        )
    return storage


def _require_migrated(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            revision = MigrationContext.configure(conn).get_current_revision()
    except sa.exc.SQLAlchemyError as e:
        raise StorageError(f"cannot read the database: {e}") from e
    finally:
        engine.dispose()
    if "learnloop_meta" not in tables or revision is None:
        raise StorageError("the database is not migrated: run `learnloop migrate` first")


def _serialize_sqlite(engine: sa.Engine, busy_timeout_s: float) -> None:
    """Make every transaction of ``engine`` a ``BEGIN IMMEDIATE`` one (SQLAlchemy's recipe)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while creating the tables predate the hooks
