"""`billops-dbt` (orchestration/dbt_executable.py): when dbt is handed the saved manifest, and when it must parse."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from orchestration import dbt_executable


def build(warehouse: str, command: str = "build") -> list[str]:
    variables = {"period_start": "2026-10-01", "period_end": "2026-11-01", "warehouse": warehouse}
    return [command, "--exclude-resource-type", "unit_test", "--vars", json.dumps(variables)]


@pytest.fixture
def saved(tmp_path, monkeypatch):
    """A copy of the manifest `make install` saved, newer than every project file."""
    if not dbt_executable.SAVED_MANIFEST.exists():
        pytest.fail(f"{dbt_executable.SAVED_MANIFEST} is missing: `make install` parses the project")
    copy = tmp_path / "partial_parse.msgpack"
    shutil.copy(dbt_executable.SAVED_MANIFEST, copy)
    monkeypatch.setattr(dbt_executable, "SAVED_MANIFEST", copy)
    return copy


def test_a_build_on_a_warehouse_named_like_the_parse_gets_the_saved_manifest(saved, tmp_path):
    manifest = dbt_executable.saved_manifest(build(str(tmp_path / "elsewhere" / "warehouse.duckdb")))
    assert manifest is not None
    models = {n.name for n in manifest.nodes.values() if n.resource_type == "model"}
    assert {"int_invoices_drafted", "invoices", "invoice_lines", "credit_ledger"} <= models
    assert manifest.child_map  # parent and child maps built, as dbt does when it reuses a manifest


def test_dbt_parses_when_the_database_name_differs(saved, tmp_path):
    assert dbt_executable.saved_manifest(build(str(tmp_path / "bench.duckdb"))) is None


def test_dbt_parses_when_a_project_file_is_newer_than_the_saved_manifest(saved, tmp_path):
    os.utime(saved, (0, 0))  # saved in 1970: every model is newer
    assert dbt_executable.saved_manifest(build(str(tmp_path / "warehouse.duckdb"))) is None


def test_other_commands_and_unreadable_manifests_are_plain_dbt(saved, tmp_path):
    warehouse = str(tmp_path / "warehouse.duckdb")
    assert dbt_executable.saved_manifest(build(warehouse, command="parse")) is None
    assert dbt_executable.saved_manifest(["--version"]) is None
    saved.write_bytes(b"not msgpack")
    assert dbt_executable.saved_manifest(build(warehouse)) is None
