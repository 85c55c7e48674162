-- Experts resolved across registries: one row per pseudonym. The pseudonym is a keyed hash of
-- the citizen id (or of the normalised name and birth year when that was all there was), so the
-- same person registered in two provinces is one row and no identifier reaches the marts.
with experts as (
    select
        expert.expert_pseudonym,
        expert.pseudonym_basis,
        expert.source_id,
        expert.record_id,
        expert.gender,
        expert.birth_year,
        expert.degree,
        expert.academic_title,
        expert.field_code,
        expert.specialisation,
        expert.organisation_name,
        {{ organisation_name_key('expert.organisation_name') }} as organisation_name_key,
        expert.province_code,
        prov.current_province_code as province_code_current,
        expert.registered_date,
        expert.source_updated_at,
        expert.visible_at,
        expert.landed_id
    from {{ ref('int_experts_versioned') }} as expert
    left join {{ ref('int_admin_provinces_dated') }} as prov
        on
            expert.province_code = prov.code
            and {{ valid_on('prov', 'expert.unit_date') }}
    where
        {{ current_versions('expert') }}
        and expert.expert_pseudonym is not null
),

-- An organisation name resolves where its name and province lead to exactly one organisation
-- (as the name_province rule; ambiguous names resolve to none).
organisation_names as (
    select
        name_key,
        province_code_current,
        min(organisation_key) as organisation_key
    from {{ ref('int_organisations_resolved') }}
    where
        name_key is not null
        and province_code_current is not null
        and match_rule != 'name_province_ambiguous'
    group by name_key, province_code_current
    having count(distinct organisation_key) = 1
),

ranked as (
    select
        experts.*,
        row_number() over (
            partition by experts.expert_pseudonym
            order by
                experts.registered_date desc nulls last,
                experts.source_updated_at desc,
                experts.landed_id desc
        ) as registration_rank
    from experts
),

registrations as (
    select
        expert_pseudonym,
        array_agg(distinct source_id order by source_id) as source_ids,
        count(*) as registration_count,
        min(registered_date) as first_registered_date,
        min(visible_at) as first_seen_at
    from experts
    group by expert_pseudonym
)

select
    latest.expert_pseudonym as expert_key,
    latest.pseudonym_basis,
    case latest.pseudonym_basis
        when 'citizen_id' then 'citizen_id'
        when 'name_birth_year' then 'name_birth_year'
    end as match_rule,
    case latest.pseudonym_basis
        when 'citizen_id' then 1.0
        when 'name_birth_year' then 0.8
    end::numeric(3, 2) as match_confidence,
    registrations.source_ids,
    registrations.registration_count,
    latest.gender,
    latest.birth_year,
    -- Degree, title and workplace as of the latest registration.
    latest.degree,
    latest.academic_title,
    latest.field_code,
    latest.specialisation,
    latest.organisation_name,
    organisation_names.organisation_key,
    latest.province_code_current,
    registrations.first_registered_date,
    latest.registered_date as latest_registered_date,
    registrations.first_seen_at
from ranked as latest
inner join registrations
    on latest.expert_pseudonym = registrations.expert_pseudonym
left join organisation_names
    on
        latest.organisation_name_key = organisation_names.name_key
        and latest.province_code_current = organisation_names.province_code_current
where latest.registration_rank = 1
