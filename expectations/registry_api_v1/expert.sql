-- Typed projection of a landed batch of experts (chuyên gia), validated by expert.json.
-- Personal data (citizen_id, phone, email) is neither read nor typed here: it stays in the
-- landing zone (the gate scans `record` for personal data in clear, skipping those declared
-- fields, and keeps them out of quarantine). Check columns (*_problem, missing_fields) are
-- null when the row is fine and otherwise say what is wrong.
select
    typed.*,
    -- Province codes are those in force on the registration date (old before 2025-07-01).
    case when typed.registered_date < date '2025-07-01' then typed.province_code end
        as province_code_before_2025,
    case when typed.registered_date >= date '2025-07-01' then typed.province_code end
        as province_code_2025,
    extract(year from typed.registered_date)::integer - typed.birth_year as age_at_registration,
    format('born in ''%s'', registered on ''%s''', typed.birth_year, typed.registered_date)
        as age_detail,
    nullif(concat_ws(
        ', ',
        case when typed.full_name is null then 'full_name' end,
        case when typed.gender is null then 'gender' end,
        case when typed.birth_year is null then 'birth_year' end,
        case when typed.degree is null then 'degree' end,
        case when typed.field_code is null then 'field_code' end,
        case when typed.specialisation is null then 'specialisation' end,
        case when typed.organisation_name is null then 'organisation_name' end,
        case when typed.province_code is null then 'province_code' end,
        case when typed.registered_date is null then 'registered_date' end
    ), '') as missing_fields,
    -- A professor or associate professor holds a doctorate (QĐ 37/2018/QĐ-TTg).
    case when typed.academic_title is not null
            and typed.degree not in ('doctor', 'doctor_of_science')
        then format('''%s'' with degree ''%s''', typed.academic_title, typed.degree)
    end as academic_title_problem
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
        nullif(btrim(record ->> 'full_name'), '') as full_name,
        record ->> 'gender' as gender,
        case when jsonb_typeof(record -> 'birth_year') = 'number'
                and record ->> 'birth_year' ~ '^-?[0-9]{1,9}$'
            then (record ->> 'birth_year')::integer end as birth_year,
        record ->> 'degree' as degree,
        record ->> 'academic_title' as academic_title,
        record ->> 'field_code' as field_code,
        nullif(btrim(record ->> 'specialisation'), '') as specialisation,
        nullif(btrim(record ->> 'organisation_name'), '') as organisation_name,
        record ->> 'province_code' as province_code,
        ops.try_date(record ->> 'registered_date') as registered_date,
        record ->> 'origin_registry' as origin_registry
    from raw.landed
) as typed
