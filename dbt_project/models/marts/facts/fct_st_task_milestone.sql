{{ config(materialized="view") }}

-- Milestones each current S&T task has reached. A view: the approval milestone needs every
-- visible version of the task (the contract has no approval date), so the scan happens when
-- analysts query it, not at each build.
with task as (
    select
        t.st_task_key,
        t.source_id,
        t.record_id,
        t.task_code,
        t.status,
        t.start_date,
        t.end_date,
        t.acceptance_date,
        t.province_code,
        t.unit_date,
        t.version,
        t.source_updated_at,
        t.batch_id,
        t.landed_id,
        t.visible_at
    from {{ ref('int_st_tasks_versioned') }} as t
    where {{ current_versions('t') }}
),

task_history as (
    select
        v.st_task_key,
        -- The first version at approval or later is the earliest evidence of the approval.
        (
            array_agg(v.source_updated_at order by v.version, v.source_updated_at, v.landed_id)
            filter (where v.status in ('approved', 'in_progress', 'accepted', 'applied'))
        )[1] as approved_at,
        bool_or(v.status in ('in_progress', 'accepted', 'applied')) as has_started
    from {{ ref('int_st_tasks_versioned') }} as v
    where
        not v.is_deleted
    {%- if var('published_before', none) %}
        and v.visible_at <= {{ cutoff_literal() }}
        {%- endif %}
    group by v.st_task_key
),

first_application as (
    select
        ra.source_id,
        ra.task_code,
        min(ra.report_date) as first_applied_on
    from {{ ref('int_result_applications_versioned') }} as ra
    where {{ current_versions('ra') }} and ra.applied
    group by ra.source_id, ra.task_code
),

milestone as (
    select
        task.st_task_key,
        'approval' as milestone,
        -- A task is approved before it starts: a registry first seen after the start (its
        -- first version already in progress) only bounds the approval by the start date.
        least((task_history.approved_at at time zone 'UTC')::date, task.start_date)
            as milestone_date,
        case
            when (task_history.approved_at at time zone 'UTC')::date > task.start_date
                then 'start_date (the first version approved or later was recorded after it)'
            else 'source_updated_at of the first version with status approved or later'
        end as basis
    from task
    inner join task_history on task.st_task_key = task_history.st_task_key
    where task_history.approved_at is not null
    union all
    select
        task.st_task_key,
        'start' as milestone,
        task.start_date as milestone_date,
        'start_date' as basis
    from task
    inner join task_history on task.st_task_key = task_history.st_task_key
    where task_history.has_started
    union all
    select
        task.st_task_key,
        'planned_end' as milestone,
        task.end_date as milestone_date,
        'end_date (planned) of an approved task' as basis
    from task
    inner join task_history on task.st_task_key = task_history.st_task_key
    where task_history.approved_at is not null and task.end_date is not null
    union all
    select
        task.st_task_key,
        'acceptance' as milestone,
        task.acceptance_date as milestone_date,
        'acceptance_date' as basis
    from task
    where task.acceptance_date is not null
    union all
    select
        task.st_task_key,
        'first_application' as milestone,
        first_application.first_applied_on as milestone_date,
        'report_date of the first result application report with applied true' as basis
    from first_application
    inner join task
        on
            first_application.source_id = task.source_id
            and first_application.task_code = task.task_code
)

select
    md5(task.st_task_key || '|' || milestone.milestone) as st_task_milestone_key,
    task.st_task_key,
    task.source_id,
    task.record_id,
    task.task_code,
    milestone.milestone,
    milestone.milestone_date,
    extract(year from milestone.milestone_date)::integer as milestone_year,
    milestone.basis,
    task.province_code,
    prov.current_province_code as province_code_current,
    task.version,
    task.source_updated_at,
    task.batch_id,
    task.landed_id,
    task.visible_at
from milestone
inner join task on milestone.st_task_key = task.st_task_key
left join {{ ref('dim_province') }} as prov
    on
        task.province_code = prov.code
        and {{ valid_on('prov', 'task.unit_date') }}
