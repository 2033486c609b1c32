"""Daily usage ingestion against one close over all files: a generated month landed one folder at a time.

One small generated month (12 customers) is closed twice: once with every file landed at once (the
close ingests every folder itself, as before daily ingestion), and once after landing its folders
one at a time, ticking the landing sensor (`dg.build_sensor_context`) and executing each requested
run of `ingest_usage_day_job` in process — with, after day 20, a late file in folder 03 that repeats
records accepted from later folders (some identical, some with a different quantity), so the
delivery that stands moves to folder 03. Both closes must agree on the quarantine, the
re-deliveries, raw.usage_daily and the invoices to the cent. A third, ingestion-only workspace lands
on day 12 a file with bad rows and an unreadable file.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import date
from pathlib import Path
from unittest import mock

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.conftest import Workspace

MONTH = "2026-10"
LATE = "usage/dt=2026-10-03/zz-late-redelivery.parquet"
QUARANTINE = "SELECT file, row_number, record_id, reason, detail, raw FROM audit.quarantine WHERE source = 'usage' ORDER BY ALL"
REDELIVERIES = "SELECT file, row_number, record_id, first_file, first_row_number FROM audit.redeliveries ORDER BY ALL"
USAGE_DAILY = "SELECT * FROM raw.usage_daily ORDER BY ALL"
INVOICES = ("SELECT * EXCLUDE (issued_at, run_id) FROM audit.issued_invoices WHERE billing_month = DATE '2026-10-01' "
            "ORDER BY ALL")
LINES = ("SELECT * EXCLUDE (issued_at, run_id) FROM audit.issued_invoice_lines WHERE billing_month = DATE '2026-10-01' "
         "ORDER BY ALL")


def _generate(landing: Path) -> None:
    from synthetic.generate import generate

    generate(MONTH, 12, 23, landing, anomalies="default", progress=False)


def _last_of_a_group(landing: Path) -> pa.Table:
    """The latest record of one (customer, resource, SKU) on day 10, from folder 10's first file."""
    (first, *_) = sorted((landing / "usage" / "dt=2026-10-10").glob("*.parquet"))
    table = pq.read_table(first)
    keys = ["customer_id", "resource_id", "sku"]
    last = table.group_by(keys).aggregate([("start_time", "max"), ("start_time", "count")])
    last = last.filter(pc.greater(last["start_time_count"], 3)).slice(0, 1)
    mask = pc.and_(pc.and_(pc.equal(table["customer_id"], last["customer_id"][0]),
                           pc.equal(table["resource_id"], last["resource_id"][0])),
                   pc.and_(pc.equal(table["sku"], last["sku"][0]), pc.equal(table["start_time"], last["start_time_max"][0])))
    return table.filter(mask).slice(0, 1)


def _late_file(landing: Path) -> pa.Table:
    """Rows of folders 10 and 15 (accepted there), again: the first three identical, the next three with a
    quantity one unit higher; one row of folder 02 identical (a re-delivery of the late file itself); and the
    latest record of a group of day 10 thirty minutes earlier (so the group's latest start moves)."""
    picked = []
    for day, n in (("10", 4), ("15", 2), ("02", 1)):
        (first, *_) = sorted((landing / "usage" / f"dt=2026-10-{day}").glob("*.parquet"))
        picked.append(pq.read_table(first).slice(5, n))
    table = pa.concat_tables(picked)
    changed = pc.add(table["quantity"].cast(pa.float64()), 1.0).cast(table.schema.field("quantity").type)
    quantity = pa.concat_arrays([table["quantity"].combine_chunks()[:3], changed.combine_chunks()[3:6],
                                 table["quantity"].combine_chunks()[6:]])
    table = table.set_column(table.schema.get_field_index("quantity"), "quantity", quantity)
    moved = _last_of_a_group(landing)
    half_hour = pa.scalar(1800 * 10**6, pa.duration("us"))
    for column in ("start_time", "end_time"):
        moved = moved.set_column(moved.schema.get_field_index(column), column,
                                 pc.subtract(moved[column], half_hour).cast(moved.schema.field(column).type))
    return pa.concat_tables([table, moved.cast(table.schema)])


def _day_runs(ws: Workspace, instance: dg.DagsterInstance) -> list[str]:
    """One tick of the landing sensor, then each requested run executed in process; the days run."""
    from orchestration.definitions import defs
    from orchestration.usage_sensor import usage_landing_sensor

    with mock.patch.dict(os.environ, ws.settings):
        result = usage_landing_sensor(dg.build_sensor_context(instance=instance))
        requests = result if isinstance(result, list) else []
        job = defs.resolve_job_def("ingest_usage_day_job")
        seen = {r.tags.get("dagster/run_key") for r in instance.get_runs()}
        ran = []
        for request in requests:
            if request.run_key in seen:  # Dagster requests a run key once
                continue
            outcome = job.execute_in_process(partition_key=request.partition_key, instance=instance,
                                             tags={"dagster/run_key": request.run_key}, raise_on_error=False)
            assert outcome.success, request.partition_key
            ran.append(request.partition_key)
    return ran


