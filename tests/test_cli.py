"""The billops command's exit codes and messages."""

import subprocess

from tests.conftest import BILLOPS


def test_malformed_month_is_a_usage_error(golden):
    result = golden.billops("close", "--month", "2026-13")
    assert result.returncode == 2
    assert "YYYY-MM" in result.stderr


def test_missing_landing_zone_exits_2_naming_it(golden, tmp_path):
    golden.landing = tmp_path / "nowhere"
    result = golden.close("2026-10")
    assert result.returncode == 2
    assert "nowhere" in result.stderr


def test_missing_reference_file_fails_the_close_naming_it(golden):
    (golden.landing / "reference" / "tax_rates.csv").unlink()
    result = golden.close("2026-10")
    assert result.returncode == 1
    assert "reference/tax_rates.csv" in result.stderr


def test_broken_csv_header_fails_naming_the_file(golden):
    path = golden.landing / "reference" / "customers.csv"
    path.write_text(path.read_text().replace("customer_id,name", "customer,nom", 1))
    result = golden.close("2026-10")
    assert result.returncode == 1
    assert "reference/customers.csv" in result.stderr and "header" in result.stderr


def test_help_lists_the_commands():
    result = subprocess.run([str(BILLOPS), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("close", "generate"):
        assert command in result.stdout
