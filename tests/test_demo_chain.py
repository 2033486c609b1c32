"""The demo's chain through the real command: generate, close, simulate, generate, close."""

import csv
import json
from decimal import Decimal
from pathlib import Path

from tests.conftest import Workspace


def test_two_month_chain_lands_payments_and_tickets_against_issued_invoices(tmp_path: Path):
    ws = Workspace(tmp_path, tmp_path / "landing", tmp_path / "warehouse.duckdb", tmp_path / "dagster_home")
    steps = [
        ("generate", "--month", "2026-09", "--customers", "60", "--seed", "4"),
        ("close", "--month", "2026-09"),
        ("simulate", "--month", "2026-10", "--seed", "4"),
        ("generate", "--month", "2026-10", "--customers", "60", "--seed", "4"),
        ("close", "--month", "2026-10"),
    ]
    for step in steps:
        result = ws.billops(*step)
        assert result.returncode == 0, (step, result.stderr[-3000:])
    # Every simulated charge names an issued September invoice: none is quarantined.
    assert ws.query("SELECT count(*) FROM audit.quarantine WHERE source IN ('charges', 'refunds', 'disputes')") == [(0,)]
    # Succeeded charges equal their invoice totals to the cent (one per invoice, duplicates aside).
    mismatched = ws.query(
        """
        SELECT c.charge_id FROM staging.stg_payments__charges c
        JOIN marts.invoices i ON i.invoice_number = c.invoice_number
        WHERE c.status = 'succeeded' AND c.amount <> i.total
        """
    )
    assert mismatched == []
    (paid,), = ws.query("SELECT count(DISTINCT invoice_number) FROM staging.stg_payments__charges WHERE status = 'succeeded'")
    assert paid > 0
    # The price correction simulate landed for September survives October's generate.
    manifest = [json.loads(line) for line in (ws.landing / "_truth" / "anomalies.jsonl").read_text().splitlines()]
    (correction,) = [e for e in manifest if e["anomaly"] == "price_correction"]
    with (ws.landing / "reference" / "price_book.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["sku"] == correction["sku"]]
    september = [r for r in rows if r["effective_from"] == "2026-09-01" and r["effective_to"] == "2026-10-01"]
    assert len(september) == 1
    assert Decimal(september[0]["unit_price"]) == Decimal(correction["new_unit_price"]) < Decimal(correction["old_unit_price"])
    assert ws.query("SELECT count(DISTINCT billing_month) FROM marts.invoices") == [(2,)]
