"""The usage of one UTC day, ingested as its `usage/dt=D/` folder lands (daily partitions).

Requested by the landing sensor (orchestration/usage_sensor.py) or `billops ingest`, run in its own
job (`ingest_usage_day_job`) that holds the warehouse's writer slot like a close. It loads the
customers and price book as they stand (what the row rules judge by), ingests the folder and
settles the month (assets/usage_folder.py): the month's accepted aggregates, and raw.usage_daily that
the month-to-date preview rates (orchestration/preview.py runs it after each successful day), are
then current as of the days ingested. The checks that can judge a day run here, so a bad file is heard of the day it
lands: unreadable or changed files, C9 (unpriced usage), the per-file reconciliation, C13 on the
customers and price book the row rules judged by. They are not
blocking: the step succeeds with the rest of the folder loaded, the alert sensor sends one message
per failed check and day, and the close judges the month again as it always did.
"""

from datetime import datetime, timezone

import dagster as dg

from assets.ingestion import read_file_loads
from assets.reference_tables import RULE_REFERENCES, load_reference_tables
from assets.usage_folder import folder_prefix, ingest_folders, refresh_usage_daily, visible_sql
from config.partitions import daily_partitions
from quality.usage_checks import (USAGE_DAY_KEY, USAGE_KEY, usage_day_check_specs, usage_day_is_priced,
                                  usage_day_readable, usage_day_references_valid, usage_day_rows_reconcile)
from warehouse.resource import WarehouseResource

def ingest_day(con, landing, day) -> tuple[object, list]:
    """Ingest one folder (reference tables first); the batch and the day's check results."""
    month = day.replace(day=1)
    load_reference_tables(con, landing, RULE_REFERENCES, datetime.now(timezone.utc).replace(tzinfo=None))
    batch = ingest_folders(con, landing, month, [day])
    refresh_usage_daily(con, month)  # what the month-to-date preview rates
    prefix = folder_prefix(day)
    checks = [usage_day_readable(batch.problems), usage_day_is_priced(con, prefix),
              usage_day_rows_reconcile(con, month, prefix, visible_sql(month)), *usage_day_references_valid(con)]
    return batch, checks


@dg.asset(
    key=USAGE_DAY_KEY,
    group_name="landing",
    kinds={"duckdb", "parquet"},
    partitions_def=daily_partitions,
    check_specs=usage_day_check_specs,
    deps=[dg.AssetKey(["raw", "customers"]), dg.AssetKey(["raw", "price_book"])],
    description="One usage/dt=D/ folder ingested: its rows quarantined or summed, the month's duplicates settled "
                "and its accepted aggregates (raw.usage_accepted_daily) updated, without re-reading other days.",
)
def usage_day(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Ingest the day's folder and judge it."""
    day = context.partition_time_window.start.date()
    landing = warehouse.landing_path
    with warehouse.connect() as con:
        batch, checks = ingest_day(con, landing, day)
        prefix = folder_prefix(day)
        per_file = [r for r in read_file_loads(con, "usage", day.replace(day=1)) if r["file"].startswith(prefix[:-1])]
    for rel, why in sorted(batch.problems.items()):
        context.log.error(f"usage file not loaded: {rel}: {why}")
    totals = {k: sum(r[k] for r in per_file) for k in ("rows_read", "accepted", "redelivered", "quarantined")}
    yield dg.MaterializeResult(
        metadata={"folder": f"usage/dt={day:%Y-%m-%d}/", "files": len(per_file), **totals,
                  "files_not_loaded": dg.MetadataValue.json(batch.problems)},
        check_results=checks,
    )


__all__ = ["usage_day", "USAGE_DAY_KEY", "USAGE_KEY"]
