-- Every published version of every innovation project (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as innovation_project_key,
    stg.landed_id,
    stg.batch_id,
    stg.source_id,
    stg.record_id,
    stg.version,
    stg.source_updated_at,
    stg.is_deleted,
    stg.project_id,
    stg.enterprise_name,
    stg.enterprise_code,
    stg.project_name,
    stg.field_code,
    stg.support_year,
    stg.support_amount_million_vnd,
    stg.total_amount_million_vnd,
    stg.commercialised_products,
    stg.status,
    stg.decision_number,
    stg.decision_date,
    stg.address,
    stg.province_code,
    stg.commune_code,
    stg.origin_registry,
    stg.unit_date,
    -- The organisation name keys, computed once per version for organisation resolution
    -- (macros/organisation_name.sql): the rebuild of the resolution reads them, not the names.
    {{ organisation_name_key("stg.enterprise_name") }} as enterprise_name_key,
    {{ version_columns('stg') }}
from {{ ref('stg_registry__innovation_projects') }} as stg
where {{ not_yet_versioned('stg', 'innovation_project') }}
