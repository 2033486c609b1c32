-- transfer (docs/contract/billing-rules.md §3): one account-level line per customer and transfer SKU, even
-- at 0. The customer's one pool is drawn by its transfer SKUs in `sku` order: each SKU sees
-- what the SKUs before it left. quantity = overage, priced at the month-end row.
with used as (
    select customer_id, sku, sum(quantity) as quantity
    from {{ ref('int_resource_usage_monthly') }}
    where model = 'transfer'
    group by customer_id, sku
),

drawn as (
    select
        u.customer_id,
        u.sku,
        u.quantity,
        coalesce(p.pool_gib, 0) as pool_gib,
        coalesce(sum(u.quantity) over (
            partition by u.customer_id order by u.sku
            rows between unbounded preceding and 1 preceding
        ), 0) as used_before
    from used as u
    left join {{ ref('int_transfer_pools') }} as p on p.customer_id = u.customer_id
),

overage as (
    select
        customer_id,
        sku,
        greatest(
            cast(0 as decimal(38, 6)),
            quantity - greatest(cast(0 as decimal(38, 6)), pool_gib - used_before)
        ) as overage_gib
    from drawn
)

select
    o.customer_id,
    o.sku,
    pr.product,
    cast(null as varchar) as resource_id,
    pr.description,
    o.overage_gib as quantity,
    pr.unit,
    pr.unit_price,
    round(o.overage_gib * pr.unit_price, 2) as amount
from overage as o
inner join {{ ref('int_prices_month_end') }} as pr on pr.sku = o.sku
