{{ config(materialized="view") }}

-- Current result application reports, one per task and report year, with the task's acceptance
-- (its version current at the same cutoff) for the "applied within 12 months" KPI (NB-P2).
-- One date governs every unit code of a report: its report_date (unit_date).
with report as (
    select ra.*
    from {{ ref('int_result_applications_versioned') }} as ra
    where {{ current_versions('ra') }}
),

task as (
    select
        t.source_id,
        t.record_id as task_code,
        t.acceptance_date,
        t.province_code,
        t.unit_date
    from {{ ref('int_st_tasks_versioned') }} as t
    where {{ current_versions('t') }}
)

select
    report.result_application_key,
    -- The report's task is one of the same registry's (the gate checks it).
    md5(report.source_id || '|' || report.task_code) as st_task_key,
    report.source_id,
    org.organisation_key as beneficiary_organisation_key,
    report.record_id,
    report.task_code,
    report.report_year,
    report.reporting_year,
    report.applied,
    report.application_place,
    report.application_province_code,
    app_prov.current_province_code as application_province_code_current,
    report.application_commune_code,
    app_commune.current_commune_code as application_commune_code_current,
    report.beneficiary_enterprise_name,
    report.beneficiary_enterprise_code,
    report.revenue_million_vnd,
    report.effect,
    report.report_date,
    report.unit_date,
    task.acceptance_date,
    -- The task's province as in force on the report's date, like every code of this fact:
    -- the task's own code while it was in force then, else the province it merged into (a
    -- Nam Định task of 2024 reported on in 2025-09 is Ninh Bình's); null when neither was.
    case
        when {{ valid_on('task_prov', 'report.unit_date') }} then task_prov.code
        when {{ valid_on('task_prov_now', 'report.unit_date') }} then task_prov_now.code
    end as province_code,
    task_prov.current_province_code as province_code_current,
    (
        extract(year from age(report.report_date, task.acceptance_date)) * 12
        + extract(month from age(report.report_date, task.acceptance_date))
    )::integer as months_after_acceptance,
    -- NB-P2's rule: results count as applied within 12 months of acceptance when the report
    -- for year 1 (which covers those 12 months, but is written after them) or any report dated
    -- within them says applied. Null when the task's acceptance date is unknown.
    case
        when task.acceptance_date is not null
            then coalesce(
                report.applied and (
                    report.report_year = 1
                    or report.report_date <= task.acceptance_date + interval '12 months'
                ),
                false
            )
    end as applied_within_12_months,
    report.origin_registry,
    report.version,
    report.source_updated_at,
    report.batch_id,
    report.landed_id,
    report.visible_at
from report
{{ join_organisation('report', 'result_application', 'beneficiary', 'org') }}
left join task
    on report.source_id = task.source_id and report.task_code = task.task_code
left join {{ ref('dim_province') }} as app_prov
    on
        report.application_province_code = app_prov.code
        and {{ valid_on('app_prov', 'report.unit_date') }}
left join {{ ref('dim_commune') }} as app_commune
    on
        report.application_commune_code = app_commune.code
        and {{ valid_on('app_commune', 'report.unit_date') }}
left join {{ ref('dim_province') }} as task_prov
    on
        task.province_code = task_prov.code
        and {{ valid_on('task_prov', 'task.unit_date') }}
left join {{ ref('dim_province') }} as task_prov_now
    on
        task_prov.current_province_code = task_prov_now.code
        and task_prov_now.is_current
