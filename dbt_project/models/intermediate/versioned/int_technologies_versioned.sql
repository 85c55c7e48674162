-- Every published version of every technology (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as technology_key,
    stg.landed_id,
    stg.batch_id,
    stg.source_id,
    stg.record_id,
    stg.version,
    stg.source_updated_at,
    stg.is_deleted,
    stg.technology_code,
    stg.name,
    stg.description,
    stg.field_code,
    stg.trl,
    stg.owner_type,
    -- An individual owner's name and home address are personal data (Decree 13/2023): they
    -- stay in staging; the province and commune are kept.
    case when stg.owner_type <> 'individual' then stg.owner_name end as owner_name,
    stg.owner_enterprise_code,
    stg.ip_application_numbers,
    stg.registered_date,
    case when stg.owner_type <> 'individual' then stg.address end as address,
    stg.province_code,
    stg.commune_code,
    stg.origin_registry,
    stg.unit_date,
    -- The organisation name keys, computed once per version for organisation resolution
    -- (macros/organisation_name.sql): the rebuild of the resolution reads them, not the names.
    {{ organisation_name_key(
        "case when stg.owner_type <> 'individual' then stg.owner_name end"
    ) }} as owner_name_key,
    {{ version_columns('stg') }}
from {{ ref('stg_registry__technologies') }} as stg
where {{ not_yet_versioned('stg', 'technology') }}
