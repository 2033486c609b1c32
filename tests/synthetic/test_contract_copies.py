"""The generator's own copies of the contract (synthetic/contract.py, synthetic/eligibility.py) agree with billops.

The synthetic business imports no production module (tests/test_layering.py): it writes the
landing zone and judges the work items from the contract, written again. These tests are where
the two versions meet, so a drift fails here, by name, instead of as a puzzling manifest mismatch.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from synthetic import contract
from synthetic import eligibility as truth
from synthetic.jsonl import sql_path_list
from warehouse import landing
from workitems import eligibility as product

FAILED_AT = datetime(2026, 10, 20, 12, 0, tzinfo=timezone.utc)


def test_reference_columns_are_the_landing_contract_s():
    assert contract.REFERENCE_COLUMNS == landing.REFERENCE_COLUMNS


def test_duckdb_path_lists_are_quoted_alike():
    paths = [Path("/landing/payments/charges-2026-10.jsonl"), Path("/landing/o'neil/refunds.jsonl")]
    assert sql_path_list(paths) == landing.sql_path_list(paths) == \
        "['/landing/payments/charges-2026-10.jsonl', '/landing/o''neil/refunds.jsonl']"


def _cases():
    """Every combination of the four criteria at and around their boundaries (80 cases)."""
    created = [None, FAILED_AT - timedelta(days=90) + timedelta(seconds=1), FAILED_AT - timedelta(days=90),
               FAILED_AT - timedelta(days=400)]
    granted = [(), (FAILED_AT - timedelta(days=180),), (FAILED_AT - timedelta(days=180, seconds=1),),
               (FAILED_AT,), (FAILED_AT + timedelta(seconds=1), FAILED_AT - timedelta(days=500))]
    amounts = [Decimal("5000.00"), Decimal("5000.01")]
    for created_at, extensions, lost, amount in itertools.product(created, granted, (False, True), amounts):
        yield dict(failed_at=FAILED_AT, customer_created_at=created_at, extensions_granted_at=extensions,
                   has_lost_dispute=lost, amount_due=amount, due_date=date(2026, 10, 15))


def test_the_ground_truth_s_e1_gives_the_product_s_verdicts_at_every_boundary():
    assert truth.CRITERIA == product.CRITERIA
    verdicts = []
    for case in _cases():
        expected = product.failed_criteria(product.ExtensionCase(**case))
        assert truth.failed_criteria(truth.ExtensionCase(**case)) == expected, case
        assert truth.extensions_in_lookback(truth.ExtensionCase(**case)) == \
            product.extensions_in_lookback(product.ExtensionCase(**case)), case
        verdicts.append(tuple(expected))
    # the grid reaches both sides of every criterion: eligible cases, and each criterion failing alone
    assert () in verdicts and {(name,) for name in product.CRITERIA} <= set(verdicts)
