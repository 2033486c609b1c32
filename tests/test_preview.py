"""Month-to-date invoices (issue 16 item 2): a generated month previewed part-landed and whole, then closed.

One small generated October (8 customers, no anomalies) lands its first 12 days; ingestion runs
in process, then `preview_month_job` (real dbt on a real DuckDB). The preview must equal an
independent rating of those days: usage summed with plain SQL over the landed Parquet, the
reference CSVs as landed, rated by the Python re-rating of C2 (quality/rerating.py), to the cent.
The rest lands, the preview again equals the independent rating, `billops preview --format json`
prints it from the published copy, and the close then issues exactly it but the invoice numbers.
The month built once per module (`landed_month`) keeps this file near 40 s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from unittest import mock

import dagster as dg
import duckdb
import pytest

from tests.conftest import Workspace

MONTH, PARTITION = "2026-10", "2026-10-01"
CUSTOMERS, SEED = 8, 11
FIRST_DAYS = 12
# marts.invoices' columns but the invoice number; status apart (a preview is a draft, an invoice is issued)
COMPARED = ("customer_id", "billing_month", "issue_date", "due_date", "currency", "subtotal", "credits_applied",
            "taxable_amount", "tax_name", "tax_rate", "tax_amount", "total", "reverse_charge")
LINE_COMPARED = ("customer_id", "line_number", "billing_month", "sku", "product", "resource_id", "description",
                 "quantity", "unit", "unit_price", "amount")
AMOUNT = re.compile(r"^-?\d+\.\d{2}$")


def preview_job():
    """preview_month_job, for dg.reconstructable (execute_job rebuilds the job by name)."""
    from orchestration.definitions import defs

    return defs.resolve_job_def("preview_month_job")


def settings(ws: Workspace) -> dict[str, str]:
    return {**ws.settings, "BILLOPS_PUBLISHED": str(ws.root / "published")}


def land_days(source: Path, ws: Workspace, days: range) -> None:
    """Copy the reference snapshots and the `usage/dt=` folders of `days` (1-based) into the workspace."""
    shutil.copytree(source / "reference", ws.landing / "reference", dirs_exist_ok=True)
    for day in days:
        folder = f"usage/dt={MONTH}-{day:02d}"
        if (source / folder).is_dir():
            shutil.copytree(source / folder, ws.landing / folder, dirs_exist_ok=True)


def ingest(ws: Workspace) -> None:
    """The month's ingestion as the close runs it (reference snapshots and usage), in process."""
    from assets.reference import reference_snapshots
    from assets.usage import usage
    from orchestration.resources import build_resources

    with mock.patch.dict(os.environ, settings(ws)), ws.instance() as instance:
        result = dg.materialize([reference_snapshots, usage], partition_key=PARTITION, instance=instance,
                                resources=build_resources(), raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]


def run_preview(ws: Workspace) -> dg.ExecutionResult:
    with mock.patch.dict(os.environ, settings(ws)), ws.instance() as instance:
        return dg.execute_job(dg.reconstructable(preview_job), instance=instance,
                              tags={"dagster/partition": PARTITION})


