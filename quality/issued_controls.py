"""Control C10 on the issued copy: an issued month is never rewritten (docs/contract/billing-rules.md §6).

When a month is issued, the issuing asset stores a sha256 of its invoices and
lines as issued (`audit.issued_months.content_sha256`). Every later run of the
month recomputes that hash over `audit.issued_invoices` / `issued_invoice_lines`:
any rewritten, renumbered, added or removed row changes it.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb

from quality.controls import result

ISSUED = dg.AssetKey(["audit", "issued_invoices"])
C10 = "C10_issued_invoices_immutable"
C10_DESCRIPTION = "The month's issued invoices and lines are byte-for-byte what was issued (content hash)."

# Content of a month's issued copy, in a fixed order: C10 recomputes it and compares.
CONTENT_HASH_SQL = """
SELECT sha256(
  coalesce((SELECT string_agg(i::VARCHAR, '\n' ORDER BY invoice_number)
            FROM (SELECT * EXCLUDE (issued_at, run_id) FROM audit.issued_invoices WHERE billing_month = $m) i), '')
  || '\n--\n' ||
  coalesce((SELECT string_agg(l::VARCHAR, '\n' ORDER BY invoice_number, line_number)
            FROM (SELECT * EXCLUDE (issued_at, run_id) FROM audit.issued_invoice_lines WHERE billing_month = $m) l), '')
)
"""


issued_check_specs = [dg.AssetCheckSpec(C10, asset=ISSUED, blocking=True, description=C10_DESCRIPTION)]


def issued_invoices_immutable(con: duckdb.DuckDBPyConnection, month: date) -> dg.AssetCheckResult:
    row = con.execute(
        "SELECT content_sha256, invoices, lines FROM audit.issued_months WHERE billing_month = ?", [month]
    ).fetchone()
    offending = []
    if row is None:
        offending.append({"billing_month": month, "problem": "month is not issued"})
        checked = 0
    else:
        recorded, invoices, lines = row
        now = con.execute(CONTENT_HASH_SQL, {"m": month}).fetchone()[0]
        checked = invoices + lines
        if now != recorded:
            offending.append({"billing_month": month, "problem": "issued rows changed since issue",
                              "recorded_sha256": recorded, "current_sha256": now})
    return result(C10, ISSUED, dg.AssetCheckSeverity.ERROR, C10_DESCRIPTION, checked, offending)
