-- Every published version of every capability assessment record (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as capability_assessment_key,
    stg.landed_id,
    stg.batch_id,
    stg.source_id,
    stg.record_id,
    stg.version,
    stg.source_updated_at,
    stg.is_deleted,
    stg.assessment_code,
    stg.enterprise_code,
    stg.enterprise_name,
    stg.vsic_version,
    stg.vsic_code,
    stg.assessment_year,
    stg.assessment_date,
    stg.group_score_t,
    stg.group_score_e,
    stg.group_score_o,
    stg.group_score_r,
    stg.group_score_i,
    stg.total_score,
    stg.criteria_scores,
    stg.technology_level,
    stg.province_code,
    stg.commune_code,
    stg.origin_registry,
    stg.unit_date,
    -- The organisation name keys, computed once per version for organisation resolution
    -- (macros/organisation_name.sql): the rebuild of the resolution reads them, not the names.
    {{ organisation_name_key("stg.enterprise_name") }} as enterprise_name_key,
    {{ version_columns('stg') }}
from {{ ref('stg_registry__capability_assessments') }} as stg
where {{ not_yet_versioned('stg', 'capability_assessment') }}
