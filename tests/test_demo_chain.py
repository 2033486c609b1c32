"""The demo's chain through the real command (the session's `generated_chain`): generate, close, simulate, generate, close.

Two generated months with the default anomalies: the manifest's quarantine and
dedupe records are caught exactly (recall and precision 100%) in both months,
credits carry from September to October, the simulated charges land against
issued invoices, and the price correction simulate landed for September
restates it when October is closed.
"""

import csv
from decimal import Decimal

import pytest

from tests.generated_chain import SEPTEMBER_ISSUED, STEPS, digest


@pytest.fixture
def chain(generated_chain) -> dict:
    """The session's generated chain (tests/generated_chain.py), read-only."""
    return {"ws": generated_chain.ws, "results": generated_chain.results,
            "september_issued": generated_chain.september_issued_digest, "manifest": generated_chain.manifest()}


def test_every_step_succeeds(chain):
    for step in STEPS:
        result = chain["results"].get(step)
        assert result is not None and result.returncode == 0, (step, result and result.stderr[-3000:])
    october = chain["results"][STEPS[-1]].stdout
    assert "close 2026-10 succeeded: issued" in october


@pytest.mark.parametrize("month", ["2026-09", "2026-10"])
def test_generated_month_quarantines_and_dedupes_exactly_the_manifest(chain, month):
    ws = chain["ws"]
    prefix = f"usage/dt={month}-"
    entries = [e for e in chain["manifest"] if str(e.get("file", "")).startswith(prefix)]
    expected_quarantine = {(e["file"], e["row_number"], e["event_id"], e["reason"])
                           for e in entries if e["expect"] == "quarantine"}
    expected_dedupe = {(e["file"], e["row_number"], e["event_id"]) for e in entries if e["expect"] == "dedupe"}
    assert len(expected_quarantine) >= 5 and len(expected_dedupe) >= 1
    quarantined = set(ws.query("SELECT file, row_number, record_id, reason FROM audit.quarantine "
                               "WHERE source = 'usage' AND file LIKE ?", [prefix + "%"]))
    deduped = set(ws.query("SELECT file, row_number, record_id FROM audit.redeliveries "
                           "WHERE source = 'usage' AND file LIKE ?", [prefix + "%"]))
    assert quarantined == expected_quarantine, quarantined ^ expected_quarantine
    assert deduped == expected_dedupe, deduped ^ expected_dedupe
    # Nothing lost: every row read is accepted, re-delivered or quarantined, per file.
    loads = ws.query("SELECT file, rows_read, accepted, redelivered, quarantined FROM audit.file_loads "
                     "WHERE source = 'usage' AND file LIKE ?", [prefix + "%"])
    assert loads
    for file, read, accepted, redelivered, bad in loads:
        assert read == accepted + redelivered + bad, file


def test_october_invoices_every_customer_with_accepted_usage(chain):
    ws = chain["ws"]
    (invoices,), = ws.query("SELECT count(*) FROM marts.invoices WHERE billing_month = DATE '2026-10-01'")
    (customers_with_usage,), = ws.query("SELECT count(DISTINCT customer_id) FROM raw.usage_month")
    assert invoices == customers_with_usage > 0
    by_month = dict(ws.query("SELECT billing_month::VARCHAR, count(*) FROM marts.invoices GROUP BY 1"))
    assert by_month == dict(ws.query("SELECT billing_month::VARCHAR, invoices FROM audit.issued_months"))
    statuses = dict(ws.query("SELECT status, count(*) FROM marts.invoices WHERE billing_month = DATE '2026-09-01' "
                             "GROUP BY 1"))
    # September's invoices were answered by October's simulated payments (docs/contract/billing-rules.md §7): statuses
    # follow them. October's are not yet due on 1 November, the close's as-of date: issued, or paid when
    # they ask for nothing (a $0.00 invoice is paid by definition).
    assert statuses.get("paid", 0) > 0 and set(statuses) <= {"paid", "past_due", "refunded", "partially_refunded",
                                                             "extended", "issued"}
    assert ws.query("SELECT count(*) FROM marts.invoices WHERE billing_month = DATE '2026-10-01' "
                    "AND NOT (status = 'issued' OR (status = 'paid' AND total = 0))") == [(0,)]


def test_credits_carry_from_september_to_october(chain):
    carried = chain["ws"].query(
        """
        SELECT s.grant_id, s.closing_balance, o.opening_balance
        FROM marts.credit_ledger s JOIN marts.credit_ledger o USING (grant_id)
        WHERE s.billing_month = DATE '2026-09-01' AND o.billing_month = DATE '2026-10-01'
        """
    )
    assert carried and all(closing == opening for _, closing, opening in carried)


def test_payments_land_against_issued_invoices(chain):
    ws = chain["ws"]
    # Every simulated charge names an issued September invoice: none is quarantined.
    assert ws.query("SELECT count(*) FROM audit.quarantine WHERE source IN ('charges', 'refunds', 'disputes')") == [(0,)]
    mismatched = ws.query(
        """
        SELECT c.charge_id FROM staging.stg_payments__charges c
        JOIN audit.issued_invoices i ON i.invoice_number = c.invoice_number
        WHERE c.status = 'succeeded' AND c.amount <> i.total
        """
    )
    assert mismatched == []
    (paid,), = ws.query("SELECT count(DISTINCT invoice_number) FROM staging.stg_payments__charges WHERE status = 'succeeded'")
    assert paid > 0


def test_price_correction_restates_september_and_leaves_its_invoices(chain):
    ws = chain["ws"]
    (correction,) = [e for e in chain["manifest"] if e.get("anomaly") == "price_correction"]
    with (ws.landing / "reference" / "price_book.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["sku"] == correction["sku"]]
    september = [r for r in rows if r["effective_from"] == "2026-09-01" and r["effective_to"] == "2026-10-01"]
    assert len(september) == 1
    assert Decimal(september[0]["unit_price"]) == Decimal(correction["new_unit_price"]) < Decimal(
        correction["old_unit_price"])
    # The October close first restated September (its price book changed), then issued October.
    stdout = " ".join(chain["results"][STEPS[-1]].stdout.split())  # rich's line wrapping undone
    restate = stdout[stdout.index("restate 2026-09 (no options, as it was issued): "):stdout.index("billops restating")]
    assert "reference/price_book.csv" in restate and "changed since it was issued" in restate
    assert stdout.index("restating 2026-09 succeeded: restated") < stdout.index("close 2026-10 succeeded: issued")
    assert digest(ws.query(SEPTEMBER_ISSUED)) == chain["september_issued"]
    restated = ws.query("SELECT cause, difference FROM audit.restatements WHERE billing_month = DATE '2026-09-01'")
    assert all("price_correction" in cause or "reference_change" in cause for cause, _ in restated)
    # The correction lowered a price: nobody was under-billed by it.
    assert all(difference < 0 for cause, difference in restated if cause == "price_correction")
