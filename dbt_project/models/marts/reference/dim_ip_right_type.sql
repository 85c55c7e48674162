-- Industrial property right types, keyed as the registry contract's ip_type.
select
    code as ip_type,
    type_digit,
    name_en,
    name_vi,
    protection_title_en,
    protection_title_vi,
    classification,
    is_patent_or_utility_solution
from {{ ref('code_ip_right_types') }}
