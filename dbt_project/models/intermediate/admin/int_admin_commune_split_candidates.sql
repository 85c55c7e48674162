-- Every old→new commune pair of the 2025 reform with the rule that restates the old commune
-- on today's boundaries. An old commune split across several new ones is not assigned at
-- random: the new commune that kept its name is its successor; with no such commune, or more
-- than one, it has no single successor (split_ambiguous) and only its province is restated.
-- The reference data also shows 142 split communes whose code one of the new communes reuses,
-- but nothing in it says the code's new holder took the larger part, so that is a flag for
-- analysts (reuses_old_code), not a rule.
with communes as (
    select
        code,
        name,
        coalesce(valid_from, '-infinity'::date) as valid_from,
        coalesce(valid_to, 'infinity'::date) as valid_to
    from {{ ref('admin_communes') }}
),

pairs as (
    -- Codes are reused, so each side is the unit valid on its side of the change date.
    select
        s.old_commune_code,
        old_unit.name as old_commune_name,
        old_unit.valid_from as old_valid_from,
        s.old_province_code,
        s.new_commune_code,
        new_unit.name as new_commune_name,
        new_unit.valid_from as new_valid_from,
        s.new_province_code,
        s.merge_type,
        s.effective_date,
        s.new_commune_code = s.old_commune_code as reuses_old_code,
        {{ admin_unit_name_key('new_unit.name') }}
        = {{ admin_unit_name_key('old_unit.name') }} as keeps_old_name
    from {{ ref('admin_commune_splits') }} as s
    inner join communes as old_unit
        on
            s.old_commune_code = old_unit.code
            and {{ valid_on('old_unit', 's.effective_date - 1') }}
    inner join communes as new_unit
        on
            s.new_commune_code = new_unit.code
            and {{ valid_on('new_unit', 's.effective_date') }}
),

counted as (
    select
        *,
        count(*) over (partition by old_commune_code, effective_date) as candidate_count,
        count(*) filter (where keeps_old_name) over (
            partition by old_commune_code, effective_date
        ) as name_keeper_count
    from pairs
),

ruled as (
    select
        *,
        case
            when candidate_count = 1 and merge_type = 'full' then 'full'
            when candidate_count = 1 then 'partial_single'
            when name_keeper_count = 1 then 'split_successor_keeps_name'
            else 'split_ambiguous'
        end as restatement_rule
    from counted
)

select
    old_commune_code,
    old_commune_name,
    old_valid_from,
    old_province_code,
    new_commune_code,
    new_commune_name,
    new_valid_from,
    new_province_code,
    merge_type,
    effective_date,
    candidate_count,
    1.0::double precision / candidate_count as allocation_weight,
    keeps_old_name,
    reuses_old_code,
    restatement_rule,
    (
        candidate_count = 1
        or (restatement_rule = 'split_successor_keeps_name' and keeps_old_name)
    ) as is_successor
from ruled
