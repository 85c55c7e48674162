{{ config(materialized="view") }}

-- The 26 criterion scores of each current assessment, one row per assessment and criterion
-- (long form, for comparisons per criterion). The gate has checked the criterion set, that
-- each is a number within its group's maximum, and that groups sum their criteria.
select
    md5(assessment.capability_assessment_key || '|' || criterion.key)
        as capability_criterion_score_key,
    assessment.capability_assessment_key,
    assessment.source_id,
    assessment.assessment_code,
    assessment.enterprise_code,
    assessment.assessment_year,
    criterion.key as criterion_code,
    left(criterion.key, 1) as criterion_group,
    (criterion.value #>> '{}')::numeric(5, 1) as score,
    -- TT 17/2019: maximum points of the criterion's group
    case left(criterion.key, 1)
        when 'T' then 30 when 'E' then 20 when 'O' then 19 when 'R' then 17 when 'I' then 14
    end as group_max_points,
    assessment.visible_at
from {{ ref('int_capability_assessments_versioned') }} as assessment
cross join lateral jsonb_each(assessment.criteria_scores) as criterion
where {{ current_versions('assessment') }}
