-- Technology transactions (giao dịch, hợp đồng chuyển giao công nghệ) of the technology
-- exchanges (exchange API v1): every published version, typed, with English column names.
-- Landing has put values in VND (null when negotiable) and mapped da_huy (cancelled) to the
-- envelope's deleted flag.
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
    landed.record_id as transaction_id,
    landed.record ->> 'ma_tin' as listing_id,
    nullif(btrim(landed.record ->> 'ten_cong_nghe'), '') as technology_name,
    landed.record ->> 'linh_vuc' as field,
    nullif(btrim(landed.record ->> 'ben_ban'), '') as seller_name,
    landed.record ->> 'ma_so_thue_ben_ban' as seller_enterprise_code,
    nullif(btrim(landed.record ->> 'ben_mua'), '') as buyer_name,
    landed.record ->> 'ma_so_thue_ben_mua' as buyer_enterprise_code,
    (landed.record ->> 'gia_tri')::numeric as value_vnd,
    landed.record ->> 'hinh_thuc' as form,
    (landed.record ->> 'ngay_ky')::date as signed_date,
    landed.record ->> 'so_giay_chung_nhan' as certificate_number
from ({{ published_records('exchange-api-v1', 'transaction') }}) as landed
