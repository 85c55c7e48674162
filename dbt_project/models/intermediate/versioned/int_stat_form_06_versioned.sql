-- Every published version of every stat form 06 record (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as stat_form_06_row_key,
    stg.landed_id,
    stg.batch_id,
    stg.source_id,
    stg.record_id,
    stg.version,
    stg.source_updated_at,
    stg.is_deleted,
    stg.report_key,
    stg.form_code,
    stg.report_year,
    stg.report_revision,
    stg.reporting_unit,
    stg.reporting_province_name,
    stg.reporting_province_code,
    stg.file_name,
    stg.sheet_name,
    stg.row_number,
    stg.stt,
    stg.so_hop_dong,
    stg.ben_giao,
    stg.ben_nhan,
    stg.ben_nhan_mst,
    stg.ten_cong_nghe,
    stg.hinh_thuc,
    stg.gia_tri_hop_dong_million_vnd,
    stg.ngay_ky,
    stg.ghi_chu,
    {{ version_columns('stg') }}
from {{ ref('stg_forms__stat_form_06') }} as stg
where {{ not_yet_versioned('stg', 'stat_form_06') }}
