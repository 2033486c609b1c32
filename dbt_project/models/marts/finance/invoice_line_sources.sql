{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='billing_month') }}
-- Where each invoice line came from (docs/contract/published-interface.md, marts.invoice_line_sources):
-- per line of the billing month, every landed usage file that holds accepted records rated into it,
-- with how many records and how much quantity. A line with a resource takes the records of that
-- customer, SKU and resource; an account-level line (resource_id null: a transfer pool, a metered
-- service) takes every record of the customer and SKU. A line billed without usage records (a flat
-- monthly plan) has no row. Incremental by billing month: a close replaces its month's rows only, so
-- earlier months keep theirs although the landing view holds one month's files at a time.
with lines as (
    select invoice_number, line_number, customer_id, billing_month, sku, resource_id
    from {{ ref('invoice_lines') }}
    where billing_month = {{ period_start() }}
),

usage_by_file as (
    select
        customer_id, sku, resource_id, source_file,
        count(*) as records,
        sum(quantity) as quantity,
        min(start_time) as first_start_time,
        max(start_time) as last_start_time
    from {{ ref('stg_usage__events') }}
    group by customer_id, sku, resource_id, source_file
)

select
    l.invoice_number,
    l.line_number,
    l.customer_id,
    l.billing_month,
    l.sku,
    l.resource_id,
    u.source_file,
    cast(sum(u.records) as bigint) as records,
    cast(sum(u.quantity) as decimal(38, 6)) as quantity,
    min(u.first_start_time) as first_start_time,
    max(u.last_start_time) as last_start_time
from lines as l
inner join usage_by_file as u
    on u.customer_id = l.customer_id
    and u.sku = l.sku
    and (l.resource_id is null or u.resource_id = l.resource_id)
group by all
