{{ config(materialized='view') }}
-- Published invoices (docs/contract/published-interface.md, marts.invoices): every issued invoice exactly as
-- issued (audit.issued_invoices, append-only) with its payment status from accounts_receivable
-- (docs/contract/billing-rules.md §7: paid, past_due, extended, refunded, partially_refunded, else issued), and
-- the drafts of a month not issued yet (status 'draft'), from int_invoices_open: the rows marts.invoice_preview
-- shows un-numbered, so the two never disagree (docs/decisions.md #80).
select
    i.invoice_number, i.customer_id, i.billing_month, i.issue_date, i.due_date, i.currency, i.subtotal,
    i.credits_applied, i.taxable_amount, i.tax_name, i.tax_rate, i.tax_amount, i.total, i.reverse_charge,
    cast(coalesce(ar.status, 'issued') as varchar) as status
from {{ source('audit', 'issued_invoices') }} i
left join {{ ref('accounts_receivable') }} ar on ar.invoice_number = i.invoice_number
union all
select
    invoice_number, customer_id, billing_month, issue_date, due_date, currency, subtotal,
    credits_applied, taxable_amount, tax_name, tax_rate, tax_amount, total, reverse_charge,
    status
from {{ ref('int_invoices_open') }}
