"""Over-billing claims: which invoices a true claim and a false claim name.

A true claim has a cause upstream: one hourly SKU's price for the previous
month is corrected (lowered, ``price_book.correct_price``), and true claims name
invoices with a line of that SKU; false claims name invoices without it
(docs/decisions.md #20). Claims are payable invoices, and true ones have no
credits applied and at least $1 of the SKU, so the over-billing shows in what
was charged.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from synthetic.issued_invoices import IssuedInvoices
from synthetic.price_book import correctable_skus
from synthetic.streams import take_distinct

CLAIM_RATE = 0.0003  # of invoices, for true claims and, separately, false claims
MIN_CLAIMS, MAX_CLAIMS = 2, 25  # each kind: a small month still has some, a large one not too many


@dataclass(frozen=True)
class Claims:
    sku: str | None            # the corrected SKU (None: nothing to correct, no true claim)
    invoices_with_sku: int     # every invoice the correction over-billed
    true_claims: np.ndarray    # invoice positions
    false_claims: np.ndarray


def choose_claims(rng: np.random.Generator, invoices: IssuedInvoices, sku_amounts: list,
                  price_book: list[list[str]], prev_first: str, month_first: str) -> Claims:
    """``sku_amounts``: (invoice number, SKU, amount) of the previous month's lines."""
    n = len(invoices.numbers)
    payable = invoices.payable
    n_claims = min(MAX_CLAIMS, max(MIN_CLAIMS, round(CLAIM_RATE * n)))
    correctable = correctable_skus(price_book, prev_first, month_first) if price_book else set()
    position = {number: i for i, number in enumerate(invoices.numbers)}
    sku_invoices: dict[str, list[int]] = {}
    sku_candidates: dict[str, list[int]] = {}
    for number, sku, amount in sku_amounts:
        i = position.get(number)
        if i is None or sku not in correctable:
            continue
        sku_invoices.setdefault(sku, []).append(i)
        if payable[i] and invoices.no_credits[i] and Decimal(amount) >= 1:
            sku_candidates.setdefault(sku, []).append(i)
    sku = None
    if sku_candidates:
        # the SKU touching the fewest invoices among those with enough candidates (small blast radius)
        sku = min(sku_candidates, key=lambda s: (len(sku_candidates[s]) < n_claims, len(sku_invoices[s]), s))
    true_claims = take_distinct(rng, np.array(sku_candidates.get(sku, []), np.int64), n_claims)
    touched = np.zeros(n, bool)
    if sku:
        touched[sku_invoices[sku]] = True
    payable_positions = np.flatnonzero(payable)
    false_claims = take_distinct(rng, payable_positions[~touched[payable_positions]], n_claims)
    return Claims(sku, len(sku_invoices[sku]) if sku else 0, true_claims, false_claims)
