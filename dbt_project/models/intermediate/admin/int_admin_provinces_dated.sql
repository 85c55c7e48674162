-- Provinces with the period each code meaning is valid in ('-infinity'/'infinity' for open
-- ends, so that joins on them need no null handling) and the province each one is part of
-- on today's boundaries. The 2025 reform merged whole provinces (no province was split), so an
-- old province restates to exactly the province it merged into; a unit still valid today
-- restates to itself.
with provinces as (
    select
        code,
        name,
        coalesce(valid_from, '-infinity'::date) as valid_from,
        coalesce(valid_to, 'infinity'::date) as valid_to,
        nullif(merged_into_code, '') as merged_into_code
    from {{ ref('admin_provinces') }}
),

current_provinces as (
    select
        code,
        name
    from provinces
    where valid_to = 'infinity'::date
)

select
    p.code,
    p.name,
    p.valid_from,
    p.valid_to,
    cur.code as current_province_code,
    cur.name as current_province_name,
    case
        when p.valid_to = 'infinity'::date then 'current'
        when cur.code is not null then 'full'
        else 'unmapped'
    end as restatement_rule
from provinces as p
left join current_provinces as cur
    on cur.code = case when p.valid_to = 'infinity'::date then p.code else p.merged_into_code end
