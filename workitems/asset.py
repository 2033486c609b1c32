"""`marts/work_items`: the close raises the month's work items, as a step of its own run (decisions #59).

docs/contract/work-items.md has items raised by sensors watching the materialized data. The data
they watch (issued invoices, restatements, the payments and tickets loaded) is materialized by a
close run and by nothing else, so the close's own asset, downstream of what the rules read, is the
sensor's natural equivalent: it runs once each time that data changes, inside the only process
allowed to open the warehouse (decisions #60), and a close launched from the UI, the schedule, a
backfill or `billops close` raises the same items.

The asset's key is the dbt source `queue.work_items` (dbt_project/models/staging/queue), so the
marts that read the queue (accounts_receivable, kpi_billing_monthly) and the payment controls run
after it. What it does is workitems/raising.py; its metadata (`raised`, `marked_done`, ...) is what
`billops close` prints.
"""


import dagster as dg

from config.partitions import monthly_partitions
from warehouse.resource import WarehouseResource
from workitems.raising import raise_and_mirror
from workitems.store import queue_engine

KEY = dg.AssetKey(["marts", "work_items"])
# What the rules read (workitems/rules.py): the issued copy, the restatements, payments, tickets, customers.
READS = [dg.AssetKey(["audit", name]) for name in ("issued_invoices", "issued_months", "restatements")] + [
    dg.AssetKey(["staging", name]) for name in ("stg_payments__charges", "stg_payments__refunds",
                                                "stg_payments__disputes", "stg_support__tickets",
                                                "stg_reference__customers")]


@dg.asset(
    key=KEY,
    group_name="workitems",
    deps=READS,
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    description="The billing team's queue (docs/workitems.md): raises refunds, credit notes (R1, R2, R3) and "
                "payment extensions (E1) into the operational store, marks approved refunds done when they "
                "arrive in the payments feed, and mirrors the queue into marts.work_items.",
)
def work_items(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Raise, close and mirror (workitems/raising.py) on the run's own warehouse connection."""
    engine = queue_engine()
    try:
        with warehouse.connect() as con:
            outcome = raise_and_mirror(con, engine)
    finally:
        engine.dispose()
    context.log.info(f"work items: {outcome.summary}" + (f" ({outcome.note})" if outcome.note else ""))
    for refused in outcome.refused_done:
        context.log.warning(f"refund not matched to an approved work item: {refused}")
    return dg.MaterializeResult(metadata={
        "proposed": outcome.proposed,
        "raised": len(outcome.raised),
        "marked_done": len(outcome.done),
        "refunds_not_matched": len(outcome.refused_done),
        "queue_items": outcome.queue_size,
        "raised_ids": dg.MetadataValue.text(", ".join(outcome.raised) or "-"),
        "marked_done_ids": dg.MetadataValue.text(", ".join(outcome.done) or "-"),
        **({"refunds_not_matched_detail": dg.MetadataValue.text("; ".join(outcome.refused_done))}
           if outcome.refused_done else {}),
        **({"note": dg.MetadataValue.text(outcome.note)} if outcome.note else {}),
    })


workitems_assets = [work_items]
