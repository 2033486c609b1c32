{#-
  `expr` in the published DECIMAL(precision, scale), or NULL when it does not fit
  (docs/contract/billing-rules.md §1, docs/contract/controls.md C14). Rating sums and multiplies in wide
  decimals (DECIMAL(38, s)); only the draft models narrow to the published types,
  and a value out of range must not stop dbt with a cast error: it becomes NULL
  there, the blocking check C14 names its customer, SKU and records from the wide
  models, and the issued copy (NOT NULL columns) can never receive it.
  Only for values already at `scale`: the cast never rounds, it only checks range.
-#}
{% macro narrow_decimal(expr, precision, scale) -%}
    try_cast({{ expr }} as decimal({{ precision }}, {{ scale }}))
{%- endmacro %}
