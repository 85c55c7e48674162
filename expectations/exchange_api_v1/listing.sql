-- Typed projection of a landed listing batch (tin chào bán / chào mua) of a technology
-- exchange, validated by listing.json. Landing has standardised the record: dates are ISO,
-- amounts are JSON numbers in VND (exchange_api_v1.fields.yml: unit vnd; "1,5 tỷ" arrives as
-- 1500000000) and a negotiable price ("Thỏa thuận", "Liên hệ") is null. Values that do not
-- parse become null here. Check columns (*_problem) are null when the row is fine and say what
-- is wrong otherwise, quoting values so that ops.open_quarantine groups rows by problem.
select
    typed.*,
    -- The listing's date is the day it was posted (ngay_dang): it decides whether ma_tinh is
    -- read against the 63 codes before 2025-07-01 or the 34 since; an unreadable date is
    -- caught by not_null(ngay_dang) and its code read as today's, as the contract says.
    case when typed.ngay_dang < date '2025-07-01' then typed.ma_tinh end as ma_tinh_before_2025,
    case when typed.ngay_dang >= date '2025-07-01' or typed.ngay_dang is null then typed.ma_tinh
    end as ma_tinh_2025,
    -- The contract asks for today's code; an old listing may still carry its old one.
    case when typed.ngay_dang < date '2025-07-01' then typed.ma_tinh end as ma_tinh_pre_merger,
    case when not ops.mst_valid(typed.ma_so_thue)
        then format('%L is not 10 digits (or 10-3) with a valid check digit', typed.ma_so_thue)
    end as ma_so_thue_problem,
    -- An application number goes with an IP status that says an application was filed.
    case
        when typed.tinh_trang_shtt in ('da_nop_don', 'da_cap_van_bang') and typed.so_don_shtt is null
            then format('tinh_trang_shtt %L without so_don_shtt', typed.tinh_trang_shtt)
        when typed.tinh_trang_shtt in ('chua_dang_ky', 'khong_ap_dung') and typed.so_don_shtt is not null
            then format('so_don_shtt %L with tinh_trang_shtt %L', typed.so_don_shtt,
                typed.tinh_trang_shtt)
    end as so_don_shtt_problem,
    -- A trademark (type 4) protects a sign, not the technology, equipment or solution offered.
    case when typed.so_don_shtt like '4-%'
        then format('so_don_shtt %L is a trademark application', typed.so_don_shtt)
    end as so_don_shtt_type_problem,
    -- Unit errors. Nothing on an exchange costs 10,000 billion VND (10^13) or more: such a
    -- figure was stated in a larger unit than meant ("1.250.000.000 triệu"). Nor does anything
    -- cost more than zero and under 100,000 VND: a plain "850" meant 850 million VND, sent
    -- without its unit. Zero is a free transfer.
    case
        when typed.gia_tu_vnd >= 1e13 or (typed.gia_tu_vnd > 0 and typed.gia_tu_vnd < 1e5)
            then format('gia_tu %L VND', typed.gia_tu_vnd)
        when typed.gia_den_vnd >= 1e13 or (typed.gia_den_vnd > 0 and typed.gia_den_vnd < 1e5)
            then format('gia_den %L VND', typed.gia_den_vnd)
    end as price_unit_problem,
    -- Possible but rare: a warning.
    case when greatest(typed.gia_tu_vnd, typed.gia_den_vnd) >= 1e12
            and greatest(typed.gia_tu_vnd, typed.gia_den_vnd) < 1e13
        then format('%L VND', greatest(typed.gia_tu_vnd, typed.gia_den_vnd))
    end as price_size_problem
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
        nullif(btrim(record ->> 'tieu_de'), '') as tieu_de,
        nullif(btrim(record ->> 'don_vi_dang_tin'), '') as don_vi_dang_tin,
        record ->> 'loai_tin' as loai_tin,
        record ->> 'doi_tuong' as doi_tuong,
        record ->> 'linh_vuc' as linh_vuc,
        record ->> 'ma_so_thue' as ma_so_thue,
        record ->> 'ma_tinh' as ma_tinh,
        record ->> 'tinh_trang_shtt' as tinh_trang_shtt,
        record ->> 'so_don_shtt' as so_don_shtt,
        record ->> 'trang_thai' as trang_thai,
        -- Amounts must be JSON numbers: text landing could not read is not silently cast.
        case when jsonb_typeof(record -> 'gia_tu') = 'number'
            then (record ->> 'gia_tu')::numeric end as gia_tu_vnd,
        case when jsonb_typeof(record -> 'gia_den') = 'number'
            then (record ->> 'gia_den')::numeric end as gia_den_vnd,
        ops.try_date(record ->> 'ngay_dang') as ngay_dang,
        -- ngay_cap_nhat (the envelope's updated_at) as the exchange's calendar day (UTC+07:00)
        (updated_at at time zone interval '+07:00')::date as ngay_cap_nhat
    from raw.landed
) as typed
