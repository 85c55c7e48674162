{#- Elements of a text[] column outside a code list (accepted_values for arrays). -#}
{% test array_values_in(model, column_name, values) %}
select element
from {{ model }}
cross join lateral unnest({{ column_name }}) as element
where element not in ({% for v in values %}'{{ v }}'{% if not loop.last %}, {% endif %}{% endfor %})
{% endtest %}
