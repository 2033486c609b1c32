"""The resources of the one code location: the warehouse, the landing zone and dbt, bound from the settings.

Paths come from `dg.EnvVar` where the variable is set when the definitions load (so the UI shows
which variable configures them); otherwise the resource reads the setting, with its default from
config/settings.py, when a step runs. dbt runs as `billops-dbt`, started without dagster-dbt's
unused adapter and `dbt --version` (orchestration/private_hooks.py).
"""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from assets.dbt_project import DBT_EXECUTABLE, dbt_project
from config.settings import is_set
from orchestration.private_hooks import FastStartDbtCliResource
from warehouse.resource import WarehouseResource


def _from_env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if is_set(name) else None


def dbt_resource() -> DbtCliResource:
    """The dbt resource of every dbt asset: the rating project, `billops-dbt`, started fast (private_hooks)."""
    return FastStartDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)


def build_resources() -> dict:
    return {
        "warehouse": WarehouseResource(path=_from_env("BILLOPS_WAREHOUSE"), landing=_from_env("BILLOPS_LANDING")),
        "dbt": dbt_resource(),
    }
