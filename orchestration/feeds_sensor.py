"""The feeds landing sensor: one run of `ingest_feeds_day_job` each time a ticket or payment file lands or changes.

Each tick stats tickets/*.jsonl and payments/{charges,refunds,disputes}/*.jsonl (a few hundred files at
most: a stat each) and requests a run keyed by their (name, size, mtime) fingerprint: Dagster requests a
run key once, so nothing new landed means no run, and a new file (or changed bytes) means one. The run's
partition is the UTC day of the tick, the day the files were seen landing, which the alerts name. Like
the usage sensor (orchestration/usage_sensor.py) it never opens the warehouse, requests nothing while a
close is queued or running (that close reads every ticket and payment file itself), skips a day of an
issued month (the close state in the operational store), and is off by default.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg

from assets.feeds import feed_files
from config.partitions import daily_partitions
from config.settings import load_settings
from orchestration.jobs import ingest_feeds_day_job, skip_while_a_close_runs
from warehouse.close_state import close_state_in_store
from warehouse.landing import files_fingerprint

TICK_SECONDS = 30


def feeds_fingerprint(landing: Path) -> str | None:
    """The fingerprint of every ticket and payment file (path, size, mtime); None when none landed."""
    files = feed_files(landing)
    if not files:
        return None
    return files_fingerprint(landing, files)


def today() -> date:
    return datetime.now(timezone.utc).date()


@dg.sensor(
    job=ingest_feeds_day_job,
    minimum_interval_seconds=TICK_SECONDS,
    description="Requests the ingestion of tickets and payments when a file lands or changes (run key: every "
                "file's fingerprint; partition: the day seen); waits while a close is in flight.",
)
def feeds_landing_sensor(context: dg.SensorEvaluationContext):
    skip = skip_while_a_close_runs(context.instance, "it reads every ticket and payment file itself")
    if skip:
        return skip
    fingerprint = feeds_fingerprint(load_settings().landing)
    if fingerprint is None:
        return dg.SkipReason("no ticket or payment file landed")
    day = today()
    state = close_state_in_store()
    if state and day.replace(day=1) in set(state.issued):
        return dg.SkipReason(f"{day:%Y-%m} is issued: its tickets and payments are read again at its restatement")
    if f"{day:%Y-%m-%d}" not in daily_partitions.get_partition_keys():
        return dg.SkipReason(f"{day} is not a day of the partitions (reload the code location)")
    return [dg.RunRequest(run_key=f"feeds-{fingerprint}", partition_key=f"{day:%Y-%m-%d}",
                          tags={"billops/feeds_fingerprint": fingerprint})]


feeds_sensors = [feeds_landing_sensor]
