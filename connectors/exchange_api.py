"""Client for technology exchange API v1 (contract: connectors/contracts/README.md).

``ExchangeClient.iter_pages`` pulls one entity (``listing`` or ``transaction``) page by page:
it logs in with the API key for a session token, reads the window of records modified in
[``modified_since``, ``modified_to``] by page number, and maps every failure to an error from
:mod:`connectors.errors`. It is a generator holding one parsed page at a time.

Page numbers over a changing dataset can skip or repeat records; the client stays correct so:

- The window is closed at the start: the first request omits ``modified_to``, the exchange
  fixes it (its last complete second) and echoes it, and every later request passes it back.
  Records written during the run fall after it and wait for the next run.
- ``total_items`` is checked on every page. A record modified during the run leaves the
  window, so the total goes *down* and later pages shift back by one: the client then resumes
  from the last record it yielded (``modified_from`` = its ``ngay_cap_nhat``, page 1, dropping
  what sorts at or before it by (``ngay_cap_nhat``, id)), which skips and repeats nothing.
  A total going *up* means the exchange did not keep the window closed: nothing can be
  guaranteed, so the run fails (:class:`InconsistentPagesError`).
- A page that repeats the previous page's ids (:class:`RepeatedPageError`), pages that
  overlap or go backwards in the order, a page with a different number of items than the
  totals imply, or an echoed ``modified_to`` or ``page_size`` that changes mid-run also fail
  the run, loudly, instead of landing a silently incomplete batch.

Retries happen at two levels, as for the registry client: transport (urllib3, see
:mod:`connectors.http`: connection errors, timeouts, 429 and 5xx, honouring ``Retry-After``)
and application (here: a 2xx whose body is unusable -- truncated JSON, an HTML page from a
proxy, a connection cut mid-body -- is requested again with full-jitter backoff). A 401 on a
data request means the session expired: the client logs in again and repeats the request once.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import requests

from connectors.api_client import JsonApiClient, Reply, bound_in, shorten
from connectors.errors import RepeatedCursorError, SourceAuthError, SourceResponseError
from connectors.http import redact_url

log = logging.getLogger(__name__)

LOGIN_PATH = "/api/auth/login"
ENTITY_PATHS = {"listing": "/api/v1/listings", "transaction": "/api/v1/transactions"}
# (id field, deletion flag) of each entity: what the landing's envelope is made of.
ENVELOPE_FIELDS = {"listing": ("ma_tin", "da_go"), "transaction": ("ma_giao_dich", "da_huy")}
MAX_PAGE_SIZE = 5000  # the contract's upper bound for page_size
VN_TZ = timezone(timedelta(hours=7))  # exchanges write local time, UTC+07:00

# Refresh a session this long before it expires: 30 s, or 10% of its lifetime if that is less.
REFRESH_MARGIN_MAX_SECONDS = 30.0
REFRESH_MARGIN_FRACTION = 0.10

_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1


class InconsistentPagesError(SourceResponseError):
    """The exchange's pages do not add up to one consistent traversal of the window.

    E.g. the window grew although ``modified_to`` was fixed, pages overlap, a page holds more
    or fewer items than the totals imply, or the window kept changing beyond the resumes
    allowed. Continuing could skip or duplicate records, so the run stops.
    """


class RepeatedPageError(RepeatedCursorError):
    """A page came back with exactly the ids of the previous page: the exchange ignores
    ``page`` or loops. Following it would duplicate records forever, so the run stops."""


@dataclass(frozen=True, slots=True, repr=False)
class Page:
    """One page of an extraction: the exchange's records, unmodified."""

    records: list[dict[str, Any]]  # parsed with orjson from the response body
    number: int  # 1-based count of pages yielded in this extraction
    source_page: int  # the exchange's page number (restarts at 1 after a resume)
    total_pages: int  # of the window this page belongs to
    modified_to: str  # the window's upper bound, as the exchange wrote it

    def __repr__(self) -> str:
        # Never dump thousands of records into a log line or a traceback.
        return (
            f"Page(number={self.number}, records={len(self.records)}, "
            f"source_page={self.source_page}/{self.total_pages})"
        )


# ----------------------------------------------------------------------------- envelope


