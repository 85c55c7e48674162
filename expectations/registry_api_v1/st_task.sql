-- Typed projection of a landed S&T task batch, validated by st_task.json.
-- Values that do not parse become null here, so the not-null and range checks catch them.
-- Check columns (*_problem, missing_fields) are null when the row is fine and otherwise say
-- what is wrong, quoting the values so that ops.open_quarantine groups rows by problem.
select
    typed.*,
    -- Province codes are those in force on the task's date (old codes before 2025-07-01).
    case when typed.record_date < date '2025-07-01' then typed.province_code end
        as province_code_before_2025,
    case when typed.record_date >= date '2025-07-01' then typed.province_code end
        as province_code_2025,
    nullif(concat_ws(
        ', ',
        case when typed.task_level is null then 'task_level' end,
        case when typed.task_type is null then 'task_type' end,
        case when typed.status is null then 'status' end,
        case when typed.host_organisation_name is null then 'host_organisation_name' end,
        case when typed.principal_investigator is null then 'principal_investigator' end,
        case when typed.province_code is null then 'province_code' end,
        case when typed.budget_state_million_vnd is null then 'budget_state_million_vnd' end,
        case when typed.budget_other_million_vnd is null then 'budget_other_million_vnd' end,
        case when typed.end_date is null then 'end_date' end
    ), '') as missing_fields,
    case when not ops.mst_valid(typed.host_organisation_code)
        then format('''%s'' is not 10 digits (or 10-3) with a valid check digit',
            typed.host_organisation_code)
    end as host_organisation_code_problem,
    case
        when typed.acceptance_date is null and typed.acceptance_date_sent is not null
            then format('acceptance_date ''%s'' is not a date', typed.acceptance_date_sent)
        when typed.status in ('accepted', 'applied') and typed.acceptance_date is null
            then format('status ''%s'' without an acceptance_date', typed.status)
        when typed.status in ('accepted', 'applied') and typed.acceptance_rating is null
            then format('status ''%s'' without an acceptance_rating', typed.status)
    end as acceptance_problem,
    -- No single S&T task is funded with 1,000 billion VND (10^6 million VND); even the
    -- smallest budget written in VND instead of million VND is above that.
    case
        when typed.budget_state_million_vnd >= 1000000
            then format('budget_state_million_vnd ''%s''', typed.budget_state_million_vnd)
        when typed.budget_other_million_vnd >= 1000000
            then format('budget_other_million_vnd ''%s''', typed.budget_other_million_vnd)
    end as budget_unit_problem,
    -- Larger than the national programmes' tasks usually are, but possible: a warning.
    case when typed.budget_state_million_vnd + typed.budget_other_million_vnd > 100000
            and typed.budget_state_million_vnd < 1000000
            and typed.budget_other_million_vnd < 1000000
        then format('''%s'' million VND in all',
            typed.budget_state_million_vnd + typed.budget_other_million_vnd)
    end as budget_size_problem
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
        nullif(btrim(record ->> 'title'), '') as title,
        record ->> 'task_level' as task_level,
        record ->> 'task_type' as task_type,
        record ->> 'field_code' as field_code,
        nullif(btrim(record ->> 'host_organisation_name'), '') as host_organisation_name,
        record ->> 'host_organisation_code' as host_organisation_code,
        nullif(btrim(record ->> 'principal_investigator'), '') as principal_investigator,
        record ->> 'province_code' as province_code,
        record ->> 'status' as status,
        record ->> 'acceptance_rating' as acceptance_rating,
        -- Amounts must be JSON numbers: a string such as '850,5' is not silently read.
        case when jsonb_typeof(record -> 'budget_state_million_vnd') = 'number'
            then (record ->> 'budget_state_million_vnd')::numeric end as budget_state_million_vnd,
        case when jsonb_typeof(record -> 'budget_other_million_vnd') = 'number'
            then (record ->> 'budget_other_million_vnd')::numeric end as budget_other_million_vnd,
        ops.try_date(record ->> 'start_date') as start_date,
        ops.try_date(record ->> 'end_date') as end_date,
        ops.try_date(record ->> 'acceptance_date') as acceptance_date,
        record ->> 'acceptance_date' as acceptance_date_sent,
        -- The task's date for its unit codes: its start, or its last update when that is
        -- earlier (a proposed task is recorded before it starts).
        least(
            ops.try_date(record ->> 'start_date'), (updated_at at time zone 'UTC')::date
        ) as record_date
    from raw.landed
) as typed
