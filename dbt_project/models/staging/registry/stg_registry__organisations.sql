-- Organisations from provincial registries (registry API v1): every published version, typed,
-- as sent (not resolved across registries: dim_organisation does that).
select
    landed.landed_id,
    landed.batch_id,
    landed.source_id,
    landed.record_id,
    landed.version,
    landed.source_updated_at,
    landed.is_deleted,
    landed.extracted_at,
    landed.visible_at,
    landed.record_id as organisation_code,
    -- name and ownership: the contract's field names, although SQL keywords
    nullif(btrim(landed.record ->> 'name'), '') as name,  -- noqa: RF04
    landed.record ->> 'org_type' as org_type,
    landed.record ->> 'intermediary_kind' as intermediary_kind,
    landed.record ->> 'ownership' as ownership,  -- noqa: RF04
    landed.record ->> 'enterprise_code' as enterprise_code,
    landed.record ->> 'st_registration_number' as st_registration_number,
    (landed.record ->> 'st_registration_date')::date as st_registration_date,
    landed.record ->> 'vsic_version' as vsic_version,
    landed.record ->> 'vsic_code' as vsic_code,
    (landed.record ->> 'established_date')::date as established_date,
    (landed.record ->> 'staff_count')::integer as staff_count,
    landed.record ->> 'address' as address,
    landed.record ->> 'province_code' as province_code,
    landed.record ->> 'commune_code' as commune_code,
    landed.record ->> 'origin_registry' as origin_registry,
    -- The date the unit codes refer to (as the gate checks them): the S&T registration, or the
    -- establishment for an organisation without one.
    coalesce(
        (landed.record ->> 'st_registration_date')::date,
        (landed.record ->> 'established_date')::date
    ) as unit_date
from ({{ published_records('registry-api-v1', 'organisation') }}) as landed
