"""One close, however it starts (issue 15): `billops close`, the job launched for the month as the UI
launches it, and the monthly schedule's run requests leave the same restatements, invoices and work items.

Each way is built once per test run by whichever xdist worker asks first (`build_once`), in its own
test file (tests/test_close_way_*.py), so the three ways' instances run side by side: each costs
~2 runs through the queue, and most of a run through the instance is waiting (queue, launch, sensor tick).

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

from tests.conftest import ClosedGolden, _shared_dir, build_once, copy_workspace
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
    """The rows each way must leave alike, as text (kept as JSON between workers; '12.30' stays '12.30')."""
    return {name: [[None if v is None else str(v) for v in row] for row in ws.query(sql)] for name, sql in
            (("restatements", RESTATEMENTS), ("invoices", INVOICES), ("lines", LINES), ("work_items", WORK_ITEMS))}


def base_workspace(closed_golden: ClosedGolden, root) -> object:
    """A copy of the closed golden October with the same changes landed for every way."""
    assert closed_golden.result.returncode == 0, closed_golden.result.stderr[-3000:]
    base = copy_workspace(closed_golden.ws, root)
    base.write_usage("usage/dt=2026-10-25/part-9-late.parquet",
                     droplet_hours("late-c002", "c002", "r002", "droplet-s-2vcpu-4gb", datetime(2026, 10, 25, tzinfo=UTC), 10))
    set_price(base, "droplet-s-1vcpu-1gb", "0.001")  # from 0.00893: its October users were over-billed
    land_month(base, 2026, 11, 30, {})
    return base


def by_command(base, root) -> dict:
    """`billops close --month 2026-11`: restates October first, then issues November."""
    command = copy_workspace(base, root)
    result = command.close("2026-11", through_instance=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return outcome(command)


def by_the_ui(base, root) -> dict:
    """November alone, submitted as the UI's "Materialize" submits it; the daemon's restatement sensor then
    requests October's restatement by itself."""
    ui = copy_workspace(base, root)
    closed_before = {run_id for run_id, _ in ui.runs()}
    with through_instance(ui) as (settings, start_daemon):
        november = submit(ui, settings, "2026-11-01", {})  # the UI sets no billops tag
        daemon = start_daemon()
        try:
            records = wait_for(ui, lambda rs: any(r.dagster_run.tags.get("billops/trigger") == "restatement_sensor"
                                                  for r in rs) and not in_flight(rs))
        finally:
            from cli.instance_runs import stop_daemon
            stop_daemon(daemon)
    new = sorted((r for r in records if r.dagster_run.run_id not in closed_before), key=lambda r: r.create_timestamp)
    runs = [[r.dagster_run.run_id == november, r.dagster_run.tags.get("dagster/partition"),
             r.dagster_run.tags.get("billops/trigger"), r.dagster_run.status.value] for r in new]
    return {**outcome(ui), "runs": runs}


def by_the_schedule(base, root) -> dict:
    """The run requests of the schedule's tick on 2026-12-01 06:00 UTC, submitted together, in order."""
    import dagster as dg

    from orchestration.schedules import close_previous_month_schedule

    schedule = copy_workspace(base, root)
    closed_before = {run_id for run_id, _ in schedule.runs()}
    with mock.patch.dict(os.environ, schedule.settings), schedule.instance() as instance:
        requests = close_previous_month_schedule(dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 12, 1, 6, tzinfo=UTC)))
    with through_instance(schedule) as (settings, start_daemon):
        for request in requests:
            submit(schedule, settings, request.partition_key, request.tags)
        daemon = start_daemon()
        try:
            records = wait_for(schedule, lambda rs: not in_flight(rs))
        finally:
            from cli.instance_runs import stop_daemon
            stop_daemon(daemon)
    return {**outcome(schedule),
            "requests": [[r.partition_key, r.tags.get("billops/trigger")] for r in requests],
            "runs": sorted([r.dagster_run.tags.get("dagster/partition"), r.dagster_run.status.value]
                           for r in records if r.dagster_run.run_id not in closed_before)}


WAYS = {"command": by_command, "ui": by_the_ui, "schedule": by_the_schedule}


def closed_by(way: str, closed_golden: ClosedGolden, tmp_path_factory) -> dict:
    """What closing November `way` left, built once per test run (shared between xdist workers)."""
    def build(root):
        base = base_workspace(closed_golden, root / "base")
        return WAYS[way](base, root / way)

    return build_once(_shared_dir(tmp_path_factory), f"three-ways-{way}", build)[1]


