{#-
  Unix seconds (Stripe's `created`) → a naive UTC timestamp, like every timestamp in
  the warehouse. make_timestamp(microseconds) ignores the session time zone, which
  to_timestamp's TIMESTAMPTZ would not. Dispatched, so another engine can say it its way.
-#}
{% macro unix_to_utc(column) -%}
    {{ return(adapter.dispatch('unix_to_utc')(column)) }}
{%- endmacro %}

{% macro default__unix_to_utc(column) -%}
    make_timestamp(cast({{ column }} as bigint) * 1000000)
{%- endmacro %}
