"""The published copy for BI: whole tables out of the warehouse's marts, swapped in atomically.

In-process tests on a small crafted warehouse (real DuckDB files) check what is
copied and how; one test reads what BI readers saw while the session's November
(tests/golden_november.py) was closed through the real `billops` command.
"""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.conftest import GOLDEN
from tests.golden_november import NOVEMBER_CUSTOMERS, read_published_duckdb, read_published_parquet
from warehouse.published import publish_now, refresh_published

CRAFTED_MARTS = """
CREATE SCHEMA audit; CREATE SCHEMA marts;
CREATE TABLE audit.issued (invoice_number VARCHAR, billing_month DATE, total DECIMAL(18,2));
INSERT INTO audit.issued VALUES ('INV-1', DATE '2026-09-01', 10.10), ('INV-2', DATE '2026-10-01', 20.20),
                                ('INV-3', DATE '2026-10-01', 0.01);
CREATE VIEW marts.invoices AS SELECT * FROM billing.audit.issued;  -- dbt names the catalog (the file's stem)
CREATE VIEW marts.invoice_months AS SELECT billing_month, count(*) AS invoices FROM marts.invoices GROUP BY 1;
CREATE TABLE marts.kpi_team_daily (month DATE, day DATE, solved INTEGER);
INSERT INTO marts.kpi_team_daily VALUES (DATE '2026-10-01', DATE '2026-10-02', 3);
CREATE TABLE marts.work_items (work_item_id VARCHAR, amount DECIMAL(18,2));
INSERT INTO marts.work_items VALUES ('WI-000001', 12.34);
CREATE TABLE marts.restatements (customer_id VARCHAR, billing_month DATE);
"""


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, Path]:
    warehouse = tmp_path / "billing.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute(CRAFTED_MARTS)
    con.close()
    return warehouse, tmp_path / "published"


