"""The stand-in national intake (local/national_intake/) against its contract
(connectors/contracts/national_intake_v1.openapi.yaml): a real server process over a real
PostgreSQL database of its own, signed batches made with connectors/national_contract.py.

Every test starts from an empty intake (``/admin/reset``, no faults). What was stored is read
from the intake's own database and its append-only ``intake.applied`` log, so "nothing stored"
and "stored once" are checked where they happen, not only in the answers.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from connectors.national_contract import (
    CONTRACT_PATH,
    REASON_CODES,
    body_sha256,
    new_signing_key,
    record_checksum,
    sign_batch,
)
from local.national_intake.process import RunningIntake, run_national_intake
from local.postgres import drop_database, ensure_database

PROVINCES = ("37", "38")
VALID_MST = "0100109106"


@pytest.fixture(scope="module")
def intake_url(pg_admin_url: str) -> Iterator[str]:
    """A database of the intake's own for this module; dropped after."""
    dbname = f"sti_test_intake_{uuid.uuid4().hex[:12]}"
    ensure_database(pg_admin_url, dbname)
    try:
        yield urlunsplit(urlsplit(pg_admin_url)._replace(path=f"/{dbname}"))
    finally:
        drop_database(pg_admin_url, dbname)


@pytest.fixture(scope="module")
def intake(intake_url: str) -> Iterator[RunningIntake]:
    with run_national_intake(intake_url, PROVINCES) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # loopback: never through a proxy from the environment
        yield session


@dataclass
class Sender:
    """Sends batches to the intake as one province would, and reads what the intake holds."""

    intake: RunningIntake
    http: requests.Session
    database_url: str
    tokens: dict[str, str]

    def token(self, province: str) -> str:
        if province not in self.tokens:
            credential = self.intake.credentials[province]
            form = {
                "grant_type": "client_credentials",
                "client_id": credential.client_id,
                "client_secret": credential.client_secret,
            }
            response = self.http.post(self.intake.base_url + "/oauth/token", data=form, timeout=10)
            assert response.status_code == 200, response.text
            self.tokens[province] = response.json()["access_token"]
        return self.tokens[province]

    def post(
        self,
        records: list[dict[str, Any]],
        *,
        province: str = "37",
        entity: str = "st_task",
        key: str | None = None,
        body: bytes | None = None,
        body_province: str | None = None,
        signed_body: bytes | None = None,
        signing_key: tuple[str, str] | None = None,
        signed_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30,
    ) -> requests.Response:
        """POST a batch of ``records``, signed with the province's key unless told otherwise:
        ``signed_body`` is what was signed (then ``body`` is sent), ``signing_key`` (private
        PEM, key id) another key, ``signed_key`` another idempotency key in the signature."""
        key = key or f"{province}.{entity}.e1.{uuid.uuid4().hex[:16]}"
        if body is None:
            document = {
                "province_code": body_province or province,
                "entity": entity,
                "records": records,
            }
            body = orjson.dumps(document)
        credential = self.intake.credentials[province]
        private_pem, key_id = signing_key or (credential.private_key_pem, credential.key_id)
        signature = sign_batch(
            signed_body if signed_body is not None else body,
            signed_key or key,
            len(records),
            private_pem,
            key_id,
        )
        sent = {
            "Authorization": f"Bearer {self.token(province)}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "X-Manifest-Record-Count": str(len(records)),
            "X-Manifest-SHA256": body_sha256(body),
            "X-JWS-Signature": signature,
            **(headers or {}),
        }
        return self.http.post(
            self.intake.base_url + "/v1/batches", data=body, headers=sent, timeout=timeout
        )

    def get(self, path: str, province: str = "37", **params: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token(province)}"}
        return self.http.get(
            self.intake.base_url + path, params=params, headers=headers, timeout=30
        )

    def admin(self, method: str, path: str, body: Any = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.intake.admin_token}"}
        response = self.http.request(
            method, self.intake.base_url + path, json=body, headers=headers, timeout=30
        )
        assert response.status_code == 200, response.text
        return response

    def applied(self) -> dict[str, Any]:
        return self.admin("GET", "/admin/applied").json()

    def holdings(self) -> dict[tuple[str, str], tuple[str, str, dict[str, Any]]]:
        """(entity, record_key) -> (province, digest, data), read from the intake's database."""
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "select entity, record_key, province_code, content_digest, data"
                " from intake.holdings"
            ).fetchall()
        return {(e, k): (p, d, data) for e, k, p, d, data in rows}

    def summary(self, entity: str = "st_task", province: str = "37") -> dict[str, Any]:
        response = self.get("/v1/holdings/summary", province, province_code=province)
        assert response.status_code == 200, response.text
        (found,) = [e for e in response.json()["entities"] if e["entity"] == entity]
        return found


