"""Usage duplicates across months, through real closes (docs/contract/inputs.md, "Across months").

One chain, module fixture, every close through the `billops close` command in process:

1. September lands one file a day for c002 (an hour of r002, droplet-s-2vcpu-4gb, ids
   `sep-c002-DD`) beside the golden October; `close 2026-09` (the warehouse's first month,
   no look-back), then `close 2026-10`.
2. November lands one file a day for c002 (an hour of `r002-nov`, droplet-s-1vcpu-1gb), and on
   2026-11-03 two more records of r002 in November: one repeating the id of October's first
   c002 droplet-s-2vcpu-4gb record (found by the test in the golden Parquet), one repeating
   September's `sep-c002-15`. `close 2026-11`.
3. `close 2026-11` again: the issued month is recomputed, against the same October index.

November's invoice is computed here by hand from the golden price book.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import dagster as dg
import pyarrow.parquet as pq
import pytest

from tests.conftest import GOLDEN, Workspace, assert_closes_to_golden

UTC = timezone.utc
NOVEMBER = date(2026, 11, 1)
REPEATS_FILE = "usage/dt=2026-11-03/part-0.parquet"
SMALL_DROPLET, DROPLET = Decimal("0.00893"), Decimal("0.03571")  # price_book.csv, per hour
VAT_DE = Decimal("0.19")


def record(event_id: str, resource: str, sku: str, start: datetime) -> dict:
    return {"event_id": event_id, "customer_id": "c002", "resource_id": resource, "sku": sku, "region": "fra1",
            "start_time": start, "end_time": start + timedelta(hours=1), "quantity": Decimal("1.000000")}


def land_days(ws: Workspace, year: int, month: int, days: int, prefix: str, resource: str, sku: str,
              extra: dict[int, list[dict]]) -> None:
    """One file a UTC day (C12): an hour of `resource` at 12:00, then the day's `extra` rows."""
    for day in range(1, days + 1):
        start = datetime(year, month, day, 12, tzinfo=UTC)
        ws.write_usage(f"usage/dt={start:%Y-%m-%d}/part-0.parquet",
                       [record(f"{prefix}-{day:02d}", resource, sku, start), *extra.get(day, [])])


def first_october_droplet_of_c002() -> tuple[str, int, str]:
    """(file, row, event_id) of the first c002 droplet-s-2vcpu-4gb record of the golden October, in
    (folder, file name, row) order: the delivery that stands."""
    landing = GOLDEN / "landing"
    for path in sorted((landing / "usage").glob("dt=2026-10-*/*.parquet")):
        for i, r in enumerate(pq.read_table(path).to_pylist()):
            if r["customer_id"] == "c002" and r["sku"] == "droplet-s-2vcpu-4gb":
                return path.relative_to(landing).as_posix(), i + 1, r["event_id"]
    raise AssertionError("the golden October has no c002 droplet record")


def check_evaluations(ws: Workspace, run_id: str) -> dict[str, tuple[bool, str]]:
    with ws.instance() as instance:
        events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        return {e.dagster_event.event_specific_data.check_name: (e.dagster_event.event_specific_data.passed,
                                                                 e.dagster_event.event_specific_data.description)
                for e in events}


def settled(ws: Workspace) -> tuple:
    """What the usage ingestions leave that a re-run must reproduce (less load times)."""
    return (ws.query("SELECT * EXCLUDE (loaded_at) FROM audit.quarantine WHERE source = 'usage' ORDER BY ALL"),
            ws.query("SELECT * EXCLUDE (loaded_at) FROM audit.redeliveries WHERE source = 'usage' ORDER BY ALL"),
            ws.query("SELECT * EXCLUDE (loaded_at) FROM audit.file_loads WHERE source = 'usage' ORDER BY ALL"),
            ws.query("SELECT billing_month, event_hash FROM raw.usage_event_index ORDER BY ALL"))


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    ws = Workspace.at(tmp_path_factory.mktemp("cross-month") / "ws")
    shutil.copytree(GOLDEN / "landing", ws.landing)
    land_days(ws, 2026, 9, 30, "sep-c002", "r002", "droplet-s-2vcpu-4gb", {})
    out: dict = {"ws": ws, "september": ws.close("2026-09")}
    out["october"] = ws.close("2026-10")
    october_file, october_row, october_id = first_october_droplet_of_c002()
    out["october_delivery"] = (october_file, october_row, october_id)
    repeats = [record(october_id, "r002", "droplet-s-2vcpu-4gb", datetime(2026, 11, 3, 5, tzinfo=UTC)),
               record("sep-c002-15", "r002", "droplet-s-2vcpu-4gb", datetime(2026, 11, 3, 6, tzinfo=UTC))]
    land_days(ws, 2026, 11, 30, "nov-c002", "r002-nov", "droplet-s-1vcpu-1gb", {3: repeats})
    out["november"] = ws.close("2026-11")
    out["november_run"] = ws.runs()[-1][0]
    out["settled"] = settled(ws)
    out["invoices"] = ws.query("SELECT invoice_number, customer_id, subtotal, credits_applied, tax_amount, total "
                               "FROM marts.invoices WHERE billing_month = ? ORDER BY 1", [NOVEMBER])
    out["lines"] = ws.query("SELECT sku, resource_id, quantity, amount FROM marts.invoice_lines "
                            "WHERE billing_month = ? ORDER BY line_number", [NOVEMBER])
    out["accepted"] = ws.query("SELECT event_id FROM raw.usage_month WHERE source_file = ? ORDER BY row_number",
                               [REPEATS_FILE])
    out["november_again"] = ws.close("2026-11")
    out["november_again_run"] = ws.runs()[-1][0]
    return out


