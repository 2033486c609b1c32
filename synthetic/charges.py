"""Charges (Stripe-like ``payments/charges``): who pays, who fails, who is charged twice.

Every payable invoice gets a first charge within 30 hours of issue. Among the
invoices that are not claims, roles are disjoint:

* failed (FAIL_RATE of payable, at least 2): half are retried 2–8 days later and
  succeed; the others fail for good, half of those after a second failed try.
  Customers with an earlier lost dispute fail more often (LOST_DISPUTE_FAIL_RATE);
* duplicated (DUPLICATE_RATE, at least 1): a second succeeded charge 20 s–15 min
  later, never refunded (sensor R2 must raise it);
* refunded and disputed (REFUND_RATE, DISPUTE_RATE): ordinary succeeded charges,
  answered in ``refunds_disputes.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthetic.issued_invoices import IssuedInvoices
from synthetic.jsonl import compact_json
from synthetic.months import DAY, HOUR
from synthetic.streams import take_distinct

FAIL_RATE, SECOND_FAIL_SHARE = 0.06, 0.5
DUPLICATE_RATE = 0.01
REFUND_RATE = 0.005
DISPUTE_RATE = 0.003
LOST_DISPUTE_FAIL_RATE = 0.5
FAILURES = [  # (failure_code, failure_message, weight)
    ("card_declined", "Your card was declined.", 0.45),
    ("insufficient_funds", "Your card has insufficient funds.", 0.30),
    ("expired_card", "Your card has expired.", 0.15),
    ("processing_error", "An error occurred while processing your card. Try again in a little bit.", 0.10),
]


@dataclass(frozen=True)
class PaymentRoles:
    """Invoice positions per role (sorted)."""

    failed: np.ndarray
    retried: np.ndarray          # failed, then paid
    failed_for_good: np.ndarray
    failed_twice: np.ndarray     # failed for good after a second try
    duplicated: np.ndarray
    refunded: np.ndarray
    disputed: np.ndarray


@dataclass(frozen=True)
class Charges:
    lines: list[str]
    id_of: dict           # (invoice position, attempt) → charge id; attempt 0 first, 1 retry or duplicate
    created_of: dict      # (invoice position, attempt) → epoch seconds
    succeeded: np.ndarray  # one per charge
    first_attempt_at: np.ndarray  # one per invoice


def assign_roles(rng: np.random.Generator, invoices: IssuedInvoices, claimed: np.ndarray,
                 lost_before: set[str]) -> PaymentRoles:
    payable = invoices.payable
    payable_count = int(payable.sum())
    free = payable.copy()
    free[claimed] = False
    candidates = np.flatnonzero(free)
    k_fail = min(len(candidates), max(2, round(FAIL_RATE * payable_count)))
    lost = np.array([c in lost_before for c in invoices.customers], bool)
    forced = candidates[lost[candidates] & (rng.random(len(candidates)) < LOST_DISPUTE_FAIL_RATE)]
    rest = np.setdiff1d(candidates, forced)
    failed = np.sort(np.concatenate([forced[:k_fail], take_distinct(rng, rest, k_fail - min(k_fail, len(forced)))]))
    retry = np.zeros(len(failed), bool)
    retry[rng.permutation(len(failed))[: (len(failed) + 1) // 2]] = True
    retried, failed_for_good = failed[retry], failed[~retry]
    failed_twice = failed_for_good[rng.random(len(failed_for_good)) < SECOND_FAIL_SHARE]
    free[failed] = False
    duplicated = take_distinct(rng, np.flatnonzero(free), max(1, round(DUPLICATE_RATE * payable_count)))
    free[duplicated] = False
    ordinary = np.flatnonzero(free & (invoices.cents >= 2))  # a partial refund needs at least 2 cents
    refunded = take_distinct(rng, ordinary, max(1, round(REFUND_RATE * payable_count)))
    free[refunded] = False
    disputed = take_distinct(rng, np.flatnonzero(free), max(2, round(DISPUTE_RATE * payable_count)))
    return PaymentRoles(failed, retried, failed_for_good, failed_twice, duplicated, refunded, disputed)


def charges(rng: np.random.Generator, invoices: IssuedInvoices, roles: PaymentRoles, month_end: int,
            ym: str) -> Charges:
    """Charge lines ordered by time (ids ``ch_YYYYMM########`` in that order)."""
    n = len(invoices.numbers)
    cents, method = invoices.cents, invoices.payment_method
    payable = np.flatnonzero(invoices.payable)
    first_at = np.minimum(invoices.issued_at + 600 + rng.integers(0, 30 * HOUR, n), month_end - 4 * HOUR)
    failure = rng.choice(len(FAILURES), n, p=[f[2] for f in FAILURES])
    second_failure = rng.choice(len(FAILURES), n, p=[f[2] for f in FAILURES])
    retry_at = np.minimum(first_at + rng.integers(2 * DAY, 8 * DAY, n), month_end - 2 * HOUR)
    duplicate_at = np.minimum(first_at + rng.integers(20, 900, n), month_end - HOUR)
    is_failed = np.zeros(n, bool)
    is_failed[roles.failed] = True
    retried, twice, dups = roles.retried, roles.failed_twice, roles.duplicated
    # columns: invoice, attempt, created, succeeded, failure index
    parts = [
        (payable, np.zeros(len(payable), np.int64), first_at[payable], ~is_failed[payable], failure[payable]),
        (retried, np.ones(len(retried), np.int64), retry_at[retried], np.ones(len(retried), bool), failure[retried]),
        (twice, np.ones(len(twice), np.int64), retry_at[twice], np.zeros(len(twice), bool), second_failure[twice]),
        (dups, np.ones(len(dups), np.int64), duplicate_at[dups], np.ones(len(dups), bool), failure[dups]),
    ]
    invoice, attempt, created, ok, failure_index = (np.concatenate([p[k] for p in parts]) for k in range(5))
    order = np.lexsort((attempt, invoice, created))
    invoice, attempt, created, ok, failure_index = (
        invoice[order], attempt[order], created[order], ok[order], failure_index[order])
    ids = [f"ch_{ym}{k + 1:08d}" for k in range(len(invoice))]
    lines = []
    for charge_id, i, at, paid, f in zip(ids, invoice.tolist(), created.tolist(), ok.tolist(),
                                         failure_index.tolist()):
        lines.append(compact_json({
            "id": charge_id, "object": "charge", "amount": int(cents[i]),
            "amount_captured": int(cents[i]) if paid else 0,
            "amount_refunded": 0, "captured": paid, "currency": "usd", "customer": invoices.customers[i],
            "created": at, "description": f"Invoice {invoices.numbers[i]}", "livemode": False,
            "status": "succeeded" if paid else "failed", "paid": paid,
            "failure_code": None if paid else FAILURES[f][0],
            "failure_message": None if paid else FAILURES[f][1],
            "refunded": False, "metadata": {"invoice_number": invoices.numbers[i]},
            "payment_method_details": {"type": "paypal" if method[i] == "paypal" else "card"},
        }))
    return Charges(
        lines=lines,
        id_of={(int(i), int(a)): cid for i, a, cid in zip(invoice, attempt, ids)},
        created_of={(int(i), int(a)): int(t) for i, a, t in zip(invoice, attempt, created)},
        succeeded=ok,
        first_attempt_at=first_at,
    )
