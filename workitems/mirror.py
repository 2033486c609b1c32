"""marts.work_items: the queue copied whole into a DuckDB file for BI (docs/contract/published-interface.md).

The queue's truth is the operational store; `marts.work_items` is a copy, replaced whole.
Two files hold it, written by two kinds of process, and neither is ever a reader's business:

- the warehouse: only a close run writes it (the `marts/work_items` asset, workitems/raising.py),
  before the dbt marts that read `queue.work_items`;
- the published copy (BILLOPS_PUBLISHED/billops.duckdb): the close's publication, and
  `billops workitems approve|decline` through `publish_work_items`, which refreshes that one table
  of the copy without opening the warehouse (warehouse/published.py, `refresh_published`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
from sqlalchemy import Engine

from warehouse.schema import WORK_ITEMS_COLUMNS

TABLE = "work_items"
MARTS_WORK_ITEMS_DDL = f"CREATE SCHEMA IF NOT EXISTS marts; CREATE OR REPLACE TABLE marts.work_items ({WORK_ITEMS_COLUMNS})"

_ARROW_SCHEMA = pa.schema([
    ("work_item_id", pa.string()), ("kind", pa.string()), ("rule", pa.string()), ("customer_id", pa.string()),
    ("invoice_number", pa.string()), ("charge_id", pa.string()), ("ticket_id", pa.string()),
    ("amount", pa.decimal128(18, 2)), ("proposed_due_date", pa.date32()), ("reason", pa.string()),
    ("evidence", pa.string()), ("status", pa.string()), ("requires_approval", pa.bool_()),
    ("created_at", pa.timestamp("us")), ("decided_at", pa.timestamp("us")), ("decided_by", pa.string()),
    ("dedup_key", pa.string()),
])


def write_work_items(con: duckdb.DuckDBPyConnection, engine: Engine | None = None) -> int:
    """Replace `marts.work_items` of `con`'s default catalog with the queue as it is now; its row count.

    The caller owns the transaction (and the file: a close run's warehouse connection, or a
    publication's temp copy). The queue is read here, so the copy is as new as this call.
    """
    from workitems.store import COLUMNS, list_items, queue_engine

    rows = list_items(engine or queue_engine())
    work_items = pa.Table.from_pylist([{c: r[c] for c in COLUMNS} for r in rows], schema=_ARROW_SCHEMA)
    con.execute(MARTS_WORK_ITEMS_DDL)
    con.register("work_items_from_queue", work_items)
    try:
        con.execute("INSERT INTO marts.work_items SELECT * REPLACE (CAST(evidence AS JSON) AS evidence) "
                    "FROM work_items_from_queue")
    finally:
        con.unregister("work_items_from_queue")
    return len(rows)


def mirror_work_items(warehouse_path: str | Path, engine: Engine | None = None) -> bool:
    """Replace the warehouse's marts.work_items in one transaction; False (nothing written) when it is locked.

    For a close run's code and for tests that build a warehouse by hand: no reader, sensor or
    `billops workitems` command calls this (only a close run opens the warehouse, decisions #60).
    """
    try:
        con = duckdb.connect(str(warehouse_path))
    except duckdb.IOException as exc:
        if "lock" not in str(exc):  # not a busy warehouse (e.g. not a DuckDB file): say so, loudly
            raise
        return False  # "Could not set lock on file": a close holds it
    try:
        con.execute("BEGIN TRANSACTION")
        write_work_items(con, engine)
        con.execute("COMMIT")
        return True
    except Exception:
        try:
            con.rollback()
        except duckdb.Error:  # the failure came before BEGIN: nothing to undo
            pass
        raise
    finally:
        con.close()


def publish_work_items(published: str | Path, engine: Engine | None = None) -> dict[str, int]:
    """Refresh `marts.work_items` (DuckDB and Parquet) in the published copy from the queue, warehouse untouched."""
    from warehouse.published import refresh_published

    return refresh_published(published, {TABLE: lambda con: write_work_items(con, engine)})
