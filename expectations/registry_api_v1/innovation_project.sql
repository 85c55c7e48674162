-- Typed projection of a landed innovation-project batch (dự án ĐMST được hỗ trợ từ ngân sách
-- tỉnh), validated by innovation_project.json. Values that do not parse become null, so the
-- not-null and range checks catch them. Check columns (*_problem) are null when the row is fine
-- and say what is wrong otherwise.
-- The record's date is decision_date: it decides which province/commune codes are in force.
select
    l.batch_id,
    l.landed_id,
    l.source_id,
    l.record_id,
    l.version,
    l.updated_at,
    l.deleted,
    l.landing_issue,
    l.record,
    l.record ->> 'enterprise_code' as enterprise_code,
    l.record ->> 'project_name' as project_name,
    l.record ->> 'field_code' as field_code,
    a.support_amount_million_vnd,
    a.total_amount_million_vnd,
    case when l.record ->> 'support_year' ~ '^-?[0-9]+$'
        then (l.record ->> 'support_year')::numeric end as support_year,
    case when l.record ->> 'commercialised_products' ~ '^-?[0-9]+$'
        then (l.record ->> 'commercialised_products')::numeric end as commercialised_products,
    l.record ->> 'status' as status,
    d.decision_date,
    l.record ->> 'province_code' as province_code,
    l.record ->> 'commune_code' as commune_code,
    case when d.decision_date < date '2025-07-01' then l.record ->> 'province_code' end
        as province_code_before_2025,
    case when d.decision_date >= date '2025-07-01' then l.record ->> 'province_code' end
        as province_code_2025,
    case when d.decision_date < date '2025-07-01' then l.record ->> 'commune_code' end
        as commune_code_before_2025,
    case when d.decision_date >= date '2025-07-01' then l.record ->> 'commune_code' end
        as commune_code_2025,
    -- The commune must lie in the province on the record's date (e.g. an old Nam Định
    -- commune is not one of Ninh Bình's before 2025-07-01): 'province:commune' when both
    -- codes are in force then (otherwise their own checks speak), against the pairs of
    -- that period.
    case when d.decision_date < date '2025-07-01'
            and l.record ->> 'province_code' in
                (select code from ops.code_list where list_name = 'province_codes_before_2025')
            and l.record ->> 'commune_code' in
                (select code from ops.code_list where list_name = 'commune_codes_before_2025')
        then (l.record ->> 'province_code') || ':' || (l.record ->> 'commune_code')
    end as commune_in_province_before_2025,
    case when d.decision_date >= date '2025-07-01'
            and l.record ->> 'province_code' in
                (select code from ops.code_list where list_name = 'province_codes_2025')
            and l.record ->> 'commune_code' in
                (select code from ops.code_list where list_name = 'commune_codes_2025')
        then (l.record ->> 'province_code') || ':' || (l.record ->> 'commune_code')
    end as commune_in_province_2025,
    case when not ops.mst_valid(l.record ->> 'enterprise_code')
        then format('%L', l.record ->> 'enterprise_code') end as enterprise_code_problem,
    -- 1,000,000 million VND is 1,000 billion VND: no provincial innovation project reaches it,
    -- while any real amount written in VND (>= 1 million VND) is above it
    case when a.support_amount_million_vnd > 1000000
        then format('%s', a.support_amount_million_vnd) end as support_amount_unit_problem,
    case when a.total_amount_million_vnd > 1000000
        then format('%s', a.total_amount_million_vnd) end as total_amount_unit_problem,
    -- support_year is the year of the support decision
    case when (l.record ->> 'support_year') ~ '^-?[0-9]+$'
            and (l.record ->> 'support_year')::numeric <> extract(year from d.decision_date)
        then format('support_year %s, decision dated %s', l.record ->> 'support_year',
                    d.decision_date) end as support_year_problem,
    case when a.support_amount_million_vnd > a.total_amount_million_vnd
        then format('support %s > total %s million VND', a.support_amount_million_vnd,
                    a.total_amount_million_vnd) end as support_over_total,
    -- the contract: products are 0 until the project is completed
    case when l.record ->> 'status' in ('approved', 'in_progress', 'cancelled')
            and l.record ->> 'commercialised_products' ~ '^[0-9]*[1-9][0-9]*$'
        then format('%s products, status %s', l.record ->> 'commercialised_products',
                    l.record ->> 'status') end as products_before_completion
from raw.landed as l
cross join lateral (
    select
        ops.try_date(l.record ->> 'decision_date') as decision_date
) as d
cross join lateral (
    select
        ops.try_numeric(l.record ->> 'support_amount_million_vnd') as support_amount_million_vnd,
        ops.try_numeric(l.record ->> 'total_amount_million_vnd') as total_amount_million_vnd
) as a
