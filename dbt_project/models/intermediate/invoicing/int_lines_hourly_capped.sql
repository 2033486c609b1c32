-- hourly_capped (docs/contract/billing-rules.md §3): per resource, min(round(Σ quantity·price, 2), cap),
-- the cap and the displayed hourly price taken from the row at the resource's last record.
select
    customer_id,
    sku,
    product,
    resource_id,
    description,
    quantity,
    unit,
    last_unit_price as unit_price,
    case
        when last_monthly_cap is null then round(amount_unrounded, 2)
        else least(round(amount_unrounded, 2), last_monthly_cap)
    end as amount
from {{ ref('int_resource_usage_monthly') }}
where model = 'hourly_capped'
