"""Jobs: the monthly close materializes every monthly asset of a billing month; a day's usage, and a day's
tickets and payments, have a job each.

All carry the warehouse's writer tag: the instance's run queue runs one of them at a time, so a
day's ingestion never runs beside a close (DuckDB allows one writing process).
"""

import dagster as dg

from quality.feeds_checks import FEEDS_DAY_KEY
from quality.usage_checks import USAGE_DAY_KEY
from warehouse.close_options import WAREHOUSE_SLOT_TAG

# The daily partitioned assets: never part of a close (a job's assets share one partitioning).
DAILY = dg.AssetSelection.assets(USAGE_DAY_KEY, FEEDS_DAY_KEY)

close_month_job = dg.define_asset_job(
    name="close_month_job",
    selection=dg.AssetSelection.all() - DAILY - dg.AssetSelection.checks_for_assets(USAGE_DAY_KEY, FEEDS_DAY_KEY),
    description="Ingest, rate, prove and issue one billing month (billops close --month YYYY-MM).",
    # DuckDB allows one writing process: every step runs in the run's process, one at a time, and the
    # instance's run queue starts one run with this tag at a time (orchestration/instance_config.py):
    # a second close waits in the queue instead of failing on the warehouse's lock.
    executor_def=dg.in_process_executor,
    tags={WAREHOUSE_SLOT_TAG: "writer"},
)


ingest_usage_day_job = dg.define_asset_job(
    name="ingest_usage_day_job",
    selection=dg.AssetSelection.assets(USAGE_DAY_KEY),
    description="Ingest one landed usage/dt=D/ folder and settle its month (the landing sensor, billops ingest).",
    executor_def=dg.in_process_executor,
    tags={WAREHOUSE_SLOT_TAG: "writer"},
)

ingest_feeds_day_job = dg.define_asset_job(
    name="ingest_feeds_day_job",
    selection=dg.AssetSelection.assets(FEEDS_DAY_KEY),
    description="Ingest the tickets and payments landed so far and judge them the day they land (the feeds "
                "landing sensor); the close reads them all again.",
    executor_def=dg.in_process_executor,
    tags={WAREHOUSE_SLOT_TAG: "writer"},
)


# A run holds the warehouse's slot from the moment it is queued until it ends; a CANCELING one still does.
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def close_runs_in_flight(instance: dg.DagsterInstance, but: str | None = None) -> list[str]:
    """Ids of the close runs queued or in progress, oldest first, except `but` (the restatement sensor
    skips while there is one; `billops close` waits for none before stopping a daemon it started)."""
    records = instance.get_run_records(dg.RunsFilter(job_name=close_month_job.name, statuses=IN_FLIGHT))
    return [r.dagster_run.run_id for r in sorted(records, key=lambda r: r.create_timestamp) if r.dagster_run.run_id != but]


def skip_while_a_close_runs(instance: dg.DagsterInstance, because: str) -> dg.SkipReason | None:
    """The tick's skip while a close is queued or in progress (`because`: why that close makes this tick
    unnecessary), else None: a sensor that writes or plans from the warehouse's state waits for it."""
    busy = close_runs_in_flight(instance)
    return dg.SkipReason(f"a close is queued or running ({', '.join(busy)}): {because}") if busy else None
