"""Stream extracted records into `raw.landed_record` as one all-or-nothing load batch.

A batch is recorded in the ledger (`ops.load_batch`) as `extracting` before the first request,
so operators can see it running. The records, the ledger's move to `landed` and the advance of
the incremental cursor (`ops.source_cursor`) are committed in one transaction: a crash anywhere
leaves no partial batch and no advanced cursor, and the next run extracts the same range again.
When a load fails, its error is written to the ledger; if the database itself is gone, the
error waits in a spool file until the next load of the same entity can record it.

A record is identified by (record_id, version), and a version is immutable by contract: a
record sent again with the same version and content (a repeated page, an inclusive cursor) is
counted as skipped, never landed twice; the same version with other content is landed with a
`landing_issue`, so the gate quarantines it and the content accepted first stays.

The extraction runs one page ahead of the COPY, in a background thread: while this thread
serialises a page and PostgreSQL ingests it, the next page is requested and parsed. At most
three pages are in memory (one being landed, one waiting, one being fetched), whatever the size
of the extraction.

A backfill lands a bounded window of a source entity (`Window`) as its own batch, with the
same lock, ledger and de-duplication, but without the live cursor: it neither reads it nor
advances it, so the incremental runs carry on as if it had not happened (and skip, as already
landed, what it landed).
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
import psycopg
from psycopg.types.json import Jsonb, set_json_dumps

log = logging.getLogger(__name__)

# The landing's COPY: public so the benchmark can load the very same rows as its baseline.
COPY_SQL = (
    "copy raw.landed_record (batch_id, source_id, entity, record_id, version, updated_at,"
    " deleted, extracted_at, checksum, payload, landing_issue, standardised, repairs)"
    " from stdin (format binary)"
)
COPY_TYPES = [
    "bigint",
    "text",
    "text",
    "text",
    "bigint",
    "timestamptz",
    "boolean",
    "timestamptz",
    "bytea",
    "jsonb",
    "text",
    "jsonb",
    "jsonb",
]
_MAX_ERROR_CHARS = 2000
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1
_ESCAPED_NUL = b"\\u0000"
_NUL_REPAIRED = "NUL characters (U+0000), which PostgreSQL cannot store, replaced by U+FFFD"
_PREFETCH_PAGES = 1  # pages extracted ahead of the one being landed
# After a failure while landing, how long to wait for the page being fetched before leaving the
# extraction thread to finish on its own (it stops at the next page boundary).
_STOP_WAIT_SECONDS = 10.0
# After a failed load, how long to keep trying to write its error to the ledger (a restarting
# PostgreSQL is back within seconds) before leaving it in the spool for the next load.
_RECORD_ERROR_SECONDS = 15.0
_ABANDONED = "abandoned: the process running this batch stopped before committing"
# What a batch extracted: everything (no cursor yet), the changes since the cursor, one file,
# or a bounded window an operator asked for (a backfill, `Window`).
Extraction = Literal["full", "incremental", "file", "backfill"]


def error_spool_dir() -> Path:
    """Where a load leaves its error when the ledger cannot be reached (per machine/worker)."""
    configured = os.environ.get("STI_LEDGER_SPOOL")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "sti-ledger-spool"


class PageLike(Protocol):
    records: list[dict[str, Any]]


Extract = Callable[[datetime | None], Iterable[PageLike]]
# (record_id, version, updated_at, deleted) of a record in its source's own shape; never raises.
Envelope = Callable[[dict[str, Any]], tuple[str | None, int | None, datetime | None, bool | None]]


class StandardisedLike(Protocol):
    record: dict[str, Any] | None
    repairs: list[dict[str, Any]] | None
    issues: list[str] | None


class Standardiser(Protocol):
    def apply(self, record: dict[str, Any]) -> StandardisedLike: ...


class ShapeMonitor(Protocol):
    """Watches every record of a batch against its contract's shape (connectors.drift)."""

    def observe(self, record: dict[str, Any]) -> None: ...

    def finish(self) -> dict[str, Any] | None:
        """Raise if the batch broke the contract; else what to note in the ledger, or None."""
        ...


@dataclass(frozen=True, slots=True)
class RecordRules:
    """How a contract's records are read at landing; the defaults fit registry API v1."""

    envelope: Envelope | None = None  # None: the record's own id / version / updated_at / deleted
    standardiser: Standardiser | None = None
    shape: Callable[[], ShapeMonitor] | None = None  # a fresh monitor per batch
    # Runs inside the landing transaction once the rows are written (e.g. to record files),
    # with the connection, the batch id and the number of records landed.
    on_landed: Callable[[psycopg.Connection, int, int], None] | None = None


