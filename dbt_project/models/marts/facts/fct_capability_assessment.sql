{{ config(materialized="view") }}

-- Current technology-capability assessments (TT 17/2019), one row per assessment, with the
-- five group scores as columns (criterion scores: fct_capability_criterion_score).
select
    assessment.capability_assessment_key,
    assessment.source_id,
    org.organisation_key,
    assessment.assessment_code,
    assessment.enterprise_code,
    assessment.enterprise_name,
    assessment.vsic_version,
    assessment.vsic_code,
    assessment.assessment_year,
    assessment.assessment_date,
    assessment.total_score,
    assessment.technology_level,
    assessment.group_score_t,
    assessment.group_score_e,
    assessment.group_score_o,
    assessment.group_score_r,
    assessment.group_score_i,
    assessment.province_code,
    prov.current_province_code as province_code_current,
    assessment.commune_code,
    comm.current_commune_code as commune_code_current,
    assessment.origin_registry,
    assessment.unit_date,
    assessment.version,
    assessment.source_updated_at,
    assessment.batch_id,
    assessment.landed_id,
    assessment.visible_at
from {{ ref('int_capability_assessments_versioned') }} as assessment
left join {{ ref('dim_province') }} as prov
    on assessment.province_code = prov.code and {{ valid_on('prov', 'assessment.unit_date') }}
left join {{ ref('dim_commune') }} as comm
    on assessment.commune_code = comm.code and {{ valid_on('comm', 'assessment.unit_date') }}
{{ join_organisation('assessment', 'capability_assessment', 'enterprise', 'org') }}
where {{ current_versions('assessment') }}
