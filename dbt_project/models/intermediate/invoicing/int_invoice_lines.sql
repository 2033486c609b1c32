-- Every line of the month, numbered per customer (docs/contract/billing-rules.md §6): by product,
-- account-level lines last within a product, then SKU and resource.
-- Quantity and amount stay wide (DECIMAL(38, s)): a line out of the published range is
-- judged by C14 from here, and only int_invoice_lines_drafted narrows to DECIMAL(18, s).
with lines as (
    {% for model in ['hourly_capped', 'unit', 'transfer', 'graduated', 'flat_monthly'] %}
    select
        customer_id, sku, product, resource_id, description,
        cast(quantity as decimal(38, 6)) as quantity,
        unit,
        cast(unit_price as decimal(18, 8)) as unit_price,
        cast(amount as decimal(38, 2)) as amount,
        '{{ model }}' as pricing_model
    from {{ ref('int_lines_' ~ model) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    *,
    row_number() over (
        partition by customer_id
        order by product, resource_id is null, sku, resource_id
    ) as line_number
from lines
