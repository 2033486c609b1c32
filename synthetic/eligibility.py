"""Rule E1 (payment extension) as the ground truth states it, written from docs/contract/work-items.md.

The manifest says, for each failed payment the simulator lands, whether billops must propose an
extension and which criteria fail. It is an oracle, so it restates the contract's table instead
of importing billops's rule (workitems/eligibility.py): a wrong change to the product's rule then
fails the work-item tests instead of moving the expected answer with it. tests/synthetic/
test_contract_copies.py holds the two to the same verdicts on the boundary cases.

| reason                          | fails when                                                              |
| ------------------------------- | ----------------------------------------------------------------------- |
| customer_younger_than_90_days   | created less than 90 days before the failed charge, or unknown          |
| extension_in_last_180_days      | an extension approved or done in the 180 days up to the failed charge   |
| lost_dispute                    | the customer has ever lost a dispute                                    |
| amount_over_5000                | the invoice's amount due is over $5,000.00                              |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

CRITERIA = ("customer_younger_than_90_days", "extension_in_last_180_days", "lost_dispute", "amount_over_5000")


@dataclass(frozen=True)
class ExtensionCase:
    """One invoice whose charge failed for good, as the simulator knows it."""

    failed_at: datetime
    customer_created_at: datetime | None
    extensions_granted_at: tuple[datetime, ...]
    has_lost_dispute: bool
    amount_due: Decimal
    due_date: date | None


def extensions_in_lookback(case: ExtensionCase) -> list[datetime]:
    """Extensions granted in the 180 days up to and including the failed charge."""
    return [at for at in case.extensions_granted_at if case.failed_at - timedelta(days=180) <= at <= case.failed_at]


def failed_criteria(case: ExtensionCase) -> list[str]:
    """Every criterion the case fails, in the contract's order (empty: eligible)."""
    young = case.customer_created_at is None or case.failed_at - case.customer_created_at < timedelta(days=90)
    fails = (young, bool(extensions_in_lookback(case)), case.has_lost_dispute, case.amount_due > Decimal("5000.00"))
    return [name for name, failed in zip(CRITERIA, fails) if failed]
