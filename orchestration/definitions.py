"""The one Definitions of billops (workspace.yaml): each domain's own, merged, with the close's wiring on top.

The domains export what they define — assets/definitions.py (ingestion, rating, issuing,
publication), quality/definitions.py (the controls), workitems/definitions.py (the queue's step).
This package adds what runs them: `close_month_job`, `preview_month_job` (orchestration/preview.py), the
monthly schedule, the restatement, alert and preview sensors, and the resources bound from the settings.
"""

import warnings

import dagster as dg

from assets.definitions import defs as close_assets
from orchestration.feeds_sensor import feeds_sensors
from orchestration.jobs import close_month_job, ingest_feeds_day_job, ingest_usage_day_job
from orchestration.preview import preview_month_job, preview_sensors
from orchestration.resources import build_resources
from orchestration.restatement_sensor import restatement_sensors
from orchestration.schedules import schedules
from orchestration.sensors import sensors
from orchestration.usage_sensor import usage_sensors
from quality.definitions import defs as controls
from workitems.definitions import defs as work_items

# Every partitioned asset pins BackfillPolicy.multi_run(1) (one month per run, months in
# order); the parameter is marked beta in dagster 1.13, which is noise in the CLI output.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
# Partitioned asset checks (the controls judge one month) are "preview" in 1.13: same noise.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")

defs = dg.Definitions.merge(
    close_assets,
    controls,
    work_items,
    dg.Definitions(
        jobs=[close_month_job, ingest_usage_day_job, ingest_feeds_day_job, preview_month_job],
        sensors=[*sensors, *restatement_sensors, *usage_sensors, *feeds_sensors, *preview_sensors],
        schedules=schedules,
        resources=build_resources(),
    ),
)
