"""Landing-contract ingestion rules on crafted files: quarantine reasons, bad files, late files, idempotence."""

from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa

from tests.conftest import USAGE_SCHEMA, assert_closes_to_golden

UTC = timezone.utc


def _row(event_id, customer="c002", resource="r002", sku="droplet-s-2vcpu-4gb", start=None, end=None, quantity="1"):
    start = start or datetime(2026, 10, 20, 5, tzinfo=UTC)
    end = end or start.replace(hour=start.hour + 1)
    return {
        "event_id": event_id, "customer_id": customer, "resource_id": resource, "sku": sku, "region": "fra1",
        "start_time": start, "end_time": end, "quantity": None if quantity is None else Decimal(quantity),
    }


def _first_event(ws, relative):
    import pyarrow.parquet as pq

    return pq.read_table(ws.landing / relative).slice(0, 1).to_pylist()[0]


def test_every_quarantine_reason_is_recorded_with_file_and_row(golden):
    original = _first_event(golden, "usage/dt=2026-10-01/part-0.parquet")
    conflicting = {**original, "quantity": original["quantity"] + Decimal("5")}
    rows = [
        _row("bad-schema-1", customer=None),
        _row("bad-interval-1", end=datetime(2026, 10, 20, 5, tzinfo=UTC)),
        _row("bad-interval-2", end=datetime(2026, 10, 20, 7, tzinfo=UTC)),
        _row("negative-1", quantity="-1"),
        _row("unknown-customer-1", customer="c999"),
        _row("outside-month-1", start=datetime(2026, 9, 30, 23, tzinfo=UTC), end=datetime(2026, 10, 1, 0, tzinfo=UTC)),
        conflicting,
        _row("no-price-1", sku="gpu-h100-unpriced"),
    ]
    golden.write_usage("usage/dt=2026-10-20/part-7-bad.parquet", rows)
    result = golden.close("2026-10")
    # no_price blocks the month (controls C9): the close fails and names the check.
    assert result.returncode == 1
    assert "no_price" in result.stderr or "priced" in result.stderr
    quarantined = golden.query(
        "SELECT row_number, record_id, reason, detail, raw FROM audit.quarantine "
        "WHERE file = 'usage/dt=2026-10-20/part-7-bad.parquet' ORDER BY row_number"
    )
    assert [(r[0], r[1], r[2]) for r in quarantined] == [
        (1, "bad-schema-1", "bad_schema"),
        (2, "bad-interval-1", "bad_interval"),
        (3, "bad-interval-2", "bad_interval"),
        (4, "negative-1", "negative_quantity"),
        (5, "unknown-customer-1", "unknown_customer"),
        (6, "outside-month-1", "outside_month"),
        (7, original["event_id"], "conflicting_duplicate"),
        (8, "no-price-1", "no_price"),
    ]
    assert "customer_id is null" in quarantined[0][3]
    assert "usage/dt=2026-10-01/part-0.parquet row 1" in quarantined[6][3]
    assert '"event_id":"negative-1"' in quarantined[3][4]
    (read, accepted, redelivered, bad), = golden.query(
        "SELECT rows_read, accepted, redelivered, quarantined FROM audit.file_loads "
        "WHERE file = 'usage/dt=2026-10-20/part-7-bad.parquet'"
    )
    assert (read, accepted, redelivered, bad) == (8, 0, 0, 8)


def test_bad_rows_leave_the_invoices_untouched(golden):
    original = _first_event(golden, "usage/dt=2026-10-01/part-0.parquet")
    rows = [
        _row("bad-schema-2", quantity=None),
        _row("negative-2", quantity="-3"),
        _row("unknown-customer-2", customer="c404"),
        {**original, "region": "ams3"},
    ]
    golden.write_usage("usage/dt=2026-10-21/part-8-bad.parquet", rows)
    result = golden.close("2026-10")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_closes_to_golden(golden)
    reasons = golden.query("SELECT reason, count(*) FROM audit.quarantine GROUP BY 1 ORDER BY 1")
    assert reasons == [("bad_schema", 1), ("conflicting_duplicate", 1), ("negative_quantity", 1), ("unknown_customer", 1)]


