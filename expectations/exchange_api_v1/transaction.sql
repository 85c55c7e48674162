-- Typed projection of a landed transaction batch (giao dịch, hợp đồng chuyển giao công nghệ)
-- of a technology exchange, validated by transaction.json. Landing has standardised the
-- record: dates are ISO, gia_tri is a JSON number in VND (exchange_api_v1.fields.yml: unit vnd),
-- a negotiable value is null. Check columns (*_problem) are null when the row is fine and say
-- what is wrong otherwise, quoting values so that ops.open_quarantine groups rows by problem.
--
-- References, looked up in ops.accepted_record (what passed the gate and is not in quarantine):
-- - ma_tin must be a listing of the same exchange (same source_id), withdrawn or not;
-- - a deal without a listing should have a party whose MST (its 10-digit enterprise part, so a
--   branch counts) is the enterprise_code of an organisation landed from any registry.
with known_enterprise as materialized (
    -- Read once per batch, and only if some deal has no listing (a hashed subplan below).
    select distinct left(o.record ->> 'enterprise_code', 10) as mst
    from ops.accepted_record as o
    where o.entity = 'organisation' and o.record ->> 'enterprise_code' is not null
)

select
    typed.*,
    case when not ops.mst_valid(typed.ma_so_thue_ben_ban)
        then format('%L is not 10 digits (or 10-3) with a valid check digit',
            typed.ma_so_thue_ben_ban)
    end as ma_so_thue_ben_ban_problem,
    case when not ops.mst_valid(typed.ma_so_thue_ben_mua)
        then format('%L is not 10 digits (or 10-3) with a valid check digit',
            typed.ma_so_thue_ben_mua)
    end as ma_so_thue_ben_mua_problem,
    case when typed.ma_tin is not null and listing.record_id is null
        then format('no listing %L on exchange %L', typed.ma_tin, typed.source_id)
            || case when exists (
                select 1 from raw.landed_record as sent
                where sent.source_id = typed.source_id and sent.entity = 'listing'
                    and sent.record_id = typed.ma_tin
            ) then ' has passed the gate (it waits in quarantine or in a blocked batch)'
            else ' has been landed' end
    end as listing_reference_problem,
    case when typed.ma_tin is null
            and not coalesce(left(typed.ma_so_thue_ben_ban, 10) in (
                select k.mst from known_enterprise as k
            ), false)
            and not coalesce(left(typed.ma_so_thue_ben_mua, 10) in (
                select k.mst from known_enterprise as k
            ), false)
        then format('seller %L, buyer %L', typed.ma_so_thue_ben_ban, typed.ma_so_thue_ben_mua)
    end as organisation_reference_problem,
    -- Unit errors. No deal is worth 10,000 billion VND (10^13) or more: such a figure was
    -- stated in a larger unit than meant ("1.600.000.000 triệu"). Nor more than zero and under
    -- 100,000 VND: a plain "850" meant 850 million VND, sent without its unit. Zero is a free
    -- transfer (public institutes transfer results free of charge).
    case when typed.gia_tri_vnd >= 1e13 or (typed.gia_tri_vnd > 0 and typed.gia_tri_vnd < 1e5)
        then format('gia_tri %L VND', typed.gia_tri_vnd)
    end as gia_tri_unit_problem,
    -- Possible but rare: a warning.
    case when typed.gia_tri_vnd >= 1e12 and typed.gia_tri_vnd < 1e13
        then format('gia_tri %L VND', typed.gia_tri_vnd)
    end as gia_tri_size_problem,
    -- Plausible but worth a look: signed before 2000, or before its listing was posted.
    case
        when typed.ngay_ky < date '2000-01-01'
            then format('signed on %L, before 2000', typed.ngay_ky)
        when typed.ngay_ky < listing.ngay_dang
            then format('signed on %L, before listing %L was posted on %L', typed.ngay_ky,
                typed.ma_tin, listing.ngay_dang)
    end as ngay_ky_problem,
    -- Registration certificates read NNN/YYYY/GCN-<issuer> (e.g. 125/2024/GCN-SKHCN-NB) and
    -- are issued after the contract is signed.
    case
        when typed.so_giay_chung_nhan !~ '^[0-9]{1,5}/[0-9]{4}/GCN-[[:alnum:]]+(-[[:alnum:]]+)*$'
            then format('%L is not NNN/YYYY/GCN-<issuer>', typed.so_giay_chung_nhan)
        when split_part(typed.so_giay_chung_nhan, '/', 2)::int < extract(year from typed.ngay_ky)
            then format('%L is dated before the contract was signed (%L)',
                typed.so_giay_chung_nhan, typed.ngay_ky)
    end as so_giay_chung_nhan_problem
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
        record ->> 'ma_tin' as ma_tin,
        nullif(btrim(record ->> 'ten_cong_nghe'), '') as ten_cong_nghe,
        record ->> 'linh_vuc' as linh_vuc,
        nullif(btrim(record ->> 'ben_ban'), '') as ben_ban,
        record ->> 'ma_so_thue_ben_ban' as ma_so_thue_ben_ban,
        nullif(btrim(record ->> 'ben_mua'), '') as ben_mua,
        record ->> 'ma_so_thue_ben_mua' as ma_so_thue_ben_mua,
        record ->> 'hinh_thuc' as hinh_thuc,
        record ->> 'so_giay_chung_nhan' as so_giay_chung_nhan,
        -- Amounts must be JSON numbers: text landing could not read is not silently cast.
        case when jsonb_typeof(record -> 'gia_tri') = 'number'
            then (record ->> 'gia_tri')::numeric end as gia_tri_vnd,
        ops.try_date(record ->> 'ngay_ky') as ngay_ky,
        -- ngay_cap_nhat (the envelope's updated_at) as the exchange's calendar day (UTC+07:00)
        (updated_at at time zone interval '+07:00')::date as ngay_cap_nhat
    from raw.landed
) as typed
left join lateral (
    select
        accepted.record_id,
        ops.try_date(accepted.record ->> 'ngay_dang') as ngay_dang
    from ops.accepted_record as accepted
    where
        accepted.source_id = typed.source_id
        and accepted.entity = 'listing'
        and accepted.record_id = typed.ma_tin
) as listing on true
