-- Current S&T tasks: the latest version of each task that the source has not deleted.
select
    tasks.st_task_key,
    tasks.source_id,
    tasks.task_code,
    tasks.title,
    tasks.task_level,
    tasks.task_type,
    tasks.field_code,
    tasks.host_organisation_name,
    tasks.host_organisation_code,
    tasks.principal_investigator,
    tasks.province_code,
    tasks.budget_state_million_vnd,
    tasks.budget_other_million_vnd,
    tasks.budget_state_million_vnd
    + coalesce(tasks.budget_other_million_vnd, 0) as budget_total_million_vnd,
    tasks.start_date,
    tasks.end_date,
    tasks.status,
    tasks.acceptance_date,
    extract(year from tasks.acceptance_date)::integer as acceptance_year,
    tasks.acceptance_rating,
    tasks.version,
    tasks.source_updated_at,
    tasks.batch_id,
    tasks.landed_id
from {{ ref('int_st_tasks_deduplicated') }} as tasks
where not tasks.is_deleted
