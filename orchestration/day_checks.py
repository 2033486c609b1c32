"""The day checks a month's preview is failing on, read from the Dagster instance (never the warehouse).

A day's ingestion (usage: `ingest_usage_day_job`; tickets and payments: `ingest_feeds_day_job`) judges
what landed with checks that never block (quality/usage_checks.py, quality/feeds_checks.py). A failed
ERROR one marks the month's preview as failing until a later run judges the same thing again and it
passes: for usage the same day's folder (each run judges its own folder), for tickets and payments any
later day (each run judges every file). WARN checks alert but do not mark the preview (decisions #106).
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from config.billing_month import BillingMonth
from orchestration.jobs import ingest_feeds_day_job, ingest_usage_day_job

PARTITION_TAG = "dagster/partition"
# job → whether a run judges its own day only (usage: one folder) or everything landed (tickets and payments)
DAY_JOBS = {ingest_usage_day_job.name: True, ingest_feeds_day_job.name: False}


@dataclass(frozen=True)
class FailedDayCheck:
    day: str  # the run's partition, e.g. 2026-10-12
    check: str
    description: str

    def __str__(self) -> str:
        return f"{self.check} (day {self.day}): {self.description}"


def failed_day_checks(instance: dg.DagsterInstance, month: BillingMonth) -> list[FailedDayCheck]:
    """The ERROR day checks of `month` whose latest evaluation failed, by day then check."""
    days = [f"{month.start.replace(day=d):%Y-%m-%d}" for d in range(1, (month.end - month.start).days + 1)]
    latest: dict[tuple, tuple] = {}
    for job, per_day in DAY_JOBS.items():
        records = instance.get_run_records(dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS],
                                                         tags={PARTITION_TAG: days}))
        for record in sorted(records, key=lambda r: r.create_timestamp):
            day = record.dagster_run.tags[PARTITION_TAG]
            for event in instance.get_records_for_run(
                    record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records:
                evaluation = event.event_log_entry.dagster_event.event_specific_data
                if evaluation.severity != dg.AssetCheckSeverity.ERROR:
                    continue
                key = (job, evaluation.check_name, day if per_day else None)
                latest[key] = (day, evaluation)  # runs in creation order: the last one stands
    failed = [FailedDayCheck(day, evaluation.check_name, " ".join((evaluation.description or "").split()))
              for day, evaluation in latest.values() if not evaluation.passed]
    return sorted(failed, key=lambda f: (f.day, f.check))
