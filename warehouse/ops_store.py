"""The operational store: small, concurrent writes (work items, alerts sent) beside the warehouse.

DuckDB allows one writing process and a close holds the warehouse for minutes,
so what must be written while a close runs (the billing team's decisions, the
record of alerts sent) lives here: SQLite in WAL mode by default, or any
SQLAlchemy URL in `BILLOPS_QUEUE_URL` (PostgreSQL in production).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event


def ops_store_url() -> str:
    """BILLOPS_QUEUE_URL, or a SQLite file `ops.sqlite` beside the warehouse."""
    url = os.environ.get("BILLOPS_QUEUE_URL")
    if url:
        return url
    warehouse = Path(os.environ.get("BILLOPS_WAREHOUSE", "data/warehouse.duckdb")).expanduser().resolve()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{warehouse.parent / 'ops.sqlite'}"


def ops_engine(url: str | None = None) -> Engine:
    """An engine on the store; SQLite gets WAL (readers never block the writer) and a busy timeout."""
    url = url or ops_store_url()
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
