{{ config(materialized="view") }}

-- Every mention of an organisation in the current version of a record: one row per source,
-- entity, record and role, with its matching keys (int_organisations_resolved does the match).
{%- set mention_sources = [
    {'model': 'int_organisations_versioned', 'entity': 'organisation', 'role': 'registered',
        'name': 'name', 'code': 'enterprise_code', 'province': 'province_code'},
    {'model': 'int_st_tasks_versioned', 'entity': 'st_task', 'role': 'task_host',
        'name': 'host_organisation_name', 'code': 'host_organisation_code',
        'province': 'province_code'},
    {'model': 'int_result_applications_versioned', 'entity': 'result_application',
        'role': 'beneficiary', 'name': 'beneficiary_enterprise_name',
        'code': 'beneficiary_enterprise_code', 'province': 'application_province_code'},
    {'model': 'int_ip_rights_versioned', 'entity': 'ip_right', 'role': 'ip_applicant',
        'name': 'applicant_name', 'code': 'applicant_enterprise_code',
        'province': 'applicant_province_code', 'person_type': 'applicant_type'},
    {'model': 'int_technologies_versioned', 'entity': 'technology', 'role': 'technology_owner',
        'name': 'owner_name', 'code': 'owner_enterprise_code', 'province': 'province_code',
        'person_type': 'owner_type'},
    {'model': 'int_technology_demands_versioned', 'entity': 'technology_demand',
        'role': 'enterprise', 'name': 'enterprise_name', 'code': 'enterprise_code',
        'province': 'province_code'},
    {'model': 'int_innovation_projects_versioned', 'entity': 'innovation_project',
        'role': 'enterprise', 'name': 'enterprise_name', 'code': 'enterprise_code',
        'province': 'province_code'},
    {'model': 'int_innovation_surveys_versioned', 'entity': 'innovation_survey',
        'role': 'enterprise', 'name': 'enterprise_name', 'code': 'enterprise_code',
        'province': 'province_code'},
    {'model': 'int_capability_assessments_versioned', 'entity': 'capability_assessment',
        'role': 'enterprise', 'name': 'enterprise_name', 'code': 'enterprise_code',
        'province': 'province_code'},
    {'model': 'int_exchange_listings_versioned', 'entity': 'listing', 'role': 'listing_supplier',
        'name': 'supplier_name', 'code': 'supplier_enterprise_code',
        'province': 'province_code'},
    {'model': 'int_exchange_transactions_versioned', 'entity': 'transaction', 'role': 'seller',
        'name': 'seller_name', 'code': 'seller_enterprise_code', 'province': none,
        'date': 'signed_date'},
    {'model': 'int_exchange_transactions_versioned', 'entity': 'transaction', 'role': 'buyer',
        'name': 'buyer_name', 'code': 'buyer_enterprise_code', 'province': none,
        'date': 'signed_date'},
] %}

with mentions as (
    {%- for src in mention_sources %}
        select
            '{{ src.entity }}'::text as entity,
            '{{ src.role }}'::text as role,  -- noqa: RF04
            rec.source_id,
            rec.record_id,
            nullif(btrim(rec.{{ src.name }}), '') as name,  -- noqa: RF04
            -- The version table computed the key once (macros/organisation_name.sql); rows a
            -- version table holds from before it had the column get it here.
            coalesce(
                rec.{{ src.name }}_key, {{ organisation_name_key('rec.' ~ src.name) }}
            ) as name_key,
            nullif(btrim(rec.{{ src.code }}), '') as enterprise_code_as_sent,
            -- Transactions name no province.
            {{ 'rec.' ~ src.province if src.province else 'null' }}::text as province_code,
            -- Deals name no address: their signing date stands in. (A self-alias for the
            -- other sources, where this renders rec.unit_date: hence the noqa.)
            rec.{{ src.date or 'unit_date' }} as unit_date,  -- noqa: AL09
            rec.source_updated_at,
            rec.visible_at,
            rec.landed_id
        from {{ ref(src.model) }} as rec
        where
            {{ current_versions('rec') }}
            {%- if src.person_type %}
                -- A person is not an organisation (and stays out of this model: personal data).
                and rec.{{ src.person_type }} is distinct from 'individual'
            {%- endif %}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

keyed as (
    select
        mentions.*,
        coalesce(ops.mst_valid(mentions.enterprise_code_as_sent), false) as code_is_valid
    from mentions
)

select
    md5(
        keyed.source_id || '|' || keyed.entity || '|' || keyed.record_id || '|' || keyed.role
    ) as mention_key,
    keyed.source_id,
    keyed.entity,
    keyed.record_id,
    keyed.role,
    keyed.name,
    keyed.name_key,
    -- An invalid code (check digit, shape) is no key: kept as sent, matched by name instead.
    case when keyed.code_is_valid then keyed.enterprise_code_as_sent end as enterprise_code,
    keyed.enterprise_code_as_sent,
    case
        when keyed.code_is_valid and length(keyed.enterprise_code_as_sent) = 14
            then left(keyed.enterprise_code_as_sent, 10)
    end as parent_enterprise_code,
    keyed.province_code,
    keyed.unit_date,
    -- Today's province, so that old Hà Nam (35) and today's Ninh Bình (37) records match.
    prov.current_province_code as province_code_current,
    keyed.source_updated_at,
    keyed.visible_at,
    keyed.landed_id
from keyed
left join {{ ref('int_admin_provinces_dated') }} as prov
    on
        keyed.province_code = prov.code
        and {{ valid_on('prov', 'keyed.unit_date') }}
where keyed.code_is_valid or keyed.name_key is not null
