-- KPI measures from S&T tasks and their yearly result-application reports, per province (today's
-- boundaries) and year. The 12-month application rule is int_kpi_results_applied_12m_computed.
with tasks as (
    select
        st_task_key,
        organisation_key,
        task_level,
        status,
        province_code_current as province_code,
        extract(year from start_date)::integer as start_year,
        acceptance_year
    from {{ ref('fct_st_task') }}
    where province_code_current is not null
),

-- A province-year is covered when a task of the province started or was accepted in it.
task_years as (
    select
        province_code,
        start_year as year  -- noqa: RF04
    from tasks
    where start_year is not null
    union
    select
        province_code,
        acceptance_year as year  -- noqa: RF04
    from tasks
    where acceptance_year is not null
),

started as (
    select
        task_years.province_code,
        task_years.year,
        count(tasks.st_task_key) as provincial_tasks
    from task_years
    left join tasks
        on
            task_years.province_code = tasks.province_code
            and task_years.year = tasks.start_year
            and tasks.task_level = 'provincial'
            -- proposed tasks are not deployed yet; cancelled ones never were
            and tasks.status not in ('proposed', 'cancelled')
    group by task_years.province_code, task_years.year
),

reports as (
    select
        reports.st_task_key,
        reports.reporting_year as year,  -- noqa: RF04
        reports.applied,
        reports.beneficiary_enterprise_code,
        reports.province_code_current as province_code,
        reports.application_province_code_current as application_province_code,
        host_org.org_type as host_org_type
    from {{ ref('fct_result_application') }} as reports
    left join tasks
        on reports.st_task_key = tasks.st_task_key
    left join {{ ref('dim_organisation') }} as host_org
        on tasks.organisation_key = host_org.organisation_key
    where reports.reporting_year is not null
),

-- Tasks reporting in the year, and those whose report says the results are (still) applied.
maintained as (
    select
        province_code,
        year,
        count(distinct st_task_key) filter (where applied) as applied_tasks,
        count(distinct st_task_key) as reporting_tasks
    from reports
    where province_code is not null
    group by province_code, year
),

-- Enterprises where results of S&T organisations (institutes, universities) were applied, by the
-- province of application. The share of all active enterprises cannot be formed here.
beneficiaries as (
    select
        application_province_code as province_code,
        year,
        count(distinct beneficiary_enterprise_code) filter (
            where applied and host_org_type = 'st_organisation'
        ) as enterprises
    from reports
    where application_province_code is not null
    group by application_province_code, year
)

select
    province_code,
    year,
    'provincial_tasks_started' as measure,
    provincial_tasks::numeric as actual_value,
    provincial_tasks::numeric as numerator,
    null::numeric as denominator,
    provincial_tasks || ' provincial S&T tasks started in ' || year
    || ' (proposed and cancelled tasks excluded)' as basis
from started

union all

select
    province_code,
    year,
    'tasks_applied_maintained_share' as measure,
    round(100.0 * applied_tasks / reporting_tasks, 2) as actual_value,
    applied_tasks::numeric as numerator,
    reporting_tasks::numeric as denominator,
    applied_tasks || ' of ' || reporting_tasks || ' S&T tasks reporting in ' || year
    || ' had their results applied' as basis
from maintained
where reporting_tasks > 0

union all

select
    province_code,
    year,
    'enterprises_applying_research_results_share' as measure,
    null::numeric as actual_value,
    enterprises::numeric as numerator,
    null::numeric as denominator,
    enterprises || ' enterprises applied results of S&T organisations in ' || year
    || '; the denominator (active enterprises) is not held' as basis
from beneficiaries
