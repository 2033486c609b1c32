"""In-process ingestion: `dg.materialize` of the landing assets on a real DuckDB file, no dbt.

Each test gets the golden landing zone copied to a tmp dir (`golden` in
tests/conftest.py) and materializes only the assets it judges, so a rule is
tested in about a second instead of a full `billops close`.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import dagster as dg
import pyarrow.parquet as pq

from assets.payments import payments
from assets.reference import reference_snapshots
from assets.tickets import tickets
from assets.usage import usage
from warehouse.resource import WarehouseResource

OCTOBER = "2026-10-01"


def materialize(ws, *assets, partition: str = OCTOBER) -> dg.ExecuteInProcessResult:
    """The reference snapshots plus `assets` (default: usage) for one month, on the workspace's warehouse."""
    warehouse = WarehouseResource(path=str(ws.warehouse), landing=str(ws.landing))
    return dg.materialize([reference_snapshots, *(assets or (usage,))], partition_key=partition,
                          resources={"warehouse": warehouse}, raise_on_error=False)


def materialize_jsonl(ws) -> dg.ExecuteInProcessResult:
    return materialize(ws, tickets, payments)


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The error text of the one failed step."""
    (failure,) = result.get_step_failure_events()
    return failure.event_specific_data.error.to_string()


def metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str]]:
    return {e.check_name: (e.passed, e.description) for e in result.get_asset_check_evaluations()}


def file_loads(ws, source: str, month: str = OCTOBER) -> dict[str, tuple]:
    """file → (read, accepted, re-delivered, quarantined) this close recorded."""
    return {r[0]: r[1:] for r in ws.query(
        "SELECT file, rows_read, accepted, redelivered, quarantined FROM audit.file_loads "
        "WHERE source = ? AND billing_month = ?", [source, date.fromisoformat(month)])}


def quarantined(ws, source: str) -> list[tuple]:
    """(file, row, record id, reason, detail, raw) in file and row order."""
    return ws.query("SELECT file, row_number, record_id, reason, detail, raw FROM audit.quarantine "
                    "WHERE source = ? ORDER BY file, row_number", [source])


def landed_usage(ws, month: str = "2026-10") -> dict[str, int]:
    """Every usage file of the month → its row count, read from the Parquet footers by the test itself."""
    return {p.relative_to(ws.landing).as_posix(): pq.ParquetFile(p).metadata.num_rows
            for p in sorted((ws.landing / "usage").glob(f"dt={month}-*/*.parquet"))}


def issue_invoice(ws, number: str, customer: str = "c002", month: date = date(2026, 9, 1)) -> None:
    """An issued invoice as the issuing step would have appended it to audit.issued_invoices."""
    warehouse = WarehouseResource(path=str(ws.warehouse), landing=str(ws.landing))
    with warehouse.connect() as con:  # bootstraps the audit tables on a fresh warehouse
        con.execute(
            """INSERT INTO audit.issued_invoices VALUES (?, ?, ?, ?, ?, 'USD', 12.34, 0, 12.34, NULL, 0, 0, 12.34, false,
                 TIMESTAMP '2026-10-01 06:00:00', 'test-run')""",
            [number, customer, month, date(2026, 10, 1), date(2026, 10, 31)],
        )


def as_json(raw: str) -> dict:
    """A quarantined row's raw text as the values landed (numbers exact)."""
    return json.loads(raw, parse_float=Decimal)


def usage_row(event_id, customer="c002", resource="r002", sku="droplet-s-2vcpu-4gb", start=None, end=None, quantity="1"):
    """One contract-shaped usage record (c002's droplet of the golden case unless told otherwise)."""
    start = start or datetime(2026, 10, 20, 5, tzinfo=timezone.utc)
    end = end or start + timedelta(hours=1)
    return {"event_id": event_id, "customer_id": customer, "resource_id": resource, "sku": sku, "region": "fra1",
            "start_time": start, "end_time": end, "quantity": None if quantity is None else Decimal(quantity)}


def usage_snapshot(ws) -> tuple:
    """Everything usage ingestion leaves for October, less load times (which differ between warehouses)."""
    return (
        ws.query("SELECT * EXCLUDE (loaded_at) FROM raw.usage_month ORDER BY source_file, row_number"),
        ws.query("SELECT * EXCLUDE (loaded_at) FROM audit.quarantine WHERE source = 'usage' ORDER BY ALL"),
        ws.query("SELECT * EXCLUDE (loaded_at) FROM audit.redeliveries WHERE source = 'usage' ORDER BY ALL"),
        ws.query("SELECT * EXCLUDE (loaded_at) FROM audit.file_loads WHERE source = 'usage' ORDER BY ALL"),
        ws.query("SELECT path, size_bytes, sha256 FROM audit.landed_files WHERE source = 'usage' ORDER BY path"),
    )
