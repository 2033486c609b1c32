{#- The billing month being closed, from the vars Dagster passes (end exclusive). -#}
{% macro period_start() -%}cast('{{ var("period_start") }}' as date){%- endmacro %}
{% macro period_end() -%}cast('{{ var("period_end") }}' as date){%- endmacro %}
{% macro days_in_period() -%}(date_diff('day', {{ period_start() }}, {{ period_end() }})){%- endmacro %}
