"""The operational store: small, concurrent writes (work items, alerts sent) beside the warehouse.

DuckDB allows one writing process and a close holds the warehouse for minutes,
so what must be written while a close runs (the billing team's decisions, the
record of alerts sent) lives here: SQLite in WAL mode by default, or any
SQLAlchemy URL in `BILLOPS_QUEUE_URL` (PostgreSQL in production); config/settings.py
`ops_store_url` says which.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from config.settings import ops_store_url


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for an in-memory database or another backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def ops_engine(url: str | None = None, create: bool = True) -> Engine:
    """An engine on the store; SQLite gets WAL (readers never block the writer) and a busy timeout.

    `create` makes the folder of a SQLite file, so the writer that first needs the store (a sensor,
    a close) can create it there; a reader passes False and checks that the store exists first.
    """
    url = url or ops_store_url()
    path = sqlite_file(url)
    if create and path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # noqa: ANN001 - DB-API connection
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine
