"""marts.work_items: the queue mirrored whole into the DuckDB warehouse for BI (landing contract).

The queue's truth is the operational store; the mirror is a copy, replaced in one
transaction so a reader never sees half of it. DuckDB lets one process write, and a
close holds the file for minutes: then the mirror gives up at once and says so (False),
and the next call (the next sensor tick, the next `billops workitems` change) catches up.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
from sqlalchemy import Engine

from warehouse.schema import WORK_ITEMS_COLUMNS

MARTS_WORK_ITEMS_DDL = f"CREATE SCHEMA IF NOT EXISTS marts; CREATE OR REPLACE TABLE marts.work_items ({WORK_ITEMS_COLUMNS})"

_ARROW_SCHEMA = pa.schema([
    ("work_item_id", pa.string()), ("kind", pa.string()), ("rule", pa.string()), ("customer_id", pa.string()),
    ("invoice_number", pa.string()), ("charge_id", pa.string()), ("ticket_id", pa.string()),
    ("amount", pa.decimal128(18, 2)), ("proposed_due_date", pa.date32()), ("reason", pa.string()),
    ("evidence", pa.string()), ("status", pa.string()), ("requires_approval", pa.bool_()),
    ("created_at", pa.timestamp("us")), ("decided_at", pa.timestamp("us")), ("decided_by", pa.string()),
    ("dedup_key", pa.string()),
])


def mirror_work_items(warehouse_path: str | Path, engine: Engine | None = None) -> bool:
    """Replace marts.work_items with the queue; False (nothing written) when the warehouse is locked.

    The warehouse is opened before the queue is read, so the copy is never older than the
    moment this call got the lock.
    """
    from workitems.store import COLUMNS, list_items, queue_engine

    try:
        con = duckdb.connect(str(warehouse_path))
    except duckdb.IOException as exc:
        if "lock" not in str(exc):  # not a busy warehouse (e.g. not a DuckDB file): say so, loudly
            raise
        return False  # "Could not set lock on file": a close (or another mirror) holds it
    try:
        rows = list_items(engine or queue_engine())
        work_items = pa.Table.from_pylist([{c: r[c] for c in COLUMNS} for r in rows], schema=_ARROW_SCHEMA)
        con.execute("BEGIN TRANSACTION")
        con.execute(MARTS_WORK_ITEMS_DDL)
        con.register("work_items_from_queue", work_items)
        con.execute("INSERT INTO marts.work_items SELECT * REPLACE (CAST(evidence AS JSON) AS evidence) "
                    "FROM work_items_from_queue")
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
