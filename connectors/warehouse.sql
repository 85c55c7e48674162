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
-- Quality gate outcome: rows published with a warning, and the batch-level rule that blocked
-- the batch (volume drop, quarantined share); an operator's release of a blocked batch.
alter table ops.load_batch add column if not exists records_warned bigint;
alter table ops.load_batch add column if not exists blocked_reason text;
alter table ops.load_batch add column if not exists released_at timestamptz;
alter table ops.load_batch add column if not exists release_note text;
-- What a batch extracted (full, incremental since the cursor, or one file): the gate's volume
-- rule compares a batch only with batches of the same kind and never judges incremental ones.
alter table ops.load_batch add column if not exists extraction text;
update ops.load_batch  -- ledgers from before it was recorded
set extraction = case when updated_since is null then 'full' else 'incremental' end
where extraction is null;
-- A backfill (extraction 'backfill', an operator's bounded re-extraction that leaves the cursor
-- alone) holds the records updated in [updated_since, updated_until); null for the others.
alter table ops.load_batch add column if not exists updated_until timestamptz;
-- Gate runs that ended without a verdict (the database or the worker died): the next run of
-- the entity gates the batch again; the error of the last such attempt stays in `error`.
alter table ops.load_batch add column if not exists gate_attempts integer not null default 0;
create index if not exists load_batch_source_idx on ops.load_batch (source_id, entity, batch_id);
create index if not exists load_batch_landed_idx on ops.load_batch (source_id, entity)
    where state = 'landed';

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
    state       text        not null check (state in ('landed', 'rejected', 'skipped')),
    batch_id    bigint references ops.load_batch (batch_id),
    rows_landed bigint,
    error       text,
    recorded_at timestamptz not null default now(),
    primary key (source_id, sha256)
);
-- `skipped` (hidden, dated in the future; `error` says why): logged and recorded, not silent,
-- and replaced by `landed` or `rejected` once the file is fixed. Warehouses created before it:
do $$
begin
    if not exists (
        select from pg_constraint
        where conrelid = 'ops.drop_file'::regclass and conname = 'drop_file_state_check'
            and pg_get_constraintdef(oid) like '%skipped%'
    ) then
        alter table ops.drop_file drop constraint if exists drop_file_state_check;
        alter table ops.drop_file add constraint drop_file_state_check
            check (state in ('landed', 'rejected', 'skipped'));
    end if;
end
$$;

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
create index if not exists quarantine_record_idx on ops.quarantine (source_id, entity, record_id)
    where resolved_at is null;

-- Rows that failed a warning expectation: published all the same, reported and counted.
create table if not exists ops.quality_warning (
    batch_id    bigint not null references ops.load_batch (batch_id),
    landed_id   bigint not null,
    source_id   text   not null,
    entity      text   not null,
    record_id   text,
    expectation text   not null,
    reason      text   not null,
    reason_vi   text,
    warned_at   timestamptz not null default now(),
    primary key (landed_id, expectation)
);
create index if not exists quality_warning_batch_idx on ops.quality_warning (batch_id);

-- Code lists the quality gate checks values against (research fields, administrative units
-- before and since 2025-07-01, VSIC divisions), loaded by the gate from the dbt seeds.
create table if not exists ops.code_list (
    list_name text not null,
    code      text not null,
    primary key (list_name, code)
);

-- Lenient casts for the gate: a malformed value becomes null (and fails its not-null check)
-- instead of aborting the whole validation query. try_date is declared volatile on purpose: an
-- immutable one lets PostgreSQL flatten a projection and repeat the call wherever its result is
-- used (8-10 times per row in the suites); volatile, it runs once per row and the batch filter
-- is still pushed down (measured: materialising 1M rows 51-59 s -> 25 s).
create or replace function ops.try_date(value text) returns date
language plpgsql volatile as $$
begin
    return value::date;
exception when others then
    return null;
end $$;

create or replace function ops.try_numeric(value text) returns numeric
language plpgsql immutable as $$
begin
    return value::numeric;
