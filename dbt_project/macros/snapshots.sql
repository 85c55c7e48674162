{#- Snapshots (snapshots/, schema `history`): SCD2 history of the entities that change, built
    from their version tables. A snapshot reads only the current versions (superseded_at null)
    loaded into the version table since the snapshot last ran (loaded_at after the latest it
    holds), so a run costs in proportion to the change, not to the table; on the first run,
    when the snapshot does not exist yet, it reads every current version. -#}
{% macro loaded_since_snapshot(alias) -%}
    {%- set existing = none -%}
    {%- if execute -%}
        {%- set existing = adapter.get_relation(
            database=this.database, schema=this.schema, identifier=this.identifier
        ) -%}
    {%- endif -%}
    {%- if existing is not none -%}
    {{ alias }}.loaded_at > (
        select coalesce(max(snap.loaded_at), '-infinity'::timestamptz) from {{ this }} as snap
    )
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of a snapshot: a deletion arrives as a new snapshot row (is_deleted true) that
    closes the record's previous row; closing the tombstone itself (valid to = valid from)
    leaves the deleted record with no current row while its history, deletion included, stays.
    Two indexes keep the next run in proportion to the change: the latest loaded_at, and the
    open tombstones (a partial index that is empty between runs). -#}
{% macro close_deleted_snapshot_rows() -%}
    create index if not exists {{ this.identifier }}_loaded_at_idx on {{ this }} (loaded_at);
    create index if not exists {{ this.identifier }}_open_tombstone_idx on {{ this }} (dbt_valid_to)
    where is_deleted and dbt_valid_to is null;
    update {{ this }}
    set dbt_valid_to = dbt_valid_from
    where is_deleted and dbt_valid_to is null
{%- endmacro %}
