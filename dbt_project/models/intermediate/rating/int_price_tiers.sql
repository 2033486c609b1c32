-- Graduated tiers of the month-end price rows, one row per tier with its bounds.
-- up_to is the cumulative upper bound; null is unbounded.
with tiers as (
    select
        p.sku,
        t.tier_number,
        cast(json_extract_string(t.tier, '$.up_to') as decimal(24, 6)) as up_to,
        cast(json_extract_string(t.tier, '$.unit_price') as decimal(18, 8)) as unit_price
    from {{ ref('int_prices_month_end') }} as p,
        unnest(cast(json(p.tiers) as json[])) with ordinality as t(tier, tier_number)
    where p.model = 'graduated'
)

select
    sku,
    tier_number,
    coalesce(lag(up_to) over (partition by sku order by tier_number), 0) as lower_bound,
    up_to as upper_bound,
    unit_price
from tiers
