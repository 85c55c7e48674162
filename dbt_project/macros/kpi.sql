{#- KPI scorecard helpers (models/marts/kpi).

    The as-of date drives the 12-month application rule and which year is still in progress.
    Set the var `kpi_as_of_date` ('YYYY-MM-DD') to restate the scorecard as of a past date (unit
    tests pin it); without it, the build date. -#}
{% macro kpi_as_of_date() -%}
    {%- set as_of = var('kpi_as_of_date', none) -%}
    {%- if as_of -%}
        '{{ as_of | string | replace("'", "''") }}'::date
    {%- else -%}
        current_date
    {%- endif -%}
{%- endmacro %}

{#- The tolerance of at_risk: an actual short of the target by less than this share. -#}
{% macro kpi_at_risk_tolerance() -%}
    {{ return(0.1) }}
{%- endmacro %}

{#- Exchanges whose listings do not count for a province's own exchange (TH-3). -#}
{% macro kpi_national_exchange_sources() -%}
    {{ return(var('kpi_national_exchange_sources', ['national_exchange'])) }}
{%- endmacro %}

{#- Intermediary kinds counted as incubators / startup centres / innovation spaces (NB-P5). -#}
{% macro kpi_incubator_kinds() -%}
    {{ return(['incubator', 'startup_support_centre', 'innovation_space']) }}
{%- endmacro %}

{#- Inputs the warehouse does not hold. `short` completes "needs … (not held by the warehouse)". -#}
{% macro kpi_input_catalog() -%}
    {{ return([
        {'input': 'population', 'short': 'population',
         'en': 'Population by province and year',
         'source': 'GSO statistical yearbook / provincial statistics office'},
        {'input': 'grdp_tfp', 'short': 'GRDP/TFP',
         'en': 'GRDP growth and the TFP contribution to it',
         'source': 'GSO / provincial statistics office (TFP estimates)'},
        {'input': 'pii_ranking', 'short': 'PII ranking',
         'en': 'Provincial innovation index (PII) ranking of the 34 provinces',
         'source': 'Ministry of Science and Technology, yearly PII report'},
        {'input': 'international_publications', 'short': 'international publications',
         'en': 'International scientific publications with an author address in the province',
         'source': 'Web of Science / Scopus extracts, or form 01 organisations'},
        {'input': 'active_enterprise_count', 'short': 'a count of active enterprises',
         'en': 'Number of active enterprises in the province per year',
         'source': 'National business registration portal / GSO enterprise census'},
        {'input': 'provincial_budget', 'short': 'provincial budget expenditure',
         'en': 'Total provincial budget expenditure per year',
         'source': 'Provincial Department of Finance (budget settlement)'},
        {'input': 'st_expenditure', 'short': 'S&T expenditure',
         'en': 'S&T expenditure per year (statistical form 03)',
         'source': 'Statistical form 03/KHCN expenditure (not landed)'},
        {'input': 'industrial_output_by_technology', 'short': 'manufacturing output by technology level',
         'en': 'Manufacturing output value split by technology level (high-tech share)',
         'source': 'Provincial statistics office / Department of Industry and Trade'},
        {'input': 'researcher_headcount', 'short': 'researcher headcount',
         'en': 'People doing R&D and innovation in the province (headcount)',
         'source': 'Statistical form 02/KHCN staff (not landed)'},
        {'input': 'rd_fte', 'short': 'R&D staff in full-time equivalents',
         'en': 'R&D personnel in full-time equivalents',
         'source': 'Statistical form 02/KHCN staff / R&D survey (not landed)'},
        {'input': 'digital_tech_workers', 'short': 'digital-technology workers',
         'en': 'Digital-technology workforce attracted to the province',
         'source': 'Department of Science and Technology (digital transformation) / labour statistics'},
        {'input': 'spin_off_flag', 'short': 'a spin-off flag on enterprises',
         'en': 'Whether an enterprise is a spin-off of a public unit, institute or university',
         'source': 'Organisation registries (new attribute) or Department of Science and Technology'},
    ]) }}
{%- endmacro %}

{#- Every measure a KPI target may use: the model computing it (none when it needs inputs the
    warehouse does not hold), the facts named when a year has no data, and the missing inputs
    (for a partly computable measure, the input its share still lacks). -#}
{% macro kpi_measure_catalog() -%}
    {{ return([
        {'measure': 'innovating_enterprise_share', 'model': 'int_kpi_innovation_computed',
         'facts': 'innovation survey answers', 'needs': []},
        {'measure': 'supported_innovation_projects', 'model': 'int_kpi_innovation_computed',
         'facts': 'innovation support projects', 'needs': []},
        {'measure': 'commercialised_innovative_products', 'model': 'int_kpi_innovation_computed',
         'facts': 'innovation support projects', 'needs': []},
        {'measure': 'supported_st_enterprises', 'model': 'int_kpi_innovation_computed',
         'facts': 'innovation support projects', 'needs': []},
        {'measure': 'supported_startup_projects', 'model': 'int_kpi_innovation_computed',
         'facts': 'innovation support projects', 'needs': []},
        {'measure': 'supported_innovative_startups', 'model': 'int_kpi_innovation_computed',
         'facts': 'innovation support projects', 'needs': []},
        {'measure': 'new_st_enterprises', 'model': 'int_kpi_organisations_computed',
         'facts': 'organisations', 'needs': []},
        {'measure': 'st_market_intermediaries', 'model': 'int_kpi_organisations_computed',
         'facts': 'organisations', 'needs': []},
        {'measure': 'incubators_innovation_spaces', 'model': 'int_kpi_organisations_computed',
         'facts': 'organisations', 'needs': []},
        {'measure': 'innovative_startups', 'model': 'int_kpi_organisations_computed',
         'facts': 'organisations', 'needs': []},
        {'measure': 'st_enterprises_and_startups', 'model': 'int_kpi_organisations_computed',
         'facts': 'organisations', 'needs': []},
        {'measure': 'patent_utility_filings', 'model': 'int_kpi_ip_computed',
         'facts': 'IP events', 'needs': []},
        {'measure': 'ip_filings', 'model': 'int_kpi_ip_computed',
         'facts': 'IP events', 'needs': []},
        {'measure': 'ip_grants', 'model': 'int_kpi_ip_computed',
         'facts': 'IP events', 'needs': []},
        {'measure': 'patent_utility_commercialisation_share', 'model': 'int_kpi_ip_computed',
         'facts': 'granted patents or utility solutions', 'needs': []},
        {'measure': 'provincial_tasks_started', 'model': 'int_kpi_tasks_computed',
         'facts': 'S&T tasks', 'needs': []},
        {'measure': 'tasks_applied_maintained_share', 'model': 'int_kpi_tasks_computed',
         'facts': 'result application reports', 'needs': []},
        {'measure': 'enterprises_applying_research_results_share', 'model': 'int_kpi_tasks_computed',
         'facts': 'result application reports', 'needs': ['active_enterprise_count']},
        {'measure': 'results_applied_within_12m_share',
         'model': 'int_kpi_results_applied_12m_computed',
         'facts': 'S&T tasks accepted at least 12 months before the as-of date', 'needs': []},
        {'measure': 'exchange_databases_operating', 'model': 'int_kpi_exchange_computed',
         'facts': 'exchange listings or IP events', 'needs': []},
        {'measure': 'international_publications', 'model': none,
         'facts': 'international publications', 'needs': ['international_publications']},
        {'measure': 'researchers_per_10k_population', 'model': none,
         'facts': 'researchers', 'needs': ['researcher_headcount', 'population']},
        {'measure': 'digital_tech_workers', 'model': none,
         'facts': 'digital-technology workers', 'needs': ['digital_tech_workers']},
        {'measure': 'pii_rank', 'model': none,
         'facts': 'PII rankings', 'needs': ['pii_ranking']},
        {'measure': 'tfp_share_of_grdp_growth', 'model': none,
         'facts': 'GRDP/TFP estimates', 'needs': ['grdp_tfp']},
        {'measure': 'connected_specialised_databases', 'model': 'int_kpi_feed_computed',
         'facts': 'records acknowledged by the national STI platform (feed ledger)', 'needs': []},
        {'measure': 'st_spending_share_of_budget', 'model': none,
         'facts': 'budget data', 'needs': ['st_expenditure', 'provincial_budget']},
        {'measure': 'hightech_share_of_manufacturing', 'model': none,
         'facts': 'manufacturing output', 'needs': ['industrial_output_by_technology']},
        {'measure': 'rd_fte_per_10k_population', 'model': none,
         'facts': 'R&D staff', 'needs': ['rd_fte', 'population']},
        {'measure': 'spin_off_enterprises', 'model': none,
         'facts': 'spin-off enterprises', 'needs': ['spin_off_flag']},
    ]) }}
{%- endmacro %}

{#- SQL string literal. -#}
{% macro kpi_literal(value) -%}
    {%- if value is none -%}
        null::text
    {%- else -%}
        '{{ value | string | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}

{#- A number for status texts: rounded to one decimal, without trailing zeros. -#}
{% macro kpi_format_number(expression) -%}
    trim_scale(round(({{ expression }})::numeric, 1))::text
{%- endmacro %}

{#- The target as text, e.g. "≥ 50 percent", "> 20 count over 2026–2030", "12–15 percent_per_year
    growth"; takes the alias of a relation with the kpi_targets columns. -#}
{% macro kpi_target_text(t) -%}
    case {{ t }}.target_kind
        when 'max' then '≤ ' || {{ kpi_format_number(t ~ '.target_max') }}
        when 'range' then {{ kpi_format_number(t ~ '.target_min') }}
            || '–' || {{ kpi_format_number(t ~ '.target_max') }}
        when 'growth' then 'growth ' || coalesce(
            {{ kpi_format_number(t ~ '.target_min') }} || '–'
            || {{ kpi_format_number(t ~ '.target_max') }},
            case when {{ t }}.strict then '> ' else '≥ ' end
            || {{ kpi_format_number(t ~ '.target_min') }}
        )
        when 'cumulative_min' then case when {{ t }}.strict then '> ' else '≥ ' end
            || {{ kpi_format_number(t ~ '.target_min') }}
            || coalesce('–' || {{ kpi_format_number(t ~ '.target_max') }}, '')
        when 'baseline_ratio' then case when {{ t }}.strict then '> ' else '≥ ' end
            || {{ kpi_format_number(t ~ '.target_min') }} || ' × ' || {{ t }}.baseline_year
        else case when {{ t }}.strict then '> ' else '≥ ' end
            || {{ kpi_format_number(t ~ '.target_min') }}
    end || ' ' || {{ t }}.unit
    || case
        when {{ t }}.target_kind = 'cumulative_min'
            then ' over ' || {{ t }}.period_start || '–' || {{ t }}.period_end
        else ''
    end
{%- endmacro %}
