-- Inputs KPI targets need that the warehouse does not hold, with the measures and targets
-- waiting for them: a documented gap rather than invented figures.
with inputs as (
    select
        catalog_rows.input_code,
        catalog_rows.input_en,
        catalog_rows.reason_text,
        catalog_rows.possible_source
    from (
        values
        {%- for i in kpi_input_catalog() %}
            (
                {{ kpi_literal(i.input) }},
                {{ kpi_literal(i.en) }},
                {{ kpi_literal('needs ' ~ i.short ~ ' (not held by the warehouse)') }},
                {{ kpi_literal(i.source) }}
            ){{ ',' if not loop.last }}
        {%- endfor %}
    ) as catalog_rows (input_code, input_en, reason_text, possible_source)
),

measure_inputs as (
    select
        measures.measure,
        trim(needed.input_code) as input_code
    from {{ ref('kpi_measures') }} as measures
    cross join lateral unnest(string_to_array(measures.missing_inputs, ',')) as needed (input_code)
),

needing as (
    select
        measure_inputs.input_code,
        string_agg(distinct measure_inputs.measure, ', ') as measures,
        string_agg(distinct targets.target_id, ', ') as target_ids,
        count(distinct targets.target_id) as target_count
    from measure_inputs
    left join {{ ref('kpi_targets') }} as targets
        on measure_inputs.measure = targets.measure
    group by measure_inputs.input_code
)

select
    inputs.input_code,
    inputs.input_en,
    inputs.reason_text,
    inputs.possible_source,
    needing.measures,
    needing.target_ids,
    coalesce(needing.target_count, 0) as target_count
from inputs
left join needing
    on inputs.input_code = needing.input_code
