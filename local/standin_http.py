"""HTTP helpers the stand-in servers share for their stand-in-only (admin) endpoints."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


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
