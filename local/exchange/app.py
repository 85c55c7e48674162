"""HTTP layer of the stand-in technology exchanges (exchange API v1, see connectors/contracts/).

Each exchange is served under its own prefix, ``/{exchange_id}``, which is part of its base URL.
Contract endpoints (documented in ``exchange_api_v1.openapi.yaml``), relative to the base URL:

- ``POST /api/auth/login`` with ``X-Api-Key`` — a session token valid ``expires_in`` seconds.
- ``GET /api/v1/listings`` and ``GET /api/v1/transactions`` with ``X-Session-Token`` —
  page-number pagination over the window [``modified_from``, ``modified_to``]; a
  ``modified_to`` after the exchange's clock is clamped to it.
- ``GET /api/health``.

Stand-in-only endpoints (not in the contract; no auth, answered to loopback clients only):

- ``POST /_standin/faults``: queue faults for the next data requests, first in first out:
  ``{"kind": "status", "status": 429|503, "count": n, "retry_after": s}``,
  ``{"kind": "html", "count": n}`` (a proxy's HTML page with status 200),
  ``{"kind": "truncated_json", "count": n}`` (the page's JSON cut in half, status 200),
  ``{"kind": "repeat_page", "count": n}`` (page p >= 2 answered with the items of page p - 1);
  or act at once: ``{"kind": "expire_sessions"}``, ``{"kind": "revoke_api_key"}``,
  ``{"kind": "restore_api_key"}``, ``{"kind": "clear"}`` (drop queued faults).
- ``POST /_standin/changes`` with ``{"entity": "listing"|"transaction", "update": n,
  "withdraw": m}``: revise n and withdraw (listing) / cancel (transaction) m plain, unchanged
  records; they move to the end of the order with ``phien_ban`` + 1. Answers their ids.
- ``POST /_standin/drift`` with ``{"entity": e, "action": "add", "field": f, "value": v}``,
  ``{"entity": e, "action": "remove", "field": f}``, ``{"entity": e, "action": "retype",
  "field": f, "to": "string"|"number"|"array"|"object"}`` or ``{"entity": e, "action":
  "reset"}``: change the shape of every record of ``e`` served from now on.
- ``GET /_standin/stats``: counts of what a full extraction returns, by kind (see data.py).

Errors are ``application/problem+json`` (RFC 9457) with a ``code`` extension member;
over-long targets, trailing slashes and ``instance`` as in :mod:`local.standin_http`. Handlers
are ``async`` on purpose: they run on the event loop thread, so state needs no locks.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from connectors.exchange_api import ENTITY_PATHS  # the contract's paths, one definition
from local.exchange import api_key_for
from local.exchange.data import (
    DEFAULT_SPECIAL_SHARE,
    EXCHANGES,
    RETYPE_TARGETS,
    Drift,
    ExchangeData,
    apply_drifts,
    draw_enterprises,
    format_iso,
)
from local.standin_http import (
    application,
    instance_of,
    is_count,
    is_loopback,
    json_object_body,
    json_response,
    mount,
    problem_response,
)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 5000
MAX_PAGE = 1_000_000_000
HTML_ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
    b"<h1>502 Bad Gateway</h1><p>The upstream server did not answer in time.</p>"
    b"<hr><address>nginx</address></body></html>"
)


@dataclass(frozen=True)
class ExchangeSpec:
    exchange_id: str
    listings: int = 500
    transactions: int = 200


@dataclass(frozen=True)
class StandinSettings:
    exchanges: tuple[ExchangeSpec, ...]
    seed: int = 42
    special_share: float = DEFAULT_SPECIAL_SHARE
    session_ttl: int = 1800  # seconds
    secret: str = field(default="", repr=False)


# --- Responses ------------------------------------------------------------------------------


def problem(
    status: int, code: str, detail: str, request: Request, headers: dict[str, str] | None = None
) -> Response:
    """An RFC 9457 problem; ``about:blank`` type, with the machine-readable ``code``."""
    return problem_response(status, detail, instance_of(request.scope), headers, code=code)


class BadRequest(Exception):
    """A query parameter is invalid; becomes a 400 problem."""


# --- Query parameters -----------------------------------------------------------------------

_VN_DATETIME = re.compile(r"(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2})")
# A "+" left unencoded in a query string arrives as a space: accept it as the "+" it was.
_ISO_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+\- ]\d{2}:\d{2})"
)
_VN_TZ = dt.timezone(dt.timedelta(hours=7))
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def parse_instant(name: str, text: str, *, round_up: bool) -> int:
    """``dd/mm/yyyy HH:MM:SS`` (Vietnam time) or ISO 8601 with an offset → epoch seconds.

    Records carry whole seconds, so an inclusive lower bound rounds up and an inclusive upper
    bound rounds down without changing which records match.
    """
    try:
        if match := _VN_DATETIME.fullmatch(text):
            day, month, year, hour, minute, second = map(int, match.groups())
            moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=_VN_TZ)
            return int(moment.timestamp())
        if match := _ISO_DATETIME.fullmatch(text):
            date, clock, fraction, offset = match.groups()
            if offset in ("Z", "z"):
                offset = "+00:00"
            elif offset[0] == " ":
                offset = "+" + offset[1:]
            fraction = (fraction or "")[:6].ljust(6, "0")
            moment = dt.datetime.fromisoformat(f"{date}T{clock}.{fraction}{offset}")
            microseconds = (moment - _EPOCH) // dt.timedelta(microseconds=1)
            whole, rest = divmod(microseconds, 1_000_000)
            return whole + (1 if round_up and rest else 0)
    except ValueError:
        raise BadRequest(f"{name} is not a valid date and time: {text!r}") from None
    raise BadRequest(
        f"{name} must be 'dd/mm/yyyy HH:MM:SS' (Vietnam time) or ISO 8601 with an offset,"
        f" e.g. 2024-03-05T15:15:00+07:00; got {text!r}"
    )


def parse_count(name: str, text: str | None, default: int, maximum: int) -> int:
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= maximum:
        raise BadRequest(f"{name} must be an integer from 1 to {maximum}; got {text!r}")
    return int(text)


# --- One exchange ---------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str  # status | html | truncated_json | repeat_page
    remaining: int
    status: int = 0
    retry_after: int = 0


class ExchangeService:
    """State of one served exchange: data, sessions, pending faults, drift."""

    def __init__(self, data: ExchangeData, api_key: str, session_ttl: int) -> None:
        self.data = data
        self._api_key = api_key
        self._key_revoked = False
        self._session_ttl = session_ttl
        self._sessions: dict[str, float] = {}  # token -> expiry (monotonic seconds)
        self._faults: deque[Fault] = deque()
        self._drifts: dict[str, list[Drift]] = {entity: [] for entity in ENTITY_PATHS}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/health", self.health, methods=["GET"]),
            Route("/api/auth/login", self.login, methods=["POST"]),
            Route(ENTITY_PATHS["listing"], self.list_listings, methods=["GET"]),
            Route(ENTITY_PATHS["transaction"], self.list_transactions, methods=["GET"]),
            Route("/_standin/faults", self.post_faults, methods=["POST"]),
            Route("/_standin/changes", self.post_changes, methods=["POST"]),
            Route("/_standin/drift", self.post_drift, methods=["POST"]),
            Route("/_standin/stats", self.get_stats, methods=["GET"]),
        ]

    # Contract endpoints

    async def health(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def login(self, request: Request) -> Response:
        key = request.headers.get("x-api-key")
        if not key:
            return problem(401, "api_key_missing", "the X-Api-Key header is required", request)
        # Constant-time comparison, and a revoked key fails the same way as a wrong one.
        valid = hmac.compare_digest(key.encode(), self._api_key.encode())
        if not valid or self._key_revoked:
            return problem(401, "api_key_invalid", "the API key is not valid", request)
        now = time.monotonic()
        self._sessions = {t: expiry for t, expiry in self._sessions.items() if expiry > now}
        token = secrets.token_urlsafe(32)
        self._sessions[token] = now + self._session_ttl
        body = {"session_token": token, "token_type": "Session", "expires_in": self._session_ttl}
        return json_response(body, headers={"Cache-Control": "no-store"})

    async def list_listings(self, request: Request) -> Response:
        return self._list(request, "listing")

    async def list_transactions(self, request: Request) -> Response:
        return self._list(request, "transaction")

    def _list(self, request: Request, entity: str) -> Response:
        fault = self._faults[0] if self._faults else None
        if fault is not None and fault.kind == "status":
            self._consume(fault)
            detail = "injected fault: try again later"
            code = "rate_limited" if fault.status == 429 else "unavailable"
            headers = {"Retry-After": str(fault.retry_after)}
            return problem(fault.status, code, detail, request, headers)
        if fault is not None and fault.kind == "html":
            self._consume(fault)  # a proxy answers before the exchange sees the request
            return Response(HTML_ERROR_PAGE, 200, media_type="text/html")
        if not self._session_is_valid(request.headers.get("x-session-token")):
            detail = "a valid, unexpired session token is required in X-Session-Token"
            return problem(401, "session_invalid", detail, request)
        try:
            body = self._page_body(request, entity, fault)
        except BadRequest as error:
            return problem(400, "bad_parameter", str(error), request)
        if fault is not None and fault.kind == "truncated_json":
            self._consume(fault)
            body = body[: len(body) // 2]
        return Response(body, media_type="application/json")

    def _page_body(self, request: Request, entity: str, fault: Fault | None) -> bytes:
        query = request.query_params
        page = parse_count("page", query.get("page"), 1, MAX_PAGE)
        size = parse_count("page_size", query.get("page_size"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        since = until = None
        if (text := query.get("modified_from")) is not None:
            since = parse_instant("modified_from", text, round_up=True)
        if (text := query.get("modified_to")) is not None:
            until = parse_instant("modified_to", text, round_up=False)
        # The window closes now at the latest: later changes tick the clock past it. A future
        # bound is clamped (and the clamped one echoed), or the window would never close.
        now = self.data.clock.now
        until = now if until is None else min(until, now)
        store = self.data.stores[entity]
        window = store.window(since, until)
        total = window.total
        served = page
        if fault is not None and fault.kind == "repeat_page" and page >= 2:
            self._consume(fault)
            served = page - 1
        offset = (served - 1) * size
        items = store.page(window, offset, size) if offset < total else []
        if self._drifts[entity]:
            apply_drifts(items, self._drifts[entity])
        return orjson.dumps(
            {
                "items": items,
                "page": page,
                "page_size": size,
                "total_items": total,
                "total_pages": -(-total // size),
                "modified_to": format_iso(until),
            }
        )

    def _consume(self, fault: Fault) -> None:
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._faults.popleft()

    def _session_is_valid(self, token: str | None) -> bool:
        if not token:
            return False
        expiry = self._sessions.get(token)
        if expiry is None:
            return False
        if expiry <= time.monotonic():
            del self._sessions[token]
            return False
        return True

    # Stand-in-only endpoints

    async def post_faults(self, request: Request) -> Response:
        body = await _admin_json(request)
        if isinstance(body, Response):
            return body
        kind = body.get("kind", "status" if "status" in body else None)
        count = body.get("count", 1)
        if kind in ("expire_sessions", "revoke_api_key", "restore_api_key", "clear"):
            if kind == "expire_sessions":
                self._sessions.clear()
            elif kind == "clear":
                self._faults.clear()
            else:
                self._key_revoked = kind == "revoke_api_key"
        elif kind == "status":
            status, retry_after = body.get("status"), body.get("retry_after", 1)
            if status not in (429, 503) or not is_count(count) or not is_count(retry_after):
                detail = 'body must be {"status": 429|503, "count": n >= 1, "retry_after": s >= 0}'
                return problem(400, "bad_admin_request", detail, request)
            if count:
                self._faults.append(Fault("status", count, status, retry_after))
        elif kind in ("html", "truncated_json", "repeat_page") and is_count(count):
            if count:
                self._faults.append(Fault(kind, count))
        else:
            detail = f"unknown fault {body!r}; see the stand-in's documentation"
            return problem(400, "bad_admin_request", detail, request)
        return json_response({"kind": kind, "queued": len(self._faults)})

    async def post_changes(self, request: Request) -> Response:
        body = await _admin_json(request)
        if isinstance(body, Response):
            return body
        entity = body.get("entity")
        update, withdraw = body.get("update", 0), body.get("withdraw", 0)
        if (
            entity not in ENTITY_PATHS
            or not is_count(update)
            or not is_count(withdraw)
            or set(body) - {"entity", "update", "withdraw"}
        ):
            detail = 'body must be {"entity": "listing"|"transaction", "update": n, "withdraw": m}'
            return problem(400, "bad_admin_request", detail, request)
        try:
            updated, withdrawn = self.data.stores[entity].apply_changes(update, withdraw)
        except ValueError as error:
            return problem(409, "not_enough_records", str(error), request)
        return json_response({"updated": updated, "withdrawn": withdrawn})

    async def post_drift(self, request: Request) -> Response:
        body = await _admin_json(request)
        if isinstance(body, Response):
            return body
        entity, action, name = body.get("entity"), body.get("action"), body.get("field")
        to = body.get("to")
        valid = entity in ENTITY_PATHS and (
            action == "reset"
            or (action in ("add", "remove") and isinstance(name, str) and name)
            or (action == "retype" and isinstance(name, str) and to in RETYPE_TARGETS)
        )
        if not valid:
            detail = (
                'body must be {"entity": e, "action": "add"|"remove"|"retype"|"reset", "field": f,'
                f' "value": v (add), "to": one of {list(RETYPE_TARGETS)} (retype)}}'
            )
            return problem(400, "bad_admin_request", detail, request)
        drifts = self._drifts[entity]
        if action == "reset":
            drifts.clear()
        else:
            drifts.append(Drift(action, name, body.get("value"), to))
        listed = [{"action": d.action, "field": d.field} for d in drifts]
        return json_response({"entity": entity, "drifts": listed})

    async def get_stats(self, request: Request) -> Response:
        if not is_loopback(request):
            return problem(403, "forbidden", "stand-in endpoints answer loopback only", request)
        return json_response({**self.data.stats(), "faults_queued": len(self._faults)})


async def _admin_json(request: Request) -> dict[str, Any] | Response:
    """The JSON object body of a stand-in endpoint, or the problem to answer instead."""
    if not is_loopback(request):
        return problem(403, "forbidden", "stand-in endpoints answer loopback only", request)
    body = await json_object_body(request)
    return (
        problem(400, "bad_admin_request", "body must be a JSON object", request)
        if body is None
        else body
    )


# --- The application ------------------------------------------------------------------------


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = "not_found" if exc.status_code == 404 else "http_error"
    return problem(exc.status_code, code, exc.detail, request, exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Starlette logs the traceback; the client gets no internals.
    return problem(500, "internal_error", "the stand-in exchange failed; see its log", request)


def create_app(settings: StandinSettings) -> Starlette:
    """The stand-in exchanges as one ASGI app, each under ``/{exchange_id}``."""
    if not settings.secret:
        raise ValueError("a secret is required (API keys are derived from it)")
    if not settings.exchanges:
        raise ValueError("at least one exchange is required")
    ids = [spec.exchange_id for spec in settings.exchanges]
    if len(set(ids)) != len(ids):
        raise ValueError(f"an exchange is listed twice: {ids}")
    enterprises = draw_enterprises(settings.seed)  # shared: the same firms on every exchange
    routes: list[BaseRoute] = []
    for spec in settings.exchanges:
        if spec.exchange_id not in EXCHANGES:
            raise ValueError(f"unknown exchange {spec.exchange_id!r}; known: {list(EXCHANGES)}")
        data = ExchangeData(
            EXCHANGES[spec.exchange_id],
            listings=spec.listings,
            transactions=spec.transactions,
            seed=settings.seed,
            special_share=settings.special_share,
            enterprises=enterprises,
        )
        service = ExchangeService(
            data, api_key_for(settings.secret, spec.exchange_id), settings.session_ttl
        )
        routes.append(mount(f"/{spec.exchange_id}", service.routes()))
    handlers = {HTTPException: _http_error, Exception: _internal_error}
    return application(routes, handlers, code="uri_too_long")
