-- Typed projection of a landed technology-demand batch (nhu cầu công nghệ), validated by
-- technology_demand.json. Values that do not parse become null, so the not-null and range checks
-- catch them. Check columns (*_problem) are null when the row is fine and say what is wrong.
-- The record's date is posted_date: it decides which province/commune codes are in force.
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
    l.record ->> 'field_code' as field_code,
    ops.try_numeric(l.record ->> 'budget_million_vnd') as budget_million_vnd,
    l.record ->> 'status' as status,
    d.posted_date,
    l.record ->> 'province_code' as province_code,
    l.record ->> 'commune_code' as commune_code,
    case when d.posted_date < date '2025-07-01' then l.record ->> 'province_code' end
        as province_code_before_2025,
    case when d.posted_date >= date '2025-07-01' then l.record ->> 'province_code' end
        as province_code_2025,
    case when d.posted_date < date '2025-07-01' then l.record ->> 'commune_code' end
        as commune_code_before_2025,
    case when d.posted_date >= date '2025-07-01' then l.record ->> 'commune_code' end
        as commune_code_2025,
    -- The commune must lie in the province on the record's date (e.g. an old Nam Định
    -- commune is not one of Ninh Bình's before 2025-07-01): 'province:commune' when both
    -- codes are in force then (otherwise their own checks speak), against the pairs of
    -- that period.
    case when d.posted_date < date '2025-07-01'
            and l.record ->> 'province_code' in
                (select code from ops.code_list where list_name = 'province_codes_before_2025')
            and l.record ->> 'commune_code' in
                (select code from ops.code_list where list_name = 'commune_codes_before_2025')
        then (l.record ->> 'province_code') || ':' || (l.record ->> 'commune_code')
    end as commune_in_province_before_2025,
    case when d.posted_date >= date '2025-07-01'
            and l.record ->> 'province_code' in
                (select code from ops.code_list where list_name = 'province_codes_2025')
            and l.record ->> 'commune_code' in
                (select code from ops.code_list where list_name = 'commune_codes_2025')
        then (l.record ->> 'province_code') || ':' || (l.record ->> 'commune_code')
    end as commune_in_province_2025,
    case when not ops.mst_valid(l.record ->> 'enterprise_code')
        then format('%L', l.record ->> 'enterprise_code') end as enterprise_code_problem,
    -- 1,000,000 million VND is 1,000 billion VND: no enterprise's technology demand reaches it,
    -- while any real budget written in VND (>= 1 million VND) is above it
    case when ops.try_numeric(l.record ->> 'budget_million_vnd') > 1000000
        then format('%s', l.record ->> 'budget_million_vnd') end as budget_unit_problem
from raw.landed as l
cross join lateral (select ops.try_date(l.record ->> 'posted_date') as posted_date) as d
