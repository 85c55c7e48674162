"""Client for the provincial STI registry API v1 (contract: connectors/contracts/README.md).

``RegistryClient.iter_pages`` pulls one entity page by page: it gets an OAuth2
client-credentials token, follows the keyset cursor until it is null, and maps every failure
to an error from :mod:`connectors.errors`. It is a generator holding one parsed page at a time,
so memory does not grow with the size of the extraction.

Retries happen at two levels:

- transport (urllib3, see :mod:`connectors.http`): connection errors, timeouts, 429 and 5xx,
  honouring ``Retry-After``;
- application (here): a 2xx whose body is unusable -- truncated or invalid JSON, an HTML page
  from a proxy, a connection cut or stalled mid-body -- is requested again with full-jitter
  backoff. Valid JSON of the wrong shape is not retried: asking again will not change it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import orjson
import requests
from urllib3.exceptions import DecodeError, HTTPError, ProtocolError, ReadTimeoutError

from connectors.errors import (
    ConnectorError,
    ContractError,
    RepeatedCursorError,
    SourceAuthError,
    SourceResponseError,
    SourceUnavailableError,
)
from connectors.http import RETRY_STATUSES, body_excerpt, build_session, redact, redact_url

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/token"  # noqa: S105 -- a URL path, not a password
MAX_PAGE_SIZE = 10_000  # the contract's upper bound for `limit`

# Refresh a token this long before it expires: 30 s, or 10% of its lifetime if that is less.
REFRESH_MARGIN_MAX_SECONDS = 30.0
REFRESH_MARGIN_FRACTION = 0.10

T = TypeVar("T")


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


@dataclass(frozen=True, slots=True, repr=False)
class _Reply:
    """The parts of an HTTP response the client looks at, with the body fully read."""

    status: int
    content_type: str
    body: bytes

    def __repr__(self) -> str:
        return f"_Reply(status={self.status}, content_type={self.content_type!r})"


class _UnusableBody(Exception):
    """A body that could not be used but may be fine next time (proxy page, cut connection).

    ``final_error`` is what to raise once the attempts run out.
    """

    def __init__(
        self,
        reason: str,
        content_type: str = "",
        excerpt: str = "",
        final_error: type[ConnectorError] = SourceResponseError,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.content_type = content_type
        self.excerpt = excerpt
        self.final_error = final_error


class RegistryClient:
    """Extracts entities from one provincial STI registry. Not thread-safe; one per task.

    Use as a context manager (or call :meth:`close`) so the keep-alive connection is released.
    ``session`` may be injected (then the caller closes it). ``sleep`` and ``clock`` are hooks
    for tests: they drive the application-level retry waits and the token expiry check only;
    urllib3's transport retries always sleep for real.
    """

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
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self._base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._page_size = page_size
        self._timeout = (connect_timeout, read_timeout)
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._clock = clock
        self._owns_session = session is None
        self._session = session or build_session(
            max_attempts=max_attempts, backoff_base=backoff_base, backoff_max=backoff_max
        )
        self._token: _AccessToken | None = None
        # Everything to scrub from error excerpts, including tokens that have since expired.
        self._secrets: set[str] = {client_secret}

    def __repr__(self) -> str:
        return (
            f"RegistryClient(base_url={redact_url(self._base_url)!r}, "
            f"client_id={self._client_id!r})"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool (only if this client created the session)."""
        if self._owns_session:
            self._session.close()

    # ----------------------------------------------------------------------------- pages

    def iter_pages(self, entity: str, updated_since: datetime | None = None) -> Iterator[Page]:
        """Yield the pages of ``entity`` updated at or after ``updated_since``, in source order.

        ``updated_since`` must be timezone-aware; it is sent in UTC on the first request only,
        since the cursor carries the filter from then on.
        """
        params: dict[str, str | int] = {"limit": self._page_size}
        if updated_since is not None:
            params["updated_since"] = format_rfc3339(updated_since)
        url = f"{self._base_url}/v1/{quote(entity, safe='')}"
        # Arguments are checked here, eagerly; the requests start on the first next().
        return self._pages(entity, url, params)

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
                    f"{what} from {redact_url(url)} returned next_cursor {_shorten(cursor)!r}, "
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

    def _get_with_token(self, url: str, params: dict[str, str | int], what: str) -> _Reply:
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

    def _oauth_error(self, reply: _Reply) -> str:
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

    # ----------------------------------------------------------------------------- transport

    def _send(self, method: str, url: str, **kwargs: Any) -> _Reply:
        """One request through the retrying session, with the body read in full."""
        try:
            # stream=True, then a single read of the body: requests' .content would assemble
            # it from 10 KiB chunks, which costs as much time as parsing the JSON.
            response = self._session.request(
                method, url, timeout=self._timeout, stream=True, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise SourceUnavailableError(
                f"{method} {redact_url(url)} failed after up to {self._max_attempts} attempts: "
                f"{type(exc).__name__}: {_shorten(str(exc), 300)}"
            ) from exc
        content_type = response.headers.get("Content-Type", "")
        with response:  # returns the connection to the pool even if the read fails
            try:
                body = response.raw.read(decode_content=True)
            except ReadTimeoutError:
                raise _UnusableBody(
                    "timed out while reading the body",
                    content_type,
                    final_error=SourceUnavailableError,
                ) from None
            except (ProtocolError, DecodeError) as exc:
                raise _UnusableBody(
                    f"the body was cut short or undecodable ({type(exc).__name__})", content_type
                ) from None
            except HTTPError as exc:  # e.g. a TLS failure mid-body
                raise SourceUnavailableError(
                    f"{method} {redact_url(url)} failed while reading the body: "
                    f"{type(exc).__name__}: {_shorten(str(exc), 300)}"
                ) from exc
        return _Reply(response.status_code, content_type, body)

    def _with_body_retries(self, fetch: Callable[[], T], *, url: str, what: str) -> T:
        """Call ``fetch`` until it returns a usable body, at most ``max_attempts`` times."""
        for attempt in range(1, self._max_attempts + 1):
            try:
                return fetch()
            except _UnusableBody as unusable:
                if attempt == self._max_attempts:
                    raise unusable.final_error(
                        f"{what} from {redact_url(url)} is unusable: {unusable.reason} "
                        f"(after {attempt} attempts); content type "
                        f"{unusable.content_type or '(none)'!r}; body starts {unusable.excerpt!r}"
                    ) from None
                # Full jitter: anywhere between 0 and the exponential cap.
                cap = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
                delay = random.uniform(0, cap)  # noqa: S311 -- jitter, not cryptography
                log.warning(
                    "%s from %s unusable (%s); retrying in %.2f s (attempt %d of %d)",
                    what,
                    redact_url(url),
                    unusable.reason,
                    delay,
                    attempt + 1,
                    self._max_attempts,
                )
                self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    # ----------------------------------------------------------------------------- bodies

    def _parse_json(self, reply: _Reply) -> Any:
        """The parsed body; an HTML page or broken JSON raises _UnusableBody (worth a retry)."""
        if not reply.content_type.lower().startswith("application/json"):
            raise _UnusableBody(
                "the content type is not application/json",
                reply.content_type,
                body_excerpt(reply.body, self._secrets),
            )
        try:
            return orjson.loads(reply.body)
        except orjson.JSONDecodeError as exc:
            raise _UnusableBody(
                f"invalid JSON in a {len(reply.body)}-byte body ({exc})",
                reply.content_type,
                body_excerpt(reply.body, self._secrets),
            ) from None

    def _error_for_status(self, reply: _Reply, what: str, url: str) -> ConnectorError:
        """Map a final non-2xx status (transport retries already spent) to our errors."""
        summary = self._problem_summary(reply)
        where = f"{what} from {redact_url(url)}"
        if reply.status in RETRY_STATUSES or reply.status >= 500:
            return SourceUnavailableError(
                f"{where}: HTTP {reply.status} after up to {self._max_attempts} attempts: {summary}"
            )
        if reply.status in (401, 403):
            return SourceAuthError(f"{where}: HTTP {reply.status}: {summary}")
        title, detail = self._problem_fields(reply)
        return ContractError(
            f"{where} was rejected with HTTP {reply.status}: {summary}", reply.status, title, detail
        )

    def _problem_fields(self, reply: _Reply) -> tuple[str | None, str | None]:
        """(title, detail) of an RFC 9457 problem-details body, scrubbed; Nones if absent."""
        if "json" not in reply.content_type.lower():
            return None, None
        try:
            body = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            return None, None
        if not isinstance(body, dict):
            return None, None
        title, detail = body.get("title"), body.get("detail")
        return (
            redact(title, self._secrets)[:200] if isinstance(title, str) else None,
            redact(detail, self._secrets)[:500] if isinstance(detail, str) else None,
        )

    def _problem_summary(self, reply: _Reply) -> str:
        title, detail = self._problem_fields(reply)
        if title or detail:
            return ": ".join(part for part in (title, detail) if part)
        return body_excerpt(reply.body, self._secrets) or "(empty body)"

    def _describe_bad_body(self, what: str, url: str, problem: str, reply: _Reply) -> str:
        return (
            f"{what} from {redact_url(url)} is unusable: {problem}; content type "
            f"{reply.content_type or '(none)'!r}; "
            f"body starts {body_excerpt(reply.body, self._secrets)!r}"
        )


def _envelope_problem(envelope: Any) -> str | None:
    """What is wrong with the shape of a page body, or None. Records are not inspected."""
    if not isinstance(envelope, dict):
        return f"expected a JSON object, got {type(envelope).__name__}"
    if not isinstance(envelope.get("data"), list):
        return "the envelope has no 'data' list"
    cursor = envelope.get("next_cursor")
    if cursor is not None and (not isinstance(cursor, str) or not cursor):
        return f"next_cursor must be a non-empty string or null, got {_shorten(repr(cursor))}"
    if cursor is None and envelope.get("has_more") is True:
        # Stopping here would silently drop the rest of the records.
        return "has_more is true but next_cursor is null"
    return None


def format_rfc3339(moment: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC with a ``Z`` suffix, e.g. 2024-03-05T08:15:00Z."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("updated_since must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
