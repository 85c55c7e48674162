-- Kinds of S&T market intermediary, keyed as the registry contract's intermediary_kind.
select
    code as intermediary_kind,
    org_type,
    name_en,
    name_vi,
    is_startup_support_facility
from {{ ref('code_intermediary_kinds') }}
