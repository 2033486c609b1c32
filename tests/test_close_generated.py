"""A generated month closes with the manifest's anomalies caught exactly (recall and precision 100%)."""

import json
import shutil
from pathlib import Path

import pytest

from synthetic.generate import generate
from tests.conftest import Workspace


@pytest.fixture
def generated(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path, tmp_path / "landing", tmp_path / "warehouse.duckdb", tmp_path / "dagster_home")
    generate("2026-10", 60, 5, ws.landing, anomalies="default", progress=False)
    return ws


def _manifest(ws: Workspace, expect: str) -> set[tuple]:
    lines = [json.loads(line) for line in (ws.landing / "_truth" / "anomalies.jsonl").read_text().splitlines()]
    return {(e["file"], e["row_number"], e["event_id"]) + ((e["reason"],) if expect == "quarantine" else ())
            for e in lines if e["expect"] == expect}


def test_generated_month_quarantines_and_dedupes_exactly_the_manifest(generated):
    result = generated.close("2026-10")
    assert result.returncode == 0, result.stderr[-3000:]
    expected_quarantine = _manifest(generated, "quarantine")
    expected_dedupe = _manifest(generated, "dedupe")
    assert len(expected_quarantine) >= 11 and len(expected_dedupe) >= 1
    quarantined = set(generated.query("SELECT file, row_number, record_id, reason FROM audit.quarantine WHERE source = 'usage'"))
    deduped = set(generated.query("SELECT file, row_number, record_id FROM audit.redeliveries WHERE source = 'usage'"))
    caught_q, caught_d = quarantined & expected_quarantine, deduped & expected_dedupe
    recall_q, precision_q = len(caught_q) / len(expected_quarantine), len(caught_q) / len(quarantined)
    recall_d, precision_d = len(caught_d) / len(expected_dedupe), len(caught_d) / len(deduped)
    assert (recall_q, precision_q, recall_d, precision_d) == (1.0, 1.0, 1.0, 1.0), (
        quarantined ^ expected_quarantine, deduped ^ expected_dedupe)
    # Nothing lost: every row read is accepted, re-delivered or quarantined, per file.
    for file, read, accepted, redelivered, bad in generated.query(
        "SELECT file, rows_read, accepted, redelivered, quarantined FROM audit.file_loads"
    ):
        assert read == accepted + redelivered + bad, file
    (invoices,), = generated.query("SELECT count(*) FROM marts.invoices")
    (customers_with_usage,), = generated.query("SELECT count(DISTINCT customer_id) FROM raw.usage_month")
    assert invoices == customers_with_usage > 0


def test_unpriced_usage_blocks_the_month(tmp_path):
    ws = Workspace(tmp_path, tmp_path / "landing", tmp_path / "warehouse.duckdb", tmp_path / "dagster_home")
    generate("2026-10", 30, 9, ws.landing, anomalies="all", progress=False)
    result = ws.close("2026-10")
    assert result.returncode == 1
    assert "usage_is_priced" in result.stderr
    (unpriced,), = ws.query("SELECT count(*) FROM audit.quarantine WHERE reason = 'no_price'")
    manifest = [json.loads(line) for line in (ws.landing / "_truth" / "anomalies.jsonl").read_text().splitlines()]
    assert unpriced == sum(1 for e in manifest if e.get("reason") == "no_price") > 0
    assert ws.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts' AND table_name = 'invoices'") == [(0,)]


def test_consecutive_generated_months_chain_and_carry_credits(tmp_path):
    ws = Workspace(tmp_path, tmp_path / "landing", tmp_path / "warehouse.duckdb", tmp_path / "dagster_home")
    generate("2026-09", 80, 3, ws.landing, anomalies="none", progress=False)
    assert ws.close("2026-09").returncode == 0
    generate("2026-10", 80, 3, ws.landing, anomalies="none", progress=False)
    result = ws.close("2026-10")
    assert result.returncode == 0, result.stderr[-3000:]
    # Grants used in both months open October with September's closing balance.
    carried = ws.query(
        """
        SELECT s.grant_id, s.closing_balance, o.opening_balance
        FROM marts.credit_ledger s JOIN marts.credit_ledger o USING (grant_id)
        WHERE s.billing_month = DATE '2026-09-01' AND o.billing_month = DATE '2026-10-01'
        """
    )
    assert carried and all(closing == opening for _, closing, opening in carried)
    assert ws.query("SELECT count(DISTINCT billing_month) FROM marts.invoices") == [(2,)]
