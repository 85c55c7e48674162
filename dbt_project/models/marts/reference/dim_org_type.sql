-- Organisation types, keyed as the registry contract's org_type.
select
    code as org_type,
    name_en,
    name_vi,
    is_enterprise
from {{ ref('code_org_types') }}
