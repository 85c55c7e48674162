-- KPI measures from IP rights and their events, per applicant province (today's boundaries) and
-- year. A province-year is covered when it has any IP event; counts are zero within it.
with events as (
    select
        applicant_province_code_current as province_code,
        event_year as year,  -- noqa: RF04
        count(*) filter (
            where event_type = 'filing' and ip_type in ('invention', 'utility_solution')
        ) as patent_utility_filings,
        count(*) filter (where event_type = 'filing') as ip_filings,
        count(*) filter (where event_type = 'grant') as ip_grants
    from {{ ref('fct_ip_event') }}
    where applicant_province_code_current is not null and event_year is not null
    group by applicant_province_code_current, event_year
),

-- Granted patents and utility solutions per grant year, and how many of them are exploited
-- commercially. The registry records the current exploitation state, not its date.
granted as (
    select
        applicant_province_code_current as province_code,
        extract(year from grant_date)::integer as year,  -- noqa: RF04
        count(*) as granted_count,
        count(*) filter (
            where commercialisation in ('own_use', 'licensed', 'assigned')
        ) as exploited
    from {{ ref('fct_ip_right') }}
    where
        ip_type in ('invention', 'utility_solution')
        and grant_date is not null
        and applicant_province_code_current is not null
    group by applicant_province_code_current, extract(year from grant_date)
),

granted_stock as (
    select
        events.province_code,
        events.year,
        sum(granted.granted_count) as granted_count,
        sum(granted.exploited) as exploited
    from events
    inner join granted
        on
            events.province_code = granted.province_code
            and events.year >= granted.year
    group by events.province_code, events.year
)

select
    events.province_code,
    events.year,
    measures.measure,
    measures.value::numeric as actual_value,
    measures.value::numeric as numerator,
    null::numeric as denominator,
    measures.value || ' ' || measures.label || ' in ' || events.year
    || ' (applicant in the province)' as basis
from events
cross join
    lateral (
        values
        (
            'patent_utility_filings', events.patent_utility_filings,
            'invention and utility-solution applications filed'
        ),
        ('ip_filings', events.ip_filings, 'industrial-property applications filed (all types)'),
        (
            'ip_grants',
            events.ip_grants,
            'protection titles granted (all types, trademarks included)'
        )
    ) as measures (measure, value, label)

union all

select
    province_code,
    year,
    'patent_utility_commercialisation_share' as measure,
    round(100.0 * exploited / granted_count, 2) as actual_value,
    exploited::numeric as numerator,
    granted_count::numeric as denominator,
    exploited || ' of ' || granted_count
    || ' inventions and utility solutions granted by the end of '
    || year || ' are exploited commercially (own use, licensed or assigned; current state)'
        as basis
from granted_stock
where granted_count > 0
