-- S&T tasks from provincial registries (registry API v1): batches the gate published (up to the
-- build's cutoff), without the rows the quality gate quarantined; standardised values where
-- landing repaired them. The gate has checked every cast below.
with published_batches as (
    select batch_id
    from {{ source('ops', 'load_batch') }}
    where
        state = 'published'
        and contract = 'registry-api-v1'
        and entity = 'st_task'
        and {{ published_by_cutoff('published_at') }}
),

open_quarantine as (
    select distinct landed_id
    from {{ source('ops', 'quarantine') }}
    where resolved_at is null
)

select
    landed.landed_id,
    landed.batch_id,
    landed.source_id,
    landed.record_id as task_code,
    landed.version,
    landed.updated_at as source_updated_at,
    landed.deleted as is_deleted,
    landed.extracted_at,
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
    landed.record ->> 'acceptance_rating' as acceptance_rating
from {{ source('raw', 'landed') }} as landed
inner join published_batches on landed.batch_id = published_batches.batch_id
where
    landed.entity = 'st_task'
    and not exists (
        select 1 from open_quarantine
        where open_quarantine.landed_id = landed.landed_id
    )
