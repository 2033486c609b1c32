{#-
  Stripe's integer cents → exact DECIMAL(18,2) dollars, converted once, in staging.
  `x / 100` would be DOUBLE in DuckDB (docs/contract/billing-rules.md §1 forbids floating point),
  so the cents are scaled by the exact decimal 0.01: DECIMAL(18,0) × DECIMAL(3,2).
-#}
{% macro cents_to_dollars(column) -%}
    cast(cast({{ column }} as decimal(18, 0)) * cast(0.01 as decimal(3, 2)) as decimal(18, 2))
{%- endmacro %}
