-- Every published version of every result application report (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as result_application_key,
    stg.landed_id,
    stg.batch_id,
    stg.source_id,
    stg.record_id,
    stg.version,
    stg.source_updated_at,
    stg.is_deleted,
    stg.task_code,
    stg.report_year,
    stg.reporting_year,
    stg.applied,
    stg.application_place,
    stg.application_province_code,
    stg.application_commune_code,
    stg.beneficiary_enterprise_name,
    stg.beneficiary_enterprise_code,
    stg.revenue_million_vnd,
    stg.effect,
    stg.report_date,
    stg.origin_registry,
    stg.unit_date,
    -- The organisation name keys, computed once per version for organisation resolution
    -- (macros/organisation_name.sql): the rebuild of the resolution reads them, not the names.
    {{ organisation_name_key("stg.beneficiary_enterprise_name") }}
        as beneficiary_enterprise_name_key,
    {{ version_columns('stg') }}
from {{ ref('stg_registry__result_applications') }} as stg
where {{ not_yet_versioned('stg', 'result_application') }}
