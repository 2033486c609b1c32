{{ config(materialized='view') }}
-- Published invoices (landing-contract.md, marts.invoices): every issued invoice exactly as
-- issued (audit.issued_invoices, append-only), and the drafts of the month being closed
-- while it is not issued yet (status 'draft').
select
    invoice_number, customer_id, billing_month, issue_date, due_date, currency, subtotal,
    credits_applied, taxable_amount, tax_name, tax_rate, tax_amount, total, reverse_charge,
    cast('issued' as varchar) as status
from {{ source('audit', 'issued_invoices') }}
union all
select
    invoice_number, customer_id, billing_month, issue_date, due_date, currency, subtotal,
    credits_applied, taxable_amount, tax_name, tax_rate, tax_amount, total, reverse_charge,
    status
from {{ ref('int_invoices_drafted') }}
where billing_month not in (select billing_month from {{ source('audit', 'issued_months') }})
