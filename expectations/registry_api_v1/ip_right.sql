-- Typed projection of a landed batch of IP rights (tài sản trí tuệ), validated by
-- ip_right.json. Check columns (*_problem, missing_fields) are null when the row is fine and
-- otherwise say what is wrong, quoting values so that ops.open_quarantine groups rows by
-- problem.
select
    typed.*,
    -- Unit codes are those in force on the filing date (old codes before 2025-07-01).
    case when typed.filing_date < date '2025-07-01' then typed.applicant_province_code end
        as applicant_province_code_before_2025,
    case when typed.filing_date >= date '2025-07-01' then typed.applicant_province_code end
        as applicant_province_code_2025,
    case when typed.filing_date < date '2025-07-01' then typed.applicant_commune_code end
        as applicant_commune_code_before_2025,
    case when typed.filing_date >= date '2025-07-01' then typed.applicant_commune_code end
        as applicant_commune_code_2025,
    -- The commune must lie in the province on the record's date (e.g. an old Nam Định
    -- commune is not one of Ninh Bình's before 2025-07-01): 'province:commune' when both
    -- codes are in force then (otherwise their own checks speak), against the pairs of
    -- that period.
    case when typed.filing_date < date '2025-07-01'
            and typed.applicant_province_code in
                (select code from ops.code_list where list_name = 'province_codes_before_2025')
            and typed.applicant_commune_code in
                (select code from ops.code_list where list_name = 'commune_codes_before_2025')
        then (typed.applicant_province_code) || ':' || (typed.applicant_commune_code)
    end as commune_in_province_before_2025,
    case when typed.filing_date >= date '2025-07-01'
            and typed.applicant_province_code in
                (select code from ops.code_list where list_name = 'province_codes_2025')
            and typed.applicant_commune_code in
                (select code from ops.code_list where list_name = 'commune_codes_2025')
        then (typed.applicant_province_code) || ':' || (typed.applicant_commune_code)
    end as commune_in_province_2025,
    nullif(concat_ws(
        ', ',
        case when typed.ip_type is null then 'ip_type' end,
        case when typed.application_number is null then 'application_number' end,
        case when typed.title is null then 'title' end,
        case when typed.filing_date is null then 'filing_date' end,
        case when typed.status is null then 'status' end,
        case when typed.applicant_type is null then 'applicant_type' end,
        case when typed.applicant_name is null then 'applicant_name' end,
        case when typed.applicant_province_code is null then 'applicant_province_code' end,
        case when typed.applicant_commune_code is null then 'applicant_commune_code' end,
        case when typed.field_code is null then 'field_code' end,
        case when typed.commercialisation is null then 'commercialisation' end,
        case when typed.publication_date is null and typed.record ->> 'publication_date' is not null
            then 'publication_date' end,
        case when typed.grant_date is null and typed.record ->> 'grant_date' is not null
            then 'grant_date' end
    ), '') as missing_fields,
    -- The first digit of the application number is the type of right (1 invention,
    -- 2 utility solution, 3 industrial design, 4 trademark).
    case when typed.application_number ~ '^[1-4]-'
            and left(typed.application_number, 1) is distinct from case typed.ip_type
                when 'invention' then '1' when 'utility_solution' then '2'
                when 'industrial_design' then '3' when 'trademark' then '4' end
            and typed.ip_type in ('invention', 'utility_solution', 'industrial_design', 'trademark')
        then format('type digit %s in ''%s'' is not %s %s', left(typed.application_number, 1),
            typed.application_number,
            case when typed.ip_type in ('invention', 'industrial_design') then 'an' else 'a' end,
            replace(typed.ip_type, '_', ' '))
    end as ip_type_digit_problem,
    -- YYYY of the number is the year the application reached the IP Office; a PCT application
    -- keeps its earlier international filing date, so a mismatch is only a warning.
    case when typed.application_number ~ '^[1-4]-[0-9]{4}-'
            and substr(typed.application_number, 3, 4)
            <> extract(year from typed.filing_date)::text
        then format('''%s'' filed on ''%s''', typed.application_number, typed.filing_date)
    end as application_year_problem,
    case
        when typed.certificate_number is not null and typed.grant_date is null
            then format('certificate ''%s'' without a grant_date', typed.certificate_number)
        when typed.grant_date is not null and typed.certificate_number is null
            then format('granted on ''%s'' without a certificate_number', typed.grant_date)
        when typed.status in ('granted', 'expired') and typed.grant_date is null
            then format('status ''%s'' without a grant_date', typed.status)
        when left(typed.certificate_number, 1) <> left(typed.application_number, 1)
            then format('certificate ''%s'' and application ''%s'' are of different types',
                typed.certificate_number, typed.application_number)
    end as grant_problem,
    case when not ops.mst_valid(typed.applicant_enterprise_code)
        then format('''%s'' is not 10 digits (or 10-3) with a valid check digit',
            typed.applicant_enterprise_code)
    end as applicant_enterprise_code_problem
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
        record ->> 'ip_type' as ip_type,
        nullif(btrim(record ->> 'application_number'), '') as application_number,
        nullif(btrim(record ->> 'title'), '') as title,
        ops.try_date(record ->> 'filing_date') as filing_date,
        ops.try_date(record ->> 'publication_date') as publication_date,
        ops.try_date(record ->> 'grant_date') as grant_date,
        nullif(btrim(record ->> 'certificate_number'), '') as certificate_number,
        record ->> 'status' as status,
        record ->> 'applicant_type' as applicant_type,
        nullif(btrim(record ->> 'applicant_name'), '') as applicant_name,
        record ->> 'applicant_enterprise_code' as applicant_enterprise_code,
        record ->> 'applicant_address' as applicant_address,
        record ->> 'applicant_province_code' as applicant_province_code,
        record ->> 'applicant_commune_code' as applicant_commune_code,
        record ->> 'field_code' as field_code,
        record ->> 'commercialisation' as commercialisation,
        record ->> 'origin_registry' as origin_registry
    from raw.landed
) as typed