@pytest.fixture
def sender(intake: RunningIntake, http: requests.Session, intake_url: str) -> Sender:
    """A sender to an empty intake without faults."""
    sender = Sender(intake, http, intake_url, {})
    sender.admin("DELETE", "/admin/faults")
    sender.admin("POST", "/admin/reset")
    return sender


def task(number: int, province: str = "37", **fields: Any) -> dict[str, Any]:
    """An upsert of a standardised S&T task record."""
    data = {
        "task_code": f"NB-2024-DT-{number:04d}",
        "title": f"Nghiên cứu ứng dụng công nghệ số {number}",
        "province_code": province,
        "province_code_recorded": "37",
        "field_code": "20201",
        "host_organisation_key": VALID_MST,
        "principal_investigator_key": hashlib.sha256(f"pi{number}".encode()).hexdigest()[:20],
        "start_date": "2024-01-01",
        "budget_state_million_vnd": 1500.5,
        **fields,
    }
    return {
        "record_key": f"{province}:NB-2024-DT-{number:04d}",
        "op": "upsert",
        "content_digest": hashlib.sha256(orjson.dumps(data)).hexdigest(),
        "data": data,
    }


def test_a_valid_signed_batch_is_accepted_and_stored(sender: Sender) -> None:
    records = [task(n) for n in range(3)]
    response = sender.post(records, key="37.st_task.e1.0000000000000001")

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["idempotency_key"] == "37.st_task.e1.0000000000000001"
    assert (answer["accepted_count"], answer["rejected_count"], answer["rejections"]) == (3, 0, [])
    assert "Idempotent-Replayed" not in response.headers
    held = sender.holdings()
    assert held == {
        ("st_task", r["record_key"]): ("37", r["content_digest"], r["data"]) for r in records
    }
    status = sender.get("/v1/batches/37.st_task.e1.0000000000000001")
    assert status.status_code == 200
    assert status.json() == answer
    # Another province does not see it.
    assert sender.get("/v1/batches/37.st_task.e1.0000000000000001", "38").status_code == 404


def test_the_same_key_and_body_again_answers_the_stored_response(sender: Sender) -> None:
    records = [task(n) for n in range(4)]
    body = orjson.dumps({"province_code": "37", "entity": "st_task", "records": records})
    first = sender.post(records, key="37.st_task.e1.replay", body=body)
    again = sender.post(records, key="37.st_task.e1.replay", body=body)

    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    applied = sender.applied()
    assert (applied["batches"], applied["applied"], applied["duplicate_changes"]) == (1, 4, 0)


def test_the_same_key_with_another_body_is_refused(sender: Sender) -> None:
    assert sender.post([task(1)], key="37.st_task.e1.reused").status_code == 200
    response = sender.post([task(2)], key="37.st_task.e1.reused")

    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert set(sender.holdings()) == {("st_task", "37:NB-2024-DT-0001")}
    assert sender.applied()["applied"] == 1


def _altered(body: bytes) -> bytes:
    return body.replace(b"NB-2024-DT-0001", b"NB-2024-DT-0009", 1)


FORGERIES = {
    "bad signature": (
        {"headers": {"X-JWS-Signature": "eyJhbGciOiJFZERTQSJ9..c2lnbmF0dXJl"}},
        401,
        "signature_invalid",
    ),
    "no signature": ({"headers": {"X-JWS-Signature": ""}}, 401, "signature_invalid"),
    "signed with another province's key": (
        {"signing_key": "38"},
        401,
        "signature_invalid",
    ),
    "signed with an unregistered key": (
        {"signing_key": "new"},
        401,
        "signature_invalid",
    ),
    "body altered after signing": ({"altered": True}, 401, "signature_invalid"),
    "signed for another idempotency key": (
        {"signed_key": "37.st_task.e1.other"},
        401,
        "signature_invalid",
    ),
    "manifest count wrong": (
        {"headers": {"X-Manifest-Record-Count": "3"}},
        400,
        "manifest_mismatch",
    ),
    "manifest hash wrong": (
        {"headers": {"X-Manifest-SHA256": "0" * 64}},
        400,
        "manifest_mismatch",
    ),
    "manifest count missing": (
        {"headers": {"X-Manifest-Record-Count": ""}},
        400,
        "manifest_mismatch",
    ),
}


