-- Accounts receivable: one row per issued invoice, what it asks for and what was paid, and its
-- status (docs/contract/billing-rules.md §7), as of the first day after the month being closed.
--
-- Why as_of = period_end(): the close of month M is the moment the books are stated, and its
-- end is fixed by the partition, not by the wall clock; a re-run of the same close gives the
-- same statuses, and money that moved later (a payment file landed for the next month) is
-- counted only by the close whose period contains it (charges and refunds created before as_of).
--
-- The rules, in order (the first that holds wins):
--   amount_due  = total − approved credit notes (docs/contract/work-items.md: an approved credit note, or one
--                 done, lowers what the invoice asks for), never below 0;
--   paid_amount = succeeded charges − succeeded refunds of those charges (§7 literally: every
--                 succeeded charge counts, a duplicate too; its refund brings it back);
--   refunded            it was paid (charged >= amount_due, charged > 0) and refunds took all of it back
--                       (paid_amount <= 0);
--   paid                paid_amount >= amount_due (an invoice asking for 0 is paid);
--   partially_refunded  it was paid (charged >= amount_due) and refunds brought it below amount_due;
--   extended            unpaid, and an approved payment extension runs to as_of or later;
--   past_due            unpaid, and as_of is after the due date (the extended one, once it ran out);
--   issued              otherwise.
with invoices as (
    select invoice_number, customer_id, billing_month, issue_date, due_date, total
    from {{ source('audit', 'issued_invoices') }}
),

charged as (
    select invoice_number, sum(amount) as charged_amount, count(*) as succeeded_charges
    from {{ ref('charges') }}
    where status = 'succeeded' and created_at < {{ period_end() }}
    group by invoice_number
),

refunded as (
    select r.invoice_number, sum(r.amount) as refunded_amount
    from {{ ref('refunds') }} r
    join {{ ref('charges') }} c on c.charge_id = r.charge_id and c.status = 'succeeded'
      and c.created_at < {{ period_end() }}
    where r.status = 'succeeded' and r.created_at < {{ period_end() }}
    group by r.invoice_number
),

work_items as (
    select invoice_number,
           sum(amount) filter (where kind = 'credit_note' and status in ('approved', 'done')) as credit_notes,
           max(proposed_due_date) filter (where kind = 'payment_extension' and status in ('approved', 'done'))
             as extended_until
    from {{ source('queue', 'work_items') }}
    where invoice_number is not null
    group by invoice_number
),

amounts as (
    select
        i.invoice_number,
        i.customer_id,
        i.billing_month,
        i.issue_date,
        i.due_date,
        i.total,
        cast(coalesce(w.credit_notes, 0) as decimal(18, 2)) as credit_notes,
        cast(greatest(i.total - coalesce(w.credit_notes, 0), 0) as decimal(18, 2)) as amount_due,
        cast(coalesce(c.charged_amount, 0) as decimal(18, 2)) as charged_amount,
        cast(coalesce(r.refunded_amount, 0) as decimal(18, 2)) as refunded_amount,
        coalesce(c.succeeded_charges, 0) as succeeded_charges,
        w.extended_until,
        {{ period_end() }} as as_of
    from invoices i
    left join charged c on c.invoice_number = i.invoice_number
    left join refunded r on r.invoice_number = i.invoice_number
    left join work_items w on w.invoice_number = i.invoice_number
),

judged as (
    select
        *,
        cast(charged_amount - refunded_amount as decimal(18, 2)) as paid_amount,
        greatest(due_date, coalesce(extended_until, due_date)) as effective_due_date
    from amounts
),

stated as (
    select
        *,
        case
            when charged_amount > 0 and charged_amount >= amount_due and refunded_amount > 0 and paid_amount <= 0
                then 'refunded'
            when paid_amount >= amount_due then 'paid'
            when refunded_amount > 0 and charged_amount >= amount_due then 'partially_refunded'
            when extended_until is not null and extended_until >= as_of then 'extended'
            when as_of > effective_due_date then 'past_due'
            else 'issued'
        end as status
    from judged
)

-- A refund is the business giving money back on purpose: a refunded or partially refunded
-- invoice owes nothing more (what it kept settles it), so it is neither outstanding nor late.
select
    invoice_number,
    customer_id,
    billing_month,
    issue_date,
    due_date,
    total,
    credit_notes,
    amount_due,
    charged_amount,
    refunded_amount,
    paid_amount,
    cast(case when status in ('issued', 'extended', 'past_due') then greatest(amount_due - paid_amount, 0) else 0 end
         as decimal(18, 2)) as amount_outstanding,
    cast(greatest(paid_amount - amount_due, 0) as decimal(18, 2)) as amount_overpaid,
    succeeded_charges,
    extended_until,
    as_of,
    case when status = 'past_due' then cast(date_diff('day', effective_due_date, as_of) as integer) else 0 end
        as days_past_due,
    status
from stated
