-- Exchange listing types: every combination of the exchange contract's loai_tin (offer or
-- demand) and doi_tuong (technology, equipment, solution), both required on every listing.
select
    t.code || ':' || o.code as listing_type_key,
    t.code as listing_type,
    o.code as listing_object,
    t.name_en || ' — ' || lower(o.name_en) as name_en,
    t.name_vi || ' ' || lower(o.name_vi) as name_vi,
    t.name_en as listing_type_name_en,
    t.name_vi as listing_type_name_vi,
    t.market_side,
    o.name_en as listing_object_name_en,
    o.name_vi as listing_object_name_vi
from {{ ref('code_listing_types') }} as t
cross join {{ ref('code_listing_objects') }} as o
