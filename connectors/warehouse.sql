-- Landing zone and load ledger. Idempotent: applied before every load.
create schema if not exists raw;
create schema if not exists ops;

-- Every record as the source sent it, append-only. One table for all sources and entities
-- so that a new registry or entity needs no DDL.
create table if not exists raw.landed_record (
    landed_id     bigint generated always as identity primary key,
    batch_id      bigint      not null,
    source_id     text        not null,
    entity        text        not null,
    record_id     text,                 -- null when the source omitted it (quarantined later)
    version       bigint,
    updated_at    timestamptz,
    deleted       boolean,
    extracted_at  timestamptz not null,
    checksum      bytea       not null,  -- sha256 of the canonical (key-sorted) JSON payload
    payload       jsonb       not null,  -- the record exactly as the source sent it
    landing_issue text,                 -- what landing could not store or repair (quarantined)
    standardised  jsonb,                -- the record with repaired, typed values; null: unchanged
    repairs       jsonb                 -- one entry per repaired field: field, repair, from, to
);
-- Warehouses created before these columns existed.
alter table raw.landed_record add column if not exists landing_issue text;
alter table raw.landed_record add column if not exists standardised jsonb;
alter table raw.landed_record add column if not exists repairs jsonb;

-- What the gate and the warehouse read: the standardised record where landing repaired one.
create or replace view raw.landed as
select
    landed_id, batch_id, source_id, entity, record_id, version, updated_at, deleted,
    extracted_at, checksum, landing_issue, repairs,
    coalesce(standardised, payload) as record,
    payload
from raw.landed_record;
create index if not exists landed_record_batch_idx on raw.landed_record (batch_id);
create index if not exists landed_record_key_idx
    on raw.landed_record (source_id, entity, record_id, version);

-- Load-batch ledger: one row per extraction run of one source entity.
create table if not exists ops.load_batch (
    batch_id          bigint generated always as identity primary key,
    source_id         text        not null,
    entity            text        not null,
    contract          text        not null,  -- source contract, e.g. registry-api-v1
    state             text        not null default 'extracting'
        check (state in ('extracting', 'landed', 'validated', 'failed', 'published')),
    updated_since     timestamptz,          -- the cursor this batch extracted from
    started_at        timestamptz not null default now(),
    landed_at         timestamptz,
    validated_at      timestamptz,
    published_at      timestamptz,
    failed_at         timestamptz,
    records_extracted bigint      not null default 0,
    records_landed    bigint      not null default 0,
    records_skipped   bigint      not null default 0,  -- already landed (same id, version, checksum)
    records_passed    bigint,
    records_quarantined bigint,
    pages             integer     not null default 0,
    schema_drift      jsonb,                -- fields the source added beyond its contract
    error             text
);
alter table ops.load_batch add column if not exists schema_drift jsonb;
create index if not exists load_batch_source_idx on ops.load_batch (source_id, entity, batch_id);

-- Incremental cursor per source entity; advanced in the same transaction that lands a batch.
create table if not exists ops.source_cursor (
    source_id      text        not null,
    entity         text        not null,
    high_watermark timestamptz not null,
    batch_id       bigint      not null references ops.load_batch (batch_id),
    updated_at     timestamptz not null default now(),
    primary key (source_id, entity)
);

-- Spreadsheet files landed from drop locations, by content: a file dropped twice (under any
-- name) is landed once. A rejected file is recorded with its error and not read again until
-- its content changes.
create table if not exists ops.drop_file (
    source_id   text        not null,
    sha256      bytea       not null,
    file_name   text        not null,
    entity      text,
    size_bytes  bigint      not null,
    modified_at timestamptz not null,
    state       text        not null check (state in ('landed', 'rejected')),
    batch_id    bigint references ops.load_batch (batch_id),
    rows_landed bigint,
    error       text,
    recorded_at timestamptz not null default now(),
    primary key (source_id, sha256)
);

-- Rows that failed a row-level expectation. Never deleted; resolution is recorded instead.
create table if not exists ops.quarantine (
    quarantine_id   bigint generated always as identity primary key,
    batch_id        bigint      not null references ops.load_batch (batch_id),
    landed_id       bigint      not null,
    source_id       text        not null,
    entity          text        not null,
    record_id       text,
    version         bigint,
    expectation     text        not null,  -- expectation type and column, e.g. not_null(record_id)
    reason          text        not null,  -- readable reason (English)
    reason_vi       text,                  -- the same reason in Vietnamese
    payload         jsonb       not null,
    quarantined_at  timestamptz not null default now(),
    resolved_at     timestamptz,
    resolution      text,
    unique (landed_id, expectation)
);
create index if not exists quarantine_open_idx on ops.quarantine (source_id, entity)
    where resolved_at is null;

-- Lenient date cast for the gate: a malformed value becomes null (and fails not-null checks)
-- instead of aborting the whole validation query.
create or replace function ops.try_date(value text) returns date
language plpgsql immutable as $$
begin
    return value::date;
exception when others then
    return null;
end $$;

-- What waits in quarantine, per source, entity and reason, oldest first. Quoted values in
-- reasons (e.g. the enterprise code that fails its check digit) are folded to "…", so rows
-- with the same problem group together; ops.quarantine has each row's full reason.
create or replace view ops.open_quarantine as
select
    source_id,
    entity,
    regexp_replace(reason, $$'[^']*'$$, '…', 'g') as reason,
    count(*) as open_rows,
    min(quarantined_at) as oldest,
    max(quarantined_at) as newest
from ops.quarantine
where resolved_at is null
group by 1, 2, 3
order by oldest, source_id, entity, reason;
