"""Usage ingestion rules (assets/usage.py) on crafted Parquet files, in-process on a real DuckDB file.

Figures come from the fixture itself (Parquet footers read by the test), never
from a previous run's output.
"""

import shutil
from datetime import date, datetime, timezone
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from quality.ingestion_checks import rows_reconcile
from quality.usage_checks import USAGE_KEY
from tests.conftest import GOLDEN, USAGE_SCHEMA, Workspace
from tests.ingestion.conftest import (
    as_json, checks, failure_message, file_loads, landed_usage, materialize, metadata, quarantined, usage_row,
    usage_snapshot,
)

UTC = timezone.utc
BAD_FILE = "usage/dt=2026-10-20/part-7-bad.parquet"


def _first_record(ws, relative: str) -> dict:
    return pq.read_table(ws.landing / relative).slice(0, 1).to_pylist()[0]


def test_every_quarantine_reason_with_file_row_detail_and_raw(golden):
    original = _first_record(golden, "usage/dt=2026-10-01/part-0.parquet")
    rows = [
        usage_row("bad-schema-1", customer=None),
        usage_row("bad-interval-1", end=datetime(2026, 10, 20, 5, tzinfo=UTC)),
        usage_row("bad-interval-2", end=datetime(2026, 10, 20, 7, tzinfo=UTC)),
        usage_row("negative-1", quantity="-1"),
        usage_row("unknown-customer-1", customer="c999"),
        usage_row("outside-month-1", start=datetime(2026, 9, 30, 23, tzinfo=UTC)),
        {**original, "quantity": original["quantity"] + Decimal("5")},
        usage_row("no-price-1", sku="gpu-h100-unpriced"),
    ]
    golden.write_usage(BAD_FILE, rows)
    result = materialize(golden)
    got = [r for r in quarantined(golden, "usage") if r[0] == BAD_FILE]
    assert [(r[1], r[2], r[3], r[4]) for r in got] == [
        (1, "bad-schema-1", "bad_schema", "customer_id is null"),
        (2, "bad-interval-1", "bad_interval", "end_time 2026-10-20 05:00:00 is not after start_time 2026-10-20 05:00:00"),
        (3, "bad-interval-2", "bad_interval", "interval of 02:00:00 is longer than one hour"),
        (4, "negative-1", "negative_quantity", "quantity -1.000000 is negative"),
        (5, "unknown-customer-1", "unknown_customer", "customer c999 is not in reference/customers.csv"),
        (6, "outside-month-1", "outside_month", "start_time 2026-09-30 23:00:00 is outside the folder's month 2026-10"),
        (7, original["event_id"], "conflicting_duplicate",
         f"event_id {original['event_id']} first delivered in usage/dt=2026-10-01/part-0.parquet row 1 with different content"),
        (8, "no-price-1", "no_price", "no price row of sku gpu-h100-unpriced in effect on 2026-10-20"),
    ]
    for landed, (*_, raw) in zip(rows, got):  # raw is the record as landed
        record = as_json(raw)
        assert {k: record[k] for k in ("event_id", "customer_id", "resource_id", "sku", "region")} == {
            k: landed[k] for k in ("event_id", "customer_id", "resource_id", "sku", "region")}
        assert record["quantity"] == landed["quantity"]

    # read = accepted + re-delivered + quarantined, per file, with read taken from the footers
    landed = {**landed_usage(golden)}
    loads = file_loads(golden, "usage")
    assert {f: v[0] for f, v in loads.items()} == landed
    assert loads[BAD_FILE] == (len(rows), 0, 0, len(rows))
    redelivery = "usage/dt=2026-10-15/part-1-redelivery.parquet"  # the golden case delivers 2026-10-15 twice
    assert loads[redelivery] == (landed[redelivery], 0, landed[redelivery], 0)
    assert all(read == accepted + redelivered + bad for read, accepted, redelivered, bad in loads.values())
    assert golden.query("SELECT count(*) FROM raw.usage_month WHERE source_file = ?", [BAD_FILE]) == [(0,)]
    assert golden.query("SELECT source_file, row_number, quantity FROM raw.usage_month WHERE event_id = ?",
                        [original["event_id"]]) == [("usage/dt=2026-10-01/part-0.parquet", 1, original["quantity"])]
    accepted = sum(v[1] for v in loads.values())
    assert golden.query("SELECT count(*) FROM raw.usage_month") == [(accepted,)]
    assert accepted == sum(landed.values()) - landed[redelivery] - len(rows)
    meta = metadata(result, USAGE_KEY)
    assert (meta["rows_read"], meta["accepted"], meta["redelivered"], meta["quarantined"]) == (
        sum(landed.values()), accepted, landed[redelivery], len(rows))
    assert meta["quarantined_by_reason"] == {"bad_interval": 2, "bad_schema": 1, "conflicting_duplicate": 1,
                                             "negative_quantity": 1, "no_price": 1, "outside_month": 1, "unknown_customer": 1}
    # no_price blocks the month (C9), naming the SKU; the reconciliation holds
    assert checks(result) == {
        "usage_rows_reconcile": (True, f"all {len(landed)} files reconcile"),
        "C9_usage_is_priced": (False, "C9 failed: 1 usage rows quarantined as no_price (SKUs: gpu-h100-unpriced)"),
    }


