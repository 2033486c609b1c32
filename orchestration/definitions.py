"""The one Definitions of billops, assembled from each package's assets, checks, jobs and sensors."""

import warnings

import dagster as dg

from assets.dbt import billing_dbt_models, published_marts
from assets.issuing import issued_invoices
from assets.payments import payments
from assets.publication import publication_assets
from assets.reference import reference_snapshots
from assets.tickets import tickets
from assets.usage import usage
from orchestration.jobs import close_month_job
from orchestration.resources import build_resources
from orchestration.restatement_sensor import restatement_sensors
from orchestration.schedules import schedules
from orchestration.sensors import sensors
from quality.amount_controls import amount_controls
from quality.delivery_checks import delivery_checks
from quality.invoice_controls import invoice_controls
from quality.landing_suites import landing_suite_checks
from quality.payment_controls import payment_controls
from quality.reference_checks import reference_checks
from workitems.asset import workitems_assets

# Every partitioned asset pins BackfillPolicy.multi_run(1) (one month per run, months in
# order); the parameter is marked beta in dagster 1.13, which is noise in the CLI output.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
# Partitioned asset checks (the controls judge one month) are "preview" in 1.13: same noise.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")

defs = dg.Definitions(
    assets=[reference_snapshots, usage, tickets, payments, billing_dbt_models, issued_invoices,
            *workitems_assets, published_marts, *publication_assets],
    asset_checks=[*reference_checks, *delivery_checks, *landing_suite_checks, invoice_controls,
                  amount_controls, *payment_controls],
    jobs=[close_month_job],
    sensors=[*sensors, *restatement_sensors],
    schedules=schedules,
    resources=build_resources(),
)
