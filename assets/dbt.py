"""The dbt project as Dagster assets, wired once (DbtProject + @dbt_assets + a translator).

Every dbt model is an asset of the monthly partition; the month reaches dbt as
`--vars` built from the partition's time window (end exclusive). Sources map
to the ingestion assets through `meta.dagster.asset_key`, so the UI shows one
graph from a landed file to an invoice line.
"""


import json
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.dbt_project import dbt_project
from orchestration.partitions import monthly_partitions
from orchestration.resources import WarehouseResource


def period_vars(start: datetime, end: datetime) -> dict[str, str]:
    """dbt vars for a partition window: period_start inclusive, period_end exclusive."""
    return {"period_start": start.date().isoformat(), "period_end": end.date().isoformat()}


class BillopsTranslator(DagsterDbtTranslator):
    """Keys are [layer, model]; groups follow the model folder (staging, intermediate, marts)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        layer = dbt_resource_props["fqn"][1]
        return dg.AssetKey([layer, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props["fqn"][1]


@dbt_assets(
    manifest=dbt_project.manifest_path,
    partitions_def=monthly_partitions,
    dagster_dbt_translator=BillopsTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
    # One month per run, like the ingestion assets: a backfill closes months in order.
    backfill_policy=dg.BackfillPolicy.multi_run(1),
)
def billing_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Rate the month: staging → intermediate → marts, with the dbt data tests as asset checks."""
    window = context.partition_time_window
    dbt_vars = period_vars(window.start, window.end)
    # dbt's profile reads the warehouse path from the environment (profiles.yml).
    os.environ["BILLOPS_WAREHOUSE"] = warehouse.path
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream()
