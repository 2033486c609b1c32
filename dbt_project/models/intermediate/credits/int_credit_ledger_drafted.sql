{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='billing_month') }}
-- Credit balances per grant and month (billing-rules.md §4): opening = the grant's closing
-- balance of the latest earlier month in this ledger, or its full amount the first time;
-- grants usable in the month are used soonest-expiring first (never-expiring last), then
-- by granted_at, then grant_id, up to the invoice's subtotal. Re-closing month M reads
-- only months before M, so it always gives the same answer.
with usable as (
    select g.*
    from {{ ref('stg_reference__credit_grants') }} as g
    where g.granted_at < {{ period_end() }}
        and (g.expires_at is null or g.expires_at > {{ period_start() }})
),

opening as (
    select
        u.grant_id,
        u.customer_id,
        u.expires_at,
        u.granted_at,
        u.amount as granted_amount,
        {% if is_incremental() %}
        coalesce(prev.closing_balance, u.amount) as opening_balance
        {% else %}
        u.amount as opening_balance
        {% endif %}
    from usable as u
    {% if is_incremental() %}
    left join (
        select grant_id, arg_max(closing_balance, billing_month) as closing_balance
        from {{ this }}
        where billing_month < {{ period_start() }}
        group by grant_id
    ) as prev on prev.grant_id = u.grant_id
    {% endif %}
),

ordered as (
    select
        o.*,
        coalesce(s.subtotal, 0) as subtotal,
        coalesce(sum(o.opening_balance) over (
            partition by o.customer_id
            order by o.expires_at asc nulls last, o.granted_at, o.grant_id
            rows between unbounded preceding and 1 preceding
        ), 0) as used_before
    from opening as o
    left join {{ ref('int_invoice_subtotals') }} as s on s.customer_id = o.customer_id
)

select
    {{ period_start() }} as billing_month,
    grant_id,
    customer_id,
    granted_amount,
    cast(opening_balance as decimal(18, 2)) as opening_balance,
    cast(least(opening_balance, greatest(subtotal - used_before, 0)) as decimal(18, 2)) as applied,
    cast(opening_balance - least(opening_balance, greatest(subtotal - used_before, 0)) as decimal(18, 2)) as closing_balance
from ordered
