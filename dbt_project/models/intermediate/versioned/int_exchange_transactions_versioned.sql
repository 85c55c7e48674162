-- Every published version of every transaction record (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as transaction_key,
    stg.landed_id,
    stg.batch_id,
    stg.source_id,
    stg.record_id,
    stg.version,
    stg.source_updated_at,
    stg.is_deleted,
    stg.transaction_id,
    stg.listing_id,
    stg.technology_name,
    stg.field,
    stg.seller_name,
    stg.seller_enterprise_code,
    stg.buyer_name,
    stg.buyer_enterprise_code,
    stg.value_vnd,
    stg.form,
    stg.signed_date,
    stg.certificate_number,
    -- The organisation name keys, computed once per version for organisation resolution
    -- (macros/organisation_name.sql): the rebuild of the resolution reads them, not the names.
    {{ organisation_name_key("stg.seller_name") }} as seller_name_key,
    {{ organisation_name_key("stg.buyer_name") }} as buyer_name_key,
    {{ version_columns('stg') }}
from {{ ref('stg_exchange__transactions') }} as stg
where {{ not_yet_versioned('stg', 'transaction') }}
