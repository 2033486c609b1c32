"""The reconciliation every ingestion proves per file: nothing lost, nothing counted twice.

`<source>_rows_reconcile` (blocking): for every file loaded this month,
rows read = accepted + re-delivered (or superseded) + quarantined, and the
accepted count is exactly what the source's accepted view shows dbt.
"""

from datetime import date

import dagster as dg
import duckdb


def files_loaded(asset_key: dg.AssetKey, check_name: str, problems: dict[str, str],
                 all_loaded: str) -> dg.AssetCheckResult:
    """A day's readability check (never blocking, ERROR): failed, naming each file not loaded and why."""
    return dg.AssetCheckResult(
        asset_key=asset_key, check_name=check_name, passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
        description=("; ".join(f"{rel}: {why}" for rel, why in sorted(problems.items())) if problems else all_loaded),
        metadata={"files_not_loaded": len(problems), "files": dg.MetadataValue.json(sorted(problems))},
    )


def reconcile_spec(asset_key: dg.AssetKey, source: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        f"{source}_rows_reconcile", asset=asset_key, blocking=True,
        description="Per file: rows read = accepted + re-delivered/superseded + quarantined; accepted rows are all visible to dbt.",
    )


def rows_reconcile(con: duckdb.DuckDBPyConnection, asset_key: dg.AssetKey, source: str, view: str,
                   month: date, visible_sql: str | None = None) -> dg.AssetCheckResult:
    """Per file: read = accepted + re-delivered + quarantined, and accepted = the rows the view shows
    (or `visible_sql`'s (source_file, n), counted by a pass that already read every accepted row)."""
    rows, bad = reconciled_files(con, source, view, month, visible_sql)
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=f"{source}_rows_reconcile",
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


def reconciled_files(con: duckdb.DuckDBPyConnection, source: str, view: str, month: date,
                     visible_sql: str | None = None) -> tuple[list[tuple], list[str]]:
    """(file, read, accepted, re-delivered, quarantined, visible) per file the month's load recorded,
    and the files that do not reconcile."""
    visible = visible_sql or f"SELECT source_file, count(*) n FROM {view} GROUP BY 1"
    rows = con.execute(
        f"""
        SELECT l.file, l.rows_read, l.accepted, l.redelivered, l.quarantined, coalesce(v.n, 0) AS visible
        FROM audit.file_loads l
        LEFT JOIN ({visible}) v ON v.source_file = l.file
        WHERE l.source = ? AND l.billing_month = ?
        ORDER BY l.file
        """,
        [source, month],
    ).fetchall()
    return rows, [r[0] for r in rows if r[1] != r[2] + r[3] + r[4] or r[2] != r[5]]
