"""Shared fixtures: a scratch landing zone, warehouse and Dagster instance per test,
and the real `billops` command run as a subprocess (exit codes included)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "fixtures" / "case-basic-2026-10"
BILLOPS = Path(sys.executable).parent / "billops"

# The contract's usage schema (landing-contract.md), written independently of the generator.
USAGE_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("customer_id", pa.string()),
        ("resource_id", pa.string()),
        ("sku", pa.string()),
        ("region", pa.string()),
        ("start_time", pa.timestamp("us", tz="UTC")),
        ("end_time", pa.timestamp("us", tz="UTC")),
        ("quantity", pa.decimal128(18, 6)),
    ]
)



@dataclass
class Workspace:
    root: Path
    landing: Path
    warehouse: Path
    dagster_home: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "BILLOPS_LANDING": str(self.landing),
            "BILLOPS_WAREHOUSE": str(self.warehouse),
            "DAGSTER_HOME": str(self.dagster_home),
        }

    def billops(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BILLOPS), *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=600
        )

    def close(self, month: str) -> subprocess.CompletedProcess:
        return self.billops("close", "--month", month)

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def write_usage(self, relative: str, rows: list[dict], schema: pa.Schema = USAGE_SCHEMA) -> Path:
        path = self.landing / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
        return path


@pytest.fixture
def golden(tmp_path: Path) -> Workspace:
    """A copy of the golden October 2026 landing zone with an empty warehouse."""
    landing = tmp_path / "landing"
    shutil.copytree(GOLDEN / "landing", landing)
    return Workspace(tmp_path, landing, tmp_path / "warehouse.duckdb", tmp_path / "dagster_home")


def read_expected(name: str) -> list[dict]:
    with (GOLDEN / "expected" / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


def as_value(text: str | None):
    """Normalise a CSV cell or a warehouse value for exact comparison (Decimal, not float)."""
    if text is None or text == "":
        return None
    if isinstance(text, bool):
        return text
    if isinstance(text, (Decimal, int)):
        return Decimal(text)
    if text in ("true", "false"):
        return text == "true"
    try:
        return Decimal(text)
    except Exception:
        return str(text)


def assert_closes_to_golden(ws: Workspace) -> None:
    """marts.invoices and marts.invoice_lines equal the golden expectations, every column, to the cent."""
    for table, expected_file, key in (
        ("marts.invoices", "invoices.csv", "invoice_number"),
        ("marts.invoice_lines", "invoice_lines.csv", "invoice_number, line_number"),
    ):
        expected = read_expected(expected_file)
        columns = list(expected[0].keys())
        actual = ws.query(
            f"SELECT {', '.join(columns)} FROM {table} WHERE billing_month = DATE '2026-10-01' ORDER BY {key}"
        )
        assert len(actual) == len(expected), f"{table}: {len(actual)} rows, expected {len(expected)}"
        for want, got in zip(expected, actual):
            for column, value in zip(columns, got):
                assert as_value(str(value) if hasattr(value, "isoformat") else value) == as_value(want[column]), (
                    f"{table} {want[key.split(',')[0]]} {column}: {value!r} != {want[column]!r}"
                )
