{#- Version tables (models/intermediate/versioned/, schema `history`): every published version
    of every record of an entity, appended incrementally, never rewritten. A version is current
    until a higher one of the same record becomes visible: `superseded_at` is then set to the
    moment it did. The highest version wins whatever order versions are landed in: one landed
    after a higher one is superseded the moment it becomes visible (kept, never current), so an
    older version landed after a deletion does not bring the record back (the data test
    current_version_is_highest). The facts in marts are views over these tables that show the
    versions current at the build's cutoff, so:
    - an incremental build reads only the batches not yet in the table (and rows the quarantine
      released since), whatever the table's size;
    - a build that fails its tests leaves every published view as it was: rows visible after a
      published build's cutoff are not in its views, and superseded_at only ever gets a time
      after that cutoff.
    `full_refresh: false` keeps `dbt build --full-refresh` from dropping them (and the published
    views over them); rebuild one by dropping it explicitly. -#}

{#- config() of a version table. -#}
{% macro versioned_config() -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'append',
        'schema': 'history',
        'full_refresh': false,
        'on_schema_change': 'append_new_columns',
        'indexes': [
            {'columns': ['landed_id'], 'unique': true},
            {'columns': ['batch_id']},
            {'columns': ['source_id', 'record_id']},
            {'columns': ['loaded_by']},
        ],
        'post_hook': ['{{ supersede_versions() }}'],
    }) }}
{%- endmacro %}

{#- The filter of an incremental run: rows of published batches the table has none of yet, and
    rows the quarantine released (replay) since. Written as `= any(array(...))` so PostgreSQL
    evaluates each list once and reads the landed rows through their indexes. -#}
{% macro not_yet_versioned(alias, entity) -%}
    {%- if is_incremental() -%}
    (
        {{ alias }}.batch_id = any(array(
            select batch.batch_id
            from {{ source('ops', 'load_batch') }} as batch
            where
                batch.state = 'published'
                and batch.entity = '{{ entity }}'
                and not exists (
                    select 1 from {{ this }} as seen where seen.batch_id = batch.batch_id
                )
        ))
        or {{ alias }}.landed_id = any(array(
            select released.landed_id
            from {{ source('ops', 'quarantine') }} as released
            where
                released.entity = '{{ entity }}'
                and released.resolution like 'replayed:%'
                and not exists (
                    select 1 from {{ this }} as seen where seen.landed_id = released.landed_id
                )
        ))
    )
    and not exists (
        select 1 from {{ this }} as seen where seen.landed_id = {{ alias }}.landed_id
    )
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- Columns every version table ends with. -#}
{% macro version_columns(alias) -%}
    {{ alias }}.visible_at,
    null::timestamptz as superseded_at,
    '{{ invocation_id }}'::text as loaded_by,
    '{{ run_started_at }}'::timestamptz as loaded_at
{%- endmacro %}

{#- Post-hook: among the current versions of the records this run touched, all but the latest
    (highest version, then latest source update, then latest landing) are superseded at the
    moment the latest became visible (or their own, for a late older version). -#}
{% macro supersede_versions() -%}
    with touched as (
        select distinct source_id, record_id
        from {{ this }}
        where loaded_by = '{{ invocation_id }}'
    ),

    ranked as (
        select
            versions.landed_id,
            versions.visible_at,
            row_number() over latest_first as version_rank,
            first_value(versions.visible_at) over latest_first as latest_visible_at
        from {{ this }} as versions
        inner join touched
            on versions.source_id = touched.source_id and versions.record_id = touched.record_id
        where versions.superseded_at is null
        window latest_first as (
            partition by versions.source_id, versions.record_id
            order by versions.version desc, versions.source_updated_at desc,
                versions.landed_id desc
        )
    )

    update {{ this }} as versions
    set superseded_at = greatest(ranked.latest_visible_at, ranked.visible_at)
    from ranked
    where ranked.landed_id = versions.landed_id and ranked.version_rank > 1
{%- endmacro %}

{#- Filter of a fact view over a version table: the versions current at the build's cutoff (or
    now, outside a write–audit–publish build), deletions excluded. -#}
{% macro current_versions(alias) -%}
    {%- if var('published_before', none) -%}
    {{ alias }}.visible_at <= {{ cutoff_literal() }}
    and ({{ alias }}.superseded_at is null or {{ alias }}.superseded_at > {{ cutoff_literal() }})
    {%- else -%}
    {{ alias }}.superseded_at is null
    {%- endif %}
    and not {{ alias }}.is_deleted
{%- endmacro %}
