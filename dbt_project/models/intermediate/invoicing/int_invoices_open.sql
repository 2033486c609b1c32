{{ config(materialized='view') }}
-- The drafts of a month not issued yet, with the last usage day they were rated from (as_of): the one
-- place drafts are published from. marts.invoices shows these rows as the month's drafts and
-- marts.invoice_preview shows them un-numbered, so the two cannot disagree (docs/decisions.md #80).
-- Empty once the month is issued: a close's own rating leaves no preview of an issued month.
select
    d.invoice_number, d.customer_id, d.billing_month, d.issue_date, d.due_date, d.currency, d.subtotal,
    d.credits_applied, d.taxable_amount, d.tax_name, d.tax_rate, d.tax_amount, d.total, d.reverse_charge,
    d.status,
    {{ preview_as_of() }} as as_of
from {{ ref('int_invoices_drafted') }} as d
where d.billing_month not in (select billing_month from {{ source('audit', 'issued_months') }})
