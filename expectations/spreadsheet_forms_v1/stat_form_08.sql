-- Typed projection of a landed batch of form 08/KHCN-SHTT (industrial-property applications and
-- protection titles of the report year; one dropped file), validated by stat_form_08.json.
-- Landing has standardised the record: dates are ISO, application numbers canonical
-- T-YYYY-NNNNN, texts NFC. Values that do not parse become null here. Check columns
-- (*_problem, missing_columns) are null when the row is fine and say what is wrong otherwise,
-- ending with the row's place in the file (`location`, quoted, so that ops.open_quarantine
-- groups rows by problem).
select
    typed.*,
    -- Text a spreadsheet would run as a formula (=, @, +/- but for numbers): kept as sent,
    -- warned about; exports neutralise it (connectors/cell_safety.py).
    ops.formula_like(typed.record) || ' at ' || typed.location as formula_like,
    -- The form's required columns, named as its header names them.
    nullif(concat_ws(', ',
        case when typed.so_don is null then 'Số đơn' end,
        case when typed.loai is null then 'Loại đối tượng' end,
        case when typed.ten_doi_tuong is null then 'Tên đối tượng' end,
        case when typed.chu_don is null then 'Chủ đơn' end,
        case when typed.ngay_nop is null then 'Ngày nộp đơn' end
    ), '') || ' at ' || typed.location as missing_columns,
    case when typed.loai is not null and typed.type_digit is null
        then format('%L at %s', typed.loai, typed.location)
    end as loai_problem,
    -- The first digit of an application number says the object type (1 invention, 2 utility
    -- solution, 3 industrial design, 4 trademark).
    case when left(typed.so_don, 1) <> typed.type_digit
        then format('%L is not a number of type %s (%s) at %s', typed.so_don, typed.type_digit,
            typed.loai, typed.location)
    end as so_don_type_problem,
    -- YYYY is the filing year, except for PCT national-phase entries (the year they entered
    -- Viet Nam, the filing date being the international one): a warning.
    case when typed.so_don ~ '^[1-4]-[0-9]{4}-' then
        -- nested: the cast runs only on a well-formed number
        case when extract(year from typed.ngay_nop) <> split_part(typed.so_don, '-', 2)::int
            then format('%L filed on %L at %s', typed.so_don, typed.ngay_nop, typed.location)
        end
    end as so_don_year_problem,
    case
        when typed.ngay_nop > typed.file_saved_on
            then format('filed on %L, after the file was saved (%L), at %s', typed.ngay_nop,
                typed.file_saved_on, typed.location)
        when typed.ngay_cap > typed.file_saved_on
            then format('granted on %L, after the file was saved (%L), at %s', typed.ngay_cap,
                typed.file_saved_on, typed.location)
    end as date_problem,
    -- A protection title has a number and a grant date; its number reads T-NNNNNNN (a
    -- trademark's may end -NNN) with the type digit of its object.
    case
        when typed.so_van_bang is not null and typed.ngay_cap is null
            then format('title %L without Ngày cấp at %s', typed.so_van_bang, typed.location)
        when typed.so_van_bang is null and typed.ngay_cap is not null
            then format('Ngày cấp %L without a title number at %s', typed.ngay_cap,
                typed.location)
        when typed.so_van_bang !~ '^[1-4]-[0-9]{7}(-[0-9]{3})?$'
            then format('title number %L is not T-NNNNNNN at %s', typed.so_van_bang,
                typed.location)
        when left(typed.so_van_bang, 1) <> typed.type_digit
            then format('title %L is not of type %s (%s) at %s', typed.so_van_bang,
                typed.type_digit, typed.loai, typed.location)
    end as van_bang_problem,
    -- The form lists what was filed or granted in the report year.
    case when extract(year from typed.ngay_nop) <> typed.report_year
            and coalesce(extract(year from typed.ngay_cap) <> typed.report_year, true)
        then format('filed on %L%s, report year %s, at %s', typed.ngay_nop,
            coalesce(format(', granted on %L', typed.ngay_cap), ''), typed.report_year,
            typed.location)
    end as report_year_window_problem,
    case
        when typed.report_year is null then format('no report year at %s', typed.location)
        when typed.report_year > extract(year from typed.file_saved_on)
            then format('report year %s is after the file was saved (%L) at %s',
                typed.report_year, typed.file_saved_on, typed.location)
    end as report_year_problem
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
        format('%L', concat_ws(', ',
            record ->> '_file', 'sheet ' || (record ->> '_sheet'), 'row ' || (record ->> '_row')
        )) as location,
        case when jsonb_typeof(record -> 'report_year') = 'number'
            then ops.try_numeric(record ->> 'report_year') end as report_year,
        -- The file's modification time (the envelope's updated_at), in Vietnam.
        (updated_at at time zone interval '+07:00')::date as file_saved_on,
        nullif(btrim(record ->> 'so_don'), '') as so_don,
        nullif(btrim(record ->> 'loai'), '') as loai,
        -- The object type as typed ("Nhãn hiệu", "sáng chế", the landing's English keys) →
        -- the type digit of its application numbers; unknown wording → null.
        case ops.lower_vi(regexp_replace(btrim(record ->> 'loai'), '\s+', ' ', 'g'))
            when 'sáng chế' then '1'
            when 'invention' then '1'
            when 'giải pháp hữu ích' then '2'
            when 'utility_solution' then '2'
            when 'utility solution' then '2'
            when 'kiểu dáng công nghiệp' then '3'
            when 'industrial_design' then '3'
            when 'industrial design' then '3'
            when 'nhãn hiệu' then '4'
            when 'nhãn hiệu hàng hóa' then '4'
            when 'nhãn hiệu hàng hoá' then '4'
            when 'trademark' then '4'
        end as type_digit,
        nullif(btrim(record ->> 'ten_doi_tuong'), '') as ten_doi_tuong,
        nullif(btrim(record ->> 'chu_don'), '') as chu_don,
        ops.try_date(record ->> 'ngay_nop') as ngay_nop,
        nullif(btrim(record ->> 'so_van_bang'), '') as so_van_bang,
        ops.try_date(record ->> 'ngay_cap') as ngay_cap
    from raw.landed
) as typed
