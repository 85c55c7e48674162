-- Enterprise innovation projects supported from the provincial budget (dự án ĐMST được hỗ trợ
-- từ ngân sách tỉnh) from provincial registries (registry API v1): every published version,
-- typed. The gate has checked every cast below.
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
    landed.record_id as project_id,
    landed.record ->> 'enterprise_name' as enterprise_name,
    landed.record ->> 'enterprise_code' as enterprise_code,
    landed.record ->> 'project_name' as project_name,
    landed.record ->> 'field_code' as field_code,
    (landed.record ->> 'support_year')::integer as support_year,
    (landed.record ->> 'support_amount_million_vnd')::numeric(18, 3) as support_amount_million_vnd,
    (landed.record ->> 'total_amount_million_vnd')::numeric(18, 3) as total_amount_million_vnd,
    (landed.record ->> 'commercialised_products')::integer as commercialised_products,
    landed.record ->> 'status' as status,
    landed.record ->> 'decision_number' as decision_number,
    (landed.record ->> 'decision_date')::date as decision_date,
    landed.record ->> 'address' as address,
    landed.record ->> 'province_code' as province_code,
    landed.record ->> 'commune_code' as commune_code,
    landed.record ->> 'origin_registry' as origin_registry,
    -- The gate checks the unit codes against the lists in force on the decision date.
    (landed.record ->> 'decision_date')::date as unit_date
from ({{ published_records('registry-api-v1', 'innovation_project') }}) as landed
