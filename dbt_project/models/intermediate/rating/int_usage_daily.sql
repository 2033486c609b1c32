{{ config(materialized='view') }}
-- Aggregate early: a price row is chosen by date, so per (resource, SKU, UTC day)
-- sum(quantity) × price equals the sum of the records' amounts exactly. Ingestion already
-- summed the accepted records per day (stg_usage__daily); this view is the rating's start
-- (a view: copying 10M rows at full size would buy nothing).
select
    customer_id,
    resource_id,
    sku,
    usage_date,
    quantity,
    records,
    last_start_time
from {{ ref('stg_usage__daily') }}
