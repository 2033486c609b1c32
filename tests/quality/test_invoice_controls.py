"""Each blocking control stops issuing; C11 only warns; C10 catches a rewritten issued copy (issue 7 F3).

In-process and cheap: the golden warehouse closed once (session fixture) is
copied, October is made "not issued" again, one draft row is tampered with, and
only `issued_invoices` + `invoice_controls` are materialized — the drafts are
stood in for by no-op assets (the dbt step is not run), so the controls judge
the tables as the test left them. A failing blocking check
means Dagster never runs the issuing step: nothing reaches audit.issued_*.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.issuing import issued_invoices
from config.partitions import monthly_partitions
from quality.invoice_controls import invoice_controls
from warehouse.resource import WarehouseResource

OCTOBER = "2026-10-01"
ISSUED_TABLES = ("issued_invoices", "issued_invoice_lines", "issued_credit_ledger", "issued_price_book",
                 "issued_months", "restatements")
DRAFTS = "intermediate.int_invoices_drafted"
LINES = "intermediate.int_invoice_lines_drafted"
LEDGER = "intermediate.int_credit_ledger_drafted"

# control → the draft tampering that must make it fail (golden October drafts).
TAMPERING = {
    "C1_lines_add_up": f"UPDATE {DRAFTS} SET subtotal = subtotal + 1 WHERE customer_id = 'c002'",
    "C3_usage_completely_rated": f"DELETE FROM {LINES} WHERE customer_id = 'c004' AND sku = 'snapshot-gib'",
    "C4_one_invoice_per_customer_month": f"INSERT INTO {DRAFTS} SELECT * FROM {DRAFTS} WHERE customer_id = 'c006'",
    "C5_gapless_numbering": f"UPDATE {DRAFTS} SET invoice_number = 'BO-202610-000009' WHERE customer_id = 'c007'",
    "C6_no_negative_invoice": f"UPDATE {DRAFTS} SET credits_applied = 20.00, taxable_amount = -7.22, tax_amount = 0, "
                              "total = -7.22 WHERE customer_id = 'c002'",
    "C7_credits_conserved": f"UPDATE {LEDGER} SET opening_balance = 200.00, closing_balance = 199.72 "
                            "WHERE grant_id = 'g004'",
    "C8_tax_applied": f"UPDATE {DRAFTS} SET tax_rate = 0.16, tax_amount = 2.04, total = 14.82 "
                      "WHERE customer_id = 'c002'",
}


def _warehouse(closed_golden, tmp_path: Path, unissue: bool = True) -> WarehouseResource:
    assert closed_golden.result.returncode == 0, closed_golden.result.stderr[-3000:]
    path = tmp_path / "warehouse.duckdb"
    shutil.copy2(closed_golden.ws.warehouse, path)
    if unissue:
        with duckdb.connect(str(path)) as con:
            for table in ISSUED_TABLES:
                con.execute(f"DELETE FROM audit.{table}")
    return WarehouseResource(path=str(path), landing=str(closed_golden.ws.landing))


def _draft_stand_in(name: str) -> dg.AssetsDefinition:
    """The dbt draft model `name`, materialized as a no-op: its table is what the test crafted."""

    @dg.asset(key=["intermediate", name], partitions_def=monthly_partitions)
    def draft() -> None:
        return None

    return draft


DRAFT_STAND_INS = [_draft_stand_in(n) for n in ("int_invoices_drafted", "int_invoice_lines_drafted",
                                                 "int_credit_ledger_drafted")]


def _run(warehouse: WarehouseResource) -> dg.ExecuteInProcessResult:
    return dg.materialize([*DRAFT_STAND_INS, issued_invoices, invoice_controls], partition_key=OCTOBER,
                          resources={"warehouse": warehouse}, raise_on_error=False)


def _execute(warehouse: WarehouseResource, *statements: str) -> None:
    with duckdb.connect(str(warehouse.warehouse_path)) as con:
        for statement in statements:
            con.execute(statement)


def _query(warehouse: WarehouseResource, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _issuing_ran(result: dg.ExecuteInProcessResult) -> bool:
    return any(e.asset_key == dg.AssetKey(["audit", "issued_invoices"]) for e in result.get_asset_materialization_events())


def test_clean_drafts_pass_every_control_and_are_issued(closed_golden, tmp_path):
    warehouse = _warehouse(closed_golden, tmp_path)
    result = _run(warehouse)
    assert result.success
    evaluations = _evaluations(result)
    assert [name for name, e in evaluations.items() if not e.passed] == []
    assert set(TAMPERING) | {"C11_month_over_month_swing", "C10_issued_invoices_immutable"} <= set(evaluations)
    assert _issuing_ran(result)
    assert _query(warehouse, "SELECT count(*), sum(total) FROM audit.issued_invoices") == [(7, Decimal("333.02"))]
    metadata = evaluations["C1_lines_add_up"].metadata
    assert metadata["rows_checked"].value == 7 and metadata["failures"].value == 0


@pytest.mark.parametrize("control", sorted(TAMPERING))
def test_a_failing_blocking_control_stops_issuing(closed_golden, tmp_path, control):
    warehouse = _warehouse(closed_golden, tmp_path)
    _execute(warehouse, TAMPERING[control])
    result = _run(warehouse)
    evaluations = _evaluations(result)
    failed = evaluations[control]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["failures"].value >= 1
    assert not _issuing_ran(result)
    for table in ("issued_invoices", "issued_invoice_lines", "issued_months"):
        assert _query(warehouse, f"SELECT count(*) FROM audit.{table}") == [(0,)], table
    # What finance reads shows no issued invoice for the month.
    assert _query(warehouse, "SELECT count(*) FROM marts.invoices WHERE status = 'issued'") == [(0,)]


def test_a_failing_control_on_a_reclose_leaves_the_issued_month_and_adds_no_restatement(closed_golden, tmp_path):
    warehouse = _warehouse(closed_golden, tmp_path, unissue=False)
    issued = _query(warehouse, "SELECT * FROM audit.issued_invoices ORDER BY invoice_number")
    published = _query(warehouse, "SELECT * FROM marts.invoices ORDER BY invoice_number")
    _execute(warehouse, TAMPERING["C5_gapless_numbering"])
    result = _run(warehouse)
    assert not _evaluations(result)["C5_gapless_numbering"].passed
    assert not _issuing_ran(result)
    assert _query(warehouse, "SELECT * FROM audit.issued_invoices ORDER BY invoice_number") == issued
    assert _query(warehouse, "SELECT * FROM marts.invoices ORDER BY invoice_number") == published
    assert _query(warehouse, "SELECT count(*) FROM audit.restatements") == [(0,)]


def test_a_swing_only_warns_and_the_month_is_issued(closed_golden, tmp_path):
    warehouse = _warehouse(closed_golden, tmp_path)
    # September issued with c003 at $10.00: October's $301.55 is > 5x and > $100 more.
    _execute(
        warehouse,
        """INSERT INTO audit.issued_invoices VALUES ('BO-202609-000001', 'c003', DATE '2026-09-01', DATE '2026-10-01',
             DATE '2026-10-15', 'USD', 10.00, 0, 10.00, 'Sales tax', 0, 0, 10.00, false,
             TIMESTAMP '2026-10-01 06:00:00', 'september-run')""",
        """INSERT INTO audit.issued_months (billing_month, invoices, lines, total, content_sha256, issued_at, run_id) VALUES (DATE '2026-09-01', 1, 0, 10.00, 'x',
             TIMESTAMP '2026-10-01 06:00:00', 'september-run')""",
    )
    result = _run(warehouse)
    assert result.success
    swing = _evaluations(result)["C11_month_over_month_swing"]
    assert not swing.passed and swing.severity == dg.AssetCheckSeverity.WARN
    assert swing.metadata["failures"].value == 1
    assert _issuing_ran(result)
    assert _query(warehouse, "SELECT count(*) FROM audit.issued_invoices WHERE billing_month = DATE '2026-10-01'") == [
        (7,)]


def test_c10_fails_when_the_issued_copy_was_rewritten(closed_golden, tmp_path):
    warehouse = _warehouse(closed_golden, tmp_path, unissue=False)
    untouched = _run(warehouse)
    assert _evaluations(untouched)["C10_issued_invoices_immutable"].passed
    _execute(warehouse, "UPDATE audit.issued_invoices SET total = total + 1 WHERE invoice_number = 'BO-202610-000002'")
    result = _run(warehouse)
    c10 = _evaluations(result)["C10_issued_invoices_immutable"]
    assert not c10.passed and c10.severity == dg.AssetCheckSeverity.ERROR
