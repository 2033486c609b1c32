"""`published/marts`: the close's last step copies the marts out for BI (warehouse/published.py says how).

It depends on every asset of the `marts` dbt group, so it runs after the marts are
rebuilt on the issued copy, and it is partitioned like the close so it is part of
every month's run. The queue CLI publishes through `warehouse.published.publish`.

Before copying, it creates `marts.alerts` (empty) when the alert sensor has not yet
mirrored any alert, so BI finds every mart of the contract from the first close on.
"""


import time
from pathlib import Path

import dagster as dg
import duckdb

from alerts.mirror import create_alerts_table_if_missing
from assets.dbt import published_marts
from orchestration.partitions import monthly_partitions
from orchestration.resources import WarehouseResource
from orchestration.settings import absolute, setting
from warehouse.published import WarehouseBusy, publish_now

LOCK_WAIT_SECONDS = 60  # how long the close waits for a queue mirror (a second or so) to let go of the warehouse


def published_dir() -> Path:
    """BILLOPS_PUBLISHED resolved against the working directory (docs/contract/published-interface.md)."""
    return absolute(setting("BILLOPS_PUBLISHED"))


def _create_alerts_table(warehouse: WarehouseResource) -> None:
    """marts.alerts in the warehouse, empty if missing; WarehouseBusy while a queue mirror holds the file."""
    try:
        with warehouse.connect() as con:
            create_alerts_table_if_missing(con)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(str(exc)) from exc
        raise


@dg.asset(
    key=["published", "marts"],
    group_name="publication",
    deps=sorted(published_marts.keys, key=lambda k: k.to_user_string()),
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    description="The marts copied for BI: BILLOPS_PUBLISHED/billops.duckdb (read-only, schema marts) and "
                "parquet/<table>/, swapped in atomically; marts.alerts created empty if the sensor has not yet.",
)
def published_copy(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Copy every mart out of the warehouse once the close has published them (see module docstring)."""
    published = published_dir()
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            _create_alerts_table(warehouse)
            rows = publish_now(warehouse.warehouse_path, published)
            break
        except WarehouseBusy:  # a queue mirror holds the warehouse for a moment
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    context.log.info(f"published {len(rows)} marts to {published}")
    return dg.MaterializeResult(metadata={
        "published_dir": dg.MetadataValue.path(str(published)),
        "tables": len(rows),
        **{f"rows_{name}": count for name, count in rows.items()},
    })


publication_assets = [published_copy]
