"""Storage of the stand-in national intake: its own PostgreSQL database, schema `intake`.

- ``intake.batches``: one row per stored batch, with the response document sent for it.
- ``intake.holdings``: what the national side holds, one row per (entity, record_key).
- ``intake.applied``: append-only, one row per accepted record of every stored batch, so tests
  can prove that no change was applied twice.

A batch is stored in one transaction: its accepted records are streamed with COPY into a
temporary table while they are being validated (so PostgreSQL parses one chunk while Python
checks the next), then its row is inserted (the idempotency key is the primary key, so a
concurrent twin waits and then finds it) and one set-based statement each applies the log, the
upserts and the deletes: a handful of round trips per batch, none per record. Holdings have
one index, their primary key: listing a province's holdings of an entity walks it in key order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg

SCHEMA_LOCK = 0x4E415449  # advisory lock id: two servers creating the schema at once
POOL_SIZE = 4

SCHEMA_SQL = """
create schema if not exists intake;
create table if not exists intake.batches (
    idempotency_key text primary key,
    province_code   text        not null,
    entity          text        not null,
    body_sha256     text        not null,
    record_count    integer     not null,
    accepted_count  integer     not null,
    rejected_count  integer     not null,
    response        jsonb       not null,
    received_at     timestamptz not null
);
create table if not exists intake.holdings (
    entity          text             not null,
    record_key      text collate "C" not null,
    province_code   text             not null,
    content_digest  text             not null,
    data            jsonb            not null,
    idempotency_key text             not null,
    updated_at      timestamptz      not null,
    primary key (entity, record_key)
);
create table if not exists intake.applied (
    idempotency_key text             not null,
    province_code   text             not null,
    entity          text             not null,
    record_key      text collate "C" not null,
    content_digest  text,
    op              text             not null check (op in ('upsert', 'delete')),
    applied_at      timestamptz      not null default now()
);
"""

_INCOMING = """
create temporary table if not exists incoming (
    record_key     text collate "C" not null,
    op             text             not null,
    content_digest text,
    data           jsonb
) on commit delete rows
"""

_INSERT_BATCH = """
insert into intake.batches (idempotency_key, province_code, entity, body_sha256, record_count,
    accepted_count, rejected_count, response, received_at)
values (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)
on conflict (idempotency_key) do nothing
"""

_LOG = """
insert into intake.applied (idempotency_key, province_code, entity, record_key, content_digest,
    op, applied_at)
select %(key)s, %(province)s, %(entity)s, record_key, content_digest, op, %(at)s from incoming
"""

_UPSERT = """
insert into intake.holdings as h (entity, record_key, province_code, content_digest, data,
    idempotency_key, updated_at)
select %(entity)s, record_key, %(province)s, content_digest, data, %(key)s, %(at)s
from incoming where op = 'upsert'
on conflict (entity, record_key) do update
set province_code = excluded.province_code, content_digest = excluded.content_digest,
    data = excluded.data, idempotency_key = excluded.idempotency_key,
    updated_at = excluded.updated_at
where (h.content_digest, h.province_code)
    is distinct from (excluded.content_digest, excluded.province_code)
