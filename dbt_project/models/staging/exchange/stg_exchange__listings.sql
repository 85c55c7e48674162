-- Listings (tin chào bán / chào mua) of the technology exchanges (exchange API v1): every
-- published version, typed, with English column names. Landing has put prices in VND (null when
-- negotiable) and mapped da_go (withdrawn) to the envelope's deleted flag.
select
    landed.landed_id,
    landed.batch_id,
    landed.source_id,
    landed.record_id,
    landed.version,
    landed.source_updated_at,
    landed.is_deleted,
    landed.extracted_at,
    landed.visible_at,
    landed.record_id as listing_id,
    case landed.record ->> 'loai_tin'
        when 'chao_ban' then 'offer'
        when 'chao_mua' then 'demand'
    end as listing_type,
    landed.record ->> 'loai_tin' as listing_type_code,
    landed.record ->> 'doi_tuong' as listing_object,
    nullif(btrim(landed.record ->> 'tieu_de'), '') as title,
    landed.record ->> 'linh_vuc' as field,
    (landed.record ->> 'gia_tu')::numeric as price_from_vnd,
    (landed.record ->> 'gia_den')::numeric as price_to_vnd,
    nullif(btrim(landed.record ->> 'don_vi_dang_tin'), '') as supplier_name,
    landed.record ->> 'ma_so_thue' as supplier_enterprise_code,
    landed.record ->> 'ma_tinh' as province_code,
    landed.record ->> 'tinh_trang_shtt' as ip_status,
    landed.record ->> 'so_don_shtt' as ip_application_number,
    landed.record ->> 'trang_thai' as status,
    (landed.record ->> 'ngay_dang')::date as posted_date,
    -- The date the province code refers to: the posting; a listing without a readable one is
    -- read on today's boundaries by the gate, i.e. those in force when it was extracted.
    coalesce(
        (landed.record ->> 'ngay_dang')::date,
        (landed.extracted_at at time zone 'UTC')::date
    ) as unit_date
from ({{ published_records('exchange-api-v1', 'listing') }}) as landed