def test_mistyped_column_is_bad_schema_per_row_and_good_values_load(golden):
    schema = pa.schema([f if f.name != "quantity" else pa.field("quantity", pa.string()) for f in USAGE_SCHEMA])
    rows = [{**usage_row("typed-1"), "quantity": "lots"}, {**usage_row("typed-2"), "quantity": "0.5"}]
    golden.write_usage("usage/dt=2026-10-22/part-9-strings.parquet", rows, schema=schema)
    result = materialize(golden)
    assert result.success
    assert golden.query("SELECT record_id, reason, detail FROM audit.quarantine") == [
        ("typed-1", "bad_schema", "quantity is not a DECIMAL(18,6): lots")]
    assert golden.query("SELECT quantity FROM raw.usage_month WHERE event_id = 'typed-2'") == [(Decimal("0.500000"),)]
    assert file_loads(golden, "usage")["usage/dt=2026-10-22/part-9-strings.parquet"] == (2, 1, 0, 1)


def test_decimal_file_never_passes_through_a_double_and_a_double_file_rounds_half_up(golden):
    """Finding 7: one union_by_name read over a DECIMAL and a DOUBLE file reads both as DOUBLE."""
    decimal_file = golden.write_usage("usage/dt=2026-10-21/part-7-decimal.parquet",
                                      [usage_row("dec-1", quantity="123456789012.345678"),
                                       usage_row("neg-dec", quantity="-123456789012.345678")])
    double_schema = pa.schema([f if f.name != "quantity" else pa.field("quantity", pa.float64()) for f in USAGE_SCHEMA])
    doubles = {"dbl-1": 2.675, "dbl-2": 5e-07, "dbl-3": 0.1 + 0.2, "dbl-4": 1.0000015, "dbl-neg": -0.5}
    golden.write_usage("usage/dt=2026-10-21/part-8-double.parquet",
                       [{**usage_row(k), "quantity": v} for k, v in doubles.items()], schema=double_schema)
    (naive,), = duckdb.sql(  # what the month read as one union_by_name scan gave
        f"SELECT quantity FROM read_parquet(['{decimal_file}', '{decimal_file.with_name('part-8-double.parquet')}'], "
        "union_by_name = true) WHERE event_id = 'dec-1'").fetchall()
    assert naive != Decimal("123456789012.345678")
    assert materialize(golden).success
    got = dict(golden.query("SELECT event_id, quantity FROM raw.usage_month WHERE event_id LIKE 'd%' ORDER BY 1"))
    assert got == {"dec-1": Decimal("123456789012.345678"), "dbl-1": Decimal("2.675000"), "dbl-2": Decimal("0.000001"),
                   "dbl-3": Decimal("0.300000"), "dbl-4": Decimal("1.000002")}
    assert golden.query("SELECT data_type FROM information_schema.columns WHERE table_schema = 'raw' "
                        "AND table_name = 'usage_month' AND column_name = 'quantity'") == [("DECIMAL(18,6)",)]
    # rejected rows keep their landed values, each in its own type
    raws = {r[0]: (r[1], r[2], as_json(r[3])["quantity"]) for r in golden.query(
        "SELECT record_id, reason, detail, raw FROM audit.quarantine WHERE record_id LIKE '%neg%'")}
    assert raws == {"dbl-neg": ("negative_quantity", "quantity -0.500000 is negative", Decimal("-0.5")),
                    "neg-dec": ("negative_quantity", "quantity -123456789012.345678 is negative",
                                Decimal("-123456789012.345678"))}


