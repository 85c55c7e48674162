"""Client of the national STI intake API v1 (contracts/national_intake_v1.openapi.yaml).

    client = NationalIntakeClient(IntakeConnection.from_environment("37"))
    reply = client.submit(idempotency_key, body, record_count)   # BatchReply, or raises

OAuth2 client credentials (the token is fetched once and again on a 401), each batch signed
with the province's Ed25519 key (detached JWS) and sent with its manifest. Transport failures
and 5xx answers are retried with backoff by the session (safe: the idempotency key makes a
repeated POST a replay); what is left after the retries is an `IntakeUnavailable` (nothing is
known about the batch: ask `status`, or send it again under the same key) or an
`IntakeRefused` (the intake answered no: resending the same bytes will not help).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests

from connectors.http import build_session, redact
from connectors.national_contract import body_sha256, sign_batch

CONNECTION_ENV = "AIRFLOW_CONN_NATIONAL_INTAKE_{province}"  # one per province, Airflow's JSON form
TIMEOUT = (5.0, 60.0)  # connect, read (seconds): a 10,000-record batch takes a few seconds


class IntakeUnavailable(Exception):
    """No answer from the intake after the retries: the batch may or may not be stored."""


class IntakeRefused(Exception):
    """The intake refused the batch as a whole (4xx): the same bytes will be refused again."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"national intake refused the batch ({status} {error}): {detail}")
        self.status, self.error, self.detail = status, error, detail


@dataclass(frozen=True)
class IntakeConnection:
    """Where the intake is and how this province signs in and signs its batches."""

    base_url: str  # no trailing slash
    client_id: str
    client_secret: str = field(repr=False)
    key_id: str = ""
    signing_key_pem: str = field(default="", repr=False)

    @classmethod
    def from_fields(
        cls, host: str, login: str, password: str, extra: dict[str, Any]
    ) -> IntakeConnection:
        """From a connection's fields: host (the base URL), login (client id), password
        (client secret), extra {"key_id", "signing_key" (PEM)}."""
        missing = [name for name in ("key_id", "signing_key") if not extra.get(name)]
        if not host or not login or not password or missing:
            raise RuntimeError(
                "the national intake connection needs host, login, password and extra"
                " key_id and signing_key" + (f" (missing: {', '.join(missing)})" if missing else "")
            )
        return cls(host.rstrip("/"), login, password, extra["key_id"], extra["signing_key"])

    @classmethod
    def from_environment(cls, province: str) -> IntakeConnection | None:
        """The province's connection from AIRFLOW_CONN_NATIONAL_INTAKE_<code> (Airflow's JSON
        form); None when it is not set."""
        raw = os.environ.get(CONNECTION_ENV.format(province=province))
        if not raw:
            return None
        conn = json.loads(raw)
        extra = conn.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra)
        return cls.from_fields(
            conn.get("host", ""), conn.get("login", ""), conn.get("password", ""), extra
        )

    def as_airflow_json(self) -> str:
        """The connection as AIRFLOW_CONN_NATIONAL_INTAKE_<code> takes it."""
        extra = {"key_id": self.key_id, "signing_key": self.signing_key_pem}
        return json.dumps(
            {
                "conn_type": "http",
                "host": self.base_url,
                "login": self.client_id,
                "password": self.client_secret,
                "extra": extra,
            }
        )


@dataclass(frozen=True)
class Rejection:
    record_key: str
    reason_code: str
    reason: str


@dataclass(frozen=True)
class BatchReply:
    idempotency_key: str
    batch_id: str
    accepted_count: int
    rejected_count: int
    rejections: tuple[Rejection, ...]
    replayed: bool  # the intake had this batch already and answered from its records

    @classmethod
    def from_document(cls, document: dict[str, Any], replayed: bool) -> BatchReply:
        return cls(
            idempotency_key=document["idempotency_key"],
            batch_id=str(document["batch_id"]),
            accepted_count=int(document["accepted_count"]),
            rejected_count=int(document["rejected_count"]),
            rejections=tuple(
                Rejection(r["record_key"], r["reason_code"], r.get("reason", ""))
                for r in document.get("rejections", ())
            ),
            replayed=replayed,
        )


def batch_headers(
    connection: IntakeConnection, idempotency_key: str, body: bytes, record_count: int
) -> dict[str, str]:
    """A batch's headers: its key, its manifest and its signature by the province's key (the
    bearer token is the caller's)."""
    return {
        "Content-Type": "application/json",
        "Idempotency-Key": idempotency_key,
        "X-Manifest-Record-Count": str(record_count),
        "X-Manifest-SHA256": body_sha256(body),
        "X-JWS-Signature": sign_batch(
            body, idempotency_key, record_count, connection.signing_key_pem, connection.key_id
        ),
    }


