{#- The cutoff of a write–audit–publish build: the var `published_before` (a timestamp, set by
    the warehouse DAG and local.dbt.build_and_publish from the build's row in
    ops.warehouse_publish). Staging reads only the load batches the gate published up to it, so
    ops.load_batch.publish_id says exactly which batches each publish included. Without the var
    (a plain `dbt build`), every published batch. -#}
{% macro published_by_cutoff(published_at) -%}
    {%- set cutoff = var('published_before', none) -%}
    {%- if cutoff -%}
        {{ published_at }} <= '{{ cutoff | string | replace("'", "''") }}'::timestamptz
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
