-- The month's invoice amounts (docs/contract/billing-rules.md §4–§5) in wide decimals, before they are narrowed
-- to the published DECIMAL(18,2): subtotal, credits, taxable amount, tax and total. C14 judges
-- these values; int_invoices_drafted publishes them, NULL where one does not fit.
with credits as (
    select customer_id, sum(applied) as credits_applied
    from {{ ref('int_credit_ledger_drafted') }}
    group by customer_id
),

amounts as (
    select
        s.invoice_number,
        s.customer_id,
        cast(s.subtotal as decimal(38, 2)) as subtotal,
        cast(coalesce(c.credits_applied, 0) as decimal(38, 2)) as credits_applied,
        t.tax_name,
        cast(t.tax_rate as decimal(9, 6)) as tax_rate,
        t.reverse_charge
    from {{ ref('int_invoice_subtotals') }} as s
    left join credits as c on c.customer_id = s.customer_id
    left join {{ ref('int_invoice_taxes') }} as t on t.customer_id = s.customer_id
)

select
    invoice_number,
    customer_id,
    subtotal,
    credits_applied,
    cast(subtotal - credits_applied as decimal(38, 2)) as taxable_amount,
    tax_name,
    tax_rate,
    cast(round((subtotal - credits_applied) * tax_rate, 2) as decimal(38, 2)) as tax_amount,
    cast(subtotal - credits_applied + round((subtotal - credits_applied) * tax_rate, 2) as decimal(38, 2)) as total,
    reverse_charge
from amounts
