-- Experts (chuyên gia) as national records (feed_expert), keyed by their pseudonymous key
-- (dim_expert.expert_key): no name, citizen id, phone, e-mail or birth year. Province: today's,
-- else the lowest province code among their registries'.
with expert as (
    select
        dim.*,
        coalesce(
            dim.province_code_current,
            (
                select min(registry.province_code)
                from {{ ref('dim_source') }} as registry
                where registry.source_id = any(dim.source_ids)
            )
        ) as feed_province_code
    from {{ ref('dim_expert') }} as dim
)

select
    expert.feed_province_code as province_code,
    expert.expert_key as record_key,
    jsonb_build_object(
        'expert_key', expert.expert_key,
        'key_basis', expert.match_rule,
        'gender', expert.gender,
        'degree', expert.degree,
        'academic_title', expert.academic_title,
        'research_field_code', expert.field_code,
        'specialisation', expert.specialisation,
        'organisation_mst', org.enterprise_code,
        'organisation_name', expert.organisation_name,
        'province_code', expert.feed_province_code,
        'first_registered_date', expert.first_registered_date,
        'latest_registered_date', expert.latest_registered_date
    ) as payload,
    null::text as source_id,
    null::text as record_id,
    null::bigint as landed_id,
    expert.expert_key as warehouse_key
from expert
left join {{ ref('dim_organisation') }} as org
    on expert.organisation_key = org.organisation_key