exception when others then
    return null;
end $$;

-- Lower case for Vietnamese text whatever the database's locale: lower() folds only ASCII
-- under the C locale (an embedded server's default), so the accented capitals are mapped here.
create or replace function ops.lower_vi(value text) returns text
language sql immutable parallel safe as $$
    select lower(translate(value, 'ÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝĂĐĨŨƠƯḌẠẢẤẦẨẪẬẮẰẲẴẶẸẺẼẾỀỂỄỆỈỊỌỎỐỒỔỖỘỚỜỞỠỢỤỦỨỪỬỮỰỲỴỶỸ', 'àáâãèéêìíòóôõùúýăđĩũơưḍạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ'))
$$;

-- Enterprise code (mã số doanh nghiệp) in the canonical form landing stores (validate_mst in
-- connectors/vietnamese.py): 10 digits, or 10 and a 3-digit branch suffix, whose tenth digit is
-- the mod-11 check digit of the first nine. The same rule as python-stdnum's vn.mst, which also
-- rejects sequence 0000000 and branch 000 (never issued); tests/test_mst_rule.py holds both to it.
create or replace function ops.mst_valid(code text) returns boolean
language sql immutable parallel safe as $$
    select case
        when code is null then null
        when code !~ '^[0-9]{10}(-[0-9]{3})?$' then false
        when substr(code, 3, 7) = '0000000' or substr(code, 12) = '000' then false
        else (10 - (
            31 * substr(code, 1, 1)::int + 29 * substr(code, 2, 1)::int
            + 23 * substr(code, 3, 1)::int + 19 * substr(code, 4, 1)::int
            + 17 * substr(code, 5, 1)::int + 13 * substr(code, 6, 1)::int
            + 7 * substr(code, 7, 1)::int + 5 * substr(code, 8, 1)::int
            + 3 * substr(code, 9, 1)::int
        ) % 11)::text = substr(code, 10, 1)
    end
$$;

-- Personal data in clear among a record's text values (top level and inside arrays/objects):
-- citizen ID numbers (CCCD, 12 digits), Vietnamese mobile numbers, e-mail addresses. Returns the
-- fields and kinds found, or null. `skip` names fields that may hold such values legitimately
-- (declared personal fields, which stay in the landing zone, and code fields such as MST).
-- One regular expression over the whole record first: most records have none, and walking every
-- value of a million records costs seconds.
create or replace function ops.personal_data_pattern(kind text) returns text
language sql immutable parallel safe as $$
    select case kind
        when 'e-mail' then '[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}'
        when 'citizen ID' then '(^|[^0-9])0[0-9]{11}([^0-9-]|$)'
        when 'phone' then '(^|[^0-9.,-])(\+84|0)[35789][0-9]{8}([^0-9-]|$)'
        else '@|[0-9]{10}'  -- 'any': cheap pre-filter; every kind above matches it
    end
$$;

create or replace function ops.personal_data_in(record jsonb, skip text[]) returns text
language sql immutable parallel safe as $$
    select case when (record - skip)::text ~ ops.personal_data_pattern('any') then (
        select string_agg(distinct field.key || ' (' || kind.name || ')', ', ')
        from jsonb_each(record - skip) as field
        cross join lateral jsonb_path_query(field.value, 'strict $.**') as item
        cross join lateral (values ('e-mail'), ('citizen ID'), ('phone')) as kind (name)
        where
            field.key !~ '^_'
            and jsonb_typeof(item) = 'string'
            and (item #>> '{}') ~* ops.personal_data_pattern(kind.name)
    ) end
$$;

-- Text values a spreadsheet would run as a formula (CSV injection): the fields and the start of
-- their values, or null. The rule of connectors/cell_safety.py (keep the two in step): starts
-- with = @ tab CR, or with + - unless the value is a sign alone or a signed plain number
-- ("-5", "-0,3", "+84 912 345 678"). The drop suites warn about them (the landing keeps them).
create or replace function ops.formula_like(record jsonb) returns text
language sql immutable parallel safe as $$
    select string_agg(format('%s %L', field.key, left(item #>> '{}', 40)), ', '
        order by field.key)
    from jsonb_each(record) as field
    cross join lateral jsonb_path_query(field.value, 'strict $.**') as item
    where
        jsonb_typeof(item) = 'string'
        and (item #>> '{}') ~ '^[-=+@\t\r]'
        and (item #>> '{}') !~ '^[+-]([0-9][0-9., ]*([eE][+-]?[0-9]+)?%?)?$'
$$;

-- The record as quarantine keeps it: without the declared personal fields, and with any other
-- value that looks like personal data replaced by what it looks like.
create or replace function ops.without_personal_data(record jsonb, personal text[])
returns jsonb language sql immutable parallel safe as $$
    select coalesce(jsonb_object_agg(
        field.key,
        case
            -- the cheap pre-filter first: the full scan is a sub-select per call
            when field.value::text !~ ops.personal_data_pattern('any') then field.value
            when ops.personal_data_in(jsonb_build_object(field.key, field.value), '{}') is null
                then field.value
            else to_jsonb('[personal data removed]'::text)
        end
    ), '{}'::jsonb)
    from jsonb_each(record - personal) as field
$$;

-- The latest version of each record that passed the gate (its batch validated or published,
-- the row not waiting in quarantine): what reference checks between entities look up.
create or replace view ops.accepted_record as
select distinct on (landed.source_id, landed.entity, landed.record_id)
    landed.source_id,
    landed.entity,
    landed.record_id,
    landed.version,
    landed.deleted,
    landed.record
from raw.landed as landed
inner join ops.load_batch as batch
    on batch.batch_id = landed.batch_id and batch.state in ('validated', 'published')
where
    landed.record_id is not null
    and not exists (
        select 1 from ops.quarantine as q
        where q.landed_id = landed.landed_id and q.resolved_at is null
    )
order by landed.source_id, landed.entity, landed.record_id, landed.version desc,
    landed.landed_id desc;

-- A reason with its quoted values (codes, dates, ids) folded to "…", so rows with the same
-- problem group together. A quoted value opens after a space or punctuation; an apostrophe
-- inside a word ("the seller's code") is not a quote.
create or replace function ops.fold_quoted_values(reason text) returns text
language sql immutable parallel safe as $$
    select regexp_replace(reason, $q$(^|[^[:alnum:]])'[^']*'$q$, '\1…', 'g')
$$;

-- What waits in quarantine, per source, entity and reason, oldest first. Quoted values in
-- reasons (e.g. the enterprise code that fails its check digit) are folded to "…", so rows
-- with the same problem group together; ops.quarantine has each row's full reason. Records the
-- national intake rejected are listed too (ops.feed_rejection).
create or replace view ops.open_quarantine as
select
    source_id,
    entity,
    ops.fold_quoted_values(reason) as reason,
    count(*) as open_rows,
    min(quarantined_at) as oldest,
    max(quarantined_at) as newest,
    min(ops.fold_quoted_values(reason_vi)) as reason_vi
from (
    select source_id, entity, reason, reason_vi, quarantined_at from ops.quarantine
    where resolved_at is null
    union all
    -- records the national intake rejected (connectors/national_feed.sql): fixed at the source
    select coalesce(source_id, 'national feed'), entity, reason, reason_vi, rejected_at
    from ops.feed_rejection
    where resolved_at is null
) as open_row
group by 1, 2, 3
order by oldest, source_id, entity, reason;

-- Pseudonymous keys for people (experts): a keyed SHA-256 of an identifying value (citizen id,
-- or normalised name + birth year), so the same person gets the same key in every registry and
-- the marts hold no citizen id. The key is drawn once per warehouse from the server's strong
-- random source and never leaves the database: only the owner reads ops.pseudonym_key, others
-- call ops.pseudonym (security definer).
create table if not exists ops.pseudonym_key (
    singleton  boolean primary key default true check (singleton),
    secret     text        not null,
    created_at timestamptz not null default now()
);
insert into ops.pseudonym_key (secret)
select replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
on conflict do nothing;
revoke all on ops.pseudonym_key from public;

create or replace function ops.pseudonym(kind text, value text) returns text
language sql stable strict security definer parallel safe
set search_path = pg_catalog, pg_temp as $$
    select encode(sha256(convert_to(k.secret || '|' || kind || '|' || value, 'UTF8')), 'hex')
    from ops.pseudonym_key as k
$$;

-- The source catalogue as the warehouse knows it (dags/sources.yml, recorded by every
-- extraction): the province each source serves, for facts that take their province from
-- their source (e.g. an exchange's deals).
create table if not exists ops.source (
    source_id     text primary key,
    name          text        not null,
    system        text        not null,
    contract      text        not null,
    province_code text,                  -- today's code; null for a national system
    recorded_at   timestamptz not null default now()
);

-- Change events (connectors/event_intake.py): the intake's durable inbox. A signed event is
-- committed here before its sender gets the 2xx, once per (source, event id). A dispatcher
-- turns rows into Airflow asset events on sti://<source_id>/<entity>: it claims pending rows
-- with `for update skip locked` in the transaction that sends them and marks them
-- `dispatched` in it, so a dispatcher that dies mid-send leaves them pending (its lock goes
-- with its connection) and they are sent again; rows dispatched long ago but still not `done`
-- (no run published their batch) are sent again too. Re-sending is safe: a sync run is
-- idempotent and one run consumes every asset event queued for its DAG.
create table if not exists ops.event_inbox (
    inbox_id          bigint generated always as identity primary key,
    source_id         text        not null,  -- the catalogue id (not the event's subscription id)
    event_id          text        not null,  -- CloudEvents `id`, unique per source
    entity            text        not null,
    record_id         text        not null,
    version           bigint      not null,
    change_kind       text        not null check (change_kind in ('upsert', 'delete')),
    event_time        timestamptz not null,  -- when the record changed at the source
    received_at       timestamptz not null default now(),  -- committed (one value per commit)
    dispatch_state    text        not null default 'pending'
                      check (dispatch_state in ('pending', 'dispatched', 'done')),
    dispatch_attempts integer     not null default 0,
    dispatched_at     timestamptz,  -- the last send Airflow acknowledged
    asset_event_id    bigint,       -- Airflow's id of that asset event (finds the run)
    done_at           timestamptz,  -- the run covering the event published its batch
    last_error        text,         -- why the last send failed, for operators
    unique (source_id, event_id),
    check (dispatch_state = 'pending' or dispatched_at is not null),
    check ((dispatch_state = 'done') = (done_at is not null))
);
-- What the dispatcher claims (oldest first, per source entity for coalescing) and what the
-- operators' lag view reads: only rows not done, so it stays small however long the inbox.
create index if not exists event_inbox_open
    on ops.event_inbox (source_id, entity, inbox_id) where dispatch_state <> 'done';

-- Operators' view of every source entity (`python -m local sources`, the ops__event_lag DAG):
-- one row per source and entity with a batch in ops.load_batch or an event in ops.event_inbox.
-- An event is pending from its arrival until the run covering it published its batch
-- (dispatch_state pending or dispatched). Two clocks: `oldest_pending_age` is how long the
-- oldest pending event has waited since it reached the inbox (our clock; what the catalogue's
-- events.max_pending_minutes is compared with), `lag` how far the published data trails the
-- source (now − the source's event_time of the oldest pending event, so it includes the time the
-- source took to send it; zero when nothing pends, never negative when the source's clock is
-- ahead). The source entities are found with skip scans of the two indexes, and every figure by
-- an index per source entity, so the view stays fast however long the ledger and the inbox grow.
create index if not exists event_inbox_event_time_idx
    on ops.event_inbox (source_id, entity, event_time);
create or replace view ops.source_status as
with recursive batch_entity as (
    (select source_id, entity from ops.load_batch order by source_id, entity limit 1)
    union all
    select next_entity.source_id, next_entity.entity
    from batch_entity as prev
    cross join lateral (
        select b.source_id, b.entity from ops.load_batch as b
        where (b.source_id, b.entity) > (prev.source_id, prev.entity)
        order by b.source_id, b.entity
        limit 1
    ) as next_entity
),

inbox_entity as (
    (select source_id, entity from ops.event_inbox order by source_id, entity limit 1)
    union all
    select next_entity.source_id, next_entity.entity
    from inbox_entity as prev
    cross join lateral (
        select i.source_id, i.entity from ops.event_inbox as i
        where (i.source_id, i.entity) > (prev.source_id, prev.entity)
        order by i.source_id, i.entity
        limit 1
    ) as next_entity
),

source_entity as (
    select source_id, entity from batch_entity
    union
    select source_id, entity from inbox_entity
)

select
    e.source_id,
    e.entity,
    last_event.event_time as last_event_at,
    last_success.published_at as last_success_at,
    open_events.events as pending_events,
    open_events.oldest_received as oldest_pending_at,
    now() - open_events.oldest_received as oldest_pending_age,
    case when open_events.events > 0
        then greatest(now() - open_events.oldest_event_time, interval '0')
        else interval '0'
    end as lag,
    last_batch.batch_id as last_batch_id,
    last_batch.state as last_batch_state,
    coalesce(last_batch.error, 'event dispatch: ' || open_error.last_error) as last_error
from source_entity as e
left join lateral (
    select i.event_time from ops.event_inbox as i
    where i.source_id = e.source_id and i.entity = e.entity
    order by i.event_time desc
    limit 1
) as last_event on true
left join lateral (
    select b.published_at from ops.load_batch as b
    where b.source_id = e.source_id and b.entity = e.entity and b.state = 'published'
    order by b.batch_id desc
    limit 1
) as last_success on true
left join lateral (
    select b.batch_id, b.state, b.error from ops.load_batch as b
    where b.source_id = e.source_id and b.entity = e.entity
    order by b.batch_id desc
    limit 1
) as last_batch on true
cross join lateral (
    select
        count(*) as events,
        min(i.received_at) as oldest_received,
        min(i.event_time) as oldest_event_time
    from ops.event_inbox as i
    where i.source_id = e.source_id and i.entity = e.entity and i.dispatch_state <> 'done'
) as open_events
left join lateral (
    select i.last_error from ops.event_inbox as i
    where
        i.source_id = e.source_id and i.entity = e.entity and i.dispatch_state <> 'done'
        and i.last_error is not null
    order by i.inbox_id desc
    limit 1
) as open_error on true;
comment on view ops.source_status is
'One row per source entity with a batch or a change event: events received and pending, lag,'
' last publish, last batch and error (README "Operators"; python -m local sources).';
comment on column ops.source_status.last_event_at is
'The latest event_time (the source''s clock) among the events received for the entity.';
comment on column ops.source_status.last_success_at is
'published_at of the latest published batch (a run that published nothing new counts).';
comment on column ops.source_status.pending_events is
'Inbox rows not done (pending or dispatched): their change is not published yet.';
comment on column ops.source_status.oldest_pending_at is
'When the oldest pending event reached the inbox (received_at); null when nothing pends.';
comment on column ops.source_status.oldest_pending_age is
'now() - oldest_pending_at: compared with the catalogue''s events.max_pending_minutes.';
comment on column ops.source_status.lag is
'now() - the event_time of the oldest pending event, at least zero; zero when nothing pends.';
comment on column ops.source_status.last_batch_id is
'The latest batch of the entity in ops.load_batch; null when it has none yet.';
comment on column ops.source_status.last_batch_state is
'State of the latest batch: extracting, landed, validated, failed or published.';
comment on column ops.source_status.last_error is
'The latest batch''s error (failure, blocked by the gate, gate unfinished), else the last'
' dispatch error of a pending event (prefixed "event dispatch: ").';
