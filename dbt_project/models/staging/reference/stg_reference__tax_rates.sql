select
    upper(country) as country,
    nullif(upper(region), '') as region,
    tax_name,
    cast(rate as decimal(9, 6)) as rate,
    coalesce(lower(reverse_charge) = 'true', false) as reverse_charge,
    cast(effective_from as date) as effective_from,
    cast(effective_to as date) as effective_to,
    _source_file as source_file,
    _loaded_at as loaded_at
from {{ source('reference', 'tax_rates') }}
