-- KPI measures from the enterprise innovation survey and the innovation-support projects, per
-- province (today's boundaries) and year. A year without any survey answer (or project) for the
-- province yields no row: the scorecard reports it as not computable rather than as zero.
with survey as (
    select
        province_code_current as province_code,
        survey_year as year,  -- noqa: RF04
        count(*) filter (where innovation_activity) as innovating,
        count(*) filter (where innovation_activity is not null) as answered
    from {{ ref('fct_innovation_survey') }}
    where province_code_current is not null and survey_year is not null
    group by province_code_current, survey_year
),

projects as (
    select
        projects.innovation_project_key,
        projects.organisation_key,
        projects.province_code_current as province_code,
        projects.support_year as year,  -- noqa: RF04
        projects.commercialised_products,
        orgs.org_type,
        -- a cancelled project was never supported
        coalesce(projects.status, '') <> 'cancelled' as is_supported
    from {{ ref('fct_innovation_project') }} as projects
    left join {{ ref('dim_organisation') }} as orgs
        on projects.organisation_key = orgs.organisation_key
    where projects.province_code_current is not null and projects.support_year is not null
),

-- Enterprises count once, in the year of their first support, so that sums over a plan period
-- count distinct enterprises.
first_support as (
    select
        province_code,
        organisation_key,
        org_type,
        min(year) as year  -- noqa: RF04
    from projects
    where is_supported and organisation_key is not null
    group by province_code, organisation_key, org_type
),

project_years as (
    select
        province_code,
        year,
        count(*) filter (where is_supported) as supported,
        count(*) filter (where is_supported and org_type = 'innovative_startup')
            as startup_projects,
        coalesce(sum(commercialised_products) filter (where is_supported), 0) as products
    from projects
    group by province_code, year
),

newly_supported as (
    select
        province_code,
        year,
        count(*) filter (where org_type = 'st_enterprise') as st_enterprises,
        count(*) filter (where org_type = 'innovative_startup') as startups
    from first_support
    group by province_code, year
)

select
    province_code,
    year,
    'innovating_enterprise_share' as measure,
    round(100.0 * innovating / answered, 2) as actual_value,
    innovating::numeric as numerator,
    answered::numeric as denominator,
    'innovation survey ' || year || ': ' || innovating || ' of ' || answered
    || ' surveyed enterprises reported innovation activity (share of surveyed enterprises)'
        as basis
from survey
where answered > 0

union all

select
    province_code,
    year,
    'supported_innovation_projects' as measure,
    supported::numeric as actual_value,
    supported::numeric as numerator,
    null::numeric as denominator,
    supported || ' innovation projects supported from the provincial budget in ' || year
    || ' (cancelled projects excluded)' as basis
from project_years

union all

select
    province_code,
    year,
    'commercialised_innovative_products' as measure,
    products::numeric as actual_value,
    products::numeric as numerator,
    null::numeric as denominator,
    products || ' products commercialised by innovation projects supported in ' || year as basis
from project_years

union all

select
    province_code,
    year,
    'supported_startup_projects' as measure,
    startup_projects::numeric as actual_value,
    startup_projects::numeric as numerator,
    null::numeric as denominator,
    startup_projects || ' supported innovation projects of innovative startups in ' || year
        as basis
from project_years

union all

select
    project_years.province_code,
    project_years.year,
    measures.measure,
    measures.value::numeric as actual_value,
    measures.value::numeric as numerator,
    null::numeric as denominator,
    measures.value || ' ' || measures.label || ' first supported in ' || project_years.year
        as basis
from project_years
left join newly_supported
    on
        project_years.province_code = newly_supported.province_code
        and project_years.year = newly_supported.year
cross join lateral (
    values
    ('supported_st_enterprises', coalesce(newly_supported.st_enterprises, 0), 'S&T enterprises'),
    ('supported_innovative_startups', coalesce(newly_supported.startups, 0), 'innovative startups')
) as measures (measure, value, label)
