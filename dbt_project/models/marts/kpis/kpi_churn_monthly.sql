-- Churn per billing month (docs/contract/kpis.md, marts.kpi_churn_monthly), from the issued copy so a month
-- counts once it is issued. A customer is active at the start of month M when its invoice of
-- M−1 has a total > 0; it churned in M when M's issued lines hold no amount > 0 for it.
-- Involuntary: the churned customer's last invoice (the one of M−1) had a failed charge and was
-- still unpaid at the end of M (succeeded charges, less their succeeded refunds, created before
-- the first day of M+1, below its total). The first issued month has no month before it:
-- active_customers_start 0 and null rates.
with invoices as (
    select invoice_number, customer_id, billing_month, total
    from {{ source('audit', 'issued_invoices') }}
),

months as (
    select distinct billing_month as month from invoices
),

billable as (
    select distinct billing_month, customer_id
    from {{ source('audit', 'issued_invoice_lines') }}
    where amount > 0
),

active as (
    select m.month, i.customer_id, i.invoice_number, i.total,
           b.customer_id is null as churned
    from months m
    join invoices i on i.billing_month = cast(m.month - interval 1 month as date) and i.total > 0
    left join billable b on b.billing_month = m.month and b.customer_id = i.customer_id
),

charges as (
    select charge_id, invoice_number, status, amount, created_at
    from {{ ref('stg_payments__charges') }}
),

refunds as (
    select charge_id, amount, created_at
    from {{ ref('stg_payments__refunds') }}
    where status = 'succeeded'
),

settlement as (
    -- per churned invoice and month: its failed charges and what it was charged by the end of the month
    select a.month, a.invoice_number,
           count(*) filter (where c.status = 'failed') as failed_charges,
           coalesce(sum(c.amount) filter (where c.status = 'succeeded'), 0) as charged
    from active a
    join charges c on c.invoice_number = a.invoice_number
        and c.created_at < cast(a.month + interval 1 month as date)
    where a.churned
    group by all
),

refunded as (
    select a.month, a.invoice_number, sum(r.amount) as refunded
    from active a
    join charges c on c.invoice_number = a.invoice_number and c.status = 'succeeded'
        and c.created_at < cast(a.month + interval 1 month as date)
    join refunds r on r.charge_id = c.charge_id and r.created_at < cast(a.month + interval 1 month as date)
    where a.churned
    group by all
),

per_month as (
    select m.month,
           count(a.customer_id) as active_customers_start,
           count(a.customer_id) filter (where a.churned) as churned_customers,
           coalesce(sum(a.total), 0) as active_amount,
           coalesce(sum(a.total) filter (where a.churned), 0) as churned_amount,
           count(a.customer_id) filter (where a.churned and s.failed_charges > 0
                                                       and s.charged - coalesce(r.refunded, 0) < a.total)
             as involuntary_churned
    from months m
    left join active a on a.month = m.month
    left join settlement s on s.month = a.month and s.invoice_number = a.invoice_number
    left join refunded r on r.month = a.month and r.invoice_number = a.invoice_number
    group by all
),

previous_amount as (
    select billing_month as previous_month, sum(total) as invoiced_amount
    from invoices
    group by all
)

select
    p.month,
    p.active_customers_start,
    p.churned_customers,
    cast(case when p.active_customers_start > 0
        then {{ div_half_up('p.churned_customers', 'p.active_customers_start', 6) }} end as decimal(9, 6))
        as logo_churn_rate,
    cast(case when coalesce(v.invoiced_amount, 0) > 0
        then {{ div_half_up('p.churned_amount', 'v.invoiced_amount', 6) }} end as decimal(9, 6))
        as revenue_churn_rate,
    p.involuntary_churned
from per_month p
left join previous_amount v on v.previous_month = cast(p.month - interval 1 month as date)
