"""Metered usage of a billing month: every folder ingested (assets/usage_folder.py), then the month's aggregates.

The monthly close rates a fully ingested month. This asset first ingests every `usage/dt=D/`
folder of the month that daily ingestion (assets/usage_day.py) has not ingested, or whose files,
reference data or look-back changed since — so a close with no daily ingestion before it reads
every file once, as it always did, and a close after daily ingestion reads no record at all — then
copies the month's settled aggregates (`raw.usage_accepted_daily`) into `raw.usage_daily`, what
dbt rates.

`raw.usage_month`, the accepted records (a typed view over the month's files less the rows
quarantined or re-delivered), stays a view for the few readers that need records: dbt's
`stg_usage__events`, C14's examples when it fails, and a restatement's late-usage customers. It
is not scanned on the path of a close that passes. The files, ledger and per-file counts follow
the ingestion skeleton's rules (assets/ingestion.py): a truncated, changed or vanished file is
named and the close fails once the rest has loaded.
"""

from datetime import date
from pathlib import Path

import dagster as dg

from assets.ingestion import Ingested, quarantined_by_reason, raise_bad_files, read_file_loads
from assets.ledger import unverified_recorded_files
from assets.usage_folder import ingest_folders, refresh_usage_daily, visible_sql
from assets.usage_typed import (ACCEPTED_VIEW_SQL, FLAGGED_SQL, LOOKUPS_SQL, SOURCE_COLUMNS,  # noqa: F401 (re-exported)
                                USAGE_COLUMNS, ParquetFooter, probe_parquet, repeated_event_hashes,
                                sorted_event_hashes, usage_view_sql)
from config.partitions import monthly_partitions
from quality.usage_checks import USAGE_KEY, usage_check_specs, usage_is_priced, usage_rows_reconcile
from warehouse.landing import usage_month_prefix
from warehouse.resource import WarehouseResource

USAGE_DAILY_KEY = dg.AssetKey(["raw", "usage_daily"])


def month_records_view(con, landing: Path, month: date) -> None:
    """raw.usage_month_typed and raw.usage_month over the files the month's folders loaded (footers only)."""
    rels = [rel for (rel,) in con.execute(
        "SELECT file FROM raw.usage_folder_files WHERE billing_month = ? ORDER BY file", [month]).fetchall()]
    paths = [landing / rel for rel in rels if (landing / rel).is_file()]
    con.execute(usage_view_sql(landing, paths, {p: probe_parquet(con, p) for p in paths}))
    con.execute(ACCEPTED_VIEW_SQL)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            USAGE_KEY, group_name="landing", kinds={"duckdb", "parquet"},
            deps=[dg.AssetKey(["raw", "customers"]), dg.AssetKey(["raw", "price_book"])],
            description="Accepted usage of the month: every usage/dt=D/ folder ingested (daily or now), rows quarantined "
                        "(audit.quarantine) or re-delivered (audit.redeliveries); raw.usage_month the records view.",
        ),
        dg.AssetSpec(
            USAGE_DAILY_KEY, group_name="landing", kinds={"duckdb"}, deps=[USAGE_KEY],
            description="raw.usage_daily: the accepted usage summed per customer, resource, SKU and UTC day.",
        ),
    ],
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    check_specs=usage_check_specs,
)
def usage(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Ingest the month's folders not yet ingested (or changed), then hand dbt the month's aggregates."""
    month = context.partition_time_window.start.date()
    landing = warehouse.landing_path
    with warehouse.connect() as con:
        batch = ingest_folders(con, landing, month)
        context.log.info(f"usage {month:%Y-%m}: {len(batch.days)} folder(s) ingested by this close "
                         f"({', '.join(f'{d:%d}' for d in batch.days) or 'none: all ingested before'})")
        # The whole ledger, every close, by a stat per file (a hash where size or mtime moved).
        problems = batch.problems | unverified_recorded_files(con, landing, "usage", "")
        refresh_usage_daily(con, month, whole=True)  # what dbt rates: the month copied whole
        month_records_view(con, landing, month)
        ingested = Ingested("usage", read_file_loads(con, "usage", month),
                            quarantined_by_reason(con, "usage", usage_month_prefix(month)), problems)
        checks = [usage_rows_reconcile(con, month, visible_sql(month)), usage_is_priced(con, month)]
        days = con.execute("SELECT count(*), coalesce(sum(records), 0) FROM raw.usage_daily").fetchone()
    raise_bad_files(context, "usage", [ingested])
    yield ingested.result(USAGE_KEY, checks, folders_ingested=len(batch.days))
    yield dg.MaterializeResult(asset_key=USAGE_DAILY_KEY, metadata={"rows": days[0], "records": days[1]})
