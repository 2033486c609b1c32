{{ config(materialized='view') }}
-- Each issued billing month as the issuing asset froze it (docs/contract/published-interface.md,
-- marts.issued_months): counts, total and the SHA-256 of the issued content that C10 re-checks at every
-- close, so an auditor or the console can show which issued copy an invoice belongs to.
select billing_month, invoices, lines, total, content_sha256, issued_at, run_id, allow_missing_days, first_month
from {{ source('audit', 'issued_months') }}