NO_RULES = RecordRules()


@dataclass(frozen=True, slots=True)
class Window:
    """The records of a bounded re-extraction (a backfill): updated in [start, end)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a window's bounds must be timezone-aware")
        if self.start >= self.end:
            raise ValueError(f"an empty window: {self.start} is not before {self.end}")


class LoadInProgressError(RuntimeError):
    """Another load of the same source entity holds the lock."""


@dataclass(frozen=True, slots=True)
class LandResult:
    batch_id: int
    updated_since: datetime | None
    records_extracted: int
    records_landed: int
    records_skipped: int
    pages: int
    high_watermark: datetime | None


def land_extraction(
    warehouse_url: str,
    *,
    source_id: str,
    entity: str,
    contract: str,
    extract: Extract,
    rules: RecordRules = NO_RULES,
    extraction: Extraction | None = None,
    window: Window | None = None,
) -> LandResult:
    """Run `extract(updated_since)` and land every record it yields as one load batch.

    `updated_since` is the cursor committed by the last landed batch. Sources treat it as
    inclusive, so records at exactly that instant come back; those already landed with the
    same id, version and content are counted as skipped instead of being landed twice.
    `extraction` says what the batch holds, for the gate's volume rule; by default "full"
    without a cursor and "incremental" with one.

    With a `window` (a backfill), `updated_since` is the window's start and `extract` must
    stop at its end; the cursor is neither read nor advanced, and the batch is a "backfill"
    with the window in the ledger (`updated_since`, `updated_until`).
    """
    with (
        psycopg.connect(warehouse_url, autocommit=True) as data,
        psycopg.connect(warehouse_url, autocommit=True) as ledger,
    ):
        lock_source(data, source_id, entity)
        _close_abandoned(ledger, source_id, entity)
        if window is None:
            row = ledger.execute(
                "select high_watermark from ops.source_cursor where source_id = %s and entity = %s",
                (source_id, entity),
            ).fetchone()
            updated_since = row[0] if row else None
        else:
            updated_since = window.start
        updated_until = window.end if window else None
        if extraction is None:
            extraction = (
                "backfill" if window else "full" if updated_since is None else "incremental"
            )
        (batch_id,) = ledger.execute(
            "insert into ops.load_batch"
            " (source_id, entity, contract, updated_since, updated_until, extraction)"
            " values (%s, %s, %s, %s, %s, %s) returning batch_id",
            (source_id, entity, contract, updated_since, updated_until, extraction),
        ).fetchone()
        log.info(
            "batch %s: extracting %s/%s since %s%s",
            batch_id,
            source_id,
            entity,
            updated_since,
            f" until {window.end} (a backfill; the cursor stays as it is)" if window else "",
        )
        try:
            result = _land(data, batch_id, source_id, entity, updated_since, extract, rules, window)
        except BaseException as exc:
            _record_failure(warehouse_url, ledger, batch_id, f"{type(exc).__name__}: {exc}")
            raise
    log.info(
        "batch %s: landed %s of %s records (%s already landed) in %s pages",
        batch_id,
        result.records_landed,
        result.records_extracted,
        result.records_skipped,
        result.pages,
    )
    return result


def _close_abandoned(ledger: psycopg.Connection, source_id: str, entity: str) -> None:
    """Batches of this entity still `extracting` belong to a load that died (this one holds the
    lock): failed, with the error their load spooled when the database was gone, if any."""
    abandoned = ledger.execute(
        "select batch_id from ops.load_batch"
        " where source_id = %s and entity = %s and state = 'extracting'",
        (source_id, entity),
    ).fetchall()
    for (batch_id,) in abandoned:
        spooled = error_spool_dir() / f"batch-{batch_id}.txt"
        try:
            error = f"{_ABANDONED}: {spooled.read_text(encoding='utf-8')}"
        except OSError:
            error = _ABANDONED
        ledger.execute(
            "update ops.load_batch set state = 'failed', failed_at = now(), error = %s"
            " where batch_id = %s and state = 'extracting'",
            (error[:_MAX_ERROR_CHARS], batch_id),
        )
        spooled.unlink(missing_ok=True)


def _record_failure(
    warehouse_url: str, ledger: psycopg.Connection, batch_id: int, error: str
) -> None:
    """Write a failed load's error to the ledger, reconnecting while the database restarts; if
    it stays unreachable, spool the error for the next load (`_close_abandoned`)."""
    error = error[:_MAX_ERROR_CHARS]
    update = (
        "update ops.load_batch set state = 'failed', failed_at = now(), error = %s"
        " where batch_id = %s"
    )
    deadline = time.monotonic() + _RECORD_ERROR_SECONDS
    while True:
        try:
            if ledger.closed or ledger.broken:
                with psycopg.connect(warehouse_url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(update, (error, batch_id))
            else:
                ledger.execute(update, (error, batch_id))
            return
        except psycopg.OperationalError:
            if time.monotonic() >= deadline:
                break
            time.sleep(1.0)
    spool = error_spool_dir()
    spool.mkdir(parents=True, exist_ok=True)
    (spool / f"batch-{batch_id}.txt").write_text(error, encoding="utf-8")
    log.error("batch %s: the ledger is unreachable; its error is spooled in %s", batch_id, spool)


def lock_source(
    conn: psycopg.Connection, source_id: str, entity: str, purpose: str = "land"
) -> None:
    """Hold the session lock of one kind of load of a source entity, or raise at once."""
    (locked,) = conn.execute(
        "select pg_try_advisory_lock(hashtextextended(%s, 0))",
        (f"{purpose}:{source_id}:{entity}",),
    ).fetchone()
    if not locked:
        raise LoadInProgressError(f"another load of {source_id}/{entity} is running")


def _land(
    conn: psycopg.Connection,
    batch_id: int,
    source_id: str,
    entity: str,
    updated_since: datetime | None,
    extract: Extract,
    rules: RecordRules,
    window: Window | None = None,
) -> LandResult:
    # The payload is serialised once (canonically, for the checksum) and sent as-is.
    set_json_dumps(pass_through_json, context=conn)
    already_landed = _keys_landed_since(
        conn, source_id, entity, updated_since, window.end if window else None
    )
    # Keys of this batch, hashed (a million cost ~60 MB); a key seen twice is settled in SQL.
    batch_keys: set[int] = set()
    repeated_keys: set[tuple[str, int]] = set()
    extracted = landed = pages = 0
    high_watermark = updated_since
    extracted_at = datetime.now(UTC)
    shape = rules.shape() if rules.shape else None
    with conn.transaction():
        with (
            _prefetched(extract(updated_since), _PREFETCH_PAGES) as extracted_pages,
            conn.cursor().copy(COPY_SQL) as copy,
        ):
            copy.set_types(COPY_TYPES)
            for page in extracted_pages:
                pages += 1
                if shape is not None:
                    for record in page.records:
                        shape.observe(record)
                for row in landed_rows(
                    page.records, batch_id, source_id, entity, extracted_at, rules
                ):
                    extracted += 1
                    _, _, _, record_id, version, updated_at, _, _, checksum, *_ = row
                    if (record_id, version, checksum) in already_landed:
                        continue
                    if record_id is not None and version is not None:
                        key = hash((record_id, version))
                        if key in batch_keys:
                            repeated_keys.add((record_id, version))
                        batch_keys.add(key)
                    copy.write_row(row)
                    landed += 1
                    if updated_at is not None and (
                        high_watermark is None or updated_at > high_watermark
                    ):
                        high_watermark = updated_at
        del batch_keys
        landed -= _settle_repeats(conn, batch_id, source_id, entity, repeated_keys)
        # A batch that broke its contract raises here: nothing of it is committed.
        drift = shape.finish() if shape is not None else None
        if drift and "retyped_in_some_records" in drift:
            _mark_retyped(conn, batch_id, drift["retyped_in_some_records"])
        if rules.on_landed is not None:
            rules.on_landed(conn, batch_id, landed)
        if high_watermark is not None and window is None:  # a backfill leaves the cursor be
            conn.execute(
                "insert into ops.source_cursor (source_id, entity, high_watermark, batch_id)"
                " values (%s, %s, %s, %s) on conflict (source_id, entity) do update"
                " set high_watermark = excluded.high_watermark, batch_id = excluded.batch_id,"
                " updated_at = now()",
                (source_id, entity, high_watermark, batch_id),
            )
        conn.execute(
            "update ops.load_batch set state = 'landed', landed_at = now(),"
            " records_extracted = %s, records_landed = %s, records_skipped = %s, pages = %s,"
            " schema_drift = %s where batch_id = %s",
            (
                extracted,
                landed,
                extracted - landed,
                pages,
                None if drift is None else Jsonb(drift),
                batch_id,
            ),
        )
    return LandResult(
        batch_id=batch_id,
        updated_since=updated_since,
        records_extracted=extracted,
        records_landed=landed,
        records_skipped=extracted - landed,
        pages=pages,
        high_watermark=high_watermark,
    )


def _settle_repeats(
    conn: psycopg.Connection,
    batch_id: int,
    source_id: str,
    entity: str,
    repeated_keys: set[tuple[str, int]],
) -> int:
    """Rows of the batch whose id and version were landed before (earlier in this batch or in
    an earlier one): an exact repeat is removed (and counted as skipped); other content for the
    same version gets a landing issue, so the gate quarantines it. Returns the repeats removed.

    Every row is compared with earlier batches only when the entity has any (a first load has
    none: then only the keys seen twice in the batch are looked at).
    """
    (earlier,) = conn.execute(
        "select exists (select 1 from raw.landed_record where source_id = %s and entity = %s"
        " and batch_id < %s)",
        (source_id, entity, batch_id),
    ).fetchone()
    if not earlier and not repeated_keys:
        return 0
    ids, versions = zip(*repeated_keys, strict=True) if repeated_keys else ((), ())
    conn.execute(
        "create temporary table landing_repeat on commit drop as"
        " select r.landed_id, bool_or(e.checksum = r.checksum) as same_content,"
        " min(e.landed_id) as first_landed_id"
        " from raw.landed_record as r join raw.landed_record as e"
        " on e.source_id = %(source)s and e.entity = %(entity)s"
        " and e.record_id = r.record_id and e.version = r.version and e.landed_id < r.landed_id"
        " where r.batch_id = %(batch)s and (%(earlier)s or (r.record_id, r.version) in"
        " (select * from unnest(%(ids)s::text[], %(versions)s::bigint[])))"
        " group by r.landed_id",
        {
            "source": source_id,
            "entity": entity,
            "batch": batch_id,
            "earlier": earlier,
            "ids": list(ids),
            "versions": list(versions),
        },
    )
    repeats = conn.execute(
        "delete from raw.landed_record as r using landing_repeat as x"
        " where r.landed_id = x.landed_id and x.same_content"
    ).rowcount
    conn.execute(
        "update raw.landed_record as r set landing_issue = concat_ws('; ', r.landing_issue,"
        " format('version %s of this record was already received with other content'"
        " || ' (landed_id %s, batch %s); a version cannot change, the first content stands',"
        " r.version, first.landed_id, first.batch_id))"
        " from landing_repeat as x join raw.landed_record as first"
        " on first.landed_id = x.first_landed_id"
        " where r.landed_id = x.landed_id and not x.same_content"
    )
    conn.execute("drop table landing_repeat")
    return repeats


_JSONB_TYPES = {"string", "number", "integer", "boolean", "array", "object"}


def _mark_retyped(conn: psycopg.Connection, batch_id: int, fields: dict[str, Any]) -> None:
    """Records of the batch whose value of a field still has a type the contract does not
    allow after standardising get a landing issue saying so; the gate quarantines them."""
    for name, finding in fields.items():
        allowed = [t for t in finding["expected"].split("/") if t in _JSONB_TYPES]
        jsonb_types = sorted({"number" if t == "integer" else t for t in allowed})
        conn.execute(
            "update raw.landed_record set landing_issue = concat_ws('; ', landing_issue,"
            " format('%%s is %%s; the contract says %%s', %(field)s::text,"
            " jsonb_typeof(coalesce(standardised, payload) -> %(field)s), %(expected)s::text))"
            " where batch_id = %(batch)s"
            " and jsonb_typeof(coalesce(standardised, payload) -> %(field)s) <> 'null'"
            " and jsonb_typeof(coalesce(standardised, payload) -> %(field)s) <> all(%(types)s)",
            {
                "field": name,
                "expected": finding["expected"],
                "batch": batch_id,
                "types": jsonb_types,
            },
        )


class _End:
    """Queued by the extraction thread after the last page, with the error that ended it."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


