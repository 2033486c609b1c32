-- Per customer, resource and SKU: the month's quantity, its exact amount at each
-- day's price, and the price row in effect at the resource's last record
-- (docs/contract/billing-rules.md §3: the cap, the displayed price and the transfer allowance come from it).
with by_resource as (
    select
        customer_id,
        resource_id,
        sku,
        any_value(model) as model,
        sum(quantity) as quantity,
        sum(amount_unrounded) as amount_unrounded,
        count(distinct usage_date) as active_days,
        sum(records) as records,
        arg_max(price_effective_from, last_start_time) as last_price_effective_from
    from {{ ref('int_usage_daily_priced') }}
    group by customer_id, resource_id, sku
)

select
    r.*,
    p.product,
    p.description,
    p.unit,
    p.unit_price as last_unit_price,
    p.monthly_cap as last_monthly_cap,
    p.cap_hours as last_cap_hours,
    p.included_transfer_gib as last_included_transfer_gib
from by_resource as r
inner join {{ ref('stg_reference__prices') }} as p
    on p.sku = r.sku and p.effective_from = r.last_price_effective_from
