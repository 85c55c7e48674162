-- S&T tasks (nhiệm vụ KH&CN) as national records (feed_st_task): every current task, keyed
-- `<province>:<task_code>`, on today's province (its own, else its registry's).
with task as (
    select
        fct.*,
        coalesce(fct.province_code_current, registry.province_code) as feed_province_code
    from {{ ref('fct_st_task') }} as fct
    left join {{ ref('dim_source') }} as registry
        on fct.source_id = registry.source_id
)

select
    task.feed_province_code as province_code,
    task.feed_province_code || ':' || task.task_code as record_key,
    jsonb_build_object(
        'task_code', task.task_code,
        'title', task.title,
        'task_level', task.task_level,
        'task_type', task.task_type,
        'research_field_code', task.field_code,
        'host_organisation_mst', coalesce(host_org.enterprise_code, task.host_organisation_code),
        'host_organisation_name', task.host_organisation_name,
        'principal_investigator_key', {{ feed_person_key('task.principal_investigator') }},
        'province_code', task.feed_province_code,
        'province_code_recorded', task.province_code,
        'recorded_units_date', task.unit_date,
        'budget_state_million_vnd', task.budget_state_million_vnd,
        'budget_other_million_vnd', task.budget_other_million_vnd,
        'budget_total_million_vnd', task.budget_total_million_vnd,
        'start_date', task.start_date,
        'end_date', task.end_date,
        'status', task.status,
        'acceptance_date', task.acceptance_date,
        'acceptance_rating', task.acceptance_rating,
        'origin_registry', task.origin_registry
    ) as payload,
    task.source_id,
    task.task_code as record_id,
    task.landed_id,
    task.st_task_key as warehouse_key
from task
left join {{ ref('dim_organisation') }} as host_org
    on task.organisation_key = host_org.organisation_key
