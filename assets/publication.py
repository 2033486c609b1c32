"""`published/marts`: the close's last step copies the marts out for BI (warehouse/published.py says how).

It depends on every asset of the `marts` dbt group, so it runs after the marts are
rebuilt on the issued copy, and it is partitioned like the close so it is part of
every month's run. The queue CLI publishes through `warehouse.published.publish`.
"""


import time
from pathlib import Path

import dagster as dg

from assets.dbt import published_marts
from orchestration.partitions import monthly_partitions
from orchestration.resources import WarehouseResource
from orchestration.settings import absolute, setting
from warehouse.published import WarehouseBusy, publish_now

LOCK_WAIT_SECONDS = 60  # how long the close waits for a queue mirror (a second or so) to let go of the warehouse


def published_dir() -> Path:
    """BILLOPS_PUBLISHED resolved against the working directory (landing-contract.md)."""
    return absolute(setting("BILLOPS_PUBLISHED"))


@dg.asset(
    key=["published", "marts"],
    group_name="publication",
    deps=sorted(published_marts.keys, key=lambda k: k.to_user_string()),
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    description="The marts copied for BI: BILLOPS_PUBLISHED/marts.duckdb and parquet/<table>/, swapped in atomically.",
)
def published_copy(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Copy every mart out of the warehouse once the close has published them (see module docstring)."""
    published = published_dir()
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
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
