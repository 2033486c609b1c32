"""The billops command's exit codes and messages (issue 7 findings 2, 4 and 8), through the real command.

Refusals that happen before a run (bad month, months out of order, a locked
warehouse) cost no Dagster run; the failing closes stop at their first blocking
check, so no test here pays for a full close except the November-first chain.
"""

import shutil
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from config.partitions import monthly_partitions
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
    """The golden landing (October usage only): November closed first, then October tried, then a late
    November file restated by December's close."""
    ws = Workspace.at(tmp_path_factory.mktemp("november-first"))
    shutil.copytree(GOLDEN / "landing", ws.landing)
    out = {"ws": ws, "stranding": ws.close("2026-11", "--allow-missing-days")}
    out["runs_after_stranding"] = ws.runs()
    out["strict"] = ws.close("2026-11", "--first-month")
    out["issued_after_strict"] = ws.query("SELECT count(*) FROM audit.issued_months")
    out["allowed"] = ws.close("2026-11", "--first-month", "--allow-missing-days")
    out["october"] = ws.close("2026-10")
    start = datetime(2026, 11, 5, 3, tzinfo=timezone.utc)  # c002 (DE, no VAT id, no credits): 10 h of a $0.00893 Droplet
    ws.write_usage("usage/dt=2026-11-05/late.parquet", [
        {"event_id": f"nov-late-{h}", "customer_id": "c002", "resource_id": "r-late", "sku": "droplet-s-1vcpu-1gb",
         "region": "fra1", "start_time": start + timedelta(hours=h), "end_time": start + timedelta(hours=h + 1),
         "quantity": Decimal("1")} for h in range(10)])
    out["december"] = ws.close("2026-12", "--allow-missing-days")
    return out


def test_the_first_close_is_refused_when_an_earlier_month_has_landed_usage(november_first):
    result = november_first["stranding"]
    assert result.returncode == 1
    assert flat(result.stderr) == (
        "close 2026-11 refused: this is the warehouse's first close and earlier usage has landed (2026-10): "
        "close 2026-10 first, or start billing at 2026-11 with --first-month (then 2026-10 can never be closed); "
        "nothing was issued")
    assert november_first["runs_after_stranding"] == []  # refused before any run


def test_a_month_without_usage_fails_c12_and_issues_nothing(november_first):
    result = november_first["strict"]
    assert result.returncode == 1
    stderr = flat(result.stderr)
    assert "C12_deliveries_complete on raw/usage: C12 failed: no usage file for any day of 2026-11" in stderr
    assert november_first["issued_after_strict"] == [(0,)]


def test_first_month_and_allow_missing_days_issue_november_and_are_recorded_then_october_is_refused(november_first):
    allowed = november_first["allowed"]
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert "close 2026-11 succeeded: issued" in allowed.stdout
    ws = november_first["ws"]
    assert ws.query("SELECT billing_month::VARCHAR, invoices, total, allow_missing_days, first_month "
                    "FROM audit.issued_months WHERE billing_month = DATE '2026-11-01'") == [
        ("2026-11-01", 0, 0, True, True)]
    with ws.instance() as instance:
        (run,) = [r for r in instance.get_runs() if r.run_id in allowed.stdout]
    assert {k: v for k, v in run.tags.items() if k in ("billops/allow_missing_days", "billops/first_month")} == {
        "billops/allow_missing_days": "true", "billops/first_month": "true"}
    october = november_first["october"]
    assert october.returncode == 1
    assert flat(october.stderr) == (
        "close 2026-10 refused: 2026-10 is before the first issued month 2026-11: credit balances start there, "
        "so an earlier month cannot be closed; nothing was issued")


def test_a_restatement_runs_with_the_allowances_its_month_was_issued_with(november_first):
    december = november_first["december"]
    assert december.returncode == 0, december.stderr[-3000:]
    stdout = flat(december.stdout)
    assert ("restate 2026-11 (--allow-missing-days --first-month, as it was issued): 1 usage file(s) landed since "
            "it was issued: usage/dt=2026-11-05/late.parquet") in stdout
    assert stdout.index("restating 2026-11 succeeded: restated") < stdout.index("close 2026-12 succeeded: issued")
    ws = november_first["ws"]
    # 10 × 0.00893 = 0.0893 → 0.09; VAT 19% of 0.09 = 0.0171 → 0.02; total 0.11, never issued (no invoice).
    assert ws.query("SELECT customer_id, invoice_number, issued_total, recomputed_total, cause FROM audit.restatements") == [
        ("c002", None, 0, Decimal("0.11"), "late_usage")]
    assert ws.query("SELECT billing_month::VARCHAR, allow_missing_days, first_month FROM audit.issued_months "
                    "ORDER BY 1") == [("2026-11-01", True, True), ("2026-12-01", True, False)]


def test_every_run_keeps_its_own_log_named_by_its_run_id(november_first):
    ws = november_first["ws"]
    november_runs = [r for r in ws.runs()]
    logs = sorted(p.name for p in (ws.dagster_home / "billops-logs").glob("close-*.log"))
    with ws.instance() as instance:
        expected = sorted(f"close-{r.tags['dagster/partition'][:7]}-{r.run_id}.log" for r in instance.get_runs())
    assert logs == expected and len(november_runs) == 4  # Nov strict, Nov allowed, Nov restated, Dec


# --- what the command prints on a failed close (issue 14 item 10) ----------------------------------


@pytest.fixture(scope="module")
def bad_price(tmp_path_factory) -> dict:
    """The golden landing with `twenty` as a unit price: C13 fails; closed twice by the real command."""
    ws = Workspace.at(tmp_path_factory.mktemp("bad-price"))
    shutil.copytree(GOLDEN / "landing", ws.landing)
    path = ws.landing / "reference" / "price_book.csv"
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[2].split(",")
    fields[5] = "twenty"
    lines[2] = ",".join(fields)
    path.write_text("".join(lines))
    return {"ws": ws, "quiet": ws.close("2026-10", real=True),
            "verbose": ws.close("2026-10", "--in-process", "--verbose", real=True)}


def test_data_is_printed_as_is_and_dagster_noise_stays_in_the_log(bad_price):
    quiet = bad_price["quiet"]
    assert quiet.returncode == 1
    stderr = flat(quiet.stderr)
    assert "row 2: unit_price must be a decimal [found twenty]" in stderr  # not eaten as Rich markup
    assert "close 2026-10 failed; nothing was issued or restated:" in stderr
    assert " - ERROR - " not in quiet.stderr and "BetaWarning" not in quiet.stderr and "Traceback" not in quiet.stderr
    (log,) = [p for p in (bad_price["ws"].dagster_home / "billops-logs").glob("close-2026-10-*.log")
              if p.name.split("close-2026-10-")[1][:-4] in squash(quiet.stdout)]
    # The run's own events, the failed step with its error: what the UI shows for the run.
    assert "dagster job launch -j close_month_job" in log.read_text()
    assert "STEP_FAILURE" in log.read_text() and "unit_price must be a decimal [found twenty]" in log.read_text()


def test_verbose_in_process_shows_dagster_lines_and_each_close_has_its_own_log(bad_price):
    verbose = bad_price["verbose"]
    assert verbose.returncode == 1
    assert " - ERROR - " in verbose.stderr and "BetaWarning" in verbose.stderr
    assert "[found twenty]" in flat(verbose.stderr)
    assert len(list((bad_price["ws"].dagster_home / "billops-logs").glob("close-2026-10-*.log"))) == 2
