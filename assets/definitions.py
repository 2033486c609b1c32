"""The assets of a close's data: ingestion, rating (dbt), issuing and publication, as one Definitions.

Merged with the other domains' in orchestration/definitions.py. The checks that each asset
declares itself (ingestion reconciliation, C9, C10, dbt's data tests) come with it; the controls
judged on the drafts are the quality domain's (quality/definitions.py).
"""

import dagster as dg

from assets.dbt import dbt_models
from assets.issuing import issued_invoices
from assets.payments import payments
from assets.publication import publication_assets
from assets.reference import reference_snapshots
from assets.tickets import tickets
from assets.usage import usage
from assets.feeds_day import feeds_day
from assets.usage_day import usage_day

defs = dg.Definitions(
    assets=[reference_snapshots, usage, usage_day, feeds_day, tickets, payments, dbt_models, issued_invoices,
            *publication_assets],
)
