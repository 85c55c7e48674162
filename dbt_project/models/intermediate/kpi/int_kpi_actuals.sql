-- Actual value of every computable KPI measure per province (today's boundaries) and year, up to
-- the as-of year (later years hold plans, not results). One row per province, year and measure.
{%- set computed = [
    'int_kpi_innovation_computed',
    'int_kpi_organisations_computed',
    'int_kpi_ip_computed',
    'int_kpi_tasks_computed',
    'int_kpi_results_applied_12m_computed',
    'int_kpi_exchange_computed',
    'int_kpi_feed_computed',
] %}
{%- for model in computed %}
    select
        province_code,
        year,
        measure,
        actual_value,
        numerator,
        denominator,
        basis,
        {{ kpi_literal(model) }} as computed_by
    from {{ ref(model) }}
    where year <= extract(year from {{ kpi_as_of_date() }})
    {{ 'union all' if not loop.last }}
{%- endfor %}
