"""Control C14: every line and invoice of the month fits the published decimal types (docs/contract/controls.md).

Rating sums and multiplies in wide decimals (DECIMAL(38, s)) up to
`intermediate.int_invoice_lines` and `int_invoice_amounts`; the draft models narrow to the
published DECIMAL(18,6) quantities and DECIMAL(18,2) amounts, NULL where a value does not fit
(macro `narrow_decimal`), so an absurd quantity never stops the close with a database cast
error. This check reads the wide, line-level values (never the 200M usage records, unless it
fails) and names what does not fit: the customer, the invoice, the SKU, the resource and the
usage records behind it (up to 10 event ids, largest first, and their count). Blocking, so the
issuing asset never receives a NULL amount.
"""

from datetime import date
from decimal import Decimal

import dagster as dg
import duckdb
import pyarrow as pa

from config.partitions import monthly_partitions
from quality.controls import MAX_EXAMPLES, result
from warehouse.resource import WarehouseResource

C14_CHECK_NAME = "C14_amounts_in_range"
LINES = dg.AssetKey(["intermediate", "int_invoice_lines_drafted"])
C14_DESCRIPTION = ("Every line's summed quantity fits DECIMAL(18,6) and its amount, and every invoice's subtotal, "
                   "credits, taxable amount, tax and total, fit DECIMAL(18,2).")
SHOWN_IN_TEXT = 5  # offenders named in the check's description (all of the first 10 are in its metadata)

LINE_LIMITS = {"quantity": (18, 6), "amount": (18, 2)}
INVOICE_LIMITS = {c: (18, 2) for c in ("subtotal", "credits_applied", "taxable_amount", "tax_amount", "total")}


def _out_of_range(limits: dict[str, tuple[int, int]]) -> tuple[str, str]:
    """(a text naming each column out of range with its value, the condition that any is)."""
    fails = {c: f"({c} IS NOT NULL AND try_cast({c} AS DECIMAL({p},{s})) IS NULL)" for c, (p, s) in limits.items()}
    text = "concat_ws('; ', " + ", ".join(
        f"CASE WHEN {fails[c]} THEN '{c} ' || {c}::VARCHAR || ' leaves DECIMAL({p},{s})' END"
        for c, (p, s) in limits.items()) + ")"
    return text, " OR ".join(fails.values())


_LINE_TEXT, _LINE_FAILS = _out_of_range(LINE_LIMITS)
_INVOICE_TEXT, _INVOICE_FAILS = _out_of_range(INVOICE_LIMITS)

CHECKED_SQL = """
SELECT (SELECT count(*) FROM intermediate.int_invoice_lines) + (SELECT count(*) FROM intermediate.int_invoice_amounts)
"""

# One row per line and per invoice out of range. An invoice row names the SKUs of its lines, largest first.
OFFENDING_SQL = f"""
WITH line_failures AS (
  SELECT customer_id, line_number, sku, resource_id, {_LINE_TEXT} AS out_of_range
  FROM intermediate.int_invoice_lines WHERE {_LINE_FAILS}
), invoice_failures AS (
  SELECT invoice_number, customer_id, {_INVOICE_TEXT} AS out_of_range, total
  FROM intermediate.int_invoice_amounts WHERE {_INVOICE_FAILS}
), invoice_skus AS (
  SELECT customer_id, string_agg(sku, ', ' ORDER BY amount DESC, sku) AS skus
  FROM (SELECT customer_id, sku, sum(amount) AS amount FROM intermediate.int_invoice_lines
        WHERE customer_id IN (SELECT customer_id FROM invoice_failures) GROUP BY ALL)
  GROUP BY customer_id
)
SELECT 'line' AS level, l.customer_id, a.invoice_number, l.line_number, l.sku, l.resource_id, l.out_of_range,
       a.total AS invoice_total
FROM line_failures l JOIN intermediate.int_invoice_amounts a USING (customer_id)
UNION ALL
SELECT 'invoice', i.customer_id, i.invoice_number, NULL, s.skus, NULL, i.out_of_range, i.total
FROM invoice_failures i LEFT JOIN invoice_skus s USING (customer_id)
ORDER BY customer_id, level DESC, line_number
"""

