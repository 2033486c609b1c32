"""C13 reference data valid: the golden snapshots pass; each broken rule fails naming the file,
the row (from 1, header excluded) and the rule; a failure blocks usage (finding 8: a bad
effective_from is reported as such, never as `no_price`). Real reference CSVs, a real DuckDB
file, the real reference asset, Great Expectations for real."""

import csv
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.reference import reference_snapshots
from assets.usage import usage
from quality.gx_runner import Expect, run_suite
from quality.reference_checks import reference_data_valid, tiers_problem
from tests.conftest import GOLDEN
from warehouse.resource import WarehouseResource

MONTH = "2026-10-01"


def landing_copy(tmp_path: Path, with_usage: bool = False) -> Path:
    landing = tmp_path / "landing"
    shutil.copytree(GOLDEN / "landing" / "reference", landing / "reference")
    if with_usage:
        shutil.copytree(GOLDEN / "landing" / "usage", landing / "usage")
    return landing


def edit_csv(path: Path, changes: dict[tuple[int, str], str], extra_rows: list[list[str]] = ()) -> None:
    """Set cells by (row from 1, header excluded; column name) and append rows, quoting as csv does."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    for (row, column), value in changes.items():
        rows[row][header.index(column)] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows + list(extra_rows))


def close(tmp_path: Path, landing: Path, *assets) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [reference_snapshots, reference_data_valid, *assets],
        partition_key=MONTH,
        resources={"warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb"), landing=str(landing))},
        raise_on_error=False,
    )


def evaluations(result: dg.ExecuteInProcessResult) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def offending(evaluation) -> set[tuple]:
    return {(o["file"], o["row"], o["rule"]) for o in evaluation.metadata["offending_rows"].value}


def test_golden_reference_snapshots_pass_c13(tmp_path):
    result = close(tmp_path, landing_copy(tmp_path))

    checks = evaluations(result)
    assert result.success
    assert {name: (c.passed, c.metadata["rows_checked"].value, c.metadata["failures"].value) for name, c in checks.items()} == {
        "C13_customers_valid": (True, 8, 0),
        "C13_price_book_valid": (True, 11, 0),
        "C13_tax_rates_valid": (True, 5, 0),
        "C13_credit_grants_valid": (True, 7, 0),
    }
    assert checks["C13_price_book_valid"].description == "C13: all 11 rows of reference/price_book.csv follow the landing contract"


def test_each_broken_rule_fails_c13_naming_file_row_and_rule(tmp_path):
    landing = landing_copy(tmp_path)
    reference = landing / "reference"
    edit_csv(reference / "price_book.csv", {
        (1, "cap_hours"): "",                      # droplet-s-1vcpu-1gb: transfer allowance without cap_hours
        (2, "unit_price"): "0,03571",              # unparseable number
        (3, "effective_to"): "2026-10-20",         # overlaps row 4 (same SKU, from 2026-10-16)
        (6, "effective_from"): "2025-13-01",       # unparseable date
        (8, "model"): "metered",                   # unknown model
        (9, "tiers"): "[]",                        # graduated with empty tiers
        (10, "tiers"): '[{"up_to": 1000000, "unit_price": 2e-07}, {"up_to": 5, "unit_price": 1e-07}]',  # descending
    })
    edit_csv(reference / "tax_rates.csv", {}, extra_rows=[["DE", "", "VAT", "0.16", "true", "2026-07-01", "2027-01-01"]])
    edit_csv(reference / "customers.csv", {(4, "payment_method"): "cash", (6, "country"): ""})
    edit_csv(reference / "credit_grants.csv", {(2, "amount"): "-10.00", (5, "expires_at"): "soon"})

    result = close(tmp_path, landing)

    checks = evaluations(result)
    assert not result.success
    price_book = "reference/price_book.csv"
    assert offending(checks["C13_price_book_valid"]) == {
        (price_book, 1, "an hourly_capped row with included_transfer_gib must have cap_hours"),
        (price_book, 2, "unit_price must be a decimal"),
        (price_book, 3, "effective range must not overlap another row of the same sku"),
        (price_book, 4, "effective range must not overlap another row of the same sku"),
        (price_book, 6, "effective_from must be a date"),
        (price_book, 8, "model must be one of hourly_capped, unit, transfer, graduated, flat_monthly"),
        (price_book, 9, "a graduated row must have valid tiers"),
        (price_book, 10, "a graduated row must have valid tiers"),
    }
    assert offending(checks["C13_tax_rates_valid"]) == {
        ("reference/tax_rates.csv", 1, "effective range must not overlap another row of the same country and region"),
        ("reference/tax_rates.csv", 6, "effective range must not overlap another row of the same country and region"),
    }
    assert offending(checks["C13_customers_valid"]) == {
        ("reference/customers.csv", 4, "payment_method must be one of card, paypal, none"),
        ("reference/customers.csv", 6, "country must be present"),
    }
    assert offending(checks["C13_credit_grants_valid"]) == {
        ("reference/credit_grants.csv", 2, "amount must be above 0"),
        ("reference/credit_grants.csv", 5, "expires_at must be a timestamp"),
    }
    price_check = checks["C13_price_book_valid"]
    assert not price_check.passed and price_check.severity == dg.AssetCheckSeverity.ERROR
    assert price_check.metadata["failures"].value == 8
    assert price_check.description.startswith("C13 failed: reference/price_book.csv: 8 row(s) break the landing contract: ")
    assert "row 2: unit_price must be a decimal [found 0,03571]" in price_check.description
    assert "row 3: effective range must not overlap another row of the same sku [found row 4, 2026-10-16 to open]" in price_check.description
    assert "row 9: a graduated row must have valid tiers [found tiers is not a non-empty list: []]" in price_check.description
    assert "row 10: a graduated row must have valid tiers [found tier 2: up_to 5 is not above the previous bound 1000000]" in price_check.description


def test_bad_effective_from_blocks_usage_and_is_not_reported_as_no_price(tmp_path):
    """Finding 8: the close names the file, row and rule; usage is never priced against the bad row."""
    landing = landing_copy(tmp_path, with_usage=True)
    edit_csv(landing / "reference" / "price_book.csv", {(5, "effective_from"): "2025-01-32"})

    result = close(tmp_path, landing, usage)

    check = evaluations(result)["C13_price_book_valid"]
    assert not check.passed
    assert check.description == (
        "C13 failed: reference/price_book.csv: 1 row(s) break the landing contract: "
        "row 5: effective_from must be a date [found 2025-01-32]"
    )
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert "raw__usage" not in started
    with WarehouseResource(path=str(tmp_path / "warehouse.duckdb"), landing=str(landing)).connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM audit.quarantine WHERE reason = 'no_price'").fetchone()[0] == 0


def test_tiers_problem_accepts_the_contract_shape_and_names_what_is_wrong():
    assert tiers_problem("graduated", '[{"up_to": 90000, "unit_price": 0}, {"up_to": null, "unit_price": 1.85e-05}]') is None
    assert tiers_problem("graduated", '[{"up_to": 10, "unit_price": 1}]') is None  # last bound may be a number
    assert tiers_problem("unit", None) is None
    assert tiers_problem("graduated", None) == "no tiers"
    assert tiers_problem("graduated", "[{up_to: 1}]") == "tiers is not JSON: [{up_to: 1}]"
    assert tiers_problem("graduated", '{"up_to": null}') == 'tiers is not a non-empty list: {"up_to": null}'
    assert tiers_problem("graduated", '[{"up_to": null, "unit_price": "cheap"}]') == "tier 1: unit_price 'cheap' is not a non-negative number"
    assert tiers_problem("graduated", '[{"up_to": 0, "unit_price": 1}]') == "tier 1: up_to 0 is not above the previous bound 0"
    assert tiers_problem("graduated", '[{"unit_price": 1}]') == "tier 1 is not an object with up_to and unit_price"


def test_a_suite_gx_cannot_evaluate_never_passes():
    data = pd.DataFrame({"row": [1, 2], "model": ["unit", "unit"]})
    ok = run_suite("ok", data, [Expect("model known", "ExpectColumnValuesToBeInSet", {"column": "model", "value_set": ["unit"]})], ["row"])
    broken = run_suite("broken", data, [Expect("sku known", "ExpectColumnValuesToBeInSet", {"column": "sku", "value_set": ["x"]})], ["row"])

    assert ok.success and ok.offences == [] and ok.errors == []
    assert not broken.success
    assert broken.errors and broken.errors[0].startswith("sku known: ")
