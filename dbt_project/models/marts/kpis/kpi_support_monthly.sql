-- Support KPIs per month (docs/contract/kpis.md, marts.kpi_support_monthly), for `all` and by channel, group
-- and agent. Each ticket (its newest version, settled by staging) counts in the month of the
-- timestamp the measure is about: created_at for created and first-reply measures,
-- solved_at for solved, handle, resolution and reopen measures, updated_at for ratings.
-- A ticket without a channel, group or assignee counts in `all` only, so dimension_value is
-- null exactly on the `all` rows. Medians and p90 are continuous (quantile_cont's definition)
-- computed exactly on the sorted integer minutes (macro quantile_exact); ratios are exact
-- decimal divisions rounded half up.
with tickets as (
    select
        ticket_id, created_at, updated_at, solved_at, channel, group_id, assignee_id,
        satisfaction_score, reopens, agent_work_calendar_minutes,
        cast(reply_time_calendar_minutes as decimal(18, 2)) as frt_minutes,
        cast(reply_time_business_minutes as decimal(18, 2)) as frt_business_minutes,
        cast(full_resolution_calendar_minutes as decimal(18, 2)) as resolution_minutes,
        list_has_any(coalesce(tags, []), ['incorrect_invoice', 'refund_request', 'payment_extension', 'payment_failed', 'tax_question', 'other_billing']) as is_billing
    from {{ ref('stg_support__tickets') }}
),

by_dimension as (
    select *, 'all' as dimension, cast(null as varchar) as dimension_value from tickets
    union all
    select *, 'channel', channel from tickets where channel is not null
    union all
    select *, 'group', cast(group_id as varchar) from tickets where group_id is not null
    union all
    select *, 'agent', cast(assignee_id as varchar) from tickets where assignee_id is not null
),

created as (
    select
        cast(date_trunc('month', created_at) as date) as month, dimension, dimension_value,
        count(*) as tickets_created,
        count(*) filter (where is_billing) as billing_tickets_created,
        list_sort(list(frt_minutes) filter (where frt_minutes is not null)) as frt_sorted,
        list_sort(list(frt_business_minutes) filter (where frt_business_minutes is not null)) as frt_business_sorted
    from by_dimension
    group by all
),

solved as (
    select
        cast(date_trunc('month', solved_at) as date) as month, dimension, dimension_value,
        count(*) as tickets_solved,
        sum(coalesce(agent_work_calendar_minutes, 0)) as agent_work_minutes,
        list_sort(list(resolution_minutes) filter (where resolution_minutes is not null)) as resolution_sorted,
        count(*) filter (where coalesce(reopens, 0) > 0) as tickets_reopened
    from by_dimension
    where solved_at is not null
    group by all
),

rated as (
    select
        cast(date_trunc('month', updated_at) as date) as month, dimension, dimension_value,
        count(*) filter (where satisfaction_score = 'good') as ratings_good,
        count(*) filter (where satisfaction_score = 'bad') as ratings_bad
    from by_dimension
    where satisfaction_score in ('good', 'bad')
    group by all
),

invoices_issued as (
    select cast(date_trunc('month', issue_date) as date) as month, count(*) as invoices_issued
    from {{ source('audit', 'issued_invoices') }}
    group by all
),

spine as (
    select month, dimension, dimension_value from created
    union
    select month, dimension, dimension_value from solved
    union
    select month, dimension, dimension_value from rated
)

select
    s.month,
    s.dimension,
    s.dimension_value,
    coalesce(c.tickets_created, 0) as tickets_created,
    coalesce(v.tickets_solved, 0) as tickets_solved,
    cast({{ quantile_exact('c.frt_sorted', 1, 2) }} as decimal(18, 2)) as frt_minutes_median,
    cast({{ quantile_exact('c.frt_sorted', 9, 10) }} as decimal(18, 2)) as frt_minutes_p90,
    cast({{ quantile_exact('c.frt_business_sorted', 1, 2) }} as decimal(18, 2)) as frt_business_minutes_median,
    cast(case when v.tickets_solved > 0
        then {{ div_half_up('v.agent_work_minutes', 'v.tickets_solved', 2) }} end as decimal(18, 2)) as aht_minutes,
    cast({{ quantile_exact('v.resolution_sorted', 1, 2) }} as decimal(18, 2)) as resolution_minutes_median,
    cast(case when coalesce(r.ratings_good, 0) + coalesce(r.ratings_bad, 0) > 0
        then {{ div_half_up('r.ratings_good', 'r.ratings_good + r.ratings_bad', 6) }} end as decimal(9, 6)) as csat,
    cast(case when v.tickets_solved > 0
        then {{ div_half_up('v.tickets_reopened', 'v.tickets_solved', 6) }} end as decimal(9, 6)) as reopen_rate,
    cast(case when i.invoices_issued > 0
        then {{ div_half_up('coalesce(c.billing_tickets_created, 0) * 1000', 'i.invoices_issued', 2) }} end
        as decimal(18, 2)) as billing_tickets_per_1k_invoices
from spine s
left join created c
    on c.month = s.month and c.dimension = s.dimension and c.dimension_value is not distinct from s.dimension_value
left join solved v
    on v.month = s.month and v.dimension = s.dimension and v.dimension_value is not distinct from s.dimension_value
left join rated r
    on r.month = s.month and r.dimension = s.dimension and r.dimension_value is not distinct from s.dimension_value
left join invoices_issued i on i.month = s.month