# The accepted records behind each offender shown (a line: its customer, SKU and resource; an invoice:
# its customer), largest first. Only runs when C14 fails: the one read of the month's records.
RECORDS_SQL = """
SELECT o.position, count(*) AS records, list(u.event_id ORDER BY u.quantity DESC, u.event_id)[1:10] AS event_ids
FROM raw.usage_month u JOIN c14_offenders o ON u.customer_id = o.customer_id
WHERE u.start_time >= $m AND u.start_time < $end
  AND (o.level = 'invoice' OR (u.sku = o.sku AND (o.resource_id IS NULL OR u.resource_id = o.resource_id)))
GROUP BY o.position
"""


def _with_records(con: duckdb.DuckDBPyConnection, offending: list[dict], params: dict) -> None:
    """Add `records` (count) and `event_ids` (up to 10, largest quantity first) to the offenders shown."""
    shown = offending[:MAX_EXAMPLES]
    con.register("c14_offenders", pa.table({
        "position": pa.array(range(len(shown)), pa.int64()),
        "level": pa.array([r["level"] for r in shown], pa.string()),
        "customer_id": pa.array([r["customer_id"] for r in shown], pa.string()),
        "sku": pa.array([r["sku"] for r in shown], pa.string()),
        "resource_id": pa.array([r["resource_id"] for r in shown], pa.string()),
    }))
    try:
        found = {position: (records, event_ids) for position, records, event_ids
                 in con.execute(RECORDS_SQL, params).fetchall()}
    finally:
        con.unregister("c14_offenders")
    for position, row in enumerate(shown):
        row["records"], row["event_ids"] = found.get(position, (0, []))


def _named(row: dict) -> str:
    """One offender in words: who, which SKU and resource, what is out of range, and its records."""
    where = (f"line {row['line_number']} of {row['invoice_number']}" if row["level"] == "line"
             else f"invoice {row['invoice_number']}")
    what = f"SKU {row['sku']}" if row["level"] == "line" else f"SKUs {row['sku']}"
    if row.get("resource_id"):
        what += f", resource {row['resource_id']}"
    records = row.get("records")
    ids = ", ".join(row.get("event_ids") or [])
    more = " …" if records is not None and records > len(row.get("event_ids") or []) else ""
    evidence = f"; {records} record(s): {ids}{more}" if records is not None else ""
    return f"customer {row['customer_id']}, {what} ({where}): {row['out_of_range']}{evidence}"


def amounts_in_range(con: duckdb.DuckDBPyConnection, month: date, end: date,
                     asset_key: dg.AssetKey = LINES) -> dg.AssetCheckResult:
    """C14 on the month's rated lines and invoices (wide values), with the records of each offender."""
    params = {"m": month, "end": end}
    checked = con.execute(CHECKED_SQL).fetchone()[0]
    cursor = con.execute(OFFENDING_SQL)
    columns = [d[0] for d in cursor.description]
    offending = [dict(zip(columns, row)) for row in cursor.fetchall()]
    if offending:
        _with_records(con, offending, params)
    at_stake = sum({r["invoice_number"]: r["invoice_total"] or Decimal(0) for r in offending}.values(), Decimal("0.00"))
    description = C14_DESCRIPTION
    if offending:
        named = "; ".join(_named(r) for r in offending[:SHOWN_IN_TEXT])
        rest = len(offending) - SHOWN_IN_TEXT
        description = f"out of range: {named}" + (f"; and {rest} more (offending_rows)" if rest > 0 else "")
    for row in offending:
        row.pop("invoice_total", None)
    lines_out = sum(r["level"] == "line" for r in offending)
    return result(C14_CHECK_NAME, asset_key, dg.AssetCheckSeverity.ERROR, description, checked, offending, at_stake,
                  extra={"lines_out_of_range": dg.MetadataValue.int(lines_out),
                         "invoices_out_of_range": dg.MetadataValue.int(len(offending) - lines_out)})


C14_SPEC = dg.AssetCheckSpec(C14_CHECK_NAME, asset=LINES, partitions_def=monthly_partitions, blocking=True,
                             description="C14 amounts in range: " + C14_DESCRIPTION)


@dg.multi_asset_check(
    specs=[C14_SPEC],
    name="amount_controls",
    description="C14 (docs/contract/controls.md): the month's lines and invoices fit the published decimal "
                "types; blocks issuing.",
)
def amount_controls(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Evaluate C14 in a read-only connection."""
    window = context.partition_time_window
    with warehouse.connect(read_only=True) as con:
        yield amounts_in_range(con, window.start.date(), window.end.date())