def _rows(ws: Workspace) -> dict[str, list]:
    return {name: ws.query(sql) for name, sql in
            (("quarantine", QUARANTINE), ("redeliveries", REDELIVERIES), ("usage_daily", USAGE_DAILY),
             ("invoices", INVOICES), ("lines", LINES))}


@pytest.fixture(scope="module")
def two_closes(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("usage-days")
    source = root / "source"
    _generate(source)
    late = _late_file(source)
    moved = {k: v for k, v in late.slice(late.num_rows - 1).to_pylist()[0].items()}
    moved["start_time"] = moved["start_time"].replace(tzinfo=None) if moved["start_time"].tzinfo else moved["start_time"]

    # A: every file landed, one close.
    at_once = Workspace.at(root / "at-once")
    shutil.copytree(source, at_once.landing)
    pq.write_table(late, at_once.landing / LATE)
    closed = at_once.close(MONTH)
    assert closed.returncode == 0, closed.stdout + closed.stderr

    # B: folder by folder through the sensor, the late file after day 20, then the close.
    daily = Workspace.at(root / "daily")
    daily.landing.mkdir(parents=True)
    shutil.copytree(source / "reference", daily.landing / "reference")
    folders = sorted((source / "usage").glob(f"dt={MONTH}-*"))
    runs, state_before_late = [], None
    started = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        for folder in folders:
            shutil.copytree(folder, daily.landing / "usage" / folder.name)
            runs += _day_runs(daily, instance)
            if folder.name == "dt=2026-10-20":
                state_before_late = dict(daily.query("SELECT folder_day, ingested_at FROM raw.usage_folder_state"))
                pq.write_table(late, daily.landing / LATE)
                runs += _day_runs(daily, instance)
                state_after_late = dict(daily.query("SELECT folder_day, ingested_at FROM raw.usage_folder_state"))
                late_quarantine = daily.query(QUARANTINE)
        runs += _day_runs(daily, instance)  # a tick with nothing new requests nothing
    print(f"{len(runs)} day runs in {time.perf_counter() - started:.1f} s")
    after_days = daily.query("SELECT * EXCLUDE (billing_month) FROM raw.usage_accepted_daily ORDER BY ALL")
    closed_daily = daily.close(MONTH)
    assert closed_daily.returncode == 0, closed_daily.stdout + closed_daily.stderr
    return {"moved": moved, "at_once": _rows(at_once), "daily": _rows(daily), "after_days": after_days, "runs": runs,
            "folders": [f.name[3:] for f in folders], "before_late": state_before_late, "after_late": state_after_late,
            "late_quarantine": late_quarantine, "close_stdout": closed_daily.stdout, "daily_ws": daily}


def test_a_month_landed_day_by_day_closes_to_the_cent_as_one_close_over_all_files(two_closes):
    at_once, daily = two_closes["at_once"], two_closes["daily"]
    # one run per folder as it landed, and one more for folder 03 when the late file landed in it
    assert two_closes["runs"] == two_closes["folders"][:20] + ["2026-10-03"] + two_closes["folders"][20:]
    assert len(at_once["usage_daily"]) > 100 and len(at_once["invoices"]) >= 10
    reasons = {r[3] for r in at_once["quarantine"]}
    assert {"bad_schema", "conflicting_duplicate", "outside_month", "unknown_customer"} <= reasons
    for name in ("quarantine", "redeliveries", "usage_daily", "invoices", "lines"):
        assert daily[name] == at_once[name], name
    # the days' ingestion had already settled what the close then rated: the close ingested nothing more
    assert two_closes["after_days"] == at_once["usage_daily"]


def test_a_late_file_in_an_earlier_folder_moves_the_standing_delivery_without_re_reading_later_days(two_closes):
    at_once = two_closes["at_once"]
    before, after = two_closes["before_late"], two_closes["after_late"]
    # only folder 03 was ingested again; folders 10 and 15, whose records it repeats, were not
    assert {d for d in after if after[d] != before.get(d)} == {date(2026, 10, 3)}
    redelivered = [(r[0], r[3]) for r in at_once["redeliveries"]]
    conflicting = [r for r in at_once["quarantine"] if r[3] == "conflicting_duplicate" and LATE in (r[4] or "")]
    # identical repeats: folder 10's copies are now the re-deliveries of the late file's
    assert sum(1 for file, first in redelivered if file.startswith("usage/dt=2026-10-10/") and first == LATE) == 3
    # different content: the later folders' deliveries are quarantined, naming the late file's row
    assert {r[0][:20] for r in conflicting} == {"usage/dt=2026-10-10/", "usage/dt=2026-10-15/"} and len(conflicting) == 4
    # the late file's own copy of folder 02's record is a re-delivery of folder 02's
    assert any(file == LATE and first.startswith("usage/dt=2026-10-02/") for file, first in redelivered)
    # the group whose latest record lost to the late file's earlier copy: its latest start is that copy's
    # (its record before: an hour earlier at most, so 30 minutes later than any other), read independently
    moved = two_closes["moved"]
    (last,) = [r[6] for r in at_once["usage_daily"]
               if r[:4] == (moved["customer_id"], moved["resource_id"], moved["sku"], date(2026, 10, 10))]
    assert last == moved["start_time"]
    # right after folder 03's re-ingestion the quarantine already says so
    assert [r for r in two_closes["late_quarantine"] if r[3] == "conflicting_duplicate" and LATE in (r[4] or "")] \
        == conflicting


def test_day_12_quarantines_bad_rows_and_names_the_unreadable_file_in_a_failed_check_and_its_alert(tmp_path):
    from alerts.channels import alert_config
    from alerts.messages import failed_check_alerts
    from config.billing_month import BillingMonth
    from orchestration.day_checks import failed_day_checks

    source = tmp_path / "source"
    _generate(source)
    ws = Workspace.at(tmp_path / "ws")
    ws.landing.mkdir(parents=True)
    shutil.copytree(source / "reference", ws.landing / "reference")
    folder = ws.landing / "usage" / "dt=2026-10-12"
    shutil.copytree(source / "usage" / "dt=2026-10-12", folder)
    (first, *_) = sorted(folder.glob("*.parquet"))
    good = pq.read_table(first).slice(0, 3)
    bad = good.set_column(good.schema.get_field_index("customer_id"), "customer_id",
                          pa.array(["c-nobody", None, "c-nobody"], pa.string()))
    bad = bad.set_column(bad.schema.get_field_index("event_id"), "event_id",
                         pa.array(["day12-bad-1", "day12-bad-2", "day12-bad-3"], pa.string()))
    pq.write_table(bad, folder / "late-bad-rows.parquet")
    (folder / "late-truncated.parquet").write_bytes(b"PAR1 not a parquet file")
    # and a price book row C13 refuses (a model the contract does not know), for a SKU no usage names
    with (ws.landing / "reference" / "price_book.csv").open("a") as book:
        book.write("zz-never-used,Test,Never used,per_fortnight,hour,0.01,,,,,2025-01-01,\n")
    book_rows = sum(1 for _ in (ws.landing / "reference" / "price_book.csv").open()) - 1
    with dg.DagsterInstance.ephemeral() as instance:
        assert _day_runs(ws, instance) == ["2026-10-12"]
        (run,) = instance.get_runs()
        evaluations = {e.check_name: e for e in
                       (r.event_log_entry.dagster_event.event_specific_data for r in instance.get_records_for_run(
                           run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records)}
        drafts = failed_check_alerts(instance, run, alert_config())
        failing = failed_day_checks(instance, BillingMonth(2026, 10))
    # the month's preview is failing on the day's failed ERROR checks, named with their day (orchestration/day_checks.py)
    assert [(f.day, f.check) for f in failing] == [("2026-10-12", "C13_day_price_book_valid"),
                                                   ("2026-10-12", "usage_day_files_readable")]
    assert not evaluations["usage_day_files_readable"].passed
    assert "usage/dt=2026-10-12/late-truncated.parquet" in evaluations["usage_day_files_readable"].description
    assert evaluations["C9_usage_day_is_priced"].passed and evaluations["usage_day_rows_reconcile"].passed
    quarantined = ws.query("SELECT row_number, reason FROM audit.quarantine WHERE file LIKE '%late-bad-rows.parquet' "
                           "ORDER BY row_number")
    assert quarantined == [(1, "unknown_customer"), (2, "bad_schema"), (3, "unknown_customer")]
    # C13 on the day: the price book's row named by file, row and rule; the customers pass
    c13 = evaluations["C13_day_price_book_valid"]
    assert not c13.passed and evaluations["C13_day_customers_valid"].passed
    assert (f"C13 failed: reference/price_book.csv: 1 row(s) break the landing contract: row {book_rows}: model must be "
            "one of") in c13.description and "[found per_fortnight]" in c13.description
    # one alert per failed check of that day, naming the file and the day
    readable, reference = sorted(drafts, key=lambda d: "price_book.csv" in d.text)
    assert "usage ingestion of day 2026-10-12" in readable.text and "late-truncated.parquet" in readable.text
    assert "2026-10-12" in reference.text and "reference/price_book.csv" in reference.text
    assert readable.billing_month == reference.billing_month == date(2026, 10, 1)
    # billops ingest names the unreadable file and exits non-zero (the folder's state is not recorded)
    done = ws.billops("ingest")
    assert done.returncode == 1 and "late-truncated.parquet" in done.stderr
