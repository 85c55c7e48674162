-- Typed projection of a landed batch of result application reports (báo cáo ứng dụng kết
-- quả), validated by result_application.json. The task each report is on is looked up among
-- the same source's S&T tasks that passed the gate (ops.accepted_record). Check columns
-- (*_problem, missing_fields) are null when the row is fine and otherwise say what is wrong,
-- quoting values so that ops.open_quarantine groups rows by problem.
select
    typed.*,
    -- Unit codes are those in force on the report date (old codes before 2025-07-01).
    case when typed.report_date < date '2025-07-01' then typed.application_province_code end
        as application_province_code_before_2025,
    case when typed.report_date >= date '2025-07-01' then typed.application_province_code end
        as application_province_code_2025,
    case when typed.report_date < date '2025-07-01' then typed.application_commune_code end
        as application_commune_code_before_2025,
    case when typed.report_date >= date '2025-07-01' then typed.application_commune_code end
        as application_commune_code_2025,
    -- The commune must lie in the province on the record's date (e.g. an old Nam Định
    -- commune is not one of Ninh Bình's before 2025-07-01): 'province:commune' when both
    -- codes are in force then (otherwise their own checks speak), against the pairs of
    -- that period.
    case when typed.report_date < date '2025-07-01'
            and typed.application_province_code in
                (select code from ops.code_list where list_name = 'province_codes_before_2025')
            and typed.application_commune_code in
                (select code from ops.code_list where list_name = 'commune_codes_before_2025')
        then (typed.application_province_code) || ':' || (typed.application_commune_code)
    end as commune_in_province_before_2025,
    case when typed.report_date >= date '2025-07-01'
            and typed.application_province_code in
                (select code from ops.code_list where list_name = 'province_codes_2025')
            and typed.application_commune_code in
                (select code from ops.code_list where list_name = 'commune_codes_2025')
        then (typed.application_province_code) || ':' || (typed.application_commune_code)
    end as commune_in_province_2025,
    nullif(concat_ws(
        ', ',
        case when typed.task_code is null then 'task_code' end,
        case when typed.report_year is null then 'report_year' end,
        case when typed.reporting_year is null then 'reporting_year' end,
        case when typed.applied is null then 'applied' end,
        case when typed.application_province_code is null then 'application_province_code' end,
        case when typed.effect is null then 'effect' end,
        case when typed.report_date is null then 'report_date' end,
        case when jsonb_typeof(typed.record -> 'revenue_million_vnd') not in ('number', 'null')
            then 'revenue_million_vnd' end
    ), '') as missing_fields,
    case
        when typed.task_code is null then null
        when task.record_id is null
            then format('task ''%s'' is not among the tasks of this registry that passed the gate',
                typed.task_code)
        when task.deleted then format('task ''%s'' was deleted', typed.task_code)
        when task.status is distinct from 'accepted' and task.status is distinct from 'applied'
            then format('task ''%s'' has status ''%s''', typed.task_code, task.status)
    end as task_problem,
    -- Report year y covers the y-th year after acceptance: its calendar year is the acceptance
    -- year + y, give or take one (a report written at the start or end of that year).
    case when typed.reporting_year - extract(year from task.acceptance_date)
            not between typed.report_year - 1 and typed.report_year + 1
        then format('reporting_year ''%s'' for report year ''%s'' of a task accepted on ''%s''',
            typed.reporting_year, typed.report_year, task.acceptance_date)
    end as reporting_year_problem,
    -- Five yearly reports follow acceptance; the fifth may be filed during the sixth year.
    case
        when typed.report_date < task.acceptance_date
            then format('report_date ''%s'' is before the acceptance of the task on ''%s''',
                typed.report_date, task.acceptance_date)
        when typed.report_date > task.acceptance_date + interval '6 years'
            then format('report_date ''%s'' is more than 6 years after acceptance on ''%s''',
                typed.report_date, task.acceptance_date)
    end as report_date_problem,
    case when not ops.mst_valid(typed.beneficiary_enterprise_code)
        then format('''%s'' is not 10 digits (or 10-3) with a valid check digit',
            typed.beneficiary_enterprise_code)
    end as beneficiary_enterprise_code_problem,
    -- No revenue from applying one task's results reaches 1,000 billion VND (10^6 million
    -- VND); even a small revenue written in VND instead of million VND is above that.
    case when typed.revenue_million_vnd >= 1000000
        then format('revenue_million_vnd ''%s''', typed.revenue_million_vnd)
    end as revenue_unit_problem,
    -- Plausibility, not a rule: results not applied bring no revenue and have no beneficiary.
    case
        when typed.applied = false and typed.revenue_million_vnd > 0
            then format('not applied, yet revenue_million_vnd ''%s''',
                typed.revenue_million_vnd)
        when typed.applied = false and typed.beneficiary_enterprise_code is not null
            then format('not applied, yet beneficiary ''%s''', typed.beneficiary_enterprise_code)
    end as applied_problem
from (
    select
        batch_id,
        landed_id,
        source_id,
        record_id,
        version,
        updated_at,
        deleted,
        landing_issue,
        record,
        nullif(btrim(record ->> 'task_code'), '') as task_code,
        case when jsonb_typeof(record -> 'report_year') = 'number'
                and record ->> 'report_year' ~ '^-?[0-9]{1,9}$'
            then (record ->> 'report_year')::integer end as report_year,
        case when jsonb_typeof(record -> 'reporting_year') = 'number'
                and record ->> 'reporting_year' ~ '^-?[0-9]{1,9}$'
            then (record ->> 'reporting_year')::integer end as reporting_year,
        case when jsonb_typeof(record -> 'applied') = 'boolean'
            then (record ->> 'applied')::boolean end as applied,
        record ->> 'application_place' as application_place,
        record ->> 'application_province_code' as application_province_code,
        record ->> 'application_commune_code' as application_commune_code,
        record ->> 'beneficiary_enterprise_name' as beneficiary_enterprise_name,
        record ->> 'beneficiary_enterprise_code' as beneficiary_enterprise_code,
        -- Amounts must be JSON numbers: a string such as '850,5' is not silently read.
        case when jsonb_typeof(record -> 'revenue_million_vnd') = 'number'
            then (record ->> 'revenue_million_vnd')::numeric end as revenue_million_vnd,
        nullif(btrim(record ->> 'effect'), '') as effect,
        ops.try_date(record ->> 'report_date') as report_date,
        record ->> 'origin_registry' as origin_registry
    from raw.landed
) as typed
left join lateral (
    select
        accepted.record_id,
        accepted.deleted,
        accepted.record ->> 'status' as status,
        ops.try_date(accepted.record ->> 'acceptance_date') as acceptance_date
    from ops.accepted_record as accepted
    where
        accepted.source_id = typed.source_id
        and accepted.entity = 'st_task'
        and accepted.record_id = typed.task_code
) as task on true
