"""Stripe payments: payments/{charges,refunds,disputes}/*.jsonl → raw.charges, raw.refunds, raw.disputes.

One multi-asset because the three are settled in order on one connection:
refunds and disputes are judged against the charges just accepted. Amounts
stay integer cents and times Unix seconds, as Stripe sends them; dbt staging
converts them once (macros cents_to_dollars, unix_to_utc).

Rules beyond the shared ones (assets/jsonl.py: bad_json, bad_schema, the first
delivery of a Stripe id stands, an identical re-delivery is counted in
audit.redeliveries, a different one is `conflicting_duplicate`):
- charge: `customer` not in reference/customers.csv → `unknown_customer`;
  no `metadata.invoice_number`, or one not in `audit.issued_invoices` →
  `unknown_invoice`. The issued copy is append-only and exists from the
  warehouse's bootstrap (empty before the first issue), so the rule is the same
  on every close, whatever the marts hold: on a first close every charge naming
  an invoice is quarantined. Every close re-reads every payment file, so such a
  charge is re-examined and accepted by the first close after its invoice is
  issued. The table is read as earlier closes left it, not declared as an
  upstream asset (that would make a cycle once invoices take their paid status
  from charges).
- charge, refund, dispute: every amount is USD. A `currency` that, case-folded,
  is not `usd` → `bad_schema` naming it, before any other rule, so foreign money
  never pays an invoice nor makes a real USD charge look like a duplicate (R2).
  A charge or refund without a currency is `bad_schema` (the field is required);
  a dispute may omit it (the contract lists no currency for disputes): it
  follows its charge.
- refund, dispute of a charge quarantined for its currency → `bad_schema` naming
  the charge and its currency: it follows its charge, and is never re-examined as
  an `unknown_invoice` that a later close could accept (decisions #43).
- refund, dispute: a `charge` that is not an accepted charge (never landed, or
  quarantined) leaves the payment naming no invoice we issued → `unknown_invoice`.
"""

import dagster as dg

from assets.ingestion import raise_bad_files
from assets.jsonl import Field, JsonlSource, Rule, ingest, unknown_customer
from config.partitions import monthly_partitions, run_month
from quality.ingestion_checks import reconcile_spec, rows_reconcile
from warehouse.resource import WarehouseResource

KEYS = {name: dg.AssetKey(["raw", name]) for name in ("charges", "refunds", "disputes")}


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


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, group_name="landing", deps=[dg.AssetKey(["raw", "customers"])], kinds={"duckdb", "json"},
                     description=f"Stripe {name}, first delivery of each id: raw.{name}, a typed view over every "
                                 f"payments/{name}/*.jsonl less the lines quarantined or re-delivered.")
        for name, key in KEYS.items()
    ],
    check_specs=[reconcile_spec(key, name) for name, key in KEYS.items()],
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),
)
def payments(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Ingest every charge, then refund and dispute file: ledger, quarantine, de-duplicate by Stripe id."""
    month = run_month(context).start
    landing = warehouse.landing_path
    with warehouse.connect() as con:
        results = {}
        for name, (source, source_rules) in RULES.items():  # in this order: refunds and disputes read raw.charges
            ingested = ingest(con, landing, source, source_rules, month)
            results[name] = (ingested, rows_reconcile(con, KEYS[name], name, f"raw.{name}", month))
    raise_bad_files(context, "payments", [ingested for ingested, _ in results.values()])
    for name, (ingested, check) in results.items():
        yield ingested.result(KEYS[name], [check])
