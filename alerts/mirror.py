"""Copy the alert store into `marts.alerts`, only when the warehouse is free.

DuckDB allows one writing process and a close holds the warehouse for minutes.
The sensor never waits for it: if `duckdb.connect` cannot take the lock it
skips and the next tick tries again. It opens the file only when the store
changed since the last copy (a fingerprint kept in the store), so it holds the
lock for a few milliseconds now and then, not every 30 seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import duckdb
from sqlalchemy import select

from alerts import store

logger = logging.getLogger("billops.alerts")

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


def create_alerts_table_if_missing(connection: duckdb.DuckDBPyConnection) -> None:
    """`marts.alerts`, empty with the mirror's columns, when absent: BI finds it from the first close on
    (the close's publication step calls this), not only once the sensor first mirrors an alert."""
    connection.execute("CREATE SCHEMA IF NOT EXISTS marts")
    connection.execute(MARTS_ALERTS_DDL.replace("CREATE OR REPLACE TABLE", "CREATE TABLE IF NOT EXISTS", 1))


def _rows() -> list[tuple]:
    return [tuple(getattr(alert, column) for column in COLUMNS) for alert in store.all_alerts()]


def _fingerprint(rows: list[tuple], warehouse: Path) -> str:
    """The store's contents and the file's identity: a recreated warehouse is mirrored again."""
    identity = os.stat(warehouse)
    digest = hashlib.sha256(repr((rows, identity.st_dev, identity.st_ino)).encode())
    return digest.hexdigest()


def _last_fingerprint(warehouse: Path) -> str | None:
    with store.engine().connect() as connection:
        return connection.execute(
            select(store.alert_mirrors.c.fingerprint).where(store.alert_mirrors.c.warehouse == str(warehouse))
        ).scalar()


def _remember(warehouse: Path, fingerprint: str) -> None:
    with store.engine().begin() as connection:
        table = store.alert_mirrors
        connection.execute(table.delete().where(table.c.warehouse == str(warehouse)))
        connection.execute(table.insert().values(warehouse=str(warehouse), fingerprint=fingerprint, mirrored_at=store.utc_now()))


def mirror_alerts(warehouse_path: str | os.PathLike) -> bool:
    """Replace marts.alerts with the store, in one transaction; False if the warehouse is busy (retry later)."""
    warehouse = Path(warehouse_path).expanduser().resolve()
    rows = _rows()
    if not warehouse.exists():
        if not rows:
            return True  # nothing to show and no warehouse yet: do not create one
    elif _last_fingerprint(warehouse) == _fingerprint(rows, warehouse):
        return True
    try:
        connection = duckdb.connect(str(warehouse))
    except duckdb.IOException as error:
        logger.info("marts.alerts not mirrored, the warehouse is busy (next tick retries): %s", error)
        return False
    try:
        connection.execute("BEGIN TRANSACTION")
        connection.execute("CREATE SCHEMA IF NOT EXISTS marts")
        connection.execute(MARTS_ALERTS_DDL)
        if rows:
            connection.executemany(f"INSERT INTO marts.alerts VALUES ({', '.join('?' * len(COLUMNS))})", rows)
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()
    _remember(warehouse, _fingerprint(rows, warehouse))
    return True
