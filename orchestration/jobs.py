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
