{{ config(materialized='view') }}
-- Credit balances per grant and billing month (docs/contract/billing-rules.md §4): the issued months'
-- ledger as issued, and the draft ledger of the month being closed while it is not issued.
select billing_month, grant_id, customer_id, granted_amount, opening_balance, applied, closing_balance
from {{ source('audit', 'issued_credit_ledger') }}
union all
select billing_month, grant_id, customer_id, granted_amount, opening_balance, applied, closing_balance
from {{ ref('int_credit_ledger_drafted') }}
where billing_month not in (select billing_month from {{ source('audit', 'issued_months') }})
