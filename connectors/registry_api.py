"""Client for the provincial STI registry API v1 (contract: connectors/contracts/README.md).

``RegistryClient.iter_pages`` pulls one entity page by page: it gets an OAuth2
client-credentials token, follows the keyset cursor until it is null, and maps every failure
to an error from :mod:`connectors.errors`. It is a generator holding one parsed page at a time,
so memory does not grow with the size of the extraction.

Retries happen at two levels:

- transport (urllib3, see :mod:`connectors.http`): connection errors, timeouts, 429 and 5xx,
  honouring ``Retry-After``;
- application (:mod:`connectors.api_client`): a 2xx whose body is unusable -- truncated or
  invalid JSON, an HTML page from a proxy, a connection cut or stalled mid-body -- is
  requested again with full-jitter backoff. Valid JSON of the wrong shape is not retried:
  asking again will not change it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import orjson
import requests

from connectors.api_client import JsonApiClient, Reply, bound_in, shorten
from connectors.errors import RepeatedCursorError, SourceAuthError, SourceResponseError
from connectors.http import body_excerpt, redact, redact_url

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/token"  # noqa: S105 -- a URL path, not a password
MAX_PAGE_SIZE = 10_000  # the contract's upper bound for `limit`

# Landing entity name -> its resource path under /v1 (contracts/registry_api_v1.openapi.yaml).
ENTITY_PATHS = {
    "st_task": "st-tasks",
    "result_application": "result-applications",
    "ip_right": "ip-rights",
    "organisation": "organisations",
    "expert": "experts",
    "technology": "technologies",
    "technology_demand": "technology-demands",
    "innovation_project": "innovation-projects",
    "innovation_survey": "innovation-surveys",
    "capability_assessment": "capability-assessments",
}

# Refresh a token this long before it expires: 30 s, or 10% of its lifetime if that is less.
REFRESH_MARGIN_MAX_SECONDS = 30.0
REFRESH_MARGIN_FRACTION = 0.10


@dataclass(frozen=True, slots=True, repr=False)
class Page:
    """One page of an extraction, exactly as the source sent it."""

    records: list[dict[str, Any]]  # parsed with orjson from the response body
    next_cursor: str | None
    number: int  # 1-based page number within this extraction

    def __repr__(self) -> str:
        # Never dump thousands of records into a log line or a traceback.
        return (
            f"Page(number={self.number}, records={len(self.records)}, "
            f"next_cursor={self.next_cursor!r})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class _AccessToken:
    value: str
    refresh_at: float  # on the client's monotonic clock

    def __repr__(self) -> str:
        return f"_AccessToken(refresh_at={self.refresh_at:.1f})"


class RegistryClient(JsonApiClient):
    """Extracts entities from one provincial STI registry. Not thread-safe; one per task.

    Use as a context manager (or call :meth:`close`) so the keep-alive connection is released.
    ``session`` may be injected (then the caller closes it). ``sleep`` and ``clock`` are hooks
    for tests: they drive the application-level retry waits and the token expiry check only;
    urllib3's transport retries always sleep for real.
    """

    _log = log

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        page_size: int = 5000,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        super().__init__(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            session=session,
            sleep=sleep,
            secrets=(client_secret,),
        )
        self._base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._page_size = page_size
        self._clock = clock
        self._token: _AccessToken | None = None

    def __repr__(self) -> str:
        return (
            f"RegistryClient(base_url={redact_url(self._base_url)!r}, "
            f"client_id={self._client_id!r})"
        )

    # ----------------------------------------------------------------------------- pages

    def iter_pages(
        self,
        entity: str,
        updated_since: datetime | None = None,
        updated_before: datetime | None = None,
    ) -> Iterator[Page]:
        """Yield the pages of ``entity`` updated at or after ``updated_since``, in source order.

        ``updated_since`` must be timezone-aware; it is sent in UTC on the first request only,
        since the cursor carries the filter from then on. The API has no upper bound: with
        ``updated_before`` (a bounded window, e.g. a backfill) the extraction stops at the
        first record updated at or after it, which the contract's order (ascending
        ``updated_at``) makes the end of the window; that record and the rest are not yielded.
        """
        params: dict[str, str | int] = {"limit": self._page_size}
        if updated_since is not None:
            params["updated_since"] = format_rfc3339(updated_since)
        url = f"{self._base_url}/v1/{quote(entity, safe='')}"
        # Arguments are checked here, eagerly; the requests start on the first next().
        pages = self._pages(entity, url, params)
        if updated_before is None:
            return pages
        return _stop_before(pages, bound_in(updated_before, UTC, "updated_before"))

    def _pages(self, entity: str, url: str, params: dict[str, str | int]) -> Iterator[Page]:
        seen_cursors: set[str] = set()
        number = 1
        total = 0
        while True:
            what = f"{entity} page {number}"
            envelope = self._with_body_retries(
                partial(self._fetch_page_once, url, params, what), url=url, what=what
            )
            page = Page(envelope["data"], envelope.get("next_cursor"), number)
            del envelope
            cursor = page.next_cursor
            # Check before yielding: a repeated cursor means this page may be a duplicate too.
            if cursor is not None and cursor in seen_cursors:
                raise RepeatedCursorError(
                    f"{what} from {redact_url(url)} returned next_cursor {shorten(cursor)!r}, "
                    f"which was already followed earlier in this extraction; stopping instead "
                    f"of looping"
                )
            total += len(page.records)
            last = "" if cursor else ", last page"
            log.info("%s: %d records (%d so far)%s", what, len(page.records), total, last)
            yield page
            del page  # hold one page at a time, not two, while the next one downloads
            if cursor is None:
                return
            seen_cursors.add(cursor)
            params = {"cursor": cursor, "limit": self._page_size}
            number += 1

    def _fetch_page_once(self, url: str, params: dict[str, str | int], what: str) -> dict[str, Any]:
        reply = self._get_with_token(url, params, what)
        if not 200 <= reply.status < 300:
            raise self._error_for_status(reply, what, url)
        envelope = self._parse_json(reply)
        problem = _envelope_problem(envelope)
        if problem is not None:
            raise SourceResponseError(self._describe_bad_body(what, url, problem, reply))
        return envelope

    def _get_with_token(self, url: str, params: dict[str, str | int], what: str) -> Reply:
        """GET with the bearer token; on a 401, refresh the token once and repeat the GET."""
        reply = self._send("GET", url, params=params, headers=self._auth_headers())
        if reply.status != 401:
            return reply
        log.info("%s: access token rejected (401); fetching a new one and retrying once", what)
        self._token = None
        reply = self._send("GET", url, params=params, headers=self._auth_headers())
        if reply.status == 401:
            raise SourceAuthError(
                f"{what} from {redact_url(url)} was still refused (401) after a token refresh: "
                f"{self._problem_summary(reply)}"
            )
        return reply

    # ----------------------------------------------------------------------------- token

    def _auth_headers(self) -> dict[str, str]:
        token = self._token
        if token is None or self._clock() >= token.refresh_at:
            token = self._token = self._with_body_retries(
                self._fetch_token_once, url=self._token_url, what="token response"
            )
        return {"Authorization": f"Bearer {token.value}", "Accept": "application/json"}

    @property
    def _token_url(self) -> str:
        return self._base_url + TOKEN_PATH

    def _fetch_token_once(self) -> _AccessToken:
        requested_at = self._clock()
        url = self._token_url
        log.info("requesting an access token for client_id %r", self._client_id)
        reply = self._send(
            "POST",
            url,
            data={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
            headers={"Accept": "application/json"},
        )
        if reply.status in (400, 401):
            raise SourceAuthError(
                f"token endpoint {redact_url(url)} refused the credentials of client_id "
                f"{self._client_id!r} (HTTP {reply.status}): {self._oauth_error(reply)}"
            )
        if not 200 <= reply.status < 300:
            raise self._error_for_status(reply, "token request", url)
        body = self._parse_json(reply)
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise SourceResponseError(
                self._describe_bad_body(
                    "token response", url, "no access_token string in the body", reply
                )
            )
        self._secrets.add(value)
        expires_in = body.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            margin = min(REFRESH_MARGIN_MAX_SECONDS, REFRESH_MARGIN_FRACTION * expires_in)
            refresh_at = requested_at + expires_in - margin
            log.info("got an access token valid for %s s", expires_in)
        else:
            # No usable lifetime: keep the token until the source answers 401.
            refresh_at = float("inf")
            log.info("got an access token without a usable expires_in; refreshing on 401 only")
        return _AccessToken(value, refresh_at)

    def _oauth_error(self, reply: Reply) -> str:
        """'error: error_description' from an RFC 6749 §5.2 body, scrubbed of secrets."""
        try:
            body = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            description = body.get("error_description")
            text = body["error"] + (f": {description}" if isinstance(description, str) else "")
            return redact(text, self._secrets)[:300]
        return body_excerpt(reply.body, self._secrets)


def _stop_before(pages: Iterator[Page], before: datetime) -> Iterator[Page]:
    """``pages`` up to the first record updated at or after ``before``, which ends the window
    (records come in ascending ``updated_at``): the page holding it is cut there and no further
    page is requested. A record whose ``updated_at`` cannot be read does not end the window."""
    try:
        for page in pages:
            for index, record in enumerate(page.records):
                updated_at = _updated_at(record)
                if updated_at is not None and updated_at >= before:
                    log.info(
                        "page %d: the window ends before its record %d; no further page is read",
                        page.number,
                        index + 1,
                    )
                    yield Page(page.records[:index], None, page.number)
                    return
            yield page
    finally:
        pages.close()


def _updated_at(record: object) -> datetime | None:
    value = record.get("updated_at") if isinstance(record, dict) else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _envelope_problem(envelope: Any) -> str | None:
    """What is wrong with the shape of a page body, or None. Records are not inspected."""
    if not isinstance(envelope, dict):
        return f"expected a JSON object, got {type(envelope).__name__}"
    if not isinstance(envelope.get("data"), list):
        return "the envelope has no 'data' list"
    cursor = envelope.get("next_cursor")
    if cursor is not None and (not isinstance(cursor, str) or not cursor):
        return f"next_cursor must be a non-empty string or null, got {shorten(repr(cursor))}"
    if cursor is None and envelope.get("has_more") is True:
        # Stopping here would silently drop the rest of the records.
        return "has_more is true but next_cursor is null"
    return None


def format_rfc3339(moment: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC with a ``Z`` suffix, e.g. 2024-03-05T08:15:00Z."""
    # isoformat, not strftime: %Y does not pad years below 1000 (datetime.min -> "1-01-01").
    return bound_in(moment, UTC, "updated_since").replace(tzinfo=None).isoformat() + "Z"
