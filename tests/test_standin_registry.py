"""The stand-in provincial STI registry, over real HTTP, checked against its OpenAPI contract.

Every contract request and response goes through openapi-core, so a traversal also checks
every record against the S&T task schema.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import socket
import subprocess
import sys
import time
import unicodedata
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from starlette.testclient import TestClient
from stdnum.vn import mst

from local.registry import SECRET_ENV
from local.registry.app import RegistrySettings, create_multi_app
from local.registry.data import (
    BAD_KINDS,
    TaskGenerator,
    TaskRegistry,
    bad_counts,
    bad_kind,
)
from local.registry.process import RunningRegistry, run_registry
from local.standin_http import MAX_TARGET

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACT = REPO_ROOT / "connectors/contracts/registry_api_v1.openapi.yaml"
FIELDS_CSV = REPO_ROOT / "dbt_project/seeds/research_fields_qd12_2008.csv"
RECORDS, SEED, BAD_SHARE = 500, 42, 0.05
TASK_FIELDS = {
    "id", "version", "updated_at", "deleted", "title", "task_level", "task_type", "field_code",
    "host_organisation_name", "host_organisation_code", "principal_investigator",
    "province_code", "budget_state_million_vnd", "budget_other_million_vnd", "start_date",
    "end_date", "status", "acceptance_date", "acceptance_rating",
}  # fmt: skip


@pytest.fixture(scope="module")
def contract() -> OpenAPI:
    # openapi-core only parses media types it knows; problem+json is JSON.
    config = Config(extra_media_type_deserializers={"application/problem+json": orjson.loads})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return OpenAPI.from_file_path(str(CONTRACT), config=config)


class ContractClient:
    """A tiny registry client that validates each exchange against the OpenAPI contract."""

    def __init__(self, registry: RunningRegistry, contract: OpenAPI) -> None:
        self.registry = registry
        self.contract = contract
        self.session = requests.Session()
        self._token: str | None = None

    def send(
        self, method: str, path: str, *, check_request: bool = True, **kwargs: Any
    ) -> requests.Response:
        response = self.session.request(method, self.registry.base_url + path, timeout=30, **kwargs)
        request = RequestsOpenAPIRequest(response.request)
        with warnings.catch_warnings():  # openapi-core cannot check oauth2 and says so
            warnings.simplefilter("ignore", UserWarning)
            if check_request:
                self.contract.validate_request(request)
            self.contract.validate_response(request, RequestsOpenAPIResponse(response))
        return response

    def token(self) -> str:
        if self._token is None:
            response = self.send("POST", "/oauth/token", data=self.credentials())
            assert response.status_code == 200, response.text
            self._token = response.json()["access_token"]
        return self._token

    def credentials(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.registry.client_id,
            "client_secret": self.registry.client_secret,
        }

    def list(self, params: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        return self.send("GET", "/v1/st-tasks", params=params, headers=headers, **kwargs)

    def pages(self, limit: int, updated_since: str | None = None) -> Iterator[requests.Response]:
        """Every page of a traversal, following next_cursor."""
        params: dict[str, Any] = {"limit": limit}
        if updated_since is not None:
            params["updated_since"] = updated_since
        while True:
            response = self.list(params)
            assert response.status_code == 200, response.text
            yield response
            page = response.json()
            if not page["has_more"]:
                assert page["next_cursor"] is None
                return
            params = {"limit": limit, "cursor": page["next_cursor"]}

    def traverse(self, limit: int, updated_since: str | None = None) -> list[dict[str, Any]]:
        return [r for page in self.pages(limit, updated_since) for r in page.json()["data"]]

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Stand-in-only endpoints: not in the contract, so not validated."""
        response = self.session.request(method, self.registry.base_url + path, timeout=30, **kwargs)
        assert response.status_code == 200, response.text
        return response


@pytest.fixture(scope="module")
def registry() -> Iterator[RunningRegistry]:
    """The shared server. Tests must leave it unchanged (changes go to their own server)."""
    with run_registry(records=RECORDS, seed=SEED, bad_share=BAD_SHARE) as running:
        yield running


