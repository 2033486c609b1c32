-- Stripe charges, first delivery of each id (assets/payments.py); cents → DECIMAL(18,2) USD, Unix seconds → UTC.
select
    id as charge_id,
    customer_id,
    invoice_number,
    {{ cents_to_dollars('amount') }} as amount,
    {{ cents_to_dollars('amount_refunded') }} as amount_refunded,
    upper(currency) as currency,
    status,
    paid,
    refunded,
    failure_code,
    failure_message,
    {{ unix_to_utc('created') }} as created_at,
    source_file,
    row_number,
    loaded_at
from {{ source('payments', 'charges') }}
