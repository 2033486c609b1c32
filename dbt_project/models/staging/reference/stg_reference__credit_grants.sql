select
    grant_id,
    customer_id,
    cast(amount as decimal(18, 2)) as amount,
    kind,
    cast(granted_at as timestamptz) at time zone 'UTC' as granted_at,
    cast(expires_at as timestamptz) at time zone 'UTC' as expires_at,
    reason,
    _source_file as source_file,
    _loaded_at as loaded_at
from {{ source('reference', 'credit_grants') }}
