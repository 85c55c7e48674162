-- Typed projection of a landed technology batch (công nghệ), validated by technology.json.
-- Values that do not parse become null, so the not-null and range checks catch them. Check
-- columns (*_problem) are null when the row is fine and say what is wrong otherwise.
-- The record's date is registered_date: it decides which province/commune codes are in force.
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
    l.record ->> 'name' as name,
    l.record ->> 'field_code' as field_code,
    -- as text: a JSON 7 reads '7', while 7.5 or "seven" are not in the set '1'..'9'
    l.record ->> 'trl' as trl,
    l.record ->> 'owner_type' as owner_type,
    l.record ->> 'owner_enterprise_code' as owner_enterprise_code,
    d.registered_date,
    l.record ->> 'province_code' as province_code,
    l.record ->> 'commune_code' as commune_code,
    case when d.registered_date < date '2025-07-01' then l.record ->> 'province_code' end
        as province_code_before_2025,
    case when d.registered_date >= date '2025-07-01' then l.record ->> 'province_code' end
        as province_code_2025,
    case when d.registered_date < date '2025-07-01' then l.record ->> 'commune_code' end
        as commune_code_before_2025,
    case when d.registered_date >= date '2025-07-01' then l.record ->> 'commune_code' end
        as commune_code_2025,
    -- The commune must lie in the province on the record's date (e.g. an old Nam Định
    -- commune is not one of Ninh Bình's before 2025-07-01): 'province:commune' when both
    -- codes are in force then (otherwise their own checks speak), against the pairs of
    -- that period.
    case when d.registered_date < date '2025-07-01'
            and l.record ->> 'province_code' in
                (select code from ops.code_list where list_name = 'province_codes_before_2025')
            and l.record ->> 'commune_code' in
                (select code from ops.code_list where list_name = 'commune_codes_before_2025')
        then (l.record ->> 'province_code') || ':' || (l.record ->> 'commune_code')
    end as commune_in_province_before_2025,
    case when d.registered_date >= date '2025-07-01'
            and l.record ->> 'province_code' in
                (select code from ops.code_list where list_name = 'province_codes_2025')
            and l.record ->> 'commune_code' in
                (select code from ops.code_list where list_name = 'commune_codes_2025')
        then (l.record ->> 'province_code') || ':' || (l.record ->> 'commune_code')
    end as commune_in_province_2025,
    case when not ops.mst_valid(l.record ->> 'owner_enterprise_code')
        then format('%L', l.record ->> 'owner_enterprise_code') end
        as owner_enterprise_code_problem,
    case when l.record ->> 'owner_type' = 'enterprise' and l.record ->> 'owner_enterprise_code' is null
        then 'owner_type is enterprise' end as owner_enterprise_code_missing,
    -- null or absent: no linked IP rights; anything but an array of T-YYYY-NNNNN is a problem
    case
        when jsonb_typeof(l.record -> 'ip_application_numbers') not in ('array', 'null')
            then format('not an array: %s', l.record -> 'ip_application_numbers')
        when jsonb_typeof(l.record -> 'ip_application_numbers') = 'array'
            then (
                select string_agg(format('%L', coalesce(n #>> '{}', 'null')), ', ')
                from jsonb_array_elements(l.record -> 'ip_application_numbers') as e (n)
                where jsonb_typeof(n) <> 'string' or n #>> '{}' !~ '^[1-4]-[0-9]{4}-[0-9]{5}$'
            )
    end as ip_application_numbers_problem,
    -- a technology relies on patents and utility solutions (type digit 1 or 2)
    case when jsonb_typeof(l.record -> 'ip_application_numbers') = 'array'
        then (
            select string_agg(format('%L', n #>> '{}'), ', ')
            from jsonb_array_elements(l.record -> 'ip_application_numbers') as e (n)
            where n #>> '{}' ~ '^[34]-[0-9]{4}-[0-9]{5}$'
        )
    end as ip_application_numbers_type_problem
from raw.landed as l
cross join lateral (select ops.try_date(l.record ->> 'registered_date') as registered_date) as d
