"""Tickets and payments as landed sources: their declarations and rules, and their ingestion outside a close.

The close's assets (assets/tickets.py, assets/payments.py) and a day's (assets/feeds_day.py, `billops
ingest`) run the same ingestion (assets/jsonl.py) with these rules, so they cannot drift. No Dagster
here: `billops ingest` reads files in a process that never imports it (~2.5 s).
"""

from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from assets.ingestion import Ingested
from assets.jsonl import Field, JsonlSource, Rule, ingest, unknown_customer
from assets.reference_tables import load_reference_tables

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


def _stripe(name: str, folder: str, *fields: Field) -> JsonlSource:
    return JsonlSource(name=name, folder=f"payments/{folder}", fields=(
        Field("id", "$.id", required=True),
        Field("object", "$.object", required=True, values=(folder.removesuffix("s"),)),
        Field("amount", "$.amount", "BIGINT", required=True, nonnegative=True),
        *fields,
    ))


CHARGES = _stripe(
    "charges", "charges",
    Field("amount_refunded", "$.amount_refunded", "BIGINT", nonnegative=True),
    Field("currency", "$.currency", required=True),
    Field("customer_id", "$.customer", required=True),
    Field("created", "$.created", "BIGINT", required=True),
    Field("status", "$.status", required=True, values=("succeeded", "failed", "pending")),
    Field("paid", "$.paid", "BOOLEAN"),
    Field("failure_code", "$.failure_code"),
    Field("failure_message", "$.failure_message"),
    Field("refunded", "$.refunded", "BOOLEAN"),
    Field("invoice_number", "$.metadata.invoice_number"),
)
REFUNDS = _stripe(
    "refunds", "refunds",
    Field("charge_id", "$.charge", required=True),
    Field("created", "$.created", "BIGINT", required=True),
    Field("currency", "$.currency", required=True),
    Field("reason", "$.reason", values=("duplicate", "fraudulent", "requested_by_customer")),
    Field("status", "$.status", required=True, values=("succeeded", "pending", "failed", "canceled")),
    Field("work_item_id", "$.metadata.work_item_id"),
)
DISPUTES = _stripe(
    "disputes", "disputes",
    Field("charge_id", "$.charge", required=True),
    Field("created", "$.created", "BIGINT", required=True),
    Field("currency", "$.currency"),
    Field("reason", "$.reason"),
    Field("status", "$.status", required=True,
          values=("warning_needs_response", "needs_response", "under_review", "won", "lost")),
)

NO_INVOICE_NUMBER = Rule("unknown_invoice", "t.invoice_number IS NULL", "'charge names no invoice (metadata.invoice_number is empty)'")
INVOICE_NOT_ISSUED = Rule(
    "unknown_invoice",
    "NOT EXISTS (SELECT 1 FROM audit.issued_invoices i WHERE i.invoice_number = t.invoice_number)",
    "'invoice ' || t.invoice_number || ' has not been issued (not in audit.issued_invoices)'",
)
NOT_USD = Rule(
    "bad_schema",
    "t.currency IS NOT NULL AND lower(t.currency) <> 'usd'",
    "'currency ' || t.currency || ' is not usd: only USD is matched to an invoice'",
)
_FOREIGN = "SELECT c.currency FROM raw.charges_typed c WHERE c.id = t.charge_id AND lower(c.currency) <> 'usd'"
CHARGE_NOT_USD = Rule(
    "bad_schema",
    f"NOT EXISTS (SELECT 1 FROM raw.charges c WHERE c.id = t.charge_id) AND EXISTS ({_FOREIGN})",
    f"'charge ' || t.charge_id || ' is in ' || ({_FOREIGN} LIMIT 1) || ', not usd: this follows its charge into quarantine'",
)
CHARGE_NOT_ACCEPTED = Rule(
    "unknown_invoice",
    "NOT EXISTS (SELECT 1 FROM raw.charges c WHERE c.id = t.charge_id)",
    "'charge ' || t.charge_id || ' is not an accepted charge (never landed, or quarantined): it names no invoice we issued'",
)

# Each source with its rules, in the order they are settled: refunds and disputes read the charges just
# accepted (raw.charges). The close's asset below and the day's (assets/feeds_day.py) both use this.
RULES = {
    "charges": (CHARGES, [NOT_USD, unknown_customer("customer_id"), NO_INVOICE_NUMBER, INVOICE_NOT_ISSUED]),
    "refunds": (REFUNDS, [NOT_USD, CHARGE_NOT_USD, CHARGE_NOT_ACCEPTED]),
    "disputes": (DISPUTES, [NOT_USD, CHARGE_NOT_USD, CHARGE_NOT_ACCEPTED]),
}


# Every source with its rules, in the order they are settled (refunds and disputes read raw.charges).
FEEDS = {"tickets": (TICKETS, TICKET_RULES), **RULES}
# The reference file the ticket and payment row rules read: unknown_customer.
FEED_REFERENCES = ["customers"]


class IssuedMonth(Exception):
    """A day of an issued month: its tickets and payments are read again by its restatement, not by a day run."""


def feed_files(landing: Path) -> list[Path]:
    """Every landed ticket and payment file, in the order the sources are settled."""
    return [path for source, _ in FEEDS.values() for path in sorted((landing / source.folder).glob("*.jsonl"))]


def ingest_feeds(con: duckdb.DuckDBPyConnection, landing: Path, month: date) -> tuple[dict[str, Ingested], list[str]]:
    """The four sources through the close's ingestion; what each did, and the files this run ledgered first."""
    if con.execute("SELECT count(*) FROM audit.issued_months WHERE billing_month = ?", [month]).fetchone()[0]:
        raise IssuedMonth(f"{month:%Y-%m} is issued: its tickets and payments are read again at its restatement "
                          "(billops close), not by a day's ingestion")
    before = {p for (p,) in con.execute(
        "SELECT path FROM audit.landed_files WHERE source IN (SELECT unnest(?::VARCHAR[]))", [list(FEEDS)]).fetchall()}
    load_reference_tables(con, landing, FEED_REFERENCES, datetime.now(timezone.utc).replace(tzinfo=None))
    ingested = {name: ingest(con, landing, source, rules, month) for name, (source, rules) in FEEDS.items()}
    after = {p for (p,) in con.execute(
        "SELECT path FROM audit.landed_files WHERE source IN (SELECT unnest(?::VARCHAR[]))", [list(FEEDS)]).fetchall()}
    return ingested, sorted(after - before)
