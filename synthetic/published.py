"""What `simulate` reads of billops: the published copy, as any BI tool reads it.

The processor and the help desk answer the invoices billops issued for the month before, and
the processor executes the refunds the billing team approved. Both are in the published copy
(`BILLOPS_PUBLISHED/billops.duckdb`, schema `marts`, docs/contract/published-interface.md),
which the command passes in: opened read-only, it never blocks a close (only a close run opens
the warehouse, decisions #60), and the simulator needs no production module to read it. A
decision in the queue reaches the copy at once (`billops workitems approve` refreshes
`marts.work_items`, decisions #61); the other marts are as the last close published them.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class PublishedMonth:
    """The previous month as published: invoices, line amounts per SKU, extensions granted, refunds approved."""

    invoices: list[tuple]       # (number, customer, issue date, due date, total, subtotal, credits applied), text money
    sku_amounts: list[tuple]    # (invoice number, sku, amount as text)
    extensions: list[tuple]     # (customer, granted at) of payment extensions approved or done
    approved_refunds: list[dict]  # marts.work_items rows: approved refunds, by work_item_id


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return con.execute("SELECT count(*) > 0 FROM duckdb_tables() WHERE schema_name = 'marts' AND table_name = ?",
                       [table]).fetchone()[0]


def read_published(database: pathlib.Path, prev_first: dt.date, prev: str) -> PublishedMonth:
    """The previous month from the published copy; ValueError naming the fix when it has no invoices."""
    close_first = (f"no invoices for {prev} in marts.invoices of the published copy {database}: "
                   f"close {prev} first (billops close --month {prev})")
    if not pathlib.Path(database).exists():
        raise ValueError(close_first)
    con = duckdb.connect(str(database), read_only=True)
    try:
        if not _has_table(con, "invoices"):
            raise ValueError(close_first)
        invoices = con.execute(
            """SELECT invoice_number, customer_id, CAST(issue_date AS DATE), CAST(due_date AS DATE),
                      CAST(total AS VARCHAR), CAST(subtotal AS VARCHAR), CAST(credits_applied AS VARCHAR)
               FROM marts.invoices
               WHERE billing_month = ? AND coalesce(status, 'issued') NOT IN ('void', 'draft')
               ORDER BY invoice_number""", [prev_first]).fetchall()
        if not invoices:
            raise ValueError(close_first)
        sku_amounts = []
        if _has_table(con, "invoice_lines"):
            sku_amounts = con.execute(
                """SELECT invoice_number, sku, CAST(sum(amount) AS VARCHAR)
                   FROM marts.invoice_lines WHERE billing_month = ? AND sku IS NOT NULL
                   GROUP BY ALL ORDER BY ALL""", [prev_first]).fetchall()
        extensions, approved = [], []
        if _has_table(con, "work_items"):
            extensions = con.execute(
                """SELECT customer_id, CAST(coalesce(decided_at, created_at) AS TIMESTAMP)
                   FROM marts.work_items WHERE kind = 'payment_extension' AND status IN ('approved', 'done')
                   ORDER BY ALL""").fetchall()
            cursor = con.execute(
                """SELECT work_item_id, rule, invoice_number, charge_id, CAST(amount AS VARCHAR) AS amount
                   FROM marts.work_items WHERE kind = 'refund' AND status = 'approved'
                   ORDER BY work_item_id""")
            names = [column[0] for column in cursor.description]
            approved = [dict(zip(names, row)) for row in cursor.fetchall()]
        return PublishedMonth(invoices, sku_amounts, extensions, approved)
    finally:
        con.close()