@pytest.mark.parametrize("case", list(FORGERIES))
def test_forged_or_altered_batches_are_refused_and_nothing_is_stored(
    sender: Sender, case: str
) -> None:
    options, status, error = FORGERIES[case]
    options = dict(options)
    records = [task(1), task(2)]
    if options.pop("altered", False):
        signed = orjson.dumps({"province_code": "37", "entity": "st_task", "records": records})
        options.update(signed_body=signed, body=_altered(signed))
    if options.get("signing_key") == "38":
        credential = sender.intake.credentials["38"]
        options["signing_key"] = (credential.private_key_pem, credential.key_id)
    elif options.get("signing_key") == "new":
        options["signing_key"] = (new_signing_key()[0], sender.intake.credentials["37"].key_id)

    response = sender.post(records, **options)

    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert sender.holdings() == {}
    assert sender.applied()["batches"] == sender.applied()["applied"] == 0


def test_a_token_of_one_province_cannot_send_another_provinces_body(sender: Sender) -> None:
    response = sender.post([task(1, "38")], province="37", body_province="38")

    assert response.status_code == 403
    assert response.json()["error"] == "province_forbidden"
    assert sender.holdings() == {}


def test_requests_without_a_valid_token_are_refused(sender: Sender) -> None:
    response = sender.post([task(1)], headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert sender.get("/v1/holdings/summary", province_code="38").status_code == 403


def test_records_breaking_the_rules_are_rejected_with_reason_codes(sender: Sender) -> None:
    no_data = {"record_key": "37:NB-2024-DT-0008", "op": "upsert", "content_digest": "d"}
    no_digest = {"record_key": "37:NB-2024-DT-0009", "op": "upsert", "data": {"a": 1}}
    records = [
        task(0),
        task(1, province_code_current="99"),
        task(2, field_code="99999"),
        task(3, host_organisation_key="0101234567"),
        task(4, note="liên hệ 0912 345 678"),
        task(5, members=[{"role": "pi", "contact": "an.nguyen@example.vn"}]),
        task(6, remark="CCCD 037095000123"),
        no_data,
        no_digest,
        {"op": "upsert", "content_digest": "d", "data": {}},
        task(10, partner_msts=[VALID_MST, "0100109106-001"]),
        {"record_key": "37:NB-2024-DT-0011", "op": "delete"},  # not held: accepted
    ]
    response = sender.post(records)

    assert response.status_code == 200, response.text
    answer = response.json()
    reasons = {r["index"]: (r["record_key"], r["reason_code"]) for r in answer["rejections"]}
    assert reasons == {
        1: ("37:NB-2024-DT-0001", "UNKNOWN_PROVINCE"),
        2: ("37:NB-2024-DT-0002", "UNKNOWN_RESEARCH_FIELD"),
        3: ("37:NB-2024-DT-0003", "INVALID_ORGANISATION_KEY"),
        4: ("37:NB-2024-DT-0004", "PERSONAL_DATA"),
        5: ("37:NB-2024-DT-0005", "PERSONAL_DATA"),
        6: ("37:NB-2024-DT-0006", "PERSONAL_DATA"),
        7: ("37:NB-2024-DT-0008", "MISSING_FIELD"),
        8: ("37:NB-2024-DT-0009", "MISSING_FIELD"),
        9: (None, "MISSING_FIELD"),
    }
    assert (answer["accepted_count"], answer["rejected_count"]) == (3, 9)
    assert all(r["reason_code"] in REASON_CODES for r in answer["rejections"])
    # The reasons name the field, never the personal data itself.
    assert not any("0912" in r["reason"] or "@" in r["reason"] for r in answer["rejections"])
    assert set(sender.holdings()) == {
        ("st_task", "37:NB-2024-DT-0000"),
        ("st_task", "37:NB-2024-DT-0010"),
    }
    assert sender.applied()["applied"] == 3  # the two upserts and the delete


def test_rejections_on_demand(sender: Sender) -> None:
    sender.admin("POST", "/admin/faults", {"mode": "reject", "reject_every": 3, "count": 1})
    first = sender.post([task(n) for n in range(7)]).json()
    second = sender.post([task(n) for n in range(10, 13)]).json()

    assert [(r["index"], r["reason_code"]) for r in first["rejections"]] == [
        (2, "REJECTED_ON_DEMAND"),
        (5, "REJECTED_ON_DEMAND"),
    ]
    assert second["rejections"] == []  # the fault was for one batch


def test_a_5xx_stores_nothing_and_the_retry_is_stored_once(sender: Sender) -> None:
    sender.admin("POST", "/admin/faults", {"mode": "error_5xx", "count": 2})
    records = [task(n) for n in range(3)]
    body = orjson.dumps({"province_code": "37", "entity": "st_task", "records": records})
    statuses = [sender.post(records, key="37.st_task.e1.retry", body=body).status_code]
    statuses.append(sender.post(records, key="37.st_task.e1.retry", body=body).status_code)
    assert statuses == [503, 503]
    assert sender.holdings() == {}

    assert sender.post(records, key="37.st_task.e1.retry", body=body).status_code == 200
    assert sender.applied()["applied"] == 3


def test_a_timeout_after_store_is_resolved_by_the_status_endpoint(sender: Sender) -> None:
    sender.admin("POST", "/admin/faults", {"mode": "timeout_after_store", "delay_seconds": 5})
    records = [task(n) for n in range(5)]
    body = orjson.dumps({"province_code": "37", "entity": "st_task", "records": records})
    with pytest.raises(requests.Timeout):
        sender.post(records, key="37.st_task.e1.ambiguous", body=body, timeout=1)

    status = sender.get("/v1/batches/37.st_task.e1.ambiguous")
    assert status.status_code == 200
    assert status.json()["accepted_count"] == 5
    # Sending the very same bytes again is safe too: the stored answer, nothing applied twice.
    again = sender.post(records, key="37.st_task.e1.ambiguous", body=body)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == status.json()
    applied = sender.applied()
    assert (applied["batches"], applied["applied"], applied["duplicate_changes"]) == (1, 5, 0)


def test_a_slow_intake_still_answers(sender: Sender) -> None:
    sender.admin("POST", "/admin/faults", {"mode": "slow", "delay_seconds": 0.5, "count": 1})
    assert sender.post([task(1)]).status_code == 200


def test_reset_loses_everything(sender: Sender) -> None:
    assert sender.post([task(1), task(2)], key="37.st_task.e1.lost").status_code == 200
    deleted = sender.admin("POST", "/admin/reset").json()["deleted"]

    assert deleted == {"batches": 1, "holdings": 2, "applied": 2}
    assert sender.holdings() == {}
    assert sender.summary()["record_count"] == 0
    assert sender.get("/v1/batches/37.st_task.e1.lost").status_code == 404
    # The same batch may be sent again after the loss; it is stored anew.
    assert sender.post([task(1), task(2)], key="37.st_task.e1.lost").status_code == 200
    assert sender.summary()["record_count"] == 2


def test_the_holdings_checksum_is_the_record_checksum_of_what_was_sent(sender: Sender) -> None:
    first = [task(n) for n in range(40)]
    changed = [task(n, title=f"Sửa đổi {n}") for n in range(30, 40)]
    deletes = [{"record_key": f"37:NB-2024-DT-{n:04d}", "op": "delete"} for n in range(0, 10)]
    for batch in (first, changed + deletes):
        response = sender.post(batch)
        assert response.status_code == 200 and response.json()["rejected_count"] == 0
    sender.post([task(1, "38")], province="38", entity="st_task")  # another province's

    expected = {r["record_key"]: r["content_digest"] for r in first[10:30] + changed}
    summary = sender.summary()
    assert summary["record_count"] == len(expected) == 30
    assert int(summary["checksum"]) == record_checksum(expected.items())
    # The listing pages through the same records in bytewise key order.
    listed, after = [], None
    while True:
        params = {"limit": 7, **({"after": after} if after else {})}
        page = sender.get("/v1/holdings/st_task", **params).json()
        listed += [(r["record_key"], r["content_digest"]) for r in page["records"]]
        after = page["next_after"]
        if after is None:
            break
    assert listed == sorted(expected.items(), key=lambda pair: pair[0].encode())
    other = sender.summary(province="38")
    assert other["record_count"] == 1


# --- The contract, fuzzed -------------------------------------------------------------------

FUZZ = settings(
    max_examples=15,  # per operation and phase: the whole contract in well under a minute
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
national_intake_api = schemathesis.openapi.from_path(CONTRACT_PATH)


@national_intake_api.parametrize()
@FUZZ
def test_the_stand_in_conforms_to_its_contract(
    case: schemathesis.Case, intake: RunningIntake, http: requests.Session, intake_url: str
) -> None:
    """Every built-in check (server errors, status codes, content types, headers, response
    schemas, auth, rejection of invalid and acceptance of valid data). A schema-valid batch
    is answered 401: a generated signature is never valid, which the check accepts."""
    sender = Sender(intake, http, intake_url, {})
    if case.path == "/oauth/token":
        headers: dict[str, str] = {}
    elif case.path.startswith("/admin/"):
        headers = {"Authorization": f"Bearer {intake.admin_token}"}
    else:
        headers = {"Authorization": f"Bearer {sender.token('37')}"}
    try:
        case.call_and_validate(base_url=intake.base_url, session=http, headers=headers)
    finally:
        if case.path == "/admin/faults":  # a fault set by the fuzzer must not outlive its case
            sender.admin("DELETE", "/admin/faults")