"""

# An index scan per key whatever the planner thinks of the temporary table's size.
_DELETE = "delete from intake.holdings where entity = %s and record_key = any(%s::text[])"

_CHECKSUM = (
    "coalesce(sum(('x' || left(encode(sha256(convert_to(record_key || ':' || content_digest,"
    " 'UTF8')), 'hex'), 15))::bit(60)::bigint), 0)::text"
)


@dataclass(frozen=True)
class StoredBatch:
    """A batch already stored: whose, the SHA-256 of its body, and its response document."""

    province_code: str
    body_sha256: str
    response: bytes


@dataclass(frozen=True)
class BatchOutcome:
    """What validation decided for a batch, known once its rows have all been produced."""

    response: bytes
    accepted_count: int
    rejected_count: int
    upsert_count: int
    deleted_keys: Sequence[str]


@dataclass(frozen=True)
class NewBatch:
    """A verified batch to store. ``rows`` produces its accepted records in COPY text format
    (record_key, op, content_digest, data), validating as it goes (it may raise to refuse
    the batch); ``outcome`` is called once ``rows`` is exhausted."""

    idempotency_key: str
    province_code: str
    entity: str
    body_sha256: str
    record_count: int
    received_at: datetime
    rows: Iterable[bytes]
    outcome: Callable[[], BatchOutcome]


class _AlreadyStored(Exception):
    """Another request stored a batch under this key first; roll this one back."""


class Store:
    """The intake's database, through a small pool of connections (one per concurrent request)."""

    def __init__(self, url: str, size: int = POOL_SIZE) -> None:
        self.url = url
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    def ensure_schema(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(SCHEMA_SQL)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled autocommit connection (with the temporary table); a broken one is dropped."""
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = psycopg.connect(self.url, autocommit=True)
                conn.execute(_INCOMING)
            try:
                yield conn
            except BaseException:
                if conn.broken or conn.closed:
                    conn.close()
                    raise
                self._idle.put(conn)
                raise
            if conn.broken or conn.closed:
                conn.close()
            else:
                self._idle.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    # --- Batches ------------------------------------------------------------------------------

    def find_batch(self, idempotency_key: str) -> StoredBatch | None:
        with self.connection() as conn:
            row = conn.execute(
                "select province_code, body_sha256, response::text from intake.batches"
                " where idempotency_key = %s",
                (idempotency_key,),
            ).fetchone()
        return None if row is None else StoredBatch(row[0], row[1], row[2].encode())

    def store_batch(self, batch: NewBatch) -> StoredBatch | None:
        """Store ``batch`` atomically; None when stored now, else the batch already stored
        under its key (by an earlier or a concurrent request), and nothing was written."""
        params = {
            "key": batch.idempotency_key,
            "province": batch.province_code,
            "entity": batch.entity,
            "at": batch.received_at,
        }
        with self.connection() as conn:
            try:
                with conn.transaction(), conn.cursor() as cursor:
                    with cursor.copy(
                        "copy incoming (record_key, op, content_digest, data) from stdin"
                    ) as copy:
                        for chunk in batch.rows:
                            copy.write(chunk)
                    outcome = batch.outcome()
                    cursor.execute(
                        _INSERT_BATCH,
                        (
                            batch.idempotency_key,
                            batch.province_code,
                            batch.entity,
                            batch.body_sha256,
                            batch.record_count,
                            outcome.accepted_count,
                            outcome.rejected_count,
                            outcome.response.decode(),
                            batch.received_at,
                        ),
                    )
                    if cursor.rowcount != 1:
                        raise _AlreadyStored
                    if outcome.accepted_count:
                        cursor.execute(_LOG, params)
                    if outcome.upsert_count:
                        cursor.execute(_UPSERT, params)
                    if outcome.deleted_keys:
                        cursor.execute(_DELETE, (batch.entity, list(outcome.deleted_keys)))
                return None
            except _AlreadyStored:
                pass  # stored meanwhile by a concurrent request with this key: answer as it did
        stored = self.find_batch(batch.idempotency_key)
        if stored is None:  # deleted by a reset in between: refuse rather than guess
            raise psycopg.OperationalError("the batch vanished while being stored; send it again")
        return stored

    # --- Holdings -----------------------------------------------------------------------------

    def holdings_summary(self, province_code: str) -> dict[str, tuple[int, str]]:
        """entity -> (record count, checksum in decimal digits) of one province's holdings."""
        with self.connection() as conn:
            rows = conn.execute(
                f"select entity, count(*), {_CHECKSUM} from intake.holdings"
                " where province_code = %s group by entity",
                (province_code,),
            ).fetchall()
        return {entity: (count, checksum) for entity, count, checksum in rows}

    def holdings_page(
        self, province_code: str, entity: str, after: str | None, limit: int
    ) -> list[tuple[str, str]]:
        """Up to ``limit`` (record_key, content_digest) after ``after``, in bytewise order."""
        with self.connection() as conn, conn.transaction():
            # Walk the primary key in order. Without fresh statistics (right after a bulk load)
            # the planner would guess the province filter rare and sort the whole table instead.
            conn.execute("set local enable_sort = off")
            return conn.execute(
                "select record_key, content_digest from intake.holdings"
                " where province_code = %s and entity = %s and record_key > %s"
                " order by record_key limit %s",
                (province_code, entity, after or "", limit),
            ).fetchall()

    # --- Stand-in administration --------------------------------------------------------------

    def reset(self) -> dict[str, int]:
        """Lose everything: holdings, batches and the applied log. Answers what was deleted."""
        with self.connection() as conn, conn.transaction():
            counts = conn.execute(
                "select (select count(*) from intake.batches),"
                " (select count(*) from intake.holdings), (select count(*) from intake.applied)"
            ).fetchone()
            conn.execute("truncate intake.batches, intake.holdings, intake.applied")
        assert counts is not None
        return {"batches": counts[0], "holdings": counts[1], "applied": counts[2]}

    def applied_counts(self) -> dict[str, object]:
        with self.connection() as conn:
            totals = conn.execute(
                "select (select count(*) from intake.batches),"
                " (select count(*) from intake.applied), (select count(*) from intake.holdings),"
                " (select coalesce(sum(n - 1), 0) from (select count(*) as n from intake.applied"
                "  group by entity, record_key, content_digest, op having count(*) > 1) as d)"
            ).fetchone()
            rows = conn.execute(
                "select coalesce(a.province_code, h.province_code),"
                " coalesce(a.entity, h.entity), coalesce(a.n, 0), coalesce(h.n, 0)"
                " from (select province_code, entity, count(*) as n from intake.applied"
                "       group by 1, 2) as a"
                " full join (select province_code, entity, count(*) as n from intake.holdings"
                "       group by 1, 2) as h using (province_code, entity)"
                " order by 1, 2"
            ).fetchall()
        assert totals is not None
        return {
            "batches": totals[0],
            "applied": totals[1],
            "holdings": totals[2],
            "duplicate_changes": int(totals[3]),
            "entities": [
                {"province_code": p, "entity": e, "applied": a, "holdings": h}
                for p, e, a, h in rows
            ],
        }
