"""Jobs: the monthly close materializes every asset of a billing month."""

import dagster as dg


close_month_job = dg.define_asset_job(
    name="close_month_job",
    selection=dg.AssetSelection.all(),
    description="Ingest, rate, prove and issue one billing month (billops close --month YYYY-MM).",
    # DuckDB allows one writing process: every step runs in the launching process, one at a time.
    executor_def=dg.in_process_executor,
)
