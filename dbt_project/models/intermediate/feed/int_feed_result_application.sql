-- Result application reports (báo cáo ứng dụng kết quả) as national records
-- (feed_result_application), keyed `<province>:<task_code>:<report_year>` on the province of
-- their task (today's; else the registry's), which also prefixes the task's own record key.
with report as (
    select
        fct.*,
        coalesce(fct.province_code_current, registry.province_code) as feed_province_code
    from {{ ref('fct_result_application') }} as fct
    left join {{ ref('dim_source') }} as registry
        on fct.source_id = registry.source_id
)

select
    report.feed_province_code as province_code,
    report.feed_province_code || ':' || report.task_code || ':' || report.report_year
        as record_key,
    jsonb_build_object(
        'task_code', report.task_code,
        'st_task_record_key', report.feed_province_code || ':' || report.task_code,
        'report_year', report.report_year,
        'reporting_year', report.reporting_year,
        'applied', report.applied,
        'application_place', report.application_place,
        'application_province_code', report.application_province_code_current,
        'application_province_code_recorded', report.application_province_code,
        'application_commune_code', report.application_commune_code_current,
        'application_commune_code_recorded', report.application_commune_code,
        'beneficiary_mst',
        coalesce(beneficiary.enterprise_code, report.beneficiary_enterprise_code),
        'beneficiary_name', report.beneficiary_enterprise_name,
        'revenue_million_vnd', report.revenue_million_vnd,
        'effect', report.effect,
        'report_date', report.report_date,
        'acceptance_date', report.acceptance_date,
        'applied_within_12_months', report.applied_within_12_months,
        'province_code', report.feed_province_code,
        'province_code_recorded', report.province_code,
        'recorded_units_date', report.unit_date
    ) as payload,
    report.source_id,
    report.record_id,
    report.landed_id,
    report.result_application_key as warehouse_key
from report
left join {{ ref('dim_organisation') }} as beneficiary
    on report.beneficiary_organisation_key = beneficiary.organisation_key
