-- One row per source and entity: its latest batch, latest success (a batch the gate published)
-- and latest failure, hours since that success, what waits in quarantine, and rows per batch.
-- As of the build (as_of).
with load_batch as (
    select
        batch_id,
        source_id,
        entity,
        contract,
        state,
        started_at,
        landed_at,
        published_at,
        failed_at,
        records_landed,
        coalesce(error, blocked_reason) as failure_reason
    from {{ source('ops', 'load_batch') }}
),

last_batch as (
    select distinct on (source_id, entity)
        source_id,
        entity,
        contract,
        batch_id,
        state,
        started_at
    from load_batch
    order by source_id asc, entity asc, batch_id desc
),

last_success as (
    select distinct on (source_id, entity)
        source_id,
        entity,
        batch_id,
        published_at
    from load_batch
    where state = 'published'
    order by source_id asc, entity asc, published_at desc, batch_id desc
),

last_failure as (
    select distinct on (source_id, entity)
        source_id,
        entity,
        batch_id,
        failed_at,
        failure_reason
    from load_batch
    where state = 'failed'
    order by source_id asc, entity asc, failed_at desc nulls last, batch_id desc
),

recent_landings as (
    select
        source_id,
        entity,
        records_landed,
        row_number() over (
            partition by source_id, entity order by batch_id desc
        ) as recency
    from load_batch
    where landed_at is not null
),

rows_per_batch as (
    select
        source_id,
        entity,
        max(records_landed) filter (where recency = 1) as rows_in_last_batch,
        percentile_cont(0.5) within group (
            order by records_landed
        ) as median_rows_last_5_batches
    from recent_landings
    where recency <= 5
    group by source_id, entity
),

open_quarantine as (
    select
        source_id,
        entity,
        count(distinct landed_id) as open_quarantine_records,
        min(quarantined_at) as oldest_open_quarantine_at
    from {{ source('ops', 'quarantine') }}
    where resolved_at is null
    group by source_id, entity
)

select
    last_batch.source_id,
    last_batch.entity,
    last_batch.contract,
    last_batch.batch_id as last_batch_id,
    last_batch.state as last_batch_state,
    last_batch.started_at as last_batch_started_at,
    last_success.batch_id as last_success_batch_id,
    last_success.published_at as last_success_at,
    round(
        (extract(epoch from now() - last_success.published_at) / 3600)::numeric, 1
    ) as hours_since_last_success,
    last_failure.batch_id as last_failure_batch_id,
    last_failure.failed_at as last_failure_at,
    last_failure.failure_reason as last_failure_error,
    coalesce(open_quarantine.open_quarantine_records, 0) as open_quarantine_records,
    open_quarantine.oldest_open_quarantine_at,
    rows_per_batch.rows_in_last_batch,
    rows_per_batch.median_rows_last_5_batches,
    now() as as_of
from last_batch
left join last_success
    on
        last_batch.source_id = last_success.source_id
        and last_batch.entity = last_success.entity
left join last_failure
    on
        last_batch.source_id = last_failure.source_id
        and last_batch.entity = last_failure.entity
left join rows_per_batch
    on
        last_batch.source_id = rows_per_batch.source_id
        and last_batch.entity = rows_per_batch.entity
left join open_quarantine
    on
        last_batch.source_id = open_quarantine.source_id
        and last_batch.entity = open_quarantine.entity
