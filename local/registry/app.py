"""HTTP layer of the stand-in provincial STI registry (API v1, see connectors/contracts/).

One process serves one registry at the root (the single-registry mode, ``create_app``) or
several, each under ``/r/<registry_id>`` with its own credentials, data, tokens and faults
(``create_multi_app``). Paths below are relative to a registry's base.

Contract endpoints (documented in ``registry_api_v1.openapi.yaml``):

- ``POST /oauth/token`` — OAuth2 client credentials (form body or HTTP Basic, not both: RFC
  6749 §2.3); errors in the RFC 6749 §5.2 JSON shape, as the contract says; a body over
  :data:`MAX_TOKEN_BODY` bytes is refused with 413 without reading it all.
- ``GET /v1/{entity}`` — keyset-paginated records (``updated_since``, ``cursor``, ``limit``) of
  every entity of :data:`~local.registry.entities.ENTITY_PATHS` (``st-tasks``, ``ip-rights``, …).
- ``GET /healthz`` (also at the server root).

Stand-in-only endpoints (not part of the contract; no auth, answered to loopback clients only):

- ``POST /_standin/changes`` with ``{"update": n, "delete": m, "entity": "ip_right"}`` (entity
  by landing name or path, default ``st_task``) — bumps the version and ``updated_at`` of ``n``
  clean, never-changed records and marks ``m`` others deleted; they move to the end of the
  ordering. Answers ``{"updated": [ids], "deleted": [ids]}`` (409 when not enough remain).
- ``GET /_standin/stats`` — what a full extraction returns now: ``{"records", "bad",
  "changes"}`` of the S&T tasks (as ever) and ``"entities": {entity: {"records", "bad",
  "dirt": {kind: count}, "changes"}}`` for every entity; ``"events"``: the change events sent
  (``{"subscription", "delivered", "pending", "refused", "retries", "last_error"}``), null
  when the registry sends none.
- ``POST /_standin/faults`` with ``{"status": 503, "count": 2, "retry_after": 1}`` — the next
  ``count`` ``GET /v1/...`` requests answer ``status`` (429 or 503) with ``Retry-After``.

Change events: a registry whose settings name an event intake (``events``) sends one signed
CloudEvent per record ``POST /_standin/changes`` changed, from a background thread
(:mod:`local.registry.events`); without one it sends none.

Every other error is ``application/problem+json`` (RFC 9457); over-long targets, trailing
slashes and ``instance`` as in :mod:`local.standin_http`. Handlers are ``async`` on purpose:
they all run on the event loop thread, so the token store, the fault counter and the change
overlay need no locks.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import secrets
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote_plus

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from local.registry.data import bad_share_ppm
from local.registry.entities import ENTITY_OF_PATH, ENTITY_PATHS
from local.registry.events import EventSender, EventSettings, last_changes
from local.registry.profiles import load_profiles
from local.registry.registries import RegistryData
from local.standin_http import (
    application,
    client_credentials_form,
    instance_of,
    is_count,
    is_loopback,
    json_object_body,
    json_response,
    mount,
    problem_response,
)
from local.standin_http import oauth_error as standin_oauth_error

ENTITIES = tuple(ENTITY_PATHS.values())
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
MAX_TOKEN_BODY = 16 * 1024  # bytes; a token request is a few hundred
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'  # noqa: S105 (a header, not a secret)


@dataclass(frozen=True)
class RegistrySettings:
    """One registry. Without a profile: the single-registry mode (``records`` S&T tasks with
    ``seed`` and ``bad_share``, the other entities at the demo sizes). With a profile: registry
    ``registry_id`` of that profile (``records`` and ``bad_share`` come from the profile; ``seed``
    overrides the profile's when given)."""

    records: int = 500
    seed: int | None = 42
    bad_share: float = 0.05
    token_ttl: int = 3600  # seconds
    client_id: str = "sti-pipeline-local"
    client_secret: str = field(default="", repr=False)
    profile: str | None = None
    registry_id: str = "ninh_binh"
    events: EventSettings | None = None  # where to send change events; None: send none

    def data(self) -> RegistryData:
        if self.profile is None:
            seed = 42 if self.seed is None else self.seed
            return RegistryData.single(self.records, seed, self.bad_share)
        profile = load_profiles().profile(self.profile)
        if self.seed is not None:
            profile = replace(profile, seed=self.seed)
        return RegistryData.for_profile(profile, self.registry_id)

    def cursor_material(self) -> str:
        if self.profile is None:
            return f"{self.seed}:{self.records}:{bad_share_ppm(self.bad_share)}"
        return f"{self.profile}:{self.registry_id}:{self.seed}"


# --- Responses ------------------------------------------------------------------------------


def problem(
    status: int, detail: str, request: Request, headers: dict[str, str] | None = None
) -> Response:
    """An RFC 9457 problem; ``about:blank`` type, so the title is the status phrase."""
    return problem_response(status, detail, instance_of(request.scope), headers)


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    return standin_oauth_error(error, description, status, basic_realm="sti-registry")


class BadRequest(Exception):
    """A query parameter is invalid; becomes a 400 problem."""


# --- Cursor ---------------------------------------------------------------------------------
# Layout: version byte, last seq, last updated_at, has-filter flag, updated_since, then an
# 8-byte MAC. The MAC key comes from the settings (not a random secret) so that two servers with
# the same settings hand out identical cursors and pages; it detects tampering, not snooping.

_CURSOR_LAYOUT = struct.Struct(">BqqBq")
_CURSOR_VERSION = 1
_MAC_SIZE = 8


@dataclass(frozen=True)
class Cursor:
    after_seq: int
    after_updated_at: int  # epoch seconds
    updated_since: int | None  # epoch seconds, the filter the traversal started with


class CursorCodec:
    """Cursors of one registry; the MAC covers the entity, so a cursor of one entity (or of
    another registry) is refused elsewhere."""

    def __init__(self, settings: RegistrySettings) -> None:
        material = settings.cursor_material()
        self._key = hashlib.blake2b(material.encode(), person=b"standin-cursor").digest()

    def _mac(self, entity: str, payload: bytes) -> bytes:
        return hmac.new(self._key, entity.encode() + payload, hashlib.sha256).digest()[:_MAC_SIZE]

    def encode(self, cursor: Cursor, entity: str) -> str:
        since = cursor.updated_since
        payload = _CURSOR_LAYOUT.pack(
            _CURSOR_VERSION,
            cursor.after_seq,
            cursor.after_updated_at,
            since is not None,
            0 if since is None else since,
        )
        return base64.urlsafe_b64encode(payload + self._mac(entity, payload)).rstrip(b"=").decode()

    def decode(self, text: str, entity: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise BadRequest("cursor is not valid base64url") from None
        if len(raw) != _CURSOR_LAYOUT.size + _MAC_SIZE:
            raise BadRequest("cursor has the wrong length")
        payload, mac = raw[: _CURSOR_LAYOUT.size], raw[_CURSOR_LAYOUT.size :]
        if not hmac.compare_digest(mac, self._mac(entity, payload)):
            raise BadRequest("cursor was not issued by this registry or was altered")
        version, after_seq, after_updated_at, has_since, since = _CURSOR_LAYOUT.unpack(payload)
        if version != _CURSOR_VERSION or after_seq < 0:
            raise BadRequest("cursor is not understood by this registry")
        return Cursor(after_seq, after_updated_at, since if has_since else None)


# --- Query parameters -----------------------------------------------------------------------

_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def parse_updated_since(text: str) -> int:
    """RFC 3339 date-time -> the smallest whole epoch second at or after it.

    Served timestamps are whole seconds, so ``updated_at >= since`` is the same as
    ``updated_at >= ceil(since)``.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise BadRequest("updated_since must be an RFC 3339 date-time, e.g. 2024-03-05T08:15:00Z")
    date, clock, fraction, offset = match.groups()
    fraction = (fraction or "")[:6].ljust(6, "0")
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        moment = dt.datetime.fromisoformat(f"{date}T{clock}.{fraction}{offset}")
    except ValueError:
        raise BadRequest("updated_since is not a valid date-time") from None
    microseconds = (moment - _EPOCH) // dt.timedelta(microseconds=1)
    return -(-microseconds // 1_000_000)


def parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


# --- The application ------------------------------------------------------------------------


class RegistryService:
    """State of one running stand-in: data, issued tokens, pending faults."""

    def __init__(self, settings: RegistrySettings) -> None:
        if not settings.client_secret:
            raise ValueError("a client secret is required")
        self.settings = settings
        self.data = settings.data()
        self.cursors = CursorCodec(settings)
        self._tokens: dict[str, float] = {}  # access token -> expiry (monotonic seconds)
        self._fault: tuple[int, int, int] | None = None  # (status, remaining, retry_after)
        self.events = None if settings.events is None else EventSender(settings.events)

    # Contract endpoints

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def issue_token(self, request: Request) -> Response:
        params = await client_credentials_form(request, MAX_TOKEN_BODY)
        if isinstance(params, Response):
            return params

        authorization = request.headers.get("authorization", "")
        if authorization.partition(" ")[0].lower() == "basic" and "client_secret" in params:
            detail = "use one client authentication method: HTTP Basic or the form, not both"
            return oauth_error("invalid_request", detail)  # RFC 6749 §2.3
        basic = _basic_credentials(authorization)
        if basic is not None:
            if params.get("client_id", basic[0]) != basic[0]:
                return oauth_error("invalid_request", "client_id differs from the Basic user")
            client_id, client_secret = basic
        else:
            client_id, client_secret = params.get("client_id"), params.get("client_secret")
        if not self._client_is_valid(client_id, client_secret):
            return oauth_error("invalid_client", "client authentication failed", 401)

        now = time.monotonic()
        self._tokens = {token: expiry for token, expiry in self._tokens.items() if expiry > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = now + self.settings.token_ttl
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.settings.token_ttl,
        }
        return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def list_records(self, request: Request) -> Response:
        if self._fault is not None:
            status, remaining, retry_after = self._fault
            self._fault = (status, remaining - 1, retry_after) if remaining > 1 else None
            detail = "injected fault: try again later"
            return problem(status, detail, request, {"Retry-After": str(retry_after)})
        if not self._token_is_valid(request.headers.get("authorization", "")):
            detail = "a valid, unexpired bearer token is required"
            return problem(401, detail, request, {"WWW-Authenticate": INVALID_TOKEN_CHALLENGE})
        path = request.path_params["entity"]
        entity = ENTITY_OF_PATH.get(path)
        if entity is None:
            return problem(404, f"unknown entity {path!r}; known: {', '.join(ENTITIES)}", request)
        try:
            return self._page_response(request, entity)
        except BadRequest as error:
            return problem(400, str(error), request)

    def _page_response(self, request: Request, entity: str) -> Response:
        query = request.query_params
        limit = parse_limit(query.get("limit"))
        since_text = query.get("updated_since")
        since = None if since_text is None else parse_updated_since(since_text)
        after_seq = None
        if "cursor" in query:
            cursor = self.cursors.decode(query["cursor"], entity)
            if since_text is not None and since != cursor.updated_since:
                raise BadRequest("updated_since disagrees with the filter carried by the cursor")
            since, after_seq = cursor.updated_since, cursor.after_seq

        page = self.data.store(entity).page(after_seq, since, limit)
        next_cursor = None
        if page.has_more:
            cursor = Cursor(page.last_seq, page.last_updated_at, since)
            next_cursor = self.cursors.encode(cursor, entity)
        body = {"data": page.records, "next_cursor": next_cursor, "has_more": page.has_more}
        return json_response(body)

    def _client_is_valid(self, client_id: str | None, client_secret: str | None) -> bool:
        if client_id is None or client_secret is None:
            return False
        # Compare both in constant time, and always both, so timing reveals nothing.
        id_ok = hmac.compare_digest(client_id.encode(), self.settings.client_id.encode())
        secret_ok = hmac.compare_digest(
            client_secret.encode(), self.settings.client_secret.encode()
        )
        return id_ok and secret_ok

    def _token_is_valid(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        expiry = self._tokens.get(token.strip())
        if expiry is None:
            return False
        if expiry <= time.monotonic():
            del self._tokens[token.strip()]
            return False
        return True

    # Stand-in-only endpoints

    async def post_changes(self, request: Request) -> Response:
        body = await _admin_json(request)
        if isinstance(body, Response):
            return body
        update, delete = body.get("update", 0), body.get("delete", 0)
        name = body.get("entity", "st_task")
        entity = ENTITY_OF_PATH.get(name, name) if isinstance(name, str) else None
        if (
            not is_count(update)
            or not is_count(delete)
            or set(body) - {"update", "delete", "entity"}
            or entity not in ENTITY_PATHS
        ):
            detail = 'body must be {"update": n, "delete": m, "entity": e}, n, m >= 0'
            return problem(400, detail, request)
        store = self.data.store(entity)
        try:
            updated, deleted = store.apply_changes(update, delete)
        except ValueError as error:
            return problem(409, str(error), request)
        if self.events is not None:
            self.events.publish(last_changes(store, entity, len(updated) + len(deleted)))
        return json_response({"updated": updated, "deleted": deleted})

    async def get_stats(self, request: Request) -> Response:
        if not is_loopback(request):
            return problem(403, "stand-in endpoints answer loopback clients only", request)
        events = None if self.events is None else self.events.stats()
        return json_response({**self.data.stats(), "events": events})

    async def post_faults(self, request: Request) -> Response:
        body = await _admin_json(request)
        if isinstance(body, Response):
            return body
        status, count = body.get("status"), body.get("count", 1)
        retry_after = body.get("retry_after", 1)
        if status not in (429, 503) or not is_count(count) or not is_count(retry_after):
            detail = 'body must be {"status": 429|503, "count": n >= 0, "retry_after": s >= 0}'
            return problem(400, detail, request)
        self._fault = (status, count, retry_after) if count > 0 else None
        return json_response({"status": status, "count": count, "retry_after": retry_after})

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/oauth/token", self.issue_token, methods=["POST"]),
            Route("/v1/{entity}", self.list_records, methods=["GET"]),
            Route("/_standin/changes", self.post_changes, methods=["POST"]),
            Route("/_standin/stats", self.get_stats, methods=["GET"]),
            Route("/_standin/faults", self.post_faults, methods=["POST"]),
        ]


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, exc.detail, request, exc.headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    # Starlette logs the traceback; the client gets no internals.
    return problem(500, "the stand-in registry failed; see its log", request)


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    """client_id and secret from an HTTP Basic header (form-encoded first, RFC 6749 §2.3.1)."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon:
        return None
    return unquote_plus(user), unquote_plus(password)


async def _admin_json(request: Request) -> dict[str, Any] | Response:
    """The JSON object body of a stand-in endpoint, or the problem to answer instead."""
    if not is_loopback(request):
        return problem(403, "stand-in endpoints answer loopback clients only", request)
    body = await json_object_body(request)
    return problem(400, "body must be a JSON object", request) if body is None else body


_HANDLERS = {HTTPException: http_error, Exception: internal_error}


def create_app(settings: RegistrySettings) -> Starlette:
    """One stand-in registry at the root, as an ASGI app."""
    service = RegistryService(settings)
    return _stopping_senders(application(service.routes(), _HANDLERS), [service])


def create_multi_app(registries: dict[str, RegistrySettings]) -> Starlette:
    """Several registries, each under ``/r/<registry_id>``, plus ``/healthz`` at the root."""
    routes: list[Route | Mount] = [Route("/healthz", healthz, methods=["GET"])]
    services = [RegistryService(settings) for settings in registries.values()]
    for registry_id, service in zip(registries, services, strict=True):
        routes.append(mount(f"/r/{registry_id}", service.routes()))
    return _stopping_senders(application(routes, _HANDLERS), services)


def _stopping_senders(app: Starlette, services: list[RegistryService]) -> Starlette:
    """The app, stopping the services' event senders when the server shuts down."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            senders = [service.events for service in services if service.events is not None]
            for sender in senders:
                sender.stop()
            for sender in senders:
                sender.close()

    app.router.lifespan_context = lifespan
    return app
