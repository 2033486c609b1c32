-- Every accepted Stripe dispute with the invoice of the disputed charge (E1 reads lost disputes).
select
    d.dispute_id,
    d.charge_id,
    c.invoice_number,
    c.customer_id,
    d.amount,
    d.currency,
    d.reason,
    d.status,
    d.created_at
from {{ ref('stg_payments__disputes') }} d
left join {{ ref('stg_payments__charges') }} c on c.charge_id = d.charge_id
