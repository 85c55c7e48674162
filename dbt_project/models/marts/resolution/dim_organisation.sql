-- Organisations resolved across registries, exchanges and provinces: one row per
-- organisation_key of int_organisations_resolved, described by the registry's own record
-- where there is one, else by what the mentions say most often.
with resolved as (
    select * from {{ ref('int_organisations_resolved') }}
),

-- The registry's record of the organisation (the latest changed, when several registries or
-- records resolve to it).
registered as (
    select
        resolved.organisation_key,
        org.name,
        org.org_type,
        org.intermediary_kind,
        org.ownership,
        org.vsic_version,
        org.vsic_code,
        org.st_registration_date,
        org.established_date,
        resolved.province_code_current,
        row_number() over (
            partition by resolved.organisation_key
            order by org.source_updated_at desc, org.landed_id desc
        ) as registration_rank
    from resolved
    inner join {{ ref('int_organisations_versioned') }} as org
        on resolved.landed_id = org.landed_id
    where resolved.role = 'registered'
),

name_counts as (
    select
        organisation_key,
        name,
        name_key,
        row_number() over (
            partition by organisation_key
            order by count(*) desc, max(source_updated_at) desc, name
        ) as name_rank
    from resolved
    where name is not null
    group by organisation_key, name, name_key
),

province_counts as (
    select
        organisation_key,
        province_code_current,
        row_number() over (
            partition by organisation_key
            order by count(*) desc, max(source_updated_at) desc, province_code_current
        ) as province_rank
    from resolved
    where province_code_current is not null
    group by organisation_key, province_code_current
),

organisations as (
    select
        organisation_key,
        max(matched_enterprise_code) as enterprise_code,
        max(parent_enterprise_code) as parent_enterprise_code,
        -- The strongest rule that put a mention here: 'mst' for a coded organisation; an
        -- organisation keyed on its name has one rule for all its mentions.
        (array_agg(match_rule order by match_confidence desc))[1] as match_rule,
        max(match_confidence) as match_confidence,
        min(visible_at) as first_seen_at,
        count(*) as mention_count,
        count(distinct source_id) as source_count
    from resolved
    group by organisation_key
)

select
    organisations.organisation_key,
    organisations.enterprise_code,
    organisations.parent_enterprise_code,
    coalesce(registered.name, name_counts.name) as name,  -- noqa: RF04
    coalesce({{ organisation_name_key('registered.name') }}, name_counts.name_key) as name_key,
    coalesce(
        registered.org_type,
        case when organisations.enterprise_code is not null then 'enterprise' end,
        'unknown'
    ) as org_type,
    registered.intermediary_kind,
    registered.ownership,
    registered.vsic_version,
    registered.vsic_code,
    coalesce(registered.province_code_current, province_counts.province_code_current)
        as province_code_current,
    registered.st_registration_date,
    registered.established_date,
    registered.organisation_key is not null as is_registered,
    organisations.first_seen_at,
    organisations.match_rule,
    organisations.match_confidence,
    organisations.mention_count,
    organisations.source_count
from organisations
left join registered
    on
        organisations.organisation_key = registered.organisation_key
        and registered.registration_rank = 1
left join name_counts
    on
        organisations.organisation_key = name_counts.organisation_key
        and name_counts.name_rank = 1
left join province_counts
    on
        organisations.organisation_key = province_counts.organisation_key
        and province_counts.province_rank = 1