@pytest.fixture(scope="module")
def client(registry: RunningRegistry, contract: OpenAPI) -> ContractClient:
    return ContractClient(registry, contract)


@pytest.fixture(scope="module")
def all_records(client: ContractClient) -> list[dict[str, Any]]:
    return client.traverse(limit=97)


def known_field_codes() -> set[str]:
    with FIELDS_CSV.open(encoding="utf-8") as handle:
        return {row["field_code"] for row in csv.DictReader(handle) if row["field_level"] == "3"}


def observed_defect(record: dict[str, Any], field_codes: set[str]) -> str | None:
    """Which bad kind a record shows, judged from its content only."""
    if record["id"] is None:
        return "missing_id"
    if record["field_code"] not in field_codes:
        return "unknown_field_code"
    if record["end_date"] < record["start_date"]:
        return "end_before_start"
    if record["budget_state_million_vnd"] < 0:
        return "negative_budget"
    return None


# --- Token endpoint -------------------------------------------------------------------------


def test_token_is_issued_for_form_and_basic_client_authentication(client: ContractClient):
    form = client.send("POST", "/oauth/token", data=client.credentials())
    assert form.status_code == 200
    body = form.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert form.headers["Cache-Control"] == "no-store"

    basic = client.send(
        "POST",
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.registry.client_id, client.registry.client_secret),
    )
    assert basic.status_code == 200
    assert basic.json()["access_token"] != body["access_token"]


