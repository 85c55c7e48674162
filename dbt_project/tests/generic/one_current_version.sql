{#- A version table holds at most one current version (superseded_at null) per record key. -#}
{% test one_current_version(model, key) %}
select {{ key }}, count(*) as current_versions
from {{ model }}
where superseded_at is null
group by {{ key }}
having count(*) > 1
{% endtest %}
