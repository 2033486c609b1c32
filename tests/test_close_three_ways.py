"""One close, however it starts (issue 15): `billops close`, the job launched for the month as the UI
launches it, and the monthly schedule's run requests leave the same restatements, invoices and work items.

On three copies of the closed golden October, the same changes land: 10 late droplet hours for
c002 (under-billed), a lower price for the 1 vCPU Droplet (its users over-billed: R1 credit notes),
and a November of one file a day. Then November is closed:
- `command`: `billops close --month 2026-11` (restates October first, then issues November);
- `ui`: close_month_job for November alone, as the UI's "Materialize" launches it, then one tick
  of the restatement sensor and the run it requests;
- `schedule`: the runs requested by the schedule's tick on 2026-12-01 06:00 UTC, in order.
Run ids and timestamps aside, the three warehouses agree row for row.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from unittest import mock

import pytest

from tests.conftest import copy_workspace
from tests.test_restatements import droplet_hours, land_month, restatement_sensor_tick, set_price

UTC = timezone.utc
RESTATEMENTS = ("SELECT billing_month, customer_id, invoice_number, issued_total, recomputed_total, difference, cause "
                "FROM audit.restatements ORDER BY ALL")
INVOICES = "SELECT * EXCLUDE (issued_at, run_id) FROM audit.issued_invoices ORDER BY invoice_number"
LINES = "SELECT * EXCLUDE (issued_at, run_id) FROM audit.issued_invoice_lines ORDER BY ALL"
WORK_ITEMS = ("SELECT kind, rule, customer_id, invoice_number, charge_id, ticket_id, amount, proposed_due_date, "
              "status, requires_approval, dedup_key FROM marts.work_items ORDER BY dedup_key")


def execute(ws, request) -> bool:
    """Run one RunRequest of close_month_job on the workspace's instance, with the request's tags."""
    import dagster as dg

    from cli.close import close_job

    with mock.patch.dict(os.environ, ws.settings), ws.instance() as instance:
        tags = {**(request.tags or {}), "dagster/partition": request.partition_key}
        return dg.execute_job(dg.reconstructable(close_job), instance=instance, tags=tags).success


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
    result = command.close("2026-11")
    assert result.returncode == 0, result.stderr[-3000:]
    out["command"] = outcome(command)

    ui = copy_workspace(base, base.root.parent / "ui")
    assert execute(ui, dg.RunRequest(partition_key="2026-11-01"))
    requests = restatement_sensor_tick(ui)
    out["ui_requests"] = [(r.partition_key, r.tags.get("billops/trigger")) for r in requests]
    assert all(execute(ui, request) for request in requests)
    out["ui"] = outcome(ui)

    schedule = copy_workspace(base, base.root.parent / "schedule")
    with mock.patch.dict(os.environ, schedule.settings), schedule.instance() as instance:
        requests = close_previous_month_schedule(dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 12, 1, 6, tzinfo=UTC)))
    out["schedule_requests"] = [(r.partition_key, r.tags.get("billops/trigger")) for r in requests]
    assert all(execute(schedule, request) for request in requests)
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
    assert three_ways["ui_requests"] == [("2026-10-01", "restatement_sensor")]
    assert three_ways["schedule_requests"] == [("2026-10-01", "schedule"), ("2026-11-01", "schedule")]


@pytest.mark.parametrize("way", ["ui", "schedule"])
def test_every_way_leaves_the_same_restatements_invoices_and_work_items(three_ways, way):
    assert three_ways[way] == three_ways["command"]
