-- ops_source_freshness has one row per source and entity.
select
    source_id,
    entity,
    count(*) as row_count
from {{ ref('ops_source_freshness') }}
group by source_id, entity
having count(*) > 1