def test_the_months_close(chain):
    for month in ("september", "october", "november", "november_again"):
        assert chain[month].returncode == 0, (month, chain[month].stdout[-3000:], chain[month].stderr[-3000:])
    assert "close 2026-11 succeeded: issued" in chain["november"].stdout
    assert_closes_to_golden(chain["ws"])  # October, closed after September with its look-back, is the golden month


def test_the_november_record_repeating_an_october_id_is_quarantined_naming_octobers_delivery(chain):
    october_file, october_row, october_id = chain["october_delivery"]
    quarantine = chain["settled"][0]
    november = [q for q in quarantine if q[1].startswith("usage/dt=2026-11")]
    assert [q[:6] for q in november] == [
        ("usage", REPEATS_FILE, 2, october_id, "conflicting_duplicate",
         f"event_id {october_id} first accepted in 2026-10 in {october_file} row {october_row}")]
    # Nothing else of the three months is quarantined but the golden October's own (none).
    assert [q for q in quarantine if not q[1].startswith("usage/dt=2026-11")] == []
    # The September id repeated two months later is accepted: billops looks back one month only.
    assert chain["accepted"] == [("nov-c002-03",), ("sep-c002-15",)]


def test_november_invoices_exclude_the_quarantined_quantity_to_the_cent(chain):
    small = (30 * SMALL_DROPLET).quantize(Decimal("0.01"), ROUND_HALF_UP)  # 0.2679 → 0.27
    droplet = (1 * DROPLET).quantize(Decimal("0.01"), ROUND_HALF_UP)       # sep-c002-15 alone: 0.03571 → 0.04
    subtotal = small + droplet
    tax = (subtotal * VAT_DE).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert chain["lines"] == [("droplet-s-1vcpu-1gb", "r002-nov", Decimal("30.000000"), small),
                              ("droplet-s-2vcpu-4gb", "r002", Decimal("1.000000"), droplet)]
    ((_, customer, got_subtotal, credits, got_tax, total),) = chain["invoices"]
    assert (customer, got_subtotal, credits, got_tax, total) == ("c002", Decimal("0.31"), Decimal("0.00"),
                                                                 Decimal("0.06"), Decimal("0.37"))
    assert (got_subtotal, got_tax, total) == (subtotal, tax, subtotal + tax)
    # With October's id billed again, r002 would have had 2 hours: 0.07142 → 0.07, a total of 0.40.
    assert (2 * DROPLET).quantize(Decimal("0.01"), ROUND_HALF_UP) == Decimal("0.07")


def test_rows_reconcile_and_every_control_passes_on_november(chain):
    ws = chain["ws"]
    evaluations = check_evaluations(ws, chain["november_run"])
    assert evaluations["usage_rows_reconcile"] == (True, "all 30 files reconcile")
    assert [name for name, (passed, _) in evaluations.items() if not passed] == []
    assert any(name.startswith("C2_") for name in evaluations) and "C3_usage_completely_rated" in evaluations
    loads = {f: counts for _, _, f, *counts in chain["settled"][2] if f.startswith("usage/dt=2026-11")}
    assert loads[REPEATS_FILE] == [3, 2, 0, 1]  # read, accepted, re-delivered, quarantined
    assert sum(c[1] for c in loads.values()) == 31


def test_the_index_keeps_what_each_month_accepted(chain):
    index = {}
    for month, _ in chain["settled"][3]:
        index[month] = index.get(month, 0) + 1
    assert index == {date(2026, 9, 1): 30, date(2026, 10, 1): 2665, NOVEMBER: 31}


def test_closing_november_again_changes_nothing(chain):
    ws = chain["ws"]
    assert settled(ws) == chain["settled"]
    assert ws.query("SELECT count(*) FROM audit.restatements") == [(0,)]
    assert check_evaluations(ws, chain["november_again_run"])["usage_rows_reconcile"][0] is True
