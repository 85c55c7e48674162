-- Current S&T tasks: the latest version of each task that the source has not deleted.
select
    latest.st_task_key,
    latest.source_id,
    latest.task_code,
    latest.title,
    latest.task_level,
    latest.task_type,
    latest.field_code,
    latest.host_organisation_name,
    latest.host_organisation_code,
    latest.principal_investigator,
    latest.province_code,
    latest.budget_state_million_vnd,
    latest.budget_other_million_vnd,
    latest.budget_state_million_vnd
    + coalesce(latest.budget_other_million_vnd, 0) as budget_total_million_vnd,
    latest.start_date,
    latest.end_date,
    latest.status,
    latest.acceptance_date,
    extract(year from latest.acceptance_date)::integer as acceptance_year,
    latest.acceptance_rating,
    latest.version,
    latest.source_updated_at,
    latest.batch_id,
    latest.landed_id
from {{ ref('int_st_tasks_deduplicated') }} as latest
where not latest.is_deleted
