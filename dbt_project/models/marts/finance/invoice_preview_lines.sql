{{ config(materialized='view') }}
-- The lines of marts.invoice_preview (columns of marts.invoice_lines plus as_of), un-numbered like their
-- invoice: a line belongs to its customer's preview by (customer_id, billing_month).
select
    cast(null as varchar) as invoice_number,
    line_number, customer_id, billing_month, sku, product, resource_id, description, quantity, unit,
    unit_price, amount, as_of
from {{ ref('int_invoice_lines_open') }}
