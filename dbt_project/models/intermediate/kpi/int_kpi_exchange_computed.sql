-- Whether a province's own technology exchange holds its three databases (TH-3: demand, supply
-- and IP), per province (today's boundaries) and year: offer and demand listings posted on a
-- provincial exchange in the year, and IP records (any IP event of an applicant in the province).
{%- set national = kpi_national_exchange_sources() %}
with listings as (
    select
        province_code_current as province_code,
        extract(year from posted_date)::integer as year,  -- noqa: RF04
        count(*) filter (where listing_type = 'offer') as offers,
        count(*) filter (where listing_type = 'demand') as demands
    from {{ ref('fct_exchange_listing') }}
    where
        province_code_current is not null
        and posted_date is not null
        {%- if national %}
            and source_id not in (
                {%- for s in national %}{{ kpi_literal(s) }}{{ ',' if not loop.last }}{% endfor -%}
            )
        {%- endif %}
    group by province_code_current, extract(year from posted_date)
),

transactions as (
    select
        province_code_current as province_code,
        extract(year from signed_date)::integer as year,  -- noqa: RF04
        count(*) as deals
    from {{ ref('fct_exchange_transaction') }}
    where
        province_code_current is not null
        and signed_date is not null
        {%- if national %}
            and source_id not in (
                {%- for s in national %}{{ kpi_literal(s) }}{{ ',' if not loop.last }}{% endfor -%}
            )
        {%- endif %}
    group by province_code_current, extract(year from signed_date)
),

ip as (
    select
        applicant_province_code_current as province_code,
        event_year as year,  -- noqa: RF04
        count(*) as ip_events
    from {{ ref('fct_ip_event') }}
    where applicant_province_code_current is not null and event_year is not null
    group by applicant_province_code_current, event_year
),

combined as (
    select
        coalesce(listings.province_code, ip.province_code) as province_code,
        coalesce(listings.year, ip.year) as year,  -- noqa: RF04
        coalesce(listings.offers, 0) as offers,
        coalesce(listings.demands, 0) as demands,
        coalesce(ip.ip_events, 0) as ip_events
    from listings
    full outer join ip
        on
            listings.province_code = ip.province_code
            and listings.year = ip.year
)

select
    combined.province_code,
    combined.year,
    'exchange_databases_operating' as measure,
    (
        (combined.offers > 0)::integer
        + (combined.demands > 0)::integer
        + (combined.ip_events > 0)::integer
    )::numeric as actual_value,
    (
        (combined.offers > 0)::integer
        + (combined.demands > 0)::integer
        + (combined.ip_events > 0)::integer
    )::numeric as numerator,
    3::numeric as denominator,
    'provincial exchange ' || combined.year || ': ' || combined.offers || ' offer and '
    || combined.demands || ' demand listings, ' || coalesce(transactions.deals, 0)
    || ' transactions; ' || combined.ip_events || ' IP events of applicants in the province'
        as basis
from combined
left join transactions
    on
        combined.province_code = transactions.province_code
        and combined.year = transactions.year