# The landing parses every record's ngay_cap_nhat: days and times of day are parsed once each
# and cached (a source has a few thousand distinct days and at most 86,400 times of day), so
# the common case is two dict lookups and an addition.
_DAY = re.compile(r"(\d\d)/(\d\d)/(\d{4})", re.ASCII)
_CLOCK = re.compile(r"(\d\d):(\d\d):(\d\d)", re.ASCII)
_MAX_CACHED_DAYS = 100_000
_days: dict[str, datetime | None] = {}
_clocks: dict[str, timedelta] = {}


def parse_local_timestamp(value: object) -> datetime | None:
    """``dd/mm/yyyy HH:MM:SS`` (Vietnam time) as an aware datetime; None if malformed."""
    if type(value) is not str or len(value) != 19 or value[10] != " ":
        return None
    day = _days.get(value[:10], False)
    if day is False:
        day = _parse_day(value[:10])
    clock = _clocks.get(value[11:])
    if clock is None:
        clock = _parse_clock(value[11:])
    if day is None or clock is None:
        return None
    return day + clock


def _parse_day(text: str) -> datetime | None:
    match = _DAY.fullmatch(text)
    day = None
    if match is not None:
        with contextlib.suppress(ValueError):  # 31/02/2024 and the like stay None
            day = datetime(int(match[3]), int(match[2]), int(match[1]), tzinfo=VN_TZ)
    if len(_days) >= _MAX_CACHED_DAYS:
        _days.clear()
    _days[text] = day
    return day


def _parse_clock(text: str) -> timedelta | None:
    match = _CLOCK.fullmatch(text)
    if match is None:
        return None
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3])
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    clock = _clocks[text] = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    return clock


def exchange_envelope(
    entity: str, record: dict[str, Any]
) -> tuple[str | None, int | None, datetime | None, bool | None]:
    """(record_id, version, updated_at, deleted) of an exchange record, from its own fields.

    Listing: ``ma_tin``, ``phien_ban``, ``ngay_cap_nhat``, ``da_go``; transaction:
    ``ma_giao_dich``, ``phien_ban``, ``ngay_cap_nhat``, ``da_huy``. A malformed or missing
    value becomes None (the gate judges it); record content never raises. An unknown
    ``entity`` is a programming error (ValueError).
    """
    fields = ENVELOPE_FIELDS.get(entity)
    if fields is None:
        raise ValueError(f"unknown exchange entity {entity!r}; known: {list(ENVELOPE_FIELDS)}")
    if type(record) is not dict:
        return None, None, None, None
    id_field, deleted_field = fields
    record_id = record.get(id_field)
    if type(record_id) is int:
        record_id = str(record_id)
    elif type(record_id) is not str or not record_id:
        record_id = None
    version = record.get("phien_ban")
    if type(version) is not int or not _BIGINT_MIN <= version <= _BIGINT_MAX:
        version = None
    deleted = record.get(deleted_field)
    if type(deleted) is not bool:
        deleted = None
    return record_id, version, parse_local_timestamp(record.get("ngay_cap_nhat")), deleted


def format_instant(moment: datetime) -> str:
    """An aware datetime as ISO 8601 in Vietnam time, whole seconds (rounded down).

    Rounding a lower bound down widens an inclusive window by less than a second: records
    already landed come again and are skipped as duplicates; none is missed.
    """
    return bound_in(moment, VN_TZ, "modified_since").replace(microsecond=0).isoformat()


def _parse_instant(text: object) -> datetime | None:
    """An echoed bound (ISO 8601 with an offset, or the local format) as an aware datetime."""
    if type(text) is not str:
        return None
    local = parse_local_timestamp(text)
    if local is not None:
        return local
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _sort_key(record: object, id_field: str) -> tuple[str, str] | None:
    """(yyyymmddHHMMSS, id): the contract's order, comparable as strings; None if unreadable."""
    if type(record) is not dict:
        return None
    stamp, record_id = record.get("ngay_cap_nhat"), record.get(id_field)
    if type(record_id) is not str or parse_local_timestamp(stamp) is None:
        return None
    sortable = stamp[6:10] + stamp[3:5] + stamp[0:2] + stamp[11:13] + stamp[14:16] + stamp[17:19]
    return sortable, record_id


def _key_instant(key: tuple[str, str]) -> str:
    """The ``ngay_cap_nhat`` of a sort key as an ISO 8601 bound."""
    s = key[0]
    return f"{s[0:4]}-{s[4:6]}-{s[6:8]}T{s[8:10]}:{s[10:12]}:{s[12:14]}+07:00"


