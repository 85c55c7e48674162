{{ config(materialized="view") }}

-- Rows of the form 08/KHCN-SHTT reports (industrial-property applications and titles of the
-- report year) as last sent: only the rows of each report's newest version count (a corrected
-- re-submission does not delete the rows it leaves out).
with current_rows as (
    select
        row_version.*,
        max(row_version.version) over (
            partition by row_version.source_id, row_version.report_key
        ) as report_version
    from {{ ref('int_stat_form_08_versioned') }} as row_version
    where {{ current_versions('row_version') }}
)

select
    r.stat_form_08_row_key,
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
    r.so_don,
    r.loai,
    r.type_digit,
    r.ten_doi_tuong,
    r.chu_don,
    r.dia_chi_chu_don,
    r.ngay_nop,
    r.so_van_bang,
    r.ngay_cap,
    r.ghi_chu,
    r.version,
    r.batch_id,
    r.landed_id,
    r.visible_at
from current_rows as r
where r.version = r.report_version
