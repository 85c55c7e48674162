-- The provincial KPI scorecard: every target of the plans (seed kpi_targets) against the
-- warehouse's actual value, per year. Status rule: see kpi_scorecard in _kpi__models.yml.
{%- set tolerance = kpi_at_risk_tolerance() %}
with targets as (
    select
        targets.*,
        {{ kpi_target_text('targets') }} as target_text
    from {{ ref('kpi_targets') }} as targets
),

actuals as (
    select * from {{ ref('int_kpi_actuals') }}
),

as_of as (
    select
        {{ kpi_as_of_date() }} as as_of_date,
        extract(year from {{ kpi_as_of_date() }})::integer as as_of_year
),

-- Every year with data (from kpi_scorecard_first_year) and at least 2024 to the as-of year.
years as (
    select distinct actuals.year
    from actuals
    where actuals.year >= {{ var('kpi_scorecard_first_year', 2020) }}
    union
    select generate_series(2024, greatest(2026, as_of.as_of_year)) as year  -- noqa: RF04
    from as_of
),

grid as (
    select
        targets.*,
        years.year,
        measures.facts_label,
        measures.missing_inputs_reason,
        targets.period_end - targets.period_start + 1 as period_years
    from targets
    cross join years
    left join {{ ref('kpi_measures') }} as measures
        on targets.measure = measures.measure
),

-- Cumulative targets sum the measure over the plan period up to the year.
cumulated as (
    select
        grid.target_id,
        grid.year,
        sum(actuals.actual_value) as cumulative_value,
        count(actuals.actual_value) as years_with_data
    from grid
    inner join actuals
        on
            grid.province_code = actuals.province_code
            and grid.measure = actuals.measure
            and actuals.year between grid.period_start and grid.year
    where grid.target_kind = 'cumulative_min'
    group by grid.target_id, grid.year
),

