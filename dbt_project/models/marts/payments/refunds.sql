-- Every accepted Stripe refund with the invoice of the charge it returns and the work item it
-- executes (metadata.work_item_id), for P2, P3 and the loop that marks approved refunds done.
select
    r.refund_id,
    r.charge_id,
    c.invoice_number,
    c.customer_id,
    r.amount,
    r.currency,
    r.reason,
    r.status,
    r.work_item_id,
    r.created_at
from {{ ref('stg_payments__refunds') }} r
left join {{ ref('stg_payments__charges') }} c on c.charge_id = r.charge_id
