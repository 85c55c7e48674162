-- Communes with the period each code meaning is valid in ('-infinity'/'infinity' for open
-- ends, for valid_on()) and their restatement on today's boundaries: a commune valid
-- today is its own; an old one follows the rule of int_admin_commune_split_candidates. The
-- province is restated whenever all of an old commune's new communes lie in one province,
-- even when the commune itself is ambiguous.
with communes as (
    select
        code,
        name,
        province_code,
        coalesce(valid_from, '-infinity'::date) as valid_from,
        coalesce(valid_to, 'infinity'::date) as valid_to
    from {{ ref('admin_communes') }}
),

resolved as (
    select
        old_commune_code,
        old_valid_from,
        min(restatement_rule) as restatement_rule,
        min(candidate_count) as candidate_count,
        min(new_commune_code) filter (where is_successor) as current_commune_code,
        case
            when min(new_province_code) = max(new_province_code) then min(new_province_code)
        end as current_province_code
    from {{ ref('int_admin_commune_split_candidates') }}
    group by old_commune_code, old_valid_from
)

select
    c.code,
    c.name,
    c.province_code,
    c.valid_from,
    c.valid_to,
    case
        when c.valid_to = 'infinity'::date then c.code else r.current_commune_code
    end as current_commune_code,
    case
        when c.valid_to = 'infinity'::date then c.province_code else r.current_province_code
    end as current_province_code,
    case
        when c.valid_to = 'infinity'::date then 'current'
        else coalesce(r.restatement_rule, 'unmapped')
    end as restatement_rule,
    case when c.valid_to = 'infinity'::date then 1 else coalesce(r.candidate_count, 0) end
        as candidate_count
from communes as c
left join resolved as r
    on c.code = r.old_commune_code and c.valid_from = r.old_valid_from
