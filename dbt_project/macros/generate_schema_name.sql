{#- Use the configured schema name as-is (staging, intermediate, marts, reference) so that
    analysts query stable schema names rather than target-prefixed ones.

    Write–audit–publish (connectors/warehouse_publish.py): the schemas analysts read (marts,
    reference) are built into `<name>__build` while the var `wap` is true (the default; the
    warehouse DAG and local.dbt.build_and_publish set it), and published from there only when
    the whole build passed. Staging and intermediate are internal and stay in place. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif custom_schema_name | trim in published_schemas() and wap_enabled() -%}
        {{ custom_schema_name | trim }}__build
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

{#- The schemas analysts read; connectors/warehouse_publish.py's PUBLISHED_SCHEMAS too. -#}
{% macro published_schemas() -%}
    {{ return(['marts', 'reference']) }}
{%- endmacro %}

{% macro wap_enabled() -%}
    {{ return(var('wap', true) | string | lower in ['true', '1', 'yes']) }}
{%- endmacro %}
