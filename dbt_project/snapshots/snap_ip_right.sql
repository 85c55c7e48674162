{% snapshot snap_ip_right %}
    {{ config(
        schema='history',
        strategy='timestamp',
        unique_key='ip_right_key',
        updated_at='source_updated_at',
        post_hook=["{{ close_deleted_snapshot_rows() }}"],
    ) }}

    -- SCD2 history of IP rights: each record's current version (all the version table's
    -- columns), read only when loaded since the last run (macros/snapshots.sql).
    select versioned.*  -- noqa: AM04
    from {{ ref('int_ip_rights_versioned') }} as versioned
    where versioned.superseded_at is null and {{ loaded_since_snapshot('versioned') }}
{% endsnapshot %}
