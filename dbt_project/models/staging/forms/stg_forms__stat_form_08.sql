-- Rows of form 08/KHCN-SHTT (industrial-property applications and titles of the report year)
-- from the provinces' spreadsheet drops (spreadsheet forms v1): every published version, typed.
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
    nullif(btrim(landed.record ->> 'so_don'), '') as so_don,
    nullif(btrim(landed.record ->> 'loai'), '') as loai,
    -- The gate's reading of the object type → the type digit of its application numbers.
    case ops.lower_vi(regexp_replace(btrim(landed.record ->> 'loai'), '\s+', ' ', 'g'))
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
    nullif(btrim(landed.record ->> 'ten_doi_tuong'), '') as ten_doi_tuong,
    nullif(btrim(landed.record ->> 'chu_don'), '') as chu_don,
    nullif(btrim(landed.record ->> 'dia_chi_chu_don'), '') as dia_chi_chu_don,
    (landed.record ->> 'ngay_nop')::date as ngay_nop,
    nullif(btrim(landed.record ->> 'so_van_bang'), '') as so_van_bang,
    (landed.record ->> 'ngay_cap')::date as ngay_cap,
    nullif(btrim(landed.record ->> 'ghi_chu'), '') as ghi_chu
from ({{ published_records('spreadsheet-forms-v1', 'stat_form_08') }}) as landed
