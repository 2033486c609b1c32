-- Claims (tickets tagged incorrect_invoice or refund_request naming an invoice) whose invoice's
-- recomputation finds no over-billing: rule R3 raises no refund for them (docs/contract/work-items.md), so they
-- are listed here for a person to answer the customer. The same test as workitems/rules.py
-- (CLAIMS_NO_ERROR_SQL): the invoice's latest restatement, if any, is not lower than issued.
with claims as (
    select
        cast(ticket_id as varchar) as ticket_id,
        customer_id as ticket_customer_id,
        invoice_number,
        tags,
        status as ticket_status,
        created_at as ticket_created_at
    from {{ ref('stg_support__tickets') }}
    where invoice_number is not null
      and list_has_any(tags, ['incorrect_invoice', 'refund_request'])
),

latest_restatement as (
    select invoice_number, issued_total, recomputed_total, difference, cause, detected_at
    from {{ source('audit', 'restatements') }}
    where invoice_number is not null
    qualify row_number() over (partition by invoice_number order by detected_at desc, run_id desc) = 1
)

select
    c.ticket_id,
    c.ticket_customer_id,
    c.invoice_number,
    i.customer_id as invoice_customer_id,
    i.billing_month,
    i.total as invoice_total,
    c.tags,
    c.ticket_status,
    c.ticket_created_at,
    r.recomputed_total,
    r.difference as restated_difference,
    r.cause as restatement_cause,
    r.detected_at as restated_at,
    case
        when i.invoice_number is null then 'invoice_not_issued'
        when r.invoice_number is null then 'not_restated'
        else 'restated_not_lower'
    end as finding
from claims c
left join latest_restatement r on r.invoice_number = c.invoice_number
left join {{ source('audit', 'issued_invoices') }} i on i.invoice_number = c.invoice_number
where r.difference is null or r.difference >= 0
