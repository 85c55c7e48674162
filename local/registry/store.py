"""One entity of a registry as served: generated base records plus the change overlay.

Ordering. Base record ``i`` has ``seq = i`` and an ``updated_at`` that never decreases with
``i``, so the key ``(updated_at, seq)`` orders base records by index. A changed record leaves its
base position and is appended to the change log with ``seq = records + change number`` and an
``updated_at`` from a logical clock later than every existing timestamp, so the whole ordering is:
unchanged base records by index, then the change log. ``seq`` alone is therefore a position in
that ordering, which is what :meth:`RecordStore.page` walks.

Only the change overlay lives in memory. Not thread-safe: the app calls it from the event loop.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Protocol

from local.registry.synth import UPDATED_AT_LAST, format_timestamp


class Generator(Protocol):
    """What a store needs from an entity generator (records are pure functions of the index)."""

    records: int
    seed: int

    def updated_at(self, i: int) -> int: ...  # epoch seconds, never decreasing with i
    def first_index_updated_since(self, epoch_seconds: int) -> int: ...
    def record(self, i: int) -> dict[str, Any]: ...
    def kind_counts(self) -> dict[str, int]: ...  # dirt/defect kind -> records carrying it
    def changeable(self, i: int) -> bool: ...  # clean and never re-sent: may be changed
    def changeable_count(self) -> int: ...


@dataclass(frozen=True)
class Change:
    """One changed record: where it now sits in the ordering and what changed."""

    index: int  # base record index
    seq: int  # records + change number
    updated_at: int  # epoch seconds
    version: int
    deleted: bool


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    last_seq: int | None  # seq of the last record served (None for an empty page)
    last_updated_at: int | None  # its updated_at in epoch seconds
    has_more: bool


class RecordStore:
    """The current state of one entity: base records, minus changed ones, plus the change log."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self._changes: list[Change] = []  # in seq order
        self._change_times: list[int] = []  # updated_at of each change, strictly ascending
        self._changed: dict[int, Change] = {}  # base index -> its change
        # Changes walk all indices in a fixed pseudo-random order (a full-period stride), so
        # every record is visited once and none is picked twice.
        self._walk_step = 0
        self._walk_stride = _coprime_stride(generator.records, generator.seed)
        self._clock = UPDATED_AT_LAST  # logical clock: changes tick from here, 1 s each

    @property
    def records(self) -> int:
        return self.generator.records

    def key_of(self, seq: int) -> int | None:
        """The ``updated_at`` (epoch s) that goes with ``seq``, or None if seq is not served."""
        n = self.generator.records
        if 0 <= seq < n and seq not in self._changed:
            return self.generator.updated_at(seq)
        if n <= seq < n + len(self._changes):
            return self._changes[seq - n].updated_at
        return None

    def record_at(self, seq: int) -> dict[str, Any]:
        """The record currently served at position ``seq``."""
        n = self.generator.records
        if seq < n:
            return self.generator.record(seq)
        change = self._changes[seq - n]
        record = self.generator.record(change.index)
        record["version"] = change.version
        record["updated_at"] = format_timestamp(change.updated_at)
        record["deleted"] = change.deleted
        return record

    def page(self, after_seq: int | None, updated_since: int | None, limit: int) -> Page:
        """Up to ``limit`` records after position ``after_seq`` with updated_at >= the filter."""
        n = self.generator.records
        start = 0 if after_seq is None else after_seq + 1
        if updated_since is not None:
            base_start = self.generator.first_index_updated_since(updated_since)
            if base_start >= n:  # nothing in the base range: start in the change log
                base_start = n + bisect.bisect_left(self._change_times, updated_since)
            start = max(start, base_start)

        positions = self._positions(start, limit + 1)  # one extra tells whether more remain
        served = positions[:limit]
        record = self.generator.record
        if self._changes:
            records = [self.record_at(seq) for seq in served]
        else:  # the common case: base records only
            records = [record(seq) for seq in served]
        last = served[-1] if served else None
        return Page(
            records=records,
            last_seq=last,
            last_updated_at=None if last is None else self.key_of(last),
            has_more=len(positions) > limit,
        )

    def _positions(self, start: int, count: int) -> list[int]:
        """The next ``count`` served positions from ``start`` on, skipping changed base records."""
        n = self.generator.records
        changed = self._changed
        if not changed and start < n:  # fast path: a plain range of base records
            stop = min(n, start + count)
            positions = list(range(start, stop))
            seq = stop
        else:
            positions = []
            seq = start
            while seq < n and len(positions) < count:
                if seq not in changed:
                    positions.append(seq)
                seq += 1
        end = n + len(self._changes)
        seq = max(seq, n)
        positions.extend(range(seq, min(end, seq + count - len(positions))))
        return positions

    def apply_changes(self, update: int, delete: int) -> tuple[list[str], list[str]]:
        """Update ``update`` and delete ``delete`` clean, never-changed records; return their ids.

        Raises ValueError (nothing changed) when fewer such records remain than requested.
        """
        if update < 0 or delete < 0:
            raise ValueError("update and delete must be >= 0")
        available = self.unchanged_good_records()
        if update + delete > available:
            raise ValueError(f"only {available} good records remain unchanged")
        updated = [self._change_next(deleted=False) for _ in range(update)]
        deleted = [self._change_next(deleted=True) for _ in range(delete)]
        return updated, deleted

    def unchanged_good_records(self) -> int:
        return self.generator.changeable_count() - len(self._changes)

    def _change_next(self, *, deleted: bool) -> str:
        n = self.generator.records
        while True:  # terminates: the caller checked that a changeable record remains
            index = (self._walk_step * self._walk_stride + self.generator.seed) % n
            self._walk_step += 1
            if self.generator.changeable(index):
                break
        record = self.generator.record(index)
        self._clock += 1
        change = Change(
            index=index,
            seq=n + len(self._changes),
            updated_at=self._clock,
            version=record["version"] + 1,
            deleted=deleted,
        )
        self._changes.append(change)
        self._change_times.append(change.updated_at)
        self._changed[index] = change
        return record["id"]

    @property
    def changes(self) -> int:
        return len(self._changes)

    def stats(self) -> dict[str, Any]:
        """What a full extraction returns now: record count, dirt by kind, changes."""
        return {
            "records": self.records,  # changes move records, they never add or remove one
            "kinds": self.generator.kind_counts(),  # changes pick clean records
            "changes": len(self._changes),
        }


def _coprime_stride(n: int, seed: int) -> int:
    """A stride near n × 0.618 that is coprime with n, so ``k * stride mod n`` visits all."""
    if n <= 1:
        return 1
    stride = max(1, int(n * 0.6180339887) + seed % 7)
    while math.gcd(stride, n) != 1:
        stride += 1
    return stride
