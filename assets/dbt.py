"""The dbt project as Dagster assets, wired once (DbtProject + @dbt_assets + a translator).

Every dbt model is an asset of the monthly partition; the month reaches dbt as
`--vars` built from the run's BillingMonth (period end exclusive), with the
warehouse's absolute path (the profile reads it, so nothing writes the
environment). Sources map to the ingestion and issuing assets through
`meta.dagster.asset_key`, so the UI shows one graph from a landed file to an
invoice line.

One dbt asset for every model. The published marts read the issued copy that the issuing asset
writes after the drafts, so a close cannot build them in one dbt invocation: Dagster splits the
asset into one step per stretch of the graph between other assets (rating before the controls and
issuing, the open-month models after issuing, the marts after the work items). It had been two
assets, rating and marts, and Dagster split those into 3 and 4 steps: 7 dbt processes per close at
~3.5 s of start-up each (Python, the manifest, the adapter), more than the ~11 s the golden close
spends building models. One asset lets each stretch take every model it can: 4 steps (decision #98).

A preview run (preview_month_job, tag billops/preview) runs a subset on a month not
issued yet; `_build` refuses an issued month before dbt starts, so a preview never replaces the
drafts a restatement compares with (docs/decisions.md #82).
"""

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from assets.dbt_project import dbt_project, prepare_for_loading
from assets.kpi_metadata import with_kpi_metadata
from config.billing_month import BillingMonth
from config.partitions import monthly_partitions, run_month
from warehouse.close_options import PREVIEW_TAG
from warehouse.months import issued_months
from warehouse.resource import WarehouseResource


def dbt_vars(month: BillingMonth, warehouse: str) -> dict[str, str]:
    """dbt vars of a month: period_start inclusive, period_end exclusive, and the warehouse file."""
    return {"period_start": month.start.isoformat(), "period_end": month.end.isoformat(), "warehouse": warehouse}


class BillopsTranslator(DagsterDbtTranslator):
    """Keys are [layer, model]; groups follow the model folder (staging, intermediate, marts)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        layer = dbt_resource_props["fqn"][1]
        return dg.AssetKey([layer, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props["fqn"][1]

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> dg.AssetSpec:
        """Two waits that cost nothing and save two dbt processes (~3.5 s of start-up each) per close.

        Dagster runs a model in a separate dbt step from the models it shares the asset with when
        more assets of other kinds stand between it and a root. Staging of the snapshots sat one
        asset from the root, staging of the records two (snapshot → ingestion → model); the models
        reading the issued copy sat one asset after issuing, the marts reading the queue two
        (issuing → work items → mart). So a staging model also waits for the landed records
        (`LANDED`, which run first anyway), and a mart or an open-month model (`*_open`, the drafts
        of months not issued, which read the issued months) also waits for the month's work items
        (raised right after issuing, from the issued copy and staging only): one dbt step rates,
        one publishes (decision #98).
        """
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] != "model":
            return spec
        deps = {dep.asset_key for dep in spec.deps}
        if props["fqn"][1] == "staging" and not deps & set(LANDED):
            return spec.merge_attributes(deps=LANDED)
        if WORK_ITEMS not in deps and (props["fqn"][1] == PUBLISHED or props["name"].endswith(OPEN_MONTH_SUFFIX)):
            return spec.merge_attributes(deps=[WORK_ITEMS])
        return spec


# The assets that ingest the landed records (usage, tickets, payments): every staging model runs after them.
LANDED = [dg.AssetKey(["raw", name]) for name in ("usage", "tickets", "charges", "refunds", "disputes")]
# The work items of the month (workitems/asset.py): every model reading the issued copy runs after them.
WORK_ITEMS = dg.AssetKey(["marts", "work_items"])
OPEN_MONTH_SUFFIX = "_open"  # int_invoices_open, int_invoice_lines_open: read by the marts only
TRANSLATOR = BillopsTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
PUBLISHED = "marts"  # the models/marts folder (dbt selects a folder by its name in the fqn)


def target_path(month: BillingMonth, variables: dict[str, str]) -> Path:
    """One dbt target folder per (warehouse, month) instead of one per invocation.

    dbt re-parses the whole project (~4 s) whenever its vars or profile differ from the
    last parse in the target folder. Rating and publication of one close, and a re-close
    of the same month, share the vars, so the second invocation parses only what changed.
    """
    key = hashlib.sha256(json.dumps(variables, sort_keys=True).encode()).hexdigest()[:12]
    return Path(dbt_project.project_dir) / "target" / "closes" / f"{month.key}-{key}"


def refuse_issued_preview(context: dg.AssetExecutionContext, warehouse: WarehouseResource, month: BillingMonth) -> None:
    """A preview rates an open month only: an issued month has invoices, not a preview (dg.Failure, no retry)."""
    if context.run.tags.get(PREVIEW_TAG) != "true":
        return
    with warehouse.connect() as con:  # the preview run holds the warehouse's writer slot
        issued = month.start in issued_months(con)
    if issued:
        raise dg.Failure(f"preview {month} refused: {month} is issued; its invoices are in marts.invoices "
                         "(a preview rates only a month not issued yet); nothing was rated", allow_retries=False)


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    month = run_month(context)
    refuse_issued_preview(context, warehouse, month)
    variables = dbt_vars(month, str(warehouse.warehouse_path))
    # dbt unit tests prove the SQL, not the month's data: the test suite runs them once
    # (tests/dbt/test_dbt_unit_tests.py), a close need not pay ~2 s each on every run.
    args = ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps(variables)]
    invocation = dbt.cli(args, context=context, target_path=target_path(month, variables))
    yield from invocation.stream()


prepare_for_loading()  # the manifest the @dbt_assets below is built from


@dbt_assets(
    manifest=dbt_project.manifest_path,
    partitions_def=monthly_partitions,
    dagster_dbt_translator=TRANSLATOR,
    # One month per run, like the ingestion assets: a backfill closes months in order.
    backfill_policy=dg.BackfillPolicy.multi_run(1),
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Rate the month into drafts (staging → intermediate) and publish the marts, with dbt's data tests as checks.

    The KPI marts' events carry the month's headline numbers (assets/kpi_metadata.py), read after dbt exits.
    """
    yield from with_kpi_metadata(context, _build(context, dbt, warehouse), str(warehouse.warehouse_path),
                                 run_month(context).start)


def models_of_layer(*layers: str) -> list[dg.AssetKey]:
    """The dbt models of the given folders (staging, intermediate, marts), sorted."""
    return sorted((key for key in dbt_models.keys if key.path[0] in layers), key=lambda key: key.to_user_string())


PUBLISHED_MARTS = models_of_layer(PUBLISHED)
