{#- Which rows a generic data test checks. dbt wraps each test's model in get_where_subquery(); this
    override keeps dbt's `where` config and, without one, scopes the tests of the large
    relations to the rows this build added, so a build's tests cost in proportion to the change:

    - staging views (stg_*): rows of batches published since the last published build;
    - version tables (*_versioned) and snapshots (snap_*): rows loaded since then;
    - facts (fct_*): rows visible since then.

    Rows are checked when they arrive (and again in the next build if this one was not
    published); the first build, and any build with the var `test_all_rows` true, check every
    row. one_current_version and current_version_is_highest always see the whole version table
    (they compare new versions with the old ones). Dimensions, bridges, marts built in full and
    relationships' parents are never scoped. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set name = relation.identifier | default('', true) | string -%}
    {%- set test_name = (model.get('test_metadata') or {}).get('name') if model is mapping -%}
    {%- set whole_table_tests = ['one_current_version', 'current_version_is_highest'] -%}
    {%- if not where and not var('test_all_rows', false) and test_name not in whole_table_tests -%}
        {%- if name.startswith('stg_') -%}
            {%- set where -%}
                batch_id = any(array(
                    select scope_batch.batch_id from {{ source('ops', 'load_batch') }} as scope_batch
                    where scope_batch.state = 'published'
                        and scope_batch.published_at > {{ last_published_cutoff() }}
                ))
            {%- endset -%}
        {%- elif name.endswith('_versioned') or name.startswith('snap_') -%}
            {%- set where = 'loaded_at > ' ~ last_published_cutoff() -%}
        {%- elif name.startswith('fct_') -%}
            {%- set where = 'visible_at > ' ~ last_published_cutoff() -%}
        {%- endif -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') as dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- The cutoff of the last published build: what it checked is already checked. -#}
{% macro last_published_cutoff() -%}
    (
        select coalesce(max(published.cutoff), '-infinity'::timestamptz)
        from {{ source('ops', 'warehouse_publish') }} as published
        where published.state = 'published'
    )
{%- endmacro %}
