"""The months Dagster partitions (config/partitions.py): from the first month landed to the later of the
current month and the last month landed, so the UI's months axis starts where the data does."""

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from config.billing_month import BillingMonth
from config.partitions import month_span

REPO = Path(__file__).resolve().parents[2]
TODAY = date(2026, 12, 3)


def land(landing: Path, *days: str) -> Path:
    for day in days:
        (landing / "usage" / f"dt={day}").mkdir(parents=True)
    return landing


@pytest.fixture
def unpinned(monkeypatch):
    monkeypatch.delenv("BILLOPS_FIRST_MONTH", raising=False)


def test_the_months_start_at_the_first_month_landed(tmp_path, unpinned):
    landing = land(tmp_path, "2026-10-02", "2026-09-30", "2026-10-31")
    assert month_span(landing, TODAY) == (BillingMonth(2026, 9), BillingMonth(2026, 12))


def test_with_nothing_landed_the_months_start_at_the_month_the_schedule_closes_next(tmp_path, unpinned):
    assert month_span(tmp_path / "empty", TODAY) == (BillingMonth(2026, 11), BillingMonth(2026, 12))
    assert month_span(tmp_path / "empty", date(2027, 1, 1)) == (BillingMonth(2026, 12), BillingMonth(2027, 1))


def test_a_month_landed_ahead_of_the_calendar_extends_the_months(tmp_path, unpinned):
    landing = land(tmp_path, "2026-10-01", "2027-02-28", "not-a-day")
    assert month_span(landing, TODAY) == (BillingMonth(2026, 10), BillingMonth(2027, 2))


def test_the_first_month_setting_wins_over_the_landing_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("BILLOPS_FIRST_MONTH", "2025-06")
    assert month_span(land(tmp_path, "2026-10-01"), TODAY) == (BillingMonth(2025, 6), BillingMonth(2026, 12))
    monkeypatch.setenv("BILLOPS_FIRST_MONTH", "2025-6")
    with pytest.raises(ValueError, match="'2025-6' is not a month in the form YYYY-MM"):
        month_span(tmp_path, TODAY)


def test_the_code_location_s_partitions_follow_the_landing_zone(tmp_path):
    """In a process of its own, as a code server or run worker loads it: the asset that issues a month
    and the daily usage asset have partitions from the first month landed to the last day of the last."""
    landing = land(tmp_path / "landing", "2026-09-14", "2026-10-01")
    script = (
        "import json; from orchestration.definitions import defs; import dagster as dg\n"
        "graph = defs.resolve_asset_graph()\n"
        "def keys(path): return graph.get(dg.AssetKey(path)).partitions_def.get_partition_keys()\n"
        "m, d = keys(['marts', 'invoices']), keys(['raw', 'usage_day'])\n"
        "print(json.dumps([m[0], m[-1], d[0], d[-1]]))\n")
    env = {**os.environ, "BILLOPS_LANDING": str(landing), "BILLOPS_FIRST_MONTH": ""}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                            check=True)
    now = BillingMonth.of(datetime.now(timezone.utc))
    last = max(now, BillingMonth(2026, 10))
    assert json.loads(result.stdout.splitlines()[-1]) == [
        "2026-09-01", last.partition_key, "2026-09-01", (last.end - timedelta(days=1)).isoformat()]
