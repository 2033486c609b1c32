-- One invoice per customer with at least one line; numbers run from 000001 in
-- ascending customer_id order (gapless and reproducible, docs/contract/billing-rules.md §6).
select
    customer_id,
    sum(amount) as subtotal,
    count(*) as lines,
    'BO-' || strftime({{ period_start() }}, '%Y%m') || '-'
        || lpad(cast(row_number() over (order by customer_id) as varchar), 6, '0') as invoice_number
from {{ ref('int_invoice_lines') }}
group by customer_id
