-- Technology-capability assessments (đánh giá trình độ, năng lực công nghệ, TT 17/2019) as
-- national records (feed_capability_assessment), keyed `<province>:<assessment_code>` on
-- today's province (its own, else its registry's), with the five group scores T/E/O/R/I.
with assessment as (
    select
        fct.*,
        coalesce(fct.province_code_current, registry.province_code) as feed_province_code
    from {{ ref('fct_capability_assessment') }} as fct
    left join {{ ref('dim_source') }} as registry
        on fct.source_id = registry.source_id
)

select
    assessment.feed_province_code as province_code,
    assessment.feed_province_code || ':' || assessment.assessment_code as record_key,
    jsonb_build_object(
        'assessment_code', assessment.assessment_code,
        'enterprise_mst', coalesce(enterprise.enterprise_code, assessment.enterprise_code),
        'enterprise_name', assessment.enterprise_name,
        'vsic_version', assessment.vsic_version,
        'vsic_code', assessment.vsic_code,
        'assessment_year', assessment.assessment_year,
        'assessment_date', assessment.assessment_date,
        'total_score', assessment.total_score,
        'technology_level', assessment.technology_level,
        'group_score_t', assessment.group_score_t,
        'group_score_e', assessment.group_score_e,
        'group_score_o', assessment.group_score_o,
        'group_score_r', assessment.group_score_r,
        'group_score_i', assessment.group_score_i,
        'province_code', assessment.feed_province_code,
        'province_code_recorded', assessment.province_code,
        'commune_code', assessment.commune_code_current,
        'commune_code_recorded', assessment.commune_code,
        'recorded_units_date', assessment.unit_date,
        'origin_registry', assessment.origin_registry
    ) as payload,
    assessment.source_id,
    assessment.assessment_code as record_id,
    assessment.landed_id,
    assessment.capability_assessment_key as warehouse_key
from assessment
left join {{ ref('dim_organisation') }} as enterprise
    on assessment.organisation_key = enterprise.organisation_key
