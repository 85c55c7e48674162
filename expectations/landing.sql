-- The landing envelope of every landed record, checked by landing.json for every entity.
-- Entity projections start with these same columns; `record` feeds the gate's personal-data scan.
select
    batch_id,
    landed_id,
    source_id,
    record_id,
    version,
    updated_at,
    deleted,
    landing_issue,
    record
from raw.landed
