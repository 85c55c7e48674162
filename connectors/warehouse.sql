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
    payload       jsonb       not null,
    landing_issue text                  -- how the payload was altered to be storable, else null
);
-- Warehouses created before landing_issue existed.
alter table raw.landed_record add column if not exists landing_issue text;
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
    error             text
);
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
