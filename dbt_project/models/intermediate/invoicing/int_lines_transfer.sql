-- transfer (billing-rules.md §3): one account-level line per customer and SKU, even at 0;
-- quantity = overage over the customer's pool, priced at the month-end row.
with used as (
    select customer_id, sku, sum(quantity) as quantity
    from {{ ref('int_resource_usage_monthly') }}
    where model = 'transfer'
    group by customer_id, sku
),

overage as (
    select
        u.customer_id,
        u.sku,
        greatest(cast(0 as decimal(38, 6)), u.quantity - coalesce(p.pool_gib, 0)) as overage_gib
    from used as u
    left join {{ ref('int_transfer_pools') }} as p on p.customer_id = u.customer_id
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