measured as (
    select
        grid.*,
        current_year.actual_value as measure_value,
        current_year.numerator,
        current_year.denominator,
        current_year.basis as measure_basis,
        current_year.measure is not null as has_data,
        previous_year.actual_value as previous_value,
        baseline.actual_value as baseline_value,
        cumulated.cumulative_value,
        cumulated.years_with_data,
        -- share of the plan period elapsed by the year (years before the period: one year's share)
        case
            when grid.year < grid.period_start then 1
            else least(grid.year, grid.period_end) - grid.period_start + 1
        end as years_elapsed
    from grid
    left join actuals as current_year
        on
            grid.province_code = current_year.province_code
            and grid.measure = current_year.measure
            and grid.year = current_year.year
    left join actuals as previous_year
        on
            grid.province_code = previous_year.province_code
            and grid.measure = previous_year.measure
            and grid.year - 1 = previous_year.year
    left join actuals as baseline
        on
            grid.province_code = baseline.province_code
            and grid.measure = baseline.measure
            and grid.baseline_year = baseline.year
    left join cumulated
        on
            grid.target_id = cumulated.target_id
            and grid.year = cumulated.year
),

compared as (
    select
        measured.*,
        case measured.target_kind
            when 'growth'
                then
                    case
                        when measured.previous_value > 0
                            then
                                round(
                                    100.0 * (measured.measure_value / measured.previous_value - 1),
                                    2
                                )
                    end
            when 'baseline_ratio'
                then
                    case
                        when measured.baseline_value > 0
                            then round(measured.measure_value / measured.baseline_value, 2)
                    end
            when 'cumulative_min'
                then
                    case
                        when measured.year < measured.period_start then measured.measure_value
                        else measured.cumulative_value
                    end
            else measured.measure_value
        end as actual_value,
        case measured.target_kind
            when 'max' then measured.target_max
            when 'cumulative_min'
                then
                    round(measured.target_min * measured.years_elapsed / measured.period_years, 2)
            else measured.target_min
        end as required_value
    from measured
),

statused as (
    select
        compared.*,
        case
            when compared.missing_inputs_reason is not null then 'not_computable'
            when not compared.has_data or compared.actual_value is null then 'not_computable'
            when compared.target_kind = 'max'
                then
                    case
                        when compared.actual_value <= compared.required_value then 'on_track'
                        when
                            compared.actual_value <= compared.required_value * (1 + {{ tolerance }})
                            then 'at_risk'
                        else 'off_track'
                    end
            when
                compared.actual_value > compared.required_value
                or (
                    compared.actual_value = compared.required_value
                    -- "more than" binds the final total; a pro-rata share is met at equality
                    and (
                        not compared.strict
                        or (
                            compared.target_kind = 'cumulative_min'
                            and compared.years_elapsed < compared.period_years
                        )
                    )
                )
                then 'on_track'
            when compared.actual_value >= compared.required_value * (1 - {{ tolerance }})
                then 'at_risk'
            else 'off_track'
        end as status
    from compared
),

-- Targets of other documents on the same measure and province, of the same kind but another
-- threshold, over overlapping periods (e.g. NB-M1 ≥ 50% vs NB-P6 > 40%): both stay, side by side.
disagreements as (
    select
        this.target_id,
        string_agg(
            other.target_id || ' (' || left(other.document, 3) || ' ' || other.section || '): '
            || other.target_text,
            '; ' order by other.target_id
        ) as disagreement
    from targets as this
    inner join targets as other
        on
            this.province_code = other.province_code
            and this.measure = other.measure
            and this.target_kind = other.target_kind
            and this.target_id <> other.target_id
            and left(this.document, 3) <> left(other.document, 3)
            and this.period_start <= other.period_end
            and this.period_end >= other.period_start
    where
        (this.target_min, this.target_max, this.strict)
        is distinct from (other.target_min, other.target_max, other.strict)
    group by this.target_id
)

select
    statused.kpi_id,
    statused.target_id,
    statused.province_code,
    provinces.name as province_name,
    statused.year,
    statused.measure,
    statused.indicator_en,
    statused.target_kind,
    statused.target_min,
    statused.target_max,
    statused.strict,
    statused.unit,
    statused.target_text,
    statused.actual_value,
    statused.required_value,
    statused.measure_value,
    statused.numerator,
    statused.denominator,
    statused.measure_basis as basis,
    statused.status,
    nullif(concat_ws(
        '; ',
        case
            when statused.missing_inputs_reason is not null
                then
                    statused.missing_inputs_reason
                    || coalesce('; held so far: ' || statused.measure_basis, '')
            when not statused.has_data
                then 'no ' || statused.facts_label || ' for ' || statused.year
            when statused.target_kind = 'growth' and statused.previous_value is null
                then
                    'no ' || statused.facts_label || ' for ' || (statused.year - 1)
                    || ' (growth needs the previous year)'
            when statused.target_kind = 'growth' and statused.actual_value is null
                then 'growth undefined: ' || (statused.year - 1) || ' had 0'
            when statused.target_kind = 'baseline_ratio' and statused.baseline_value is null
                then
                    'no '
                    || statused.facts_label
                    || ' for the baseline year '
                    || statused.baseline_year
            when statused.target_kind = 'baseline_ratio' and statused.actual_value is null
                then 'baseline year ' || statused.baseline_year || ' had 0'
            when statused.status in ('at_risk', 'off_track')
                then
                    case
                        when statused.target_kind = 'growth'
                            then
                                'growth ' || {{ kpi_format_number('statused.actual_value') }} || '%'
                        when
                            statused.target_kind = 'cumulative_min'
                            and statused.year >= statused.period_start
                            then
                                'cumulative ' || {{ kpi_format_number('statused.actual_value') }}
                                || ' (' || statused.period_start || '–' || statused.year || ')'
                        when statused.target_kind = 'baseline_ratio'
                            then
                                'ratio ' || {{ kpi_format_number('statused.actual_value') }} || ' ('
                                || {{ kpi_format_number('statused.measure_value') }} || ' vs '
                                || {{ kpi_format_number('statused.baseline_value') }} || ' in '
                                || statused.baseline_year || ')'
                        else 'actual ' || {{ kpi_format_number('statused.actual_value') }}
                    end
                    || case
                        when statused.target_kind = 'max' then ' exceeds '
                        else ' falls short of '
                    end
                    || case
                        when statused.target_kind = 'cumulative_min'
                            then
                                'the pro-rata target '
                                || {{ kpi_format_number('statused.required_value') }}
                                || ' (' || statused.years_elapsed || ' of ' || statused.period_years
                                || ' years of ' || statused.target_text || ')'
                        else 'the target ' || statused.target_text
                    end
                    || case
                        when
                            statused.status = 'at_risk'
                            then ', by less than {{ (tolerance * 100) | int }}%'
                        else ', by more than {{ (tolerance * 100) | int }}%'
                    end
            when
                statused.target_kind in ('range', 'growth')
                and statused.actual_value > statused.target_max
                then 'above the target range ' || statused.target_text
        end,
        case
            when statused.year = as_of.as_of_year and statused.missing_inputs_reason is null
                then 'year in progress (as of ' || as_of.as_of_date || ')'
        end
    ), '') as status_reason,
    statused.document,
    statused.section,
    statused.year between statused.period_start and statused.period_end as in_plan_period,
    statused.year < as_of.as_of_year as is_year_complete,
    disagreements.disagreement
from statused
cross join as_of
left join {{ ref('dim_province') }} as provinces
    on
        statused.province_code = provinces.code
        and provinces.is_current
left join disagreements
    on statused.target_id = disagreements.target_id
