"""What an operator may ask a backfill for, checked before anything runs.

A backfill re-extracts the records of one registry or exchange entity updated in a range of
days (Vietnam time, both days included) and lands, gates and publishes them as one batch,
without moving the entity's live cursor (`connectors.landing.Window`). The ops__backfill DAG
and `python -m local backfill` both check their arguments here, so a bad request fails with
the same clear error before anything is extracted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from connectors.catalogue import Source
from connectors.landing import Window

BACKFILL_DAG_ID = "ops__backfill"
BACKFILL_SYSTEMS = ("registry", "exchange")  # the systems whose API takes a date range
VN_TZ = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh, no daylight saving time


class BackfillRequestError(ValueError):
    """A backfill that cannot be run as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class BackfillRequest:
    source: Source
    entity: str
    date_from: date
    date_to: date

    @property
    def window(self) -> Window:
        """[date_from 00:00, the day after date_to 00:00) in Vietnam time."""
        start = datetime.combine(self.date_from, time(0), tzinfo=VN_TZ)
        end = datetime.combine(self.date_to + timedelta(days=1), time(0), tzinfo=VN_TZ)
        return Window(start, end)

    def params(self) -> dict[str, str]:
        """The request as the DAG's Params (and its run conf)."""
        return {
            "source_id": self.source.id,
            "entity": self.entity,
            "date_from": self.date_from.isoformat(),
            "date_to": self.date_to.isoformat(),
        }


def backfill_request(
    sources: Iterable[Source], source_id: str, entity: str, date_from: Any, date_to: Any
) -> BackfillRequest:
    """The request, checked against the catalogue; BackfillRequestError says what is wrong."""
    by_id = {source.id: source for source in sources}
    source = by_id.get(source_id)
    if source is None:
        raise BackfillRequestError(
            f"unknown source {source_id!r}; the catalogue has {', '.join(sorted(by_id))}"
        )
    if source.system not in BACKFILL_SYSTEMS:
        raise BackfillRequestError(
            f"{source_id} is a {source.system.replace('_', ' ')} ({source.contract}): its files"
            " are landed once each as they arrive and have no date range to backfill; only"
            f" registry and exchange API sources can be backfilled ({_api_sources(by_id)})"
        )
    if entity not in source.entities:
        raise BackfillRequestError(
            f"{source_id} has no entity {entity!r}; its entities are {', '.join(source.entities)}"
        )
    first, last = _day("date_from", date_from), _day("date_to", date_to)
    if first > last:
        raise BackfillRequestError(f"date_from {first} is after date_to {last}")
    request = BackfillRequest(source, entity, first, last)
    if request.window.start > datetime.now(VN_TZ):
        raise BackfillRequestError(f"date_from {first} is in the future: nothing to backfill")
    return request


def _day(name: str, value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise BackfillRequestError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None


def _api_sources(by_id: dict[str, Source]) -> str:
    return ", ".join(sorted(i for i, s in by_id.items() if s.system in BACKFILL_SYSTEMS))
