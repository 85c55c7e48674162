-- KPI measures from the resolved organisations, per province (today's boundaries) and year: new
-- S&T enterprises in the year and the stock of each kind at the year's end. An organisation is
-- recognised on its S&T registration date, else its establishment date; one with neither date is
-- not counted. Years run from the province's first recognised organisation (at the earliest var
-- kpi_first_year, default 2015; older ones count in the stocks from then) to the as-of year.
{%- set first_year = var('kpi_first_year', 2015) %}
with orgs as (
    select
        organisation_key,
        org_type,
        intermediary_kind,
        province_code_current as province_code,
        extract(year from coalesce(st_registration_date, established_date))::integer
            as recognised_year,
        greatest(
            extract(year from coalesce(st_registration_date, established_date))::integer,
            {{ first_year }}
        ) as stock_year
    from {{ ref('dim_organisation') }}
    where
        province_code_current is not null
        and coalesce(st_registration_date, established_date) is not null
),

years as (
    select
        spans.province_code,
        spans.year
    from (
        select
            province_code,
            generate_series(
                min(stock_year),
                extract(year from {{ kpi_as_of_date() }})::integer
            ) as year  -- noqa: RF04
        from orgs
        group by province_code
    ) as spans
),

yearly as (
    select
        province_code,
        stock_year as year,  -- noqa: RF04
        count(*) filter (
            where org_type = 'st_enterprise' and recognised_year = stock_year
        ) as new_st_enterprises,
        count(*) filter (where org_type = 'st_enterprise') as st_enterprises,
        count(*) filter (where org_type = 'intermediary') as intermediaries,
        count(*) filter (
            where
            org_type = 'intermediary'
            and intermediary_kind in (
                {%- for kind in kpi_incubator_kinds() %}
                    {{ kpi_literal(kind) }}{{ ',' if not loop.last }}
                {%- endfor %}
            )
        ) as incubators,
        count(*) filter (where org_type = 'innovative_startup') as startups
    from orgs
    group by province_code, stock_year
),

-- Stocks at each year's end as running sums over the years (no per-year rescans).
counts as (
    select
        years.province_code,
        years.year,
        coalesce(yearly.new_st_enterprises, 0) as new_st_enterprises,
        sum(coalesce(yearly.intermediaries, 0)) over running as intermediaries,
        sum(coalesce(yearly.incubators, 0)) over running as incubators,
        sum(coalesce(yearly.startups, 0)) over running as startups,
        sum(coalesce(yearly.st_enterprises, 0) + coalesce(yearly.startups, 0)) over running
            as st_enterprises_and_startups
    from years
    left join yearly
        on
            years.province_code = yearly.province_code
            and years.year = yearly.year
    window running as (partition by years.province_code order by years.year)
)

select
    counts.province_code,
    counts.year,
    measures.measure,
    measures.value::numeric as actual_value,
    measures.value::numeric as numerator,
    null::numeric as denominator,
    measures.value || ' ' || measures.label as basis
from counts
cross join lateral (
    values
    (
        'new_st_enterprises', counts.new_st_enterprises,
        'S&T enterprises registered in ' || counts.year
    ),
    (
        'st_market_intermediaries', counts.intermediaries,
        'S&T market intermediaries registered by the end of ' || counts.year
        || ' (effectiveness not assessed)'
    ),
    (
        'incubators_innovation_spaces', counts.incubators,
        'incubators, startup support centres and innovation spaces by the end of ' || counts.year
    ),
    (
        'innovative_startups', counts.startups,
        'innovative startups by the end of ' || counts.year
    ),
    (
        'st_enterprises_and_startups', counts.st_enterprises_and_startups,
        'S&T enterprises and innovative startups by the end of ' || counts.year
    )
) as measures (measure, value, label)
