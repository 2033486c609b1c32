"""close_previous_month_schedule: the tick of the 1st closes the month before it, and it ships stopped."""

from datetime import datetime, timezone

import dagster as dg

from config.billing_month import BillingMonth
from config.partitions import monthly_partitions
from orchestration.schedules import close_previous_month_schedule, month_before


def test_the_tick_on_the_first_requests_the_previous_month(tmp_path, monkeypatch):
    # An empty landing zone and warehouse: nothing issued, nothing to restate, no earlier usage.
    monkeypatch.setenv("BILLOPS_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("BILLOPS_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.delenv("BILLOPS_QUEUE_URL", raising=False)
    with dg.instance_for_test() as instance:
        for tick, month in ((datetime(2026, 12, 1, 6, tzinfo=timezone.utc), "2026-11-01"),
                            (datetime(2027, 1, 1, 6, tzinfo=timezone.utc), "2026-12-01")):
            context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
            (request,) = close_previous_month_schedule(context)
            assert (request.partition_key, request.run_key) == (month, f"close-{month[:7]}")
            assert month in monthly_partitions.get_partition_keys(current_time=tick)


def test_the_schedule_is_stopped_until_started_and_runs_at_six_utc_on_the_first():
    assert close_previous_month_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert (close_previous_month_schedule.cron_schedule, close_previous_month_schedule.execution_timezone) == (
        "0 6 1 * *", "UTC")
    assert close_previous_month_schedule.job_name == "close_month_job"
    # the same month's key is not the previous one: a tick late on the 31st still closes the month before
    assert month_before(datetime(2026, 10, 31, 23, 59, tzinfo=timezone.utc)) == BillingMonth(2026, 9)
    assert month_before(datetime(2027, 1, 1, 6, tzinfo=timezone.utc)).partition_key == "2026-12-01"
