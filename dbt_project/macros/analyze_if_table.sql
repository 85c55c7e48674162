{#- Post-hook of every table dbt builds (dbt_project.yml): fresh statistics, so the next models'
    and tests' joins over millions of rows are planned as hash joins, not nested loops over an
    estimate of a few hundred rows. Views have no statistics of their own. -#}
{% macro analyze_if_table() -%}
    {%- if config.get('materialized') in ('table', 'incremental', 'snapshot') -%}
        analyze {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
