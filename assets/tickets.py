"""Support tickets: every tickets/*.jsonl → raw.tickets, the newest version of each ticket.

Zendesk sends a ticket again each time it changes, so the newest `updated_at`
wins (docs/contract/inputs.md, Tickets). Older versions are not errors: they are
recorded in `audit.redeliveries` (source 'tickets'), where `first_file` and
`first_row_number` name the version that stands. Two versions with the same
`updated_at` and different content cannot be ordered: the later line is
quarantined `conflicting_duplicate` and the earlier (file, line) stands.

Ticket files are not month-scoped, so each close reads all of them (they are
small); the partition is the close that read them. Shapes this module accepts,
Zendesk's: `id`, `requester_id`, `assignee_id`, `group_id` and the metrics'
minutes are JSON integers; times are ISO-8601 text; `organization_id` is our
customer_id (text). `custom_fields` holds the invoice number either as
Zendesk's list of `{"id": "invoice_number", "value": ...}` or as an object
`{"invoice_number": ...}`. A required field missing or mistyped, or a status,
channel or rating outside the contract's lists, is `bad_schema`; an
organization not in reference/customers.csv is `unknown_customer`.
"""

import dagster as dg

from assets.feeds import TICKET_RULES, TICKETS
from assets.ingestion import raise_bad_files
from assets.jsonl import ingest
from config.partitions import monthly_partitions, run_month
from quality.ingestion_checks import reconcile_spec, rows_reconcile
from warehouse.resource import WarehouseResource

TICKETS_KEY = dg.AssetKey(["raw", "tickets"])



@dg.asset(
    key=TICKETS_KEY,
    group_name="landing",
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    deps=[dg.AssetKey(["raw", "customers"])],
    kinds={"duckdb", "json"},
    check_specs=[reconcile_spec(TICKETS_KEY, "tickets")],
    description="Support tickets, newest version of each: raw.tickets, a typed view over every tickets/*.jsonl less the lines quarantined (audit.quarantine) or superseded (audit.redeliveries).",
)
def tickets(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Ingest every ticket file: ledger it, quarantine bad lines, keep each ticket's newest version."""
    month = run_month(context).start
    with warehouse.connect() as con:
        ingested = ingest(con, warehouse.landing_path, TICKETS, TICKET_RULES, month)
        check = rows_reconcile(con, TICKETS_KEY, "tickets", "raw.tickets", month)
    raise_bad_files(context, "tickets", [ingested])
    return ingested.result(TICKETS_KEY, [check])
