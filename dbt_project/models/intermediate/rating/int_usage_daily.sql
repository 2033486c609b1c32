-- Aggregate early: a price row is chosen by date, so per (resource, SKU, UTC day)
-- sum(quantity) × price equals the sum of the records' amounts exactly. Ingestion already
-- summed the accepted records per day (stg_usage__daily); this is the rating's starting table.
select
    customer_id,
    resource_id,
    sku,
    usage_date,
    quantity,
    records,
    last_start_time
from {{ ref('stg_usage__daily') }}