def published(ws: Workspace, sql: str) -> list[tuple]:
    con = duckdb.connect(str(ws.root / "published" / "billops.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def independent(landing: Path) -> tuple[list[tuple], list[tuple], date]:
    """(invoices, lines, last usage day) of the landed days, rated without the dbt models: usage summed with
    plain SQL over the landed Parquet, the reference CSVs as landed, the Python rating of C2."""
    from quality.rerating import rerate_month

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    usage_daily = con.sql(f"""
        SELECT customer_id, resource_id, sku, start_time::DATE AS usage_date, sum(quantity)::DECIMAL(38,6) AS quantity,
               max(start_time)::TIMESTAMP AS last_start_time
        FROM read_parquet('{landing}/usage/dt=*/*.parquet')
        WHERE start_time >= TIMESTAMPTZ '{PARTITION} 00:00:00+00' AND start_time < TIMESTAMPTZ '2026-11-01 00:00:00+00'
        GROUP BY ALL""").to_arrow_table()
    con.register("usage_daily", usage_daily)
    as_of = con.execute("SELECT max(usage_date) FROM usage_daily").fetchall()[0][0]
    snapshots = {name: con.sql(f"SELECT * FROM read_csv('{landing}/reference/{name}.csv', header = true, "
                               "all_varchar = true)").to_arrow_table()
                 for name in ("customers", "price_book", "tax_rates", "credit_grants")}
    invoices, lines = rerate_month(usage_daily, **snapshots, openings={}, month=date(2026, 10, 1))
    con.register("inv", invoices)
    con.register("lin", lines)
    return (con.execute(f"SELECT {', '.join(COMPARED)} FROM inv ORDER BY customer_id").fetchall(),
            con.execute(f"SELECT {', '.join(LINE_COMPARED)} FROM lin ORDER BY customer_id, line_number").fetchall(),
            as_of)


def preview_rows(ws: Workspace) -> tuple[list[tuple], list[tuple], set]:
    """The published preview: invoices and lines in the compared columns, and the as_of values."""
    invoices = published(ws, f"SELECT {', '.join(COMPARED)} FROM marts.invoice_preview ORDER BY customer_id")
    lines = published(ws, f"SELECT {', '.join(LINE_COMPARED)} FROM marts.invoice_preview_lines "
                          "ORDER BY customer_id, line_number")
    as_of = {r[0] for r in published(ws, "SELECT as_of FROM marts.invoice_preview UNION "
                                         "SELECT as_of FROM marts.invoice_preview_lines")}
    return invoices, lines, as_of


@dataclass
class LandedMonth:
    ws: Workspace
    source: Path
    part: dict   # after the first FIRST_DAYS days: the preview run, its rows, the independent rating
    whole: dict  # after every day
    close: object


@pytest.fixture(scope="module")
def landed_month(tmp_path_factory) -> LandedMonth:
    from synthetic.generate import generate

    root = tmp_path_factory.mktemp("preview")
    source = root / "generated"
    generate(MONTH, CUSTOMERS, SEED, source, anomalies="none", progress=False)
    ws = Workspace.at(root / "ws")
    from orchestration.instance_config import prepare_instance

    prepare_instance(ws.dagster_home)  # billops's dagster.yaml, as every command writes it
    states = []
    for days in (range(1, FIRST_DAYS + 1), range(FIRST_DAYS + 1, 32)):
        land_days(source, ws, days)
        ingest(ws)
        result = run_preview(ws)
        invoices, lines, as_of = preview_rows(ws) if result.success else ([], [], set())
        expected = independent(ws.landing)
        json_output = ws.billops("preview", "--month", MONTH, "--format", "json", env=settings(ws))
        states.append({"success": result.success, "invoices": invoices, "lines": lines, "as_of": as_of,
                       "expected": expected, "json": json_output,
                       "table": ws.billops("preview", "--month", MONTH, env=settings(ws)),
                       "open_drafts": ws.query(
                           f"SELECT {', '.join(COMPARED)} FROM intermediate.int_invoices_open ORDER BY customer_id")})
    one = states[1]["invoices"][-1][0] if states[1]["invoices"] else "none"
    states[1]["customer"] = (one, ws.billops("preview", "--month", MONTH, "--customer", one, "--format", "json",
                                             env=settings(ws)))
    close = ws.close(MONTH, env=settings(ws))
    return LandedMonth(ws, source, states[0], states[1], close)


def test_the_preview_of_the_days_landed_equals_an_independent_rating_to_the_cent(landed_month):
    part = landed_month.part
    assert part["success"]
    invoices, lines, as_of = part["expected"]
    assert as_of is not None and as_of < date(2026, 10, FIRST_DAYS + 1)
    assert part["invoices"] and part["invoices"] == invoices
    assert part["lines"] and part["lines"] == lines
    assert part["as_of"] == {as_of}
    # the rows marts.invoices shows as the open month's drafts (test_drafts_live_in_one_place)
    assert part["open_drafts"] == part["invoices"]


def test_drafts_live_in_one_place():
    """marts.invoices / invoice_lines read an open month's drafts from the models the preview reads, nothing else."""
    from assets.dbt_project import dbt_project

    nodes = json.loads(dbt_project.manifest_path.read_text())["nodes"]
    def parents(model: str) -> set[str]:
        return {n.split(".")[-1] for n in nodes[f"model.billops.{model}"]["depends_on"]["nodes"]}
    assert "int_invoices_open" in parents("invoices") and "int_invoices_drafted" not in parents("invoices")
    assert parents("invoice_preview") == {"int_invoices_open"}
    assert "int_invoice_lines_open" in parents("invoice_lines") and "int_invoice_lines_drafted" not in parents("invoice_lines")
    assert parents("invoice_preview_lines") == {"int_invoice_lines_open"}


def test_the_whole_month_previewed_equals_the_independent_rating_and_grows_from_the_part(landed_month):
    whole, part = landed_month.whole, landed_month.part
    assert whole["success"]
    invoices, lines, as_of = whole["expected"]
    assert whole["invoices"] == invoices and whole["lines"] == lines
    assert whole["as_of"] == {as_of} and as_of == date(2026, 10, 31)
    assert sum(r[COMPARED.index("total")] for r in whole["invoices"]) > sum(
        r[COMPARED.index("total")] for r in part["invoices"])


def test_the_close_issues_exactly_the_preview_of_the_landed_month_but_the_numbers(landed_month):
    ws, whole = landed_month.ws, landed_month.whole
    assert landed_month.close.returncode == 0, landed_month.close.stderr[-3000:]
    issued = ws.query(f"SELECT {', '.join(COMPARED)} FROM audit.issued_invoices WHERE billing_month = DATE "
                      f"'{PARTITION}' ORDER BY customer_id")
    assert issued == whole["invoices"]
    issued_lines = ws.query(f"SELECT {', '.join(LINE_COMPARED)} FROM audit.issued_invoice_lines "
                            f"WHERE billing_month = DATE '{PARTITION}' ORDER BY customer_id, line_number")
    assert issued_lines == whole["lines"]
    # The close's own rating leaves the preview consistent: nothing previewed for a month issued.
    assert ws.query("SELECT count(*) FROM marts.invoice_preview") == [(0,)]
    assert published(ws, "SELECT count(*) FROM marts.invoice_preview") == [(0,)]


def test_billops_preview_json_prints_the_published_preview_amounts_as_text(landed_month):
    whole = landed_month.whole
    result = whole["json"]
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [list(r) for r in rows] == [["invoice_number", "customer_id", "billing_month", "issue_date", "due_date",
                                        "currency", "subtotal", "credits_applied", "taxable_amount", "tax_name",
                                        "tax_rate", "tax_amount", "total", "reverse_charge", "status", "as_of"]] * len(rows)
    assert len(rows) == len(whole["invoices"])
    for row, expected in zip(rows, whole["invoices"]):
        assert row["invoice_number"] is None and row["status"] == "draft" and row["as_of"] == "2026-10-31"
        for name in ("subtotal", "credits_applied", "taxable_amount", "tax_amount", "total"):
            assert AMOUNT.match(row[name]), (name, row[name])
            assert Decimal(row[name]) == expected[COMPARED.index(name)]
        assert (row["customer_id"], row["billing_month"], row["issue_date"], row["due_date"]) == (
            expected[0], "2026-10-01", "2026-11-01", "2026-11-15")
        assert Decimal(row["tax_rate"]) == expected[COMPARED.index("tax_rate")]
        assert row["reverse_charge"] is expected[COMPARED.index("reverse_charge")]
    table = whole["table"]
    assert table.returncode == 0, table.stderr
    total = sum(Decimal(r["total"]) for r in rows)
    assert "as of 2026-10-31" in table.stdout and f"{total:,.2f}" in table.stdout


def test_one_customer_and_a_preview_of_an_issued_or_unknown_month_are_refused_clearly(landed_month):
    ws = landed_month.ws
    one, result = landed_month.whole["customer"]
    assert result.returncode == 0, result.stderr
    assert [row["customer_id"] for row in json.loads(result.stdout)] == [one]
    env = settings(ws)
    # after the close: the month is issued; the command says so, and so does a preview run
    issued = ws.billops("preview", "--month", MONTH, "--customer", one, env=env)
    assert issued.returncode == 1 and "2026-10 is issued" in " ".join(issued.stderr.split())
    empty = ws.billops("preview", "--month", "2026-12", "--format", "json", env=env)
    assert empty.returncode == 1 and "no preview of 2026-12" in " ".join(empty.stderr.split())
    assert empty.stdout == ""
    refused = run_preview(ws)
    assert not refused.success
    failures = [e.step_failure_data.error.message for e in refused.all_events if e.is_step_failure]
    assert any("preview 2026-10 refused: 2026-10 is issued" in message for message in failures), failures
    assert ws.query("SELECT count(*) FROM audit.issued_invoices") == [(len(landed_month.whole["invoices"]),)]
