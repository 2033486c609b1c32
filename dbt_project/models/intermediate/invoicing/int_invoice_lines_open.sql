{{ config(materialized='view') }}
-- The draft lines of a month not issued yet, with as_of: the lines of int_invoices_open, the one place
-- marts.invoice_lines (drafts) and marts.invoice_preview_lines read (docs/decisions.md #80).
select
    l.invoice_number, l.line_number, l.customer_id, l.billing_month, l.sku, l.product, l.resource_id,
    l.description, l.quantity, l.unit, l.unit_price, l.amount,
    {{ preview_as_of() }} as as_of
from {{ ref('int_invoice_lines_drafted') }} as l
where l.billing_month not in (select billing_month from {{ source('audit', 'issued_months') }})
