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

from assets.feeds import CHARGES, DISPUTES, REFUNDS, RULES  # noqa: F401 - the sources, re-exported
from assets.ingestion import raise_bad_files
from assets.jsonl import ingest
from config.partitions import monthly_partitions, run_month
from quality.ingestion_checks import reconcile_spec, rows_reconcile
from warehouse.resource import WarehouseResource

KEYS = {name: dg.AssetKey(["raw", name]) for name in ("charges", "refunds", "disputes")}




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
