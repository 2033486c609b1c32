"""A day's ingestion updates the month by difference, and ends where one ingestion of every folder ends.

A small generated month (12 customers, the generator's anomalies) gets three hand-made files:
on day 22 `zz-dup.parquet` in folder 22, repeating two records of folder 05 (one identical: a
re-delivery; one with a quantity one unit higher: a conflicting duplicate across folders); after
day 20 `zz-late.parquet` in folder 03, repeating records accepted from folders 10 and 15 (three
identical, three with a different quantity: the delivery that stands moves to folder 03), one of
folder 02 and a new id. The month is ingested folder by folder through `ingest_day` (what the daily
run executes), and at chosen days compared with one ingestion of every folder landed so far
(`ingest_folders` of them all at once, what a close from nothing does), in process, no Dagster:
accepted aggregates, raw.usage_daily, quarantine, re-deliveries, per-file loads and the index.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from assets.reference import load_reference_tables
from assets.usage_day import RULE_REFERENCES, ingest_day
from assets.usage_folder import ingest_folders, refresh_usage_daily
from warehouse.schema import bootstrap

MONTH = date(2026, 10, 1)
LATE = "usage/dt=2026-10-03/zz-late.parquet"
DUP = "usage/dt=2026-10-22/zz-dup.parquet"
CHECKPOINTS = {date(2026, 10, 10), date(2026, 10, 20), date(2026, 10, 31)}

STATE = {
    "accepted": "SELECT * EXCLUDE (billing_month) FROM raw.usage_accepted_daily ORDER BY ALL",
    "usage_daily": "SELECT * FROM raw.usage_daily ORDER BY ALL",
    "quarantine": "SELECT * EXCLUDE (loaded_at) FROM audit.quarantine WHERE source = 'usage' ORDER BY ALL",
    "redeliveries": "SELECT * EXCLUDE (loaded_at) FROM audit.redeliveries ORDER BY ALL",
    "file_loads": "SELECT * EXCLUDE (loaded_at) FROM audit.file_loads WHERE source = 'usage' ORDER BY ALL",
    "index": "SELECT billing_month, event_hash FROM raw.usage_event_index ORDER BY ALL",
}


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    bootstrap(con)
    return con


def _first_file(landing: Path, day: str) -> pa.Table:
    (first, *_) = sorted((landing / "usage" / f"dt=2026-10-{day}").glob("*.parquet"))
    return pq.read_table(first)


def _plus_one(table: pa.Table) -> pa.Table:
    changed = pc.add(table["quantity"].cast(pa.float64()), 1.0).cast(table.schema.field("quantity").type)
    return table.set_column(table.schema.get_field_index("quantity"), "quantity", changed)


def _dup_file(source: Path) -> pa.Table:
    """Folder 05's rows 8 (identical) and 9 (quantity + 1), again in folder 22."""
    rows = _first_file(source, "05").slice(7, 2)
    return pa.concat_tables([rows.slice(0, 1), _plus_one(rows.slice(1, 1))])


def _late_file(source: Path) -> pa.Table:
    """Folder 10's rows 6-9 and folder 15's rows 6-7 (the first three identical, the next three + 1), folder
    02's row 6 identical, and one new id."""
    repeats = pa.concat_tables([_first_file(source, "10").slice(5, 4), _first_file(source, "15").slice(5, 2)])
    new = _first_file(source, "03").slice(0, 1)
    new = new.set_column(new.schema.get_field_index("event_id"), "event_id", pa.array(["late-new-1"], pa.string()))
    return pa.concat_tables([repeats.slice(0, 3), _plus_one(repeats.slice(3, 3)),
                             _first_file(source, "02").slice(5, 1), new])


def _state(con) -> dict[str, list]:
    return {name: con.execute(sql).fetchall() for name, sql in STATE.items()}


def _at_once(landing: Path, root: Path) -> dict[str, list]:
    """One ingestion of every folder of a copy of `landing` (what a close from nothing ingests)."""
    copy = root / "landing"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(landing, copy)
    con = _connect(root / "warehouse.duckdb")
    load_reference_tables(con, copy, RULE_REFERENCES, datetime.now(timezone.utc).replace(tzinfo=None))
    batch = ingest_folders(con, copy, MONTH)
    refresh_usage_daily(con, MONTH, whole=True)
    state = _state(con)
    con.close()
    return state | {"folders": len(batch.days)}


def _accepted_ids_hashes(con, landing: Path) -> set[int]:
    """Independently of the folder tables: the hash of every event id landed with a row not quarantined."""
    files = sorted(str(p) for p in (landing / "usage").glob("dt=*/*.parquet"))
    return {h for (h,) in con.execute(f"""
        SELECT DISTINCT hash(event_id, reverse(event_id)) FROM (
          SELECT substr(filename, {len(str(landing)) + 2}) AS file, file_row_number + 1 AS row_number, event_id
          FROM read_parquet({files!r}, filename = true, file_row_number = true, union_by_name = true)) p
        WHERE event_id IS NOT NULL AND NOT EXISTS (
          SELECT 1 FROM audit.quarantine q WHERE q.source = 'usage' AND q.file = p.file AND q.row_number = p.row_number)
    """).fetchall()}


