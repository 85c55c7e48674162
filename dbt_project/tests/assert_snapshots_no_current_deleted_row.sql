-- A deleted record has no current snapshot row: its tombstone is closed by the snapshot's
-- post-hook (macros/snapshots.sql).
select
    'snap_st_task' as snapshot_name,
    st_task_key as record_key,
    dbt_valid_from
from {{ ref('snap_st_task') }}
where is_deleted and dbt_valid_to is null
union all
select
    'snap_organisation' as snapshot_name,
    organisation_key as record_key,
    dbt_valid_from
from {{ ref('snap_organisation') }}
where is_deleted and dbt_valid_to is null
union all
select
    'snap_expert' as snapshot_name,
    expert_key as record_key,
    dbt_valid_from
from {{ ref('snap_expert') }}
where is_deleted and dbt_valid_to is null
union all
select
    'snap_listing' as snapshot_name,
    listing_key as record_key,
    dbt_valid_from
from {{ ref('snap_listing') }}
where is_deleted and dbt_valid_to is null
union all
select
    'snap_technology' as snapshot_name,
    technology_key as record_key,
    dbt_valid_from
from {{ ref('snap_technology') }}
where is_deleted and dbt_valid_to is null
union all
select
    'snap_ip_right' as snapshot_name,
    ip_right_key as record_key,
    dbt_valid_from
from {{ ref('snap_ip_right') }}
where is_deleted and dbt_valid_to is null
