-- Published records the national feed cannot carry (no province, no national key, or a
-- duplicate key): a warning, never a silent drop. marts.feed_unplaced lists each with how to
-- resolve it.
{{ config(severity='warn') }}
select
    entity,
    reason,
    count(*) as records
from {{ ref('feed_unplaced') }}
group by entity, reason
