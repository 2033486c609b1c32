-- Each day's usage at the price row whose [effective_from, effective_to) holds that day.
-- Usage without such a row never gets here: ingestion quarantines it as no_price.
select
    d.customer_id,
    d.resource_id,
    d.sku,
    d.usage_date,
    d.quantity,
    d.records,
    d.last_start_time,
    p.model,
    p.effective_from as price_effective_from,
    p.unit_price,
    d.quantity * p.unit_price as amount_unrounded
from {{ ref('int_usage_daily') }} as d
inner join {{ ref('stg_reference__prices') }} as p
    on p.sku = d.sku
    and p.effective_from <= d.usage_date
    and (p.effective_to is null or d.usage_date < p.effective_to)
