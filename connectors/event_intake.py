"""The change-event intake: signed CloudEvents from the registries, into the durable inbox.

`POST /v1/sources/{subscription}/events` takes one CloudEvents 1.0 event in structured JSON
mode (`application/cloudevents+json`), signed per Standard Webhooks with the source's secret
(the Airflow connection its catalogue entry names under `events.signing_secret`). The contract
is `contracts/event_intake_v1.openapi.yaml`; the README's "Change events" says it for senders.

An accepted event is committed to `ops.event_inbox` (connectors/event_inbox.py) before the
answer: 202 when new, 200 when (source, event id) was already stored, so a sender's retry is
always safe. Every refusal is an RFC 9457 problem and stores nothing. Plain Python: no Airflow.

Run it with `python -m connectors.event_intake [--host H] [--port 8090] [--warehouse-url URL]
[--catalogue dags/sources.yml]`; the signing secrets come from the AIRFLOW_CONN_* variables.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import orjson
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.catalogue import Source, catalogue_path, load_catalogue
from connectors.event_inbox import Inbox, InboxRow, InboxUnavailable

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # bytes; an event is a few hundred, so this bounds memory per request
TOLERANCE = 5 * 60  # seconds either side of the intake's clock (Standard Webhooks' default)
MEDIA_TYPE = "application/cloudevents+json"
# The change kind is the event's `type`, so routers and logs see it without reading `data`.
CHANGE_TYPES = {"vn.gov.sti.record.upserted": "upsert", "vn.gov.sti.record.deleted": "delete"}
MAX_TEXT = 256  # characters of an id, record id or entity: ids, not documents
_MAX_VERSION = 2**63 - 1  # the inbox's bigint


class Refused(Exception):
    """A request the intake refuses: its status and a detail for the sender."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    event_id: str
    source: str  # the CloudEvents `source`: the subscription id of the catalogue
    entity: str
    record_id: str
    version: int
    change_kind: str
    time: datetime

    def inbox_row(self, source_id: str) -> InboxRow:
        return InboxRow(
            source_id=source_id,
            event_id=self.event_id,
            entity=self.entity,
            record_id=self.record_id,
            version=self.version,
            change_kind=self.change_kind,
            event_time=self.time,
        )


# --- Secrets --------------------------------------------------------------------------------


