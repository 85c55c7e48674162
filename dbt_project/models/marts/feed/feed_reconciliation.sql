-- The national feed reconciled per province and entity, as of this build: the published
-- records and what the national side acknowledged (ops.feed_record_state), each as a count and
-- the intake's order-independent checksum, the differing records by kind
-- (feed_reconciliation_difference lists them) and how to resolve them.
{%- set entities = national_feed_entity_names() %}
{%- set kinds = ['not_sent', 'changed', 'tombstone_pending', 'rejected'] %}
with published as (
    {%- for entity in entities %}
        select
            province_code,
            entity,
            count(*) as record_count,
            {{ feed_checksum('record_key', 'content_digest') }} as record_checksum
        from {{ ref('feed_' ~ entity) }}
        group by province_code, entity
        {{ 'union all' if not loop.last }}
    {%- endfor %}
),

acknowledged as (
    select
        province_code,
        entity,
        count(*) as record_count,
        {{ feed_checksum('record_key', 'content_digest') }} as record_checksum
    from {{ source('ops', 'feed_record_state') }}
    group by province_code, entity
),

differences as (
    select
        province_code,
        entity,
        count(*) filter (where kind = 'not_sent') as not_sent_count,
        count(*) filter (where kind = 'changed') as changed_count,
        count(*) filter (where kind = 'tombstone_pending') as tombstone_pending_count,
        count(*) filter (where kind = 'rejected') as rejected_count
    from {{ ref('feed_reconciliation_difference') }}
    group by province_code, entity
),

feeds as (
    select
        coalesce(published.province_code, acknowledged.province_code) as province_code,
        coalesce(published.entity, acknowledged.entity) as entity,
        coalesce(published.record_count, 0) as published_count,
        coalesce(published.record_checksum, 0) as published_checksum,
        coalesce(acknowledged.record_count, 0) as acknowledged_count,
        coalesce(acknowledged.record_checksum, 0) as acknowledged_checksum
    from published
    full outer join acknowledged
        on
            published.province_code = acknowledged.province_code
            and published.entity = acknowledged.entity
),

counted as (
    select
        feeds.*,
        {%- for kind in kinds %}
            coalesce(differences.{{ kind }}_count, 0) as {{ kind }}_count,
        {%- endfor %}
        coalesce(differences.not_sent_count, 0)
        + coalesce(differences.changed_count, 0)
        + coalesce(differences.tombstone_pending_count, 0) as difference_count
    from feeds
    left join differences
        on
            feeds.province_code = differences.province_code
            and feeds.entity = differences.entity
)

select
    counted.province_code,
    province.name as province_name,
    counted.entity,
    entities.national_database,
    counted.published_count,
    counted.published_checksum,
    counted.acknowledged_count,
    counted.acknowledged_checksum,
    counted.not_sent_count,
    counted.changed_count,
    counted.tombstone_pending_count,
    counted.rejected_count as rejected_open_count,
    counted.difference_count,
    counted.published_count = counted.acknowledged_count
    and counted.published_checksum = counted.acknowledged_checksum as is_reconciled,
    control.paused_at,
    coalesce(
        nullif(concat_ws(
            '; ',
            case
                when control.paused_at is not null
                    then
                        'the feed is paused since ' || to_char(
                            control.paused_at at time zone 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD HH24:MI'
                        ) || coalesce(' (' || control.paused_reason || ')', '')
                        || ': nothing is sent until it is resumed'
            end,
            {%- for kind in kinds %}
                case
                    when counted.{{ kind }}_count > 0
                        then
                            counted.{{ kind }}_count || ' {{ kind | replace("_", " ") }}: '
                            || {{ kpi_literal(feed_resolution(kind)) }}
                end
                {{- ',' if not loop.last }}
            {%- endfor %}
        ), ''),
        'nothing to resolve: the national side acknowledged every published record as published'
    ) as how_to_resolve
from counted
left join {{ ref('national_feed_entities') }} as entities
    on counted.entity = entities.entity
left join {{ ref('dim_province') }} as province
    on counted.province_code = province.code and province.is_current
left join {{ source('ops', 'feed_control') }} as control
    on counted.province_code = control.province_code and counted.entity = control.entity
