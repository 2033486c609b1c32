"""The restatement sensor: an issued month whose inputs changed is restated, however the close started.

`billops close` restates earlier months before the month asked for, and so does the monthly
schedule; a month materialized from the UI, or a late file landing for an issued month while
nobody closes anything, is caught here. A tick while a close is queued or running requests
nothing: that close plans from the same state (the command submits its first run before it
starts a daemon, so the daemon's first tick already sees it). Each tick plans from the landing zone and the close
state in the operational store (warehouse/close_plan.py, the command's planner), never the
warehouse, and requests one run per month to restate, with the options that month was issued
with. The run key names the month and what changed, so a tick repeated before the run
finished requests nothing twice; once the run succeeded the month's state has moved on.
"""

from __future__ import annotations

import hashlib

import dagster as dg

from config.settings import load_settings
from orchestration.jobs import close_month_job, skip_while_a_close_runs
from warehouse.close_options import TRIGGER_TAG
from warehouse.close_plan import PlannedClose, restatements
from warehouse.close_state import close_state_in_store

TICK_SECONDS = 30  # a tick lists the landing zone and hashes 4 reference files: ~0.1 s


def restatement_request(step: PlannedClose, trigger: str) -> dg.RunRequest:
    """The run request of one planned close, keyed by month and reasons (one run per change)."""
    digest = hashlib.sha256("\n".join(step.reasons).encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=f"restate-{step.month.key}-{digest}", partition_key=step.month.partition_key,
                         tags={**step.options.tags(), TRIGGER_TAG: trigger})


@dg.sensor(
    job=close_month_job,
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Restates each issued month whose usage files or reference snapshots changed since its last "
                "successful close (docs/contract/billing-rules.md §6), with the options it was issued with.",
)
def restate_changed_months_sensor(context: dg.SensorEvaluationContext):
    # That close plans from the same state and restates what changed itself; the next tick after it
    # ends reads the state it left (else `billops close`'s own restatement would run twice).
    skip = skip_while_a_close_runs(context.instance, "it restates what changed itself")
    if skip:
        return skip
    state = close_state_in_store()
    if state is None:
        return dg.SkipReason("no month issued yet")
    planned = restatements(load_settings().landing, state)
    if not planned:
        return dg.SkipReason(f"{len(state.issued)} issued month(s), none with changed inputs")
    for step in planned:
        context.log.info(f"restate {step.month}: {'; '.join(step.reasons)}")
    return [restatement_request(step, "restatement_sensor") for step in planned]


restatement_sensors = [restate_changed_months_sensor]
