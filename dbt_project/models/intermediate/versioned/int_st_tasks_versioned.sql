-- Every published version of every S&T task (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as st_task_key,
    stg.landed_id,
    stg.batch_id,
    stg.source_id,
    stg.record_id,
    stg.version,
    stg.source_updated_at,
    stg.is_deleted,
    stg.task_code,
    stg.title,
    stg.task_level,
    stg.task_type,
    stg.field_code,
    stg.host_organisation_name,
    stg.host_organisation_code,
    stg.principal_investigator,
    stg.province_code,
    stg.budget_state_million_vnd,
    stg.budget_other_million_vnd,
    stg.start_date,
    stg.end_date,
    stg.status,
    stg.acceptance_date,
    stg.acceptance_rating,
    stg.origin_registry,
    stg.unit_date,
    -- The organisation name keys, computed once per version for organisation resolution
    -- (macros/organisation_name.sql): the rebuild of the resolution reads them, not the names.
    {{ organisation_name_key("stg.host_organisation_name") }} as host_organisation_name_key,
    {{ version_columns('stg') }}
from {{ ref('stg_registry__st_tasks') }} as stg
where {{ not_yet_versioned('stg', 'st_task') }}
