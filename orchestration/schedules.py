"""The month runs itself: on the 1st (UTC) the previous month is closed.

Stopped by default: a deployment turns it on once its landing zone is fed on time
(in the UI under Automation, or `dagster schedule start close_previous_month_schedule`).
The partition is computed from the tick's own time, not from the partitions'
"last" key: the months run up to a year ahead of the calendar (end_offset=12), so
"the last partition" would be a future month. 06:00 leaves the last UTC day's usage
six hours to land; a month whose days are still missing fails C9 and stays open,
exactly as `billops close` without --allow-missing-days.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from config.billing_month import BillingMonth
from config.settings import load_settings
from orchestration.jobs import close_month_job
from orchestration.restatement_sensor import TRIGGER_TAG, restatement_request
from warehouse.close_plan import CloseRefused, plan_close
from warehouse.close_state import CloseState, close_state_in_store


def month_before(tick: datetime) -> BillingMonth:
    """The month before the tick's month: 2026-11-01T06:00 → October 2026."""
    return BillingMonth.of(tick).previous()


@dg.schedule(
    job=close_month_job,
    cron_schedule="0 6 1 * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Close the previous billing month at 06:00 UTC on the 1st (stopped until a deployment starts it).",
)
def close_previous_month_schedule(context: dg.ScheduleEvaluationContext):
    """The same runs as `billops close --month M`: earlier months to restate first, then M."""
    month = month_before(context.scheduled_execution_time)
    try:
        plan = plan_close(load_settings().landing, close_state_in_store() or CloseState(), month)
    except CloseRefused as refused:
        return dg.SkipReason(f"close {month.key} refused: {refused}")
    requests = [restatement_request(step, "schedule") for step in plan if step.restatement]
    # run_key: one close per month per schedule tick, even if the daemon evaluates the tick twice.
    return requests + [dg.RunRequest(run_key=f"close-{month.key}", partition_key=month.partition_key,
                                     tags={TRIGGER_TAG: "schedule"})]


schedules = [close_previous_month_schedule]
