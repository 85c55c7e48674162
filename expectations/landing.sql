-- The landing envelope of every landed record, checked by landing.json for every entity.
select
    batch_id,
    landed_id,
    record_id,
    version,
    updated_at,
    deleted,
    landing_issue
from raw.landed
