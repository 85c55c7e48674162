{#- Like current_versions(), but keeps a record whose current version is a deletion: a deal
    still names the listing it came from after the exchange withdrew that listing. -#}
{% macro current_versions_incl_deleted(alias) -%}
    {%- if var('published_before', none) -%}
    {{ alias }}.visible_at <= {{ cutoff_literal() }}
    and ({{ alias }}.superseded_at is null or {{ alias }}.superseded_at > {{ cutoff_literal() }})
    {%- else -%}
    {{ alias }}.superseded_at is null
    {%- endif %}
{%- endmacro %}
