{{ config(materialized="view") }}

-- Current enterprise innovation survey answers, one row per survey record (enterprise and
-- year in a registry): the basis of the "% enterprises with innovation activity" KPIs.
select
    survey.innovation_survey_key,
    survey.source_id,
    org.organisation_key,
    survey.survey_code,
    survey.enterprise_code,
    survey.enterprise_name,
    survey.survey_year,
    survey.innovation_activity,
    survey.innovation_kinds,
    survey.employees,
    survey.rd_expenditure_million_vnd,
    survey.vsic_version,
    survey.vsic_code,
    survey.submitted_date,
    survey.province_code,
    prov.current_province_code as province_code_current,
    survey.commune_code,
    comm.current_commune_code as commune_code_current,
    survey.origin_registry,
    survey.unit_date,
    survey.version,
    survey.source_updated_at,
    survey.batch_id,
    survey.landed_id,
    survey.visible_at
from {{ ref('int_innovation_surveys_versioned') }} as survey
left join {{ ref('dim_province') }} as prov
    on survey.province_code = prov.code and {{ valid_on('prov', 'survey.unit_date') }}
left join {{ ref('dim_commune') }} as comm
    on survey.commune_code = comm.code and {{ valid_on('comm', 'survey.unit_date') }}
{{ join_organisation('survey', 'innovation_survey', 'enterprise', 'org') }}
where {{ current_versions('survey') }}
