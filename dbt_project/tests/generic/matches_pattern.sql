{#- Values (when present) that do not match a national format, e.g. an IP application number
    `^[1-4]-[0-9]{4}-[0-9]{5}$` or a province code `^[0-9]{2}$`. -#}
{% test matches_pattern(model, column_name, pattern) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null and {{ column_name }}::text !~ '{{ pattern }}'
{% endtest %}