# ----------------------------------------------------------------------------- transport types


@dataclass(frozen=True, slots=True, repr=False)
class _SessionToken:
    value: str
    refresh_at: float  # on the client's monotonic clock

    def __repr__(self) -> str:
        return f"_SessionToken(refresh_at={self.refresh_at:.1f})"


@dataclass(frozen=True, slots=True)
class _Envelope:
    """A page body whose shape has been checked."""

    items: list[Any]
    page: int
    page_size: int
    total_items: int
    total_pages: int
    modified_to: str
    modified_to_instant: datetime


# ----------------------------------------------------------------------------- the client


class ExchangeClient(JsonApiClient):
    """Extracts listings and transactions from one technology exchange. Not thread-safe.

    Use as a context manager (or call :meth:`close`) so the keep-alive connection is released.
    ``session`` may be injected (then the caller closes it). ``sleep`` and ``clock`` are hooks
    for tests: they drive the application-level retry waits and the session expiry check only;
    urllib3's transport retries always sleep for real.
    """

    _log = log

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        page_size: int = 2000,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_resumes: int = 20,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        if not api_key:
            raise ValueError("an API key is required")
        super().__init__(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            session=session,
            sleep=sleep,
            secrets=(api_key,),
        )
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._page_size = page_size
        self._max_resumes = max_resumes
        self._clock = clock
        self._session_token: _SessionToken | None = None

    def __repr__(self) -> str:
        return f"ExchangeClient(base_url={redact_url(self._base_url)!r})"

    # ----------------------------------------------------------------------------- pages

    def iter_pages(
        self,
        entity: str,
        modified_since: datetime | None = None,
        modified_before: datetime | None = None,
    ) -> Iterator[Page]:
        """Yield the pages of ``entity`` modified at or after ``modified_since``, in order.

        ``modified_since`` must be timezone-aware. With ``modified_before`` (a bounded window,
        e.g. a backfill) the window is closed there from the first request (``modified_to``,
        inclusive, is its last whole second before it) instead of at the exchange's clock.
        Arguments are checked here, eagerly; the requests start on the first ``next()``.
        """
        path = ENTITY_PATHS.get(entity)
        if path is None:
            raise ValueError(f"unknown exchange entity {entity!r}; known: {list(ENTITY_PATHS)}")
        since = None if modified_since is None else format_instant(modified_since)
        until = (
            None
            if modified_before is None
            else format_instant(modified_before - timedelta(microseconds=1))
        )
        return self._pages(entity, self._base_url + path, since, until)

    def _pages(
        self, entity: str, url: str, modified_from: str | None, modified_to: str | None = None
    ) -> Iterator[Page]:
        id_field = ENVELOPE_FIELDS[entity][0]
        page_size = self._page_size
        first_page: _Envelope | None = None  # its modified_to closes the window for the run
        last_key: tuple[str, str] | None = None  # of the last record yielded
        number = records = resumes = 0
        while True:  # one pass over [modified_from, modified_to]; a resume starts another
            source_page, window_total, previous_ids = 1, -1, None
            skip_through = last_key if resumes else None
            while True:
                what = f"{entity} page {source_page}" + (f" (resume {resumes})" if resumes else "")
                params: dict[str, str | int] = {"page": source_page, "page_size": page_size}
                if modified_from is not None:
                    params["modified_from"] = modified_from
                if first_page is not None:
                    params["modified_to"] = first_page.modified_to
                elif modified_to is not None:  # a bounded window: closed where asked
                    params["modified_to"] = modified_to
                page = self._with_body_retries(
                    partial(self._fetch_page_once, url, params, what), url=url, what=what
                )
                first_page = first_page or page
                _check_bound(page, first_page, what, url)
                if source_page == 1:
                    if page.page_size != page_size:
                        log.warning(
                            "%s: the exchange applies page_size %d instead of %d; using it",
                            what,
                            page.page_size,
                            page_size,
                        )
                        page_size = page.page_size
                    window_total = page.total_items
                elif _window_shrank(page, page_size, window_total, what, url):
                    break  # records left the window: resume after the last one yielded
                items = page.items
                ids = [item.get(id_field) if type(item) is dict else None for item in items]
                if ids and ids == previous_ids:
                    raise RepeatedPageError(
                        f"{what} from {redact_url(url)} repeats the {len(ids)} ids of the page "
                        f"before it ({shorten(str(ids[0]))} … {shorten(str(ids[-1]))}); the "
                        f"exchange ignores the page number or loops, so the run stops"
                    )
                self._check_count(page, source_page, page_size, what, url)
                if skip_through is not None:
                    items, skip_through = _drop_through(items, skip_through, id_field)
                if items and last_key is not None:
                    first = _sort_key(items[0], id_field)
                    if first is not None and first <= last_key:
                        raise InconsistentPagesError(
                            f"{what} from {redact_url(url)} starts at {first}, which is not after "
                            f"the last record of the page before ({last_key}): pages overlap or "
                            f"the order is not (ngay_cap_nhat, id)"
                        )
                last_key = _last_key(items, id_field) or last_key
                more = source_page < page.total_pages
                if items or number == 0:
                    number += 1
                    records += len(items)
                    log.info(
                        "%s of %d: %d records (%d so far)%s",
                        what,
                        page.total_pages,
                        len(items),
                        records,
                        "" if more else ", last page",
                    )
                    yield Page(items, number, source_page, page.total_pages, page.modified_to)
                del page, items  # hold one page at a time while the next one downloads
                if not more:
                    return
                previous_ids = ids
                source_page += 1
            resumes += 1
            if resumes > self._max_resumes:
                raise InconsistentPagesError(
                    f"{entity} from {redact_url(url)}: the window kept changing during the "
                    f"traversal ({resumes - 1} resumes); try again when the exchange is quieter"
                )
            if last_key is None:
                raise InconsistentPagesError(
                    f"{entity} from {redact_url(url)}: records left the window during the "
                    f"traversal, and no record read so far has a readable (ngay_cap_nhat, id) "
                    f"to resume from"
                )
            log.warning(
                "%s: the window lost %d records while it was read (changed at the exchange); "
                "resuming after %s",
                what,
                window_total - page.total_items,
                last_key,
            )
            modified_from = _key_instant(last_key)

    @staticmethod
    def _check_count(page: _Envelope, number: int, page_size: int, what: str, url: str) -> None:
        expected = max(0, min(page_size, page.total_items - (number - 1) * page_size))
        if len(page.items) != expected:
            raise InconsistentPagesError(
                f"{what} from {redact_url(url)} has {len(page.items)} items, but with "
                f"{page.total_items} in the window and page_size {page_size} it should have "
                f"{expected}"
            )

    def _fetch_page_once(self, url: str, params: dict[str, str | int], what: str) -> _Envelope:
        reply = self._get_with_session(url, params, what)
        if not 200 <= reply.status < 300:
            raise self._error_for_status(reply, what, url)
        body = self._parse_json(reply)
        envelope = _envelope(body, params["page"])
        if isinstance(envelope, str):
            raise SourceResponseError(self._describe_bad_body(what, url, envelope, reply))
        return envelope

    def _get_with_session(self, url: str, params: dict[str, str | int], what: str) -> Reply:
        """GET with the session token; on a 401, log in again once and repeat the GET."""
        reply = self._send("GET", url, params=params, headers=self._session_headers())
        if reply.status != 401:
            return reply
        log.info("%s: session rejected (401); logging in again and retrying once", what)
        self._session_token = None
        reply = self._send("GET", url, params=params, headers=self._session_headers())
        if reply.status == 401:
            raise SourceAuthError(
                f"{what} from {redact_url(url)} was still refused (401) after logging in "
                f"again: {self._problem_summary(reply)}"
            )
        return reply

    # ----------------------------------------------------------------------------- session

    def _session_headers(self) -> dict[str, str]:
        token = self._session_token
        if token is None or self._clock() >= token.refresh_at:
            token = self._session_token = self._with_body_retries(
                self._login_once, url=self._login_url, what="login response"
            )
        return {"X-Session-Token": token.value, "Accept": "application/json"}

    @property
    def _login_url(self) -> str:
        return self._base_url + LOGIN_PATH

    def _login_once(self) -> _SessionToken:
        requested_at = self._clock()
        url = self._login_url
        log.info("logging in to %s with the API key", redact_url(self._base_url))
        reply = self._send(
            "POST", url, headers={"X-Api-Key": self._api_key, "Accept": "application/json"}
        )
        if reply.status in (401, 403):
            raise SourceAuthError(
                f"login at {redact_url(url)} refused the API key (HTTP {reply.status}): "
                f"{self._problem_summary(reply)}"
            )
        if not 200 <= reply.status < 300:
            raise self._error_for_status(reply, "login", url)
        body = self._parse_json(reply)
        value = body.get("session_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise SourceResponseError(
                self._describe_bad_body(
                    "login response", url, "no session_token string in the body", reply
                )
            )
        self._secrets.add(value)
        expires_in = body.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            margin = min(REFRESH_MARGIN_MAX_SECONDS, REFRESH_MARGIN_FRACTION * expires_in)
            refresh_at = requested_at + expires_in - margin
            log.info("got a session valid for %s s", expires_in)
        else:
            refresh_at = float("inf")  # no usable lifetime: keep it until the exchange says 401
            log.info("got a session without a usable expires_in; logging in again on 401 only")
        return _SessionToken(value, refresh_at)


