"""HTTP layer of the stand-in provincial STI registry (API v1, see connectors/contracts/).

Contract endpoints (documented in ``registry_api_v1.openapi.yaml``):

- ``POST /oauth/token`` — OAuth2 client credentials (form body or HTTP Basic); errors in the
  RFC 6749 §5.2 JSON shape, as the contract says.
- ``GET /v1/{entity}`` — keyset-paginated records (``updated_since``, ``cursor``, ``limit``).
- ``GET /healthz``.

Stand-in-only endpoints (not part of the contract; no auth, answered to loopback clients only):

- ``POST /_standin/changes`` with ``{"update": n, "delete": m}`` — bumps the version and
  ``updated_at`` of ``n`` good, never-changed records and marks ``m`` others deleted; they move
  to the end of the ordering. Answers ``{"updated": [ids], "deleted": [ids]}`` (409 when not
  enough unchanged good records remain).
- ``GET /_standin/stats`` — ``{"records": N, "bad": {kind: count}, "changes": c}`` for the
  current state, i.e. what a full extraction returns.
- ``POST /_standin/faults`` with ``{"status": 503, "count": 2, "retry_after": 1}`` — the next
  ``count`` ``GET /v1/...`` requests answer ``status`` (429 or 503) with ``Retry-After``.

Every other error is ``application/problem+json`` (RFC 9457). Handlers are ``async`` on purpose:
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
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from local.registry.data import TaskGenerator, TaskRegistry, bad_share_ppm

ENTITIES = ("st-tasks",)
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'  # noqa: S105 (a header, not a secret)
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class RegistrySettings:
    records: int = 500
    seed: int = 42
    bad_share: float = 0.05
    token_ttl: int = 3600  # seconds
    client_id: str = "sti-pipeline-local"
    client_secret: str = field(default="", repr=False)


# --- Responses ------------------------------------------------------------------------------


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def problem(
    status: int, detail: str, request: Request, headers: dict[str, str] | None = None
) -> Response:
    """An RFC 9457 problem; ``about:blank`` type, so the title is the status phrase."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    return Response(orjson.dumps(body), status, headers, media_type="application/problem+json")


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    """RFC 6749 §5.2 error; 401 carries a Basic challenge as §5.2 asks for invalid_client."""
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="sti-registry"'
    return json_response({"error": error, "error_description": description}, status, headers)


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
    def __init__(self, settings: RegistrySettings) -> None:
        material = f"{settings.seed}:{settings.records}:{bad_share_ppm(settings.bad_share)}"
        self._key = hashlib.blake2b(material.encode(), person=b"standin-cursor").digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_SIZE]

    def encode(self, cursor: Cursor) -> str:
        since = cursor.updated_since
        payload = _CURSOR_LAYOUT.pack(
            _CURSOR_VERSION,
            cursor.after_seq,
            cursor.after_updated_at,
            since is not None,
            0 if since is None else since,
        )
        return base64.urlsafe_b64encode(payload + self._mac(payload)).rstrip(b"=").decode()

    def decode(self, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise BadRequest("cursor is not valid base64url") from None
        if len(raw) != _CURSOR_LAYOUT.size + _MAC_SIZE:
            raise BadRequest("cursor has the wrong length")
        payload, mac = raw[: _CURSOR_LAYOUT.size], raw[_CURSOR_LAYOUT.size :]
        if not hmac.compare_digest(mac, self._mac(payload)):
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
        self.settings = settings
        self.registry = TaskRegistry(
            TaskGenerator(settings.records, settings.seed, settings.bad_share)
        )
        self.cursors = CursorCodec(settings)
        self._tokens: dict[str, float] = {}  # access token -> expiry (monotonic seconds)
        self._fault: tuple[int, int, int] | None = None  # (status, remaining, retry_after)

    # Contract endpoints

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def issue_token(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return oauth_error("invalid_request", "body must be application/x-www-form-urlencoded")
        form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        if any(len(values) > 1 for values in form.values()):
            return oauth_error("invalid_request", "a parameter was repeated")
        params = {name: values[0] for name, values in form.items()}
        if "grant_type" not in params:
            return oauth_error("invalid_request", "grant_type is required")
        if params["grant_type"] != "client_credentials":
            return oauth_error("unsupported_grant_type", "only client_credentials is supported")

        basic = _basic_credentials(request.headers.get("authorization", ""))
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
        entity = request.path_params["entity"]
        if entity not in ENTITIES:
            return problem(404, f"unknown entity {entity!r}; known: {', '.join(ENTITIES)}", request)
        try:
            return self._page_response(request)
        except BadRequest as error:
            return problem(400, str(error), request)

    def _page_response(self, request: Request) -> Response:
        query = request.query_params
        limit = parse_limit(query.get("limit"))
        since_text = query.get("updated_since")
        since = None if since_text is None else parse_updated_since(since_text)
        after_seq = None
        if "cursor" in query:
            cursor = self.cursors.decode(query["cursor"])
            if since_text is not None and since != cursor.updated_since:
                raise BadRequest("updated_since disagrees with the filter carried by the cursor")
            since, after_seq = cursor.updated_since, cursor.after_seq

        page = self.registry.page(after_seq, since, limit)
        next_cursor = None
        if page.has_more:
            next_cursor = self.cursors.encode(Cursor(page.last_seq, page.last_updated_at, since))
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
        if not _is_count(update) or not _is_count(delete) or set(body) - {"update", "delete"}:
            return problem(400, 'body must be {"update": n, "delete": m}, n, m >= 0', request)
        try:
            updated, deleted = self.registry.apply_changes(update, delete)
        except ValueError as error:
            return problem(409, str(error), request)
        return json_response({"updated": updated, "deleted": deleted})

    async def get_stats(self, request: Request) -> Response:
        if not _is_loopback(request):
            return problem(403, "stand-in endpoints answer loopback clients only", request)
        return json_response(self.registry.stats())

    async def post_faults(self, request: Request) -> Response:
        body = await _admin_json(request)
        if isinstance(body, Response):
            return body
        status, count = body.get("status"), body.get("count", 1)
        retry_after = body.get("retry_after", 1)
        if status not in (429, 503) or not _is_count(count) or not _is_count(retry_after):
            detail = 'body must be {"status": 429|503, "count": n >= 0, "retry_after": s >= 0}'
            return problem(400, detail, request)
        self._fault = (status, count, retry_after) if count > 0 else None
        return json_response({"status": status, "count": count, "retry_after": retry_after})

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return problem(exc.status_code, exc.detail, request, exc.headers)

    async def internal_error(self, request: Request, exc: Exception) -> Response:
        # Starlette logs the traceback; the client gets no internals.
        return problem(500, "the stand-in registry failed; see its log", request)


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


def _is_loopback(request: Request) -> bool:
    return request.client is not None and request.client.host in LOOPBACK_HOSTS


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


async def _admin_json(request: Request) -> dict[str, Any] | Response:
    """The JSON object body of a stand-in endpoint, or the problem to answer instead."""
    if not _is_loopback(request):
        return problem(403, "stand-in endpoints answer loopback clients only", request)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return problem(400, "body must be a JSON object", request)
    if not isinstance(body, dict):
        return problem(400, "body must be a JSON object", request)
    return body


def create_app(settings: RegistrySettings) -> Starlette:
    """The stand-in registry as an ASGI app."""
    if not settings.client_secret:
        raise ValueError("a client secret is required")
    service = RegistryService(settings)
    routes = [
        Route("/healthz", service.healthz, methods=["GET"]),
        Route("/oauth/token", service.issue_token, methods=["POST"]),
        Route("/v1/{entity}", service.list_records, methods=["GET"]),
        Route("/_standin/changes", service.post_changes, methods=["POST"]),
        Route("/_standin/stats", service.get_stats, methods=["GET"]),
        Route("/_standin/faults", service.post_faults, methods=["POST"]),
    ]
    handlers = {HTTPException: service.http_error, Exception: service.internal_error}
    return Starlette(routes=routes, exception_handlers=handlers)
