"""C12 deliveries complete: the golden month (every day delivered) passes; a month missing days,
or with no usage folder at all (finding 4), fails naming the days; the run tag that
`billops close --allow-missing-days` sets makes it pass and say it was overridden.
Real Parquet landing, the real usage asset, a real DuckDB file."""

import shutil
from pathlib import Path

import dagster as dg

from assets.reference import reference_snapshots
from assets.usage import usage
from quality.delivery_checks import deliveries_complete
from tests.conftest import GOLDEN
from warehouse.close_options import ALLOW_MISSING_DAYS_TAG
from warehouse.resource import WarehouseResource


def landing_without(tmp_path: Path, *days: str, usage_folder: bool = True) -> Path:
    landing = tmp_path / "landing"
    shutil.copytree(GOLDEN / "landing", landing)
    for day in days:
        shutil.rmtree(landing / "usage" / f"dt={day}")
    if not usage_folder:
        shutil.rmtree(landing / "usage")
    return landing


def c12(tmp_path: Path, landing: Path, tags: dict | None = None) -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [reference_snapshots, usage, deliveries_complete],
        partition_key="2026-10-01",
        tags=tags,
        resources={"warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb"), landing=str(landing))},
        raise_on_error=False,
    )
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "C12_deliveries_complete"]
    return evaluation


def values(evaluation: dg.AssetCheckEvaluation, *keys: str) -> dict:
    return {k: evaluation.metadata[k].value for k in keys}


def test_golden_month_has_every_day_delivered(tmp_path):
    check = c12(tmp_path, landing_without(tmp_path))

    assert check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description == "C12: all 31 UTC days of 2026-10 have usage files"
    assert values(check, "days_expected", "days_present", "missing_days", "files", "rows_checked",
                  "rows_per_day_min", "rows_per_day_max", "overridden") == {
        "days_expected": 31, "days_present": 31, "missing_days": [], "files": 32, "rows_checked": 2774,
        "rows_per_day_min": 50, "rows_per_day_max": 218, "overridden": False,
    }


def test_missing_days_fail_c12_unless_the_run_allows_them(tmp_path):
    landing = landing_without(tmp_path, "2026-10-05", "2026-10-17")

    failed = c12(tmp_path, landing)
    overridden = c12(tmp_path, landing, tags={ALLOW_MISSING_DAYS_TAG: "true"})

    assert not failed.passed
    assert failed.description == (
        "C12 failed: 2 of 31 UTC days of 2026-10 have no usage file (usage/dt=YYYY-MM-DD/*.parquet): 2026-10-05, 2026-10-17"
    )
    assert values(failed, "days_present", "missing_days", "failures", "override_requested", "overridden") == {
        "days_present": 29, "missing_days": ["2026-10-05", "2026-10-17"], "failures": 2,
        "override_requested": False, "overridden": False,
    }
    assert overridden.passed
    assert overridden.description.startswith("C12 overridden by --allow-missing-days: 2 of 31 UTC days of 2026-10")
    assert values(overridden, "missing_days", "override_requested", "overridden") == {
        "missing_days": ["2026-10-05", "2026-10-17"], "override_requested": True, "overridden": True,
    }


def test_a_month_without_usage_folder_fails_c12(tmp_path):
    """Finding 4: no usage at all used to close with 0 invoices and exit 0."""
    check = c12(tmp_path, landing_without(tmp_path, usage_folder=False))

    assert not check.passed
    assert check.description == "C12 failed: no usage file for any day of 2026-10 (no usage/dt=2026-10-DD/*.parquet)"
    assert values(check, "days_present", "failures", "files", "rows_checked") == {
        "days_present": 0, "failures": 31, "files": 0, "rows_checked": 0,
    }
    assert len(check.metadata["missing_days"].value) == 10  # the first ten are named
