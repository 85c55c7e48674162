-- The national feed's ledger (connectors/national_feed.py): what was planned, sent, accepted
-- and rejected, per province and national entity. Applied with warehouse.sql by
-- connectors.warehouse.ensure_schema, before warehouse.sql (whose ops.open_quarantine lists the
-- national rejections).
create schema if not exists ops;

-- One row per feed (province × national entity): its epoch and whether an operator paused it.
-- A full re-send (after the national side lost data) starts a new epoch: the acknowledged state
-- of the feed is forgotten and every published record is sent again, under new idempotency keys.
create table if not exists ops.feed_control (
    province_code text        not null,
    entity        text        not null,  -- national entity (the feed model's `entity`)
    epoch         integer     not null default 1,
    paused_at     timestamptz,
    paused_reason text,
    resend_at     timestamptz,           -- when the current epoch was started by a re-send
    resend_reason text,
    primary key (province_code, entity)
);

-- One row per chunk, written *before* it is sent: its idempotency key is derived from the
-- feed, epoch and the chunk's records and digests, so a restart sends exactly the same chunk
-- under the same key. The body is kept until the batch is acknowledged (a resend after a crash
-- or an ambiguous timeout sends the very same bytes), then dropped.
create table if not exists ops.feed_batch (
    idempotency_key text primary key,
    province_code   text        not null,
    entity          text        not null,
    epoch           integer     not null,
    record_count    integer     not null,
    body_sha256     text        not null,
    body            bytea,                 -- null once acknowledged
    state           text        not null default 'planned'
                    check (state in ('planned', 'acknowledged')),
    attempts        integer     not null default 0,
    planned_at      timestamptz not null default now(),
    last_attempt_at timestamptz,
    last_error      text,                  -- why the last attempt failed (no secrets)
    acknowledged_at timestamptz,
    accepted_count  integer,
    rejected_count  integer,
    national_batch_id text,                -- the intake's id of the stored batch
    check ((state = 'acknowledged') = (acknowledged_at is not null))
);
-- A body lives only until its batch is acknowledged: kept uncompressed, saving pglz's CPU on
-- the delivery's hot path.
alter table ops.feed_batch alter column body set storage external;
create index if not exists feed_batch_open_idx on ops.feed_batch (province_code, entity)
    where state <> 'acknowledged';

-- Each record of each chunk, as sent: append-only history (what was in which batch), written
-- with the batch's plan. A record's outcome is `accepted` unless ops.feed_rejection names it
-- with the same batch. No index: nothing on the delivery path reads it.
create table if not exists ops.feed_batch_record (
    idempotency_key text not null,
    record_key      text not null,
    content_digest  text             -- null for a tombstone
);

-- What the national side holds, as it acknowledged it: one row per record it accepted and
-- still holds (an accepted tombstone deletes the row). The diff between a feed model and this
-- table is what the next run sends.
create table if not exists ops.feed_record_state (
    province_code   text        not null,
    entity          text        not null,
    record_key      text        not null,
    content_digest  text        not null,
    idempotency_key text        not null,  -- the batch that delivered this version
    acknowledged_at timestamptz not null,
    primary key (entity, record_key)
);
create index if not exists feed_record_state_feed_idx
    on ops.feed_record_state (province_code, entity);

-- Records the national side rejected, with its reason code (English and Vietnamese). They stay
-- in the provincial warehouse (the province's own gate passed them) and are listed with the
-- gate's quarantine in ops.open_quarantine; a version with the same digest is not sent again,
-- a fixed one (new digest) is, and its acceptance resolves the rejection.
create table if not exists ops.feed_rejection (
    rejection_id    bigint generated always as identity primary key,
    province_code   text        not null,
    entity          text        not null,
    record_key      text        not null,
    content_digest  text        not null,
    source_id       text,                  -- where to fix it (null for a resolved organisation)
    record_id       text,
    landed_id       bigint,
    idempotency_key text        not null,
    reason_code     text        not null,
    reason          text        not null,
    reason_vi       text        not null,
    rejected_at     timestamptz not null default now(),
    resolved_at     timestamptz,
    resolution      text,
    unique (entity, record_key, content_digest)
);
create index if not exists feed_rejection_open_idx on ops.feed_rejection (entity, record_key)
    where resolved_at is null;

-- Operators' view of the feed (`python -m local feed`): one row per province and entity the
-- ledger knows.
create or replace view ops.feed_status as
with feed as (
    select province_code, entity from ops.feed_control
    union
    select province_code, entity from ops.feed_batch
)
select
    feed.province_code,
    feed.entity,
    coalesce(control.epoch, 1) as epoch,
    control.paused_at,
    control.paused_reason,
    (select count(*) from ops.feed_record_state as s
     where s.province_code = feed.province_code and s.entity = feed.entity) as acknowledged,
    open_batch.batches as open_batches,
    open_batch.oldest as open_since,
    open_batch.last_error,
    (select max(b.acknowledged_at) from ops.feed_batch as b
     where b.province_code = feed.province_code and b.entity = feed.entity) as last_acknowledged_at,
    (select count(*) from ops.feed_rejection as r
     where r.province_code = feed.province_code and r.entity = feed.entity
         and r.resolved_at is null) as open_rejections
from feed
left join ops.feed_control as control using (province_code, entity)
left join lateral (
    select count(*) as batches, min(b.planned_at) as oldest,
        (array_agg(b.last_error order by b.last_attempt_at desc nulls last))[1] as last_error
    from ops.feed_batch as b
    where b.province_code = feed.province_code and b.entity = feed.entity
        and b.state = 'planned'
) as open_batch on true
order by feed.province_code, feed.entity;
