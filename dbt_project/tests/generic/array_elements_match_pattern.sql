{#- Every element of a text[] column matches a national format (POSIX regular expression). -#}
{% test array_elements_match_pattern(model, column_name, pattern) %}
select checked.{{ column_name }}, element.value
from {{ model }} as checked
cross join lateral unnest(checked.{{ column_name }}) as element (value)
where element.value is null or element.value !~ '{{ pattern }}'
{% endtest %}
