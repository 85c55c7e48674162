-- Typed projection of a landed batch of form 04/KHCN-NV (S&T tasks; one dropped file),
-- validated by stat_form_04.json. Landing has standardised the record: dates are ISO, amounts
-- JSON numbers in million VND (the form's unit; "1.250.000.000 đ" arrives as 1250), texts NFC.
-- Values that do not parse become null here. Check columns (*_problem, missing_columns) are
-- null when the row is fine and say what is wrong otherwise, ending with the row's place in
-- the file (`location`, quoted, so that ops.open_quarantine groups rows by problem).
select
    typed.*,
    -- Text a spreadsheet would run as a formula (=, @, +/- but for numbers): kept as sent,
    -- warned about; exports neutralise it (connectors/cell_safety.py).
    ops.formula_like(typed.record) || ' at ' || typed.location as formula_like,
    -- The form's required columns, named as its header names them.
    nullif(concat_ws(', ',
        case when typed.ma_so is null then 'Mã số' end,
        case when typed.ten_nhiem_vu is null then 'Tên nhiệm vụ' end,
        case when typed.cap_quan_ly is null then 'Cấp quản lý' end,
        case when typed.linh_vuc_ma is null then 'Lĩnh vực (mã)' end,
        case when typed.to_chuc_chu_tri is null then 'Tổ chức chủ trì' end,
        case when typed.ngay_bat_dau is null then 'Thời gian thực hiện / Bắt đầu' end,
        case when typed.ngay_ket_thuc is null then 'Thời gian thực hiện / Kết thúc' end
    ), '') || ' at ' || typed.location as missing_columns,
    case when typed.cap_quan_ly is not null and typed.task_level is null
        then format('%L at %s', typed.cap_quan_ly, typed.location)
    end as cap_quan_ly_problem,
    -- No single task is funded with 1,000 billion VND (10^6 million VND); even the smallest
    -- budget typed in VND instead of million VND is above that.
    case
        when typed.kinh_phi_nsnn_million_vnd >= 1000000
            then format('NSNN %s million VND at %s', typed.kinh_phi_nsnn_million_vnd,
                typed.location)
        when typed.kinh_phi_khac_million_vnd >= 1000000
            then format('Khác %s million VND at %s', typed.kinh_phi_khac_million_vnd,
                typed.location)
    end as kinh_phi_unit_problem,
    -- Larger than national programmes' tasks usually are, but possible: a warning.
    case when coalesce(typed.kinh_phi_nsnn_million_vnd, 0)
            + coalesce(typed.kinh_phi_khac_million_vnd, 0) > 100000
            and coalesce(typed.kinh_phi_nsnn_million_vnd, 0) < 1000000
            and coalesce(typed.kinh_phi_khac_million_vnd, 0) < 1000000
        then format('%s million VND in all at %s',
            coalesce(typed.kinh_phi_nsnn_million_vnd, 0)
            + coalesce(typed.kinh_phi_khac_million_vnd, 0), typed.location)
    end as kinh_phi_size_problem,
    -- A task reported for a year has started by the end of it.
    case when extract(year from typed.ngay_bat_dau) > typed.report_year
        then format('starts on %L, after report year %s, at %s', typed.ngay_bat_dau,
            typed.report_year, typed.location)
    end as ngay_bat_dau_problem,
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
        nullif(btrim(record ->> 'ma_so'), '') as ma_so,
        nullif(btrim(record ->> 'ten_nhiem_vu'), '') as ten_nhiem_vu,
        nullif(btrim(record ->> 'cap_quan_ly'), '') as cap_quan_ly,
        -- "Cấp tỉnh", "cấp  Tỉnh", "Tỉnh" → provincial; unknown wording → null.
        case regexp_replace(
            ops.lower_vi(regexp_replace(btrim(record ->> 'cap_quan_ly'), '\s+', ' ', 'g')), '^cấp ', ''
        )
            when 'quốc gia' then 'national'
            when 'nhà nước' then 'national'
            when 'bộ' then 'ministerial'
            when 'bộ, ngành' then 'ministerial'
            when 'bộ ngành' then 'ministerial'
            when 'tỉnh' then 'provincial'
            when 'tỉnh, thành phố' then 'provincial'
            when 'cơ sở' then 'institutional'
        end as task_level,
        nullif(btrim(record ->> 'linh_vuc_ma'), '') as linh_vuc_ma,
        nullif(btrim(record ->> 'to_chuc_chu_tri'), '') as to_chuc_chu_tri,
        -- Amounts must be JSON numbers: text landing could not read is not silently cast.
        case when jsonb_typeof(record -> 'kinh_phi_nsnn') = 'number'
            then (record ->> 'kinh_phi_nsnn')::numeric end as kinh_phi_nsnn_million_vnd,
        case when jsonb_typeof(record -> 'kinh_phi_khac') = 'number'
            then (record ->> 'kinh_phi_khac')::numeric end as kinh_phi_khac_million_vnd,
        ops.try_date(record ->> 'ngay_bat_dau') as ngay_bat_dau,
        ops.try_date(record ->> 'ngay_ket_thuc') as ngay_ket_thuc
    from raw.landed
) as typed
