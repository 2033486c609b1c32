{#-
  Exact decimal division rounded half up to `scale` places, for non-negative
  operands. DuckDB divides DECIMALs in DOUBLE, which docs/contract/billing-rules.md §1 forbids,
  so both sides are scaled to integers (10 decimal places, enough for every
  input: prices keep 8, quantities 6) and divided as HUGEINT:
  round_half_up(n / d) = (2·n·10^scale + d) // (2·d).
-#}
{% macro div_half_up(numerator, denominator, scale) -%}
    (cast(
        (2 * cast(cast({{ numerator }} as decimal(38, 10)) * 10000000000 as hugeint) * cast(1{{ '0' * scale }} as hugeint)
            + cast(cast({{ denominator }} as decimal(38, 10)) * 10000000000 as hugeint))
        // (2 * cast(cast({{ denominator }} as decimal(38, 10)) * 10000000000 as hugeint))
        as decimal(38, 0)) * cast({{ '1' if scale == 0 else '0.' ~ ('0' * (scale - 1)) ~ '1' }} as decimal({{ scale + 1 }}, {{ scale }})))
{%- endmacro %}
