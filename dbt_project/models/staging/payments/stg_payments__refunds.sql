-- Stripe refunds of accepted charges (assets/payments.py); cents → DECIMAL(18,2) USD, Unix seconds → UTC.
select
    id as refund_id,
    charge_id,
    {{ cents_to_dollars('amount') }} as amount,
    upper(currency) as currency,
    reason,
    status,
    work_item_id,
    {{ unix_to_utc('created') }} as created_at,
    source_file,
    row_number,
    loaded_at
from {{ source('payments', 'refunds') }}
