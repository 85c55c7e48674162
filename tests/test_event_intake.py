"""The change-event intake on real PostgreSQL: Standard Webhooks signatures, CloudEvents checks,
every refusal with its status and nothing stored, de-duplication, the replay window, the body
limit, and the inbox's group commit."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import yaml
from openapi_spec_validator import validate
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.requests import Request
from starlette.testclient import TestClient

from connectors.catalogue import load_catalogue
from connectors.event_inbox import Inbox, InboxRow, InboxUnavailable
from connectors.event_intake import (
    MAX_BODY,
    MEDIA_TYPE,
    Refused,
    create_app,
    read_body,
    secrets_from_environment,
    verify_signature,
)
from connectors.warehouse import ensure_schema
from local.postgres import drop_database, ensure_database

CONTRACT = Path(__file__).parents[1] / "connectors/contracts/event_intake_v1.openapi.yaml"
NB_SECRET = "whsec_" + base64.b64encode(b"ninh-binh-test-key-32-bytes-long").decode()
TH_SECRET = "whsec_" + base64.b64encode(b"thanh-hoa-test-key-32-bytes-long").decode()
SECRETS = {"ninh_binh_registry": NB_SECRET, "thanh_hoa_registry": TH_SECRET}
NB = "ninh-binh-registry"
CATALOGUE = """\
sources:
  - {id: ninh_binh_registry, name: NB, province_code: "37", system: registry,
     contract: registry-api-v1, connection_id: nb, entities: [st_task, ip_right],
     schedule: "0 3 * * *", owner: nb,
     events: {subscription: ninh-binh-registry, signing_secret: ninh_binh_registry_events}}
  - {id: thanh_hoa_registry, name: TH, province_code: "38", system: registry,
     contract: registry-api-v1, connection_id: th, entities: [st_task],
     schedule: "0 3 * * *", owner: th,
     events: {subscription: thanh-hoa-registry, signing_secret: thanh_hoa_registry_events}}
  - {id: quiet_exchange, name: QE, province_code: null, system: exchange,
     contract: exchange-api-v1, connection_id: qe, entities: [listing],
     schedule: "0 3 * * *", owner: qe}
