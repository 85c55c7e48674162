{{ config(materialized="view") }}

-- Current organisations as each registry registered them (not resolved across registries:
-- dim_organisation does that), with their units also restated on today's boundaries.
select
    org.organisation_key,
    org.source_id,
    org.organisation_code,
    org.name,
    org.org_type,
    org.intermediary_kind,
    org.ownership,
    org.enterprise_code,
    org.st_registration_number,
    org.st_registration_date,
    org.vsic_version,
    org.vsic_code,
    org.established_date,
    org.staff_count,
    org.address,
    org.province_code,
    prov.current_province_code as province_code_current,
    org.commune_code,
    comm.current_commune_code as commune_code_current,
    org.origin_registry,
    org.unit_date,
    org.version,
    org.source_updated_at,
    org.batch_id,
    org.landed_id,
    org.visible_at
from {{ ref('int_organisations_versioned') }} as org
left join {{ ref('dim_province') }} as prov
    on org.province_code = prov.code and {{ valid_on('prov', 'org.unit_date') }}
left join {{ ref('dim_commune') }} as comm
    on org.commune_code = comm.code and {{ valid_on('comm', 'org.unit_date') }}
where {{ current_versions('org') }}
