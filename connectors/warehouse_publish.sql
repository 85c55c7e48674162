-- Write–audit–publish of the warehouse (connectors/warehouse_publish.py). Idempotent: applied
-- by connectors/warehouse.py's ensure_schema after warehouse.sql.

-- One row per warehouse build: the dbt build writes the build schemas (marts__build,
-- reference__build); only a build whose models and blocking tests all passed is published.
create table if not exists ops.warehouse_publish (
    publish_id  bigint generated always as identity primary key,
    state       text        not null default 'building'
        check (state in ('building', 'published', 'failed')),
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    cutoff      timestamptz not null,  -- the build read the batches published up to here
    dag_run_id  text,                  -- Airflow run id, or local__<time> outside Airflow
    relations   text[],                -- published relations (schema.relation), when published
    failures    text,                  -- failed dbt nodes and tests, or why publishing failed
    warnings    text[]                 -- what publishing kept or moved for analysts' sake
);

-- The load-batch ledger's side of it. records_warned and blocked_reason belong to the quality
-- gate (warehouse.sql adds them too); added here as well so the ops marts work either way.
alter table ops.load_batch add column if not exists records_warned bigint;
alter table ops.load_batch add column if not exists blocked_reason text;
-- The publish that included the batch: the first published build whose cutoff is at or after
-- the batch's published_at.
alter table ops.load_batch add column if not exists publish_id bigint
    references ops.warehouse_publish (publish_id);
create index if not exists load_batch_unpublished_idx on ops.load_batch (published_at)
    where state = 'published' and publish_id is null;
