"""Financial controls on the month's draft invoices (docs/contract/controls.md C1, C3–C8 blocking, C11 warning).

They are asset checks on the drafts that the issuing asset depends on, so a
failed blocking control stops the month before anything is issued. Each reads
the drafts (intermediate.int_*_drafted) and, where it can, facts from outside
the dbt rating (accepted usage, reference snapshots as landed, the issued
copy), so the control does not merely repeat the model it judges. C2, the
independent re-rating, lives in quality/rerating.py and runs in the same step.
"""

import dagster as dg

from config.partitions import monthly_partitions
from quality.controls import Control
from quality.rerating import C2_CHECK_NAME, C2_DESCRIPTION, independent_rerating
from warehouse.resource import WarehouseResource

INVOICES = dg.AssetKey(["intermediate", "int_invoices_drafted"])
LINES = dg.AssetKey(["intermediate", "int_invoice_lines_drafted"])
LEDGER = dg.AssetKey(["intermediate", "int_credit_ledger_drafted"])

DRAFTS = "intermediate.int_invoices_drafted"
DRAFT_LINES = "intermediate.int_invoice_lines_drafted"
DRAFT_LEDGER = "intermediate.int_credit_ledger_drafted"

C1 = Control(
    "C1_lines_add_up", INVOICES,
    "For every invoice subtotal = Σ line amounts, taxable = subtotal − credits, total = taxable + tax.",
    f"SELECT count(*) FROM {DRAFTS}",
    f"""
    WITH lines AS (SELECT invoice_number, sum(amount) AS lines_total FROM {DRAFT_LINES} GROUP BY 1)
    SELECT coalesce(i.invoice_number, l.invoice_number) AS invoice_number, i.subtotal, l.lines_total,
           i.credits_applied, i.taxable_amount, i.tax_amount, i.total,
           abs(coalesce(i.subtotal, 0) - coalesce(l.lines_total, 0)) AS gap
    FROM {DRAFTS} i FULL OUTER JOIN lines l ON l.invoice_number = i.invoice_number
    WHERE i.invoice_number IS NULL OR l.invoice_number IS NULL
       OR i.subtotal <> l.lines_total
       OR i.taxable_amount <> i.subtotal - i.credits_applied
       OR i.total <> i.taxable_amount + i.tax_amount
    ORDER BY 1""",
    amount_column="gap",
)

# Per usage group (customer, SKU, and resource for per-resource models): exactly one line, and
# its quantity is what was ingested (hours/units/GiB summed; days counted for flat_monthly;
# transfer lines carry the overage, so only their existence is judged here). A draft quantity
# left NULL because it does not fit DECIMAL(18,6) is not the ingested quantity (C14 names it).
C3 = Control(
    "C3_usage_completely_rated", LINES,
    "Every accepted usage group of the month is rated into exactly one line with the ingested quantity.",
    "SELECT count(*) FROM (SELECT DISTINCT customer_id, resource_id, sku FROM raw.usage_daily)",
    f"""
    WITH models AS (SELECT sku, any_value(model) AS model FROM raw.price_book GROUP BY sku),
    ingested AS (
      SELECT u.customer_id, u.sku,
             CASE WHEN m.model IN ('hourly_capped', 'unit') THEN u.resource_id END AS resource_id,
             any_value(m.model) AS model,
             CASE WHEN any_value(m.model) = 'flat_monthly' THEN count(DISTINCT u.usage_date)
                  ELSE sum(u.quantity) END AS quantity
      FROM raw.usage_daily u LEFT JOIN models m ON m.sku = u.sku
      GROUP BY ALL
    ),
    rated AS (
      SELECT customer_id, sku, resource_id, count(*) AS lines, sum(quantity) AS quantity
      FROM {DRAFT_LINES} GROUP BY ALL
    )
    SELECT coalesce(i.customer_id, r.customer_id) AS customer_id, coalesce(i.sku, r.sku) AS sku,
           coalesce(i.resource_id, r.resource_id) AS resource_id, i.model, i.quantity AS ingested_quantity,
           r.quantity AS rated_quantity, coalesce(r.lines, 0) AS lines
    FROM ingested i FULL OUTER JOIN rated r
      ON r.customer_id = i.customer_id AND r.sku = i.sku AND r.resource_id IS NOT DISTINCT FROM i.resource_id
    WHERE i.customer_id IS NULL OR r.customer_id IS NULL OR r.lines <> 1
       OR (i.model <> 'transfer' AND r.quantity IS DISTINCT FROM i.quantity)
    ORDER BY 1, 2, 3""",
)

