{{ config(materialized="view") }}

-- Current S&T tasks: the version of each task current at the build's cutoff, deletions
-- excluded. A view over the version table, so a build costs nothing however many tasks.
select
    st_task.st_task_key,
    st_task.source_id,
    org.organisation_key,
    st_task.task_code,
    st_task.title,
    st_task.task_level,
    st_task.task_type,
    st_task.field_code,
    st_task.host_organisation_name,
    st_task.host_organisation_code,
    st_task.principal_investigator,
    st_task.province_code,
    province.current_province_code as province_code_current,
    st_task.budget_state_million_vnd,
    st_task.budget_other_million_vnd,
    st_task.budget_state_million_vnd
    + coalesce(st_task.budget_other_million_vnd, 0) as budget_total_million_vnd,
    st_task.start_date,
    st_task.end_date,
    st_task.status,
    st_task.acceptance_date,
    extract(year from st_task.acceptance_date)::integer as acceptance_year,
    st_task.acceptance_rating,
    st_task.origin_registry,
    st_task.unit_date,
    st_task.version,
    st_task.source_updated_at,
    st_task.batch_id,
    st_task.landed_id,
    st_task.visible_at
from {{ ref('int_st_tasks_versioned') }} as st_task
-- The province on today's boundaries, resolved with the code's own date (35 Hà Nam in 2024 →
-- 37 Ninh Bình).
left join {{ ref('dim_province') }} as province
    on st_task.province_code = province.code and {{ valid_on('province', 'st_task.unit_date') }}
{{ join_organisation('st_task', 'st_task', 'task_host', 'org') }}
where {{ current_versions('st_task') }}
