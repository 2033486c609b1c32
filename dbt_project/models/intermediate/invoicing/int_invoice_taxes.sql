-- The tax rule per invoiced customer (docs/contract/billing-rules.md §5): the rate row for the
-- customer's country and region (a region row wins over the country row) in effect on
-- the issue date; reverse charge (rate 0) where the row allows it and the customer has a tax id.
with candidates as (
    select
        s.customer_id,
        c.tax_id,
        t.tax_name,
        t.rate,
        t.reverse_charge,
        row_number() over (partition by s.customer_id order by t.region is not null desc) as preference
    from {{ ref('int_invoice_subtotals') }} as s
    inner join {{ ref('stg_reference__customers') }} as c on c.customer_id = s.customer_id
    left join {{ ref('stg_reference__tax_rates') }} as t
        on t.country = c.country
        and (t.region is null or t.region = c.region)
        and t.effective_from <= {{ period_end() }}
        and (t.effective_to is null or {{ period_end() }} < t.effective_to)
)

select
    customer_id,
    tax_name,
    coalesce(reverse_charge and tax_id is not null, false) as reverse_charge,
    case when reverse_charge and tax_id is not null then cast(0 as decimal(9, 6))
        else coalesce(rate, cast(0 as decimal(9, 6))) end as tax_rate
from candidates
where preference = 1
