select
    customer_id,
    name,
    email,
    upper(country) as country,
    nullif(upper(region), '') as region,
    nullif(tax_id, '') as tax_id,
    cast(created_at as timestamptz) at time zone 'UTC' as created_at,
    cast(closed_at as timestamptz) at time zone 'UTC' as closed_at,
    payment_method,
    _source_file as source_file,
    _loaded_at as loaded_at
from {{ source('reference', 'customers') }}
