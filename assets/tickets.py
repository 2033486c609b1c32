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

from assets.ingestion import raise_bad_files
from assets.jsonl import Field, JsonlSource, ingest, unknown_customer
from config.partitions import monthly_partitions, run_month
from quality.ingestion_checks import reconcile_spec, rows_reconcile
from warehouse.resource import WarehouseResource

TICKETS_KEY = dg.AssetKey(["raw", "tickets"])

_INVOICE_NUMBER = """CASE json_type(doc, '$.custom_fields')
    WHEN 'OBJECT' THEN json_extract(doc, '$.custom_fields.invoice_number')
    WHEN 'ARRAY' THEN list_filter(json_extract(doc, '$.custom_fields[*]'),
                                  lambda f: json_extract_string(f, '$.id') = 'invoice_number')[1] -> '$.value'
  END"""

TICKETS = JsonlSource(
    name="tickets",
    folder="tickets",
    newest_by="updated_at",
    fields=(
        Field("id", "$.id", "BIGINT", required=True),
        Field("created_at", "$.created_at", "TIMESTAMP", required=True),
        Field("updated_at", "$.updated_at", "TIMESTAMP", required=True),
        Field("status", "$.status", required=True, values=("new", "open", "pending", "hold", "solved", "closed")),
        Field("channel", "$.via.channel", values=("chat", "web", "email", "api")),
        Field("requester_id", "$.requester_id", "BIGINT"),
        Field("customer_id", "$.organization_id", required=True),
        Field("assignee_id", "$.assignee_id", "BIGINT"),
        Field("group_id", "$.group_id", "BIGINT"),
        Field("subject", "$.subject"),
        Field("tags", "$.tags", "VARCHAR[]"),
        Field("invoice_number", "$.custom_fields.invoice_number", value_sql=_INVOICE_NUMBER),
        Field("satisfaction_score", "$.satisfaction_rating.score", values=("good", "bad", "offered", "unoffered")),
        Field("reply_time_calendar_minutes", "$.metrics.reply_time_in_minutes.calendar", "BIGINT", nonnegative=True),
        Field("reply_time_business_minutes", "$.metrics.reply_time_in_minutes.business", "BIGINT", nonnegative=True),
        Field("full_resolution_calendar_minutes", "$.metrics.full_resolution_time_in_minutes.calendar", "BIGINT", nonnegative=True),
        Field("agent_work_calendar_minutes", "$.metrics.agent_work_time_in_minutes.calendar", "BIGINT", nonnegative=True),
        Field("solved_at", "$.metrics.solved_at", "TIMESTAMP"),
        Field("reopens", "$.metrics.reopens", "BIGINT", nonnegative=True),
    ),
)

TICKET_RULES = [unknown_customer("customer_id")]


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
