-- Accepted usage records of the month, typed, with lineage (source_file, row_number,
-- loaded_at). Quarantine and de-duplication were settled at ingestion (assets/usage.py).
select
    event_id,
    customer_id,
    resource_id,
    sku,
    region,
    start_time,
    end_time,
    quantity,
    cast(start_time as date) as usage_date,
    source_file,
    row_number,
    loaded_at
from {{ source('usage', 'usage_month') }}
where start_time >= {{ period_start() }} and start_time < {{ period_end() }}
