"""What the simulator answers: the previous month's issued invoices, and what it knows of their customers.

The invoices come from the published copy (``synthetic/published.py``), the customers and
earlier disputes from the landing zone (``reference/customers.csv``, earlier payment files).
"""
from __future__ import annotations

import csv
import datetime as dt
import pathlib
from dataclasses import dataclass
from decimal import Decimal

import duckdb
import numpy as np

from synthetic.jsonl import sql_path_list
from synthetic.months import date_midnight


@dataclass(frozen=True)
class IssuedInvoices:
    """One array entry per invoice of the month answered, ordered by invoice number."""

    numbers: list[str]
    customers: list[str]
    due_dates: list[dt.date | None]
    cents: np.ndarray          # total, whole cents (int64)
    subtotal: np.ndarray       # float: only shapes how many tickets a customer writes
    no_credits: np.ndarray     # bool: no credits applied (a true claim's invoice is fully charged)
    issued_at: np.ndarray      # epoch seconds, never before the month simulated
    payment_method: np.ndarray  # card, paypal or none (object)

    @property
    def payable(self) -> np.ndarray:
        """A charge is attempted: something is due and the customer has a payment method."""
        return (self.cents > 0) & (self.payment_method != "none")


def read_customers(landing: pathlib.Path) -> dict[str, tuple[str, str]]:
    """customer_id → (created_at, payment_method) from reference/customers.csv."""
    path = landing / "reference" / "customers.csv"
    if not path.exists():
        raise ValueError(f"{path} is missing: run billops generate for the previous month first")
    with open(path, newline="", encoding="utf-8") as f:
        return {r["customer_id"]: (r["created_at"], r["payment_method"]) for r in csv.DictReader(f)}


def issued_invoices(rows: list, customers: dict[str, tuple[str, str]], month_first: int) -> IssuedInvoices:
    """The published invoice rows as arrays; a total that is not whole cents is refused."""
    cents = np.empty(len(rows), np.int64)
    for i, row in enumerate(rows):
        total_cents = Decimal(row[4]) * 100
        if total_cents != total_cents.to_integral_value():
            raise ValueError(f"invoice {row[0]}: total {row[4]} is not whole cents")
        cents[i] = int(total_cents)
    owners = [row[1] for row in rows]
    return IssuedInvoices(
        numbers=[row[0] for row in rows],
        customers=owners,
        due_dates=[row[3] for row in rows],
        cents=cents,
        subtotal=np.array([float(row[5]) for row in rows]),
        no_credits=np.array([Decimal(row[6] or "0") == 0 for row in rows]),
        issued_at=np.array([max(date_midnight(row[2]), month_first) if row[2] else month_first for row in rows],
                           np.int64),
        payment_method=np.array([customers.get(c, ("", "card"))[1] for c in owners], dtype=object),
    )


def earlier_lost_disputes(landing: pathlib.Path, own: set[str]) -> set[str]:
    """Customers with a lost dispute in earlier payment files (not the files this run rewrites)."""
    disputes = [p for p in sorted((landing / "payments" / "disputes").glob("*.jsonl")) if p.name not in own]
    charges = [p for p in sorted((landing / "payments" / "charges").glob("*.jsonl")) if p.name not in own]
    if not disputes or not charges:
        return set()
    con = duckdb.connect()
    try:
        rows = con.execute(f"""
            SELECT DISTINCT c.customer
            FROM read_json({sql_path_list(charges)}, format = 'newline_delimited', ignore_errors = true,
                           columns = {{'id': 'VARCHAR', 'customer': 'VARCHAR'}}) c
            JOIN read_json({sql_path_list(disputes)}, format = 'newline_delimited', ignore_errors = true,
                           columns = {{'charge': 'VARCHAR', 'status': 'VARCHAR'}}) d ON d.charge = c.id
            WHERE d.status = 'lost' AND c.customer IS NOT NULL""").fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}
