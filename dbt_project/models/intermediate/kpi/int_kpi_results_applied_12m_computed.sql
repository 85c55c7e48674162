-- Share of research results applied within 12 months of acceptance (NB-P2), per province (today's
-- boundaries) and acceptance year. A task accepted on d enters the denominator once d + 12 months
-- has passed by the as-of date (before that its outcome is still open), and the numerator when
-- a report shows its results applied within those 12 months (fct_result_application's
-- applied_within_12_months: the year-1 report, or an earlier one). A cohort counts only when
-- the province's reports reach into its year: before that, "not applied" would mean "not loaded".
with accepted as (
    select
        st_task_key,
        province_code_current as province_code,
        acceptance_date,
        acceptance_year
    from {{ ref('fct_st_task') }}
    where
        acceptance_date is not null
        and status in ('accepted', 'applied')
        and province_code_current is not null
        and (acceptance_date + interval '12 months')::date <= {{ kpi_as_of_date() }}
),

applied_in_window as (
    select distinct accepted.st_task_key
    from accepted
    inner join {{ ref('fct_result_application') }} as reports
        on accepted.st_task_key = reports.st_task_key
    where reports.applied_within_12_months
),

reported as (
    select
        province_code_current as province_code,
        max(report_date) as last_report_date
    from {{ ref('fct_result_application') }}
    where province_code_current is not null
    group by province_code_current
),

cohorts as (
    select
        accepted.province_code,
        accepted.acceptance_year as year,  -- noqa: RF04
        count(applied_in_window.st_task_key) as applied_tasks,
        count(*) as accepted_tasks
    from accepted
    inner join reported
        on
            accepted.province_code = reported.province_code
            and extract(year from reported.last_report_date) >= accepted.acceptance_year
    left join applied_in_window
        on accepted.st_task_key = applied_in_window.st_task_key
    group by accepted.province_code, accepted.acceptance_year
)

select
    province_code,
    year,
    'results_applied_within_12m_share' as measure,
    round(100.0 * applied_tasks / accepted_tasks, 2) as actual_value,
    applied_tasks::numeric as numerator,
    accepted_tasks::numeric as denominator,
    applied_tasks || ' of ' || accepted_tasks || ' S&T tasks accepted in ' || year
    || ' (12 months elapsed by ' || {{ kpi_as_of_date() }} || ') were applied within 12 months'
        as basis
from cohorts
