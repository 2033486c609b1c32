"""Month-to-date invoices: `preview_month_job` rates an open month and publishes it, and a sensor runs it
after each day of usage is ingested (docs/contract/published-interface.md, marts.invoice_preview).

The job materializes, for one monthly partition, the dbt models the preview marts are built from
(staging → intermediate, with dbt's own data tests), the two preview marts and the published copy:
BI and `billops preview` read the copy, never the warehouse. It leaves out the ingestion (a preview
rates what is ingested), the controls that block issuing (quality/definitions.py: they judge a month
being issued; a month half landed fails C12 by design), issuing and the work items. It carries the
warehouse's writer tag, so the instance's queue runs it after a close in flight, never beside it,
and the preview tag, on which the rating refuses an issued month (assets/dbt.py). A close rates every
model, these included, so the preview it leaves is consistent: empty for the month it issued
(docs/decisions.md #82, #83).

The sensor reads the instance's run records of the daily ingestion job by name (a constant: that job
is built apart, issue 16 item 1) and requests one preview per month per successful ingestion run,
newest first; it skips an issued month (the close state in the operational store, never the
warehouse, decisions #60) and a month whose close is queued or running (that close rates it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from assets.dbt import dbt_models
from assets.publication import published_copy
from config.billing_month import BillingMonth
from orchestration.jobs import IN_FLIGHT, close_month_job, ingest_usage_day_job
from quality.definitions import defs as controls
from warehouse.close_options import PREVIEW_TAG, TRIGGER_TAG, WAREHOUSE_SLOT_TAG
from warehouse.close_state import close_state_in_store

PREVIEW_MARTS = [dg.AssetKey(["marts", "invoice_preview"]), dg.AssetKey(["marts", "invoice_preview_lines"])]
INGEST_DAY_JOB = ingest_usage_day_job.name  # the daily usage ingestion (issue 16 item 1)
PARTITION_TAG = "dagster/partition"
TICK_SECONDS = 30
CURSOR_OVERLAP = timedelta(minutes=10)  # as the alert sensors: a run ending mid-tick is read again, its key dedups

_CONTROL_CHECKS = [key for checks in controls.asset_checks for key in checks.check_keys]

preview_month_job = dg.define_asset_job(
    name="preview_month_job",
    selection=(
        # the preview marts and the models they read in dbt's own graph (not the waits assets/dbt.py adds)
        build_dbt_asset_selection([dbt_models], dbt_select=" ".join(f"+{key.path[-1]}" for key in PREVIEW_MARTS))
        | dg.AssetSelection.assets(published_copy)
    ) - dg.AssetSelection.checks(*_CONTROL_CHECKS),
    description="Rate an open month from the usage ingested so far into marts.invoice_preview and publish it; "
                "never issues (billops preview --month YYYY-MM reads it).",
    executor_def=dg.in_process_executor,
    tags={WAREHOUSE_SLOT_TAG: "writer", PREVIEW_TAG: "true"},
)


def month_of_run(run: dg.DagsterRun) -> BillingMonth | None:
    """The billing month of a run's partition: a day ('2026-10-05') or a month ('2026-10-01')."""
    key = run.tags.get(PARTITION_TAG)
    try:
        return BillingMonth.of(date.fromisoformat(key[:10])) if key else None
    except ValueError:
        return None


def preview_requests(ingested: Iterable[dg.RunRecord], issued: set[date], closing: set[date]) -> list[dg.RunRequest]:
    """One preview request per month with a successful ingestion run among `ingested`, keyed by the newest
    such run (a tick that reads it again requests nothing twice); none for a month issued or being closed."""
    newest: dict[BillingMonth, dg.RunRecord] = {}
    for record in ingested:
        month = month_of_run(record.dagster_run)
        if month is None or month.start in issued or month.start in closing:
            continue
        if month not in newest or record.create_timestamp > newest[month].create_timestamp:
            newest[month] = record
    return [dg.RunRequest(run_key=f"preview-{month.key}-{record.dagster_run.run_id}",
                          partition_key=month.partition_key, tags={TRIGGER_TAG: "preview_sensor"})
            for month, record in sorted(newest.items())]


@dg.sensor(
    job=preview_month_job,
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"After each successful {INGEST_DAY_JOB} run, preview its month (marts.invoice_preview).",
)
def preview_after_ingestion_sensor(context: dg.SensorEvaluationContext):
    since = datetime.fromtimestamp(float(context.cursor), tz=timezone.utc) - CURSOR_OVERLAP if context.cursor else None
    ingested = context.instance.get_run_records(dg.RunsFilter(
        job_name=INGEST_DAY_JOB, statuses=[dg.DagsterRunStatus.SUCCESS], updated_after=since))
    if not ingested:
        return dg.SkipReason(f"no successful {INGEST_DAY_JOB} run since the last tick")
    context.update_cursor(str(max(r.update_timestamp for r in ingested).timestamp()))
    state = close_state_in_store()
    closing = context.instance.get_run_records(dg.RunsFilter(job_name=close_month_job.name, statuses=IN_FLIGHT))
    requests = preview_requests(ingested, set(state.issued) if state else set(),
                                {m.start for r in closing if (m := month_of_run(r.dagster_run))})
    return requests or dg.SkipReason(f"{len(ingested)} ingestion run(s) read, every month issued or being closed")


preview_sensors = [preview_after_ingestion_sensor]
