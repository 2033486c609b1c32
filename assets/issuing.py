"""Issuing: the month's proven drafts become immutable invoices; an issued month is only restated.

Runs only when every blocking check on the drafts passed (Dagster skips it
otherwise). For a month not issued yet it appends the drafts to
`audit.issued_invoices` / `audit.issued_invoice_lines` / `audit.issued_credit_ledger`
in one transaction, with a content hash that C10 re-checks. For an issued month
(a re-close) it never touches those rows: it compares the recomputation with
what was issued and appends one `audit.restatements` row per customer whose
total differs, with its cause (docs/contract/billing-rules.md §6) — nothing when nothing changed.
"""


from datetime import date, datetime, timezone

import dagster as dg
import duckdb

from config.partitions import monthly_partitions, run_month
from quality.issued_controls import CONTENT_HASH_SQL, issued_check_specs, issued_invoices_immutable
from warehouse.close_options import CloseOptions
from warehouse.close_state import record_close_state
from warehouse.landing import landed_usage_months
from warehouse.months import OutOfOrderMonth, check_month_order, first_month_problem, issued_months
from warehouse.ops_store import ops_engine
from warehouse.resource import WarehouseResource

DRAFTS = ["int_invoices_drafted", "int_invoice_lines_drafted", "int_credit_ledger_drafted"]

ISSUE_SQL = """
INSERT INTO audit.issued_invoices
  SELECT * EXCLUDE (status), $now, $run_id FROM intermediate.int_invoices_drafted WHERE billing_month = $m;
INSERT INTO audit.issued_invoice_lines
  SELECT *, $now, $run_id FROM intermediate.int_invoice_lines_drafted WHERE billing_month = $m;
INSERT INTO audit.issued_credit_ledger
  SELECT *, $now, $run_id FROM intermediate.int_credit_ledger_drafted WHERE billing_month = $m;
INSERT INTO audit.issued_price_book
  SELECT $m, sku, product, description, model, unit, unit_price, monthly_cap, cap_hours, included_transfer_gib,
         tiers, effective_from, effective_to
  FROM raw.price_book
"""

# Per customer: issued total vs the recomputed draft total, and why it moved.
# late_usage: the customer has accepted usage from a file first seen after the month was issued.
# price_correction: a price row of one of its SKUs differs from the rows in effect at issue.
# reference_change: any other reference change (customers, tax rates, grants), also the fallback.
RESTATEMENT_SQL = """
WITH issued AS (
  SELECT customer_id, invoice_number, total FROM audit.issued_invoices WHERE billing_month = $m
), recomputed AS (
  SELECT customer_id, total FROM intermediate.int_invoices_drafted WHERE billing_month = $m
), differing AS (
  SELECT coalesce(r.customer_id, i.customer_id) AS customer_id, i.invoice_number,
         coalesce(i.total, 0)::DECIMAL(18,2) AS issued_total, coalesce(r.total, 0)::DECIMAL(18,2) AS recomputed_total
  FROM recomputed r FULL OUTER JOIN issued i ON i.customer_id = r.customer_id
  WHERE coalesce(r.total, 0) <> coalesce(i.total, 0)
), issued_at AS (
  SELECT issued_at FROM audit.issued_months WHERE billing_month = $m
), late AS (
  SELECT DISTINCT u.customer_id FROM raw.usage_month u, issued_at
  WHERE u.loaded_at > issued_at.issued_at AND u.start_time >= $m AND u.start_time < $end
), changed_prices AS (
  SELECT sku FROM (
    (SELECT sku, product, description, model, unit, unit_price, monthly_cap, cap_hours, included_transfer_gib,
            tiers, effective_from, effective_to FROM raw.price_book
     EXCEPT
     SELECT * EXCLUDE (billing_month) FROM audit.issued_price_book WHERE billing_month = $m)
    UNION ALL
    (SELECT * EXCLUDE (billing_month) FROM audit.issued_price_book WHERE billing_month = $m
     EXCEPT
     SELECT sku, product, description, model, unit, unit_price, monthly_cap, cap_hours, included_transfer_gib,
            tiers, effective_from, effective_to FROM raw.price_book)
  )
), repriced AS (
  SELECT DISTINCT customer_id FROM (
    SELECT customer_id, sku FROM intermediate.int_invoice_lines_drafted WHERE billing_month = $m
    UNION ALL
    SELECT customer_id, sku FROM audit.issued_invoice_lines WHERE billing_month = $m
  ) WHERE sku IN (SELECT sku FROM changed_prices)
), caused AS (
  SELECT d.*,
    concat_ws('+',
      CASE WHEN d.customer_id IN (SELECT customer_id FROM late) THEN 'late_usage' END,
      CASE WHEN d.customer_id IN (SELECT customer_id FROM repriced) THEN 'price_correction' END) AS known_cause
  FROM differing d
)
SELECT $m AS billing_month, customer_id, invoice_number, issued_total, recomputed_total,
       (recomputed_total - issued_total)::DECIMAL(18,2) AS difference,
       CASE WHEN known_cause = '' THEN 'reference_change' ELSE known_cause END AS cause
FROM caused
"""

