-- The month's draft invoice lines, numbered and carrying their draft invoice's number, in the
-- published types: a quantity or amount out of range is NULL here (narrow_decimal), never a
-- cast error; C14 names it from int_invoice_lines and blocks issuing.
select
    s.invoice_number,
    cast(l.line_number as integer) as line_number,
    l.customer_id,
    {{ period_start() }} as billing_month,
    l.sku,
    l.product,
    l.resource_id,
    l.description,
    {{ narrow_decimal('l.quantity', 18, 6) }} as quantity,
    l.unit,
    l.unit_price,
    {{ narrow_decimal('l.amount', 18, 2) }} as amount
from {{ ref('int_invoice_lines') }} as l
inner join {{ ref('int_invoice_subtotals') }} as s on s.customer_id = l.customer_id
