"""Refunds and disputes (``payments/refunds``, ``payments/disputes``) of ordinary succeeded charges.

Refunds are partial (10–50 %), requested by the customer 1–10 days after the
charge. Disputes arrive 2–12 days after the charge, across the contract's
statuses; one is always ``lost`` so a small month exercises the E1 criterion.
"""
from __future__ import annotations

import numpy as np

from synthetic.charges import Charges
from synthetic.issued_invoices import IssuedInvoices
from synthetic.jsonl import compact_json
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