# A restatement is recorded once: a row is new when no earlier row of the month already
# says the same customer recomputes to the same total.
APPEND_RESTATEMENTS_SQL = """
INSERT INTO audit.restatements
SELECT n.billing_month, n.customer_id, n.invoice_number, n.issued_total, n.recomputed_total, n.difference,
       n.cause, $now, $run_id
FROM month_restatements n
WHERE NOT EXISTS (
  SELECT 1 FROM (
    SELECT recomputed_total FROM audit.restatements r
    WHERE r.billing_month = n.billing_month AND r.customer_id = n.customer_id
    ORDER BY r.detected_at DESC LIMIT 1
  ) latest WHERE latest.recomputed_total = n.recomputed_total
)
"""


def _statements(sql: str) -> list[str]:
    return [s for s in sql.split(";") if s.strip()]


def issue_month(con: duckdb.DuckDBPyConnection, month: date, run_id: str, now: datetime,
                options: CloseOptions = CloseOptions()) -> dict:
    """Append the drafts of `month` to the issued copy, in the caller's transaction, with the close's options."""
    params = {"m": month, "now": now, "run_id": run_id}
    for statement in _statements(ISSUE_SQL):
        con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
    invoices, lines, total = con.execute(
        """SELECT count(*), (SELECT count(*) FROM audit.issued_invoice_lines WHERE billing_month = $m),
                  coalesce(sum(total), 0) FROM audit.issued_invoices WHERE billing_month = $m""",
        {"m": month},
    ).fetchone()
    digest = con.execute(CONTENT_HASH_SQL, {"m": month}).fetchone()[0]
    con.execute(
        """INSERT INTO audit.issued_months (billing_month, invoices, lines, total, content_sha256, issued_at, run_id,
                                           allow_missing_days, first_month)
           VALUES ($m, $invoices, $lines, $total, $digest, $now, $run_id, $allow_missing_days, $first_month)""",
        {"m": month, "invoices": invoices, "lines": lines, "total": total, "digest": digest, "now": now,
         "run_id": run_id, "allow_missing_days": options.allow_missing_days, "first_month": options.first_month},
    )
    return {"invoices": invoices, "lines": lines, "total": total}


def restate_month(con: duckdb.DuckDBPyConnection, month: date, end: date, run_id: str, now: datetime) -> dict:
    """Record how the recomputation of an issued month differs from it; issued rows stay untouched."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE month_restatements AS {RESTATEMENT_SQL}", {"m": month, "end": end})
    before = con.execute("SELECT count(*) FROM audit.restatements").fetchone()[0]
    con.execute(APPEND_RESTATEMENTS_SQL, {"now": now, "run_id": run_id})
    added = con.execute("SELECT count(*) FROM audit.restatements").fetchone()[0] - before
    differing, net = con.execute("SELECT count(*), coalesce(sum(difference), 0) FROM month_restatements").fetchone()
    return {"customers_differing": differing, "restatements_added": added, "net_difference": net}


def record_month_state(con: duckdb.DuckDBPyConnection, month: date) -> None:
    """Tell the planners (warehouse/close_plan.py) what this successful run used, in the operational store."""
    engine = ops_engine()
    try:
        record_close_state(engine, con, month)
    finally:
        engine.dispose()


ISSUED_TABLES = {
    "issued_invoices": "The frozen copy of every issued invoice (append-only): a month is issued once, when every "
                       "blocking control on its drafts passed.",
    "issued_invoice_lines": "The frozen copy of every issued invoice line (append-only).",
    "issued_months": "One row per issued month: counts, total, the content hash C10 re-checks, issued_at, run_id.",
    "restatements": "Differences between an issued month and its recomputation, one row per customer, with cause.",
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["audit", name], group_name="issuing", kinds={"duckdb"}, description=description,
                     deps=[dg.AssetKey(["intermediate", draft]) for draft in DRAFTS])
        for name, description in ISSUED_TABLES.items()
    ],
    check_specs=issued_check_specs,
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(1),
)
def issued_invoices(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Issue the month's drafts, or, for a month already issued, record its restatements."""
    billing = run_month(context)
    month, end = billing.start, billing.end
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with warehouse.connect() as con:
        con.execute("BEGIN")
        issued_before = con.execute(
            "SELECT count(*) > 0 FROM audit.issued_months WHERE billing_month = ?", [month]
        ).fetchone()[0]
        if issued_before:
            outcome = {"action": "restated", **restate_month(con, month, end, context.run.run_id, now)}
        else:
            options = CloseOptions.from_tags(context.run.tags)
            try:
                check_month_order(con, month)
                first = first_month_problem(issued_months(con), month, landed_usage_months(warehouse.landing_path),
                                            options.first_month)
                if first:
                    raise OutOfOrderMonth(first)
            except OutOfOrderMonth as exc:
                con.execute("ROLLBACK")
                raise dg.Failure(str(exc), allow_retries=False) from exc
            outcome = {"action": "issued", **issue_month(con, month, context.run.run_id, now, options)}
        con.execute("COMMIT")
        immutable = issued_invoices_immutable(con, month)
        record_month_state(con, month)
    context.log.info(f"{month:%Y-%m}: {outcome}")
    # Money as exact text (the UI shows it, the CLI prints it); counts as integers.
    metadata = {k: (v if isinstance(v, (int, str)) else f"{v:.2f}") for k, v in outcome.items()}
    for name in ISSUED_TABLES:
        yield dg.MaterializeResult(asset_key=["audit", name], metadata=metadata)
    yield immutable
