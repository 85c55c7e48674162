-- Typed projection of a landed S&T task batch, validated by st_task.json.
-- Values that do not parse become null here, so the not-null and range checks catch them.
select
    batch_id,
    landed_id,
    record_id,
    version,
    updated_at,
    deleted,
    landing_issue,
    record ->> 'title' as title,
    record ->> 'task_level' as task_level,
    record ->> 'task_type' as task_type,
    record ->> 'field_code' as field_code,
    record ->> 'host_organisation_name' as host_organisation_name,
    record ->> 'status' as status,
    case when jsonb_typeof(record -> 'budget_state_million_vnd') = 'number'
        then (record ->> 'budget_state_million_vnd')::numeric end as budget_state_million_vnd,
    case when jsonb_typeof(record -> 'budget_other_million_vnd') = 'number'
        then (record ->> 'budget_other_million_vnd')::numeric end as budget_other_million_vnd,
    ops.try_date(record ->> 'start_date') as start_date,
    ops.try_date(record ->> 'end_date') as end_date
from raw.landed
