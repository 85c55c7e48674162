-- One row per load batch: what the source sent, what the quality gate passed, warned about and
-- quarantined, how long each step took, and the warehouse publish that included the batch.
{%- set this_publish = var('publish_id', none) %}

select
    batch_id,
    source_id,
    entity,
    contract,
    state,
    records_extracted,
    records_landed,
    records_skipped,
    records_passed,
    records_warned,
    records_quarantined,
    round(records_quarantined::numeric / nullif(records_landed, 0), 4) as quarantined_share,
    started_at,
    landed_at,
    validated_at,
    published_at,
    failed_at,
    extract(epoch from landed_at - started_at)::numeric(12, 3) as landing_seconds,
    extract(epoch from validated_at - landed_at)::numeric(12, 3) as validation_seconds,
    extract(
        epoch from coalesce(published_at, failed_at) - started_at
    )::numeric(12, 3) as total_seconds,
    -- The batches this build includes get its publish_id in the ledger once it is published.
    {% if this_publish is not none and this_publish | string | length > 0 -%}
        coalesce(
            publish_id,
            case
                when state = 'published' and {{ published_by_cutoff('published_at') }}
                    then {{ this_publish | int }}
            end
        ) as publish_id,
    {%- else -%}
        publish_id,
    {%- endif %}
    blocked_reason,
    error
from {{ source('ops', 'load_batch') }}
