"""Issue 14 item 11: an alert carries the fact to act on. A C13 failure names the file, row, rule
and value; a C12 failure the missing days; a failed step's error is never cut mid-sentence (a real
dbt failure included) and has no stack excerpt; each figure appears once (no `_plot` copy).
Real closes of the real checks in a Dagster instance, real sensor ticks, the local webhook."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from assets.reference import reference_snapshots
from assets.usage import usage
from quality.delivery_checks import deliveries_complete
from quality.invoice_controls import C6
from quality.reference_checks import reference_data_valid
from tests.alerts.receivers import close, close_job, tick
from tests.quality.test_delivery_checks import landing_without
from tests.quality.test_reference_checks import edit_csv, landing_copy
from warehouse.resource import WarehouseResource


def _alert(instance, receivers) -> str:
    webhook, _ = receivers
    tick(instance, {})
    (text,) = [post["text"] for post in webhook.posts]
    return text


def _warehouse(tmp_path: Path, landing: Path) -> dict:
    return {"warehouse": WarehouseResource(path=str(tmp_path / "close.duckdb"), landing=str(landing))}


def test_a_c13_alert_names_file_row_rule_and_value(receivers, tmp_path):
    landing = landing_copy(tmp_path)
    edit_csv(landing / "reference" / "price_book.csv", {(2, "unit_price"): "0,03571", (5, "effective_from"): "2025-01-32"})
    with dg.DagsterInstance.ephemeral() as instance:
        close(instance, close_job(reference_snapshots, reference_data_valid, resources=_warehouse(tmp_path, landing)), "2026-10")
        text = _alert(instance, receivers)

    assert text.startswith("billops: close of 2026-10 FAILED")
    assert (
        "- raw/price_book / C13_price_book_valid: C13 failed: reference/price_book.csv: 2 row(s) break the landing "
        "contract: row 2: unit_price must be a decimal [found 0,03571]; row 5: effective_from must be a date "
        "[found 2025-01-32]\n  figures: failures=2, rows_checked=11\n"
    ) in text
    assert "file=" not in text  # the file is named once, in the finding


def test_a_c12_alert_names_the_missing_days(receivers, tmp_path):
    landing = landing_without(tmp_path, "2026-10-05", "2026-10-17")
    with dg.DagsterInstance.ephemeral() as instance:
        close(instance, close_job(reference_snapshots, usage, deliveries_complete, resources=_warehouse(tmp_path, landing)),
              "2026-10")
        text = _alert(instance, receivers)

    assert (
        "- raw/usage / C12_deliveries_complete: C12 failed: 2 of 31 UTC days of 2026-10 have no usage file "
        "(usage/dt=YYYY-MM-DD/*.parquet): 2026-10-05, 2026-10-17\n  figures: "
    ) in text
    assert "days_present=29" in text


def test_a_control_alert_names_the_invoice_and_shows_each_figure_once(receivers, tmp_path):
    drafts = tmp_path / "drafts.duckdb"
    with duckdb.connect(str(drafts)) as con:
        con.execute("CREATE SCHEMA intermediate")
        con.execute("CREATE TABLE intermediate.int_invoices_drafted (invoice_number VARCHAR, subtotal DECIMAL(18,2), "
                    "credits_applied DECIMAL(18,2), total DECIMAL(18,2))")
        con.execute("INSERT INTO intermediate.int_invoices_drafted VALUES ('BO-202610-000001', 10.00, 0, 10.00), "
                    "('BO-202610-000002', 20.00, 0, 20.00), ('BO-202610-000003', 0.00, 301.55, -301.55)")

    @dg.asset(key=C6.asset)
    def int_invoices_drafted():
        return None

    @dg.asset_check(asset=C6.asset, name=C6.name, blocking=True)
    def no_negative_invoice():
        with duckdb.connect(str(drafts), read_only=True) as con:
            return C6.evaluate(con, {})

    with dg.DagsterInstance.ephemeral() as instance:
        close(instance, close_job(int_invoices_drafted, no_negative_invoice), "2026-10")
        text = _alert(instance, receivers)

    assert (
        "- intermediate/int_invoices_drafted / C6_no_negative_invoice: 1 of 3 failed. total >= 0 and credits_applied "
        "<= subtotal on every invoice. Offending: invoice_number=BO-202610-000003, subtotal=0.00, "
        "credits_applied=301.55, total=-301.55.\n  figures: amount_at_stake=-301.55, failures=1, rows_checked=3\n"
    ) in text
    assert text.count("amount_at_stake") == 1 and "_plot" not in text


LONG = " ".join(f"Invoice BO-202610-{n:06d} lost its line for sku vm.small on 2026-10-{n:02d}." for n in range(1, 15))


@dg.op
def rate_usage():
    raise ValueError(LONG)


@dg.op
def issue_invoices():
    raise RuntimeError('Issuing stopped: the draft of CUST-0003 is stale.\nTraceback (most recent call last):\n'
                       '  File "assets/issuing.py", line 88, in issue\n    raise Stale(draft)')


@dg.job(name="close_month_job")
def long_failures():
    rate_usage()
    issue_invoices()


def test_a_long_error_is_cut_after_a_sentence_and_a_stack_excerpt_is_dropped(receivers):
    with dg.DagsterInstance.ephemeral() as instance:
        close(instance, long_failures, "2026-10")
        text = _alert(instance, receivers)

    (rate_line,) = [line for line in text.splitlines() if line.startswith("- rate_usage: ")]
    kept = rate_line.removeprefix("- rate_usage: ValueError: ").removesuffix(" (truncated, see the run)")
    assert rate_line.endswith("on 2026-10-07. (truncated, see the run)") and LONG.startswith(kept)
    assert len(kept) == 7 * 71 - 1 and len(rate_line) <= 600 + len("- rate_usage: ")
    assert "- issue_invoices: RuntimeError: Issuing stopped: the draft of CUST-0003 is stale.\n" in text


def test_a_dbt_failure_alert_says_what_dbt_reported_not_its_boilerplate(receivers, tmp_path):
    """The real dagster-dbt error: its first 400 characters were the command and `…for the full information about the`."""
    project = tmp_path / "dbt"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: mini\nversion: '1.0'\nprofile: mini\nmodel-paths: [models]\n")
    (project / "profiles.yml").write_text(
        f"mini:\n  target: ci\n  outputs:\n    ci:\n      type: duckdb\n      path: {tmp_path / 'mini.duckdb'}\n")
    (project / "models" / "invoice_lines.sql").write_text(
        "{{ config(materialized='table') }}\nselect cast('three hundred' as decimal(18, 2)) as amount\n")

    @dg.op(name="billing_dbt_models")
    def build():
        variables = {"period_start": "2026-10-01", "period_end": "2026-11-01", "warehouse": str(tmp_path / ("w" * 200))}
        DbtCliResource(project_dir=str(project), profiles_dir=str(project)).cli(["build", "--vars", json.dumps(variables)]).wait()

    @dg.job(name="close_month_job")
    def dbt_close():
        build()

    with dg.DagsterInstance.ephemeral() as instance:
        close(instance, dbt_close, "2026-10")
        text = _alert(instance, receivers)

    (line,) = [line for line in text.splitlines() if line.startswith("- billing_dbt_models: ")]
    assert line.startswith(
        "- billing_dbt_models: dbt build failed (exit code 1): Failure in model invoice_lines (models/invoice_lines.sql); "
        "Runtime Error in model invoice_lines (models/invoice_lines.sql); "
        'Conversion Error: Could not convert string "three hundred" to DECIMAL(18,2); LINE ')
    assert "full information" not in text and "\x1b" not in text and "^^^" not in text
