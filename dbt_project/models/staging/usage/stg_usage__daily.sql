-- Accepted usage per customer, resource, SKU and UTC day, as ingestion aggregated it
-- (assets/usage.py): the start of rating, so dbt never re-reads the records themselves.
select
    customer_id,
    resource_id,
    sku,
    usage_date,
    cast(quantity as decimal(38, 6)) as quantity,
    records,
    last_start_time
from {{ source('usage', 'usage_daily') }}
where usage_date >= {{ period_start() }} and usage_date < {{ period_end() }}
