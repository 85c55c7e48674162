-- Published records the national feed cannot carry, one row per record, with why and how to
-- resolve it: no province (province_code of a feed record is never null), no national key, or
-- a national key another record already holds. Nothing is dropped silently: every candidate of
-- int_feed_<entity> is in feed_<entity> or here.
{%- set entities = national_feed_entity_names() %}
with candidates as (
    {%- for entity in entities %}
        select
            {{ kpi_literal(entity) }}::text as entity,
            candidate.province_code,
            candidate.record_key,
            candidate.source_id,
            candidate.record_id,
            candidate.landed_id,
            candidate.warehouse_key,
            row_number() over (
                partition by candidate.record_key, candidate.province_code is not null
                order by {{ feed_precedence('candidate') }}
            ) as key_rank
        from {{ ref('int_feed_' ~ entity) }} as candidate
        {{ 'union all' if not loop.last }}
    {%- endfor %}
),

unplaced as (
    select
        candidates.*,
        case
            when candidates.province_code is null then 'no_province'
            when candidates.record_key is null then 'no_record_key'
            else 'duplicate_record_key'
        end as reason
    from candidates
    where
        candidates.province_code is null
        or candidates.record_key is null
        or candidates.key_rank > 1
)

select
    unplaced.entity,
    unplaced.reason,
    unplaced.province_code,
    unplaced.record_key,
    unplaced.source_id,
    unplaced.record_id,
    unplaced.landed_id,
    unplaced.warehouse_key,
    case unplaced.reason
        when 'no_province'
            then
                'no province on today''s boundaries: neither the record''s own nor its source''s'
                || case unplaced.entity
                    when 'organisation' then ' (the sources of the records naming it)'
                    when 'exchange_listing' then ' nor its supplier''s'
                    when 'technology_transaction' then ' nor its seller''s or buyer''s'
                    else ''
                end
                || ' is known. Record a valid province code (or the organisation''s enterprise'
                || ' code, whose registry gives its province) at '
                || coalesce('source ' || unplaced.source_id, 'the sources naming it')
                || '; it is fed from the next build'
        when 'no_record_key'
            then
                'no national key: the national organisations database keys organisations by'
                || ' their enterprise code (MST). Record the MST where the organisation is'
                || ' registered or named; it is fed from the next build'
        else
            'its national key ' || unplaced.record_key || ' is fed from another record (the'
            || ' latest landed): correct the key or retire the duplicate at '
            || coalesce('source ' || unplaced.source_id, 'its source')
    end as how_to_resolve
from unplaced
