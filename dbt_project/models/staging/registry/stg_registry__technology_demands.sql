-- Technology demands of enterprises (nhu cầu công nghệ) from provincial registries (registry
-- API v1): every published version, typed. The gate has checked every cast below except the
-- budget, whose absence is only a warning: a budget that is not a number reads as null.
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
    landed.record_id as demand_id,
    landed.record ->> 'enterprise_name' as enterprise_name,
    landed.record ->> 'enterprise_code' as enterprise_code,
    landed.record ->> 'description' as description,
    landed.record ->> 'field_code' as field_code,
    case
        when jsonb_typeof(landed.record -> 'budget_million_vnd') = 'number'
            then (landed.record ->> 'budget_million_vnd')::numeric(18, 3)
    end as budget_million_vnd,
    landed.record ->> 'status' as status,
    (landed.record ->> 'posted_date')::date as posted_date,
    landed.record ->> 'address' as address,
    landed.record ->> 'province_code' as province_code,
    landed.record ->> 'commune_code' as commune_code,
    landed.record ->> 'origin_registry' as origin_registry,
    -- The gate checks the unit codes against the lists in force on the posting date.
    (landed.record ->> 'posted_date')::date as unit_date
from ({{ published_records('registry-api-v1', 'technology_demand') }}) as landed
