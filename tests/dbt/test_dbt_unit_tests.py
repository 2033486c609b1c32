"""dbt unit tests (proration, receivable status, KPI definitions) run once here, not in every close.

They need the models' parents to exist, so they run against a copy of the closed golden
warehouse, through the same dbt and profile a close uses.
"""

import json
import subprocess
import sys
from pathlib import Path

from orchestration.settings import DBT_PROJECT_DIR

DBT = Path(sys.executable).parent / "dbt"


def test_every_dbt_unit_test_passes(copy_closed_golden, tmp_path):
    variables = {"period_start": "2026-10-01", "period_end": "2026-11-01", "warehouse": str(copy_closed_golden.warehouse)}
    result = subprocess.run(
        [str(DBT), "test", "--select", "test_type:unit", "--vars", json.dumps(variables),
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    unit_tests = manifest.get("unit_tests", {})
    assert len(unit_tests) >= 5, sorted(unit_tests)
    run_results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    assert {r["unique_id"] for r in run_results} == set(unit_tests)
    assert all(r["status"] == "pass" for r in run_results), [r["unique_id"] for r in run_results if r["status"] != "pass"]