"""


@pytest.fixture
def sources(tmp_path):
    path = tmp_path / "sources.yml"
    path.write_text(CATALOGUE, encoding="utf-8")
    return load_catalogue(path)


@pytest.fixture
def client(warehouse_url, sources) -> Iterator[TestClient]:
    with TestClient(create_app(warehouse_url, sources, SECRETS)) as client:
        yield client


def change(**overrides: Any) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": NB,
        "type": "vn.gov.sti.record.upserted",
        "time": "2026-11-30T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"entity": "st_task", "record_id": "NB-2024-DT-0001", "version": 3},
    }
    event.update(overrides)
    return {key: value for key, value in event.items() if value is not None}


def signed(body: bytes, secret: str = NB_SECRET, at: float | None = None) -> dict[str, str]:
    msg_id = f"msg_{uuid.uuid4().hex}"
    moment = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, moment, body),
        "content-type": MEDIA_TYPE,
    }


def post(client: TestClient, body: bytes, headers: dict[str, str], subscription: str = NB):
    return client.post(f"/v1/sources/{subscription}/events", content=body, headers=headers)


def inbox_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select source_id, event_id, entity, record_id, version, change_kind, event_time,"
            " dispatch_state, dispatched_at, done_at from ops.event_inbox order by inbox_id"
        ).fetchall()


def assert_problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"] == "about:blank"
    assert body["title"] and body["detail"] and body["instance"].startswith("/")
    return body


def test_a_valid_event_is_committed_before_its_202(client, warehouse_url):
    event = change(type="vn.gov.sti.record.deleted", time="2026-11-30T17:00:00+07:00")
    body = json.dumps(event).encode()
    response = post(client, body, signed(body))

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "source": NB, "id": event["id"]}
    # The answer came after the commit: another connection already sees the row.
    ((source, event_id, entity, record, version, kind, at, state, sent, done),) = inbox_rows(
        warehouse_url
    )
    assert (source, event_id, entity, record, version, kind) == (
        "ninh_binh_registry", event["id"], "st_task", "NB-2024-DT-0001", 3, "delete"
    )  # fmt: skip
    assert at == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert (state, sent, done) == ("pending", None, None)


def test_a_duplicate_is_answered_200_and_stored_once(client, warehouse_url):
    event = change()
    body = json.dumps(event).encode()
    assert post(client, body, signed(body)).status_code == 202
    # A retry is a new delivery (new webhook-id and timestamp) of the same event.
    again = post(client, body, signed(body))
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "source": NB, "id": event["id"]}
    # The event id decides, whatever else the re-send says: the first content stays.
    changed = json.dumps({**event, "data": {**event["data"], "version": 9}}).encode()
    assert post(client, changed, signed(changed)).status_code == 200
    # Ids are unique per source: another source may use the same one.
    other = json.dumps({**event, "source": "thanh-hoa-registry"}).encode()
    assert post(client, other, signed(other, TH_SECRET), "thanh-hoa-registry").status_code == 202

    rows = inbox_rows(warehouse_url)
    assert [(r[0], r[1], r[4]) for r in rows] == [
        ("ninh_binh_registry", event["id"], 3),
        ("thanh_hoa_registry", event["id"], 3),
    ]


def _refusals() -> Iterator[tuple[str, int, Callable[[], tuple[str, bytes, dict[str, str]]]]]:
    def case(event: dict | bytes | None = None, subscription: str = NB, secret: str = NB_SECRET,
             tamper: Callable[[bytes, dict], tuple[bytes, dict]] | None = None):  # fmt: skip
        def build() -> tuple[str, bytes, dict[str, str]]:
            body = event if isinstance(event, bytes) else json.dumps(event or change()).encode()
            headers = signed(body, secret)
            if tamper:
                body, headers = tamper(body, headers)
            return subscription, body, headers

        return build

    def without(header):
        return lambda body, headers: (body, {k: v for k, v in headers.items() if k != header})

    def setting(header, value):
        return lambda body, headers: (body, {**headers, header: value})

    for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        yield f"missing {header}", 401, case(tamper=without(header))
    yield "another source's secret", 401, case(secret=TH_SECRET)
    yield "body changed after signing", 401, case(tamper=lambda b, h: (b + b" ", h))
    yield "webhook-id changed after signing", 401, case(tamper=setting("webhook-id", "msg_x"))
    yield "timestamp not a number", 401, case(tamper=setting("webhook-timestamp", "1e9"))
    yield "timestamp past year 9999", 401, case(tamper=setting("webhook-timestamp", "999999999999"))
    yield (
        "signature of another scheme",
        401,
        case(
            tamper=lambda b, h: (b, {**h, "webhook-signature": "v1a," + h["webhook-signature"][3:]})
        ),
    )
    yield "unknown subscription", 404, case(subscription="ha-tinh-registry")
    yield "catalogue id instead of subscription", 404, case(subscription="ninh_binh_registry")
    yield "source without events", 404, case(subscription="quiet_exchange")
    unknown_entity = change(data={"entity": "listing", "record_id": "X", "version": 1})
    yield "entity the source does not serve", 404, case(unknown_entity)
    yield "event for another source", 403, case(change(source="thanh-hoa-registry"))
    # Signed by Thanh Hóa for its own events, but posted as Ninh Bình: the path's key decides.
    yield (
        "other source's event on this path",
        401,
        case(change(source="thanh-hoa-registry"), secret=TH_SECRET),
    )
    yield "plain JSON content type", 415, case(tamper=setting("content-type", "application/json"))
    yield (
        "CloudEvents batch",
        415,
        case(tamper=setting("content-type", "application/cloudevents-batch+json")),
    )

    def record(**data: Any) -> dict[str, Any]:
        return change(data={"entity": "st_task", "record_id": "A", "version": 1, **data})

    malformed = {
        "not JSON": b"{not json",
        "an array": b"[]",
        "specversion 0.3": change(specversion="0.3"),
        "no id": change(id=None),
        "empty id": change(id=""),
        "id too long": change(id="x" * 257),
        "no source": change(source=None),
        "unknown type": change(type="vn.gov.sti.record.created"),
        "no time": change(time=None),
        "time without offset": change(time="2026-11-30T10:00:00"),
        "time not a timestamp": change(time="yesterday"),
        "a date, not a time": change(time="2026-11-30"),
        "XML data": change(datacontenttype="application/xml"),
        "no data": change(data=None),
        "data in base64": change(data=None, data_base64="e30="),
        "version as text": record(version="3"),
        "version 0": record(version=0),
        "version true": record(version=True),
        "version past bigint": change(
            data={"entity": "st_task", "record_id": "A", "version": 2**63}
        ),
        "no record id": change(data={"entity": "st_task", "version": 1}),
        "NUL in record id": record(record_id="A\x00"),
    }
    for name, event in malformed.items():
        yield f"malformed: {name}", 400, case(event)
    for offset in (-301, 301):
        yield (
            f"timestamp {offset:+} s",
            400,
            case(
                tamper=lambda body, headers, offset=offset: (body, signed_at_offset(body, offset))
            ),
        )
    yield "body over 1 MiB", 413, case(change(padding="x" * MAX_BODY))


def signed_at_offset(body: bytes, offset: float) -> dict[str, str]:
    return signed(body, at=datetime.now(UTC).timestamp() + offset)


REFUSALS = list(_refusals())


@pytest.mark.parametrize(
    ("status", "build"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_each_refusal_is_a_problem_and_stores_nothing(client, warehouse_url, status, build):
    subscription, body, headers = build()
    assert_problem(post(client, body, headers, subscription), status)
    assert inbox_rows(warehouse_url) == []


def test_the_replay_window_is_five_minutes_either_side(warehouse_url, sources):
    now = 1_800_000_000
    app = create_app(warehouse_url, sources, SECRETS, clock=lambda: now)
    with TestClient(app) as client:
        for offset, status in ((-300, 202), (300, 202), (-301, 400), (301, 400), (0, 202)):
            body = json.dumps(change()).encode()
            response = post(client, body, signed(body, at=now + offset))
            assert response.status_code == status, (offset, response.text)
    assert len(inbox_rows(warehouse_url)) == 3


def test_signatures_are_checked_as_the_standard_webhooks_reference_does():
    # The specification's own example (standard-webhooks, spec/standard-webhooks.md).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body, msg_id, at = b'{"test": 2432232314}', "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
    signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(at), "webhook-signature": signature}
    verify_signature(Webhook(secret), headers, body, now=at)

    # Our verdict agrees with the reference `Webhook.verify` on accepted and refused messages.
    webhook, other = Webhook(NB_SECRET), Webhook(TH_SECRET)
    body = json.dumps(change()).encode()
    good = signed(body)
    later = str(int(good["webhook-timestamp"]) + 1)
    variants = {
        "valid": (body, good),
        "several signatures, one valid": (
            body, {**good, "webhook-signature": f"v1,AAAA {good['webhook-signature']}"}
        ),
        "unpadded secret": (body, signed(body, NB_SECRET.rstrip("="))),
        "other secret": (body, signed(body, TH_SECRET)),
        "tampered body": (body + b"\n", good),
        "tampered timestamp": (body, {**good, "webhook-timestamp": later}),
        "no signature": (body, {k: v for k, v in good.items() if k != "webhook-signature"}),
        "stale": (body, signed_at_offset(body, -400)),
    }  # fmt: skip
    for name, (payload, headers) in variants.items():
        try:
            webhook.verify(payload, headers)
            reference = True
        except WebhookVerificationError:
            reference = False
        try:
            verify_signature(webhook, headers, payload, now=datetime.now(UTC).timestamp())
            ours = True
        except Refused:
            ours = False
        assert ours == reference, name
    with pytest.raises(WebhookVerificationError):
        other.verify(body, good)


def test_the_body_limit_is_exact_and_reads_no_further(client, warehouse_url):
    event = change(padding="")
    room = MAX_BODY - len(json.dumps(event).encode())
    exactly = json.dumps({**event, "padding": "x" * room}).encode()
    assert len(exactly) == MAX_BODY
    assert post(client, exactly, signed(exactly)).status_code == 202
    over = json.dumps({**change(), "padding": "x" * (room + 1)}).encode()
    assert len(over) > MAX_BODY
    assert_problem(post(client, over, signed(over)), 413)

    # Streamed without a Content-Length (chunked): refused too.
    def chunks():
        for _ in range(20):
            yield b"x" * 100_000

    headers = signed(b"")
    response = client.post(f"/v1/sources/{NB}/events", content=chunks(), headers=headers)
    assert_problem(response, 413)
    assert len(inbox_rows(warehouse_url)) == 1

    # The reader stops taking from the server past the limit.
    taken = []

    async def receive():
        taken.append(65_536)
        return {"type": "http.request", "body": b"x" * 65_536, "more_body": True}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    with pytest.raises(Refused) as refused:
        asyncio.run(read_body(request, 200_000))
    assert refused.value.status == 413 and sum(taken) <= 200_000 + 65_536


def test_other_paths_and_methods_answer_problems(client):
    assert_problem(client.get(f"/v1/sources/{NB}/events"), 405)
    assert_problem(client.get("/v1/sources"), 404)
    assert_problem(client.post(f"/v1/sources/{NB}/events/"), 404)
    assert client.get("/healthz").json() == {"status": "ok"}


def test_without_a_secret_or_a_database_the_event_gets_503_and_its_retry_is_stored(
    pg_admin_url, sources
):
    body = json.dumps(change()).encode()
    with TestClient(create_app("postgresql://unused", sources, {})) as client:
        response = post(client, body, signed(body))
    assert assert_problem(response, 503) and response.headers["retry-after"]

    dbname = f"sti_test_{uuid.uuid4().hex[:12]}"
    url = urlunsplit(urlsplit(pg_admin_url)._replace(path=f"/{dbname}"))
    try:
        with TestClient(create_app(url, sources, SECRETS)) as client:
            assert_problem(post(client, body, signed(body)), 503)  # no such database yet
            ensure_database(pg_admin_url, dbname)
            ensure_schema(url)
            assert post(client, body, signed(body)).status_code == 202  # the sender's retry
        assert len(inbox_rows(url)) == 1
    finally:
        drop_database(pg_admin_url, dbname)


def test_the_inbox_commits_concurrent_events_in_batches_without_doubles(warehouse_url):
    def row(event_id: str, record_id: str = "R") -> InboxRow:
        return InboxRow(
            "ninh_binh_registry", event_id, "st_task", record_id, 1, "upsert", datetime.now(UTC)
        )

    async def run() -> tuple[list, list, int]:
        inbox = Inbox(warehouse_url)
        await inbox.start()
        try:
            first = await asyncio.gather(*(inbox.store(row(f"e{i % 10}")) for i in range(50)))
            commits = inbox.commits
            second = await asyncio.gather(
                *(inbox.store(row(f"f{i}")) for i in range(5)),
                inbox.store(row("poison", "NUL\x00")),  # a row the database refuses
                return_exceptions=True,
            )
        finally:
            await inbox.close()
        return first, second, commits

    first, second, commits = asyncio.run(run())
    assert first.count(True) == 10 and first.count(False) == 40
    assert commits == 1  # fifty requests at once, one commit
    # The refused row fails alone; the rows batched with it are stored.
    assert second[:5] == [True] * 5 and isinstance(second[5], InboxUnavailable)
    ids = sorted(r[1] for r in inbox_rows(warehouse_url))
    assert ids == [f"e{i}" for i in range(10)] + [f"f{i}" for i in range(5)]


def test_secrets_come_from_the_connections_and_never_show(sources, caplog):
    environ = {
        "AIRFLOW_CONN_NINH_BINH_REGISTRY_EVENTS": json.dumps(
            {"conn_type": "generic", "password": NB_SECRET}
        ),
        "AIRFLOW_CONN_QE": json.dumps({"conn_type": "http", "password": "not-an-event-secret"}),
    }
    with caplog.at_level("DEBUG"):
        assert secrets_from_environment(sources, environ) == {"ninh_binh_registry": NB_SECRET}
    assert "thanh_hoa_registry_events" in caplog.text and "whsec_" not in caplog.text

    uri = "generic://:" + TH_SECRET.replace("+", "%2B").replace("/", "%2F") + "@"
    environ["AIRFLOW_CONN_THANH_HOA_REGISTRY_EVENTS"] = uri
    assert secrets_from_environment(sources, environ)["thanh_hoa_registry"] == TH_SECRET

    environ["AIRFLOW_CONN_THANH_HOA_REGISTRY_EVENTS"] = json.dumps({"password": "whsec_!!!"})
    with pytest.raises(ValueError, match="thanh_hoa_registry_events") as error:
        secrets_from_environment(sources, environ)
    assert "!!!" not in str(error.value) and error.value.__cause__ is None


def test_the_contract_is_valid_openapi_and_documents_every_answer():
    document = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    validate(document)
    answers = document["paths"]["/v1/sources/{subscription}/events"]["post"]["responses"]
    statuses = {status for _, status, _ in REFUSALS} | {200, 202, 503}
    assert statuses <= set(map(int, answers))
