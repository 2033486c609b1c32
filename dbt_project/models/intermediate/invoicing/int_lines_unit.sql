-- unit (docs/contract/billing-rules.md §3): per resource, round(Σ quantity·price, 2); the price shown
-- is the row in effect at the resource's last record.
select
    customer_id,
    sku,
    product,
    resource_id,
    description,
    quantity,
    unit,
    last_unit_price as unit_price,
    round(amount_unrounded, 2) as amount
from {{ ref('int_resource_usage_monthly') }}
where model = 'unit'
