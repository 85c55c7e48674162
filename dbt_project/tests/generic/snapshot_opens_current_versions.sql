{#- The snapshot built from a version table (snapshots/, macros/snapshots.sql) keeps open
    (dbt_valid_to null) exactly the table's current versions (superseded_at null) that are not
    deletions: the highest version of a record is open whatever order its versions were landed
    in, a deleted record has no open row, an older version landed after a deletion does not
    reopen it, and a version that arrived after a higher one (never in force) is never open.
    On a version table, with `snapshot` the snapshot built from it and `key` the record key
    they share. Checks the records of the versions the test scope holds (macros/test_scope.sql:
    those loaded since the last published build; all of them in a full check). -#}
{% test snapshot_opens_current_versions(model, snapshot, key) %}
with loaded as (
    select
        {{ key }} as record_key,
        landed_id,
        is_deleted,
        superseded_at is null as is_current
    from {{ model }}
),

open_row as (
    select
        {{ key }} as record_key,
        landed_id
    from {{ snapshot }}
    where dbt_valid_to is null
)

-- A current version that is no open row of the snapshot.
select
    loaded.record_key,
    loaded.landed_id,
    'the current version is not open in the snapshot' as problem
from loaded
left join open_row on loaded.landed_id = open_row.landed_id
where loaded.is_current and not loaded.is_deleted and open_row.landed_id is null
union all
-- An open row of a record whose current version is another one, or a deletion.
select
    loaded.record_key,
    open_row.landed_id,
    'open in the snapshot while the current version is another or a deletion' as problem
from loaded
inner join open_row on loaded.record_key = open_row.record_key
where loaded.is_current and (loaded.is_deleted or open_row.landed_id != loaded.landed_id)
union all
-- A version superseded (or late: never current) that is open in the snapshot.
select
    loaded.record_key,
    loaded.landed_id,
    'a superseded version is open in the snapshot' as problem
from loaded
inner join open_row on loaded.landed_id = open_row.landed_id
where not loaded.is_current
{% endtest %}
