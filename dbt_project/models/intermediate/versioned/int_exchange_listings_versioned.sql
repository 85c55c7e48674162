-- Every published version of every listing record (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as listing_key,
    stg.landed_id,
    stg.batch_id,
    stg.source_id,
    stg.record_id,
    stg.version,
    stg.source_updated_at,
    stg.is_deleted,
    stg.listing_id,
    stg.listing_type,
    stg.listing_type_code,
    stg.listing_object,
    stg.title,
    stg.field,
    stg.price_from_vnd,
    stg.price_to_vnd,
    stg.supplier_name,
    stg.supplier_enterprise_code,
    stg.province_code,
    stg.ip_status,
    stg.ip_application_number,
    stg.status,
    stg.posted_date,
    stg.unit_date,
    -- The organisation name keys, computed once per version for organisation resolution
    -- (macros/organisation_name.sql): the rebuild of the resolution reads them, not the names.
    {{ organisation_name_key("stg.supplier_name") }} as supplier_name_key,
    {{ version_columns('stg') }}
from {{ ref('stg_exchange__listings') }} as stg
where {{ not_yet_versioned('stg', 'listing') }}
