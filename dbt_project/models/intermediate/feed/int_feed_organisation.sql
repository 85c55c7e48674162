-- Organisations (tổ chức KH&CN, doanh nghiệp) as national records (feed_organisation): every
-- resolved organisation, keyed by its enterprise code (MST); one without an MST has no national
-- key and is listed in feed_unplaced. Its province: today's (dim_organisation), else the one
-- most of its mentions' sources serve (an enterprise only named as a deal's buyer on the
-- Ninh Bình exchange is Ninh Bình's), else none (feed_unplaced).
with mention_provinces as (
    select
        mention.organisation_key,
        feeding_source.province_code,
        row_number() over (
            partition by mention.organisation_key
            order by count(*) desc, feeding_source.province_code
        ) as province_rank
    from {{ ref('bridge_organisation_mention') }} as mention
    inner join {{ ref('dim_source') }} as feeding_source
        on mention.source_id = feeding_source.source_id
    where feeding_source.province_code is not null
    group by mention.organisation_key, feeding_source.province_code
),

organisation as (
    select
        org.*,
        coalesce(org.province_code_current, mention_provinces.province_code)
            as feed_province_code
    from {{ ref('dim_organisation') }} as org
    left join mention_provinces
        on
            org.organisation_key = mention_provinces.organisation_key
            and mention_provinces.province_rank = 1
)

select
    organisation.feed_province_code as province_code,
    organisation.enterprise_code as record_key,
    jsonb_build_object(
        'mst', organisation.enterprise_code,
        'parent_mst', organisation.parent_enterprise_code,
        'name', organisation.name,
        'org_type', organisation.org_type,
        'intermediary_kind', organisation.intermediary_kind,
        'ownership', organisation.ownership,
        'vsic_version', organisation.vsic_version,
        'vsic_code', organisation.vsic_code,
        'province_code', organisation.feed_province_code,
        'st_registration_date', organisation.st_registration_date,
        'established_date', organisation.established_date,
        'is_registered', organisation.is_registered
    ) as payload,
    null::text as source_id,
    null::text as record_id,
    null::bigint as landed_id,
    organisation.organisation_key as warehouse_key
from organisation