@contextmanager
def _prefetched(pages: Iterable[PageLike], depth: int) -> Iterator[Iterator[PageLike]]:
    """Iterate `pages` in a background thread, at most `depth` pages ahead of the consumer.

    An error raised by the extraction is raised again here, in the consumer, when it reaches
    that point of the sequence. When the consumer leaves early (its own error, or it stops
    iterating), the thread is told to stop at the next page boundary, closing `pages`.
    """
    slots: queue.Queue[PageLike | _End] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: PageLike | _End) -> bool:
        """Queue `item` unless told to stop first; False when told to stop."""
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def extract_pages() -> None:
        error: BaseException | None = None
        try:
            iterator = iter(pages)
            try:
                for page in iterator:
                    if not offer(page):
                        return
                    del page  # the consumer holds it now
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # handed to the consumer, which raises it
            error = exc
        offer(_End(error))

    def consume() -> Iterator[PageLike]:
        while True:
            item = slots.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
            del item

    thread = threading.Thread(target=extract_pages, name="landing-extract", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join(_STOP_WAIT_SECONDS)
        if thread.is_alive():
            log.warning(
                "the extraction thread is still fetching a page %.0f s after the load stopped;"
                " leaving it to stop on its own",
                _STOP_WAIT_SECONDS,
            )


def _keys_landed_since(
    conn: psycopg.Connection,
    source_id: str,
    entity: str,
    updated_since: datetime | None,
    updated_until: datetime | None = None,
) -> set[tuple[str | None, int | None, bytes]]:
    if updated_since is None:
        return set()
    rows = conn.execute(
        "select record_id, version, checksum from raw.landed_record"
        " where source_id = %s and entity = %s and updated_at >= %s"
        " and (%s::timestamptz is null or updated_at < %s)",
        (source_id, entity, updated_since, updated_until, updated_until),
    ).fetchall()
    return {(r[0], r[1], bytes(r[2])) for r in rows}


def landed_rows(
    records: list[dict[str, Any]],
    batch_id: int,
    source_id: str,
    entity: str,
    extracted_at: datetime,
    rules: RecordRules = NO_RULES,
) -> Iterator[tuple[Any, ...]]:
    """One row for COPY_SQL per record, in its column order.

    Malformed keys become nulls; the gate judges them. The payload and its checksum are the
    record as sent; what the standardiser repaired goes beside it (`standardised`, `repairs`),
    and what it could not repair goes to `landing_issue`, so the gate quarantines the record
    with that reason. A record PostgreSQL cannot store as sent (NUL characters) is stored
    repaired, with `landing_issue` saying how, instead of one record failing every batch.
    """
    envelope, standardiser = rules.envelope, rules.standardiser
    for record in records:
        payload = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        checksum = hashlib.sha256(payload).digest()
        issues: list[str] = []
        # orjson writes U+0000 only as this escape; a literal backslash-u0000 in a string
        # also contains it, so the repair is what tells a NUL from that text.
        if _ESCAPED_NUL in payload:
            repaired = _without_nul(record)
            if repaired != record:
                record = repaired
                payload = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
                issues.append(_NUL_REPAIRED)
        record_id = version = updated_at = deleted = None
        standardised = repairs = None
        if isinstance(record, dict):
            if envelope is None:
                record_id = record.get("id")
                record_id = None if record_id is None else str(record_id)
                version = record.get("version")
                updated_at = _parse_timestamp(record.get("updated_at"))
                deleted = record.get("deleted")
            else:
                record_id, version, updated_at, deleted = envelope(record)
            if type(version) is not int or not _BIGINT_MIN <= version <= _BIGINT_MAX:
                version = None
            if type(deleted) is not bool:
                deleted = None
            if standardiser is not None:
                outcome = standardiser.apply(record)
                if outcome.record is not None:
                    standardised = orjson.dumps(outcome.record)
                if outcome.repairs:
                    repairs = orjson.dumps(outcome.repairs)
                if outcome.issues:
                    issues.extend(outcome.issues)
        yield (
            batch_id,
            source_id,
            entity,
            record_id,
            version,
            updated_at,
            deleted,
            extracted_at,
            checksum,
            payload,
            "; ".join(issues) if issues else None,
            standardised,
            repairs,
        )


def _without_nul(value: Any) -> Any:
    """`value` with every U+0000 in its strings and keys replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _parse_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def pass_through_json(obj: Any) -> bytes:
    """psycopg JSON dumper that sends already-serialised payloads as they are."""
    return obj if isinstance(obj, bytes) else orjson.dumps(obj)