C4 = Control(
    "C4_one_invoice_per_customer_month", INVOICES,
    "No duplicate (customer_id, billing_month) and no invoice number used twice, issued months included.",
    f"SELECT count(*) FROM {DRAFTS}",
    f"""
    SELECT 'customer' AS duplicated, customer_id AS value, count(*) AS times FROM {DRAFTS} GROUP BY 2 HAVING count(*) > 1
    UNION ALL
    SELECT 'invoice_number', invoice_number, count(*) FROM (
      SELECT invoice_number FROM {DRAFTS}
      UNION ALL SELECT invoice_number FROM audit.issued_invoices WHERE billing_month <> $m
    ) GROUP BY 2 HAVING count(*) > 1
    ORDER BY 1, 2""",
)

C5 = Control(
    "C5_gapless_numbering", INVOICES,
    "The month's invoice numbers are BO-YYYYMM-000001 … N with no gap, in ascending customer_id order.",
    f"SELECT count(*) FROM {DRAFTS}",
    f"""
    SELECT invoice_number, customer_id,
           'BO-' || strftime($m::DATE, '%Y%m') || '-' || lpad((row_number() OVER (ORDER BY customer_id))::VARCHAR, 6, '0')
             AS expected_number
    FROM {DRAFTS}
    QUALIFY invoice_number <> expected_number
    ORDER BY customer_id""",
)

C6 = Control(
    "C6_no_negative_invoice", INVOICES,
    "total >= 0 and credits_applied <= subtotal on every invoice.",
    f"SELECT count(*) FROM {DRAFTS}",
    f"SELECT invoice_number, subtotal, credits_applied, total FROM {DRAFTS} "
    "WHERE total < 0 OR credits_applied > subtotal OR credits_applied < 0 ORDER BY 1",
    amount_column="total",
)

# Openings come from the issued ledger of earlier months or the grant's amount as landed.
C7 = Control(
    "C7_credits_conserved", LEDGER,
    "Per grant: opening = last issued closing (or the full amount), 0 <= applied <= opening, closing = "
    "opening − applied >= 0; per customer, credits applied on the invoice = Σ applied.",
    f"SELECT count(*) FROM {DRAFT_LEDGER}",
    f"""
    WITH previous AS (
      SELECT grant_id, arg_max(closing_balance, billing_month) AS closing_balance
      FROM audit.issued_credit_ledger WHERE billing_month < $m GROUP BY 1
    ), per_customer AS (
      SELECT customer_id, sum(applied) AS applied FROM {DRAFT_LEDGER} GROUP BY 1
    )
    SELECT 'grant' AS level, l.grant_id AS id, l.opening_balance, l.applied, l.closing_balance,
           coalesce(p.closing_balance, try_cast(g.amount AS DECIMAL(18,2))) AS expected_opening
    FROM {DRAFT_LEDGER} l
    LEFT JOIN previous p ON p.grant_id = l.grant_id
    LEFT JOIN raw.credit_grants g ON g.grant_id = l.grant_id
    WHERE l.applied < 0 OR l.applied > l.opening_balance OR l.closing_balance < 0
       OR l.closing_balance <> l.opening_balance - l.applied
       OR l.opening_balance IS DISTINCT FROM coalesce(p.closing_balance, try_cast(g.amount AS DECIMAL(18,2)))
    UNION ALL
    SELECT 'invoice', coalesce(i.invoice_number, c.customer_id), NULL, c.applied, NULL, i.credits_applied
    FROM per_customer c FULL OUTER JOIN {DRAFTS} i ON i.customer_id = c.customer_id
    WHERE coalesce(c.applied, 0) <> coalesce(i.credits_applied, 0)
    ORDER BY 1, 2""",
)

