-- Research fields of QĐ 12/2008 at all three levels, each row carrying the codes and names of
-- its level-1 and level-2 ancestors so that a level-3 field rolls up without a recursive join.
with fields as (
    select
        field_code,
        field_level,
        nullif(parent_field_code, '') as parent_field_code,
        field_name_vi,
        ford_code,
        ford_name_en
    from {{ ref('research_fields_qd12_2008') }}
),

with_ancestors as (
    select
        f.*,
        p.field_code as parent_code,
        p.field_name_vi as parent_name_vi,
        gp.field_code as grandparent_code,
        gp.field_name_vi as grandparent_name_vi
    from fields as f
    left join fields as p on f.parent_field_code = p.field_code
    left join fields as gp on p.parent_field_code = gp.field_code
)

select
    field_code,
    field_level,
    parent_field_code,
    field_name_vi,
    case field_level
        when 1 then field_code when 2 then parent_code when 3 then grandparent_code
    end as level1_code,
    case field_level
        when 1 then field_name_vi when 2 then parent_name_vi when 3 then grandparent_name_vi
    end as level1_name_vi,
    case field_level when 2 then field_code when 3 then parent_code end as level2_code,
    case field_level when 2 then field_name_vi when 3 then parent_name_vi end as level2_name_vi,
    case when field_level = 3 then field_code end as level3_code,
    case when field_level = 3 then field_name_vi end as level3_name_vi,
    ford_code,
    ford_name_en
from with_ancestors
