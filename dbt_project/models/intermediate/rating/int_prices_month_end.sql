-- The price row of each SKU in effect on the last day of the month: transfer,
-- graduated and flat_monthly SKUs are rated on the month as a whole at this row.
-- A SKU whose last row ended before the month did (withdrawn mid-month) falls back to
-- the last row in effect during the month, so its usage is never dropped (docs/decisions.md).
select *
from {{ ref('stg_reference__prices') }}
where effective_from < {{ period_end() }}
    and (effective_to is null or effective_to > {{ period_start() }})
qualify row_number() over (partition by sku order by effective_from desc) = 1