@pytest.fixture(scope="module")
def days(tmp_path_factory) -> dict:
    from synthetic.generate import generate

    root = tmp_path_factory.mktemp("day-increments")
    source = root / "source"
    generate("2026-10", 12, 23, source, anomalies="default", progress=False)
    landing = root / "daily" / "landing"
    landing.mkdir(parents=True)
    shutil.copytree(source / "reference", landing / "reference")
    con = _connect(root / "daily" / "warehouse.duckdb")
    out: dict = {"checkpoints": {}, "index_checks": []}
    for folder in sorted((source / "usage").glob("dt=2026-10-*")):
        day = date.fromisoformat(folder.name[3:])
        shutil.copytree(folder, landing / "usage" / folder.name)
        if day == date(2026, 10, 22):
            pq.write_table(_dup_file(source), landing / DUP)
        ingest_day(con, landing, day)
        if day == date(2026, 10, 20):
            out["before_late"] = _state(con)
            late = _late_file(source)
            out["late_new_quantity"] = Decimal(str(late["quantity"][-1].as_py()))
            pq.write_table(late, landing / LATE)
            ingest_day(con, landing, date(2026, 10, 3))
        index = [h for (h,) in con.execute("SELECT event_hash FROM raw.usage_event_index WHERE billing_month = ?",
                                           [MONTH]).fetchall()]
        out["index_checks"].append((day, len(index), len(set(index)), set(index) == _accepted_ids_hashes(con, landing)))
        if day in CHECKPOINTS:
            out["checkpoints"][day] = (_state(con), _at_once(landing, root / f"at-once-{day:%d}"))
    out["landing"], out["final"] = landing, _state(con)
    out["records"] = con.execute("""
        SELECT sum(records), sum(quantity) FROM raw.usage_accepted_daily WHERE billing_month = ?""", [MONTH]).fetchone()
    out["late_rows"] = con.execute("""
        SELECT 'q', row_number, reason FROM audit.quarantine WHERE file LIKE '%zz-%'
        UNION ALL SELECT 'r', row_number, first_file FROM audit.redeliveries WHERE file LIKE '%zz-%' OR first_file LIKE '%zz-%'
        ORDER BY ALL""").fetchall()
    out["moved"] = con.execute(f"""
        SELECT file[1:20], first_file FROM audit.redeliveries WHERE first_file = '{LATE}'
        UNION ALL SELECT file[1:20], detail FROM audit.quarantine WHERE detail LIKE '%{LATE}%' ORDER BY ALL""").fetchall()
    con.close()
    return out


def test_each_checkpoint_equals_one_ingestion_of_the_folders_landed_so_far(days):
    for day, (daily, at_once) in days["checkpoints"].items():
        assert at_once["folders"] == day.day, day
        for name in STATE:
            assert daily[name] == at_once[name], (day, name)
        assert len(daily["accepted"]) > 50 * day.day and len(daily["index"]) > 200 * day.day


def test_after_every_day_the_index_holds_exactly_the_months_distinct_accepted_ids(days):
    checks = days["index_checks"]
    assert len(checks) == 31
    for day, rows, distinct, equal in checks:
        assert rows == distinct and equal, day


def test_the_late_file_and_the_cross_folder_duplicates_are_settled_as_one_ingestion_settles_them(days):
    late = LATE
    assert days["late_rows"] == [
        ("q", 2, "conflicting_duplicate"),               # zz-dup row 2: folder 05's record, another quantity
        ("r", 1, "usage/dt=2026-10-05/part-0.parquet"),  # zz-dup row 1: folder 05's record again
        ("r", 6, late), ("r", 7, "usage/dt=2026-10-02/part-0.parquet"), ("r", 7, late), ("r", 8, late)]
    # folder 10's rows 6-8 are now re-deliveries of the late file's; its row 9 and folder 15's rows 6-7
    # conflict with the late file's rows 4-6, which stand
    moved = days["moved"]
    assert [f for f, _ in moved] == ["usage/dt=2026-10-10/"] * 4 + ["usage/dt=2026-10-15/"] * 2
    assert sorted(d[-40:] for _, d in moved if d != late) == sorted(
        f"in {late} row {n} with different content"[-40:] for n in (4, 5, 6))
    # the late file: +1 record (its new id); +1 unit on each of its three different records, + the new one's
    before, after = days["before_late"], days["checkpoints"][date(2026, 10, 20)][0]
    assert sum(r[5] for r in after["accepted"]) - sum(r[5] for r in before["accepted"]) == 1
    assert (sum(r[4] for r in after["accepted"]) - sum(r[4] for r in before["accepted"])
            == Decimal(3) + days["late_new_quantity"])
    assert (len(before["redeliveries"]), len(after["redeliveries"])) == (0, 4)


def test_the_months_accepted_records_and_quantity_to_the_unit(days):
    records, quantity = days["records"]
    landing = days["landing"]
    con = duckdb.connect()
    files = sorted(str(p) for p in (landing / "usage").glob("dt=*/*.parquet"))
    read = con.execute(f"SELECT count(*) FROM read_parquet({files!r}, union_by_name = true)").fetchone()[0]
    final = days["final"]
    assert records == read - len(final["quarantine"]) - len(final["redeliveries"])
    assert quantity == sum((r[4] for r in final["usage_daily"]), Decimal(0))
    assert sum(r[4] for r in final["file_loads"]) == records  # billing_month, source, file, rows_read, accepted
