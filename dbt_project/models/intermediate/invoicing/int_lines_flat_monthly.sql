-- flat_monthly (docs/contract/billing-rules.md §3): round(price · active days / days in month, 2),
-- active days = distinct UTC dates with a record, at the month-end row's price.
with used as (
    select customer_id, sku, count(distinct usage_date) as active_days
    from {{ ref('int_usage_daily_priced') }}
    where model = 'flat_monthly'
    group by customer_id, sku
)

select
    u.customer_id,
    u.sku,
    p.product,
    cast(null as varchar) as resource_id,
    p.description,
    cast(u.active_days as decimal(18, 6)) as quantity,
    p.unit,
    p.unit_price,
    {{ div_half_up('p.unit_price * u.active_days', days_in_period(), 2) }} as amount
from used as u
inner join {{ ref('int_prices_month_end') }} as p on p.sku = u.sku
