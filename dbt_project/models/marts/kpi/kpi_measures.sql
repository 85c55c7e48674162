-- The measures KPI targets use (macros/kpi.sql holds the catalog), with what each needs.
{%- set inputs = {} %}
{%- for i in kpi_input_catalog() %}{% do inputs.update({i.input: i.short}) %}{% endfor %}
select
    catalog_rows.measure,
    catalog_rows.computed_by,
    catalog_rows.facts_label,
    catalog_rows.missing_inputs,
    case
        when catalog_rows.missing_inputs is not null
            then 'needs ' || catalog_rows.missing_inputs_text || ' (not held by the warehouse)'
    end as missing_inputs_reason,
    catalog_rows.computed_by is not null and catalog_rows.missing_inputs is null as is_computable
from (
    values
    {%- for m in kpi_measure_catalog() %}
        {%- set shorts = [] %}
        {%- for n in m.needs %}{% do shorts.append(inputs[n]) %}{% endfor %}
        (
            {{ kpi_literal(m.measure) }},
            {{ kpi_literal(m.model) }},
            {{ kpi_literal(m.facts) }},
            {{ kpi_literal(m.needs | join(',') if m.needs else none) }},
            {{ kpi_literal(shorts | join(' and ') if shorts else none) }}
        ){{ ',' if not loop.last }}
    {%- endfor %}
) as catalog_rows (measure, computed_by, facts_label, missing_inputs, missing_inputs_text)
