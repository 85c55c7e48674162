"""The HTTP plumbing shared by the JSON API clients (registry, exchange).

:class:`JsonApiClient` sends a request through the retrying session of :mod:`connectors.http`
(transport retries: connection errors, timeouts, 429 and 5xx), reads the body in one go, and
retries at the application level with full-jitter backoff when a 2xx body is unusable but may
be fine next time (truncated or invalid JSON, an HTML page from a proxy, a connection cut or
stalled mid-body). It maps final statuses to the errors of :mod:`connectors.errors` and keeps
every message free of the secrets it was told about. Auth, pagination and body shapes belong
to the subclasses.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

import orjson
import requests
from urllib3.exceptions import DecodeError, HTTPError, ProtocolError, ReadTimeoutError

from connectors.errors import (
    ConnectorError,
    ContractError,
    SourceAuthError,
    SourceResponseError,
    SourceUnavailableError,
)
from connectors.http import RETRY_STATUSES, body_excerpt, build_session, redact, redact_url

T = TypeVar("T")


@dataclass(frozen=True, slots=True, repr=False)
class Reply:
    """The parts of an HTTP response a client looks at, with the body fully read."""

    status: int
    content_type: str
    body: bytes

    def __repr__(self) -> str:
        return f"Reply(status={self.status}, content_type={self.content_type!r})"


class UnusableBody(Exception):
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


class JsonApiClient:
    """Base of a JSON API client: one retrying keep-alive session, not thread-safe.

    Use as a context manager (or call :meth:`close`) so the keep-alive connection is released.
    ``session`` may be injected (then the caller closes it). ``sleep`` drives the
    application-level retry waits only; urllib3's transport retries always sleep for real.
    ``secrets`` are scrubbed from every error message; add tokens to ``self._secrets`` as they
    are issued.
    """

    _log: ClassVar[logging.Logger] = logging.getLogger(__name__)  # subclasses log as themselves

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_attempts: int,
        backoff_base: float,
        backoff_max: float,
        session: requests.Session | None,
        sleep: Callable[[float], None] = time.sleep,
        secrets: Iterable[str] = (),
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self._timeout = (connect_timeout, read_timeout)
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._owns_http = session is None
        self._http = session or build_session(
            max_attempts=max_attempts, backoff_base=backoff_base, backoff_max=backoff_max
        )
        # Everything to scrub from error excerpts, including tokens that have since expired.
        self._secrets: set[str] = set(secrets)

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
        if self._owns_http:
            self._http.close()

    # ----------------------------------------------------------------------------- transport

    def _send(self, method: str, url: str, **kwargs: Any) -> Reply:
        """One request through the retrying session, with the body read in full."""
        try:
            # stream=True, then one read of the body: requests' .content would assemble it
            # from 10 KiB chunks, which costs as much time as parsing the JSON.
            response = self._http.request(method, url, timeout=self._timeout, stream=True, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise SourceUnavailableError(
                f"{method} {redact_url(url)} failed after up to {self._max_attempts} attempts: "
                f"{type(exc).__name__}: {shorten(redact(str(exc), self._secrets), 300)}"
            ) from exc
        content_type = response.headers.get("Content-Type", "")
        with response:  # returns the connection to the pool even if the read fails
            try:
                body = response.raw.read(decode_content=True)
            except ReadTimeoutError:
                raise UnusableBody(
                    "timed out while reading the body",
                    content_type,
                    final_error=SourceUnavailableError,
                ) from None
            except (ProtocolError, DecodeError) as exc:
                raise UnusableBody(
                    f"the body was cut short or undecodable ({type(exc).__name__})", content_type
                ) from None
            except HTTPError as exc:  # e.g. a TLS failure mid-body
                raise SourceUnavailableError(
                    f"{method} {redact_url(url)} failed while reading the body: "
                    f"{type(exc).__name__}: {shorten(str(exc), 300)}"
                ) from exc
        return Reply(response.status_code, content_type, body)

    def _with_body_retries(self, fetch: Callable[[], T], *, url: str, what: str) -> T:
        """Call ``fetch`` until it returns a usable body, at most ``max_attempts`` times."""
        for attempt in range(1, self._max_attempts + 1):
            try:
                return fetch()
            except UnusableBody as unusable:
                if attempt == self._max_attempts:
                    raise unusable.final_error(
                        f"{what} from {redact_url(url)} is unusable: {unusable.reason} "
                        f"(after {attempt} attempts); content type "
                        f"{unusable.content_type or '(none)'!r}; body starts {unusable.excerpt!r}"
                    ) from None
                # Full jitter: anywhere between 0 and the exponential cap.
                cap = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
                delay = random.uniform(0, cap)  # noqa: S311 -- jitter, not cryptography
                self._log.warning(
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

    def _parse_json(self, reply: Reply) -> Any:
        """The parsed body; an HTML page or broken JSON raises UnusableBody (worth a retry)."""
        if not reply.content_type.lower().startswith("application/json"):
            raise UnusableBody(
                "the content type is not application/json",
                reply.content_type,
                body_excerpt(reply.body, self._secrets),
            )
        try:
            return orjson.loads(reply.body)
        except orjson.JSONDecodeError as exc:
            raise UnusableBody(
                f"invalid JSON in a {len(reply.body)}-byte body ({exc})",
                reply.content_type,
                body_excerpt(reply.body, self._secrets),
            ) from None

    def _error_for_status(self, reply: Reply, what: str, url: str) -> ConnectorError:
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

    def _problem_fields(self, reply: Reply) -> tuple[str | None, str | None]:
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

    def _problem_summary(self, reply: Reply) -> str:
        title, detail = self._problem_fields(reply)
        if title or detail:
            return ": ".join(part for part in (title, detail) if part)
        return body_excerpt(reply.body, self._secrets) or "(empty body)"

    def _describe_bad_body(self, what: str, url: str, problem: str, reply: Reply) -> str:
        return (
            f"{what} from {redact_url(url)} is unusable: {problem}; content type "
            f"{reply.content_type or '(none)'!r}; "
            f"body starts {body_excerpt(reply.body, self._secrets)!r}"
        )


def shorten(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis if it was longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bound_in(moment: datetime, zone: tzinfo, name: str) -> datetime:
    """The extraction bound ``name`` (an aware datetime) in ``zone``, to format for a request.

    ``datetime.min`` or ``datetime.max`` (from the beginning, nothing yet) can leave the years
    a datetime holds once converted: such a bound is clamped to the edge in ``zone``. That moves
    it by hours within year 1 or 9999, where no record is.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
    try:
        return moment.astimezone(zone)
    except OverflowError:
        edge = datetime.min if moment.year == 1 else datetime.max
        return edge.replace(tzinfo=zone)
