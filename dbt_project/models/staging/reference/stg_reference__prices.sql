-- One row per SKU price row; effective_to is exclusive (null = open).
select
    sku,
    product,
    description,
    model,
    unit,
    cast(unit_price as decimal(18, 8)) as unit_price,
    cast(monthly_cap as decimal(18, 2)) as monthly_cap,
    cast(cap_hours as decimal(18, 6)) as cap_hours,
    cast(included_transfer_gib as decimal(18, 6)) as included_transfer_gib,
    tiers,
    cast(effective_from as date) as effective_from,
    cast(effective_to as date) as effective_to,
    _source_file as source_file,
    _loaded_at as loaded_at
from {{ source('reference', 'price_book') }}
