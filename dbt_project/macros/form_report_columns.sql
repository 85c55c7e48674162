{#- Columns every spreadsheet-form staging view carries about the report the row comes from. A
    corrected re-submission lands as a higher version of the rows it repeats but does not delete
    the rows it leaves out, so the facts keep the rows of each report's newest version:
    `report_key` names the report (form / reporter / year, as the landing's record id does). -#}
{% macro form_report_columns(alias) -%}
    concat_ws(
        '/',
        {{ alias }}.record ->> '_form',
        coalesce({{ alias }}.record ->> 'reporting_unit', {{ alias }}.record ->> 'province'),
        {{ alias }}.record ->> 'report_year'
    ) as report_key,
    {{ alias }}.record ->> '_form' as form_code,
    ({{ alias }}.record ->> 'report_year')::integer as report_year,
    ({{ alias }}.record ->> 'report_revision')::integer as report_revision,
    nullif(btrim({{ alias }}.record ->> 'reporting_unit'), '') as reporting_unit,
    nullif(btrim({{ alias }}.record ->> 'province'), '') as reporting_province_name,
    -- The province of the drop location, as the source catalogue declares it (ops.source).
    (
        select catalogue.province_code
        from {{ source('ops', 'source') }} as catalogue
        where catalogue.source_id = {{ alias }}.source_id
    ) as reporting_province_code,
    {{ alias }}.record ->> '_file' as file_name,
    {{ alias }}.record ->> '_sheet' as sheet_name,
    ({{ alias }}.record ->> '_row')::integer as row_number,
    ({{ alias }}.record ->> 'stt')::integer as stt
{%- endmacro %}
