-- S&T tasks from provincial registries (registry API v1): every published version, typed.
-- Standardised values where landing repaired them; the gate has checked every cast below.
select
    landed.landed_id,
    landed.batch_id,
    landed.source_id,
    landed.record_id,
    landed.version,
    landed.source_updated_at,
    landed.is_deleted,
    landed.extracted_at,
    landed.visible_at,
    landed.record_id as task_code,
    landed.record ->> 'title' as title,
    landed.record ->> 'task_level' as task_level,
    landed.record ->> 'task_type' as task_type,
    landed.record ->> 'field_code' as field_code,
    landed.record ->> 'host_organisation_name' as host_organisation_name,
    landed.record ->> 'host_organisation_code' as host_organisation_code,
    landed.record ->> 'principal_investigator' as principal_investigator,
    landed.record ->> 'province_code' as province_code,
    (landed.record ->> 'budget_state_million_vnd')::numeric(18, 3) as budget_state_million_vnd,
    (landed.record ->> 'budget_other_million_vnd')::numeric(18, 3) as budget_other_million_vnd,
    (landed.record ->> 'start_date')::date as start_date,
    (landed.record ->> 'end_date')::date as end_date,
    landed.record ->> 'status' as status,
    (landed.record ->> 'acceptance_date')::date as acceptance_date,
    landed.record ->> 'acceptance_rating' as acceptance_rating,
    landed.record ->> 'origin_registry' as origin_registry,
    -- The date the unit codes refer to (as the gate checks them): the task's start, or its
    -- last update when that is earlier (a proposed task is recorded before it starts).
    least(
        (landed.record ->> 'start_date')::date, (landed.source_updated_at at time zone 'UTC')::date
    ) as unit_date
from ({{ published_records('registry-api-v1', 'st_task') }}) as landed
