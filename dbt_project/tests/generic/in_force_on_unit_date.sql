{#- Unit codes (when present) that name no unit in force on the fact's own date: a fact's
    province or commune code and its unit_date must come from the same record and date, so
    that the dated join analysts use (`p.code = f.province_code and f.unit_date between
    valid_from and valid_to`, README "The warehouse model") finds the fact. `to` is the dated
    dimension (dim_province, dim_commune), `date_column` the fact's date (unit_date). -#}
{% test in_force_on_unit_date(model, column_name, to, date_column='unit_date') %}
select
    fact.{{ column_name }},
    fact.{{ date_column }}
from (select {{ column_name }}, {{ date_column }} from {{ model }}) as fact
where
    fact.{{ column_name }} is not null
    and not exists (
        select 1
        from {{ to }} as unit
        where
            unit.code = fact.{{ column_name }}
            and {{ valid_on('unit', 'fact.' ~ date_column) }}
    )
{% endtest %}
