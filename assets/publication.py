"""`published/marts`: the close's last step copies the marts out for BI (warehouse/published.py says how).

It depends on every asset of the `marts` dbt group, so it runs after the marts are
rebuilt on the issued copy, and it is partitioned like the close so it is part of
every month's run.

Before copying, it writes the warehouse's `marts.alerts` from the alert store (empty at
the first close: BI finds every mart of the contract from then on); only a close run opens
the warehouse, so this is where that copy catches up (decisions #60). The published
`marts.work_items` and `marts.alerts` are read from the operational store under the publish
lock, so a decision made during the close (which refreshes the copy itself, warehouse
untouched) is never overwritten by an older queue.
"""


import time

import dagster as dg
import duckdb

from alerts import mirror as alerts_mirror
from assets.dbt import PUBLISHED_MARTS
from config.partitions import monthly_partitions
from config.settings import load_settings
from warehouse.published import WarehouseBusy, publish_now
from warehouse.resource import WarehouseResource
from workitems import mirror as work_items_mirror
from workitems.store import queue_engine

LOCK_WAIT_SECONDS = 60  # how long the close waits for a process that still opens the warehouse for a moment


def _write_alerts(warehouse: WarehouseResource) -> None:
    """marts.alerts in the warehouse, replaced from the alert store; WarehouseBusy while another process holds it."""
    try:
        with warehouse.connect() as con:
            con.execute("BEGIN TRANSACTION")
            alerts_mirror.write_alerts(con)
            con.execute("COMMIT")
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(str(exc)) from exc
        raise


@dg.asset(
    key=["published", "marts"],
    group_name="publication",
    deps=PUBLISHED_MARTS,
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    description="The marts copied for BI: BILLOPS_PUBLISHED/billops.duckdb (read-only, schema marts) and "
                "parquet/<table>/, swapped in atomically; marts.work_items and marts.alerts as the operational "
                "store holds them now.",
)
def published_copy(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Copy every mart out of the warehouse once the close has published them (see module docstring)."""
    published = load_settings().published  # BILLOPS_PUBLISHED (docs/contract/published-interface.md)
    queue = queue_engine()
    from_the_store = {work_items_mirror.TABLE: lambda con: work_items_mirror.write_work_items(con, queue),
                      alerts_mirror.TABLE: alerts_mirror.write_alerts}
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    try:
        while True:
            try:
                _write_alerts(warehouse)
                rows = publish_now(warehouse.warehouse_path, published, replace=from_the_store)
                break
            except WarehouseBusy:  # a process that still opens the warehouse (e.g. an older billops) for a moment
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        queue.dispose()
    context.log.info(f"published {len(rows)} marts to {published}")
    return dg.MaterializeResult(metadata={
        "published_dir": dg.MetadataValue.path(str(published)),
        "tables": len(rows),
        **{f"rows_{name}": count for name, count in rows.items()},
    })


publication_assets = [published_copy]
