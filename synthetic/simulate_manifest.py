"""``simulate``'s lines of the ground-truth manifest: what the pipeline must find in the month simulated.

Duplicate charges (``work_item:refund``), failed payments
(``work_item:payment_extension``, with E1's verdict), true claims
(``work_item:refund``), false claims (``no_work_item``) and the price correction
that causes the true claims.

A failed payment's eligibility is decided by ``synthetic/eligibility.py`` — rule
E1 as the contract states it, restated so that the ground truth does not move
with the product's rule — from what the simulator knows: the customer's
created_at (``reference/customers.csv``), the extensions granted in the
published ``marts.work_items``, lost disputes in the payment files, and the
invoice total. ``ineligible_reasons`` lists every failed criterion in the rule's order.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from synthetic import eligibility
from synthetic.charges import Charges, PaymentRoles
from synthetic.claims import Claims
from synthetic.issued_invoices import IssuedInvoices
from synthetic.jsonl import dollars
from synthetic.months import UTC, iso_utc
from synthetic.tickets import FALSE_CLAIM, TRUE_CLAIM


def extension_case(invoices: IssuedInvoices, i: int, failed_at: int, created_at: str, granted: list[dt.datetime],
                   lost_disputes: set[str]) -> eligibility.ExtensionCase:
    """Invoice ``i``'s failed payment as E1 sees it (``created_at`` as in customers.csv, "" if unknown)."""
    return eligibility.ExtensionCase(
        failed_at=dt.datetime.fromtimestamp(failed_at, UTC),
        customer_created_at=dt.datetime.fromisoformat(created_at.replace("Z", "+00:00")) if created_at else None,
        extensions_granted_at=tuple(granted),
        has_lost_dispute=invoices.customers[i] in lost_disputes,
        amount_due=Decimal(int(invoices.cents[i])) / 100,
        due_date=invoices.due_dates[i],
    )


def simulate_entries(invoices: IssuedInvoices, roles: PaymentRoles, charges: Charges, claims: Claims,
                     claim_tickets: dict, correction: dict | None, customers: dict[str, tuple[str, str]],
                     lost_disputes: set[str], extensions: list) -> list[dict]:
    """The manifest entries (without ``step`` and ``month``), in a fixed order."""
    entries: list[dict] = []
    numbers, owners, cents = invoices.numbers, invoices.customers, invoices.cents
    for i in roles.duplicated.tolist():
        entries.append({"anomaly": "duplicate_charge", "expect": "work_item:refund", "invoice_number": numbers[i],
                        "charge_id": charges.id_of[(i, 1)], "original_charge_id": charges.id_of[(i, 0)],
                        "customer_id": owners[i], "amount": dollars(int(cents[i]))})
    granted: dict[str, list[dt.datetime]] = {}
    for customer, when in extensions:
        if when is not None:
            granted.setdefault(customer, []).append(when.replace(tzinfo=UTC))
    for i in roles.failed_for_good.tolist():
        attempt = 1 if (i, 1) in charges.id_of else 0
        failed_at = charges.created_of[(i, attempt)]
        created_at = customers.get(owners[i], ("", ""))[0]
        case = extension_case(invoices, i, failed_at, created_at, granted.get(owners[i], []), lost_disputes)
        reasons = eligibility.failed_criteria(case)
        entries.append({"anomaly": "failed_payment", "expect": "work_item:payment_extension",
                        "invoice_number": numbers[i], "customer_id": owners[i],
                        "charge_id": charges.id_of[(i, attempt)], "amount": dollars(int(cents[i])),
                        "failed_at": iso_utc([failed_at])[0], "attempts": attempt + 1, "eligible": not reasons,
                        "ineligible_reasons": reasons, "customer_created_at": created_at or None,
                        "prior_extensions": len(eligibility.extensions_in_lookback(case))})
    for i in claims.true_claims.tolist():
        entries.append({"anomaly": "true_claim", "expect": "work_item:refund", "invoice_number": numbers[i],
                        "ticket_id": claim_tickets[(i, TRUE_CLAIM)], "customer_id": owners[i], "sku": claims.sku,
                        "charge_id": charges.id_of[(i, 0)]})
    for i in claims.false_claims.tolist():
        entries.append({"anomaly": "false_claim", "expect": "no_work_item", "invoice_number": numbers[i],
                        "ticket_id": claim_tickets[(i, FALSE_CLAIM)], "customer_id": owners[i]})
    if correction:
        entries.append({"anomaly": "price_correction", "expect": "accept",
                        **{k: v for k, v in correction.items() if k != "written"}, "file": "reference/price_book.csv"})
    return entries
