{{ config(materialized="view") }}

-- Current technologies (công nghệ) on the registries, units restated on today's boundaries.
select
    tech.technology_key,
    tech.source_id,
    org.organisation_key as owner_organisation_key,
    tech.record_id,
    tech.technology_code,
    tech.name,
    tech.description,
    tech.field_code,
    tech.trl,
    tech.owner_type,
    tech.owner_name,
    tech.owner_enterprise_code,
    tech.ip_application_numbers,
    coalesce(cardinality(tech.ip_application_numbers), 0) as ip_application_count,
    tech.registered_date,
    extract(year from tech.registered_date)::integer as registered_year,
    tech.address,
    tech.province_code,
    prov.current_province_code as province_code_current,
    tech.commune_code,
    commune.current_commune_code as commune_code_current,
    tech.origin_registry,
    tech.unit_date,
    tech.version,
    tech.source_updated_at,
    tech.batch_id,
    tech.landed_id,
    tech.visible_at
from {{ ref('int_technologies_versioned') }} as tech
left join {{ ref('dim_province') }} as prov
    on
        tech.province_code = prov.code
        and {{ valid_on('prov', 'tech.unit_date') }}
left join {{ ref('dim_commune') }} as commune
    on
        tech.commune_code = commune.code
        and {{ valid_on('commune', 'tech.unit_date') }}
{{ join_organisation('tech', 'technology', 'technology_owner', 'org') }}
where {{ current_versions('tech') }}