# ----------------------------------------------------------------------------- page checks


def _is_int(value: object, minimum: int) -> bool:
    return type(value) is int and value >= minimum


def _envelope(body: Any, page: object) -> _Envelope | str:
    """The checked page body, or what is wrong with its shape. Records are not inspected."""
    if not isinstance(body, dict):
        return f"expected a JSON object, got {type(body).__name__}"
    items = body.get("items")
    if not isinstance(items, list):
        return "the page has no 'items' list"
    for name, minimum in (("page", 1), ("page_size", 1), ("total_items", 0), ("total_pages", 0)):
        if not _is_int(body.get(name), minimum):
            return f"{name} must be an integer >= {minimum}, got {shorten(repr(body.get(name)))}"
    if body["page"] != page:
        return f"asked for page {page}, got page {body['page']}"
    if body["total_pages"] != -(-body["total_items"] // body["page_size"]):
        return (
            f"total_pages {body['total_pages']} does not match total_items "
            f"{body['total_items']} with page_size {body['page_size']}"
        )
    bound = _parse_instant(body.get("modified_to"))
    if bound is None:
        return f"modified_to must be a date-time, got {shorten(repr(body.get('modified_to')))}"
    return _Envelope(
        items,
        body["page"],
        body["page_size"],
        body["total_items"],
        body["total_pages"],
        body["modified_to"],
        bound,
    )


def _check_bound(page: _Envelope, first_page: _Envelope, what: str, url: str) -> None:
    """Every page must answer for the window the first page closed."""
    if page.modified_to_instant != first_page.modified_to_instant:
        raise InconsistentPagesError(
            f"{what} from {redact_url(url)} answered for modified_to {page.modified_to!r}, not "
            f"the {first_page.modified_to!r} it was sent: the exchange does not keep the window "
            f"fixed"
        )


def _window_shrank(page: _Envelope, page_size: int, window_total: int, what: str, url: str) -> bool:
    """Whether records left the window since its first page; raise if it changed otherwise."""
    if page.page_size != page_size:
        raise InconsistentPagesError(
            f"{what} from {redact_url(url)} has page_size {page.page_size}, but the traversal "
            f"started with {page_size}"
        )
    if page.total_items > window_total:
        raise InconsistentPagesError(
            f"{what} from {redact_url(url)}: the window up to {page.modified_to} grew from "
            f"{window_total} to {page.total_items} records during the traversal, although it "
            f"was closed; records could be skipped or repeated, so the run stops"
        )
    return page.total_items < window_total


def _drop_through(
    items: list[Any], through: tuple[str, str], id_field: str
) -> tuple[list[Any], tuple[str, str] | None]:
    """Drop the leading records that sort at or before ``through`` (already yielded before a
    resume). Returns the rest and, if every record was dropped, ``through`` to keep dropping
    on the next page."""
    for index, item in enumerate(items):
        key = _sort_key(item, id_field)
        if key is None or key > through:
            return items[index:] if index else items, None
    return [], through


def _last_key(items: list[Any], id_field: str) -> tuple[str, str] | None:
    """The sort key of the last record of ``items`` that has a readable one."""
    for item in reversed(items):
        key = _sort_key(item, id_field)
        if key is not None:
            return key
    return None
