{{ config(materialized="view") }}

-- Current technology demands of enterprises, units restated on today's boundaries.
select
    demand.technology_demand_key,
    demand.source_id,
    org.organisation_key,
    demand.record_id,
    demand.demand_id,
    demand.enterprise_name,
    demand.enterprise_code,
    demand.description,
    demand.field_code,
    demand.budget_million_vnd,
    demand.status,
    demand.posted_date,
    extract(year from demand.posted_date)::integer as posted_year,
    demand.address,
    demand.province_code,
    prov.current_province_code as province_code_current,
    demand.commune_code,
    commune.current_commune_code as commune_code_current,
    demand.origin_registry,
    demand.unit_date,
    demand.version,
    demand.source_updated_at,
    demand.batch_id,
    demand.landed_id,
    demand.visible_at
from {{ ref('int_technology_demands_versioned') }} as demand
left join {{ ref('dim_province') }} as prov
    on
        demand.province_code = prov.code
        and {{ valid_on('prov', 'demand.unit_date') }}
left join {{ ref('dim_commune') }} as commune
    on
        demand.commune_code = commune.code
        and {{ valid_on('commune', 'demand.unit_date') }}
{{ join_organisation('demand', 'technology_demand', 'enterprise', 'org') }}
where {{ current_versions('demand') }}
