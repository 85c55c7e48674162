-- Every feed record's content_digest is the SHA-256 of its payload's text, and its payload
-- names the record's province (today's) as the feed row does.
{%- set entities = national_feed_entity_names() %}
{%- for entity in entities %}
    select
        entity,
        record_key
    from {{ ref('feed_' ~ entity) }}
    where
        content_digest <> {{ feed_digest('payload') }}
        or payload ->> 'province_code' is distinct from province_code
        or entity <> {{ kpi_literal(entity) }}
    {{ 'union all' if not loop.last }}
{%- endfor %}
