-- The month's draft invoices (docs/contract/billing-rules.md §5–§6): subtotal, credits, tax, total.
-- Blocking controls judge these rows; only the issuing asset (assets/issuing.py) turns them
-- into issued invoices, by copying them into audit.issued_invoices.
-- The amounts are computed wide in int_invoice_amounts; an amount that does not fit the
-- published DECIMAL(18,2) is NULL here (narrow_decimal), and C14 blocks the month naming it.
select
    invoice_number,
    customer_id,
    {{ period_start() }} as billing_month,
    {{ period_end() }} as issue_date,
    cast({{ period_end() }} + interval 14 day as date) as due_date,
    'USD' as currency,
    {{ narrow_decimal('subtotal', 18, 2) }} as subtotal,
    {{ narrow_decimal('credits_applied', 18, 2) }} as credits_applied,
    {{ narrow_decimal('taxable_amount', 18, 2) }} as taxable_amount,
    tax_name,
    tax_rate,
    {{ narrow_decimal('tax_amount', 18, 2) }} as tax_amount,
    {{ narrow_decimal('total', 18, 2) }} as total,
    reverse_charge,
    'draft' as status
from {{ ref('int_invoice_amounts') }}