def test_mistyped_column_is_bad_schema_per_row(golden):
    schema = pa.schema([f if f.name != "quantity" else pa.field("quantity", pa.string()) for f in
                        USAGE_SCHEMA])
    rows = [{**_row("typed-1"), "quantity": "lots"}, {**_row("typed-2"), "quantity": "0.5"}]
    golden.write_usage("usage/dt=2026-10-22/part-9-strings.parquet", rows, schema=schema)
    assert golden.close("2026-10").returncode == 0
    quarantined = golden.query("SELECT record_id, reason, detail FROM audit.quarantine")
    assert quarantined == [("typed-1", "bad_schema", "quantity is not a DECIMAL(18,6): lots")]
    (hours,), = golden.query("SELECT quantity FROM marts.invoice_lines WHERE resource_id = 'r002'")
    assert hours == Decimal("253.000000")  # 252.5 h + the well-typed 0.5 h row


def test_truncated_file_fails_loudly_and_the_rerun_completes(golden):
    good = golden.landing / "usage/dt=2026-10-20/part-0.parquet"
    truncated = golden.landing / "usage/dt=2026-10-20/part-5.parquet"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    result = golden.close("2026-10")
    assert result.returncode == 1
    assert "usage/dt=2026-10-20/part-5.parquet" in result.stderr
    # The other 32 files loaded; the bad one was neither loaded nor recorded in the ledger.
    assert golden.query("SELECT count(*) FROM audit.file_loads")[0][0] == 32
    assert golden.query("SELECT count(*) FROM audit.landed_files WHERE path LIKE '%part-5%'")[0][0] == 0
    truncated.unlink()
    result = golden.close("2026-10")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_closes_to_golden(golden)
    assert golden.query("SELECT count(*), count(DISTINCT path) FROM audit.landed_files") == [(32, 32)]


def test_late_file_reclose_equals_one_close_over_all_files(golden):
    late = golden.landing / "usage/dt=2026-10-31/part-0.parquet"
    held_back = late.read_bytes()
    late.unlink()
    assert golden.close("2026-10").returncode == 0
    (before,), = golden.query("SELECT sum(subtotal) FROM marts.invoices")
    late.write_bytes(held_back)
    result = golden.close("2026-10")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_closes_to_golden(golden)
    (after,), = golden.query("SELECT sum(subtotal) FROM marts.invoices")
    assert after > before
    assert golden.query("SELECT count(*) FROM audit.landed_files") == [(32,)]


def test_reclose_is_idempotent(golden):
    assert golden.close("2026-10").returncode == 0
    snapshot = lambda: (  # noqa: E731
        golden.query("SELECT * EXCLUDE (status) FROM marts.invoices ORDER BY invoice_number"),
        golden.query("SELECT * FROM marts.invoice_lines ORDER BY invoice_number, line_number"),
        golden.query("SELECT * FROM marts.credit_ledger ORDER BY grant_id"),
        golden.query("SELECT path, sha256, first_seen_at FROM audit.landed_files ORDER BY path"),
        golden.query("SELECT count(*) FROM audit.redeliveries"),
    )
    first = snapshot()
    assert golden.close("2026-10").returncode == 0
    assert snapshot() == first


def test_changed_file_under_the_same_path_is_an_error(golden):
    assert golden.close("2026-10").returncode == 0
    target = golden.landing / "usage/dt=2026-10-03/part-0.parquet"
    import pyarrow.parquet as pq

    table = pq.read_table(target)
    pq.write_table(table.slice(0, table.num_rows - 1), target)
    result = golden.close("2026-10")
    assert result.returncode == 1
    assert "usage/dt=2026-10-03/part-0.parquet" in result.stderr
    assert "content changed" in result.stderr
