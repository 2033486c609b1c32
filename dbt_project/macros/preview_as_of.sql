{#- The last usage day ingested for the month being rated: what a preview (marts.invoice_preview) is "as of".
    One expression on purpose: today it is the last UTC day with accepted usage in the month
    (stg_usage__daily, what ingestion aggregated); once daily ingestion records which day folders it
    ingested, this becomes the last of those, here and nowhere else (docs/decisions.md #81). -#}
{% macro preview_as_of() -%}
(select max(usage_date) from {{ ref('stg_usage__daily') }})
{%- endmacro %}
