"""Where billops reads and writes, from the environment (landing-contract.md).

Every path is resolved to an absolute one against the directory the command
runs in, once, so that dbt (which runs in its own project directory) and
Dagster see the same files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


@dataclass(frozen=True)
class Settings:
    landing: Path
    warehouse: Path
    dagster_home: Path


def _absolute(value: str) -> Path:
    return Path(value).expanduser().resolve()


def load_settings() -> Settings:
    """Read BILLOPS_LANDING, BILLOPS_WAREHOUSE and DAGSTER_HOME with the contract's defaults."""
    return Settings(
        landing=_absolute(os.environ.get("BILLOPS_LANDING", "data/landing")),
        warehouse=_absolute(os.environ.get("BILLOPS_WAREHOUSE", "data/warehouse.duckdb")),
        dagster_home=_absolute(os.environ.get("DAGSTER_HOME", ".dagster")),
    )


def export_settings(settings: Settings) -> None:
    """Pin the resolved paths in the environment, for dbt's profile and Dagster's instance."""
    os.environ["BILLOPS_LANDING"] = str(settings.landing)
    os.environ["BILLOPS_WAREHOUSE"] = str(settings.warehouse)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
