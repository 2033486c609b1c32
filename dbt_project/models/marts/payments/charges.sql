-- Every accepted Stripe charge with the issued invoice it pays (docs/contract/billing-rules.md §7). Ingestion
-- accepted only charges naming an issued invoice (assets/payments.py), so the join always finds it.
-- is_duplicate: a second or later succeeded charge for the same invoice (§7, P1, R2), in order of
-- creation (charge id breaks a tie), so the first succeeded charge is the one that paid.
with charges as (
    select * from {{ ref('stg_payments__charges') }}
),

refunded as (
    select charge_id, sum(amount) as refunded_amount
    from {{ ref('stg_payments__refunds') }}
    where status = 'succeeded'
    group by charge_id
)

select
    c.charge_id,
    c.invoice_number,
    c.customer_id,
    i.billing_month,
    c.amount,
    c.currency,
    c.status,
    c.failure_code,
    c.failure_message,
    c.created_at,
    c.status = 'succeeded'
      and row_number() over (
          partition by c.invoice_number, c.status = 'succeeded' order by c.created_at, c.charge_id) > 1
      as is_duplicate,
    coalesce(r.refunded_amount, cast(0 as decimal(18, 2))) as refunded_amount
from charges c
left join {{ source('audit', 'issued_invoices') }} i on i.invoice_number = c.invoice_number
left join refunded r on r.charge_id = c.charge_id
