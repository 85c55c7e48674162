-- The latest version of each task per source. A deletion is a version too: it stays here so
-- downstream models can tell a deleted task from one never seen.
with ranked as (
    select
        *,
        row_number() over (
            partition by source_id, task_code
            order by version desc, source_updated_at desc, landed_id desc
        ) as version_rank
    from {{ ref('stg_registry__st_tasks') }}
)

select
    md5(source_id || '|' || task_code) as st_task_key,
    landed_id,
    batch_id,
    source_id,
    task_code,
    version,
    source_updated_at,
    is_deleted,
    title,
    task_level,
    task_type,
    field_code,
    host_organisation_name,
    host_organisation_code,
    principal_investigator,
    province_code,
    budget_state_million_vnd,
    budget_other_million_vnd,
    start_date,
    end_date,
    status,
    acceptance_date,
    acceptance_rating
from ranked
where version_rank = 1
