{{ config(materialized="view") }}

-- Rows of the form 04/KHCN-NV reports (S&T tasks of the report year) as last sent: a corrected
-- re-submission supersedes the rows it repeats but does not delete those it leaves out, so only
-- the rows of each report's newest version count.
with current_rows as (
    select
        row_version.*,
        max(row_version.version) over (
            partition by row_version.source_id, row_version.report_key
        ) as report_version
    from {{ ref('int_stat_form_04_versioned') }} as row_version
    where {{ current_versions('row_version') }}
)

select
    r.stat_form_04_row_key,
    r.source_id,
    r.record_id,
    r.report_key,
    r.form_code,
    r.report_year,
    r.report_revision,
    r.reporting_unit,
    r.reporting_province_name,
    r.reporting_province_code,
    r.file_name,
    r.sheet_name,
    r.row_number,
    r.stt,
    r.ma_so,
    r.ten_nhiem_vu,
    r.cap_quan_ly,
    r.task_level,
    r.linh_vuc_ma,
    r.to_chuc_chu_tri,
    r.kinh_phi_nsnn_million_vnd,
    r.kinh_phi_khac_million_vnd,
    r.ngay_bat_dau,
    r.ngay_ket_thuc,
    r.tinh_trang,
    r.ghi_chu,
    r.version,
    r.batch_id,
    r.landed_id,
    r.visible_at
from current_rows as r
where r.version = r.report_version
