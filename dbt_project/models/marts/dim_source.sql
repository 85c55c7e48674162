-- The sources the warehouse reads (the catalogue in dags/sources.yml, as the connectors record
-- it in ops.source), with the province each serves on today's boundaries.
select
    catalogue.source_id,
    catalogue.name,
    catalogue.system,
    catalogue.contract,
    catalogue.province_code,
    province.name as province_name
from {{ source('ops', 'source') }} as catalogue
left join {{ ref('dim_province') }} as province
    on catalogue.province_code = province.code and province.is_current
