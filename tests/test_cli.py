"""The billops command's exit codes and messages (issue 7 findings 2, 4 and 8), through the real command.

Refusals that happen before a run (bad month, months out of order, a locked
warehouse) cost no Dagster run; the failing closes stop at their first blocking
check, so no test here pays for a full close except the November-first chain.
"""

import shutil
import subprocess
import sys
import textwrap

import pytest

from orchestration.partitions import monthly_partitions
from tests.conftest import BILLOPS, GOLDEN, Workspace


def flat(text: str) -> str:
    """Terminal output with rich's line wrapping undone."""
    return " ".join(text.split())


def squash(text: str) -> str:
    """Terminal output without any whitespace (rich may wrap a long path anywhere)."""
    return "".join(text.split())


def test_help_lists_the_commands():
    result = subprocess.run([str(BILLOPS), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("close", "generate", "simulate", "workitems"):
        assert command in result.stdout


def test_malformed_month_is_a_usage_error(golden):
    result = golden.billops("close", "--month", "2026-13")
    assert result.returncode == 2
    assert "'2026-13' is not a month in the form YYYY-MM" in flat(result.stderr)


def test_month_outside_the_partitions_exits_2_in_words(golden):
    keys = monthly_partitions.get_partition_keys()
    result = golden.close("2019-12")
    assert result.returncode == 2
    assert flat(result.stderr) == (
        f"close 2019-12 refused: 2019-12 is outside the months billops closes ({keys[0][:7]} to {keys[-1][:7]})")
    assert "DagsterUnknownPartitionError" not in result.stderr


def test_missing_landing_zone_exits_2_naming_it(golden, tmp_path):
    golden.landing = tmp_path / "nowhere"
    result = golden.close("2026-10")
    assert result.returncode == 2
    assert squash(f"landing zone {tmp_path / 'nowhere'} does not exist (BILLOPS_LANDING)") in squash(result.stderr)


def test_missing_reference_file_fails_the_close_naming_it(golden):
    (golden.landing / "reference" / "tax_rates.csv").unlink()
    result = golden.close("2026-10")
    assert result.returncode == 1
    assert "reference/tax_rates.csv" in result.stderr
    assert "close 2026-10 failed; nothing was issued or restated" in flat(result.stderr)


def test_broken_csv_header_fails_naming_the_file(golden):
    path = golden.landing / "reference" / "customers.csv"
    path.write_text(path.read_text().replace("customer_id,name", "customer,nom", 1))
    result = golden.close("2026-10")
    assert result.returncode == 1
    assert "reference/customers.csv" in result.stderr and "header" in result.stderr


def _c13_failure(golden, edit) -> str:
    path = golden.landing / "reference" / "price_book.csv"
    path.write_text(edit(path.read_text()))
    result = golden.close("2026-10")
    assert result.returncode == 1
    assert golden.query("SELECT count(*) FROM audit.issued_invoices") == [(0,)]
    return flat(result.stderr)


def test_overlapping_rows_and_empty_tiers_fail_c13_naming_file_and_rows(golden):
    """Two price-book errors that would bill wrong money with exit 0 (finding 4), in one close."""
    # Row 12 (appended) overlaps row 1 of the same SKU from 2026-10-10: it would double-bill.
    overlap = "droplet-s-1vcpu-1gb,Droplets,Basic Droplet 1 vCPU 1 GiB,hourly_capped,hour,0.009,6.00,672,1000,,2026-10-10,\n"

    def overlap_and_empty_tiers(text: str) -> str:  # row 9 is functions-gib-s (graduated): its tiers emptied
        functions = next(line for line in text.splitlines() if line.startswith("functions-gib-s,"))
        return text.replace(functions, functions.split(',"[')[0] + ",,2025-01-01,") + overlap

    stderr = _c13_failure(golden, overlap_and_empty_tiers)
    assert "C13_price_book_valid on raw/price_book: C13 failed: reference/price_book.csv:" in stderr
    assert "row 9: a graduated row must have valid tiers" in stderr
    assert "row 12: effective range must not overlap another row of the same sku" in stderr


def test_locked_warehouse_exits_1_and_prints_no_earlier_figures(copy_closed_golden):
    ws = copy_closed_golden
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(ws.warehouse)!r})
            print("locked", flush=True)
            time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = ws.close("2026-10")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    stderr = squash(result.stderr)
    assert stderr.startswith(squash(f"close 2026-10 refused: the warehouse {ws.warehouse} is in use by another "
                                    "process (a close running?)"))
    assert stderr.endswith("nothingwasissued")
    # The previous close issued 7 invoices for 333.02: none of its figures appear.
    assert result.stdout == ""
    assert "333.02" not in result.stderr and "invoices" not in result.stderr


# --- months in order, starting with a month that has no usage (F2, F4) ----------------------------


@pytest.fixture(scope="module")
def november_first(tmp_path_factory) -> dict:
    """The golden landing (October usage only): November closed first, then October tried."""
    ws = Workspace.at(tmp_path_factory.mktemp("november-first"))
    shutil.copytree(GOLDEN / "landing", ws.landing)
    out = {"ws": ws, "strict": ws.close("2026-11")}
    out["issued_after_strict"] = ws.query("SELECT count(*) FROM audit.issued_months")
    out["allowed"] = ws.close("2026-11", "--allow-missing-days")
    out["october"] = ws.close("2026-10")
    return out


def test_a_month_without_usage_fails_c12_and_issues_nothing(november_first):
    result = november_first["strict"]
    assert result.returncode == 1
    stderr = flat(result.stderr)
    assert "C12_deliveries_complete on raw/usage: C12 failed: no usage file for any day of 2026-11" in stderr
    assert november_first["issued_after_strict"] == [(0,)]


def test_allow_missing_days_issues_an_empty_november_then_october_is_refused(november_first):
    allowed = november_first["allowed"]
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert "close 2026-11 succeeded: issued" in allowed.stdout
    ws = november_first["ws"]
    assert ws.query("SELECT billing_month::VARCHAR, invoices, total FROM audit.issued_months") == [
        ("2026-11-01", 0, 0)]
    october = november_first["october"]
    assert october.returncode == 1
    assert flat(october.stderr) == (
        "close 2026-10 refused: 2026-10 is before the first issued month 2026-11: credit balances start there, "
        "so an earlier month cannot be closed; nothing was issued")
    assert ws.query("SELECT billing_month::VARCHAR FROM audit.issued_months") == [("2026-11-01",)]
