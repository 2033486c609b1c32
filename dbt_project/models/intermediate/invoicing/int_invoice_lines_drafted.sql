-- The month's draft invoice lines, numbered and carrying their draft invoice's number.
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
