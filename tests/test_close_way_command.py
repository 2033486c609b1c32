"""November closed by `billops close` after late October usage and a price change (tests/three_ways.py):
October is restated first (c002's late hours, the 1 vCPU Droplet's users over-billed), then November issued."""

from decimal import Decimal

import pytest

from tests.three_ways import closed_by


@pytest.fixture(scope="module")
def command(closed_golden, tmp_path_factory) -> dict:
    return closed_by("command", closed_golden, tmp_path_factory)


def test_the_command_restates_october_and_raises_its_credit_note(command):
    restatements = command["restatements"]
    assert {r[0] for r in restatements} == {"2026-10-01"}
    assert [r[6] for r in restatements if r[1] == "c002"] == ["late_usage"]  # r002 is a 2 vCPU Droplet
    over_billed = sorted(r[1] for r in restatements if Decimal(r[5]) < 0)
    assert over_billed and all(r[6] == "price_correction" for r in restatements if r[1] in over_billed)
    # Unpaid (no payments landed): each over-billed invoice gets an R1 credit note for the difference.
    assert sorted((kind, rule, customer) for kind, rule, customer, *_ in command["work_items"]) == [
        ("credit_note", "R1", customer) for customer in over_billed]
    assert {r[2] for r in command["invoices"]} == {"2026-10-01", "2026-11-01"}
