{{ config(indexes=[
    {"columns": ["mention_key"], "unique": true},
    {"columns": ["source_id", "record_id"]},
    {"columns": ["organisation_key"]},
]) }}

-- Each organisation mention resolved to an organisation_key, with the rule that matched it and
-- its confidence (rules in _resolution__models.yml). One pass over the mentions: two grouped
-- candidate lists and hash joins, no per-row lookups.
with mentions as (
    select * from {{ ref('int_organisation_mentions_unioned') }}
),

-- Organisations identified by a valid enterprise code, under each name and province they were
-- mentioned with (an organisation may be written several ways).
code_candidates as (
    select
        name_key,
        province_code_current,
        count(distinct enterprise_code) as organisation_count,
        min(enterprise_code) as enterprise_code
    from mentions
    where
        enterprise_code is not null
        and name_key is not null
        and province_code_current is not null
    group by name_key, province_code_current
),

-- Organisations on a registry without a valid code (public institutes, universities...).
registered_candidates as (
    select distinct
        name_key,
        province_code_current
    from mentions
    where
        role = 'registered'
        and enterprise_code is null
        and name_key is not null
        and province_code_current is not null
),

matched as (
    select
        mentions.*,
        case
            when mentions.enterprise_code is not null then 'mst'
            when code_candidates.organisation_count = 1 then 'name_province'
            -- Several coded organisations share the name here: never pick one.
            when code_candidates.organisation_count > 1 then 'name_province_ambiguous'
            when registered_candidates.name_key is not null then 'name_province'
            else 'name_province_only'
        end as match_rule,
        case
            when mentions.enterprise_code is not null then mentions.enterprise_code
            when code_candidates.organisation_count = 1 then code_candidates.enterprise_code
        end as matched_enterprise_code
    from mentions
    left join code_candidates
        on
            mentions.name_key = code_candidates.name_key
            and mentions.province_code_current = code_candidates.province_code_current
            and mentions.enterprise_code is null
    left join registered_candidates
        on
            mentions.name_key = registered_candidates.name_key
            and mentions.province_code_current = registered_candidates.province_code_current
            and mentions.enterprise_code is null
)

select
    matched.mention_key,
    case
        when matched.matched_enterprise_code is not null
            then md5('mst|' || matched.matched_enterprise_code)
        -- Without a code, an organisation is its name in its (today's) province; no province
        -- (exchange transactions) gives a name-only key.
        else md5(
            'name|' || matched.name_key || '|' || coalesce(matched.province_code_current, '')
        )
    end as organisation_key,
    matched.match_rule,
    case matched.match_rule
        when 'mst' then 1.0
        when 'name_province' then 0.9
        when 'name_province_only' then 0.7
        when 'name_province_ambiguous' then 0.5
    end::numeric(3, 2) as match_confidence,
    matched.matched_enterprise_code,
    matched.source_id,
    matched.entity,
    matched.record_id,
    matched.role,
    matched.name,
    matched.name_key,
    matched.enterprise_code,
    matched.enterprise_code_as_sent,
    matched.parent_enterprise_code,
    matched.province_code,
    matched.unit_date,
    matched.province_code_current,
    matched.source_updated_at,
    matched.visible_at,
    matched.landed_id
from matched
