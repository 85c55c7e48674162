-- Every published version of every innovation survey record (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as innovation_survey_key,
    stg.landed_id,
    stg.batch_id,
    stg.source_id,
    stg.record_id,
    stg.version,
    stg.source_updated_at,
    stg.is_deleted,
    stg.survey_code,
    stg.enterprise_code,
    stg.enterprise_name,
    stg.survey_year,
    stg.vsic_version,
    stg.vsic_code,
    stg.employees,
    stg.innovation_activity,
    stg.innovation_kinds,
    stg.rd_expenditure_million_vnd,
    stg.submitted_date,
    stg.province_code,
    stg.commune_code,
    stg.origin_registry,
    stg.unit_date,
    -- The organisation name keys, computed once per version for organisation resolution
    -- (macros/organisation_name.sql): the rebuild of the resolution reads them, not the names.
    {{ organisation_name_key("stg.enterprise_name") }} as enterprise_name_key,
    {{ version_columns('stg') }}
from {{ ref('stg_registry__innovation_surveys') }} as stg
where {{ not_yet_versioned('stg', 'innovation_survey') }}
