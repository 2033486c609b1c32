{#- A column that must stay empty: marts.invoice_preview's invoice_number (a preview is never numbered). -#}
{% test is_null(model, column_name) %}
select * from {{ model }} where {{ column_name }} is not null
{% endtest %}