def test_token_endpoint_rejects_wrong_client_and_grant(client: ContractClient):
    wrong_secret = {**client.credentials(), "client_secret": "not-the-secret"}
    response = client.send("POST", "/oauth/token", data=wrong_secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"

    wrong_id = {**client.credentials(), "client_id": "someone-else"}
    assert client.send("POST", "/oauth/token", data=wrong_id).status_code == 401

    wrong_grant = {**client.credentials(), "grant_type": "password"}
    response = client.send("POST", "/oauth/token", data=wrong_grant, check_request=False)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


# --- Traversal ------------------------------------------------------------------------------


def test_full_traversal_returns_every_record_once_in_order(
    client: ContractClient, all_records: list[dict[str, Any]]
):
    stats = client.admin("GET", "/_standin/stats").json()
    assert len(all_records) == stats["records"] == RECORDS

    # Exactly the generated records, in index order: none skipped, none repeated.
    generator = TaskGenerator(RECORDS, SEED, BAD_SHARE)
    assert all_records == [generator.record(i) for i in range(RECORDS)]
    ids = [r["id"] for r in all_records if r["id"] is not None]
    assert len(ids) == len(set(ids))
    timestamps = [r["updated_at"] for r in all_records]
    assert timestamps == sorted(timestamps)
    assert timestamps[0].startswith("2019-01-01") and timestamps[-1] <= "2026-06-30T23:59:59Z"


def test_pages_have_the_requested_size_and_the_last_one_says_so(client: ContractClient):
    pages = [response.json() for response in client.pages(limit=97)]
    assert [len(p["data"]) for p in pages] == [97] * 5 + [RECORDS - 5 * 97]
    assert all(p["has_more"] and p["next_cursor"] for p in pages[:-1])
    assert pages[-1]["has_more"] is False and pages[-1]["next_cursor"] is None


def test_default_and_maximum_limits(client: ContractClient):
    assert len(client.list().json()["data"]) == RECORDS  # default 1000 > 500
    assert len(client.list({"limit": 10000}).json()["data"]) == RECORDS
    one = client.list({"limit": 1}).json()
    assert len(one["data"]) == 1 and one["has_more"] is True


def test_records_are_realistic(all_records: list[dict[str, Any]]):
    field_codes = known_field_codes()
    for record in all_records:
        assert set(record) == TASK_FIELDS
        assert unicodedata.is_normalized("NFC", record["title"])
        assert unicodedata.is_normalized("NFC", record["principal_investigator"])
        assert record["province_code"] == "37"
        assert record["version"] == 1 and record["deleted"] is False
        assert record["updated_at"].endswith("Z")
        if record["host_organisation_code"] is not None:
            assert mst.is_valid(record["host_organisation_code"])
        if observed_defect(record, field_codes) is None:
            assert record["id"].startswith(f"NB-{record['start_date'][:4]}-")
            assert "2018-01-01" <= record["start_date"] < record["end_date"] <= "2026-12-31"
            assert 200 <= record["budget_state_million_vnd"] <= 5000
            assert record["budget_other_million_vnd"] >= 0
        if record["status"] in ("accepted", "applied"):
            assert record["acceptance_date"] is not None
            assert record["acceptance_rating"] is not None
            assert record["acceptance_date"] <= record["updated_at"][:10]
        else:
            assert record["acceptance_date"] is None and record["acceptance_rating"] is None
    # Both kinds of host appear: companies with an MST and public bodies without one.
    codes = [r["host_organisation_code"] for r in all_records]
    assert any(code is None for code in codes) and any(code is not None for code in codes)


# --- Filter and cursor ----------------------------------------------------------------------


def test_updated_since_is_inclusive(client: ContractClient, all_records: list[dict[str, Any]]):
    k = 250
    since = all_records[k]["updated_at"]
    assert all_records[k - 1]["updated_at"] < since  # 500 records: timestamps are distinct
    assert client.traverse(limit=97, updated_since=since) == all_records[k:]

    # The same instant with an offset selects the same records.
    instant = dt.datetime.fromisoformat(since)
    in_hanoi = instant.astimezone(dt.timezone(dt.timedelta(hours=7))).isoformat()
    assert client.list({"updated_since": in_hanoi}).json()["data"] == all_records[k:]

    # One second later excludes record k.
    later = (instant + dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    assert client.list({"updated_since": later}).json()["data"] == all_records[k + 1 :]


def test_cursor_carries_the_filter(client: ContractClient, all_records: list[dict[str, Any]]):
    since = all_records[100]["updated_at"]
    first = client.list({"updated_since": since, "limit": 10}).json()
    cursor = first["next_cursor"]
    without = client.list({"cursor": cursor, "limit": 10}).json()
    assert without["data"] == all_records[110:120]
    same = client.list({"cursor": cursor, "updated_since": since, "limit": 10}).json()
    assert same == without

    other = all_records[5]["updated_at"]
    response = client.list({"cursor": cursor, "updated_since": other}, check_request=False)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "cursor",
    ["not a cursor!", "AAAA", "x" * 60],
    ids=["not-base64", "too-short", "wrong-length"],
)
def test_malformed_cursor_is_a_bad_request(client: ContractClient, cursor: str):
    response = client.list({"cursor": cursor})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 400


def test_tampered_cursor_is_a_bad_request(client: ContractClient):
    cursor = client.list({"limit": 5}).json()["next_cursor"]
    position = len(cursor) // 3  # inside the packed last key
    tampered = (
        cursor[:position] + ("B" if cursor[position] != "B" else "C") + cursor[position + 1 :]
    )
    response = client.list({"cursor": tampered})
    assert response.status_code == 400
    assert "cursor" in response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 10001}, {"limit": "many"}, {"updated_since": "yesterday"},
     {"updated_since": "2024-03-05"}, {"updated_since": "2024-13-05T00:00:00Z"}],
)  # fmt: skip
def test_invalid_parameters_are_bad_requests(client: ContractClient, params: dict[str, Any]):
    response = client.list(params, check_request=False)  # the request breaks the contract
    assert response.status_code == 400
    assert response.json()["title"] == "Bad Request"


