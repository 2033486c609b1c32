-- The price row of each SKU in effect on the last day of the month: transfer,
-- graduated and flat_monthly SKUs are rated on the month as a whole at this row.
select *
from {{ ref('stg_reference__prices') }}
where effective_from <= {{ period_end() }} - interval 1 day
    and (effective_to is null or {{ period_end() }} - interval 1 day < effective_to)
