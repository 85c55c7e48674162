{{ config(materialized="view") }}

-- Events in the life of each current IP right: filing, publication, grant, and licence or
-- assignment. The contract has no date for commercialisation, so a licence or assignment is
-- dated by when the source changed the first version that shows it (source_updated_at).
with ip_right as (
    select *
    from {{ ref('fct_ip_right') }}
),

commercialised as (
    -- Only the (few) versions that show a licence or assignment are read.
    select distinct on (v.ip_right_key, v.commercialisation)
        v.ip_right_key,
        v.commercialisation,
        (v.source_updated_at at time zone 'UTC')::date as event_date
    from {{ ref('int_ip_rights_versioned') }} as v
    where
        v.commercialisation in ('licensed', 'assigned')
        and not v.is_deleted
    {%- if var('published_before', none) %}
        and v.visible_at <= {{ cutoff_literal() }}
        {%- endif %}
    order by v.ip_right_key, v.commercialisation, v.version, v.source_updated_at, v.landed_id
),

event as (
    select
        ip_right_key,
        'filing' as event_type,
        filing_date as event_date
    from ip_right
    union all
    select
        ip_right_key,
        'publication' as event_type,
        publication_date as event_date
    from ip_right
    where publication_date is not null
    union all
    select
        ip_right_key,
        'grant' as event_type,
        grant_date as event_date
    from ip_right
    where grant_date is not null
    union all
    select
        ip_right_key,
        case commercialisation when 'licensed' then 'licence' else 'assignment' end
            as event_type,
        event_date
    from commercialised
)

select
    md5(ip_right.ip_right_key || '|' || event.event_type) as ip_event_key,
    ip_right.ip_right_key,
    ip_right.source_id,
    ip_right.record_id,
    ip_right.ip_type,
    ip_right.application_number,
    event.event_type,
    event.event_date,
    extract(year from event.event_date)::integer as event_year,
    ip_right.applicant_province_code,
    ip_right.applicant_province_code_current,
    ip_right.applicant_enterprise_code,
    ip_right.version,
    ip_right.source_updated_at,
    ip_right.batch_id,
    ip_right.landed_id,
    ip_right.visible_at
from event
inner join ip_right on event.ip_right_key = ip_right.ip_right_key
