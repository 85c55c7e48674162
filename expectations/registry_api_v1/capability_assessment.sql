-- Typed projection of a landed technology-capability assessment batch (đánh giá trình độ, năng
-- lực công nghệ, TT 17/2019/TT-BKHCN), validated by capability_assessment.json. Values that do not
-- parse become null, so the not-null and range checks catch them. Check columns (*_problem) are
-- null when the row is fine and say what is wrong otherwise.
-- The record's date is assessment_date: it decides which province/commune codes are in force.
-- Scores have one decimal: sums are compared with a tolerance of half a tenth (0.05).
select
    l.batch_id,
    l.landed_id,
    l.source_id,
    l.record_id,
    l.version,
    l.updated_at,
    l.deleted,
    l.landing_issue,
    l.record,
    l.record ->> 'enterprise_code' as enterprise_code,
    l.record ->> 'vsic_code' as vsic_code,
    l.record ->> 'vsic_version' as vsic_version,
    -- we have no full VSIC class lists offline: a code is checked by its 2-digit division
    case when l.record ->> 'vsic_version' = '2018' and l.record ->> 'vsic_code' ~ '^[0-9]{4,5}$'
        then left(l.record ->> 'vsic_code', 2) end as vsic_2018_division,
    case when l.record ->> 'vsic_version' = '2025' and l.record ->> 'vsic_code' ~ '^[0-9]{4,5}$'
        then left(l.record ->> 'vsic_code', 2) end as vsic_2025_division,
    case when l.record ->> 'assessment_year' ~ '^-?[0-9]+$'
        then (l.record ->> 'assessment_year')::numeric end as assessment_year,
    d.assessment_date,
    case when (l.record ->> 'assessment_year') ~ '^-?[0-9]+$'
            and (l.record ->> 'assessment_year')::numeric <> extract(year from d.assessment_date)
        then format('assessment_year %s, assessed %s', l.record ->> 'assessment_year',
                    d.assessment_date) end as assessment_year_problem,
    g.group_score_t,
    g.group_score_e,
    g.group_score_o,
    g.group_score_r,
    g.group_score_i,
    g.total_score,
    l.record ->> 'technology_level' as technology_level,
    l.record ->> 'province_code' as province_code,
    l.record ->> 'commune_code' as commune_code,
    case when d.assessment_date < date '2025-07-01' then l.record ->> 'province_code' end
        as province_code_before_2025,
    case when d.assessment_date >= date '2025-07-01' then l.record ->> 'province_code' end
        as province_code_2025,
    case when d.assessment_date < date '2025-07-01' then l.record ->> 'commune_code' end
        as commune_code_before_2025,
    case when d.assessment_date >= date '2025-07-01' then l.record ->> 'commune_code' end
        as commune_code_2025,
    -- The commune must lie in the province on the record's date (e.g. an old Nam Định
    -- commune is not one of Ninh Bình's before 2025-07-01): 'province:commune' when both
    -- codes are in force then (otherwise their own checks speak), against the pairs of
    -- that period.
    case when d.assessment_date < date '2025-07-01'
            and l.record ->> 'province_code' in
                (select code from ops.code_list where list_name = 'province_codes_before_2025')
            and l.record ->> 'commune_code' in
                (select code from ops.code_list where list_name = 'commune_codes_before_2025')
        then (l.record ->> 'province_code') || ':' || (l.record ->> 'commune_code')
    end as commune_in_province_before_2025,
    case when d.assessment_date >= date '2025-07-01'
            and l.record ->> 'province_code' in
                (select code from ops.code_list where list_name = 'province_codes_2025')
            and l.record ->> 'commune_code' in
                (select code from ops.code_list where list_name = 'commune_codes_2025')
        then (l.record ->> 'province_code') || ':' || (l.record ->> 'commune_code')
    end as commune_in_province_2025,
    case when not ops.mst_valid(l.record ->> 'enterprise_code')
        then format('%L', l.record ->> 'enterprise_code') end as enterprise_code_problem,
    -- the five groups T, E, O, R, I, each a number
    case
        when jsonb_typeof(l.record -> 'group_scores') is distinct from 'object'
            then format('not an object: %s', coalesce(l.record -> 'group_scores', 'null'))
        else (
            select 'missing or not a number: ' || string_agg(m.letter, ', ' order by m.ord)
            from (values ('T', 1), ('E', 2), ('O', 3), ('R', 4), ('I', 5)) as m (letter, ord)
            where jsonb_typeof(l.record -> 'group_scores' -> m.letter) is distinct from 'number'
        )
    end as group_scores_problem,
    -- exactly the 26 criteria T1-T7, E1-E6, O1-O5, R1-R4, I1-I4, each a number between 0 and
    -- its group's maximum (the contract sets no maximum per criterion)
    case
        when jsonb_typeof(l.record -> 'criteria_scores') is distinct from 'object'
            then format('not an object: %s', coalesce(l.record -> 'criteria_scores', 'null'))
        else nullif(concat_ws('; ',
            (
                select 'missing ' || string_agg(k.key, ', ' order by k.ord)
                from unnest(array[
                    'T1', 'T2', 'T3', 'T4', 'T5', 'T6', 'T7', 'E1', 'E2', 'E3', 'E4', 'E5', 'E6',
                    'O1', 'O2', 'O3', 'O4', 'O5', 'R1', 'R2', 'R3', 'R4', 'I1', 'I2', 'I3', 'I4'
                ]) with ordinality as k (key, ord)
                where not d.criteria ? k.key
            ),
            (
                select 'unexpected ' || string_agg(c.key, ', ' order by c.key)
                from jsonb_each(d.criteria) as c
                where c.key !~ '^(T[1-7]|E[1-6]|O[1-5]|R[1-4]|I[1-4])$'
            ),
            (
                select 'not a number ' || string_agg(c.key, ', ' order by c.key)
                from jsonb_each(d.criteria) as c
                where jsonb_typeof(c.value) <> 'number'
            ),
            (
                select 'out of range ' || string_agg(format('%s = %s', c.key, c.value), ', '
                    order by c.key)
                from jsonb_each(d.criteria) as c
                where jsonb_typeof(c.value) = 'number'
                    and c.key ~ '^(T[1-7]|E[1-6]|O[1-5]|R[1-4]|I[1-4])$'
                    and (c.value #>> '{}')::numeric not between 0 and case left(c.key, 1)
                        when 'T' then 30 when 'E' then 20 when 'O' then 19 when 'R' then 17
                        else 14 end
            )
        ), '')
    end as criteria_problem,
    -- each group is the sum of its criteria (compared when the group and all its criteria are numbers)
    (
        select string_agg(format('%s = %s, its criteria sum to %s', s.letter, s.score, s.criteria_sum),
            '; ' order by s.ord)
        from (
            select
                m.letter,
                m.ord,
                (l.record -> 'group_scores' ->> m.letter)::numeric as score,
                sum((c.value #>> '{}')::numeric) as criteria_sum
            from (values ('T', 1, 7), ('E', 2, 6), ('O', 3, 5), ('R', 4, 4), ('I', 5, 4))
                as m (letter, ord, criteria)
            inner join jsonb_each(d.criteria) as c
                on c.key ~ ('^' || m.letter || '[1-7]$') and jsonb_typeof(c.value) = 'number'
            where jsonb_typeof(l.record -> 'group_scores' -> m.letter) = 'number'
            group by m.letter, m.ord, m.criteria
            having count(*) = m.criteria
        ) as s
        where abs(s.score - s.criteria_sum) > 0.05
    ) as group_sum_problem,
    -- the total is the sum of the groups (compared when all of them are numbers)
    case when abs(g.total_score
            - (g.group_score_t + g.group_score_e + g.group_score_o + g.group_score_r + g.group_score_i)
        ) > 0.05
        then format('total_score = %s, the groups sum to %s', g.total_score,
            g.group_score_t + g.group_score_e + g.group_score_o + g.group_score_r + g.group_score_i)
    end as total_sum_problem
from raw.landed as l
cross join lateral (
    select
        ops.try_date(l.record ->> 'assessment_date') as assessment_date,
        -- jsonb_each raises on anything but an object: a malformed record must not stop the gate
        case when jsonb_typeof(l.record -> 'criteria_scores') = 'object'
            then l.record -> 'criteria_scores' else '{}'::jsonb end as criteria
) as d
cross join lateral (
    select
        case when jsonb_typeof(l.record #> '{group_scores,T}') = 'number'
            then (l.record #>> '{group_scores,T}')::numeric end as group_score_t,
        case when jsonb_typeof(l.record #> '{group_scores,E}') = 'number'
            then (l.record #>> '{group_scores,E}')::numeric end as group_score_e,
        case when jsonb_typeof(l.record #> '{group_scores,O}') = 'number'
            then (l.record #>> '{group_scores,O}')::numeric end as group_score_o,
        case when jsonb_typeof(l.record #> '{group_scores,R}') = 'number'
            then (l.record #>> '{group_scores,R}')::numeric end as group_score_r,
        case when jsonb_typeof(l.record #> '{group_scores,I}') = 'number'
            then (l.record #>> '{group_scores,I}')::numeric end as group_score_i,
        case when jsonb_typeof(l.record -> 'total_score') = 'number'
            then (l.record ->> 'total_score')::numeric end as total_score
) as g
