-- The shift view (docs/contract/kpis.md, marts.kpi_team_daily): per UTC day and agent (assignee_id as text),
-- with the monthly mart's attribution at day grain: solved and handle time on the day of
-- solved_at, first reply on the day of created_at, ratings on the day of updated_at.
-- Tickets without an assignee have no agent and are not in this mart.
with tickets as (
    select
        cast(assignee_id as varchar) as agent_id, created_at, updated_at, solved_at,
        satisfaction_score, agent_work_calendar_minutes,
        reply_time_calendar_minutes as frt_minutes
    from {{ ref('stg_support__tickets') }}
    where assignee_id is not null
),

created as (
    select cast(created_at as date) as day, agent_id,
           count(*) as tickets_created,
           list_sort(list(frt_minutes) filter (where frt_minutes is not null)) as frt_sorted
    from tickets
    group by all
),

solved as (
    select cast(solved_at as date) as day, agent_id,
           count(*) as tickets_solved,
           sum(coalesce(agent_work_calendar_minutes, 0)) as agent_work_minutes
    from tickets
    where solved_at is not null
    group by all
),

rated as (
    select cast(updated_at as date) as day, agent_id,
           count(*) filter (where satisfaction_score = 'good') as ratings_good,
           count(*) filter (where satisfaction_score = 'bad') as ratings_bad
    from tickets
    where satisfaction_score in ('good', 'bad')
    group by all
),

spine as (
    select day, agent_id from created
    union
    select day, agent_id from solved
    union
    select day, agent_id from rated
)

select
    s.day,
    s.agent_id,
    coalesce(c.tickets_created, 0) as tickets_created,
    coalesce(v.tickets_solved, 0) as tickets_solved,
    cast(case when v.tickets_solved > 0
        then {{ div_half_up('v.agent_work_minutes', 'v.tickets_solved', 2) }} end as decimal(18, 2)) as aht_minutes,
    cast({{ quantile_exact('c.frt_sorted', 1, 2) }} as decimal(18, 2)) as frt_minutes_median,
    cast(case when coalesce(r.ratings_good, 0) + coalesce(r.ratings_bad, 0) > 0
        then {{ div_half_up('r.ratings_good', 'r.ratings_good + r.ratings_bad', 6) }} end as decimal(9, 6)) as csat
from spine s
left join created c on c.day = s.day and c.agent_id = s.agent_id
left join solved v on v.day = s.day and v.agent_id = s.agent_id
left join rated r on r.day = s.day and r.agent_id = s.agent_id
