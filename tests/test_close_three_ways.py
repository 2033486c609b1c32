"""One close, however it starts (issue 15): `billops close`, the job launched for the month as the UI
launches it, and the monthly schedule's run requests leave the same restatements, invoices and work items.

On three copies of the closed golden October, the same changes land: 10 late droplet hours for
c002 (under-billed), a lower price for the 1 vCPU Droplet (its users over-billed: R1 credit notes),
and a November of one file a day. Then November is closed:
- `command`: `billops close --month 2026-11` (restates October first, then issues November);
- `ui`: close_month_job for November alone, submitted to the instance's run queue as the UI's
  "Materialize" submits it, with a daemon running: its restatement sensor then requests
  October's restatement by itself;
- `schedule`: the runs requested by the schedule's tick on 2026-12-01 06:00 UTC, submitted together.
All runs go through the instance: queued, dequeued by the daemon, run by the run launcher.
Run ids and timestamps aside, the three warehouses agree row for row.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from unittest import mock

import pytest

from tests.conftest import copy_workspace
from tests.test_restatements import droplet_hours, land_month, set_price

UTC = timezone.utc
RESTATEMENTS = ("SELECT billing_month, customer_id, invoice_number, issued_total, recomputed_total, difference, cause "
                "FROM audit.restatements ORDER BY ALL")
INVOICES = "SELECT * EXCLUDE (issued_at, run_id) FROM audit.issued_invoices ORDER BY invoice_number"
LINES = "SELECT * EXCLUDE (issued_at, run_id) FROM audit.issued_invoice_lines ORDER BY ALL"
WORK_ITEMS = ("SELECT kind, rule, customer_id, invoice_number, charge_id, ticket_id, amount, proposed_due_date, "
              "status, requires_approval, dedup_key FROM marts.work_items ORDER BY dedup_key")


@contextmanager
def through_instance(ws):
    """The workspace's settings in this process, and a way to start a `dagster-daemon` on its instance (as
    `dagster dev` runs one): what is submitted is dequeued from the run queue and run by the instance's
    launcher. The daemon is started after the first submission, as `billops close` starts its own."""
    from cli.instance_runs import start_daemon
    from config.settings import load_settings

    with mock.patch.dict(os.environ, ws.settings):
        settings = load_settings()
        yield settings, lambda: start_daemon(settings, ws.root / "daemon.log")


def submit(ws, settings, partition_key: str, tags: dict) -> str:
    """Queue one run of close_month_job as the UI's "Materialize" or a tick's run request does; its run id."""
    from cli.instance_runs import submit as launch

    with (ws.root / "launch.log").open("a") as log:
        return launch(settings, {**tags, "dagster/partition": partition_key}, log)


def wait_for(ws, predicate, timeout: float = 600) -> list:
    """Run records of the workspace's close runs once `predicate(records)` holds (or the timeout passes)."""
    import dagster as dg

    deadline = time.monotonic() + timeout
    with ws.instance() as instance:
        while True:
            records = instance.get_run_records(dg.RunsFilter(job_name="close_month_job"))
            if predicate(records) or time.monotonic() > deadline:
                return records
            time.sleep(1)


