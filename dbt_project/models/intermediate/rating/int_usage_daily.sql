-- Aggregate early: a price row is chosen by date, so per (resource, SKU, UTC day)
-- sum(quantity) × price equals the sum of the records' amounts exactly.
select
    customer_id,
    resource_id,
    sku,
    usage_date,
    sum(quantity) as quantity,
    count(*) as records,
    max(start_time) as last_start_time
from {{ ref('stg_usage__events') }}
group by all
