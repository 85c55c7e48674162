"""HTTP layer of the stand-in national intake (national intake API v1, see
connectors/contracts/national_intake_v1.openapi.yaml, which documents every endpoint here).

- ``POST /oauth/token``: client credentials, one client per province (``province-<code>``).
- ``POST /v1/batches``: verify (token, key, signature, manifest, body, province), then answer a
  stored batch again or validate its records and store it atomically (store.py).
- ``GET /v1/batches/{idempotency_key}``, ``GET /v1/holdings/summary``,
  ``GET /v1/holdings/{entity}``: status and reconciliation.
- Stand-in only, with the admin bearer token: ``POST|DELETE /admin/faults``,
  ``POST /admin/reset``, ``GET /admin/applied``. ``GET /health`` for start-up checks.

Handlers are ``async`` and keep the tokens and faults on the event loop thread (no locks); the
work of a batch (signature, parsing, rules, database) runs in the thread pool, so the loop keeps
answering health checks and fault changes while batches are stored.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.national_contract import (
    ENTITIES,
    MAX_RECORDS,
    BatchRejected,
    body_sha256,
    is_hex_sha256,
    verify_batch,
)
from local.national_intake.rules import (
    MAX_DIGEST,
    MAX_RECORD_KEY,
    MISSING_FIELD,
    REJECTED_ON_DEMAND,
    RecordRules,
    research_fields,
    today_provinces,
)
from local.national_intake.store import BatchOutcome, NewBatch, Store, StoredBatch
from local.standin_http import bounded_body, client_credentials_form, json_response, oauth_error

MAX_BODY = 64 * 1024 * 1024  # bytes of a batch
MAX_TOKEN_BODY = 16 * 1024
MAX_AFTER = 1024
DEFAULT_PAGE = 10_000
MAX_PAGE = 50_000
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PROVINCE_CODE = re.compile(r"[0-9]{2}")
# "\u0000" in a JSON string (an odd number of backslashes before it): PostgreSQL text and
# jsonb cannot hold the NUL character.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
FAULT_MODES = ("error_5xx", "timeout_after_store", "slow", "reject")
_FAULT_FIELDS = frozenset({"mode", "count", "delay_seconds", "reject_every", "status"})
_KEY_RULE = f"record_key must be 1 to {MAX_RECORD_KEY} printable characters"
_DIGEST_RULE = f"content_digest must be 1 to {MAX_DIGEST} printable characters"
_DEFAULT_DELAY = {"timeout_after_store": 30.0, "slow": 2.0}


@dataclass(frozen=True)
class Client:
    """One province's credentials as the intake knows them: secret and public keys by key id."""

    province_code: str
    client_secret: str = field(repr=False)
    public_keys: Mapping[str, str] = field(repr=False)

    @property
    def client_id(self) -> str:
        return f"province-{self.province_code}"


@dataclass
class Fault:
    mode: str
    remaining: int | None  # None: until cleared
    delay_seconds: float = 0.0
    reject_every: int = 2
    status: int = 503

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "remaining": self.remaining,
            "delay_seconds": self.delay_seconds,
            "reject_every": self.reject_every,
            "status": self.status,
        }


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str] | None = None
    stored: bool = False  # a batch was stored by this request, or answered from storage
    new: bool = False  # stored by this request


