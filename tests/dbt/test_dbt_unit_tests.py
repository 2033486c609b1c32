"""dbt unit tests (proration, receivable status, KPI definitions) run once here, not in every close.

They need the models' parents to exist, so they run against a copy of the closed golden
warehouse, through the same dbt and profile a close uses.
"""

import json

from tests.conftest import dbt


def test_every_dbt_unit_test_passes(copy_closed_golden):
    ws = copy_closed_golden
    result = dbt(ws, "test", "--select", "test_type:unit")
    assert result.returncode == 0, result.stdout[-4000:]
    manifest = json.loads((ws.root / "dbt-target" / "manifest.json").read_text())
    unit_tests = manifest.get("unit_tests", {})
    assert len(unit_tests) >= 5, sorted(unit_tests)
    run_results = json.loads((ws.root / "dbt-target" / "run_results.json").read_text())["results"]
    assert {r["unique_id"] for r in run_results} == set(unit_tests)
    assert all(r["status"] == "pass" for r in run_results), [r["unique_id"] for r in run_results if r["status"] != "pass"]
