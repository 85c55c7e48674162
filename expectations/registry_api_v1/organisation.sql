-- Typed projection of a landed batch of organisations (tổ chức KH&CN, doanh nghiệp KH&CN,
-- doanh nghiệp khởi nghiệp ĐMST, tổ chức trung gian), validated by organisation.json. Check
-- columns (*_problem, missing_fields) are null when the row is fine and otherwise say what is
-- wrong, quoting values so that ops.open_quarantine groups rows by problem.
select
    typed.*,
    -- Unit codes are those in force on the organisation's date (old codes before 2025-07-01).
    case when typed.record_date < date '2025-07-01' then typed.province_code end
        as province_code_before_2025,
    case when typed.record_date >= date '2025-07-01' then typed.province_code end
        as province_code_2025,
    case when typed.record_date < date '2025-07-01' then typed.commune_code end
        as commune_code_before_2025,
    case when typed.record_date >= date '2025-07-01' then typed.commune_code end
        as commune_code_2025,
    -- The commune must lie in the province on the record's date (e.g. an old Nam Định
    -- commune is not one of Ninh Bình's before 2025-07-01): 'province:commune' when both
    -- codes are in force then (otherwise their own checks speak), against the pairs of
    -- that period.
    case when typed.record_date < date '2025-07-01'
            and typed.province_code in
                (select code from ops.code_list where list_name = 'province_codes_before_2025')
            and typed.commune_code in
                (select code from ops.code_list where list_name = 'commune_codes_before_2025')
        then (typed.province_code) || ':' || (typed.commune_code)
    end as commune_in_province_before_2025,
    case when typed.record_date >= date '2025-07-01'
            and typed.province_code in
                (select code from ops.code_list where list_name = 'province_codes_2025')
            and typed.commune_code in
                (select code from ops.code_list where list_name = 'commune_codes_2025')
        then (typed.province_code) || ':' || (typed.commune_code)
    end as commune_in_province_2025,
    -- VSIC classes are checked by their division (2 digits), which must exist in the version
    -- the record names: the full class lists are not available offline.
    case when typed.vsic_version = '2018' then left(typed.vsic_code, 2) end as vsic_2018_division,
    case when typed.vsic_version = '2025' then left(typed.vsic_code, 2) end as vsic_2025_division,
    nullif(concat_ws(
        ', ',
        case when typed.name is null then 'name' end,
        case when typed.org_type is null then 'org_type' end,
        case when typed.ownership is null then 'ownership' end,
        case when typed.vsic_code is null then 'vsic_code' end,
        case when typed.vsic_version is null then 'vsic_version' end,
        case when typed.established_date is null then 'established_date' end,
        case when typed.staff_count is null then 'staff_count' end,
        case when typed.province_code is null then 'province_code' end,
        case when typed.commune_code is null then 'commune_code' end,
        case when typed.st_registration_date is null
                and typed.record ->> 'st_registration_date' is not null
            then 'st_registration_date' end
    ), '') as missing_fields,
    case
        when typed.org_type = 'intermediary' and typed.intermediary_kind is null
            then 'an intermediary without intermediary_kind'
        when typed.org_type <> 'intermediary' and typed.intermediary_kind is not null
            then format('intermediary_kind ''%s'' on a ''%s''', typed.intermediary_kind,
                typed.org_type)
        when typed.org_type in ('st_enterprise', 'innovative_startup')
                and typed.enterprise_code is null
            then format('a ''%s'' without an enterprise_code', typed.org_type)
    end as org_type_problem,
    case when not ops.mst_valid(typed.enterprise_code)
        then format('''%s'' is not 10 digits (or 10-3) with a valid check digit',
            typed.enterprise_code)
    end as enterprise_code_problem,
    -- VSIC 2025 (QĐ 36/2025) is in force from 2025-11-15; a record last changed before then
    -- cannot have been coded with it. Registries switch gradually, so only a warning.
    case when typed.vsic_version = '2025'
            and (typed.updated_at at time zone 'UTC')::date < date '2025-11-15'
        then format('VSIC 2025 on a record last updated on ''%s''',
            (typed.updated_at at time zone 'UTC')::date)
    end as vsic_version_problem
from (
    select
        batch_id,
        landed_id,
        source_id,
        record_id,
        version,
        updated_at,
        deleted,
        landing_issue,
        record,
        nullif(btrim(record ->> 'name'), '') as name,
        record ->> 'org_type' as org_type,
        record ->> 'intermediary_kind' as intermediary_kind,
        record ->> 'ownership' as ownership,
        record ->> 'enterprise_code' as enterprise_code,
        record ->> 'st_registration_number' as st_registration_number,
        ops.try_date(record ->> 'st_registration_date') as st_registration_date,
        record ->> 'vsic_code' as vsic_code,
        record ->> 'vsic_version' as vsic_version,
        ops.try_date(record ->> 'established_date') as established_date,
        case when jsonb_typeof(record -> 'staff_count') = 'number'
                and record ->> 'staff_count' ~ '^-?[0-9]{1,9}$'
            then (record ->> 'staff_count')::integer end as staff_count,
        record ->> 'address' as address,
        record ->> 'province_code' as province_code,
        record ->> 'commune_code' as commune_code,
        record ->> 'origin_registry' as origin_registry,
        -- The organisation's date for its unit codes: when the department registered it for
        -- S&T activity, or for one without that registration, when it was established.
        coalesce(
            ops.try_date(record ->> 'st_registration_date'),
            ops.try_date(record ->> 'established_date')
        ) as record_date
    from raw.landed
) as typed
