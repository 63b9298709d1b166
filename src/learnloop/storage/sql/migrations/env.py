"""Alembic environment: runs on the connection learnloop hands over (never reads a URL itself)."""

from alembic import context

from learnloop.storage.sql.tables import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - learnloop always passes a connection
    raise RuntimeError("run migrations through `learnloop migrate`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
