-- Typed projection of a landed innovation-survey batch (điều tra ĐMST trong doanh nghiệp),
-- validated by innovation_survey.json. Values that do not parse become null, so the not-null and
-- range checks catch them. Check columns (*_problem) are null when the row is fine and say what
-- is wrong otherwise.
-- The record's date is submitted_date: it decides which province/commune codes are in force.
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
    case when l.record ->> 'survey_year' ~ '^-?[0-9]+$'
        then (l.record ->> 'survey_year')::numeric end as survey_year,
    l.record ->> 'vsic_code' as vsic_code,
    l.record ->> 'vsic_version' as vsic_version,
    -- we have no full VSIC class lists offline: a code is checked by its 2-digit division
    case when l.record ->> 'vsic_version' = '2018' and l.record ->> 'vsic_code' ~ '^[0-9]{4,5}$'
        then left(l.record ->> 'vsic_code', 2) end as vsic_2018_division,
    case when l.record ->> 'vsic_version' = '2025' and l.record ->> 'vsic_code' ~ '^[0-9]{4,5}$'
        then left(l.record ->> 'vsic_code', 2) end as vsic_2025_division,
    case when l.record ->> 'employees' ~ '^-?[0-9]+$'
        then (l.record ->> 'employees')::numeric end as employees,
    case when jsonb_typeof(l.record -> 'innovation_activity') = 'boolean'
        then (l.record ->> 'innovation_activity')::boolean end as innovation_activity,
    -- not a list of known kinds (product, process, organisational, marketing)
    case
        when jsonb_typeof(l.record -> 'innovation_kinds') is distinct from 'array'
            then format('not a list: %s', coalesce(l.record -> 'innovation_kinds', 'null'))
        else (
            select string_agg(format('%s', n), ', ')
            from jsonb_array_elements(l.record -> 'innovation_kinds') as e (n)
            where n not in ('"product"', '"process"', '"organisational"', '"marketing"')
        )
    end as innovation_kinds_problem,
    -- kinds are listed exactly when the enterprise had innovation activity
    case
        when jsonb_typeof(l.record -> 'innovation_kinds') <> 'array'
            or jsonb_typeof(l.record -> 'innovation_activity') <> 'boolean' then null
        when (l.record ->> 'innovation_activity')::boolean
            and jsonb_array_length(l.record -> 'innovation_kinds') = 0
            then 'innovation_activity is true, innovation_kinds is empty'
        when not (l.record ->> 'innovation_activity')::boolean
            and jsonb_array_length(l.record -> 'innovation_kinds') > 0
            then format('innovation_activity is false, innovation_kinds is %s',
                        l.record -> 'innovation_kinds')
    end as innovation_kinds_activity_problem,
    ops.try_numeric(l.record ->> 'rd_expenditure_million_vnd') as rd_expenditure_million_vnd,
    d.submitted_date,
    l.record ->> 'province_code' as province_code,
    l.record ->> 'commune_code' as commune_code,
    case when d.submitted_date < date '2025-07-01' then l.record ->> 'province_code' end
        as province_code_before_2025,
    case when d.submitted_date >= date '2025-07-01' then l.record ->> 'province_code' end
        as province_code_2025,
    case when d.submitted_date < date '2025-07-01' then l.record ->> 'commune_code' end
        as commune_code_before_2025,
    case when d.submitted_date >= date '2025-07-01' then l.record ->> 'commune_code' end
        as commune_code_2025,
    -- The commune must lie in the province on the record's date (e.g. an old Nam Định
    -- commune is not one of Ninh Bình's before 2025-07-01): 'province:commune' when both
    -- codes are in force then (otherwise their own checks speak), against the pairs of
    -- that period.
    case when d.submitted_date < date '2025-07-01'
            and l.record ->> 'province_code' in
                (select code from ops.code_list where list_name = 'province_codes_before_2025')
            and l.record ->> 'commune_code' in
                (select code from ops.code_list where list_name = 'commune_codes_before_2025')
        then (l.record ->> 'province_code') || ':' || (l.record ->> 'commune_code')
    end as commune_in_province_before_2025,
    case when d.submitted_date >= date '2025-07-01'
            and l.record ->> 'province_code' in
                (select code from ops.code_list where list_name = 'province_codes_2025')
            and l.record ->> 'commune_code' in
                (select code from ops.code_list where list_name = 'commune_codes_2025')
        then (l.record ->> 'province_code') || ':' || (l.record ->> 'commune_code')
    end as commune_in_province_2025,
    -- a survey describes a past year: it is submitted in a later one
    case when (l.record ->> 'survey_year') ~ '^-?[0-9]+$'
            and (l.record ->> 'survey_year')::numeric >= extract(year from d.submitted_date)
        then format('survey_year %s, submitted %s', l.record ->> 'survey_year',
                    d.submitted_date) end as survey_year_problem,
    case when not ops.mst_valid(l.record ->> 'enterprise_code')
        then format('%L', l.record ->> 'enterprise_code') end as enterprise_code_problem,
    -- 5,000,000 million VND is 5,000 billion VND, beyond any Vietnamese enterprise's yearly R&D
    -- spending, while any real expenditure written in VND (>= 5 million VND) is above it
    case when ops.try_numeric(l.record ->> 'rd_expenditure_million_vnd') > 5000000
        then format('%s', l.record ->> 'rd_expenditure_million_vnd') end
        as rd_expenditure_unit_problem
from raw.landed as l
cross join lateral (select ops.try_date(l.record ->> 'submitted_date') as submitted_date) as d
