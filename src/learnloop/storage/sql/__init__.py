"""SQL backends (SQLite by default, PostgreSQL by URL) with Alembic migrations."""
