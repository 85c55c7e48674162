-- Every published version of every stat form 04 record (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as stat_form_04_row_key,
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
    stg.ma_so,
    stg.ten_nhiem_vu,
    stg.cap_quan_ly,
    stg.task_level,
    stg.linh_vuc_ma,
    stg.to_chuc_chu_tri,
    stg.kinh_phi_nsnn_million_vnd,
    stg.kinh_phi_khac_million_vnd,
    stg.ngay_bat_dau,
    stg.ngay_ket_thuc,
    stg.tinh_trang,
    stg.ghi_chu,
    {{ version_columns('stg') }}
from {{ ref('stg_forms__stat_form_04') }} as stg
where {{ not_yet_versioned('stg', 'stat_form_04') }}
