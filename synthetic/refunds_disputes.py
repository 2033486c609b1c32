"""Refunds and disputes (``payments/refunds``, ``payments/disputes``) of ordinary succeeded charges.

Refunds are partial (10–50 %), requested by the customer 1–10 days after the
charge. Disputes arrive 2–12 days after the charge, across the contract's
statuses; one is always ``lost`` so a small month exercises the E1 criterion.

The processor also executes the refunds the billing team approved in the work-item
queue (``work_item_refund_lines``), as the published copy's ``marts.work_items`` shows
them (``synthetic/published.py``): one succeeded refund each, with
``metadata.work_item_id``, appended after the ordinary refunds of the month; the
next close marks the item ``done`` when the refund is loaded. No queue, or nothing
approved: the file is exactly what it was without this.
"""
from __future__ import annotations

import json
import pathlib
from decimal import Decimal

import duckdb
import numpy as np

from synthetic.charges import Charges
from synthetic.issued_invoices import IssuedInvoices
from synthetic.jsonl import compact_json, sql_path_list
from synthetic.months import DAY

DISPUTE_STATUSES = (["warning_needs_response", "needs_response", "under_review", "won", "lost"],
                    [0.10, 0.25, 0.25, 0.15, 0.25])
DISPUTE_REASONS = ["fraudulent", "product_not_received", "duplicate", "subscription_canceled",
                   "credit_not_processed", "unrecognized", "general"]


def refund_lines(rng: np.random.Generator, invoices: IssuedInvoices, charges: Charges, refunded: np.ndarray,
                 month_end: int, ym: str) -> list[str]:
    cents = invoices.cents
    amount = np.maximum(1, np.floor(cents[refunded] * rng.uniform(0.1, 0.5, len(refunded)))).astype(np.int64)
    at = np.array([charges.created_of[(int(i), 0)] for i in refunded], np.int64)
    at = np.minimum(at + rng.integers(DAY, 10 * DAY, len(refunded)), month_end - 60)
    lines = []
    for k, j in enumerate(np.lexsort((refunded, at)).tolist()):
        i = int(refunded[j])
        lines.append(compact_json({
            "id": f"re_{ym}{k + 1:08d}", "object": "refund", "amount": int(amount[j]),
            "charge": charges.id_of[(i, 0)], "created": int(at[j]), "currency": "usd",
            "reason": "requested_by_customer", "status": "succeeded", "metadata": {},
        }))
    return lines


def dispute_lines(rng: np.random.Generator, invoices: IssuedInvoices, charges: Charges, disputed: np.ndarray,
                  month_end: int, ym: str) -> tuple[list[str], set[str]]:
    """(lines, customers who lost a dispute this month)."""
    statuses, shares = DISPUTE_STATUSES
    status = rng.choice(len(statuses), len(disputed), p=shares)
    if len(disputed):
        status[rng.integers(0, len(disputed))] = statuses.index("lost")
    reason = rng.integers(0, len(DISPUTE_REASONS), len(disputed))
    at = np.array([charges.created_of[(int(i), 0)] for i in disputed], np.int64)
    at = np.minimum(at + rng.integers(2 * DAY, 12 * DAY, len(disputed)), month_end - 60)
    lines, lost = [], set()
    for k, j in enumerate(np.lexsort((disputed, at)).tolist()):
        i = int(disputed[j])
        if statuses[status[j]] == "lost":
            lost.add(invoices.customers[i])
        lines.append(compact_json({
            "id": f"dp_{ym}{k + 1:08d}", "object": "dispute", "amount": int(invoices.cents[i]),
            "charge": charges.id_of[(i, 0)], "created": int(at[j]), "currency": "usd",
            "reason": DISPUTE_REASONS[reason[j]], "status": statuses[status[j]],
            "is_charge_refundable": False, "livemode": False,
        }))
    return lines, lost


# --- The payment processor executes the refunds the billing team approved (docs/contract/work-items.md, the loop) ---

def _landed(landing: pathlib.Path, folder: str, own: str, columns: dict[str, str]) -> list[tuple]:
    paths = [p for p in sorted((landing / "payments" / folder).glob("*.jsonl")) if p.name != own]
    if not paths:
        return []
    con = duckdb.connect()
    try:
        cols = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
        return con.execute(f"SELECT {', '.join(columns)} FROM read_json({sql_path_list(paths)}, "
                           f"format = 'newline_delimited', ignore_errors = true, columns = {{{cols}}})").fetchall()
    finally:
        con.close()


def work_item_refund_lines(items: list[dict], landing: pathlib.Path, charge_lines: list[str], files: dict,
                           first_number: int, month_first: int, month_end: int, ym: str) -> list[str]:
    """One succeeded Stripe refund per approved refund item not executed before, `metadata.work_item_id` set.

    The charge refunded is the item's (R2) or else its invoice's first succeeded charge (R1, R3),
    found in this month's charges or the landed ones. Ids continue the month's refund numbering;
    times are one minute apart from the 2nd of the month, after the charge: deterministic.
    """
    if not items:
        return []
    refunds_own, charges_own = (pathlib.PurePosixPath(files[k]).name for k in ("refunds", "charges"))
    executed = {json.loads(meta).get("work_item_id") for (meta,) in
                _landed(landing, "refunds", refunds_own, {"metadata": "JSON"}) if meta}
    todo = [item for item in items if item["work_item_id"] not in executed]
    if not todo:
        return []
    landed = _landed(landing, "charges", charges_own,
                     {"id": "VARCHAR", "metadata": "JSON", "created": "BIGINT", "status": "VARCHAR"})
    charges = [(c["id"], c["metadata"].get("invoice_number"), c["created"], c["status"])
               for c in map(json.loads, charge_lines)]
    charges += [(cid, json.loads(meta or "{}").get("invoice_number"), created, status)
                for cid, meta, created, status in landed]
    created_of = {cid: created for cid, _, created, _ in charges}
    first_paid: dict[str, tuple[int, str]] = {}
    for cid, invoice, created, status in charges:
        if status == "succeeded" and invoice and (invoice not in first_paid or (created, cid) < first_paid[invoice]):
            first_paid[invoice] = (created, cid)
    lines = []
    for item in todo:
        charge = item["charge_id"] or first_paid.get(item["invoice_number"], (None, None))[1]
        if charge is None or charge not in created_of:
            continue  # nothing was charged to refund: the processor cannot execute it
        at = min(max(month_first + DAY + 60 * len(lines), created_of[charge] + 3600), month_end - 60)
        cents = int(Decimal(item["amount"]) * 100)
        lines.append(compact_json({
            "id": f"re_{ym}{first_number + len(lines):08d}", "object": "refund", "amount": cents,
            "charge": charge, "created": at, "currency": "usd",
            "reason": "duplicate" if item["rule"] == "R2" else "requested_by_customer", "status": "succeeded",
            "metadata": {"work_item_id": item["work_item_id"]},
        }))
    return lines
