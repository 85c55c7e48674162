{#- Every element of a text[] column matches a national format (POSIX regular expression). -#}
{% test array_elements_match_pattern(model, column_name, pattern) %}
select element.value
from (select {{ column_name }} as checked_values from {{ model }}) as checked
cross join lateral unnest(checked.checked_values) as element (value)
where element.value is null or element.value !~ '{{ pattern }}'
{% endtest %}
