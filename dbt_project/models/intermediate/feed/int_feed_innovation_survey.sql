-- Enterprise innovation survey answers (điều tra ĐMST) as national records
-- (feed_innovation_survey), keyed `<province>:<survey_code>` on today's province (its own, else
-- its registry's), with the enterprise's VSIC code and version.
with survey as (
    select
        fct.*,
        coalesce(fct.province_code_current, registry.province_code) as feed_province_code
    from {{ ref('fct_innovation_survey') }} as fct
    left join {{ ref('dim_source') }} as registry
        on fct.source_id = registry.source_id
)

select
    survey.feed_province_code as province_code,
    survey.feed_province_code || ':' || survey.survey_code as record_key,
    jsonb_build_object(
        'survey_code', survey.survey_code,
        'enterprise_mst', coalesce(enterprise.enterprise_code, survey.enterprise_code),
        'enterprise_name', survey.enterprise_name,
        'survey_year', survey.survey_year,
        'innovation_activity', survey.innovation_activity,
        'innovation_kinds', survey.innovation_kinds,
        'employees', survey.employees,
        'rd_expenditure_million_vnd', survey.rd_expenditure_million_vnd,
        'vsic_version', survey.vsic_version,
        'vsic_code', survey.vsic_code,
        'submitted_date', survey.submitted_date,
        'province_code', survey.feed_province_code,
        'province_code_recorded', survey.province_code,
        'commune_code', survey.commune_code_current,
        'commune_code_recorded', survey.commune_code,
        'recorded_units_date', survey.unit_date,
        'origin_registry', survey.origin_registry
    ) as payload,
    survey.source_id,
    survey.survey_code as record_id,
    survey.landed_id,
    survey.innovation_survey_key as warehouse_key
from survey
left join {{ ref('dim_organisation') }} as enterprise
    on survey.organisation_key = enterprise.organisation_key
