"""`marts.alerts`: the alert store copied whole for BI, into the published copy and, by a close, the warehouse.

The store (alerts/store.py, in the operational store) is the truth. Only a close run opens the
warehouse, even to read (decisions #60), so the alert sensors never touch it:

- after a tick, `publish_alerts` refreshes `marts.alerts` of the published copy
  (BILLOPS_PUBLISHED/billops.duckdb and its Parquet) from the store when the copy differs,
  through `warehouse.published.refresh_published`: the warehouse is not opened;
- a close's publication step (assets/publication.py) writes the warehouse's `marts.alerts`
  with `write_alerts` and publishes it, so the table exists, empty, from the first close on.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from alerts import store

logger = logging.getLogger("billops.alerts")

TABLE = "alerts"
MARTS_ALERTS_DDL = """
CREATE OR REPLACE TABLE marts.alerts (
    alert_id      VARCHAR NOT NULL PRIMARY KEY,
    dedup_key     VARCHAR NOT NULL UNIQUE,
    kind          VARCHAR NOT NULL CHECK (kind IN ('run_failed', 'check_warning')),
    billing_month DATE,
    run_id        VARCHAR,
    text          VARCHAR NOT NULL,
    channels      VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    sent_at       TIMESTAMP,
    attempts      INTEGER NOT NULL,
    last_error    VARCHAR
)"""

COLUMNS = ("alert_id", "dedup_key", "kind", "billing_month", "run_id", "text", "channels", "created_at", "sent_at", "attempts", "last_error")


def _rows() -> list[tuple]:
    return sorted(tuple(getattr(alert, column) for column in COLUMNS) for alert in store.all_alerts())


def write_alerts(connection: duckdb.DuckDBPyConnection) -> int:
    """Replace `marts.alerts` of the connection's default catalog with the store, inside the caller's
    transaction; its row count (0 still creates the table with its columns)."""
    rows = _rows()
    connection.execute("CREATE SCHEMA IF NOT EXISTS marts")
    connection.execute(MARTS_ALERTS_DDL)
    if rows:
        connection.executemany(f"INSERT INTO marts.alerts VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    return len(rows)


def _published_rows(copy: Path) -> list[tuple] | None:
    """The rows of `marts.alerts` in the published copy; None when there is no copy or no such table."""
    if not copy.exists():
        return None
    try:
        connection = duckdb.connect(str(copy), read_only=True)
    except duckdb.Error as error:  # a copy being swapped in, or unreadable: refresh it
        logger.info("the published copy could not be read (%s): marts.alerts is refreshed", error)
        return None
    try:
        if not connection.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts' "
                                  "AND table_name = 'alerts'").fetchone()[0]:
            return None
        return sorted(connection.execute(f"SELECT {', '.join(COLUMNS)} FROM marts.alerts").fetchall())
    finally:
        connection.close()


def publish_alerts(published: str | Path) -> str:
    """Refresh the published copy's marts.alerts when it differs from the store; what was done, in words.

    The copy is only read (as any BI reader reads it) to compare; an unchanged store costs no
    publication. No alert and no published copy yet: nothing is created.
    """
    from warehouse.published import DUCKDB_FILE, refresh_published

    published = Path(published)
    rows = _rows()
    shown = _published_rows(published / DUCKDB_FILE)
    if shown == rows or (shown is None and not rows and not (published / DUCKDB_FILE).exists()):
        return "published alerts up to date"
    refresh_published(published, {TABLE: write_alerts})
    return "alerts published"
