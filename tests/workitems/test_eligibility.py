"""Rule E1 (docs/contract/work-items.md): each criterion failing alone, its boundaries, and the proposed date."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from workitems.eligibility import (
    AMOUNT_OVER_5000, CUSTOMER_YOUNGER_THAN_90_DAYS, EXTENSION_IN_LAST_180_DAYS, LOST_DISPUTE, ExtensionCase,
    assess, failed_criteria,
)

FAILED_AT = datetime(2026, 10, 3, 14, 30, tzinfo=timezone.utc)
ELIGIBLE = ExtensionCase(
    failed_at=FAILED_AT,
    customer_created_at=FAILED_AT - timedelta(days=400),
    extensions_granted_at=(FAILED_AT - timedelta(days=365),),
    has_lost_dispute=False,
    amount_due=Decimal("120.50"),
    due_date=date(2026, 10, 31),
)


def test_eligible_case_gets_due_date_plus_14_days():
    assert failed_criteria(ELIGIBLE) == []
    assert assess(ELIGIBLE) == date(2026, 11, 14)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"customer_created_at": FAILED_AT - timedelta(days=30)}, CUSTOMER_YOUNGER_THAN_90_DAYS),
        ({"customer_created_at": None}, CUSTOMER_YOUNGER_THAN_90_DAYS),
        ({"extensions_granted_at": (FAILED_AT - timedelta(days=20),)}, EXTENSION_IN_LAST_180_DAYS),
        ({"has_lost_dispute": True}, LOST_DISPUTE),
        ({"amount_due": Decimal("7300.00")}, AMOUNT_OVER_5000),
    ],
)
def test_each_criterion_failing_alone(change, reason):
    case = replace(ELIGIBLE, **change)
    assert failed_criteria(case) == [reason]
    assert assess(case) == reason


def test_customer_age_boundary_is_90_days_inclusive():
    exactly = replace(ELIGIBLE, customer_created_at=FAILED_AT - timedelta(days=90))
    one_second_short = replace(ELIGIBLE, customer_created_at=FAILED_AT - timedelta(days=90) + timedelta(seconds=1))
    assert assess(exactly) == date(2026, 11, 14)
    assert assess(one_second_short) == CUSTOMER_YOUNGER_THAN_90_DAYS


def test_extension_lookback_boundary_is_180_days_inclusive():
    exactly = replace(ELIGIBLE, extensions_granted_at=(FAILED_AT - timedelta(days=180),))
    one_second_before = replace(ELIGIBLE, extensions_granted_at=(FAILED_AT - timedelta(days=180, seconds=1),))
    after_the_failure = replace(ELIGIBLE, extensions_granted_at=(FAILED_AT + timedelta(seconds=1),))
    assert assess(exactly) == EXTENSION_IN_LAST_180_DAYS
    assert assess(one_second_before) == date(2026, 11, 14)
    assert assess(after_the_failure) == date(2026, 11, 14)


def test_amount_boundary_is_5000_00_inclusive():
    assert assess(replace(ELIGIBLE, amount_due=Decimal("5000.00"))) == date(2026, 11, 14)
    assert assess(replace(ELIGIBLE, amount_due=Decimal("5000.01"))) == AMOUNT_OVER_5000


def test_all_failures_listed_in_order_and_the_first_one_named():
    case = ExtensionCase(failed_at=FAILED_AT, customer_created_at=FAILED_AT - timedelta(days=1),
                         extensions_granted_at=(FAILED_AT - timedelta(days=1),), has_lost_dispute=True,
                         amount_due=Decimal("9999.99"), due_date=date(2026, 10, 31))
    assert failed_criteria(case) == [CUSTOMER_YOUNGER_THAN_90_DAYS, EXTENSION_IN_LAST_180_DAYS, LOST_DISPUTE,
                                     AMOUNT_OVER_5000]
    assert assess(case) == CUSTOMER_YOUNGER_THAN_90_DAYS
