-- graduated (docs/contract/billing-rules.md §3): the month's quantity per customer and SKU split across
-- the month-end row's tiers; each tier bills the units inside it. unit_price is null.
with used as (
    select customer_id, sku, sum(quantity) as quantity
    from {{ ref('int_resource_usage_monthly') }}
    where model = 'graduated'
    group by customer_id, sku
),

tiered as (
    select
        u.customer_id,
        u.sku,
        u.quantity,
        sum(
            greatest(
                cast(0 as decimal(38, 6)),
                least(u.quantity, coalesce(t.upper_bound, u.quantity)) - t.lower_bound
            ) * t.unit_price
        ) as amount_unrounded
    from used as u
    inner join {{ ref('int_price_tiers') }} as t on t.sku = u.sku
    group by u.customer_id, u.sku, u.quantity
)

select
    t.customer_id,
    t.sku,
    p.product,
    cast(null as varchar) as resource_id,
    p.description,
    t.quantity,
    p.unit,
    cast(null as decimal(18, 8)) as unit_price,
    round(t.amount_unrounded, 2) as amount
from tiered as t
inner join {{ ref('int_prices_month_end') }} as p on p.sku = t.sku
