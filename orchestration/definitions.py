"""The one Definitions of billops, assembled from each package's assets, checks, jobs and sensors."""

import dagster as dg

from assets.dbt import billing_dbt_models
from assets.issuing import issued_invoices
from assets.payments import payments
from assets.reference import reference_snapshots
from assets.tickets import tickets
from assets.usage import usage
from orchestration.jobs import close_month_job
from orchestration.resources import build_resources
from quality.invoice_controls import invoice_controls

defs = dg.Definitions(
    assets=[reference_snapshots, usage, tickets, payments, billing_dbt_models, issued_invoices],
    asset_checks=[invoice_controls],
    jobs=[close_month_job],
    resources=build_resources(),
)
