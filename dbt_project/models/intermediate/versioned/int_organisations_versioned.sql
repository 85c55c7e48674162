-- Every published version of every organisation record (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as organisation_key,
    stg.landed_id,
    stg.batch_id,
    stg.source_id,
    stg.record_id,
    stg.version,
    stg.source_updated_at,
    stg.is_deleted,
    stg.organisation_code,
    stg.name,
    stg.org_type,
    stg.intermediary_kind,
    stg.ownership,
    stg.enterprise_code,
    stg.st_registration_number,
    stg.st_registration_date,
    stg.vsic_version,
    stg.vsic_code,
    stg.established_date,
    stg.staff_count,
    stg.address,
    stg.province_code,
    stg.commune_code,
    stg.origin_registry,
    stg.unit_date,
    -- The organisation name keys, computed once per version for organisation resolution
    -- (macros/organisation_name.sql): the rebuild of the resolution reads them, not the names.
    {{ organisation_name_key("stg.name") }} as name_key,
    {{ version_columns('stg') }}
from {{ ref('stg_registry__organisations') }} as stg
where {{ not_yet_versioned('stg', 'organisation') }}
