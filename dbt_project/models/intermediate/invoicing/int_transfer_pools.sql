-- The pooled transfer allowance per customer (docs/contract/billing-rules.md §3, transfer): each
-- hourly_capped resource earns included_transfer_gib · min(hours, cap_hours) / cap_hours,
-- kept to 6 decimals half up, both from the price row at its last record.
select
    customer_id,
    sum(
        {{ div_half_up('last_included_transfer_gib * least(quantity, last_cap_hours)', 'last_cap_hours', 6) }}
    ) as pool_gib,
    count(*) as earning_resources
from {{ ref('int_resource_usage_monthly') }}
where model = 'hourly_capped'
    and last_included_transfer_gib is not null
    and last_cap_hours > 0
group by customer_id
