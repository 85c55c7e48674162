-- Result application reports (báo cáo ứng dụng kết quả) from provincial registries (registry
-- API v1): every published version, typed. The gate has checked every cast below.
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
    landed.record ->> 'task_code' as task_code,
    (landed.record ->> 'report_year')::integer as report_year,
    (landed.record ->> 'reporting_year')::integer as reporting_year,
    (landed.record ->> 'applied')::boolean as applied,
    landed.record ->> 'application_place' as application_place,
    landed.record ->> 'application_province_code' as application_province_code,
    landed.record ->> 'application_commune_code' as application_commune_code,
    landed.record ->> 'beneficiary_enterprise_name' as beneficiary_enterprise_name,
    landed.record ->> 'beneficiary_enterprise_code' as beneficiary_enterprise_code,
    (landed.record ->> 'revenue_million_vnd')::numeric(18, 3) as revenue_million_vnd,
    landed.record ->> 'effect' as effect,
    (landed.record ->> 'report_date')::date as report_date,
    landed.record ->> 'origin_registry' as origin_registry,
    -- The gate checks the unit codes against the lists in force on the report date.
    (landed.record ->> 'report_date')::date as unit_date
from ({{ published_records('registry-api-v1', 'result_application') }}) as landed
