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

from datetime import date, datetime

import dagster as dg

from orchestration.jobs import close_month_job
from orchestration.restatement_sensor import TRIGGER_TAG, restatement_request
from config.settings import load_settings
from warehouse.close_plan import CloseRefused, plan_close
from warehouse.close_state import CloseState, close_state_in_store


def previous_month_key(tick: datetime) -> str:
    """The partition key of the month before the tick's month: 2026-11-01T06:00 → '2026-10-01'."""
    first = date(tick.year, tick.month, 1)
    year, month = (first.year - 1, 12) if first.month == 1 else (first.year, first.month - 1)
    return f"{year:04d}-{month:02d}-01"


@dg.schedule(
    job=close_month_job,
    cron_schedule="0 6 1 * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Close the previous billing month at 06:00 UTC on the 1st (stopped until a deployment starts it).",
)
def close_previous_month_schedule(context: dg.ScheduleEvaluationContext):
    """The same runs as `billops close --month M`: earlier months to restate first, then M."""
    month = previous_month_key(context.scheduled_execution_time)
    try:
        plan = plan_close(load_settings().landing, close_state_in_store() or CloseState(), month[:7])
    except CloseRefused as refused:
        return dg.SkipReason(f"close {month[:7]} refused: {refused}")
    requests = [restatement_request(step, "schedule") for step in plan if step.restatement]
    # run_key: one close per month per schedule tick, even if the daemon evaluates the tick twice.
    return requests + [dg.RunRequest(run_key=f"close-{month[:7]}", partition_key=month, tags={TRIGGER_TAG: "schedule"})]


schedules = [close_previous_month_schedule]
