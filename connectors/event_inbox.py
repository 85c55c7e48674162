"""The event intake's durable inbox (`ops.event_inbox`): group commit of accepted change events.

Each request hands its row to :class:`Inbox` and waits; one writer task takes every row queued
so far and inserts them in one statement (one commit, one WAL flush), then answers each waiter.
Nothing is answered before its row is committed, so a 2xx always means "durable". Batches form
by themselves: while one commit is in flight the next requests queue up, so a quiet intake
commits each event alone at once and a busy one commits hundreds per flush.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg

log = logging.getLogger(__name__)

MAX_BATCH = 1000  # rows per insert: bounds one statement's size and a failed batch's blast radius

# `on conflict do nothing` makes de-duplication the database's job, so it holds across
# restarts and several intake processes; `returning` says which rows were new.
_INSERT = """
insert into ops.event_inbox
    (source_id, event_id, entity, record_id, version, change_kind, event_time)
select * from unnest(
    %s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[], %s::timestamptz[])
on conflict (source_id, event_id) do nothing
returning source_id, event_id
"""


@dataclass(frozen=True, slots=True)
class InboxRow:
    source_id: str  # the catalogue id: the dispatcher's asset is sti://<source_id>/<entity>
    event_id: str
    entity: str
    record_id: str
    version: int
    change_kind: str  # upsert | delete
    event_time: datetime


class InboxUnavailable(Exception):
    """The row could not be committed; nothing of its batch was stored (answer 503)."""


class Inbox:
    """Stores rows in `ops.event_inbox` through one connection, batching concurrent requests."""

    def __init__(self, warehouse_url: str, max_batch: int = MAX_BATCH) -> None:
        self.warehouse_url = warehouse_url
        self.max_batch = max_batch
        self.commits = 0  # statistics for the benchmark and logs
        self.rows = 0
        self._queue: list[tuple[InboxRow, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._conn: psycopg.AsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-inbox-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._fail(self._queue, "the intake is shutting down")
        self._queue = []
        if self._conn is not None:
            await self._conn.close()

    async def store(self, row: InboxRow) -> bool:
        """Commit `row`; True if it is new, False if (source, event id) was already stored."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((row, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                try:
                    await self._commit(batch)
                except asyncio.CancelledError:
                    self._fail(batch, "the intake is shutting down")
                    raise
                except Exception:  # a bug must not leave requests waiting or stop the writer
                    log.exception("event inbox: a batch of %d failed", len(batch))
                    self._fail(batch, "the inbox could not store the event")

    async def _commit(self, batch: list[tuple[InboxRow, asyncio.Future[bool]]]) -> None:
        # The first of several requests with one key in a batch is the one stored; the others
        # are its duplicates, as they would be a moment later.
        groups: dict[tuple[str, str], list[tuple[InboxRow, asyncio.Future[bool]]]] = {}
        for item in batch:
            groups.setdefault(_key(item[0]), []).append(item)
        try:
            new = await self._insert([group[0][0] for group in groups.values()])
        except (psycopg.Error, OSError) as exc:
            # Autocommit: a failed statement stored nothing. One whose connection broke at the
            # commit may have stored its rows: the 503 makes the sender retry, and the retry is
            # answered as a duplicate, so either way nothing is lost or doubled. A broken
            # connection is replaced on the next batch.
            if self._conn is not None and self._conn.broken:
                self._conn = None
            if len(groups) > 1 and isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
                # One row the database refuses must not fail the requests batched with it.
                for group in groups.values():
                    await self._commit(group)
                return
            log.warning("event inbox: %d rows not stored: %s", len(groups), exc)
            self._fail(batch, f"the inbox could not store the event ({type(exc).__name__})")
            return
        for key, group in groups.items():
            for position, (_, future) in enumerate(group):
                if not future.done():
                    future.set_result(position == 0 and key in new)

    async def _insert(self, rows: list[InboxRow]) -> set[tuple[str, str]]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self.warehouse_url,
                autocommit=True,
                application_name="sti-event-intake",
                connect_timeout=10,  # an unreachable server answers 503, not a hang
            )
        cursor = await self._conn.execute(_INSERT, _columns(rows))
        new = {tuple(key) for key in await cursor.fetchall()}
        self.commits += 1
        self.rows += len(new)
        return new

    @staticmethod
    def _fail(batch: list[tuple[InboxRow, asyncio.Future[bool]]], reason: str) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(InboxUnavailable(reason))


def _key(row: InboxRow) -> tuple[str, str]:
    return (row.source_id, row.event_id)


def _columns(rows: list[InboxRow]) -> tuple[list, ...]:
    return (
        [r.source_id for r in rows],
        [r.event_id for r in rows],
        [r.entity for r in rows],
        [r.record_id for r in rows],
        [r.version for r in rows],
        [r.change_kind for r in rows],
        [r.event_time for r in rows],
    )