# The jurisdiction rule (docs/contract/billing-rules.md §5) from the snapshots as landed, not from dbt's model.
C8 = Control(
    "C8_tax_applied", INVOICES,
    "Each invoice's tax rate, name and reverse charge follow the customer's jurisdiction row in effect on "
    "the issue date; tax_amount = round(taxable × rate, 2).",
    f"SELECT count(*) FROM {DRAFTS}",
    f"""
    WITH rates AS (
      SELECT upper(country) AS country, nullif(upper(region), '') AS region, nullif(tax_name, '') AS tax_name,
             rate::DECIMAL(9,6) AS rate, lower(reverse_charge) = 'true' AS reverse_charge
      FROM raw.tax_rates
      WHERE effective_from::DATE <= $end::DATE AND (nullif(effective_to, '') IS NULL OR $end::DATE < effective_to::DATE)
    ), expected AS (
      SELECT i.invoice_number,
             arg_max(r.rate, r.region IS NOT NULL) AS rate,
             arg_max(r.tax_name, r.region IS NOT NULL) AS tax_name,
             arg_max(r.reverse_charge, r.region IS NOT NULL) AS row_reverse_charge,
             any_value(nullif(c.tax_id, '')) AS tax_id
      FROM {DRAFTS} i
      JOIN raw.customers c ON c.customer_id = i.customer_id
      LEFT JOIN rates r ON r.country = upper(c.country) AND (r.region IS NULL OR r.region = nullif(upper(c.region), ''))
      GROUP BY 1
    ), judged AS (
      SELECT i.invoice_number, i.tax_rate, i.tax_name, i.reverse_charge, i.tax_amount,
             coalesce(e.row_reverse_charge AND e.tax_id IS NOT NULL, false) AS expected_reverse_charge,
             CASE WHEN e.row_reverse_charge AND e.tax_id IS NOT NULL THEN 0 ELSE coalesce(e.rate, 0) END
               ::DECIMAL(9,6) AS expected_rate,
             e.tax_name AS expected_tax_name, i.taxable_amount
      FROM {DRAFTS} i LEFT JOIN expected e USING (invoice_number)
    )
    SELECT invoice_number, tax_rate, expected_rate, tax_name, expected_tax_name, reverse_charge, tax_amount,
           round(taxable_amount * expected_rate, 2) AS expected_tax_amount
    FROM judged
    WHERE tax_rate <> expected_rate OR tax_name IS DISTINCT FROM expected_tax_name
       OR reverse_charge <> expected_reverse_charge OR tax_amount <> round(taxable_amount * expected_rate, 2)
    ORDER BY 1""",
)

C11 = Control(
    "C11_month_over_month_swing", INVOICES,
    "Warning: a customer's total moving more than 5x and by over $100 from the previous issued month.",
    f"SELECT count(*) FROM {DRAFTS}",
    f"""
    SELECT i.customer_id, i.invoice_number, p.total AS previous_total, i.total, i.total - p.total AS change
    FROM {DRAFTS} i
    JOIN audit.issued_invoices p ON p.customer_id = i.customer_id AND p.billing_month = ($m::DATE - INTERVAL 1 MONTH)::DATE
    WHERE abs(i.total - p.total) > 100 AND (i.total > 5 * p.total OR p.total > 5 * i.total)
    ORDER BY abs(i.total - p.total) DESC""",
    amount_column="change",
    severity=dg.AssetCheckSeverity.WARN,
)

DRAFT_CONTROLS = [C1, C3, C4, C5, C6, C7, C8, C11]

C2_SPEC = dg.AssetCheckSpec(
    C2_CHECK_NAME, asset=INVOICES, partitions_def=monthly_partitions, blocking=True, description=C2_DESCRIPTION)

@dg.multi_asset_check(
    specs=[c.spec(monthly_partitions) for c in DRAFT_CONTROLS] + [C2_SPEC],
    name="invoice_controls",
    description="Financial controls on the month's drafts (docs/contract/controls.md); the blocking ones gate issuing.",
)
def invoice_controls(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Evaluate C1–C8 and C11 on the drafts, in one read-only connection."""

    window = context.partition_time_window
    params = {"m": window.start.date(), "end": window.end.date()}
    with warehouse.connect(read_only=True) as con:
        for control in DRAFT_CONTROLS:
            yield control.evaluate(con, params)
        yield independent_rerating(con, params["m"], asset_key=INVOICES)