class Refused(Exception):
    """A request refused with the contract's error document."""

    def __init__(
        self, status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


def error_response(
    status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    return json_response({"error": error, "detail": detail}, status, headers)


def _copy_text(text: str) -> bytes:
    """A printable text as a COPY text-format field (only the backslash needs escaping)."""
    data = text.encode()
    return data.replace(b"\\", b"\\\\") if b"\\" in data else data


class Validation:
    """Checks a batch's records one by one (the reason codes), producing the accepted ones as
    COPY text rows in chunks, so the database parses a chunk while the next is checked. A
    record that is not an object, or a record_key seen twice, refuses the whole batch."""

    CHUNK = 500  # records

    def __init__(self, rules: RecordRules, records: list[Any], reject_every: int | None) -> None:
        self.rules = rules
        self.records = records
        self.reject_every = reject_every
        self.rejections: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.upsert_count = 0

    def copy_chunks(self) -> Iterator[bytes]:
        check = self.rules.check
        dumps = orjson.dumps
        every = self.reject_every
        seen: set[str] = set()
        rows: list[bytes] = []
        for index, record in enumerate(self.records):
            if type(record) is not dict:
                raise Refused(400, "malformed", f"records[{index}] is not an object")
            record_key = record.get("record_key")
            op = record.get("op")
            problem: tuple[str, str] | None = None
            if (
                type(record_key) is not str
                or not 0 < len(record_key) <= MAX_RECORD_KEY
                or not record_key.isprintable()
            ):
                problem = (MISSING_FIELD, _KEY_RULE)
                record_key = record_key if type(record_key) is str else None
            elif op == "upsert":
                digest = record.get("content_digest")
                data = record.get("data")
                if (
                    type(digest) is not str
                    or not 0 < len(digest) <= MAX_DIGEST
                    or not digest.isprintable()
                ):
                    problem = (MISSING_FIELD, _DIGEST_RULE)
                elif type(data) is not dict:
                    problem = (MISSING_FIELD, "data must be an object")
                else:
                    problem = check(data)
            elif op != "delete":
                problem = (MISSING_FIELD, 'op must be "upsert" or "delete"')
            if record_key is not None:
                if record_key in seen:
                    detail = f"record_key {record_key!r} appears twice in the batch"
                    raise Refused(400, "malformed", detail)
                seen.add(record_key)
            if problem is None and every is not None and (index + 1) % every == 0:
                problem = (REJECTED_ON_DEMAND, "rejected on demand by the stand-in (testing)")
            if problem is not None:
                self.rejections.append(
                    {
                        "record_key": record_key,
                        "index": index,
                        "reason_code": problem[0],
                        "reason": problem[1],
                    }
                )
            elif op == "upsert":
                data_text = dumps(record["data"])
                if b"\\" in data_text:
                    data_text = data_text.replace(b"\\", b"\\\\")
                rows.append(
                    b"%b\tupsert\t%b\t%b\n"
                    % (_copy_text(record_key), _copy_text(record["content_digest"]), data_text)
                )
                self.upsert_count += 1
            else:
                rows.append(b"%b\tdelete\t\\N\t\\N\n" % _copy_text(record_key))
                self.deleted.append(record_key)
            if len(rows) >= self.CHUNK:
                yield b"".join(rows)
                rows.clear()
        if rows:
            yield b"".join(rows)


class IntakeService:
    """The stand-in's state: clients, issued tokens, faults, the store and the record rules."""

    def __init__(
        self,
        store: Store,
        clients: Mapping[str, Client],
        admin_token: str,
        *,
        token_ttl: int = 3600,
        rules: RecordRules | None = None,
    ) -> None:
        self.store = store
        self.clients = dict(clients)
        self._by_client_id = {client.client_id: client for client in clients.values()}
        self._admin_token = admin_token
        self._token_ttl = token_ttl
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (province, expiry)
        self._faults: dict[str, Fault] = {}
        self.rules = rules or RecordRules(today_provinces(), research_fields())

    # --- Authentication ---------------------------------------------------------------------

    async def issue_token(self, request: Request) -> Response:
        params = await client_credentials_form(request, MAX_TOKEN_BODY)
        if isinstance(params, Response):
            return params
        client = self._by_client_id.get(params.get("client_id", ""))
        secret = params.get("client_secret", "")
        if client is None or not hmac.compare_digest(
            secret.encode(), client.client_secret.encode()
        ):
            return oauth_error("invalid_client", "client authentication failed", 401)
        now = time.monotonic()
        self._tokens = {t: entry for t, entry in self._tokens.items() if entry[1] > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (client.province_code, now + self._token_ttl)
        body_out = {"access_token": token, "token_type": "Bearer", "expires_in": self._token_ttl}
        return json_response(body_out, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _province_of(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        entry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if entry is None or entry[1] <= time.monotonic():
            detail = "a valid, unexpired bearer token from /oauth/token is required"
            raise Refused(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})
        return entry[0]

    def _require_admin(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        valid = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._admin_token.encode()
        )
        if not valid:
            detail = "the stand-in's admin bearer token is required"
            raise Refused(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})

    # --- Batches ------------------------------------------------------------------------------

    async def submit_batch(self, request: Request) -> Response:
        province = self._province_of(request)
        slow = self._take("slow")
        if slow is not None:
            await asyncio.sleep(slow.delay_seconds)
        failure = self._take("error_5xx")
        if failure is not None:
            return error_response(failure.status, "unavailable", "injected fault: try again")
        key = request.headers.get("idempotency-key", "")
        if not IDEMPOTENCY_KEY.fullmatch(key):
            raise Refused(400, "malformed", "Idempotency-Key must be 1-128 of [A-Za-z0-9._:-]")
        body = await bounded_body(request, MAX_BODY)
        if body is None:
            raise Refused(413, "body_too_large", f"the body is over {MAX_BODY} bytes")
        reject = self._faults.get("reject")
        reply = await run_in_threadpool(
            self._process_batch,
            province,
            key,
            request.headers,
            body,
            reject.reject_every if reject is not None else None,
        )
        if reply.new and reject is not None and self._faults.get("reject") is reject:
            self._take("reject")
        if reply.stored:
            timeout = self._take("timeout_after_store")
            if timeout is not None:
                await asyncio.sleep(timeout.delay_seconds)  # stored and committed: ambiguous
        return Response(reply.body, reply.status, reply.headers, media_type="application/json")

    def _process_batch(
        self,
        province: str,
        key: str,
        headers: Mapping[str, str],
        body: bytes,
        reject_every: int | None,
    ) -> Reply:
        """Verify, validate and store one batch (in the thread pool)."""
        signature = headers.get("x-jws-signature", "")
        public_keys = self.clients[province].public_keys
        count_text = headers.get("x-manifest-record-count", "")
        if not (count_text.isascii() and count_text.isdigit() and len(count_text) <= 6):
            # The signature comes first: an unsigned request learns nothing more.
            try:
                verify_batch(body, signature, key, -1, public_keys)
            except BatchRejected as rejected:
                if rejected.status != 400:
                    raise
            detail = "X-Manifest-Record-Count must be the number of records"
            raise Refused(400, "manifest_mismatch", detail)
        manifest_count = int(count_text)
        verify_batch(body, signature, key, manifest_count, public_keys)
        # The signature held, and with it the signed body_sha256 is the body's.
        digest = body_sha256(body)
        manifest_sha = headers.get("x-manifest-sha256", "")
        if not is_hex_sha256(manifest_sha) or manifest_sha != digest:
            raise Refused(400, "manifest_mismatch", "X-Manifest-SHA256 is not the body's SHA-256")
        records, entity = self._parse(body, province, manifest_count)
        stored = self.store.find_batch(key)
        if stored is not None:
            return self._replay(stored, digest)
        received_at = datetime.now(UTC)
        validation = Validation(self.rules, records, reject_every)
        made: list[BatchOutcome] = []

        def outcome() -> BatchOutcome:
            response = {
                "idempotency_key": key,
                "batch_id": str(uuid.uuid4()),
                "received_at": received_at.isoformat().replace("+00:00", "Z"),
                "accepted_count": len(records) - len(validation.rejections),
                "rejected_count": len(validation.rejections),
                "rejections": validation.rejections,
            }
            made.append(
                BatchOutcome(
                    response=orjson.dumps(response),
                    accepted_count=len(records) - len(validation.rejections),
                    rejected_count=len(validation.rejections),
                    upsert_count=validation.upsert_count,
                    deleted_keys=validation.deleted,
                )
            )
            return made[-1]

        batch = NewBatch(
            idempotency_key=key,
            province_code=province,
            entity=entity,
            body_sha256=digest,
            record_count=len(records),
            received_at=received_at,
            rows=validation.copy_chunks(),
            outcome=outcome,
        )
        stored = self.store.store_batch(batch)
        if stored is not None:  # a concurrent request with this key stored it first
            return self._replay(stored, digest)
        return Reply(200, made[-1].response, stored=True, new=True)

    def _parse(self, body: bytes, province: str, manifest_count: int) -> tuple[list[Any], str]:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise Refused(400, "malformed", f"the body is not JSON: {error}") from None
        if not isinstance(document, dict):
            raise Refused(400, "malformed", "the body must be a JSON object (a batch)")
        records = document.get("records")
        entity = document.get("entity")
        body_province = document.get("province_code")
        if not isinstance(records, list):
            raise Refused(400, "malformed", "records must be an array")
        if entity not in ENTITIES:
            raise Refused(400, "malformed", f"entity must be one of {', '.join(ENTITIES)}")
        if not isinstance(body_province, str) or not PROVINCE_CODE.fullmatch(body_province):
            raise Refused(400, "malformed", "province_code must be a 2-digit code")
        if len(records) > MAX_RECORDS:
            raise Refused(413, "too_many_records", f"a batch has at most {MAX_RECORDS} records")
        if len(records) != manifest_count:
            detail = f"the body has {len(records)} records, the manifest says {manifest_count}"
            raise Refused(400, "manifest_mismatch", detail)
        if body_province != province:
            detail = f"the token is province {province}'s; it may not send {body_province}'s"
            raise Refused(403, "province_forbidden", detail)
        if b"\\u0000" in body and _JSON_NUL.search(body):
            raise Refused(400, "malformed", "text may not contain the NUL character (\\u0000)")
        return records, entity

    @staticmethod
    def _replay(stored: StoredBatch, digest: str) -> Reply:
        if stored.body_sha256 != digest:
            detail = "this Idempotency-Key was used for another body; use a new key for it"
            raise Refused(422, "idempotency_key_reused", detail)
        return Reply(200, stored.response, {"Idempotent-Replayed": "true"}, stored=True)

    async def get_batch(self, request: Request) -> Response:
        province = self._province_of(request)
        key = request.path_params["idempotency_key"]
        if not IDEMPOTENCY_KEY.fullmatch(key):
            raise Refused(400, "malformed", "not a valid idempotency key")
        stored = await run_in_threadpool(self.store.find_batch, key)
        if stored is None or stored.province_code != province:
            raise Refused(404, "not_found", "no batch of this province is stored under this key")
        return Response(stored.response, media_type="application/json")

    # --- Holdings -----------------------------------------------------------------------------

    def _holdings_province(self, request: Request) -> str:
        province = self._province_of(request)
        asked = request.query_params.get("province_code", province)
        if asked != province:
            detail = f"the token is province {province}'s; it may not read {asked!r}'s holdings"
            raise Refused(403, "province_forbidden", detail)
        return province

    async def holdings_summary(self, request: Request) -> Response:
        province = self._holdings_province(request)
        found = await run_in_threadpool(self.store.holdings_summary, province)
        entities = [
            {"entity": entity, "record_count": found.get(entity, (0, "0"))[0],
             "checksum": found.get(entity, (0, "0"))[1]}
            for entity in ENTITIES
        ]  # fmt: skip
        return json_response({"province_code": province, "entities": entities})

    async def holdings_page(self, request: Request) -> Response:
        province = self._holdings_province(request)
        entity = request.path_params["entity"]
        if entity not in ENTITIES:
            raise Refused(404, "not_found", f"no entity {entity!r}")
        query = request.query_params
        after = query.get("after")
        if after is not None and not 0 < len(after) <= MAX_AFTER:
            raise Refused(400, "malformed", f"after must be 1 to {MAX_AFTER} characters")
        if after is not None:
            # No key holds NUL, so the keys after "k\x00..." are exactly the keys after "k".
            after = after.partition("\x00")[0] or None
        limit_text = query.get("limit", str(DEFAULT_PAGE))
        if not (limit_text.isascii() and limit_text.isdigit() and len(limit_text) <= 6) or not (
            1 <= int(limit_text) <= MAX_PAGE
        ):
            raise Refused(400, "malformed", f"limit must be an integer from 1 to {MAX_PAGE}")
        limit = int(limit_text)
        rows = await run_in_threadpool(self.store.holdings_page, province, entity, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        records = [{"record_key": key, "content_digest": digest} for key, digest in rows]
        next_after = rows[-1][0] if more else None
        return json_response({"records": records, "next_after": next_after})

    # --- Stand-in administration --------------------------------------------------------------

    def _take(self, mode: str) -> Fault | None:
        """The fault of ``mode`` if in force, counting one use of it."""
        fault = self._faults.get(mode)
        if fault is None:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._faults[mode]
        return fault

    def _faults_json(self) -> dict[str, Any]:
        return {"faults": [fault.as_json() for fault in self._faults.values()]}

    async def faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            return await self.clear_faults(request)
        return await self.set_fault(request)

    async def set_fault(self, request: Request) -> Response:
        self._require_admin(request)
        try:
            body = orjson.loads(await bounded_body(request, MAX_TOKEN_BODY) or b"")
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or set(body) - _FAULT_FIELDS:
            raise Refused(400, "malformed", f"body must be an object of {sorted(_FAULT_FIELDS)}")
        mode = body.get("mode")
        if mode not in FAULT_MODES:
            raise Refused(400, "malformed", f"mode must be one of {', '.join(FAULT_MODES)}")
        count = body.get("count")
        if "count" not in body and mode in ("error_5xx", "timeout_after_store"):
            count = 1  # omitted: once; null: until cleared
        elif count is not None:
            count = _whole(count, "count", 1, 1_000_000)
        delay = body.get("delay_seconds", _DEFAULT_DELAY.get(mode, 0.0))
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 600:
            raise Refused(400, "malformed", "delay_seconds must be a number from 0 to 600")
        every = _whole(body.get("reject_every", 2), "reject_every", 1, MAX_RECORDS)
        status = _whole(body.get("status", 503), "status", 500, 504)
        if status not in (500, 502, 503, 504):
            raise Refused(400, "malformed", "status must be 500, 502, 503 or 504")
        self._faults[mode] = Fault(mode, count, float(delay), every, status)
        return json_response(self._faults_json())

    async def clear_faults(self, request: Request) -> Response:
        self._require_admin(request)
        self._faults.clear()
        return json_response(self._faults_json())

    async def reset(self, request: Request) -> Response:
        self._require_admin(request)
        deleted = await run_in_threadpool(self.store.reset)
        return json_response({"deleted": deleted})

    async def applied(self, request: Request) -> Response:
        self._require_admin(request)
        return json_response(await run_in_threadpool(self.store.applied_counts))

    async def health(self, request: Request) -> Response:
        return json_response({"status": "ok"})


def _whole(value: object, name: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` (5.0 is one, as JSON Schema has it)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refused(400, "malformed", f"{name} must be a whole number from {low} to {high}")
    return value


def create_app(
    database_url: str,
    clients: Mapping[str, Client],
    admin_token: str,
    *,
    token_ttl: int = 3600,
) -> Starlette:
    """The stand-in national intake over its database at ``database_url`` (schema `intake`,
    created if missing), for ``clients`` by province code."""
    if not admin_token:
        raise ValueError("an admin token is required")
    store = Store(database_url)
    store.ensure_schema()
    service = IntakeService(store, clients, admin_token, token_ttl=token_ttl)

    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except Refused as refused:
                return error_response(
                    refused.status, refused.error, refused.detail, refused.headers
                )
            except BatchRejected as rejected:
                return error_response(rejected.status, rejected.error, rejected.detail)
            except psycopg.OperationalError as error:
                detail = f"the intake's database is unavailable ({type(error).__name__}); retry"
                return error_response(503, "unavailable", detail)

        return endpoint

    routes = [
        Route("/oauth/token", service.issue_token, methods=["POST"]),
        Route("/v1/batches", guarded(service.submit_batch), methods=["POST"]),
        Route("/v1/batches/{idempotency_key}", guarded(service.get_batch), methods=["GET"]),
        Route("/v1/holdings/summary", guarded(service.holdings_summary), methods=["GET"]),
        Route("/v1/holdings/{entity}", guarded(service.holdings_page), methods=["GET"]),
        Route("/admin/faults", guarded(service.faults), methods=["POST", "DELETE"]),
        Route("/admin/reset", guarded(service.reset), methods=["POST"]),
        Route("/admin/applied", guarded(service.applied), methods=["GET"]),
        Route("/health", service.health, methods=["GET"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, error, str(exc.detail), exc.headers)

    async def internal_error(request: Request, exc: Exception) -> Response:
        return error_response(500, "internal_error", "the stand-in intake failed; see its log")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.service = service
    return app
