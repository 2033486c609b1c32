"""Tickets and payments ingested the day they land (assets/feeds_day.py), on a real Dagster instance.

The golden landing (no tickets, no payments) gets ticket and payment files day by day; the feeds landing
sensor is ticked (`dg.build_sensor_context`, its clock pinned to the day) and each requested run of
`ingest_feeds_day_job` executed in process, as tests/ingestion/test_usage_days.py does for usage. Day 5
lands clean files; day 12 a ticket file with a broken line and an unknown customer, and an unreadable
charge file; then the close's own ingestion of the month and `billops ingest`.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timezone
from unittest import mock

import dagster as dg

from tests.conftest import Workspace, stored_alerts
from tests.ingestion.conftest import issue_invoice, materialize_jsonl
from tests.ingestion.test_jsonl_rules import charge, refund, ticket, write_jsonl

LEDGER = "SELECT source, path, size_bytes, sha256, first_seen_at FROM audit.landed_files ORDER BY path"
QUARANTINE = "SELECT source, file, row_number, record_id, reason, detail FROM audit.quarantine ORDER BY ALL"
REDELIVERIES = "SELECT source, file, row_number, record_id, first_file, first_row_number FROM audit.redeliveries ORDER BY ALL"
LOADS = ("SELECT billing_month, source, file, rows_read, accepted, redelivered, quarantined FROM audit.file_loads "
         "ORDER BY ALL")


def _snapshot(ws: Workspace) -> tuple:
    return tuple(ws.query(sql) for sql in (LEDGER, QUARANTINE, REDELIVERIES, LOADS))


def _tick(ws: Workspace, instance: dg.DagsterInstance, day: date) -> list[dg.RunRequest]:
    from orchestration.feeds_sensor import feeds_landing_sensor

    with mock.patch.dict(os.environ, ws.settings), mock.patch("orchestration.feeds_sensor.today", return_value=day):
        result = feeds_landing_sensor(dg.build_sensor_context(instance=instance))
    return result if isinstance(result, list) else []


def _run(ws: Workspace, instance: dg.DagsterInstance, partition: str, run_key: str | None = None) -> dg.DagsterRun:
    from orchestration.definitions import defs

    tags = {"dagster/run_key": run_key} if run_key else {}
    with mock.patch.dict(os.environ, ws.settings):
        outcome = defs.resolve_job_def("ingest_feeds_day_job").execute_in_process(
            partition_key=partition, instance=instance, tags=tags, raise_on_error=False)
    assert outcome.success, partition  # the day's checks never fail the run
    return instance.get_run_by_id(outcome.run_id)


def _day_runs(ws: Workspace, instance: dg.DagsterInstance, day: date) -> list[dg.DagsterRun]:
    """One tick on `day`, and each run it requested that Dagster has not run yet (a run key runs once)."""
    seen = {r.tags.get("dagster/run_key") for r in instance.get_runs()}
    return [_run(ws, instance, request.partition_key, request.run_key)
            for request in _tick(ws, instance, day) if request.run_key not in seen]


def _evaluations(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict:
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    return {r.event_log_entry.dagster_event.event_specific_data.check_name: r.event_log_entry.dagster_event.event_specific_data
            for r in records}


def _publish_a_preview(ws: Workspace):
    """A published copy holding a one-customer preview of October, as preview_month_job would leave it."""
    import duckdb

    from cli.preview import COLUMNS

    published = ws.root / "published"
    published.mkdir()
    con = duckdb.connect(str(published / "billops.duckdb"))
    types = {"billing_month": "DATE", "issue_date": "DATE", "due_date": "DATE", "as_of": "DATE", "reverse_charge": "BOOLEAN",
             "tax_rate": "DECIMAL(9,6)", **{c: "DECIMAL(18,2)" for c in ("subtotal", "credits_applied", "taxable_amount",
                                                                          "tax_amount", "total")}}
    con.execute("CREATE SCHEMA marts")
    columns = ", ".join(f"{c} {types.get(c, 'VARCHAR')}" for c in COLUMNS)
    con.execute(f"CREATE TABLE marts.invoice_preview ({columns})")
    con.execute("INSERT INTO marts.invoice_preview VALUES (NULL, 'c002', DATE '2026-10-01', DATE '2026-10-31', "
                "DATE '2026-11-30', 'USD', 10.00, 0.00, 10.00, NULL, 0, 0.00, 10.00, false, 'draft', DATE '2026-10-12')")
    con.close()
    return published


def test_tickets_and_payments_are_ingested_and_judged_the_day_they_land(golden):
    from alerts.channels import alert_config
    from alerts.messages import failed_check_alerts
    from config.billing_month import BillingMonth
    from orchestration.day_checks import failed_day_checks
    from orchestration.instance_config import prepare_instance
    from orchestration.sensors import alert_on_failed_warning_check_sensor

    ws = golden
    prepare_instance(ws.dagster_home)
    october = BillingMonth(2026, 10)
    issue_invoice(ws, "BO-202609-000002")
    write_jsonl(ws, "tickets/2026-10-05.jsonl", [ticket(1), ticket(1, updated="2026-10-03T08:00:00Z"), ticket(2)])
    write_jsonl(ws, "payments/charges/2026-10-05.jsonl", [charge("ch_1"), charge("ch_2", amount=500)])
    write_jsonl(ws, "payments/refunds/2026-10-05.jsonl", [refund("re_1", "ch_1")])
    with ws.instance() as instance:
        # day 5: one run, the four sources loaded, every check passing
        (day5,) = _day_runs(ws, instance, date(2026, 10, 5))
        assert day5.tags["dagster/partition"] == "2026-10-05"
        assert all(e.passed for e in _evaluations(instance, day5).values()), _evaluations(instance, day5)
        assert len(_evaluations(instance, day5)) == 7
        assert ws.query("SELECT id, updated_at::VARCHAR FROM raw.tickets ORDER BY id") == [
            (1, "2026-10-03 08:00:00"), (2, "2026-10-02 10:00:00")]
        assert ws.query("SELECT id, amount FROM raw.charges ORDER BY id") == [("ch_1", 1234), ("ch_2", 500)]
        assert ws.query("SELECT id, charge_id, amount FROM raw.refunds") == [("re_1", "ch_1", 500)]
        assert len(ws.query(LEDGER)) == 3
        assert ws.query(LOADS) == [
            (date(2026, 10, 1), "charges", "payments/charges/2026-10-05.jsonl", 2, 2, 0, 0),
            (date(2026, 10, 1), "refunds", "payments/refunds/2026-10-05.jsonl", 1, 1, 0, 0),
            (date(2026, 10, 1), "tickets", "tickets/2026-10-05.jsonl", 3, 2, 1, 0)]

        # nothing new landed: the next tick requests nothing; a re-run loads nothing twice
        before = _snapshot(ws)
        assert _day_runs(ws, instance, date(2026, 10, 6)) == []
        _run(ws, instance, "2026-10-06")
        assert _snapshot(ws) == before

        # day 12: a ticket file with a broken line and an unknown customer, a charge naming an invoice not yet
        # issued, and an unreadable charge file
        write_jsonl(ws, "tickets/2026-10-12.jsonl", [ticket(3), '{"id": 4, "status": "open"', ticket(5, organization_id="c-nobody")])
        write_jsonl(ws, "payments/charges/2026-10-12.jsonl", [charge("ch_3", invoice="BO-202610-000001")])
        (ws.landing / "payments/charges/2026-10-12-b.jsonl").write_bytes(b'{"id": "ch_9"}\n\xff\xfe\x00garbage\n')
        (day12,) = _day_runs(ws, instance, date(2026, 10, 12))
        checks = _evaluations(instance, day12)
        readable, new_lines = checks["feeds_day_files_readable"], checks["feeds_day_new_lines_accepted"]
        assert not readable.passed and readable.severity == dg.AssetCheckSeverity.ERROR
        assert readable.description.startswith("payments/charges/2026-10-12-b.jsonl: unreadable JSON lines")
        assert not new_lines.passed and new_lines.severity == dg.AssetCheckSeverity.WARN
        assert new_lines.description.startswith("3 line(s) of the 2 file(s) landed since the last ingestion quarantined: "
                                                "payments/charges/2026-10-12.jsonl line 1: unknown_invoice")
        assert "tickets/2026-10-12.jsonl line 2: bad_json" in new_lines.description
        assert "tickets/2026-10-12.jsonl line 3: unknown_customer" in new_lines.description
        assert {name for name, e in checks.items() if not e.passed} == {"feeds_day_files_readable",
                                                                       "feeds_day_new_lines_accepted"}
        assert ws.query("SELECT id FROM raw.tickets ORDER BY id") == [(1,), (2,), (3,)]
        assert "payments/charges/2026-10-12-b.jsonl" not in {r[1] for r in ws.query(LEDGER)}

        # one alert per failed check of that day, naming the day and the file; a second tick sends none
        drafts = failed_check_alerts(instance, day12, alert_config())
        assert len(drafts) == 2
        assert all("tickets and payments ingestion of day 2026-10-12" in d.text for d in drafts)
        assert any("payments/charges/2026-10-12-b.jsonl" in d.text for d in drafts)
        assert all(d.billing_month == date(2026, 10, 1) for d in drafts)
        with mock.patch.dict(os.environ, ws.settings):
            for _ in range(2):
                alert_on_failed_warning_check_sensor(dg.build_sensor_context(instance=instance))
        alerts = [a for a in stored_alerts(ws) if "tickets and payments ingestion" in a[2]]
        assert len(alerts) == 2 and {a[1] for a in alerts} == {"check_warning"}

        # October's preview is failing on the ERROR check, named with its day (the WARN one alerts only)
        (failing,) = failed_day_checks(instance, october)
        assert (failing.day, failing.check) == ("2026-10-12", "feeds_day_files_readable")
        assert "payments/charges/2026-10-12-b.jsonl" in failing.description
        published = _publish_a_preview(ws)
        shown = ws.billops("preview", "--month", "2026-10", env={"BILLOPS_PUBLISHED": str(published)})
        assert shown.returncode == 3, shown.stdout + shown.stderr
        assert "c002" in shown.stdout
        said = " ".join(shown.stderr.split())
        assert "preview 2026-10 is FAILING: 1 day check(s) failed" in said
        assert "- feeds_day_files_readable (day 2026-10-12): payments/charges/2026-10-12-b.jsonl" in said

        # day 13: the unreadable file is taken back (never ledgered) and the next run passes: no longer failing
        (ws.landing / "payments/charges/2026-10-12-b.jsonl").unlink()
        (day13,) = _day_runs(ws, instance, date(2026, 10, 13))
        assert _evaluations(instance, day13)["feeds_day_files_readable"].passed
        assert failed_day_checks(instance, october) == []
        clean = ws.billops("preview", "--month", "2026-10", env={"BILLOPS_PUBLISHED": str(published)})
        assert clean.returncode == 0 and "FAILING" not in clean.stderr

    # the close reads every file again: the charge naming an invoice issued since is accepted then
    after_days = ws.query(QUARANTINE)
    issue_invoice(ws, "BO-202610-000001", month=date(2026, 10, 1))
    closed = materialize_jsonl(ws)
    assert closed.success
    assert [r for r in ws.query(QUARANTINE) if r[0] != "charges"] == [r for r in after_days if r[0] != "charges"]
    assert ws.query("SELECT id FROM raw.charges ORDER BY id") == [("ch_1",), ("ch_2",), ("ch_3",)]
    assert len(ws.query(LEDGER)) == 5


def _said(done) -> str:
    """The command's output with Rich's line wrapping undone."""
    return " ".join(done.stdout.split())


def test_billops_ingest_covers_tickets_and_payments_and_names_an_unreadable_file(golden):
    ws = golden
    write_jsonl(ws, "tickets/a.jsonl", [ticket(1), "not json"])
    (ws.landing / "tickets/b.jsonl").write_bytes(b"\xff\xfe\x00")
    done = ws.billops("ingest")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "tickets/b.jsonl" in done.stderr
    assert "tickets and payments: 1 file(s) read, 1 new, 1 line(s) of the new files quarantined" in _said(done)
    assert ws.query("SELECT id FROM raw.tickets") == [(1,)]
    month = datetime.now(timezone.utc).date().replace(day=1)
    assert ws.query("SELECT billing_month, file, rows_read, accepted, quarantined FROM audit.file_loads "
                    "WHERE source = 'tickets'") == [(month, "tickets/a.jsonl", 2, 1, 1)]
    (ws.landing / "tickets/b.jsonl").unlink()
    before = _snapshot(ws)
    again = ws.billops("ingest")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "tickets and payments: none (all ingested)" in _said(again)
    assert _snapshot(ws) == before
    write_jsonl(ws, "payments/charges/c.jsonl", [charge("ch_1", customer="c-nobody")])
    third = ws.billops("ingest")
    assert third.returncode == 0 and "2 file(s) read, 1 new, 1 line(s)" in _said(third)
    assert ws.query("SELECT file, reason FROM audit.quarantine WHERE source = 'charges'") == [
        ("payments/charges/c.jsonl", "unknown_customer")]
