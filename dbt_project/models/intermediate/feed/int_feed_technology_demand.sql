-- Technology demands of enterprises (nhu cầu công nghệ) as national records
-- (feed_technology_demand), keyed `<province>:<demand_id>` on today's province (its own, else
-- its registry's).
with demand as (
    select
        fct.*,
        coalesce(fct.province_code_current, registry.province_code) as feed_province_code
    from {{ ref('fct_technology_demand') }} as fct
    left join {{ ref('dim_source') }} as registry
        on fct.source_id = registry.source_id
)

select
    demand.feed_province_code as province_code,
    demand.feed_province_code || ':' || demand.demand_id as record_key,
    jsonb_build_object(
        'demand_id', demand.demand_id,
        'enterprise_mst', coalesce(enterprise.enterprise_code, demand.enterprise_code),
        'enterprise_name', demand.enterprise_name,
        'description', demand.description,
        'research_field_code', demand.field_code,
        'budget_million_vnd', demand.budget_million_vnd,
        'status', demand.status,
        'posted_date', demand.posted_date,
        'province_code', demand.feed_province_code,
        'province_code_recorded', demand.province_code,
        'commune_code', demand.commune_code_current,
        'commune_code_recorded', demand.commune_code,
        'recorded_units_date', demand.unit_date,
        'origin_registry', demand.origin_registry
    ) as payload,
    demand.source_id,
    demand.record_id,
    demand.landed_id,
    demand.technology_demand_key as warehouse_key
from demand
left join {{ ref('dim_organisation') }} as enterprise
    on demand.organisation_key = enterprise.organisation_key
