-- Rows of form 04/KHCN-NV (S&T tasks of the report year) from the provinces' spreadsheet drops
-- (spreadsheet forms v1): every published version, typed. Amounts in million VND (the form's).
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
    nullif(btrim(landed.record ->> 'ma_so'), '') as ma_so,
    nullif(btrim(landed.record ->> 'ten_nhiem_vu'), '') as ten_nhiem_vu,
    nullif(btrim(landed.record ->> 'cap_quan_ly'), '') as cap_quan_ly,
    -- The gate's reading of the wording ("Cấp tỉnh", "Tỉnh" → provincial).
    case regexp_replace(
        ops.lower_vi(regexp_replace(btrim(landed.record ->> 'cap_quan_ly'), '\s+', ' ', 'g')),
        '^cấp ', ''
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
    nullif(btrim(landed.record ->> 'linh_vuc_ma'), '') as linh_vuc_ma,
    nullif(btrim(landed.record ->> 'to_chuc_chu_tri'), '') as to_chuc_chu_tri,
    (landed.record ->> 'kinh_phi_nsnn')::numeric(18, 3) as kinh_phi_nsnn_million_vnd,
    (landed.record ->> 'kinh_phi_khac')::numeric(18, 3) as kinh_phi_khac_million_vnd,
    (landed.record ->> 'ngay_bat_dau')::date as ngay_bat_dau,
    (landed.record ->> 'ngay_ket_thuc')::date as ngay_ket_thuc,
    nullif(btrim(landed.record ->> 'tinh_trang'), '') as tinh_trang,
    nullif(btrim(landed.record ->> 'ghi_chu'), '') as ghi_chu
from ({{ published_records('spreadsheet-forms-v1', 'stat_form_04') }}) as landed
