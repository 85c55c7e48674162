{{ config(materialized="view") }}

-- Current innovation projects supported from provincial budgets (NB-M2, NB-M5, TH-2), units
-- restated on today's boundaries.
select
    project.innovation_project_key,
    project.source_id,
    org.organisation_key,
    project.record_id,
    project.project_id,
    project.enterprise_name,
    project.enterprise_code,
    project.project_name,
    project.field_code,
    project.support_year,
    project.support_amount_million_vnd,
    project.total_amount_million_vnd,
    project.commercialised_products,
    project.status,
    project.decision_number,
    project.decision_date,
    project.address,
    project.province_code,
    prov.current_province_code as province_code_current,
    project.commune_code,
    commune.current_commune_code as commune_code_current,
    project.origin_registry,
    project.unit_date,
    project.version,
    project.source_updated_at,
    project.batch_id,
    project.landed_id,
    project.visible_at
from {{ ref('int_innovation_projects_versioned') }} as project
left join {{ ref('dim_province') }} as prov
    on
        project.province_code = prov.code
        and {{ valid_on('prov', 'project.unit_date') }}
left join {{ ref('dim_commune') }} as commune
    on
        project.commune_code = commune.code
        and {{ valid_on('commune', 'project.unit_date') }}
{{ join_organisation('project', 'innovation_project', 'enterprise', 'org') }}
where {{ current_versions('project') }}
