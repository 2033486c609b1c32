"""Jobs: the monthly close materializes every asset of a billing month."""

import dagster as dg

from warehouse.close_options import WAREHOUSE_SLOT_TAG

close_month_job = dg.define_asset_job(
    name="close_month_job",
    selection=dg.AssetSelection.all(),
    description="Ingest, rate, prove and issue one billing month (billops close --month YYYY-MM).",
    # DuckDB allows one writing process: every step runs in the run's process, one at a time, and the
    # instance's run queue starts one run with this tag at a time (orchestration/instance_config.py):
    # a second close waits in the queue instead of failing on the warehouse's lock.
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
