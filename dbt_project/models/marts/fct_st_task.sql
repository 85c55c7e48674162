{{ config(materialized="view") }}

-- Current S&T tasks: the version of each task current at the build's cutoff, deletions
-- excluded. A view over the version table, so a build costs nothing however many tasks.
select
    task.st_task_key,
    task.source_id,
    org.organisation_key as organisation_key,
    task.task_code,
    task.title,
    task.task_level,
    task.task_type,
    task.field_code,
    task.host_organisation_name,
    task.host_organisation_code,
    task.principal_investigator,
    task.province_code,
    province.current_province_code as province_code_current,
    task.budget_state_million_vnd,
    task.budget_other_million_vnd,
    task.budget_state_million_vnd
    + coalesce(task.budget_other_million_vnd, 0) as budget_total_million_vnd,
    task.start_date,
    task.end_date,
    task.status,
    task.acceptance_date,
    extract(year from task.acceptance_date)::integer as acceptance_year,
    task.acceptance_rating,
    task.origin_registry,
    task.unit_date,
    task.version,
    task.source_updated_at,
    task.batch_id,
    task.landed_id
from {{ ref('int_st_tasks_versioned') }} as task
-- The province on today's boundaries, resolved with the code's own date (35 Hà Nam in 2024 →
-- 37 Ninh Bình).
left join {{ ref('dim_province') }} as province
    on task.province_code = province.code and {{ valid_on('province', 'task.unit_date') }}
{{ join_organisation('task', 'st_task', 'task_host', 'org') }}
where {{ current_versions('task') }}