def read_duckdb(published: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(published / "billops.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_every_mart_is_copied_as_a_table_with_parquet_partitioned_by_its_month(crafted):
    warehouse, published = crafted
    # a mart over another mart (`marts.invoices` inside a view) must still mean the warehouse's schema
    assert publish_now(warehouse, published) == {"invoice_months": 2, "invoices": 3, "kpi_team_daily": 1,
                                                 "restatements": 0, "work_items": 1}
    assert read_duckdb(published, "SELECT table_name, table_type FROM information_schema.tables "
                                  "WHERE table_schema = 'marts' ORDER BY 1") == [
        ("invoice_months", "BASE TABLE"), ("invoices", "BASE TABLE"), ("kpi_team_daily", "BASE TABLE"), ("restatements", "BASE TABLE"),
        ("work_items", "BASE TABLE")]
    assert read_duckdb(published, "SELECT invoice_number, total FROM marts.invoices ORDER BY 1") == [
        ("INV-1", Decimal("10.10")), ("INV-2", Decimal("20.20")), ("INV-3", Decimal("0.01"))]

    parquet = published / "parquet"
    assert parquet.is_symlink() and os.readlink(parquet).startswith("parquet.v")
    files = sorted(p.relative_to(parquet).as_posix() for p in parquet.rglob("*.parquet"))
    assert files == ["invoice_months/billing_month=2026-09-01/data_0.parquet",
                     "invoice_months/billing_month=2026-10-01/data_0.parquet",
                     "invoices/billing_month=2026-09-01/data_0.parquet",
                     "invoices/billing_month=2026-10-01/data_0.parquet",
                     "kpi_team_daily/month=2026-10-01/data_0.parquet",
                     "restatements/restatements.parquet",  # no rows: one file, so its schema is still readable
                     "work_items/work_items.parquet"]  # no month column: one file
    con = duckdb.connect()
    rows = con.execute(f"SELECT billing_month, sum(total) FROM read_parquet('{parquet}/invoices/*/*.parquet', "
                       "hive_partitioning = true) GROUP BY 1 ORDER BY 1").fetchall()
    assert [(str(m)[:10], t) for m, t in rows] == [("2026-09-01", Decimal("10.10")), ("2026-10-01", Decimal("20.21"))]
    assert con.execute(f"SELECT * FROM '{parquet}/work_items/work_items.parquet'").fetchall() == [
        ("WI-000001", Decimal("12.34"))]


def test_a_new_publication_replaces_both_copies_and_keeps_only_the_version_it_replaced(crafted):
    warehouse, published = crafted
    publish_now(warehouse, published)
    first = os.readlink(published / "parquet")
    con = duckdb.connect(str(warehouse))
    con.execute("INSERT INTO audit.issued VALUES ('INV-4', DATE '2026-11-01', 5.00)")
    con.close()
    publish_now(warehouse, published)
    second = os.readlink(published / "parquet")
    publish_now(warehouse, published)
    third = os.readlink(published / "parquet")
    assert len({first, second, third}) == 3
    # the version just replaced stays for a read in flight; older ones are gone; no temp file is left
    assert sorted(p.name for p in published.iterdir()) == sorted([".publish.lock", "billops.duckdb", "parquet",
                                                                  second, third])
    assert read_duckdb(published, "SELECT count(*) FROM marts.invoices") == [(4,)]
    assert (published / "parquet" / "invoices" / "billing_month=2026-11-01").is_dir()


ALERT_COLUMNS = [("alert_id", "VARCHAR"), ("dedup_key", "VARCHAR"), ("kind", "VARCHAR"), ("billing_month", "DATE"),
                 ("run_id", "VARCHAR"), ("text", "VARCHAR"), ("channels", "VARCHAR"), ("created_at", "TIMESTAMP"),
                 ("sent_at", "TIMESTAMP"), ("attempts", "INTEGER"), ("last_error", "VARCHAR")]


def test_the_copy_is_billops_duckdb_where_marts_invoices_resolves_and_the_file_is_read_only(crafted):
    warehouse, published = crafted
    publish_now(warehouse, published)
    path = published / "billops.duckdb"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    # opened directly, as BI tools open it: catalog `billops`, so `marts.invoices` is the schema's table
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT current_database()").fetchone() == ("billops",)
    assert con.execute("SELECT count(*), sum(total) FROM marts.invoices").fetchone() == (3, Decimal("30.31"))
    con.close()
    con = duckdb.connect()  # attached read-only, as a notebook or the duckdb CLI's ATTACH does
    con.execute(f"ATTACH '{path}' (READ_ONLY)")
    con.execute("USE billops")
    assert con.execute("SELECT count(*) FROM marts.invoices").fetchone() == (3,)
    con.close()
    if os.geteuid() != 0:  # root ignores mode bits: there the mode above is the assertion
        with pytest.raises(PermissionError):
            path.open("r+b")
        with pytest.raises(duckdb.IOException, match="Permission denied"):
            duckdb.connect(str(path))
    assert not (published / "marts.duckdb").exists()


def test_a_reader_holding_the_old_copy_keeps_reading_it_while_the_read_only_file_is_replaced(crafted):
    warehouse, published = crafted
    publish_now(warehouse, published)
    path = published / "billops.duckdb"
    first_inode = path.stat().st_ino
    reader = duckdb.connect(str(path), read_only=True)
    try:
        assert reader.execute("SELECT count(*) FROM marts.invoices").fetchone() == (3,)
        con = duckdb.connect(str(warehouse))
        con.execute("INSERT INTO audit.issued VALUES ('INV-4', DATE '2026-11-01', 5.00)")
        con.execute("UPDATE marts.work_items SET amount = 99.99")
        con.close()
        publish_now(warehouse, published)  # os.replace over a 0444 file: only the folder must be writable
        assert path.stat().st_ino != first_inode and stat.S_IMODE(path.stat().st_mode) == 0o444
        # the old reader still reads its (now unlinked) file, a table it had not touched yet included
        assert reader.execute("SELECT count(*), sum(total) FROM marts.invoices").fetchone() == (3, Decimal("30.31"))
        assert reader.execute("SELECT work_item_id, amount FROM marts.work_items").fetchall() == [
            ("WI-000001", Decimal("12.34"))]
    finally:
        reader.close()
    assert read_duckdb(published, "SELECT count(*), sum(total) FROM marts.invoices") == [(4, Decimal("35.31"))]
    assert read_duckdb(published, "SELECT amount FROM marts.work_items") == [(Decimal("99.99"),)]


def test_the_next_publication_deletes_the_old_marts_duckdb_and_what_a_killed_publisher_left(crafted):
    warehouse, published = crafted
    published.mkdir()
    old = duckdb.connect(str(published / "marts.duckdb"))  # as an older billops published it
    old.execute("CREATE SCHEMA marts; CREATE TABLE marts.marts.invoices AS SELECT 'INV-OLD' AS invoice_number")
    old.close()
    (published / ".billops.duckdb.v20261201T000000000000-abcdef.tmp").write_bytes(b"half a copy")
    (published / ".marts.duckdb.v20261101T000000000000-012345.tmp.wal").write_bytes(b"half a wal")
    publish_now(warehouse, published)
    assert sorted(p.name for p in published.iterdir() if not p.name.startswith("parquet.v")) == [
        ".publish.lock", "billops.duckdb", "parquet"]
    assert read_duckdb(published, "SELECT invoice_number FROM marts.invoices ORDER BY 1") == [
        ("INV-1",), ("INV-2",), ("INV-3",)]


def _work_items(*rows: tuple[str, str]):
    """A writer as the queue's (workitems/mirror.py) is: replaces marts.work_items with these rows."""
    def write(con: duckdb.DuckDBPyConnection) -> int:
        con.execute("CREATE OR REPLACE TABLE marts.work_items (work_item_id VARCHAR, amount DECIMAL(18,2))")
        con.executemany("INSERT INTO marts.work_items VALUES (?, ?)", [list(row) for row in rows])
        return len(rows)
    return write


def test_a_refresh_replaces_one_table_while_another_process_writes_the_warehouse(crafted):
    """`refresh_published` (a queue decision, an alert) never opens the warehouse: with a writer holding it,
    marts.work_items is replaced in both copies, every other table is as the last publication left it (its
    Parquet files shared, not rewritten), and the swap is the same atomic one."""
    warehouse, published = crafted
    publish_now(warehouse, published)
    before = os.readlink(published / "parquet")
    invoices_file = published / before / "invoices" / "billing_month=2026-09-01" / "data_0.parquet"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(warehouse)!r}); "
                               "c.execute('BEGIN'); c.execute('DELETE FROM audit.issued'); "
                               "print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        assert refresh_published(published, {"work_items": _work_items(("WI-000001", "12.34"),
                                                                       ("WI-000002", "40.00"))}) == {"work_items": 2}
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
    after = os.readlink(published / "parquet")
    assert after != before and after.startswith("parquet.v")
    assert read_duckdb(published, "SELECT work_item_id, amount FROM marts.work_items ORDER BY 1") == [
        ("WI-000001", Decimal("12.34")), ("WI-000002", Decimal("40.00"))]
    assert read_duckdb(published, "SELECT count(*), sum(total) FROM marts.invoices") == [(3, Decimal("30.31"))]
    assert read_duckdb(published, "SELECT table_name FROM duckdb_tables() ORDER BY 1") == [
        ("invoice_months",), ("invoices",), ("kpi_team_daily",), ("restatements",), ("work_items",)]
    con = duckdb.connect()
    assert con.execute(f"SELECT * FROM '{published / 'parquet' / 'work_items' / 'work_items.parquet'}' ORDER BY 1"
                       ).fetchall() == [("WI-000001", Decimal("12.34")), ("WI-000002", Decimal("40.00"))]
    con.close()
    shared = published / after / "invoices" / "billing_month=2026-09-01" / "data_0.parquet"
    assert shared.stat().st_ino == invoices_file.stat().st_ino  # the same file, hard-linked
    assert stat.S_IMODE((published / "billops.duckdb").stat().st_mode) == 0o444
    assert not [p for p in published.iterdir() if p.name.endswith(".tmp")]


