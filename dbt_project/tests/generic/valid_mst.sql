{#- Enterprise codes (when present) that are not 10 digits (or 10-3 for a branch) with a valid
    mod-11 check digit (ops.mst_valid, the same check the quality gate applies). -#}
{% test valid_mst(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null and not coalesce(ops.mst_valid({{ column_name }}), false)
{% endtest %}
