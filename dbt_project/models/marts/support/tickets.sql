{{ config(materialized='view') }}
-- Support tickets as the team reads them (docs/contract/published-interface.md, marts.tickets): the newest
-- version of each landed ticket, the id as text (work items name tickets as text), times UTC.
select
    cast(ticket_id as varchar) as ticket_id, customer_id, invoice_number, created_at, updated_at, status, channel,
    cast(assignee_id as varchar) as assignee_id, subject, tags, satisfaction_score,
    reply_time_calendar_minutes as first_reply_minutes, solved_at, reopens
from {{ ref('stg_support__tickets') }}
