-- Innovation projects supported from provincial budgets (dự án ĐMST) as national records
-- (feed_innovation_project), keyed `<province>:<project_id>` on today's province (its own,
-- else its registry's).
with project as (
    select
        fct.*,
        coalesce(fct.province_code_current, registry.province_code) as feed_province_code
    from {{ ref('fct_innovation_project') }} as fct
    left join {{ ref('dim_source') }} as registry
        on fct.source_id = registry.source_id
)

select
    project.feed_province_code as province_code,
    project.feed_province_code || ':' || project.project_id as record_key,
    jsonb_build_object(
        'project_id', project.project_id,
        'project_name', project.project_name,
        'enterprise_mst', coalesce(enterprise.enterprise_code, project.enterprise_code),
        'enterprise_name', project.enterprise_name,
        'research_field_code', project.field_code,
        'support_year', project.support_year,
        'support_amount_million_vnd', project.support_amount_million_vnd,
        'total_amount_million_vnd', project.total_amount_million_vnd,
        'commercialised_products', project.commercialised_products,
        'status', project.status,
        'decision_number', project.decision_number,
        'decision_date', project.decision_date,
        'province_code', project.feed_province_code,
        'province_code_recorded', project.province_code,
        'commune_code', project.commune_code_current,
        'commune_code_recorded', project.commune_code,
        'recorded_units_date', project.unit_date,
        'origin_registry', project.origin_registry
    ) as payload,
    project.source_id,
    project.record_id,
    project.landed_id,
    project.innovation_project_key as warehouse_key
from project
left join {{ ref('dim_organisation') }} as enterprise
    on project.organisation_key = enterprise.organisation_key
