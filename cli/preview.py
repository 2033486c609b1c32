"""`billops preview`: the month-to-date invoices of an open month, read from the published copy.

Never the warehouse: a close holds it for minutes and the preview must answer at once, so this
reads BILLOPS_PUBLISHED/billops.duckdb (read-only), which preview_month_job refreshes after each
preview run (orchestration/preview.py). Money stays Decimal from DuckDB to the text printed:
`json` writes amounts as strings with two decimals (a float would lose cents past 2^53/100 and
print 0.1 + 0.2 as 0.30000000000000004 in some readers), dates as ISO.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from config.billing_month import BillingMonth
from warehouse.published import DUCKDB_FILE

# The columns of marts.invoices, in its order (docs/contract/published-interface.md), then as_of.
INVOICE_COLUMNS = ("invoice_number", "customer_id", "billing_month", "issue_date", "due_date", "currency", "subtotal",
                   "credits_applied", "taxable_amount", "tax_name", "tax_rate", "tax_amount", "total",
                   "reverse_charge", "status")
COLUMNS = (*INVOICE_COLUMNS, "as_of")
AMOUNTS = ("subtotal", "credits_applied", "taxable_amount", "tax_amount", "total")


class NoPreview(Exception):
    """The published copy holds no preview of the month asked for; the message says why."""


@dataclass
class Preview:
    month: BillingMonth
    rows: list[dict]

    @property
    def as_of(self) -> date | None:
        return max((row["as_of"] for row in self.rows if row["as_of"]), default=None)

    def totals(self) -> dict[str, Decimal]:
        return {name: sum((row[name] or Decimal(0) for row in self.rows), Decimal("0.00")) for name in AMOUNTS}


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts' AND table_name = ?",
                       [name]).fetchone()[0] > 0


def read_preview(published: Path, month: BillingMonth, customer: str | None = None) -> Preview:
    """The month's preview rows (one per customer, or the one customer), by customer_id; NoPreview otherwise."""
    path = published / DUCKDB_FILE
    if not path.exists():
        raise NoPreview(f"nothing is published in {published} yet (BILLOPS_PUBLISHED): no close or preview has run")
    con = duckdb.connect(str(path), read_only=True)
    try:
        if not _table_exists(con, "invoice_preview"):
            raise NoPreview(f"the published copy in {published} has no marts.invoice_preview yet: "
                            "no preview has run since billops was upgraded")
        if _table_exists(con, "invoices") and con.execute(
                "SELECT count(*) FROM marts.invoices WHERE billing_month = ? AND status <> 'draft'",
                [month.start]).fetchone()[0]:
            raise NoPreview(f"{month} is issued: its invoices are in marts.invoices "
                            "(a preview shows a month not issued yet)")
        sql = f"SELECT {', '.join(COLUMNS)} FROM marts.invoice_preview WHERE billing_month = ?"
        params: list = [month.start]
        if customer is not None:
            sql += " AND customer_id = ?"
            params.append(customer)
        rows = [dict(zip(COLUMNS, row)) for row in con.execute(sql + " ORDER BY customer_id", params).fetchall()]
        if not rows:
            raise NoPreview(_why_empty(con, month, customer))
        return Preview(month, rows)
    finally:
        con.close()


def _why_empty(con: duckdb.DuckDBPyConnection, month: BillingMonth, customer: str | None) -> str:
    previewed = con.execute("SELECT billing_month, max(as_of), count(*) FROM marts.invoice_preview "
                            "GROUP BY billing_month ORDER BY billing_month").fetchall()
    held = {m: (as_of, n) for m, as_of, n in previewed}
    if customer is not None and month.start in held:
        as_of, n = held[month.start]
        return f"customer {customer} has no invoice in the preview of {month} (as of {as_of}; {n} customers have one)"
    others = ", ".join(f"{BillingMonth.of(m)} (as of {as_of})" for m, (as_of, _) in held.items())
    return (f"no preview of {month}: none of its usage has been ingested and previewed yet"
            + (f"; the published preview is of {others}" if others else ""))


def _json_value(name: str, value):
    if value is None:
        return None
    if name in AMOUNTS:
        return f"{value:.2f}"
    if isinstance(value, Decimal):  # tax_rate: its exact six decimals, as text like every decimal
        return f"{value:.6f}"
    if isinstance(value, date):
        return value.isoformat()
    return value


def as_json(preview: Preview) -> str:
    """One JSON array of objects: the columns of marts.invoices plus as_of."""
    return json.dumps([{name: _json_value(name, row[name]) for name in COLUMNS} for row in preview.rows], indent=2)


def _tax(row: dict) -> str:
    """'VAT 19%', 'reverse charge', or '-' when no rule applies."""
    if row["reverse_charge"]:
        return "reverse charge"
    if not row["tax_name"] or row["tax_rate"] is None:
        return "-"
    return f"{row['tax_name']} {(row['tax_rate'] * 100).normalize():f}%"


def as_table(preview: Preview):
    """A rich Table in USD: one row per customer, the totals in its footer (fits 80 columns)."""
    from rich.markup import escape
    from rich.table import Table

    totals = preview.totals()
    table = Table(title=f"billops preview {preview.month} as of {preview.as_of}: month-to-date invoices in USD "
                        "(drafts, not issued)", show_footer=True)
    table.add_column("customer", footer=f"{len(preview.rows)} invoices")
    money = (("subtotal", "subtotal"), ("credits_applied", "credits"), ("tax_amount", "tax"), ("total", "total"))
    for name, label in money:
        table.add_column(label, justify="right", footer=f"{totals[name]:,.2f}")
    table.add_column("tax rule")
    for row in preview.rows:
        table.add_row(escape(row["customer_id"]),
                      *(f"{row[name]:,.2f}" if row[name] is not None else "" for name, _ in money),
                      escape(_tax(row)))
    return table


def failing_day_checks(dagster_home: Path, month: BillingMonth) -> list[str]:
    """The failed ERROR day checks that mark the month's preview as failing (orchestration/day_checks.py), read
    from the Dagster instance in `dagster_home` (never the warehouse); none when no instance is there."""
    if not (dagster_home / "dagster.yaml").exists():
        return []
    import dagster as dg

    from orchestration.day_checks import failed_day_checks

    with dg.DagsterInstance.get() as instance:
        return [str(failed) for failed in failed_day_checks(instance, month)]
