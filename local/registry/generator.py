"""Base class of the profile-mode entity generators: envelope, origins and dirt in one place.

A subclass says which fields carry which dirt (class attributes) and builds clean record ``i``
in :meth:`EntityGenerator.build`; this class decides the record's kind of dirt (at most one, see
:class:`~local.registry.synth.KindSchedule`) and applies it:

- text kinds spoil the first of ``text_fields`` they visibly change (an address always is);
- ``mst_check_digit`` / ``date_out_of_range`` / ``amount_wrong_unit`` spoil ``mst_field`` /
  ``date_field`` / ``amount_field`` (``build`` is told the kind, so it can make sure the record
  has an enterprise code to spoil);
- ``resent`` / ``deleted`` serve the nearest clean record before ``i`` again, unchanged but for
  a higher version, the later ``updated_at`` and, for ``deleted``, the flag.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar

from local.registry.context import RegistryContext
from local.registry.synth import (
    GOLDEN64,
    MASK64,
    PPM,
    KindSchedule,
    Timeline,
    apply_text_dirt,
    format_timestamp,
    in_vnd,
    index_hash,
    mix,
    out_of_range_date,
    seed_key,
    wrong_check_digit,
)

ENVELOPE_KINDS = ("resent", "deleted")


class EntityGenerator:
    entity: ClassVar[str]
    text_fields: ClassVar[tuple[str, ...]] = ()
    mst_field: ClassVar[str | None] = None
    date_field: ClassVar[str | None] = None
    amount_field: ClassVar[str | None] = None

    def __init__(self, ctx: RegistryContext, records: int, schedule: KindSchedule) -> None:
        if records < 0:
            raise ValueError("records must be >= 0")
        self.ctx = ctx
        self.seed = ctx.seed
        self.schedule = schedule
        self.timeline = Timeline(records)
        self._set_records(records)
        self.key = seed_key(ctx.seed, ctx.registry_id, self.entity)

    def _set_records(self, records: int) -> None:
        self.records = records

    # --- Ordering (what the store needs) ---------------------------------------------------

    def updated_at(self, i: int) -> int:
        return self.timeline.updated_at(i)

    def first_index_updated_since(self, epoch_seconds: int) -> int:
        return self.timeline.first_index_updated_since(epoch_seconds)

    # --- Kinds -----------------------------------------------------------------------------

    def kind(self, i: int) -> str | None:
        return self.schedule.kind(i)

    def kind_counts(self) -> dict[str, int]:
        return self.schedule.counts(self.records)

    def target(self, i: int) -> tuple[int, int]:
        """For a re-sent or deleted record ``i``: (index it repeats, version it carries).

        The nearest clean record before ``i``; each envelope kind in between bumps the version.
        A record with no clean one before it repeats itself (its first version was never sent).
        """
        version = 2
        j = i - 1
        kind = self.schedule.kind
        while j >= 0:
            k = kind(j)
            if k is None:
                return j, version
            if k in ENVELOPE_KINDS:
                version += 1
            j -= 1
        return i, version

    def changeable(self, i: int) -> bool:
        """Clean and not repeated by a later re-sent/deleted record: the overlay may change it."""
        kind = self.schedule.kind
        if kind(i) is not None:
            return False
        j = i + 1
        while j < self.records:
            k = kind(j)
            if k is None:
                return True
            if k in ENVELOPE_KINDS:
                return False
            j += 1
        return True

    def changeable_count(self) -> int:
        return self._changeable_count

    @cached_property
    def _changeable_count(self) -> int:
        kind = self.schedule.kind
        dirty = self.schedule.dirty_indices(self.records)
        targets = {
            self.target(i)[0] for i in dirty if kind(i) in ENVELOPE_KINDS
        }  # a record repeating itself is dirty, so it is not counted twice
        clean = self.records - len(dirty)
        return clean - len({j for j in targets if kind(j) is None})

    # --- Records ---------------------------------------------------------------------------

    def record(self, i: int) -> dict[str, Any]:
        ppm = self.schedule.total_ppm
        if (i + 1) * ppm // PPM == i * ppm // PPM:  # clean: the common case, tested inline
            return self.build(i, mix(self.key ^ (i * GOLDEN64 & MASK64)), None)
        kind = self.schedule.kind(i)
        if kind in ENVELOPE_KINDS:
            j, version = self.target(i)
            record = self.build(j, index_hash(self.key, j), None)
            record["version"] = version
            record["updated_at"] = format_timestamp(self.updated_at(i))
            record["deleted"] = kind == "deleted"
            return record
        h = index_hash(self.key, i)
        record = self.build(i, h, kind)
        self.spoil(record, kind, h)
        return record

    def build(self, i: int, h: int, kind: str | None) -> dict[str, Any]:
        """Clean record ``i`` (hash bits ``h``), version 1; ``kind`` is the dirt to come."""
        raise NotImplementedError

    def spoil(self, record: dict[str, Any], kind: str, h: int) -> None:
        if kind.endswith("_text"):
            apply_text_dirt(record, self.text_fields, kind)
        elif kind == "mst_check_digit":
            record[self.mst_field] = wrong_check_digit(record[self.mst_field], h >> 3)
        elif kind == "date_out_of_range":
            record[self.date_field] = out_of_range_date(record[self.date_field], h >> 5)
        elif kind == "amount_wrong_unit":
            record[self.amount_field] = in_vnd(record[self.amount_field])
        else:
            self.spoil_other(record, kind, h)

    def spoil_other(self, record: dict[str, Any], kind: str, h: int) -> None:
        raise ValueError(f"{self.entity} cannot carry {kind}")

    def envelope(self, record_id: str, i: int) -> dict[str, Any]:
        """The fields every record starts with (version 1: unchanged since loaded)."""
        return {
            "id": record_id,
            "version": 1,
            "updated_at": format_timestamp(self.updated_at(i)),
            "deleted": False,
        }
