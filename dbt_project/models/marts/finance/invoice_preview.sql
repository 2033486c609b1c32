{{ config(materialized='view') }}
-- Month-to-date invoices (docs/contract/published-interface.md, marts.invoice_preview): per customer, the
-- invoice the close would issue for the open month if no more usage arrived, rated from the usage days
-- ingested so far (as_of). The columns of marts.invoices, from the very rows marts.invoices shows as the
-- month's drafts (int_invoices_open), but never numbered: a number is given at issue, and a customer
-- appearing later in the month would shift every draft number after it (docs/decisions.md #80).
select
    cast(null as varchar) as invoice_number,
    customer_id, billing_month, issue_date, due_date, currency, subtotal, credits_applied, taxable_amount,
    tax_name, tax_rate, tax_amount, total, reverse_charge, status, as_of
from {{ ref('int_invoices_open') }}
