{{ config(materialized='view') }}
-- Published invoice lines (docs/contract/published-interface.md, marts.invoice_lines): issued lines as issued,
-- and the draft lines of a month not issued yet (int_invoice_lines_open, as marts.invoice_preview_lines).
select
    invoice_number, line_number, customer_id, billing_month, sku, product, resource_id,
    description, quantity, unit, unit_price, amount
from {{ source('audit', 'issued_invoice_lines') }}
union all
select
    invoice_number, line_number, customer_id, billing_month, sku, product, resource_id,
    description, quantity, unit, unit_price, amount
from {{ ref('int_invoice_lines_open') }}
