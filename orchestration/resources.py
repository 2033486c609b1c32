"""Resources: the DuckDB warehouse, the landing zone and dbt, configured from the environment.

Paths come from `dg.EnvVar` where the variable is set (so the UI shows which
variable configures them) and from the contract's defaults otherwise.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
import duckdb

from orchestration.dbt_project import dbt_resource
from orchestration.settings import absolute, setting
from warehouse.schema import bootstrap


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file holding every layer, and the read-only landing zone it is fed from.

    DuckDB allows one writing process, so a connection is opened per step and
    closed before dbt runs (`connect` is a context manager).
    """

    path: str = ""  # empty: BILLOPS_WAREHOUSE (or its default) as the run finds it
    landing: str = ""

    @property
    def warehouse_path(self) -> Path:
        return absolute(self.path or setting("BILLOPS_WAREHOUSE"))

    @property
    def landing_path(self) -> Path:
        return absolute(self.landing or setting("BILLOPS_LANDING"))

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        self.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.warehouse_path), read_only=read_only)
        try:
            con.execute("SET TimeZone = 'UTC'")
            if not read_only:
                bootstrap(con)
            yield con
        finally:
            con.close()


def _from_env(name: str) -> str | dg.EnvVar:
    """The variable, named (so the UI shows it), when set as the definitions load; else read when the run
    starts: definitions loaded once in a process (a test worker) must not pin the default for later runs."""
    return dg.EnvVar(name) if os.environ.get(name) else ""


def build_resources() -> dict:
    return {
        "warehouse": WarehouseResource(path=_from_env("BILLOPS_WAREHOUSE"), landing=_from_env("BILLOPS_LANDING")),
        "dbt": dbt_resource(),
    }