# --- Authentication and errors --------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
def test_requests_without_a_valid_token_are_unauthorized(
    client: ContractClient, authorization: str | None
):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.send("GET", "/v1/st-tasks", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.headers["Content-Type"] == "application/problem+json"


def test_expired_token_is_unauthorized(contract: OpenAPI):
    with run_registry(records=10, token_ttl=1) as short_lived:
        client = ContractClient(short_lived, contract)
        assert client.list().status_code == 200
        time.sleep(1.2)  # the token lives 1 s
        response = client.list()
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_unknown_entity_and_path_are_not_found(client: ContractClient):
    headers = {"Authorization": f"Bearer {client.token()}"}
    response = client.send("GET", "/v1/st-widgets", headers=headers, check_request=False)
    assert response.status_code == 404
    assert response.json()["title"] == "Not Found"

    response = client.session.get(client.registry.base_url + "/v2/st-tasks", timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"


def test_healthz(client: ContractClient):
    response = client.send("GET", "/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_injected_faults_carry_retry_after_then_recover(client: ContractClient):
    client.admin("POST", "/_standin/faults", json={"status": 503, "count": 2, "retry_after": 1})
    for _ in range(2):
        response = client.list({"limit": 1})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.json()["status"] == 503
    assert client.list({"limit": 1}).status_code == 200

    client.admin("POST", "/_standin/faults", json={"status": 429, "count": 1, "retry_after": 2})
    response = client.list({"limit": 1})
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"
    assert client.list({"limit": 1}).status_code == 200


# --- Determinism and bad records ------------------------------------------------------------


def page_bodies(client: ContractClient, limit: int) -> list[bytes]:
    return [response.content for response in client.pages(limit)]


def test_same_settings_serve_byte_identical_pages(client: ContractClient, contract: OpenAPI):
    with run_registry(records=RECORDS, seed=SEED, bad_share=BAD_SHARE) as twin:
        assert page_bodies(ContractClient(twin, contract), 200) == page_bodies(client, 200)
    with run_registry(records=RECORDS, seed=SEED + 1, bad_share=BAD_SHARE) as other:
        other_bodies = page_bodies(ContractClient(other, contract), 200)
    assert other_bodies != page_bodies(client, 200)


def test_bad_records_match_stats_and_bad_kind(
    client: ContractClient, all_records: list[dict[str, Any]]
):
    field_codes = known_field_codes()
    observed = [observed_defect(record, field_codes) for record in all_records]
    assert observed == [bad_kind(i, BAD_SHARE) for i in range(RECORDS)]

    stats = client.admin("GET", "/_standin/stats").json()
    assert stats["bad"] == {kind: observed.count(kind) for kind in BAD_KINDS}
    assert stats["bad"] == bad_counts(RECORDS, BAD_SHARE)
    assert sum(stats["bad"].values()) == RECORDS * BAD_SHARE
    assert stats["changes"] == 0


# --- Changes --------------------------------------------------------------------------------


def test_changes_move_records_to_the_end_with_bumped_versions(contract: OpenAPI):
    with run_registry(records=300, seed=7) as changing:
        client = ContractClient(changing, contract)
        before = client.traverse(limit=97)
        by_id = {r["id"]: r for r in before if r["id"] is not None}
        watermark = before[-1]["updated_at"]

        changed = client.admin("POST", "/_standin/changes", json={"update": 3, "delete": 2}).json()
        assert len(changed["updated"]) == 3 and len(changed["deleted"]) == 2
        assert len(set(changed["updated"] + changed["deleted"])) == 5

        # The incremental pull from the watermark: the boundary record (inclusive), then the
        # changes in the order they were made, each with a later updated_at and version + 1.
        after = client.traverse(limit=2, updated_since=watermark)
        assert after[0] == before[-1] or after[0]["id"] in changed["updated"] + changed["deleted"]
        tail = after[-5:]
        assert [r["id"] for r in tail] == changed["updated"] + changed["deleted"]
        assert [r["deleted"] for r in tail] == [False] * 3 + [True] * 2
        for record in tail:
            original = by_id[record["id"]]
            assert record["version"] == original["version"] + 1
            assert record["updated_at"] > watermark
            assert {**record, "version": 0, "updated_at": "", "deleted": False} == {
                **original, "version": 0, "updated_at": "", "deleted": False
            }  # fmt: skip
        assert [r["updated_at"] for r in tail] == sorted({r["updated_at"] for r in tail})

        # A full extraction still returns every record exactly once, the changed ones last.
        now = client.traverse(limit=97)
        assert len(now) == 300 == client.admin("GET", "/_standin/stats").json()["records"]
        assert now[-5:] == tail
        stats = client.admin("GET", "/_standin/stats").json()
        assert stats["changes"] == 5
        assert stats["bad"] == bad_counts(300, BAD_SHARE)


def test_changes_during_a_traversal_skip_nothing(contract: OpenAPI):
    with run_registry(records=300, seed=11) as changing:
        client = ContractClient(changing, contract)
        first = client.list({"limit": 150}).json()
        changed = client.admin("POST", "/_standin/changes", json={"update": 20, "delete": 5})
        changed_ids = set(changed.json()["updated"] + changed.json()["deleted"])
        rest: list[dict[str, Any]] = []
        params: dict[str, Any] = {"cursor": first["next_cursor"], "limit": 40}
        while True:
            page = client.list(params).json()
            rest += page["data"]
            if not page["has_more"]:
                break
            params = {"cursor": page["next_cursor"], "limit": 40}

        served = first["data"] + rest
        served_ids = [r["id"] for r in served if r["id"] is not None]  # bad records lack one
        everything = {r["id"] for r in client.traverse(limit=300) if r["id"] is not None}
        assert set(served_ids) == everything  # nothing skipped
        repeated = {i for i in served_ids if served_ids.count(i) > 1}
        assert repeated <= changed_ids  # only records that changed are served again
        assert {r["id"] for r in rest[-25:]} == changed_ids
        served_before = sum(r["id"] in changed_ids for r in first["data"])
        assert len(served) == 300 + served_before  # each change served once more, at the end


def test_changes_refuse_more_than_remain_and_bad_bodies(contract: OpenAPI):
    with run_registry(records=20, bad_share=0.25) as tiny:
        client = ContractClient(tiny, contract)
        url = tiny.base_url + "/_standin/changes"
        assert client.session.post(url, json={"update": 16}, timeout=10).status_code == 409
        assert client.session.post(url, json={"update": -1}, timeout=10).status_code == 400
        assert client.session.post(url, data=b"[", timeout=10).status_code == 400
        ok = client.session.post(url, json={"update": 10, "delete": 5}, timeout=10)
        assert ok.status_code == 200
        ids = ok.json()["updated"] + ok.json()["deleted"]
        assert len(set(ids)) == 15 and None not in ids  # every good record, each once
        assert client.session.post(url, json={"delete": 1}, timeout=10).status_code == 409


# --- In-process checks of the data layer ----------------------------------------------------


def test_a_million_records_page_from_anywhere_without_materialising():
    registry = TaskRegistry(TaskGenerator(1_000_000, SEED, BAD_SHARE))
    last = registry.page(after_seq=999_989, updated_since=None, limit=100)
    assert len(last.records) == 10 and last.has_more is False
    assert last.records[-1]["updated_at"] <= "2026-06-30T23:59:59Z"
    late = registry.page(
        after_seq=None, updated_since=registry.generator.updated_at(999_000), limit=5
    )
    assert late.records[0] == registry.generator.record(999_000)
    assert registry.stats()["bad"] == bad_counts(1_000_000, BAD_SHARE)


def test_bad_kind_cycles_through_the_kinds_evenly():
    kinds = [bad_kind(i, 0.05) for i in range(400)]
    defects = [k for k in kinds if k is not None]
    assert len(defects) == 20
    assert defects == list(BAD_KINDS) * 5
    assert bad_kind(0, 0.0) is None and all(bad_kind(i, 1.0) is not None for i in range(8))


def test_secret_is_not_shown(registry: RunningRegistry):
    assert registry.client_secret not in repr(registry)
    assert "hush" not in repr(RegistrySettings(client_secret="hush"))


def test_server_log_never_shows_the_secret_or_tokens(tmp_path: Path):
    secret = "s3cret-" + "x" * 20
    port = _free_port()
    log_path = tmp_path / "registry.log"
    command = [sys.executable, "-m", "local.registry", "--port", str(port), "--records", "20"]
    env = {**os.environ, SECRET_ENV: secret, "PYTHONPATH": str(REPO_ROOT)}
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    try:
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(200):  # up to ~10 s
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(base_url + "/healthz", timeout=1).ok:
                    break
            time.sleep(0.05)
        form = {"grant_type": "client_credentials", "client_id": "sti-pipeline-local"}
        token = requests.post(
            base_url + "/oauth/token", data={**form, "client_secret": secret}, timeout=10
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert requests.get(base_url + "/v1/st-tasks", headers=headers, timeout=10).ok
        requests.post(
            base_url + "/oauth/token", data={**form, "client_secret": "wrong"}, timeout=10
        )
    finally:
        server.terminate()
        server.wait(10)
    log_text = log_path.read_text()
    assert "GET /v1/st-tasks" in log_text  # the access log is on at the default level
    assert secret not in log_text and token not in log_text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_startup_failure_reports_the_server_error():
    with pytest.raises(RuntimeError, match="bad-share"), run_registry(bad_share=2.0):
        pass


# --- Contract edges (issue 13) --------------------------------------------------------------


def test_problem_instance_is_the_path_as_sent(client: ContractClient):
    headers = {"Authorization": f"Bearer {client.token()}"}
    response = client.send("GET", "/v1/%C3%A5%5D", headers=headers, check_request=False)
    assert response.status_code == 404
    assert response.json()["instance"] == "/v1/%C3%A5%5D"  # not the decoded "/v1/å]"
    unauthorized = client.send("GET", "/v1/st-tasks%20x", check_request=False)
    assert unauthorized.json()["instance"] == "/v1/st-tasks%20x"


def test_over_long_request_targets_are_414_problems(client: ContractClient):
    headers = {"Authorization": f"Bearer {client.token()}"}
    target = "/v1/st-tasks?cursor="
    at_limit = client.send(
        "GET", target + "a" * (MAX_TARGET - len(target)), headers=headers, check_request=False
    )
    assert at_limit.status_code == 400  # read (a bad cursor), not refused for its length
    for length in (MAX_TARGET + 1, 70_000):  # past the old server limit of 64 KiB too
        response = client.send(
            "GET", target + "a" * (length - len(target)), headers=headers, check_request=False
        )
        assert response.status_code == 414, response.text[:300]
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["title"] == "URI Too Long"


def test_a_trailing_slash_is_not_found_not_redirected(client: ContractClient):
    headers = {"Authorization": f"Bearer {client.token()}"}
    for path in ("/healthz/", "/v1/st-tasks/", "/oauth/token/"):
        response = client.session.get(
            client.registry.base_url + path, headers=headers, allow_redirects=False, timeout=10
        )
        assert response.status_code == 404, (path, response.status_code)
        assert "Location" not in response.headers
        assert response.headers["Content-Type"] == "application/problem+json"
    # Several registries: the routers under /r/<id> do not redirect either.
    multi = TestClient(create_multi_app({"nb": RegistrySettings(records=5, client_secret="s")}))
    for path in ("/r/nb/healthz/", "/r/nb", "/healthz/"):
        response = multi.get(path, follow_redirects=False)
        assert response.status_code == 404, (path, response.status_code)
    assert multi.get("/r/nb/healthz").status_code == 200


def test_token_endpoint_refuses_two_client_authentication_methods(client: ContractClient):
    registry = client.registry
    for form_secret in ("not-the-secret", registry.client_secret):
        response = client.send(
            "POST",
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_secret": form_secret},
            auth=(registry.client_id, registry.client_secret),
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_request"


def test_token_endpoint_refuses_large_bodies_without_reading_them(client: ContractClient):
    def chunks() -> Iterator[bytes]:  # chunked transfer encoding: no Content-Length to go by
        yield b"grant_type=client_credentials&padding="
        yield from (b"x" * 1024 for _ in range(17))

    response = client.session.post(  # openapi-core cannot replay a generator body
        client.registry.base_url + "/oauth/token",
        data=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert response.status_code == 413 and response.json()["error"] == "invalid_request"

    # 50 MB declared, 64 KiB sent: the answer comes without waiting for the rest.
    host, port = client.registry.base_url.removeprefix("http://").split(":")
    head = (
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 50000000\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head.encode() + b"grant_type=client_credentials&x=" + b"x" * 65536)
        answer = b""
        while chunk := connection.recv(4096):  # until the server closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    assert b'"error":"invalid_request"' in answer
