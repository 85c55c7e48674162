{{ config(materialized="view") }}

-- Current experts as each registry registered them, under their pseudonym only: no name,
-- citizen id, phone or e-mail.
select
    expert.expert_key,
    expert.source_id,
    expert.record_id as expert_record_id,
    expert.expert_pseudonym,
    expert.pseudonym_basis,
    expert.gender,
    expert.birth_year,
    expert.degree,
    expert.academic_title,
    expert.field_code,
    expert.specialisation,
    expert.organisation_name,
    expert.province_code,
    prov.current_province_code as province_code_current,
    expert.registered_date,
    expert.origin_registry,
    expert.unit_date,
    expert.version,
    expert.source_updated_at,
    expert.batch_id,
    expert.landed_id,
    expert.visible_at
from {{ ref('int_experts_versioned') }} as expert
left join {{ ref('dim_province') }} as prov
    on expert.province_code = prov.code and {{ valid_on('prov', 'expert.unit_date') }}
where {{ current_versions('expert') }}