def test_truncated_file_is_named_the_rest_loads_and_the_rerun_is_clean_once_replaced(golden):
    good = golden.landing / "usage/dt=2026-10-20/part-0.parquet"
    truncated = golden.landing / "usage/dt=2026-10-20/part-5.parquet"
    others = landed_usage(golden)
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    result = materialize(golden)
    assert not result.success
    message = failure_message(result)
    assert "usage: 1 file(s) not loaded, the month is incomplete: usage/dt=2026-10-20/part-5.parquet: unreadable Parquet" in message
    assert {f: v[0] for f, v in file_loads(golden, "usage").items()} == others
    assert golden.query("SELECT count(*) FROM audit.landed_files WHERE path LIKE '%part-5%'") == [(0,)]
    assert golden.query("SELECT count(*) FROM raw.usage_month") == [(sum(others.values()) - sum(
        n for f, n in others.items() if "redelivery" in f),)]

    golden.write_usage("usage/dt=2026-10-20/part-5.parquet", [usage_row("late-1"), usage_row("late-2")])
    assert materialize(golden).success
    assert file_loads(golden, "usage")["usage/dt=2026-10-20/part-5.parquet"] == (2, 2, 0, 0)
    assert golden.query("SELECT count(*), count(DISTINCT path) FROM audit.landed_files") == [(len(others) + 1,) * 2]


def test_late_file_rerun_equals_one_run_over_all_files(golden, tmp_path):
    late = golden.landing / "usage/dt=2026-10-31/part-0.parquet"
    held_back = late.read_bytes()
    late.unlink()
    assert materialize(golden).success
    before = golden.query("SELECT count(*) FROM raw.usage_month")[0][0]
    late.write_bytes(held_back)
    assert materialize(golden).success
    assert golden.query("SELECT count(*) FROM raw.usage_month")[0][0] == before + pq.ParquetFile(late).metadata.num_rows

    once = Workspace(tmp_path / "once", tmp_path / "once" / "landing", tmp_path / "once" / "w.duckdb", tmp_path / "once" / "dh")
    shutil.copytree(GOLDEN / "landing", once.landing)
    assert materialize(once).success
    assert usage_snapshot(golden) == usage_snapshot(once)


def test_rerun_is_idempotent(golden):
    assert materialize(golden).success
    first = usage_snapshot(golden), golden.query("SELECT path, first_seen_at FROM audit.landed_files ORDER BY 1")
    assert materialize(golden).success
    assert (usage_snapshot(golden), golden.query("SELECT path, first_seen_at FROM audit.landed_files ORDER BY 1")) == first


def test_rows_reconcile_passes_on_a_clean_load_and_fails_on_a_tampered_file_load(golden):
    golden.write_usage(BAD_FILE, [usage_row("negative-1", quantity="-1"), usage_row("ok-1")])
    assert materialize(golden).success
    con = duckdb.connect(str(golden.warehouse))
    try:
        files = len(landed_usage(golden))
        passing = rows_reconcile(con, USAGE_KEY, "usage", "raw.usage_month", date(2026, 10, 1))
        assert (passing.passed, passing.description) == (True, f"all {files} files reconcile")
        # the ledger of counts says one row fewer was accepted than dbt can see
        con.execute("UPDATE audit.file_loads SET accepted = accepted - 1, quarantined = quarantined + 1 WHERE file = ?", [BAD_FILE])
        failing = rows_reconcile(con, USAGE_KEY, "usage", "raw.usage_month", date(2026, 10, 1))
        assert (failing.passed, failing.description) == (False, f"1 of {files} files do not reconcile")
        assert failing.metadata["failing_files"].value == [BAD_FILE]
        # read no longer adds up: accepted + re-delivered + quarantined exceeds the rows read
        con.execute("UPDATE audit.file_loads SET accepted = accepted + 1 WHERE file = ?", [BAD_FILE])
        assert rows_reconcile(con, USAGE_KEY, "usage", "raw.usage_month", date(2026, 10, 1)).passed is False
    finally:
        con.close()
