-- IP rights (tài sản trí tuệ) as national records (feed_ip_right), keyed by the national
-- application number (T-YYYY-NNNNN), on the applicant's province today, else the registry's.
-- An individual applicant is named by no one: no name, no address (personal data).
with ip as (
    select
        fct.*,
        coalesce(fct.applicant_province_code_current, registry.province_code)
            as feed_province_code
    from {{ ref('fct_ip_right') }} as fct
    left join {{ ref('dim_source') }} as registry
        on fct.source_id = registry.source_id
)

select
    ip.feed_province_code as province_code,
    ip.application_number as record_key,
    jsonb_build_object(
        'application_number', ip.application_number,
        'ip_right_type', ip.ip_type,
        'title', ip.title,
        'filing_date', ip.filing_date,
        'publication_date', ip.publication_date,
        'grant_date', ip.grant_date,
        'certificate_number', ip.certificate_number,
        'status', ip.status,
        'applicant_type', ip.applicant_type,
        'applicant_mst', coalesce(applicant.enterprise_code, ip.applicant_enterprise_code),
        'applicant_name', case when ip.applicant_type <> 'individual' then ip.applicant_name end,
        'applicant_province_code', ip.applicant_province_code_current,
        'applicant_province_code_recorded', ip.applicant_province_code,
        'applicant_commune_code', ip.applicant_commune_code_current,
        'applicant_commune_code_recorded', ip.applicant_commune_code,
        'recorded_units_date', ip.unit_date,
        'research_field_code', ip.field_code,
        'ipc_classes', ip.ipc_classes,
        'nice_classes', ip.nice_classes,
        'locarno_classes', ip.locarno_classes,
        'commercialisation', ip.commercialisation,
        'province_code', ip.feed_province_code,
        'origin_registry', ip.origin_registry
    ) as payload,
    ip.source_id,
    ip.record_id,
    ip.landed_id,
    ip.ip_right_key as warehouse_key
from ip
left join {{ ref('dim_organisation') }} as applicant
    on ip.applicant_organisation_key = applicant.organisation_key
