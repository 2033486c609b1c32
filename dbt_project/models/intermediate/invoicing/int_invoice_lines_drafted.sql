{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='billing_month',
    on_schema_change='fail',
) }}
-- The month's invoice lines (landing-contract.md, marts.invoice_lines).
select
    s.invoice_number,
    cast(l.line_number as integer) as line_number,
    l.customer_id,
    {{ period_start() }} as billing_month,
    l.sku,
    l.product,
    l.resource_id,
    l.description,
    l.quantity,
    l.unit,
    l.unit_price,
    l.amount
from {{ ref('int_invoice_lines') }} as l
inner join {{ ref('int_invoice_subtotals') }} as s on s.customer_id = l.customer_id
