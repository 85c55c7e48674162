"""The national feed: published changes of the warehouse delivered to the national STI intake,
exactly once in effect, with a ledger of what was sent, accepted and rejected.

    with IntakeClients(connection_for) as clients:      # a client per province, on demand
        report = deliver(warehouse_url, clients, "st_task")

Per national entity (a feed model `marts.feed_<entity>`, published by write–audit–publish):

1. Batches left open by an earlier run (crash, intake down, ambiguous timeout) are settled
   first: the intake is asked for the batch's status; if it does not have it, the very same
   bytes go again under the same idempotency key.
2. The published feed model is compared with `ops.feed_record_state` (what the national side
   acknowledged): new and changed records are sent as upserts, acknowledged records no longer
   published as tombstones. A record whose digest the intake rejected is not sent again until
   it changes. Paused provinces are skipped.
3. Changes go in chunks of at most `chunk_records`, one province per chunk. Each chunk is
   written to the ledger (`ops.feed_batch`, `ops.feed_batch_record`, with its body) in a
   transaction of its own *before* it is sent; its key is `<province>.<entity>.e<epoch>.<n>`.
4. The intake's answer is applied in one transaction: the acknowledged state, rejections into
   `ops.feed_rejection` (listed with the quarantine), earlier rejections of records now accepted
   resolved, the body dropped.

Steps 2–4 run as a pipeline, one chunk per stage: the next chunk is read and planned while one
is in flight and the answer to the one before is applied. A failed send stops the run; what it
planned stays open for the next run.

Each province signs in and signs its batches with its own credentials and key; a province with
no intake connection is skipped (reported; its records show as not sent in reconciliation).

A crash anywhere leaves either nothing (before the plan committed) or an open batch that the
next run settles, and the intake stores a batch at most once per key: nothing is lost and
nothing is applied twice. One run per entity at a time (an advisory lock).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg import sql

from connectors.national_contract import REASON_CODES
from connectors.national_intake import (
    BatchReply,
    IntakeConnection,
    IntakeRefused,
    IntakeUnavailable,
    NationalIntakeClient,
)

CHUNK_RECORDS = 5_000
_LOCK_CLASS = 7_324_150  # advisory lock namespace of feed runs (key: hashtext(entity))
ENTITIES_SQL = "select entity from reference.national_feed_entities order by entity"


class FeedBusy(Exception):
    """Another run is delivering the same entity."""


class FeedDeliveryError(Exception):
    """The intake could not take a batch; it stays open in the ledger for the next run."""


class IntakeClients:
    """A NationalIntakeClient per province, made on first use from `connection_for(province)`
    (None: the province has no intake connection) and `client_options` (timeouts, retries);
    all closed on exit."""

    def __init__(
        self, connection_for: Callable[[str], IntakeConnection | None], **client_options: Any
    ) -> None:
        self._connection_for = connection_for
        self._options = client_options
        self._clients: dict[str, NationalIntakeClient | None] = {}

    def __call__(self, province: str) -> NationalIntakeClient | None:
        if province not in self._clients:
            connection = self._connection_for(province)
            self._clients[province] = connection and NationalIntakeClient(
                connection, **self._options
            )
        return self._clients[province]

    def __enter__(self) -> IntakeClients:
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._clients.values():
            if client is not None:
                client.close()


@dataclass
class FeedReport:
    entity: str
    batches: int = 0  # batches the intake acknowledged in this run (settled ones included)
    upserts: int = 0
    tombstones: int = 0
    accepted: int = 0
    rejected: int = 0
    settled: int = 0  # open batches of earlier runs settled now
    replayed: int = 0  # batches the intake already had (answered from its records)
    paused_provinces: list[str] = field(default_factory=list)
    unconfigured_provinces: list[str] = field(default_factory=list)  # no intake connection

    def summary(self) -> str:
        parts = [
            f"{self.entity}: {self.batches} batches, {self.upserts} upserts,"
            f" {self.tombstones} tombstones, {self.accepted} accepted, {self.rejected} rejected"
        ]
        if self.settled:
            parts.append(f"{self.settled} open batches of earlier runs settled")
        if self.paused_provinces:
            parts.append("paused: " + ", ".join(self.paused_provinces))
        if self.unconfigured_provinces:
            parts.append(
                "not delivered, no intake connection: " + ", ".join(self.unconfigured_provinces)
            )
        return "; ".join(parts)


def feed_entities(warehouse_url: str) -> list[str]:
    """The national entities of the published feed (seed national_feed_entities); none before
    the first published warehouse build."""
    with psycopg.connect(warehouse_url) as conn:
        if conn.execute("select to_regclass('reference.national_feed_entities')").fetchone()[0]:
            return [row[0] for row in conn.execute(ENTITIES_SQL)]
    return []


def feed_relation(entity: str) -> sql.Composed:
    return sql.SQL("marts.{}").format(sql.Identifier(f"feed_{entity}"))


def deliver(
    warehouse_url: str,
    clients: Callable[[str], NationalIntakeClient | None],
    entity: str,
    *,
    chunk_records: int = CHUNK_RECORDS,
) -> FeedReport:
    """Deliver the entity's published changes (see the module docstring). Raises FeedBusy,
    or FeedDeliveryError when a batch could not be delivered (it stays open)."""
    report = FeedReport(entity)
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        if not conn.execute(
            "select pg_try_advisory_lock(%s, hashtext(%s))", (_LOCK_CLASS, entity)
        ).fetchone()[0]:
            raise FeedBusy(f"another run is delivering {entity}")
        report.paused_provinces = _paused_provinces(conn, entity)
        for key, province, body in _open_batches(conn, entity, report.paused_provinces):
            if (client := _client(clients, province, report)) is None:
                continue
            sent = _send(conn, client, Batch(key, province, entity, *_sent_records(body), body))
            _apply(conn, sent, report)
            report.settled += 1
        with (
            psycopg.connect(warehouse_url) as reader,
            psycopg.connect(warehouse_url, autocommit=True) as send_conn,
            psycopg.connect(warehouse_url, autocommit=True) as apply_conn,
            ThreadPoolExecutor(1, thread_name_prefix="feed-send") as sender,
            ThreadPoolExecutor(1, thread_name_prefix="feed-apply") as applier,
        ):
            sending: Future[SentBatch] | None = None
            applying: Future[None] | None = None

            def hand_over() -> None:
                nonlocal applying
                sent = sending.result()  # raises when the batch could not be delivered
                if applying is not None:
                    applying.result()
                applying = applier.submit(_apply, apply_conn, sent, report)

            chunks = change_chunks(reader, entity, report.paused_provinces, chunk_records)
            for chunk in chunks:
                if (client := _client(clients, chunk.province, report)) is None:
                    continue
                batch = _plan(conn, entity, chunk)
                report.tombstones += batch.tombstones
                report.upserts += len(batch.keys) - batch.tombstones
                if sending is not None:
                    hand_over()
                sending = sender.submit(_send, send_conn, client, batch)
            if sending is not None:
                hand_over()
            if applying is not None:
                applying.result()
    return report


def _client(
    clients: Callable[[str], NationalIntakeClient | None], province: str, report: FeedReport
) -> NationalIntakeClient | None:
    client = clients(province)
    if client is None and province not in report.unconfigured_provinces:
        report.unconfigured_provinces.append(province)
    return client


# -- reading what to send ------------------------------------------------------------------
@dataclass(frozen=True)
class Chunk:
    """At most `chunk_records` changes of one province, as the batch body carries them."""

    province: str
    keys: list[str]
    digests: list[str | None]  # None: a tombstone
    records: str  # the records' JSON, comma-separated


@dataclass(frozen=True)
class Batch:
    """A chunk planned in the ledger under its idempotency key."""

    key: str
    province: str
    entity: str
    keys: list[str]
    digests: list[str | None]
    body: bytes

    @property
    def tombstones(self) -> int:
        return sum(digest is None for digest in self.digests)


@dataclass(frozen=True)
class SentBatch:
    batch: Batch
    reply: BatchReply


def _paused_provinces(conn: psycopg.Connection, entity: str) -> list[str]:
    rows = conn.execute(
        "select province_code from ops.feed_control"
        " where entity = %s and paused_at is not null order by 1",
        (entity,),
    )
    return [row[0] for row in rows]


def change_chunks(
    reader: psycopg.Connection, entity: str, paused: Sequence[str], size: int
) -> Iterator[Chunk]:
    """The changes to send, in chunks of at most `size` records of one province, by province
    and record key, read from one snapshot as they stream. PostgreSQL writes each record's
    JSON (the payload's text as it is) and joins a chunk's records: faster than Python."""
    query = sql.SQL(
        """
        with change as (
            select
                coalesce(p.province_code, s.province_code) as province_code,
                coalesce(p.record_key, s.record_key) as record_key,
                p.content_digest,
                case
                    when p.record_key is null
                        then json_build_object('record_key', s.record_key, 'op', 'delete')::text
                    else '{{"record_key":' || to_json(p.record_key)::text
                        || ',"op":"upsert","content_digest":"' || p.content_digest
                        || '","data":' || p.payload::text || '}}'
                end as record
            from {feed} as p
            full join (select * from ops.feed_record_state where entity = %(entity)s) as s
                on s.record_key = p.record_key
            where
                (p.record_key is null or s.record_key is null
                 or p.content_digest <> s.content_digest or p.province_code <> s.province_code)
                and coalesce(p.province_code, s.province_code) <> all(%(paused)s)
                and not exists (
                    select 1 from ops.feed_rejection as r
                    where r.entity = %(entity)s and r.record_key = p.record_key
                        and r.content_digest = p.content_digest and r.resolved_at is null
                )
        ),
        numbered as (
            select
                *,
                (row_number() over (partition by province_code order by record_key) - 1)
                / %(size)s as chunk
            from change
        )
        select
            province_code,
            array_agg(record_key order by record_key),
            array_agg(content_digest order by record_key),
            string_agg(record, ',' order by record_key)
        from numbered
        group by province_code, chunk
        order by province_code, chunk
        """
    ).format(feed=feed_relation(entity))
    reader.execute("set transaction isolation level repeatable read, read only")
    with reader.cursor(name="feed_changes") as cursor:
        cursor.itersize = 1
        params = {"entity": entity, "paused": list(paused), "size": size}
        for province, keys, digests, records in cursor.execute(query, params):
            yield Chunk(province, keys, digests, records)


# -- the ledger ----------------------------------------------------------------------------
def batch_body(entity: str, chunk: Chunk) -> bytes:
    """The batch body (contracts/national_intake_v1.openapi.yaml) of a chunk."""
    head = orjson.dumps({"province_code": chunk.province, "entity": entity}).decode()[:-1]
    return (head + ',"records":[' + chunk.records + "]}").encode()


def _sent_records(body: bytes) -> tuple[list[str], list[str | None]]:
    """The record keys and digests (None for a tombstone) of a stored body."""
    records = orjson.loads(body)["records"]
    return (
        [r["record_key"] for r in records],
        [r.get("content_digest") if r["op"] == "upsert" else None for r in records],
    )


def _plan(conn: psycopg.Connection, entity: str, chunk: Chunk) -> Batch:
    """Write the chunk to the ledger (committed) under its key; the batch to send."""
    with conn.transaction():
        epoch, sequence = conn.execute(
            "select coalesce(c.epoch, 1), (select count(*) + 1 from ops.feed_batch as b"
            "  where b.province_code = %(p)s and b.entity = %(e)s"
            "  and b.epoch = coalesce(c.epoch, 1))"
            " from (select 1) as one left join ops.feed_control as c"
            " on c.province_code = %(p)s and c.entity = %(e)s",
            {"p": chunk.province, "e": entity},
        ).fetchone()
        batch = Batch(
            key=f"{chunk.province}.{entity}.e{epoch}.{sequence}",
            province=chunk.province,
            entity=entity,
            keys=chunk.keys,
            digests=chunk.digests,
            body=batch_body(entity, chunk),
        )
        conn.execute(
            "insert into ops.feed_batch (idempotency_key, province_code, entity, epoch,"
            " record_count, body_sha256, body) values (%s, %s, %s, %s, %s, %s, %s)",
            (
                batch.key,
                batch.province,
                entity,
                epoch,
                len(batch.keys),
                hashlib.sha256(batch.body).hexdigest(),
                batch.body,
            ),
        )
        conn.execute(
            "insert into ops.feed_batch_record (idempotency_key, record_key, content_digest)"
            " select %s, k, d from unnest(%s::text[], %s::text[]) as sent(k, d)",
            (batch.key, batch.keys, batch.digests),
        )
    return batch


def _open_batches(
    conn: psycopg.Connection, entity: str, paused: Sequence[str]
) -> list[tuple[str, str, bytes]]:
    return conn.execute(
        "select idempotency_key, province_code, body from ops.feed_batch"
        " where entity = %s and state = 'planned' and province_code <> all(%s)"
        " order by planned_at, idempotency_key",
        (entity, list(paused)),
    ).fetchall()


def _send(conn: psycopg.Connection, client: NationalIntakeClient, batch: Batch) -> SentBatch:
    """POST the batch; on no answer, ask for its status (the intake may have stored it before
    the answer was lost). Raises FeedDeliveryError, the failure recorded, when neither tells."""
    try:
        return SentBatch(batch, client.submit(batch.key, bytes(batch.body), len(batch.keys)))
    except IntakeUnavailable as error:
        try:
            reply = client.status(batch.key)
        except (IntakeUnavailable, IntakeRefused):
            reply = None
        if reply is not None:
            return SentBatch(batch, reply)
        _record_failure(conn, batch.key, str(error))
        raise FeedDeliveryError(
            f"batch {batch.key} not delivered, kept for the next run: {error}"
        ) from None
    except IntakeRefused as error:
        _record_failure(conn, batch.key, str(error))
        raise FeedDeliveryError(
            f"batch {batch.key} refused, kept for the next run: {error}"
        ) from None


def _record_failure(conn: psycopg.Connection, key: str, error: str) -> None:
    conn.execute(
        "update ops.feed_batch set attempts = attempts + 1, last_attempt_at = now(),"
        " last_error = %s where idempotency_key = %s",
        (error[:500], key),
    )


def _apply(conn: psycopg.Connection, sent: SentBatch, report: FeedReport) -> None:
    """Record the intake's answer to a batch in one transaction: acknowledged state,
    rejections, earlier rejections of records now accepted resolved, the batch closed."""
    batch, reply = sent.batch, sent.reply
    params = {
        "key": batch.key,
        "province": batch.province,
        "entity": batch.entity,
        "keys": batch.keys,
        "digests": batch.digests,
        "rejected": [r.record_key for r in reply.rejections],
    }
    with conn.transaction():
        # Losing this commit in a server crash is safe: the batch stays open, and the next run
        # asks the intake for its status. No need to wait for the disk.
        conn.execute("set local synchronous_commit = off")
        updated = conn.execute(
            "update ops.feed_batch set state = 'acknowledged', acknowledged_at = now(),"
            " body = null, attempts = attempts + 1, last_attempt_at = now(), last_error = null,"
            " accepted_count = %(accepted)s, rejected_count = %(rejected)s,"
            " national_batch_id = %(batch)s"
            " where idempotency_key = %(key)s and state = 'planned'",
            {
                "key": batch.key,
                "accepted": reply.accepted_count,
                "rejected": reply.rejected_count,
                "batch": reply.batch_id,
            },
        ).rowcount
        if not updated:
            return  # settled already (two answers to one batch): nothing to apply twice
        accepted = (
            "select k as record_key, d as content_digest"
            " from unnest(%(keys)s::text[], %(digests)s::text[]) as sent(k, d)"
            " where k <> all(%(rejected)s::text[])"
        )
        conn.execute(
            "insert into ops.feed_record_state as s (province_code, entity, record_key,"
            " content_digest, idempotency_key, acknowledged_at)"
            " select %(province)s, %(entity)s, a.record_key, a.content_digest, %(key)s, now()"
            f" from ({accepted}) as a where a.content_digest is not null"
            " on conflict (entity, record_key) do update"
            " set province_code = excluded.province_code,"
            " content_digest = excluded.content_digest, idempotency_key = excluded.idempotency_key,"
            " acknowledged_at = excluded.acknowledged_at",
            params,
        )
        if batch.tombstones:
            conn.execute(
                "delete from ops.feed_record_state as s"
                f" using ({accepted}) as a where a.content_digest is null"
                " and s.entity = %(entity)s and s.record_key = a.record_key",
                params,
            )
        if reply.rejections:
            _record_rejections(conn, sent)
        if conn.execute(
            "select exists (select 1 from ops.feed_rejection"
            " where entity = %s and resolved_at is null)",
            (batch.entity,),
        ).fetchone()[0]:
            conn.execute(
                "update ops.feed_rejection as q set resolved_at = now(),"
                " resolution = 'accepted by the national intake in batch ' || %(key)s"
                f" from ({accepted}) as a"
                " where q.entity = %(entity)s and q.record_key = a.record_key"
                " and q.resolved_at is null",
                params,
            )
    report.batches += 1
    report.accepted += reply.accepted_count
    report.rejected += reply.rejected_count
    report.replayed += reply.replayed


def _record_rejections(conn: psycopg.Connection, sent: SentBatch) -> None:
    """The intake's rejections into ops.feed_rejection, with its reason code in English and
    Vietnamese and where to fix the record (the published feed model's source columns)."""
    batch = sent.batch
    digests = dict(zip(batch.keys, batch.digests, strict=True))
    rows = []
    for rejection in sent.reply.rejections:
        english, vietnamese = REASON_CODES.get(
            rejection.reason_code, (rejection.reason_code, rejection.reason_code)
        )
        detail = f": {rejection.reason}" if rejection.reason else ""
        rows.append(
            (
                rejection.record_key,
                digests.get(rejection.record_key) or "tombstone",
                rejection.reason_code,
                f"national intake rejected ({rejection.reason_code}) {english}{detail}",
                f"cơ sở dữ liệu quốc gia từ chối ({rejection.reason_code}) {vietnamese}",
            )
        )
    conn.execute(
        sql.SQL(
            "insert into ops.feed_rejection (province_code, entity, record_key, content_digest,"
            " source_id, record_id, landed_id, idempotency_key, reason_code, reason, reason_vi)"
            " select %(province)s, %(entity)s, j.record_key, j.content_digest, f.source_id,"
            " f.record_id, f.landed_id, %(key)s, j.reason_code, j.reason, j.reason_vi"
            " from unnest(%(k)s::text[], %(d)s::text[], %(c)s::text[], %(r)s::text[],"
            " %(v)s::text[]) as j(record_key, content_digest, reason_code, reason, reason_vi)"
            " left join {feed} as f on f.record_key = j.record_key"
            " on conflict (entity, record_key, content_digest) do update"
            " set idempotency_key = excluded.idempotency_key,"
            " reason_code = excluded.reason_code, reason = excluded.reason,"
            " reason_vi = excluded.reason_vi, rejected_at = now(),"
            " resolved_at = null, resolution = null"
        ).format(feed=feed_relation(batch.entity)),
        {
            "province": batch.province,
            "entity": batch.entity,
            "key": batch.key,
            **dict(zip("kdcrv", map(list, zip(*rows, strict=True)), strict=True)),
        },
    )
