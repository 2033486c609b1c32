"""Checks on the month's ingested usage, evaluated by the usage asset as it loads.

- usage_rows_reconcile: the per-file reconciliation of quality/ingestion_checks.py.
- C9_usage_is_priced (control C9, blocking): no usage of the month quarantined as
  `no_price`; such usage is not billable, so the month cannot be issued.
"""

from datetime import date

import dagster as dg
import duckdb

from quality.gx_runner import run_suite
from quality.ingestion_checks import files_loaded, reconcile_spec, rows_reconcile
from quality.reference_checks import SUITES, judge, load_snapshot
from warehouse.landing import RULE_REFERENCES, usage_month_prefix

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


# --- the day's checks (assets/usage_day.py): judged on one usage/dt=D/ folder as it lands -------------
# Not blocking: a failed day check alerts that day (orchestration/sensors.py) and blocks nothing;
# the close judges the month again with the checks above.
USAGE_DAY_KEY = dg.AssetKey(["raw", "usage_day"])
DAY_READABLE, DAY_PRICED, DAY_RECONCILE = "usage_day_files_readable", "C9_usage_day_is_priced", "usage_day_rows_reconcile"

# C13 on the day: the snapshots the day's row rules judged by (unknown_customer, no_price), as it loaded them.
DAY_REFERENCE_CHECKS = {"customers": "C13_day_customers_valid", "price_book": "C13_day_price_book_valid"}
assert list(DAY_REFERENCE_CHECKS) == RULE_REFERENCES

usage_day_check_specs = [
    *[dg.AssetCheckSpec(check, asset=USAGE_DAY_KEY,
                        description=f"C13 on the day: every row of reference/{name}.csv, as the day's row rules read "
                                    "it, follows the landing contract (the close's C13 suite); names file, row, rule.")
      for name, check in DAY_REFERENCE_CHECKS.items()],
    dg.AssetCheckSpec(DAY_READABLE, asset=USAGE_DAY_KEY,
                      description="Every file of the day's folder could be read and is unchanged since the ledger recorded it."),
    dg.AssetCheckSpec(DAY_PRICED, asset=USAGE_DAY_KEY,
                      description="C9 on the day: no row of the day's folder quarantined with reason no_price."),
    dg.AssetCheckSpec(DAY_RECONCILE, asset=USAGE_DAY_KEY,
                      description="Per file of the day's folder: rows read = accepted + re-delivered + quarantined, "
                                  "and accepted = the rows summed into the month's aggregates."),
]


def usage_day_readable(problems: dict[str, str]) -> dg.AssetCheckResult:
    """Failed, naming each file of the folder that could not be loaded and why."""
    return files_loaded(USAGE_DAY_KEY, DAY_READABLE, problems, "every file of the folder loaded")


def usage_day_is_priced(con: duckdb.DuckDBPyConnection, prefix: str) -> dg.AssetCheckResult:
    """C9 on the folder's files (`prefix`, a LIKE pattern)."""
    unpriced = con.execute(
        """
        SELECT json_extract_string(raw, '$.sku') AS sku, count(*) AS rows, min(file || ' row ' || row_number) AS example
        FROM audit.quarantine WHERE source = 'usage' AND reason = 'no_price' AND file LIKE ?
        GROUP BY 1 ORDER BY 2 DESC
        """, [prefix]).fetchall()
    total = sum(r[1] for r in unpriced)
    return dg.AssetCheckResult(
        asset_key=USAGE_DAY_KEY, check_name=DAY_PRICED, passed=total == 0, severity=dg.AssetCheckSeverity.ERROR,
        description=(f"C9 failed: {total} usage rows quarantined as no_price (SKUs: "
                     + ", ".join(r[0] or "?" for r in unpriced[:10]) + "; first: " + unpriced[0][2] + ")")
        if total else "C9: every valid row of the folder is priced",
        metadata={"no_price_rows": total, "skus": dg.MetadataValue.json({r[0] or "?": r[1] for r in unpriced[:10]})},
    )


def usage_day_rows_reconcile(con: duckdb.DuckDBPyConnection, month: date, prefix: str,
                             visible_sql: str) -> dg.AssetCheckResult:
    """The reconciliation of quality/ingestion_checks.py on the folder's files only."""
    rows = con.execute(
        f"""
        SELECT l.file, l.rows_read, l.accepted, l.redelivered, l.quarantined, coalesce(v.n, 0)
        FROM audit.file_loads l LEFT JOIN ({visible_sql}) v ON v.source_file = l.file
        WHERE l.source = 'usage' AND l.billing_month = ? AND l.file LIKE ? ORDER BY l.file
        """, [month, prefix]).fetchall()
    bad = [r[0] for r in rows if r[1] != r[2] + r[3] + r[4] or r[2] != r[5]]
    return dg.AssetCheckResult(
        asset_key=USAGE_DAY_KEY, check_name=DAY_RECONCILE, passed=not bad, severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(bad)} of {len(rows)} files do not reconcile: {', '.join(bad[:10])}" if bad
        else f"all {len(rows)} files reconcile",
        metadata={"files_checked": len(rows), "rows_read": sum(r[1] for r in rows),
                  "rows_accepted": sum(r[2] for r in rows), "rows_quarantined": sum(r[4] for r in rows)},
    )


def usage_day_references_valid(con: duckdb.DuckDBPyConnection) -> list[dg.AssetCheckResult]:
    """C13's suites on raw.customers and raw.price_book as the day loaded them (~3 s, GX's import most of it):
    a bad snapshot is heard of the day a usage folder is judged by it, not at the close."""
    return [judge(name, run_suite(f"c13_{name}", load_snapshot(con, name), SUITES[name], ["row"]),
                  USAGE_DAY_KEY, check) for name, check in DAY_REFERENCE_CHECKS.items()]
