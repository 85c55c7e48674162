-- Technologies (công nghệ) from provincial registries (registry API v1): every published
-- version, typed. The gate has checked every cast below (trl is 1..9 or null).
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
    landed.record_id as technology_code,
    -- The contract's field name, although a keyword.
    landed.record ->> 'name' as name,  -- noqa: RF04
    landed.record ->> 'description' as description,
    landed.record ->> 'field_code' as field_code,
    (landed.record ->> 'trl')::integer as trl,
    landed.record ->> 'owner_type' as owner_type,
    landed.record ->> 'owner_name' as owner_name,
    landed.record ->> 'owner_enterprise_code' as owner_enterprise_code,
    -- Gated: absent, null or an array of T-YYYY-NNNNN strings.
    case
        when jsonb_typeof(landed.record -> 'ip_application_numbers') = 'array'
            then array(select jsonb_array_elements_text(landed.record -> 'ip_application_numbers'))
    end as ip_application_numbers,
    (landed.record ->> 'registered_date')::date as registered_date,
    landed.record ->> 'address' as address,
    landed.record ->> 'province_code' as province_code,
    landed.record ->> 'commune_code' as commune_code,
    landed.record ->> 'origin_registry' as origin_registry,
    -- The gate checks the unit codes against the lists in force on the registration date.
    (landed.record ->> 'registered_date')::date as unit_date
from ({{ published_records('registry-api-v1', 'technology') }}) as landed
