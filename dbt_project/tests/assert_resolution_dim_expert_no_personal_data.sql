-- No column of dim_expert may hold a citizen id (12 digits), a phone number (0 + 9 digits) or
-- an e-mail address; the expert key must be a pseudonym (64 hex digits), never an identifier.
-- The hex keys are left out of the digit checks (a hash can hold a run of digits by chance).
select
    expert.expert_key,
    col.key as column_name
from {{ ref('dim_expert') }} as expert
cross join
    lateral jsonb_each_text(
        to_jsonb(expert) - 'expert_key' - 'organisation_key'
    ) as col
where
    col.value ~ '(^|[^0-9])[0-9]{12}([^0-9]|$)'
    or col.value ~ '(^|[^0-9])0[0-9]{9}([^0-9]|$)'
    or col.value ~* '[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}'
union all
select
    expert.expert_key,
    'expert_key' as column_name
from {{ ref('dim_expert') }} as expert
where expert.expert_key !~ '^[0-9a-f]{64}$'