class NationalIntakeClient:
    def __init__(
        self,
        connection: IntakeConnection,
        *,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> None:
        self.connection = connection
        self.timeout = timeout
        self._session = build_session(
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            pool_maxsize=4,
            user_agent="sti-national-feed/1.0",
        )
        self._token: str | None = None

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> NationalIntakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- batches -------------------------------------------------------------------------
    def submit(self, idempotency_key: str, body: bytes, record_count: int) -> BatchReply:
        """POST one batch (signed here). Raises IntakeUnavailable or IntakeRefused."""
        headers = batch_headers(self.connection, idempotency_key, body, record_count)
        reply = self._call("POST", "/v1/batches", data=body, headers=headers)
        if reply.status_code == 200:
            replayed = reply.headers.get("Idempotent-Replayed", "").lower() == "true"
            return BatchReply.from_document(orjson.loads(reply.content), replayed)
        raise self._refusal(reply)

    def status(self, idempotency_key: str) -> BatchReply | None:
        """What the intake stored under the key (None: it has no such batch)."""
        reply = self._call("GET", f"/v1/batches/{idempotency_key}")
        if reply.status_code == 404:
            return None
        if reply.status_code == 200:
            return BatchReply.from_document(orjson.loads(reply.content), replayed=True)
        raise self._refusal(reply)

    # -- holdings (reconciliation) -------------------------------------------------------
    def holdings_summary(self, province_code: str) -> dict[str, tuple[int, int]]:
        """entity → (record count, checksum) of what the intake holds for the province."""
        reply = self._call("GET", "/v1/holdings/summary", params={"province_code": province_code})
        if reply.status_code != 200:
            raise self._refusal(reply)
        return {
            e["entity"]: (int(e["record_count"]), int(e["checksum"]))
            for e in orjson.loads(reply.content)["entities"]
        }

    def holdings(
        self, province_code: str, entity: str, page_size: int = 50_000
    ) -> Iterator[tuple[str, str]]:
        """(record_key, content_digest) of every record the intake holds, by record key."""
        after: str | None = None
        while True:
            params: dict[str, Any] = {"province_code": province_code, "limit": page_size}
            if after is not None:
                params["after"] = after
            reply = self._call("GET", f"/v1/holdings/{entity}", params=params)
            if reply.status_code != 200:
                raise self._refusal(reply)
            page = orjson.loads(reply.content)
            for record in page["records"]:
                yield record["record_key"], record["content_digest"]
            after = page.get("next_after")
            if after is None:
                return

    # -- plumbing ------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        for attempt in (1, 2):
            headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self._bearer()}"}
            try:
                reply = self._session.request(
                    method,
                    self.connection.base_url + path,
                    headers=headers,
                    timeout=self.timeout,
                    **kwargs,
                )
            except requests.RequestException as error:
                raise IntakeUnavailable(
                    f"national intake {method} {path}: no answer after retries"
                    f" ({type(error).__name__})"
                ) from None
            if (
                reply.status_code == 401
                and attempt == 1
                and _error_code(reply) != ("signature_invalid")
            ):
                self._token = None  # expired: sign in again once
                kwargs["headers"] = headers
                continue
            if reply.status_code >= 500:
                raise IntakeUnavailable(
                    f"national intake {method} {path}: {reply.status_code} after retries"
                )
            return reply
        return reply

    def _bearer(self) -> str:
        if self._token is None:
            conn = self.connection
            try:
                reply = self._session.post(
                    conn.base_url + "/oauth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": conn.client_id,
                        "client_secret": conn.client_secret,
                    },
                    timeout=self.timeout,
                )
            except requests.RequestException as error:
                raise IntakeUnavailable(
                    f"national intake token: no answer ({type(error).__name__})"
                ) from None
            if reply.status_code >= 500:
                raise IntakeUnavailable(f"national intake token: {reply.status_code}")
            if reply.status_code != 200:
                raise self._refusal(reply)
            self._token = reply.json()["access_token"]
        return self._token

    def _refusal(self, reply: requests.Response) -> IntakeRefused:
        code = _error_code(reply) or "unexpected_status"
        try:
            detail = str(reply.json().get("detail", ""))
        except ValueError:
            detail = reply.text[:200]
        secrets = (self.connection.client_secret, self._token or "")
        return IntakeRefused(reply.status_code, code, redact(detail, secrets))


def _error_code(reply: requests.Response) -> str | None:
    try:
        document = reply.json()
    except ValueError:
        return None
    return document.get("error") if isinstance(document, dict) else None
