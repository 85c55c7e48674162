-- Technology-capability assessments (đánh giá trình độ, năng lực công nghệ, TT 17/2019) from
-- provincial registries (registry API v1): every published version, typed. The 26 criterion
-- scores stay a jsonb object (fct_capability_criterion_score unpivots them).
select
    landed.landed_id,
    landed.batch_id,
    landed.source_id,
    landed.record_id,
    landed.version,
    landed.source_updated_at,
    landed.is_deleted,
    landed.extracted_at,
    landed.visible_at,
    landed.record_id as assessment_code,
    landed.record ->> 'enterprise_code' as enterprise_code,
    nullif(btrim(landed.record ->> 'enterprise_name'), '') as enterprise_name,
    landed.record ->> 'vsic_version' as vsic_version,
    landed.record ->> 'vsic_code' as vsic_code,
    (landed.record ->> 'assessment_year')::integer as assessment_year,
    (landed.record ->> 'assessment_date')::date as assessment_date,
    (landed.record #>> '{group_scores,T}')::numeric(5, 1) as group_score_t,
    (landed.record #>> '{group_scores,E}')::numeric(5, 1) as group_score_e,
    (landed.record #>> '{group_scores,O}')::numeric(5, 1) as group_score_o,
    (landed.record #>> '{group_scores,R}')::numeric(5, 1) as group_score_r,
    (landed.record #>> '{group_scores,I}')::numeric(5, 1) as group_score_i,
    (landed.record ->> 'total_score')::numeric(5, 1) as total_score,
    landed.record -> 'criteria_scores' as criteria_scores,
    landed.record ->> 'technology_level' as technology_level,
    landed.record ->> 'province_code' as province_code,
    landed.record ->> 'commune_code' as commune_code,
    landed.record ->> 'origin_registry' as origin_registry,
    -- The date the unit codes refer to, as the gate checks them: the assessment.
    (landed.record ->> 'assessment_date')::date as unit_date
from ({{ published_records('registry-api-v1', 'capability_assessment') }}) as landed
