"""Jobs: the monthly close materializes every asset of a billing month."""

import dagster as dg


close_month_job = dg.define_asset_job(
    name="close_month_job",
    selection=dg.AssetSelection.all(),
    description="Ingest, rate and invoice one billing month (billops close --month YYYY-MM).",
)
