-- Industrial property rights (tài sản trí tuệ) from provincial registries (registry API v1):
-- every published version, typed. The gate has checked every cast below; the class lists are
-- not gated, so anything but a JSON array reads as null.
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
    landed.record ->> 'ip_type' as ip_type,
    landed.record ->> 'application_number' as application_number,
    landed.record ->> 'title' as title,
    (landed.record ->> 'filing_date')::date as filing_date,
    (landed.record ->> 'publication_date')::date as publication_date,
    (landed.record ->> 'grant_date')::date as grant_date,
    landed.record ->> 'certificate_number' as certificate_number,
    landed.record ->> 'status' as status,
    landed.record ->> 'applicant_type' as applicant_type,
    landed.record ->> 'applicant_name' as applicant_name,
    landed.record ->> 'applicant_enterprise_code' as applicant_enterprise_code,
    landed.record ->> 'applicant_address' as applicant_address,
    landed.record ->> 'applicant_province_code' as applicant_province_code,
    landed.record ->> 'applicant_commune_code' as applicant_commune_code,
    landed.record ->> 'field_code' as field_code,
    case
        when jsonb_typeof(landed.record -> 'ipc_classes') = 'array'
            then array(select jsonb_array_elements_text(landed.record -> 'ipc_classes'))
    end as ipc_classes,
    case
        when jsonb_typeof(landed.record -> 'nice_classes') = 'array'
            then array(select jsonb_array_elements_text(landed.record -> 'nice_classes'))
    end as nice_classes,
    case
        when jsonb_typeof(landed.record -> 'locarno_classes') = 'array'
            then array(select jsonb_array_elements_text(landed.record -> 'locarno_classes'))
    end as locarno_classes,
    landed.record ->> 'commercialisation' as commercialisation,
    landed.record ->> 'origin_registry' as origin_registry,
    -- The gate checks the applicant's unit codes against the lists in force on the filing date.
    (landed.record ->> 'filing_date')::date as unit_date
from ({{ published_records('registry-api-v1', 'ip_right') }}) as landed
