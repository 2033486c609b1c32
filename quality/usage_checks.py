"""Checks on the month's ingested usage, evaluated by the usage asset as it loads.

- usage_rows_reconcile: the per-file reconciliation of quality/ingestion_checks.py.
- C9_usage_is_priced (control C9, blocking): no usage of the month quarantined as
  `no_price`; such usage is not billable, so the month cannot be issued.
"""

from datetime import date

import dagster as dg
import duckdb

from quality.ingestion_checks import reconcile_spec, rows_reconcile
from warehouse.landing import usage_month_prefix

USAGE_KEY = dg.AssetKey(["raw", "usage"])

usage_check_specs = [
    reconcile_spec(USAGE_KEY, "usage"),
    dg.AssetCheckSpec("C9_usage_is_priced", asset=USAGE_KEY, blocking=True,
                      description="C9: no usage of the month quarantined with reason no_price."),
]


def usage_rows_reconcile(con: duckdb.DuckDBPyConnection, month: date,
                         visible_sql: str | None = None) -> dg.AssetCheckResult:
    """The ledger against the rows rating reads; `visible_sql` (file, n) when the load counted them already."""
    return rows_reconcile(con, USAGE_KEY, "usage", "raw.usage_month", month, visible_sql)


def usage_is_priced(con: duckdb.DuckDBPyConnection, month: date) -> dg.AssetCheckResult:
    unpriced = con.execute(
        """
        SELECT json_extract_string(raw, '$.sku') AS sku, count(*) AS rows, min(file || ' row ' || row_number) AS example
        FROM audit.quarantine
        WHERE source = 'usage' AND reason = 'no_price' AND file LIKE ?
        GROUP BY 1 ORDER BY 2 DESC
        """,
        [usage_month_prefix(month)],
    ).fetchall()
    total = sum(r[1] for r in unpriced)
    return dg.AssetCheckResult(
        asset_key=USAGE_KEY,
        check_name="C9_usage_is_priced",
        passed=total == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(f"C9 failed: {total} usage rows quarantined as no_price (SKUs: "
                     + ", ".join(r[0] or "?" for r in unpriced[:10]) + ")") if total else "C9: every usage row is priced",
        metadata={
            "no_price_rows": total,
            "skus": dg.MetadataValue.json({r[0] or "?": r[1] for r in unpriced[:10]}),
            "examples": dg.MetadataValue.json([r[2] for r in unpriced[:10]]),
        },
    )
