{{ config(materialized='view') }}
-- Restatements as finance reads them (docs/contract/published-interface.md, audit.restatements): one row per
-- customer whose recomputed total differs from what was issued, with its cause.
select
    billing_month, customer_id, invoice_number, issued_total, recomputed_total, difference,
    cause, detected_at, run_id
from {{ source('audit', 'restatements') }}
