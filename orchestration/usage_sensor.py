"""The landing sensor: one run of `ingest_usage_day_job` per usage/dt=D/ folder that landed or changed.

Each tick lists the landing zone's usage folders (a stat per file: ~1 ms a folder of 30 files) and
requests a run for every folder of a month not yet issued, keyed by the folder and its files'
(name, size, mtime): Dagster requests a run key once, so an unchanged folder is never re-run and a
late file (a new name) or changed bytes (new size or mtime) is. The folders of an issued month are
the restatement sensor's (a late file restates the month at its close). It never opens the
warehouse (a close or a day run may hold it), and it requests nothing while a close is queued or
running: that close ingests every folder of its month itself, and the next tick sees the rest.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from config.partitions import daily_partitions
from config.settings import load_settings
from orchestration.jobs import ingest_usage_day_job, skip_while_a_close_runs
from warehouse.close_state import close_state_in_store
from warehouse.landing import files_fingerprint

TICK_SECONDS = 30


def landed_folders(landing: Path) -> dict[date, str]:
    """Each usage folder holding a Parquet file → the fingerprint of its files (name, size, mtime)."""
    folders = {}
    for folder in sorted((landing / "usage").glob("dt=[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]")):
        files = sorted(folder.glob("*.parquet"))
        if not files:
            continue
        try:
            day = date.fromisoformat(folder.name[3:])
        except ValueError:
            continue
        folders[day] = files_fingerprint(folder, files)
    return folders


@dg.sensor(
    job=ingest_usage_day_job,
    minimum_interval_seconds=TICK_SECONDS,
    description="Requests the ingestion of each usage/dt=D/ folder of an open month when it lands or a file "
                "lands in it (run key: the folder and its files' fingerprint); waits while a close is in flight.",
)
def usage_landing_sensor(context: dg.SensorEvaluationContext):
    skip = skip_while_a_close_runs(context.instance, "it ingests its month's folders itself")
    if skip:
        return skip
    state = close_state_in_store()
    issued = set(state.issued) if state else set()
    keys = set(daily_partitions.get_partition_keys())
    requests = [
        dg.RunRequest(run_key=f"usage-{day:%Y-%m-%d}-{fingerprint}", partition_key=f"{day:%Y-%m-%d}",
                      tags={"billops/usage_folder": f"usage/dt={day:%Y-%m-%d}/"})
        for day, fingerprint in landed_folders(load_settings().landing).items()
        if day.replace(day=1) not in issued and f"{day:%Y-%m-%d}" in keys
    ]
    return requests or dg.SkipReason("no usage folder of an open month landed")


usage_sensors = [usage_landing_sensor]
