"""Each source entity's change events, batches and lag (the view `ops.source_status`), and the
check the `ops__event_lag` DAG runs: notify when a source entity's oldest pending event has
waited longer than its catalogue `events.max_pending_minutes`.

Plain Python (no Airflow import): `python -m local sources` prints the same figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from connectors.catalogue import DEFAULT_MAX_PENDING_MINUTES, Source
from connectors.warehouse import ensure_schema

_SQL = """
select source_id, entity, last_event_at, last_success_at, pending_events, oldest_pending_at,
    oldest_pending_age, lag, last_batch_id, last_batch_state, last_error
from ops.source_status
where %(source)s::text is null or source_id = %(source)s
order by source_id, entity
"""


@dataclass(frozen=True)
class SourceStatus:
    """A row of ops.source_status (the view's comments say what each figure means)."""

    source_id: str
    entity: str
    last_event_at: datetime | None
    last_success_at: datetime | None
    pending_events: int
    oldest_pending_at: datetime | None
    oldest_pending_age: timedelta | None
    lag: timedelta
    last_batch_id: int | None
    last_batch_state: str | None
    last_error: str | None

    def late(self, max_pending_minutes: int) -> bool:
        """Whether the oldest pending event has waited longer than the source allows."""
        age = self.oldest_pending_age
        return age is not None and age > timedelta(minutes=max_pending_minutes)


def read_status(warehouse_url: str, source_id: str | None = None) -> list[SourceStatus]:
    """The rows of ops.source_status (of one source, or all), by source and entity. A
    warehouse no load has touched since the view was added gets the schema first."""
    for attempt in (1, 2):
        try:
            with psycopg.connect(warehouse_url, application_name="sti-source-status") as conn:
                rows = conn.execute(_SQL, {"source": source_id}).fetchall()
            return [SourceStatus(*row) for row in rows]
        except psycopg.errors.UndefinedTable:
            if attempt == 2:
                raise
            ensure_schema(warehouse_url)
    raise AssertionError("unreachable")


def max_pending_minutes(sources: Iterable[Source]) -> dict[str, int]:
    """Source id → its events.max_pending_minutes (the default for a source without events)."""
    return {
        source.id: source.events.max_pending_minutes
        if source.events
        else DEFAULT_MAX_PENDING_MINUTES
        for source in sources
    }


def late_entities(
    statuses: Iterable[SourceStatus], limits: dict[str, int]
) -> list[tuple[SourceStatus, int]]:
    """The source entities whose oldest pending event is late, each with the limit it broke
    (a source no longer in the catalogue gets the default)."""
    late = []
    for status in statuses:
        limit = limits.get(status.source_id, DEFAULT_MAX_PENDING_MINUTES)
        if status.late(limit):
            late.append((status, limit))
    return late


def describe_late(status: SourceStatus, limit: int) -> tuple[str, str]:
    """Subject and body of the notification for a late source entity."""
    subject = (
        f"change events of {status.source_id}/{status.entity} pending for"
        f" {format_duration(status.oldest_pending_age)} (limit {limit} min)"
    )
    lines = [
        f"Source: {status.source_id}",
        f"Entity: {status.entity}",
        f"Pending events: {status.pending_events}, the oldest received"
        f" {_at(status.oldest_pending_at)} ({format_duration(status.oldest_pending_age)} ago;"
        f" events.max_pending_minutes = {limit})",
        f"Lag behind the source: {format_duration(status.lag)}",
        f"Last event at the source: {_at(status.last_event_at)}",
        f"Last publish: {_at(status.last_success_at)}",
        f"Last batch: {status.last_batch_id or '-'} {status.last_batch_state or ''}".rstrip(),
    ]
    if status.last_error:
        lines.append(f"Last error: {status.last_error}")
    lines += [
        "",
        f"Look at the DAG {status.source_id}__{status.entity} (a run failed or is held?) and the"
        " event dispatcher (python -m connectors.event_dispatch, ops.event_inbox.last_error).",
        f"Status of every source: python -m local sources {status.source_id}",
    ]
    return subject, "\n".join(lines)


def notify_late_entities(
    warehouse_url: str,
    sources: Iterable[Source],
    notify: Callable[..., list[str]] | None = None,
) -> list[tuple[SourceStatus, int]]:
    """One notification (severity warning) per late source entity; the late ones. `notify` is
    connectors.notify.notify or a function with its signature (the DAG's resolves Airflow's
    connections)."""
    if notify is None:
        from connectors.notify import notify
    late = late_entities(read_status(warehouse_url), max_pending_minutes(sources))
    for status, limit in late:
        subject, body = describe_late(status, limit)
        notify(subject, body, severity="warning")
    return late


def format_duration(value: timedelta | None) -> str:
    """`45s`, `42m`, `3h 05m`, `2d 04h`; `-` for None."""
    if value is None:
        return "-"
    seconds = max(int(value.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def _at(value: datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
