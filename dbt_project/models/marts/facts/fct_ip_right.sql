{{ config(materialized="view") }}

-- Current IP rights (tài sản trí tuệ): the version of each right current at the build's
-- cutoff, deletions excluded, the applicant's units restated on today's boundaries.
select
    ip.ip_right_key,
    ip.source_id,
    org.organisation_key as applicant_organisation_key,
    ip.record_id,
    ip.ip_type,
    ip.application_number,
    ip.title,
    ip.filing_date,
    extract(year from ip.filing_date)::integer as filing_year,
    ip.publication_date,
    ip.grant_date,
    extract(year from ip.grant_date)::integer as grant_year,
    ip.certificate_number,
    ip.status,
    ip.applicant_type,
    ip.applicant_name,
    ip.applicant_enterprise_code,
    ip.applicant_address,
    ip.applicant_province_code,
    prov.current_province_code as applicant_province_code_current,
    ip.applicant_commune_code,
    commune.current_commune_code as applicant_commune_code_current,
    ip.field_code,
    ip.ipc_classes,
    ip.nice_classes,
    ip.locarno_classes,
    ip.commercialisation,
    ip.origin_registry,
    ip.unit_date,
    ip.version,
    ip.source_updated_at,
    ip.batch_id,
    ip.landed_id,
    ip.visible_at
from {{ ref('int_ip_rights_versioned') }} as ip
left join {{ ref('dim_province') }} as prov
    on
        ip.applicant_province_code = prov.code
        and {{ valid_on('prov', 'ip.unit_date') }}
left join {{ ref('dim_commune') }} as commune
    on
        ip.applicant_commune_code = commune.code
        and {{ valid_on('commune', 'ip.unit_date') }}
{{ join_organisation('ip', 'ip_right', 'ip_applicant', 'org') }}
where {{ current_versions('ip') }}
