-- The month's draft invoices (docs/contract/billing-rules.md §5–§6): subtotal, credits, tax, total.
-- Blocking controls judge these rows; only the issuing asset (assets/issuing.py) turns them
-- into issued invoices, by copying them into audit.issued_invoices.
with credits as (
    select customer_id, sum(applied) as credits_applied
    from {{ ref('int_credit_ledger_drafted') }}
    group by customer_id
),

amounts as (
    select
        s.invoice_number,
        s.customer_id,
        cast(s.subtotal as decimal(18, 2)) as subtotal,
        cast(coalesce(c.credits_applied, 0) as decimal(18, 2)) as credits_applied,
        t.tax_name,
        t.tax_rate,
        t.reverse_charge
    from {{ ref('int_invoice_subtotals') }} as s
    left join credits as c on c.customer_id = s.customer_id
    left join {{ ref('int_invoice_taxes') }} as t on t.customer_id = s.customer_id
)

select
    invoice_number,
    customer_id,
    {{ period_start() }} as billing_month,
    {{ period_end() }} as issue_date,
    cast({{ period_end() }} + interval 14 day as date) as due_date,
    'USD' as currency,
    subtotal,
    credits_applied,
    cast(subtotal - credits_applied as decimal(18, 2)) as taxable_amount,
    tax_name,
    cast(tax_rate as decimal(9, 6)) as tax_rate,
    cast(round((subtotal - credits_applied) * tax_rate, 2) as decimal(18, 2)) as tax_amount,
    cast(subtotal - credits_applied + round((subtotal - credits_applied) * tax_rate, 2) as decimal(18, 2)) as total,
    reverse_charge,
    'draft' as status
from amounts
