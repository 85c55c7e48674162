{#- Landed records the warehouse may read: in a load batch the gate published (up to the build's
    cutoff) and not withheld by the quarantine. A quarantined row is visible only once the gate
    released it on replay ("replayed: passes the current rules"); rows resolved as fixed or
    superseded by a later version stay out, since they themselves never passed.

    visible_at is when the row became visible (its batch's publication, or its release if
    later): version tables key their history on it, and a published build shows exactly the
    rows visible at its cutoff. -#}
{% macro published_records(contract, entity) -%}
    {%- set cutoff = var('published_before', none) -%}
    select
        landed.landed_id,
        landed.batch_id,
        landed.source_id,
        landed.record_id,
        landed.version,
        landed.updated_at as source_updated_at,
        landed.deleted as is_deleted,
        landed.extracted_at,
        greatest(batch.published_at, quarantine.released_at) as visible_at,
        landed.record
    from {{ source('raw', 'landed') }} as landed
    inner join {{ source('ops', 'load_batch') }} as batch
        on landed.batch_id = batch.batch_id
    left join (
        select
            landed_id,
            max(resolved_at) as released_at,
            bool_or(
                resolved_at is null
                or resolution not like 'replayed:%'
                {%- if cutoff %}
                or resolved_at > {{ cutoff_literal() }}
                {%- endif %}
            ) as withheld
        from {{ source('ops', 'quarantine') }}
        where entity = '{{ entity }}'
        group by landed_id
    ) as quarantine on landed.landed_id = quarantine.landed_id
    where
        batch.state = 'published'
        and batch.contract = '{{ contract }}'
        and batch.entity = '{{ entity }}'
        and landed.entity = '{{ entity }}'
        and landed.record_id is not null
        and {{ published_by_cutoff('batch.published_at') }}
        and not coalesce(quarantine.withheld, false)
{%- endmacro %}

{#- The build's cutoff as a SQL literal (only when the var is set). -#}
{% macro cutoff_literal() -%}
    '{{ var('published_before') | string | replace("'", "''") }}'::timestamptz
{%- endmacro %}
