-- Enterprise innovation surveys (điều tra ĐMST trong doanh nghiệp) from provincial registries
-- (registry API v1): every published version, typed.
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
    landed.record_id as survey_code,
    landed.record ->> 'enterprise_code' as enterprise_code,
    nullif(btrim(landed.record ->> 'enterprise_name'), '') as enterprise_name,
    (landed.record ->> 'survey_year')::integer as survey_year,
    landed.record ->> 'vsic_version' as vsic_version,
    landed.record ->> 'vsic_code' as vsic_code,
    (landed.record ->> 'employees')::integer as employees,
    (landed.record ->> 'innovation_activity')::boolean as innovation_activity,
    array(
        select jsonb_array_elements_text(landed.record -> 'innovation_kinds')
    ) as innovation_kinds,
    (landed.record ->> 'rd_expenditure_million_vnd')::numeric(18, 3) as rd_expenditure_million_vnd,
    (landed.record ->> 'submitted_date')::date as submitted_date,
    landed.record ->> 'province_code' as province_code,
    landed.record ->> 'commune_code' as commune_code,
    landed.record ->> 'origin_registry' as origin_registry,
    -- The date the unit codes refer to, as the gate checks them: the submission.
    (landed.record ->> 'submitted_date')::date as unit_date
from ({{ published_records('registry-api-v1', 'innovation_survey') }}) as landed