def test_a_refresh_before_any_publication_starts_a_copy_the_first_close_replaces_whole(crafted):
    warehouse, published = crafted
    def alerts(con: duckdb.DuckDBPyConnection) -> int:
        con.execute("CREATE TABLE marts.alerts AS SELECT 'a1' AS alert_id")
        return 1

    assert refresh_published(published, {"alerts": alerts}) == {"alerts": 1}
    assert read_duckdb(published, "SELECT table_name FROM duckdb_tables()") == [("alerts",)]
    assert sorted(p.relative_to(published / "parquet").as_posix() for p in (published / "parquet").rglob("*.parquet")) \
        == ["alerts/alerts.parquet"]
    publish_now(warehouse, published, replace={"work_items": _work_items(("WI-000009", "9.99"))})
    assert read_duckdb(published, "SELECT table_name FROM duckdb_tables() ORDER BY 1") == [
        ("invoice_months",), ("invoices",), ("kpi_team_daily",), ("restatements",), ("work_items",)]
    # a replaced table comes from its writer (the queue), not from the warehouse's older copy of it
    assert read_duckdb(published, "SELECT work_item_id, amount FROM marts.work_items") == [("WI-000009", Decimal("9.99"))]


# --- readers during a real close ----------------------------------------------------------------


def test_the_first_close_publishes_billops_duckdb_with_every_issued_invoice_and_marts_alerts(closed_golden):
    """The golden October, the warehouse's first completed close: BI opens the copy directly and finds every
    issued invoice under `marts.invoices`, and `marts.alerts` with its columns, holding the one alert of the
    close killed before it (tests/conftest.py: its run worker killed with -9)."""
    assert closed_golden.result.returncode == 0, closed_golden.result.stderr[-3000:]
    with (GOLDEN / "expected" / "invoices.csv").open() as f:
        expected = list(csv.DictReader(f))
    path = closed_golden.ws.root / "data" / "published" / "billops.duckdb"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert not (path.parent / "marts.duckdb").exists()
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT count(*), sum(total) FROM marts.invoices").fetchone() == (
            len(expected), sum(Decimal(r["total"]) for r in expected))
        assert con.execute("SELECT dedup_key, kind FROM marts.alerts").fetchall() == [
            (closed_golden.killed_run_id, "run_failed")]
        assert con.execute("SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_schema = 'marts' AND table_name = 'alerts' ORDER BY ordinal_position"
                           ).fetchall() == ALERT_COLUMNS
    finally:
        con.close()
    assert closed_golden.ws.query("SELECT count(*) FROM audit.issued_invoices") == [(len(expected),)]
    assert closed_golden.ws.query("SELECT dedup_key FROM marts.alerts") == [(closed_golden.killed_run_id,)]


def test_readers_see_one_whole_month_state_in_every_read_while_a_close_runs(closed_november):
    """tests/golden_november.py closes November through the installed command while two threads read the
    published copy (DuckDB and Parquet) ~10 times a second; every read is one whole state, before or after."""
    assert closed_november.result.returncode == 0, closed_november.result.stdout[-2000:] + closed_november.result.stderr[-3000:]
    before, reads = closed_november.before, closed_november.reads
    assert [m for m, *_ in before] == ["2026-10-01"] and before[0][1] == 7 and before[0][3] is True

    published = closed_november.published
    after = read_published_duckdb(published)
    assert [m for m, *_ in after] == ["2026-10-01", "2026-11-01"], "the close did not publish November"
    assert after[0] == before[0] and after[1][1] == len(NOVEMBER_CUSTOMERS) and after[1][3] is True
    assert after == read_published_parquet(published)
    assert closed_november.errors == []
    for kind, seen in reads.items():
        assert len(seen) >= 20, f"{kind}: only {len(seen)} reads during the close"
        assert set(seen) <= {before, after}, f"{kind} saw a state that is neither before nor after"
        assert before in seen and after in seen, f"{kind} did not read across the swap"