def in_flight(records) -> bool:
    return any(r.dagster_run.status.value in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED") for r in records)


def outcome(ws) -> dict:
    return {name: ws.query(sql) for name, sql in
            (("restatements", RESTATEMENTS), ("invoices", INVOICES), ("lines", LINES), ("work_items", WORK_ITEMS))}


@pytest.fixture(scope="module")
def three_ways(closed_golden, tmp_path_factory) -> dict:
    import dagster as dg

    from orchestration.schedules import close_previous_month_schedule

    assert closed_golden.result.returncode == 0, closed_golden.result.stderr[-3000:]
    base = copy_workspace(closed_golden.ws, tmp_path_factory.mktemp("three-ways") / "base")
    base.write_usage("usage/dt=2026-10-25/part-9-late.parquet",
                     droplet_hours("late-c002", "c002", "r002", "droplet-s-2vcpu-4gb", datetime(2026, 10, 25, tzinfo=UTC), 10))
    set_price(base, "droplet-s-1vcpu-1gb", "0.001")  # from 0.00893: its October users were over-billed
    land_month(base, 2026, 11, 30, {})
    out = {}

    command = copy_workspace(base, base.root.parent / "command")
    result = command.close("2026-11", through_instance=True)
    assert result.returncode == 0, result.stderr[-3000:]
    out["command"] = outcome(command)

    ui = copy_workspace(base, base.root.parent / "ui")
    closed_before = {run_id for run_id, _ in ui.runs()}
    with through_instance(ui) as (settings, start_daemon):
        november = submit(ui, settings, "2026-11-01", {})  # the UI sets no billops tag
        daemon = start_daemon()
        try:
            # November alone, then the daemon's restatement sensor requests October's restatement itself.
            records = wait_for(ui, lambda rs: any(r.dagster_run.tags.get("billops/trigger") == "restatement_sensor"
                                                  for r in rs) and not in_flight(rs))
        finally:
            from cli.instance_runs import stop_daemon
            stop_daemon(daemon)
    new = sorted((r for r in records if r.dagster_run.run_id not in closed_before), key=lambda r: r.create_timestamp)
    out["ui_runs"] = [(r.dagster_run.run_id == november, r.dagster_run.tags.get("dagster/partition"),
                       r.dagster_run.tags.get("billops/trigger"), r.dagster_run.status.value) for r in new]
    out["ui"] = outcome(ui)

    schedule = copy_workspace(base, base.root.parent / "schedule")
    closed_before = {run_id for run_id, _ in schedule.runs()}
    with mock.patch.dict(os.environ, schedule.settings), schedule.instance() as instance:
        requests = close_previous_month_schedule(dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 12, 1, 6, tzinfo=UTC)))
    out["schedule_requests"] = [(r.partition_key, r.tags.get("billops/trigger")) for r in requests]
    with through_instance(schedule) as (settings, start_daemon):
        for request in requests:  # the scheduler submits a tick's run requests together, in order
            submit(schedule, settings, request.partition_key, request.tags)
        daemon = start_daemon()
        try:
            records = wait_for(schedule, lambda rs: not in_flight(rs))
        finally:
            from cli.instance_runs import stop_daemon
            stop_daemon(daemon)
    out["schedule_runs"] = sorted((r.dagster_run.tags.get("dagster/partition"), r.dagster_run.status.value)
                                  for r in records if r.dagster_run.run_id not in closed_before)
    out["schedule"] = outcome(schedule)
    return out


def test_the_command_restates_october_and_raises_its_credit_note(three_ways):
    command = three_ways["command"]
    assert {str(r[0]) for r in command["restatements"]} == {"2026-10-01"}
    assert [r[6] for r in command["restatements"] if r[1] == "c002"] == ["late_usage"]  # r002 is a 2 vCPU Droplet
    over_billed = sorted(r[1] for r in command["restatements"] if r[5] < 0)
    assert over_billed and all(r[6] == "price_correction" for r in command["restatements"] if r[1] in over_billed)
    # Unpaid (no payments landed): each over-billed invoice gets an R1 credit note for the difference.
    assert sorted((kind, rule, customer) for kind, rule, customer, *_ in command["work_items"]) == [
        ("credit_note", "R1", customer) for customer in over_billed]
    assert {str(r[2]) for r in command["invoices"]} == {"2026-10-01", "2026-11-01"}


def test_the_ui_and_the_schedule_request_october_s_restatement_too(three_ways):
    # The UI's November run, then the run the daemon's restatement sensor requested for October, nothing else.
    assert three_ways["ui_runs"] == [(True, "2026-11-01", None, "SUCCESS"),
                                     (False, "2026-10-01", "restatement_sensor", "SUCCESS")]
    assert three_ways["schedule_requests"] == [("2026-10-01", "schedule"), ("2026-11-01", "schedule")]
    assert three_ways["schedule_runs"] == [("2026-10-01", "SUCCESS"), ("2026-11-01", "SUCCESS")]


@pytest.mark.parametrize("way", ["ui", "schedule"])
def test_every_way_leaves_the_same_restatements_invoices_and_work_items(three_ways, way):
    assert three_ways[way] == three_ways["command"]
