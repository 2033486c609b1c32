"""The dbt project as Dagster assets, wired once (DbtProject + @dbt_assets + a translator).

Every dbt model is an asset of the monthly partition; the month reaches dbt as
`--vars` built from the partition's time window (end exclusive), with the
warehouse's absolute path (the profile reads it, so nothing writes the
environment). Sources map to the ingestion and issuing assets through
`meta.dagster.asset_key`, so the UI shows one graph from a landed file to an
invoice line. The published marts read the issued copy, which the issuing
asset writes after the drafts: Dagster runs this one dbt asset as two steps of
the close (rating, then publication).
"""

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.dbt_project import dbt_project
from orchestration.partitions import monthly_partitions
from orchestration.resources import WarehouseResource


def dbt_vars(start: datetime, end: datetime, warehouse: str) -> dict[str, str]:
    """dbt vars for a partition window: period_start inclusive, period_end exclusive, and the warehouse file."""
    return {"period_start": start.date().isoformat(), "period_end": end.date().isoformat(), "warehouse": warehouse}


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
    """Rate the month into drafts (staging → intermediate), and publish the marts over the issued copy."""
    window = context.partition_time_window
    variables = dbt_vars(window.start, window.end, str(warehouse.warehouse_path))
    yield from dbt.cli(["build", "--vars", json.dumps(variables)], context=context).stream()
