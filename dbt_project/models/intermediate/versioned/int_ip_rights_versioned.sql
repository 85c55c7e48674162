-- Every published version of every IP right (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as ip_right_key,
    stg.landed_id,
    stg.batch_id,
    stg.source_id,
    stg.record_id,
    stg.version,
    stg.source_updated_at,
    stg.is_deleted,
    stg.ip_type,
    stg.application_number,
    stg.title,
    stg.filing_date,
    stg.publication_date,
    stg.grant_date,
    stg.certificate_number,
    stg.status,
    stg.applicant_type,
    -- An individual applicant's name and home address are personal data (Decree 13/2023):
    -- they stay in staging; the applicant's province and commune are kept.
    case when stg.applicant_type <> 'individual' then stg.applicant_name end as applicant_name,
    stg.applicant_enterprise_code,
    case when stg.applicant_type <> 'individual' then stg.applicant_address end
        as applicant_address,
    stg.applicant_province_code,
    stg.applicant_commune_code,
    stg.field_code,
    stg.ipc_classes,
    stg.nice_classes,
    stg.locarno_classes,
    stg.commercialisation,
    stg.origin_registry,
    stg.unit_date,
    -- The organisation name keys, computed once per version for organisation resolution
    -- (macros/organisation_name.sql): the rebuild of the resolution reads them, not the names.
    {{ organisation_name_key(
        "case when stg.applicant_type <> 'individual' then stg.applicant_name end"
    ) }} as applicant_name_key,
    {{ version_columns('stg') }}
from {{ ref('stg_registry__ip_rights') }} as stg
where {{ not_yet_versioned('stg', 'ip_right') }}
