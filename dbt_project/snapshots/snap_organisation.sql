{% snapshot snap_organisation %}
    {{ config(
        schema='history',
        strategy='timestamp',
        unique_key='organisation_key',
        updated_at='source_updated_at',
        post_hook=["{{ close_deleted_snapshot_rows() }}"],
    ) }}

    -- SCD2 history of organisations: each record's current version (all the version table's
    -- columns), read only when loaded since the last run (macros/snapshots.sql).
    select versioned.*  -- noqa: AM04
    from {{ ref('int_organisations_versioned') }} as versioned
    where versioned.superseded_at is null and {{ loaded_since_snapshot('versioned') }}
{% endsnapshot %}
