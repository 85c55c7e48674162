-- Technologies (công nghệ) as national records (feed_technology), keyed
-- `<province>:<technology_code>` on today's province (its own, else its registry's). An
-- individual owner is not named; no street address (communes by code).
with tech as (
    select
        fct.*,
        coalesce(fct.province_code_current, registry.province_code) as feed_province_code
    from {{ ref('fct_technology') }} as fct
    left join {{ ref('dim_source') }} as registry
        on fct.source_id = registry.source_id
)

select
    tech.feed_province_code as province_code,
    tech.feed_province_code || ':' || tech.technology_code as record_key,
    jsonb_build_object(
        'technology_code', tech.technology_code,
        'name', tech.name,
        'description', tech.description,
        'research_field_code', tech.field_code,
        'trl', tech.trl,
        'owner_type', tech.owner_type,
        'owner_mst', coalesce(owner_org.enterprise_code, tech.owner_enterprise_code),
        'owner_name', case when tech.owner_type <> 'individual' then tech.owner_name end,
        'ip_application_numbers', tech.ip_application_numbers,
        'registered_date', tech.registered_date,
        'province_code', tech.feed_province_code,
        'province_code_recorded', tech.province_code,
        'commune_code', tech.commune_code_current,
        'commune_code_recorded', tech.commune_code,
        'recorded_units_date', tech.unit_date,
        'origin_registry', tech.origin_registry
    ) as payload,
    tech.source_id,
    tech.record_id,
    tech.landed_id,
    tech.technology_key as warehouse_key
from tech
left join {{ ref('dim_organisation') }} as owner_org
    on tech.owner_organisation_key = owner_org.organisation_key
