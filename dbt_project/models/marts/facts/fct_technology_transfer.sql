{{ config(materialized="view") }}

-- Technology-transfer contracts from both channels, unioned: the deals of the technology
-- exchanges and the rows of the provinces' form 06/KHCN-CG reports (as last sent). The channels
-- overlap: a deal made on an exchange may also be reported on form 06, and nothing identifies
-- it in both (form 06 numbers contracts per transferor, exchanges by deal id), so counting
-- both double-counts such contracts; filter on reported_by for one channel.
with form_06_rows as (
    select
        row_version.*,
        max(row_version.version) over (
            partition by row_version.source_id, row_version.report_key
        ) as report_version
    from {{ ref('int_stat_form_06_versioned') }} as row_version
    where {{ current_versions('row_version') }}
)

select
    deal.transaction_key as technology_transfer_key,
    'exchange' as reported_by,
    deal.source_id,
    deal.transaction_id as contract_reference,
    deal.technology_name,
    deal.seller_name as transferor_name,
    deal.seller_enterprise_code as transferor_enterprise_code,
    deal.buyer_name as transferee_name,
    deal.buyer_enterprise_code as transferee_enterprise_code,
    deal.form as transfer_form,
    deal.value_vnd / 1000000 as value_million_vnd,
    deal.signed_date,
    deal.signed_year,
    null::integer as report_year,
    deal.certificate_number,
    deal.province_code_current,
    deal.visible_at
from {{ ref('fct_exchange_transaction') }} as deal

union all

select
    f.stat_form_06_row_key as technology_transfer_key,
    'stat_form_06' as reported_by,
    f.source_id,
    f.so_hop_dong as contract_reference,
    f.ten_cong_nghe as technology_name,
    f.ben_giao as transferor_name,
    null as transferor_enterprise_code,
    f.ben_nhan as transferee_name,
    f.ben_nhan_mst as transferee_enterprise_code,
    f.hinh_thuc as transfer_form,
    f.gia_tri_hop_dong_million_vnd as value_million_vnd,
    f.ngay_ky as signed_date,
    extract(year from f.ngay_ky)::integer as signed_year,
    f.report_year,
    null as certificate_number,
    f.reporting_province_code as province_code_current,
    f.visible_at
from form_06_rows as f
where f.version = f.report_version
