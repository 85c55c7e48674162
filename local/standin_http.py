"""HTTP behaviour the stand-in servers share: problem details, request limits, routing, serving.

The contract edges both stand-ins keep the same way:

- Problem details (RFC 9457) name the request path as sent, percent-encoded, in ``instance``,
  so it is a valid URI reference (never the decoded path).
- A request target (path and query) longer than :data:`MAX_TARGET` bytes is answered ``414``
  with a problem; the server reads request heads up to :data:`MAX_REQUEST_HEAD` bytes, so the
  application sees (and answers) every over-long target below that.
- No redirect for a trailing slash (Starlette's ``redirect_slashes``, whose target comes from
  the Host header): an unknown path is a ``404`` problem.
- Bodies are read up to a limit and no further (:func:`bounded_body`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, quote

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
MAX_TARGET = 8 * 1024  # bytes of request target (path and query) the stand-ins answer
MAX_REQUEST_HEAD = 1024 * 1024  # bytes of request line and headers the server reads (h11)
_PATH_SAFE = "/!$&'()*+,;=:@-._~%"  # RFC 3986 pchar and "/", plus "%" of existing escapes
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_TITLES = {413: "Content Too Large", 414: "URI Too Long"}  # RFC 9110's names; Python's are older


def is_loopback(request: Request) -> bool:
    """Admin endpoints answer clients on this machine only."""
    return request.client is not None and request.client.host in LOOPBACK_HOSTS


def is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


async def json_object_body(request: Request) -> dict[str, Any] | None:
    """The request body if it is a JSON object, else None."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


async def bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None if it is longer than ``limit`` bytes.

    A declared Content-Length over the limit is refused before reading anything; otherwise the
    body is streamed and reading stops at the first chunk that passes the limit.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


# --- OAuth2 client credentials (RFC 6749 §4.4) ----------------------------------------------


def oauth_error(
    error: str, description: str, status: int = 400, *, basic_realm: str | None = None
) -> Response:
    """RFC 6749 §5.2 error; a 401 carries a Basic challenge when `basic_realm` is given, as
    §5.2 asks for invalid_client."""
    headers = {"Cache-Control": "no-store"}
    if status == 401 and basic_realm:
        headers["WWW-Authenticate"] = f'Basic realm="{basic_realm}"'
    return json_response({"error": error, "error_description": description}, status, headers)


async def client_credentials_form(request: Request, limit: int) -> dict[str, str] | Response:
    """A token request's form parameters (grant_type client_credentials), or the RFC 6749
    error to answer: not a form, over `limit` bytes, a repeated parameter, another grant."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return oauth_error("invalid_request", "body must be application/x-www-form-urlencoded")
    body = await bounded_body(request, limit)
    if body is None:
        return oauth_error("invalid_request", f"the body is longer than {limit} bytes", 413)
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    if any(len(values) > 1 for values in form.values()):
        return oauth_error("invalid_request", "a parameter was repeated")
    params = {name: values[0] for name, values in form.items()}
    if "grant_type" not in params:
        return oauth_error("invalid_request", "grant_type is required")
    if params["grant_type"] != "client_credentials":
        return oauth_error("unsupported_grant_type", "only client_credentials is supported")
    return params


# --- Problem details ------------------------------------------------------------------------


def instance_of(scope: Scope) -> str:
    """The request path as the client sent it, percent-encoded: a valid URI reference."""
    raw = scope.get("raw_path") or scope["path"].encode()
    return _STRAY_PERCENT.sub("%25", quote(raw, safe=_PATH_SAFE))


def problem_response(
    status: int,
    detail: str,
    instance: str | None,
    headers: Mapping[str, str] | None = None,
    **members: Any,
) -> Response:
    """An RFC 9457 problem of type ``about:blank`` (the title is the status phrase), with any
    extension ``members``; ``instance`` is left out when None."""
    title = _TITLES.get(status) or HTTPStatus(status).phrase
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance is not None:
        body["instance"] = instance
    body.update(members)
    return Response(orjson.dumps(body), status, headers, media_type="application/problem+json")


class TargetLimit:
    """ASGI middleware: a request target over :data:`MAX_TARGET` bytes gets a 414 problem
    (with the extension ``members``; no ``instance``, which would repeat the long path)."""

    def __init__(self, app: ASGIApp, **members: Any) -> None:
        self.app = app
        self.members = members

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode()
            query = scope.get("query_string", b"")
            if len(raw_path) + (len(query) + 1 if query else 0) > MAX_TARGET:
                detail = f"the request target is longer than {MAX_TARGET} bytes"
                await problem_response(414, detail, None, **self.members)(scope, receive, send)
                return
        await self.app(scope, receive, send)


# --- Applications ---------------------------------------------------------------------------


def application(
    routes: Sequence[BaseRoute], handlers: Mapping[Any, Any], **members: Any
) -> Starlette:
    """A stand-in app: the target limit (414 problems with ``members``), no slash redirects."""
    app = Starlette(
        routes=routes,
        exception_handlers=handlers,
        middleware=[Middleware(TargetLimit, **members)],
    )
    app.router.redirect_slashes = False
    return app


def mount(path: str, routes: Sequence[BaseRoute]) -> Mount:
    """Routes under a prefix, without slash redirects either."""
    return Mount(path, app=Router(routes=routes, redirect_slashes=False))


def run(app: ASGIApp, *, host: str, port: int, log_level: str) -> None:
    """Serve with uvicorn's h11 protocol, which reads request heads up to MAX_REQUEST_HEAD
    bytes (httptools refuses URLs over 64 KiB itself, with a plain-text 400)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http="h11",
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD,
    )
