-- Every record on which the published feed and the national side's acknowledged state
-- (ops.feed_record_state) differ, as of this build, with the open national rejection if any
-- and how to resolve it. The kinds are those of connectors/national_reconcile.py.
{%- set entities = national_feed_entity_names() %}
with published as (
    {%- for entity in entities %}
        select
            province_code,
            entity,
            record_key,
            content_digest,
            source_id,
            record_id
        from {{ ref('feed_' ~ entity) }}
        {{ 'union all' if not loop.last }}
    {%- endfor %}
),

acknowledged as (
    select
        province_code,
        entity,
        record_key,
        content_digest
    from {{ source('ops', 'feed_record_state') }}
),

-- The latest open rejection of each record (of any version), for its reason.
latest_rejection as (
    select distinct on (entity, record_key)
        entity,
        record_key,
        content_digest,
        reason_code,
        reason,
        reason_vi,
        source_id,
        record_id
    from {{ source('ops', 'feed_rejection') }}
    where resolved_at is null
    order by entity asc, record_key asc, rejected_at desc, rejection_id desc
),

compared as (
    select
        coalesce(published.province_code, acknowledged.province_code) as province_code,
        coalesce(published.entity, acknowledged.entity) as entity,
        coalesce(published.record_key, acknowledged.record_key) as record_key,
        published.content_digest as published_digest,
        acknowledged.content_digest as acknowledged_digest,
        published.source_id,
        published.record_id,
        case
            -- The national side rejected this very version: it is not sent again until it
            -- changes (the publisher's rule).
            when exists (
                select 1
                from {{ source('ops', 'feed_rejection') }} as rejection
                where
                    rejection.entity = published.entity
                    and rejection.record_key = published.record_key
                    and rejection.content_digest = published.content_digest
                    and rejection.resolved_at is null
            ) then 'rejected'
            when acknowledged.record_key is null then 'not_sent'
            when published.record_key is null then 'tombstone_pending'
            else 'changed'
        end as kind
    from published
    full outer join acknowledged
        on
            published.entity = acknowledged.entity
            and published.record_key = acknowledged.record_key
    where
        published.content_digest is distinct from acknowledged.content_digest
        or published.province_code is distinct from acknowledged.province_code
)

select
    compared.province_code,
    compared.entity,
    compared.record_key,
    compared.kind,
    compared.published_digest,
    compared.acknowledged_digest,
    coalesce(compared.source_id, latest_rejection.source_id) as source_id,
    coalesce(compared.record_id, latest_rejection.record_id) as record_id,
    latest_rejection.reason_code as open_rejection_reason_code,
    latest_rejection.reason as open_rejection_reason,
    latest_rejection.reason_vi as open_rejection_reason_vi,
    case compared.kind
        when 'not_sent' then {{ kpi_literal(feed_resolution('not_sent')) }}
        when 'changed' then {{ kpi_literal(feed_resolution('changed')) }}
        when 'tombstone_pending' then {{ kpi_literal(feed_resolution('tombstone_pending')) }}
        when 'rejected' then {{ kpi_literal(feed_resolution('rejected')) }}
    end as how_to_resolve
from compared
left join latest_rejection
    on
        compared.entity = latest_rejection.entity
        and compared.record_key = latest_rejection.record_key
