-- Credit balances per grant for the month being closed (docs/contract/billing-rules.md §4). A grant opens
-- with its closing balance of the latest earlier ISSUED month (audit.issued_credit_ledger),
-- or its full amount the first time. Because only issued months feed it and months are
-- issued in order, closing months out of order can never spend a credit twice, and
-- re-closing an issued month recomputes from the same openings.
-- Grants usable in the month are used soonest-expiring first (never-expiring last), then
-- by granted_at, then grant_id, up to the invoice's subtotal.
with usable as (
    select g.*
    from {{ ref('stg_reference__credit_grants') }} as g
    where g.granted_at < {{ period_end() }}
        and (g.expires_at is null or g.expires_at > {{ period_start() }})
),

previous as (
    select grant_id, arg_max(closing_balance, billing_month) as closing_balance
    from {{ source('audit', 'issued_credit_ledger') }}
    where billing_month < {{ period_start() }}
    group by grant_id
),

opening as (
    select
        u.grant_id,
        u.customer_id,
        u.expires_at,
        u.granted_at,
        u.amount as granted_amount,
        coalesce(p.closing_balance, u.amount) as opening_balance
    from usable as u
    left join previous as p on p.grant_id = u.grant_id
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
    cast(granted_amount as decimal(18, 2)) as granted_amount,
    cast(opening_balance as decimal(18, 2)) as opening_balance,
    cast(least(opening_balance, greatest(subtotal - used_before, 0)) as decimal(18, 2)) as applied,
    cast(opening_balance - least(opening_balance, greatest(subtotal - used_before, 0)) as decimal(18, 2)) as closing_balance
from ordered
