-- Rows of form 06/KHCN-CG (technology-transfer contracts of the report year) from the
-- provinces' spreadsheet drops (spreadsheet forms v1): every published version, typed. The
-- contract value in million VND (the form's unit).
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
    {{ form_report_columns('landed') }},
    nullif(btrim(landed.record ->> 'so_hop_dong'), '') as so_hop_dong,
    nullif(btrim(landed.record ->> 'ben_giao'), '') as ben_giao,
    nullif(btrim(landed.record ->> 'ben_nhan'), '') as ben_nhan,
    landed.record ->> 'ben_nhan_mst' as ben_nhan_mst,
    nullif(btrim(landed.record ->> 'ten_cong_nghe'), '') as ten_cong_nghe,
    nullif(btrim(landed.record ->> 'hinh_thuc'), '') as hinh_thuc,
    (landed.record ->> 'gia_tri_hop_dong')::numeric(18, 3) as gia_tri_hop_dong_million_vnd,
    (landed.record ->> 'ngay_ky')::date as ngay_ky,
    nullif(btrim(landed.record ->> 'ghi_chu'), '') as ghi_chu
from ({{ published_records('spreadsheet-forms-v1', 'stat_form_06') }}) as landed
