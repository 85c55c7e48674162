-- Typed projection of a landed batch of form 06/KHCN-CG (technology-transfer contracts of the
-- report year; one dropped file), validated by stat_form_06.json. Landing has standardised the
-- record: dates are ISO, the contract value a JSON number in million VND (the form's unit),
-- texts NFC, MSTs canonical. Values that do not parse become null here. Check columns
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
        case when typed.so_hop_dong is null then 'Số hợp đồng' end,
        case when typed.ben_giao is null then 'Bên giao công nghệ' end,
        case when typed.ben_nhan is null then 'Bên nhận công nghệ' end,
        case when typed.ten_cong_nghe is null then 'Tên công nghệ' end,
        case when typed.hinh_thuc is null then 'Hình thức chuyển giao' end,
        case when typed.ngay_ky is null then 'Ngày ký' end
    ), '') || ' at ' || typed.location as missing_columns,
    case when not ops.mst_valid(typed.ben_nhan_mst)
        then format('%L is not 10 digits (or 10-3) with a valid check digit, at %s',
            typed.ben_nhan_mst, typed.location)
    end as ben_nhan_mst_problem,
    -- Unit errors. No contract is worth 10,000 billion VND (10^7 million VND): even a small
    -- contract typed in VND instead of million VND is above that. Nor more than zero and under
    -- 100,000 VND (0.1 million). Zero is a free transfer.
    case when typed.gia_tri_million_vnd >= 10000000
            or (typed.gia_tri_million_vnd > 0 and typed.gia_tri_million_vnd < 0.1)
        then format('%s million VND at %s', typed.gia_tri_million_vnd, typed.location)
    end as gia_tri_unit_problem,
    -- Possible but rare: a warning.
    case when typed.gia_tri_million_vnd >= 1000000 and typed.gia_tri_million_vnd < 10000000
        then format('%s million VND at %s', typed.gia_tri_million_vnd, typed.location)
    end as gia_tri_size_problem,
    case when typed.ngay_ky > typed.file_saved_on
        then format('signed on %L, after the file was saved (%L), at %s', typed.ngay_ky,
            typed.file_saved_on, typed.location)
    end as ngay_ky_problem,
    -- The form lists the contracts of the report year.
    case when extract(year from typed.ngay_ky) <> typed.report_year
        then format('signed on %L, outside report year %s, at %s', typed.ngay_ky,
            typed.report_year, typed.location)
    end as ngay_ky_year_problem,
    -- The forms of the Law on Technology Transfer (2017, art. 5), as the form's users write them.
    case when typed.hinh_thuc is not null and typed.hinh_thuc_normalised not in (
            'chuyển giao công nghệ độc lập',
            'chuyển giao độc lập',
            'chuyển giao trong dự án đầu tư',
            'chuyển giao công nghệ trong dự án đầu tư',
            'phần chuyển giao công nghệ trong dự án đầu tư',
            'góp vốn bằng công nghệ',
            'nhượng quyền thương mại',
            'chuyển giao quyền sở hữu trí tuệ',
            'mua bán máy móc, thiết bị kèm công nghệ',
            'mua bán máy móc, thiết bị kèm theo công nghệ',
            'chuyển giao công nghệ bằng hình thức khác',
            'hình thức khác'
        )
        then format('%L at %s', typed.hinh_thuc, typed.location)
    end as hinh_thuc_problem,
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
        nullif(btrim(record ->> 'so_hop_dong'), '') as so_hop_dong,
        nullif(btrim(record ->> 'ben_giao'), '') as ben_giao,
        nullif(btrim(record ->> 'ben_nhan'), '') as ben_nhan,
        record ->> 'ben_nhan_mst' as ben_nhan_mst,
        nullif(btrim(record ->> 'ten_cong_nghe'), '') as ten_cong_nghe,
        nullif(btrim(record ->> 'hinh_thuc'), '') as hinh_thuc,
        ops.lower_vi(regexp_replace(btrim(record ->> 'hinh_thuc'), '\s+', ' ', 'g'))
            as hinh_thuc_normalised,
        -- Amounts must be JSON numbers: text landing could not read is not silently cast.
        case when jsonb_typeof(record -> 'gia_tri_hop_dong') = 'number'
            then (record ->> 'gia_tri_hop_dong')::numeric end as gia_tri_million_vnd,
        ops.try_date(record ->> 'ngay_ky') as ngay_ky
    from raw.landed
) as typed
