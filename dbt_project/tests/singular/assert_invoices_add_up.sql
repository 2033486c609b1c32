{{ config(meta={'dagster': {'ref': {'name': 'invoices'}}}) }}
-- Control C1 on the month being closed: subtotal = Σ lines, taxable = subtotal − credits,
-- total = taxable + tax, and credits never exceed the subtotal (C6).
with lines as (
    select invoice_number, sum(amount) as lines_total
    from {{ ref('invoice_lines') }}
    where billing_month = {{ period_start() }}
    group by invoice_number
)

select i.invoice_number, i.subtotal, l.lines_total
from {{ ref('invoices') }} as i
left join lines as l using (invoice_number)
where i.billing_month = {{ period_start() }}
    and (
        l.lines_total is null
        or i.subtotal != l.lines_total
        or i.taxable_amount != i.subtotal - i.credits_applied
        or i.total != i.taxable_amount + i.tax_amount
        or i.credits_applied > i.subtotal
        or i.total < 0
    )
