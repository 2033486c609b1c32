"""Payment-extension eligibility, rule E1 of docs/contract/work-items.md, said once.

A customer whose charge for an invoice failed (and was not followed by a
succeeded one) may get more time. The extension is *proposed* when all four
criteria hold, checked in this order; otherwise the work item is raised with
``reason`` naming the first criterion that failed, and no proposed date, for a
person to decide:

=================================  ===============================================
reason                             fails when
=================================  ===============================================
``customer_younger_than_90_days``  the customer was created less than 90 days
                                   before the failed charge (or its creation
                                   date is unknown); exactly 90 days passes
``extension_in_last_180_days``     an extension was granted (approved or done) in
                                   the 180 days up to and including the failed
                                   charge; exactly 180 days before counts
``lost_dispute``                   the customer has lost a dispute, ever
``amount_over_5000``               the invoice's amount due exceeds $5,000.00
                                   ($5,000.00 passes, $5,000.01 fails)
=================================  ===============================================

Proposed due date: ``due_date + 14 days`` (docs/contract/work-items.md: "proposed_due_date =
due_date + 14 days").

The simulator states the rule again from the contract (``synthetic/eligibility.py``: the ground
truth must not move with the product), and tests/synthetic/test_contract_copies.py holds both to
the same verdicts at every boundary. Money is Decimal, instants are timezone-aware datetimes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

MIN_CUSTOMER_AGE = timedelta(days=90)
EXTENSION_LOOKBACK = timedelta(days=180)
MAX_AMOUNT_DUE = Decimal("5000.00")
EXTENSION_LENGTH = timedelta(days=14)

CUSTOMER_YOUNGER_THAN_90_DAYS = "customer_younger_than_90_days"
EXTENSION_IN_LAST_180_DAYS = "extension_in_last_180_days"
LOST_DISPUTE = "lost_dispute"
AMOUNT_OVER_5000 = "amount_over_5000"
CRITERIA = (CUSTOMER_YOUNGER_THAN_90_DAYS, EXTENSION_IN_LAST_180_DAYS, LOST_DISPUTE, AMOUNT_OVER_5000)


@dataclass(frozen=True)
class ExtensionCase:
    """One invoice whose charge failed, with what E1 needs to know about its customer."""

    failed_at: datetime                       # the last failed charge
    customer_created_at: datetime | None      # None: unknown customer (not eligible)
    extensions_granted_at: tuple[datetime, ...]  # the customer's approved or executed extensions
    has_lost_dispute: bool
    amount_due: Decimal
    due_date: date


def extensions_in_lookback(case: ExtensionCase) -> list[datetime]:
    """The customer's extensions granted within EXTENSION_LOOKBACK up to the failed charge (both ends in)."""
    return [at for at in case.extensions_granted_at if case.failed_at - EXTENSION_LOOKBACK <= at <= case.failed_at]


def failed_criteria(case: ExtensionCase) -> list[str]:
    """Every criterion the case fails, in CRITERIA order (empty: eligible)."""
    failed = []
    if case.customer_created_at is None or case.failed_at - case.customer_created_at < MIN_CUSTOMER_AGE:
        failed.append(CUSTOMER_YOUNGER_THAN_90_DAYS)
    if extensions_in_lookback(case):
        failed.append(EXTENSION_IN_LAST_180_DAYS)
    if case.has_lost_dispute:
        failed.append(LOST_DISPUTE)
    if case.amount_due > MAX_AMOUNT_DUE:
        failed.append(AMOUNT_OVER_5000)
    return failed


def proposed_due_date(due_date: date) -> date:
    return due_date + EXTENSION_LENGTH


def assess(case: ExtensionCase) -> date | str:
    """The proposed due date when eligible, else the name of the first failed criterion."""
    failed = failed_criteria(case)
    return failed[0] if failed else proposed_due_date(case.due_date)
