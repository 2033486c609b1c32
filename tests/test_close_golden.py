"""The golden case, closed once (session fixture) through the real `billops close`: many assertions on one close.

The fixture first starts a close and kills its run worker with -9 mid-run (issues 7 and 15),
then closes the month again: Dagster must have marked the killed run FAILURE, the failed-close
sensor must have alerted once, and the second close must be exact.
"""

from decimal import Decimal

import dagster as dg
import pyarrow.parquet as pq

from tests.conftest import GOLDEN, assert_closes_to_golden, read_expected, stored_alerts

OCTOBER = "DATE '2026-10-01'"


def _expected_total() -> Decimal:
    return sum(Decimal(r["total"]) for r in read_expected("invoices.csv"))


def _landed_usage() -> dict[str, int]:
    """Every landed October usage file → its row count, from the Parquet footers."""
    landing = GOLDEN / "landing"
    return {p.relative_to(landing).as_posix(): pq.ParquetFile(p).metadata.num_rows
            for p in sorted((landing / "usage").glob("dt=2026-10-*/*.parquet"))}


def _check_evaluations(closed_golden) -> list:
    with closed_golden.ws.instance() as instance:
        events = instance.all_logs(closed_golden.close_run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        return [e.dagster_event.event_specific_data for e in events]


def test_golden_month_closes_to_the_cent_and_is_issued(closed_golden):
    ws, result = closed_golden.ws, closed_golden.result
    assert result.returncode == 0, result.stderr[-3000:]
    assert_closes_to_golden(ws)
    assert_closes_to_golden(ws, table_prefix="audit.issued_")
    expected = read_expected("invoices.csv")
    lines = read_expected("invoice_lines.csv")
    # Issued; a $0.00 invoice is already paid (docs/contract/billing-rules.md §7: payments reach its total).
    assert ws.query(f"SELECT invoice_number, status FROM marts.invoices WHERE billing_month = {OCTOBER} "
                    "ORDER BY 1") == [(r["invoice_number"], "paid" if Decimal(r["total"]) == 0 else "issued")
                                      for r in read_expected("invoices.csv")]
    assert ws.query("SELECT billing_month::VARCHAR, invoices, lines, total FROM audit.issued_months") == [
        ("2026-10-01", len(expected), len(lines), _expected_total())]
    assert (len(expected), len(lines), _expected_total()) == (7, 17, Decimal("333.02"))
    # The issued copy and the published mart are the same rows.
    columns = ", ".join(read_expected("invoices.csv")[0].keys())
    assert ws.query(f"SELECT {columns} FROM audit.issued_invoices ORDER BY ALL") == ws.query(
        f"SELECT {columns} FROM marts.invoices ORDER BY ALL")
    assert ws.query("SELECT count(*) FROM audit.restatements") == [(0,)]
    assert f"{len(expected)} invoices, {len(lines)} lines" in result.stdout
    assert str(_expected_total()) in result.stdout
    assert "close 2026-10 succeeded: issued" in result.stdout


def test_every_control_passed_on_the_close(closed_golden):
    evaluations = _check_evaluations(closed_golden)
    names = {e.check_name for e in evaluations}
    for control in ("C1_lines_add_up", "C3_usage_completely_rated", "C4_one_invoice_per_customer_month",
                    "C5_gapless_numbering", "C6_no_negative_invoice", "C7_credits_conserved", "C8_tax_applied",
                    "C11_month_over_month_swing"):
        assert control in names, sorted(names)
    assert any(name.startswith("C2_") for name in names) and any(name.startswith("C10_") for name in names)
    assert [(e.check_name, e.description) for e in evaluations if not e.passed] == []


def test_killed_close_is_marked_failed_and_the_next_close_is_exact(closed_golden):
    killed = closed_golden.killed
    assert closed_golden.killed_run_id and killed["killed_pid"], "the first close's run worker was never seen started"
    statuses = dict(closed_golden.ws.runs())
    assert statuses[closed_golden.killed_run_id] == "FAILURE"  # by Dagster: no /proc reading in billops
    # The command followed the run to its end and said so; the failed-close sensor alerted once.
    assert killed["killed_returncode"] == 1, killed["killed_stderr"][-2000:]
    assert "close 2026-10 failed" in killed["killed_stderr"]
    assert "was terminated by signal 9 (SIGKILL)" in " ".join(killed["killed_stderr"].split())
    (text,) = [text for _, _, text in killed["alerts_after_kill"]]
    assert "close of 2026-10 FAILED" in text and "was terminated by signal 9 (SIGKILL)" in text
    assert [(key, kind) for key, kind, _ in killed["alerts_after_kill"]] == [(closed_golden.killed_run_id, "run_failed")]
    assert [(key, kind) for key, kind, _ in stored_alerts(closed_golden.ws)] == [
        (closed_golden.killed_run_id, "run_failed")]  # the next close's daemon did not alert it again
    assert statuses[closed_golden.close_run_id] == "SUCCESS"
    assert len(statuses) == 2
    # One issued copy, no duplicate from the killed run.
    assert closed_golden.ws.query("SELECT count(*), count(DISTINCT invoice_number) FROM audit.issued_invoices") == [(7, 7)]


def test_money_columns_are_decimal_in_the_marts(closed_golden):
    types = dict(closed_golden.ws.query(
        "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'marts' AND table_name IN ('invoices', 'invoice_lines')"
    ))
    for column in ("invoices.subtotal", "invoices.credits_applied", "invoices.taxable_amount",
                   "invoices.tax_amount", "invoices.total", "invoice_lines.amount"):
        assert types[column] == "DECIMAL(18,2)", column
    assert types["invoices.tax_rate"] == "DECIMAL(9,6)"
    assert types["invoice_lines.quantity"] == "DECIMAL(18,6)"
    assert not [c for c, t in types.items() if t in ("DOUBLE", "FLOAT", "REAL")]


def test_redelivered_file_is_counted_once(closed_golden):
    ws = closed_golden.ws
    landed = _landed_usage()
    redelivery = "usage/dt=2026-10-15/part-1-redelivery.parquet"
    original = "usage/dt=2026-10-15/part-0.parquet"
    loads = {row[0]: row[1:] for row in ws.query(
        "SELECT file, rows_read, accepted, redelivered, quarantined FROM audit.file_loads "
        f"WHERE billing_month = {OCTOBER} AND source = 'usage'"
    )}
    assert set(loads) == set(landed)
    assert loads[redelivery] == (landed[redelivery], 0, landed[redelivery], 0)
    assert loads[original] == (landed[original], landed[original], 0, 0)
    for file, (read, accepted, redelivered, quarantined) in loads.items():
        assert read == landed[file] == accepted + redelivered + quarantined, file
    staged = dict(ws.query("SELECT source_file, count(*) FROM raw.usage_month GROUP BY 1"))
    assert {f: v[1] for f, v in loads.items() if v[1]} == staged
    assert ws.query("SELECT count(*) FROM audit.redeliveries") == [(landed[redelivery],)]
    # The summary prints the same figures, derived here from the files.
    stdout = closed_golden.result.stdout
    assert f"│ usage files        │ {len(landed)} " in stdout
    assert f"│ records read       │ {sum(landed.values()):,} " in stdout
    assert f"│ re-delivered       │ {landed[redelivery]:,} " in stdout


def test_bad_rows_leave_the_rating_input_of_the_golden_close_unchanged(closed_golden, golden):
    """Quarantined rows never reach rating: with bad rows landed, raw.usage_daily (what rating, C2 and C3
    read) equals the golden close's, so the invoices would too. In-process, ingestion only (no dbt)."""
    from datetime import datetime, timezone

    from assets.reference import reference_snapshots
    from assets.usage import usage
    from warehouse.resource import WarehouseResource
    from tests.conftest import USAGE_SCHEMA

    start = datetime(2026, 10, 21, 5, tzinfo=timezone.utc)
    good = {"event_id": "x", "customer_id": "c002", "resource_id": "r002", "sku": "droplet-s-2vcpu-4gb",
            "region": "fra1", "start_time": start, "end_time": start.replace(hour=6), "quantity": Decimal("1")}
    first = pq.read_table(golden.landing / "usage/dt=2026-10-01/part-0.parquet").slice(0, 1).to_pylist()[0]
    golden.write_usage("usage/dt=2026-10-21/part-8-bad.parquet", [
        {**good, "event_id": "bad-schema-2", "quantity": None},
        {**good, "event_id": "negative-2", "quantity": Decimal("-3")},
        {**good, "event_id": "unknown-customer-2", "customer_id": "c404"},
        {**first, "region": "ams3"},  # same event id, other content: a conflicting duplicate
    ], schema=USAGE_SCHEMA)
    warehouse = WarehouseResource(path=str(golden.warehouse), landing=str(golden.landing))
    result = dg.materialize([reference_snapshots, usage], partition_key="2026-10-01",
                            resources={"warehouse": warehouse}, raise_on_error=False)
    assert result.success
    daily = "SELECT * FROM raw.usage_daily ORDER BY ALL"
    assert golden.query(daily) == closed_golden.ws.query(daily)
    assert golden.query("SELECT reason, count(*) FROM audit.quarantine GROUP BY 1 ORDER BY 1") == [
        ("bad_schema", 1), ("conflicting_duplicate", 1), ("negative_quantity", 1), ("unknown_customer", 1)]


def test_the_instance_keeps_dagster_s_sqlite_layout_with_its_connections_open(closed_golden):
    """The event log billops configures (orchestration/private_hooks.py) writes Dagster's own files."""
    from orchestration.private_hooks import PooledSqliteEventLogStorage

    runs = closed_golden.ws.dagster_home / "history" / "runs"
    # One file per run, the index, and ".db": the events of no run (the daemon's own, Dagster's layout).
    assert {p.name for p in runs.glob("*.db")} == {"index.db", ".db", f"{closed_golden.killed_run_id}.db",
                                                  f"{closed_golden.close_run_id}.db"}
    with closed_golden.ws.instance() as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        checks = instance.all_logs(closed_golden.close_run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    # Dagster's default SQLite event log, opened on the same folder, reads the same events.
    from dagster._core.storage.event_log import SqliteEventLogStorage

    default = SqliteEventLogStorage(str(runs))
    try:
        again = default.get_logs_for_run(closed_golden.close_run_id,
                                         of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    finally:
        default.dispose()
    assert len(checks) == len(again) > 100
