"""Checks on the month's ingested usage, evaluated by the usage asset as it loads.

- usage_rows_reconcile: for every file, read = accepted + re-delivered +
  quarantined, and the accepted count is what the accepted view really holds.
- usage_is_priced (control C9, blocking): no usage of the month quarantined as
  `no_price`; such usage is not billable, so the month cannot be issued.
"""

from datetime import date

import dagster as dg
import duckdb

USAGE_KEY = dg.AssetKey(["raw", "usage"])

usage_check_specs = [
    dg.AssetCheckSpec("usage_rows_reconcile", asset=USAGE_KEY, blocking=True,
                      description="Per file: rows read = accepted + re-delivered + quarantined; accepted rows are all visible to dbt."),
    dg.AssetCheckSpec("usage_is_priced", asset=USAGE_KEY, blocking=True,
                      description="C9: no usage of the month quarantined with reason no_price."),
]


def usage_rows_reconcile(con: duckdb.DuckDBPyConnection, month: date) -> dg.AssetCheckResult:
    rows = con.execute(
        """
        SELECT l.file, l.rows_read, l.accepted, l.redelivered, l.quarantined, coalesce(v.n, 0) AS visible
        FROM audit.file_loads l
        LEFT JOIN (SELECT source_file, count(*) n FROM raw.usage_month GROUP BY 1) v ON v.source_file = l.file
        WHERE l.source = 'usage' AND l.billing_month = ?
        """,
        [month],
    ).fetchall()
    bad = [r[0] for r in rows if r[1] != r[2] + r[3] + r[4] or r[2] != r[5]]
    return dg.AssetCheckResult(
        check_name="usage_rows_reconcile",
        passed=not bad,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(bad)} of {len(rows)} files do not reconcile" if bad else f"all {len(rows)} files reconcile",
        metadata={
            "files_checked": len(rows),
            "rows_read": sum(r[1] for r in rows),
            "rows_visible": sum(r[5] for r in rows),
            "failing_files": dg.MetadataValue.json(bad[:10]),
        },
    )


def usage_is_priced(con: duckdb.DuckDBPyConnection, month: date) -> dg.AssetCheckResult:
    unpriced = con.execute(
        """
        SELECT json_extract_string(raw, '$.sku') AS sku, count(*) AS rows, min(file || ' row ' || row_number) AS example
        FROM audit.quarantine
        WHERE source = 'usage' AND reason = 'no_price' AND file LIKE ?
        GROUP BY 1 ORDER BY 2 DESC
        """,
        [f"usage/dt={month:%Y-%m}-%"],
    ).fetchall()
    total = sum(r[1] for r in unpriced)
    return dg.AssetCheckResult(
        check_name="usage_is_priced",
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
