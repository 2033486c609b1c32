{{ config(materialized='view') }}
-- The customers of the latest reference snapshot, for the billing team's look-ups
-- (docs/contract/published-interface.md, marts.customers). E-mail and tax id stay out of the
-- published copy: BI and the console need who a customer is, not how to reach them.
select customer_id, name, country, region, created_at, closed_at, payment_method
from {{ ref('stg_reference__customers') }}
