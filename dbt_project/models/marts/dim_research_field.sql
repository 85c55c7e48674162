-- Research fields of QĐ 12/2008 with their FORD top-level field.
select
    field_code,
    field_level,
    nullif(parent_field_code, '') as parent_field_code,
    field_name_vi,
    ford_code,
    ford_name_en
from {{ ref('research_fields_qd12_2008') }}