def secrets_from_environment(
    sources: Iterable[Source], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """source id → signing secret, from the `AIRFLOW_CONN_<CONNECTION ID>` variables.

    A connection is Airflow's JSON form (`{"conn_type": ..., "password": "whsec_..."}`, as
    local/airflow_env.py writes them) or its URI form; the secret is its password. A source
    whose connection is missing is left out (its events get 503 until it is set). Neither logs
    nor errors ever carry a secret.
    """
    environ = os.environ if environ is None else environ
    secrets, missing = {}, []
    for source in sources:
        if source.events is None:
            continue
        conn_id = source.events.signing_secret
        secret = _password(environ.get(f"AIRFLOW_CONN_{conn_id.upper()}", ""))
        if not secret:
            missing.append(conn_id)
            continue
        try:
            Webhook(secret)
        except Exception:
            raise ValueError(
                f"connection {conn_id!r}: its password is not a Standard Webhooks secret"
                " (whsec_ followed by base64)"
            ) from None  # the original error may quote the secret
        secrets[source.id] = secret
    if missing:
        log.warning("no signing secret for %s: their events are refused", ", ".join(missing))
    return secrets


def _password(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    if value.startswith("{"):
        try:
            password = json.loads(value).get("password")
        except (ValueError, AttributeError):
            return ""
        return password if isinstance(password, str) else ""
    return unquote(urlsplit(value).password or "")


# --- Verification ---------------------------------------------------------------------------


def verify_signature(webhook: Webhook, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Standard Webhooks verification, with the refusals told apart.

    The reference `Webhook.verify` raises one error for a bad signature and a stale timestamp;
    a sender needs to know which (401: fix the key; 400: fix the clock), so the signature is
    computed with the reference `Webhook.sign` and checked first: only an authentic message
    learns that its timestamp is outside the window.
    """
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and timestamp and signatures):
        raise Refused(401, "webhook-id, webhook-timestamp and webhook-signature are required")
    # Ten digits last until 2286; more could not even be a datetime (year 10000 and later).
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 10):
        raise Refused(401, "webhook-timestamp must be whole seconds since the Unix epoch")
    signed_at = int(timestamp)
    expected = webhook.sign(msg_id, datetime.fromtimestamp(signed_at, UTC), body).encode()
    if not any(hmac.compare_digest(expected, sig.encode()) for sig in signatures.split(" ")):
        raise Refused(401, "no signature matches this source's secret")
    if abs(now - signed_at) > TOLERANCE:
        raise Refused(
            400,
            f"webhook-timestamp is {now - signed_at:+.0f} s from the intake's clock; events are"
            f" accepted within {TOLERANCE} s (replay protection): sign again with the time now",
        )


def parse_event(body: bytes) -> ChangeEvent:
    """A CloudEvents 1.0 structured-mode change event, or Refused(400) saying what is wrong."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, f"the body is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise Refused(400, "the body must be one CloudEvent, a JSON object")
    if event.get("specversion") != "1.0":
        raise Refused(400, 'specversion must be "1.0"')
    event_id = _text(event, "id")
    source = _text(event, "source")
    change_kind = CHANGE_TYPES.get(event.get("type"))  # type: ignore[arg-type]
    if change_kind is None:
        raise Refused(400, f"type must be one of {', '.join(CHANGE_TYPES)}")
    if event.get("datacontenttype", "application/json") != "application/json":
        raise Refused(400, "datacontenttype must be application/json")
    data = event.get("data")
    if not isinstance(data, dict):
        raise Refused(400, "data must be a JSON object with entity, record_id and version")
    version = data.get("version")
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or not 1 <= version <= _MAX_VERSION
    ):
        raise Refused(400, "data.version must be a whole number from 1 to 2^63-1")
    return ChangeEvent(
        event_id=event_id,
        source=source,
        entity=_text(data, "entity", "data."),
        record_id=_text(data, "record_id", "data."),
        version=version,
        change_kind=change_kind,
        time=_time(event.get("time")),
    )


def _text(mapping: dict[str, Any], key: str, prefix: str = "") -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT or "\x00" in value:
        raise Refused(400, f"{prefix}{key} must be a string of 1 to {MAX_TEXT} characters")
    return value


def _time(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in value.upper():
        raise Refused(400, "time must be an RFC 3339 timestamp with its offset, e.g. …T10:00:00Z")
    return moment


# --- HTTP -----------------------------------------------------------------------------------


def problem(
    status: int, detail: str, request: Request, headers: Mapping[str, str] | None = None
) -> Response:
    """An RFC 9457 problem of type about:blank; `instance` is the path as sent, encoded."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    body = {
        "type": "about:blank",
        "title": "Content Too Large" if status == 413 else HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": quote(raw, safe="/!$&'()*+,;=:@-._~%"),
    }
    return Response(orjson.dumps(body), status, headers, media_type="application/problem+json")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, reading no more than `limit` + 1 bytes of it; Refused(413) past `limit`."""
    declared = request.headers.get("content-length", "")
    too_large = Refused(413, f"the body is over {limit} bytes; send one event per request")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk[: limit + 1 - len(body)]
        if len(body) > limit:
            raise too_large
    return bytes(body)


def create_app(
    warehouse_url: str,
    sources: Iterable[Source],
    secrets: Mapping[str, str],
    *,
    max_body: int = MAX_BODY,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The intake for the catalogue `sources` with events, `secrets` by source id."""
    by_subscription = {s.events.subscription: s for s in sources if s.events is not None}
    webhooks = {source_id: Webhook(secret) for source_id, secret in secrets.items()}
    inbox = Inbox(warehouse_url)

    async def receive(request: Request) -> Response:
        try:
            return await _receive(request)
        except Refused as refused:
            return problem(refused.status, refused.detail, request)
        except InboxUnavailable as exc:
            return problem(503, f"{exc}; send it again later", request, {"Retry-After": "5"})

    async def _receive(request: Request) -> Response:
        subscription = request.path_params["subscription"]
        source = by_subscription.get(subscription)
        if source is None:
            raise Refused(404, f"no source sends events as {subscription!r}")
        webhook = webhooks.get(source.id)
        if webhook is None:
            raise InboxUnavailable(f"the intake has no signing secret for {subscription!r} yet")
        body = await read_body(request, max_body)
        verify_signature(webhook, request.headers, body, clock())
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != MEDIA_TYPE:
            raise Refused(415, f"send one event in structured mode, Content-Type {MEDIA_TYPE}")
        event = parse_event(body)
        if event.source != subscription:
            raise Refused(
                403, f"{subscription!r} may send its own events only, not {event.source!r}"
            )
        if event.entity not in source.entities:
            raise Refused(404, f"{subscription!r} has no entity {event.entity!r}")
        new = await inbox.store(event.inbox_row(source.id))
        status = "accepted" if new else "duplicate"
        receipt = {"status": status, "source": subscription, "id": event.event_id}
        return Response(orjson.dumps(receipt), 202 if new else 200, media_type="application/json")

    async def health(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        headers = exc.headers if isinstance(exc, HTTPException) else None  # 405's Allow
        return problem(status, HTTPStatus(status).description, request, headers)

    @asynccontextmanager
    async def lifespan(_app: Starlette):
        await inbox.start()
        log.info("event intake: accepting events of %s", ", ".join(sorted(webhooks)) or "none")
        try:
            yield
        finally:
            await inbox.close()

    app = Starlette(
        routes=[
            Route("/v1/sources/{subscription}/events", receive, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # a redirect target would come from the Host header
    app.state.inbox = inbox
    return app


def serve(app: Starlette, host: str = "127.0.0.1", port: int = 8090) -> None:
    """Serve with uvicorn (httptools and uvloop when installed); no access log, which would
    cost more than the request at a thousand events a second."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def main(argv: list[str] | None = None) -> None:
    """`python -m connectors.event_intake`: serve the intake of the catalogue's sources."""
    parser = argparse.ArgumentParser(prog="python -m connectors.event_intake")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--warehouse-url", default=os.environ.get("WAREHOUSE_URL"), help="default $WAREHOUSE_URL"
    )
    parser.add_argument("--catalogue", type=Path, help=f"default {catalogue_path()}")
    args = parser.parse_args(argv)
    if not args.warehouse_url:
        parser.error("set --warehouse-url or WAREHOUSE_URL")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        sources = load_catalogue(args.catalogue)
        secrets = secrets_from_environment(sources)
    except ValueError as error:  # a catalogue error, or a password that is no secret
        parser.error(str(error))
    log.info("event intake on http://%s:%d/v1/sources/<subscription>/events", args.host, args.port)
    serve(create_app(args.warehouse_url, sources, secrets), args.host, args.port)


if __name__ == "__main__":
    main()
