"""The stand-in technology exchanges, over real HTTP, checked against their OpenAPI contract.

Every contract request and response goes through openapi-core, so a traversal also checks every
record against the Listing / Transaction schemas. The dirt the stand-in serves is counted from
the records' content (with the project's own Vietnamese repairs) and compared with its stats.
ExchangeClient is run end to end against it: through faults, expired sessions and changes.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from stdnum.vn import mst

from connectors.exchange_api import (
    ExchangeClient,
    RepeatedPageError,
    exchange_envelope,
    parse_local_timestamp,
)
from connectors.vietnamese import RepairError, parse_amount, repair_text
from local.exchange import SECRET_ENV, api_key_for
from local.exchange.app import ExchangeSpec
from local.exchange.data import (
    EXCHANGES,
    FIRST,
    ExchangeData,
    ListingGenerator,
    draw_enterprises,
)
from local.exchange.process import RunningExchange, run_exchange, run_exchanges
from local.standin_http import MAX_TARGET

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACT = REPO_ROOT / "connectors/contracts/exchange_api_v1.openapi.yaml"
SEED = 42
SIZES = {  # (listings, transactions) of the shared server
    "ninh_binh_exchange": (600, 400),
    "thanh_hoa_exchange": (400, 400),
    "national_exchange": (800, 400),
}
ID_FIELDS = {"listing": "ma_tin", "transaction": "ma_giao_dich"}
PATHS = {"listing": "/api/v1/listings", "transaction": "/api/v1/transactions"}


@pytest.fixture(autouse=True)
def _no_proxy_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def contract() -> OpenAPI:
    # openapi-core only parses media types it knows; problem+json is JSON.
    config = Config(extra_media_type_deserializers={"application/problem+json": orjson.loads})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return OpenAPI.from_file_path(str(CONTRACT), config=config)


class ContractClient:
    """A tiny exchange client that validates each request and response against the contract."""

    def __init__(self, exchange: RunningExchange, contract: OpenAPI) -> None:
        self.exchange = exchange
        self.contract = contract
        self.http = requests.Session()
        self.http.trust_env = False
        self._session: str | None = None

    def send(
        self, method: str, path: str, *, check_request: bool = True, **kwargs: Any
    ) -> requests.Response:
        response = self.http.request(method, self.exchange.base_url + path, timeout=30, **kwargs)
        request = RequestsOpenAPIRequest(response.request)
        if check_request:
            self.contract.validate_request(request)
        self.contract.validate_response(request, RequestsOpenAPIResponse(response))
        return response

    def login(self, api_key: str | None = None) -> requests.Response:
        return self.send(
            "POST", "/api/auth/login", headers={"X-Api-Key": api_key or self.exchange.api_key}
        )

    def session(self) -> str:
        if self._session is None:
            response = self.login()
            assert response.status_code == 200, response.text
            self._session = response.json()["session_token"]
        return self._session

    def list(
        self, entity: str, params: dict[str, Any] | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = {"X-Session-Token": self.session()}
        return self.send("GET", PATHS[entity], params=params, headers=headers, **kwargs)

    def pages(
        self, entity: str, page_size: int, modified_from: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every page of a traversal, the window closed by the first answer."""
        params: dict[str, Any] = {"page_size": page_size, "page": 1}
        if modified_from is not None:
            params["modified_from"] = modified_from
        while True:
            response = self.list(entity, params)
            assert response.status_code == 200, response.text
            page = response.json()
            yield page
            if params["page"] >= page["total_pages"]:
                return
            params = {**params, "page": params["page"] + 1, "modified_to": page["modified_to"]}

    def traverse(
        self, entity: str, page_size: int = 97, modified_from: str | None = None
    ) -> list[dict[str, Any]]:
        return [r for page in self.pages(entity, page_size, modified_from) for r in page["items"]]

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Stand-in-only endpoints: not in the contract, so not validated."""
        return self.http.request(method, self.exchange.base_url + path, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def exchanges() -> Iterator[dict[str, RunningExchange]]:
    """The shared server. Tests may inject faults and drift but must leave it as they found
    it; changes (which cannot be undone) go to servers of their own."""
    specs = [ExchangeSpec(exchange_id, *sizes) for exchange_id, sizes in SIZES.items()]
    with run_exchanges(specs, seed=SEED) as running:
        yield running


@pytest.fixture(scope="module")
def clients(exchanges: dict[str, RunningExchange], contract: OpenAPI) -> dict[str, ContractClient]:
    return {exchange_id: ContractClient(ex, contract) for exchange_id, ex in exchanges.items()}


@pytest.fixture(scope="module")
def nb(clients: dict[str, ContractClient]) -> ContractClient:
    return clients["ninh_binh_exchange"]


@pytest.fixture(scope="module")
def served(clients: dict[str, ContractClient]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(exchange, entity) → every record of a full traversal, each checked by the contract."""
    return {
        (exchange_id, entity): client.traverse(entity)
        for exchange_id, client in clients.items()
        for entity in PATHS
    }


def sort_key(record: dict[str, Any], entity: str) -> tuple[str, str]:
    stamp = parse_local_timestamp(record["ngay_cap_nhat"])
    assert stamp is not None
    return stamp.isoformat(), record[ID_FIELDS[entity]]


# --- Authentication -------------------------------------------------------------------------


def test_login_issues_a_session_for_the_exchanges_own_key_only(
    clients: dict[str, ContractClient], exchanges: dict[str, RunningExchange]
) -> None:
    nb, th = clients["ninh_binh_exchange"], clients["thanh_hoa_exchange"]
    response = nb.login()
    assert response.status_code == 200
    assert response.json()["token_type"] == "Session" and response.json()["expires_in"] == 1800
    assert response.headers["Cache-Control"] == "no-store"
    assert nb.login().json()["session_token"] != response.json()["session_token"]

    other_key = nb.login(exchanges["thanh_hoa_exchange"].api_key)
    assert other_key.status_code == 401 and other_key.json()["code"] == "api_key_invalid"
    assert th.login(exchanges["thanh_hoa_exchange"].api_key).status_code == 200
    missing = nb.send("POST", "/api/auth/login", check_request=False)
    assert missing.status_code == 401 and missing.json()["code"] == "api_key_missing"


@pytest.mark.parametrize("token", [None, "not-a-session"])
def test_data_without_a_valid_session_is_unauthorized(nb: ContractClient, token: str | None):
    headers = {} if token is None else {"X-Session-Token": token}
    response = nb.send("GET", PATHS["listing"], headers=headers, check_request=False)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "session_invalid"


def test_expired_sessions_and_a_revoked_key(nb: ContractClient) -> None:
    session = nb.login().json()["session_token"]
    headers = {"X-Session-Token": session}
    assert nb.send("GET", PATHS["listing"], headers=headers).status_code == 200
    nb.admin("POST", "/_standin/faults", json={"kind": "expire_sessions"})
    assert nb.send("GET", PATHS["listing"], headers=headers).status_code == 401
    nb._session = None  # the shared client's session expired too

    nb.admin("POST", "/_standin/faults", json={"kind": "revoke_api_key"})
    try:
        assert nb.login().status_code == 401
    finally:
        nb.admin("POST", "/_standin/faults", json={"kind": "restore_api_key"})
    assert nb.login().status_code == 200


# --- Traversal ------------------------------------------------------------------------------


@pytest.mark.parametrize("entity", ["listing", "transaction"])
def test_a_traversal_serves_every_item_once_in_order(
    clients: dict[str, ContractClient],
    served: dict[tuple[str, str], list[dict[str, Any]]],
    entity: str,
) -> None:
    for exchange_id, client in clients.items():
        records = served[(exchange_id, entity)]
        stats = client.admin("GET", "/_standin/stats").json()[entity]
        assert len(records) == stats["items"] == SIZES[exchange_id][entity == "transaction"]
        keys = [sort_key(r, entity) for r in records]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)  # strictly ascending
        ids = Counter(r[ID_FIELDS[entity]] for r in records)
        assert len(ids) == stats["records"]
        assert sum(n - 1 for n in ids.values()) == stats["kinds"]["resent_revision"]
        # Every envelope is readable: the landing gets an id, version, time and flag for each.
        assert all(None not in exchange_envelope(entity, r) for r in records)


def test_pages_have_the_documented_shape(nb: ContractClient) -> None:
    first = nb.list("listing", {"page_size": 250}).json()
    assert (first["page"], first["page_size"], first["total_items"], first["total_pages"]) == (
        1,
        250,
        600,
        3,
    )
    assert first["modified_to"] == "2026-06-30T23:59:59+07:00"  # the logical clock, unchanged
    last = nb.list("listing", {"page_size": 250, "page": 3}).json()
    assert len(last["items"]) == 100
    beyond = nb.list("listing", {"page_size": 250, "page": 4}).json()
    assert beyond["items"] == [] and beyond["total_pages"] == 3
    default = nb.list("listing").json()
    assert default["page_size"] == 100 and len(default["items"]) == 100


def test_modified_from_is_inclusive_in_both_formats(
    nb: ContractClient, served: dict[tuple[str, str], list[dict[str, Any]]]
) -> None:
    records = served[("ninh_binh_exchange", "listing")]
    k = 300
    local = records[k]["ngay_cap_nhat"]  # dd/mm/yyyy HH:MM:SS, Vietnam time
    assert records[k - 1]["ngay_cap_nhat"] != local
    assert nb.traverse("listing", 50, modified_from=local) == records[k:]

    stamp = parse_local_timestamp(local)
    assert stamp is not None
    in_utc = stamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
    for text in (stamp.isoformat(), in_utc):  # the same instant, written two ways
        page = nb.list("listing", {"modified_from": text, "page_size": 5000}).json()
        assert page["items"] == records[k:]
    # A fraction of a second after excludes record k (records carry whole seconds).
    later = stamp.isoformat().replace("+07:00", ".5+07:00")
    assert (
        nb.list("listing", {"modified_from": later, "page_size": 5000}).json()["items"]
        == (records[k + 1 :])
    )
    # An unencoded "+" arrives as a space and still counts as "+".
    raw = nb.http.get(
        nb.exchange.base_url + PATHS["listing"] + "?page_size=5000&modified_from="
        + stamp.isoformat(),
        headers={"X-Session-Token": nb.session()},
        timeout=30,
    )  # fmt: skip
    assert raw.status_code == 200 and raw.json()["items"] == records[k:]


def test_modified_to_closes_the_window(
    nb: ContractClient, served: dict[tuple[str, str], list[dict[str, Any]]]
) -> None:
    records = served[("ninh_binh_exchange", "transaction")]
    bound = records[99]["ngay_cap_nhat"]
    page = nb.list("transaction", {"modified_to": bound, "page_size": 5000}).json()
    assert page["items"] == records[:100]
    assert page["modified_to"] == parse_local_timestamp(bound).isoformat()  # echoed, in ISO
    window = {"modified_from": records[10]["ngay_cap_nhat"], "modified_to": bound}
    assert nb.list("transaction", {**window, "page_size": 5000}).json()["items"] == records[10:100]
    empty = {"modified_from": bound, "modified_to": records[10]["ngay_cap_nhat"]}
    assert nb.list("transaction", empty).json()["total_items"] == 0


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"page": "two"}, {"page_size": 5001}, {"page_size": 0},
     {"modified_from": "yesterday"}, {"modified_from": "05/03/2024"},
     {"modified_from": "2024-03-05T08:00:00"}, {"modified_from": "31/02/2024 00:00:00"},
     {"modified_to": "2024-13-05T00:00:00+07:00"}],
)  # fmt: skip
def test_invalid_parameters_are_bad_requests(nb: ContractClient, params: dict[str, Any]) -> None:
    response = nb.list("listing", params, check_request=False)  # the request breaks the contract
    assert response.status_code == 400
    assert response.json()["title"] == "Bad Request" and response.json()["code"] == "bad_parameter"


def test_unknown_paths_are_problem_details_and_health_is_open(nb: ContractClient) -> None:
    response = nb.http.get(nb.exchange.base_url + "/api/v1/listingz", timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert nb.send("GET", "/api/health").json() == {"status": "ok"}


# --- Faults ---------------------------------------------------------------------------------


def test_injected_status_faults_carry_retry_after_then_recover(nb: ContractClient) -> None:
    nb.admin("POST", "/_standin/faults", json={"status": 503, "count": 2, "retry_after": 1})
    for _ in range(2):
        response = nb.list("listing", {"page_size": 1})
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert response.json()["code"] == "unavailable"
    assert nb.list("listing", {"page_size": 1}).status_code == 200

    nb.admin("POST", "/_standin/faults", json={"kind": "status", "status": 429, "retry_after": 2})
    response = nb.list("listing", {"page_size": 1})
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"


def test_injected_body_faults(nb: ContractClient) -> None:
    headers = {"X-Session-Token": nb.session()}
    url = nb.exchange.base_url + PATHS["listing"]
    good = nb.http.get(url, params={"page": 2}, headers=headers, timeout=10).content

    for kind in ("html", "truncated_json", "repeat_page"):
        queued = nb.admin("POST", "/_standin/faults", json={"kind": kind, "count": 1})
        assert queued.status_code == 200, queued.text
    html = nb.http.get(url, params={"page": 2}, headers=headers, timeout=10)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    truncated = nb.http.get(url, params={"page": 2}, headers=headers, timeout=10)
    assert truncated.status_code == 200 and truncated.content == good[: len(good) // 2]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(truncated.content)
    repeated = nb.http.get(url, params={"page": 2}, headers=headers, timeout=10).json()
    first = nb.http.get(url, params={"page": 1}, headers=headers, timeout=10).json()
    assert repeated["page"] == 2 and repeated["items"] == first["items"]
    assert nb.http.get(url, params={"page": 2}, headers=headers, timeout=10).content == good

    bad = nb.admin("POST", "/_standin/faults", json={"kind": "gremlins"})
    assert bad.status_code == 400


def test_the_connector_recovers_from_every_fault_on_the_way(
    nb: ContractClient, served: dict[tuple[str, str], list[dict[str, Any]]]
) -> None:
    exchange = nb.exchange
    client = ExchangeClient(exchange.base_url, exchange.api_key, page_size=100, backoff_base=0.01)
    with client:
        pages = client.iter_pages("listing")
        records = list(next(pages).records)
        # Mid-run: the session expires, then a 503, an HTML page and a truncated body.
        nb.admin("POST", "/_standin/faults", json={"kind": "expire_sessions"})
        nb.admin("POST", "/_standin/faults", json={"status": 503, "count": 1, "retry_after": 0})
        nb.admin("POST", "/_standin/faults", json={"kind": "html", "count": 1})
        nb.admin("POST", "/_standin/faults", json={"kind": "truncated_json", "count": 1})
        for page in pages:
            records += page.records
    assert records == served[("ninh_binh_exchange", "listing")]
    assert nb.admin("GET", "/_standin/stats").json()["faults_queued"] == 0
    nb._session = None


def test_the_connector_stops_on_a_repeated_page(nb: ContractClient) -> None:
    nb.admin("POST", "/_standin/faults", json={"kind": "repeat_page", "count": 1})
    exchange = nb.exchange
    with (
        ExchangeClient(exchange.base_url, exchange.api_key, page_size=100) as client,
        pytest.raises(RepeatedPageError, match="listing page 2"),
    ):
        list(client.iter_pages("listing"))


# --- What the exchanges serve ---------------------------------------------------------------


def amount(text: str | None, negotiable: str) -> Decimal | None:
    if text is None or text == negotiable:
        return None
    try:
        return parse_amount(text, unit="vnd")[0]
    except RepairError as error:  # every format the stand-in writes must be readable
        raise AssertionError(f"unreadable amount {text!r}: {error}") from None


def observed_listing_kind(record: dict[str, Any], seen: set[str], negotiable: str) -> str | None:
    """Which irregularity a listing shows, judged from its content only."""
    if record["ma_tin"] in seen:
        return "resent_revision"
    seen.add(record["ma_tin"])
    if record["da_go"]:
        return "withdrawn"
    if record["ma_so_thue"] is not None and not mst.is_valid(record["ma_so_thue"]):
        return "wrong_mst_check_digit"
    if not unicodedata.is_normalized("NFC", record["tieu_de"]):
        return "nfd_text"
    repaired, repair = repair_text(record["tieu_de"])
    if repair in ("tcvn3", "vni"):
        assert unicodedata.is_normalized("NFC", repaired) and repaired.isprintable()
        return f"{repair}_title"
    low, high = amount(record["gia_tu"], negotiable), amount(record["gia_den"], negotiable)
    if low is not None and low < 0:
        return "negative_price"
    if low is not None and high is not None and low > high:
        return "inverted_price_range"
    if low is not None and low >= 10**15:
        return "absurd_price"
    return None


def observed_transaction_kind(
    record: dict[str, Any], seen: set[str], listing_ids: set[str], negotiable: str
) -> str | None:
    if record["ma_giao_dich"] in seen:
        return "resent_revision"
    seen.add(record["ma_giao_dich"])
    if record["da_huy"]:
        return "cancelled"
    codes = (record["ma_so_thue_ben_ban"], record["ma_so_thue_ben_mua"])
    if any(code is not None and not mst.is_valid(code) for code in codes):
        return "wrong_mst_check_digit"
    if not unicodedata.is_normalized("NFC", record["ten_cong_nghe"]):
        return "nfd_text"
    repair = repair_text(record["ten_cong_nghe"])[1]
    if repair in ("tcvn3", "vni"):
        return f"{repair}_name"
    if record["ma_tin"] is not None and record["ma_tin"] not in listing_ids:
        return "dangling_listing_ref"
    value = amount(record["gia_tri"], negotiable)
    assert value is not None
    if value < 0:
        return "negative_value"
    if value >= 10**15:
        return "absurd_value"
    return None


def test_irregular_records_match_the_stats(
    clients: dict[str, ContractClient], served: dict[tuple[str, str], list[dict[str, Any]]]
) -> None:
    for exchange_id, client in clients.items():
        negotiable = EXCHANGES[exchange_id].negotiable
        stats = client.admin("GET", "/_standin/stats").json()
        listings = served[(exchange_id, "listing")]
        seen: set[str] = set()
        kinds = Counter(observed_listing_kind(r, seen, negotiable) for r in listings)
        assert {k: kinds[k] for k in stats["listing"]["kinds"]} == stats["listing"]["kinds"]
        assert kinds[None] == len(listings) - sum(stats["listing"]["kinds"].values())
        seen = set()
        listing_ids = {r["ma_tin"] for r in listings}
        transactions = served[(exchange_id, "transaction")]
        kinds = Counter(
            observed_transaction_kind(r, seen, listing_ids, negotiable) for r in transactions
        )
        expected = stats["transaction"]["kinds"]
        assert {k: kinds[k] for k in expected} == expected
        assert all(n > 0 for n in stats["listing"]["kinds"].values())
        assert all(n > 0 for n in expected.values())


def test_mojibake_repairs_to_the_text_the_other_exchanges_send(
    served: dict[tuple[str, str], list[dict[str, Any]]],
) -> None:
    titles = {r["tieu_de"] for records in served.values() for r in records if "tieu_de" in r}
    legacy = [t for t in titles if repair_text(t)[1] in ("tcvn3", "vni")]
    assert legacy
    for text in legacy:
        assert repair_text(text)[0] in titles  # a clean record has that very title


def test_the_same_enterprise_is_written_differently_on_each_exchange(
    served: dict[tuple[str, str], list[dict[str, Any]]],
) -> None:
    names: dict[str, dict[str, set[str]]] = {}
    for (exchange_id, entity), records in served.items():
        if entity != "listing":
            continue
        for r in records:
            if r["ma_so_thue"] and mst.is_valid(r["ma_so_thue"]):
                name = unicodedata.normalize("NFC", r["don_vi_dang_tin"])
                names.setdefault(r["ma_so_thue"], {}).setdefault(exchange_id, set()).add(name)
    everywhere = [by for by in names.values() if len(by) == 3]
    assert len(everywhere) >= 10
    # Each exchange has its habit: as registered, in capitals, abbreviated.
    differing = [by for by in everywhere if len({n for ns in by.values() for n in ns}) >= 3]
    assert len(differing) >= 0.5 * len(everywhere)
    # Some spellings differ only in case or spacing, others in the legal form's wording.
    spelled = [{n for ns in by.values() for n in ns} for by in differing]
    assert any(len({" ".join(n.casefold().split()) for n in ns}) < len(ns) for ns in spelled)

    def share(exchange_id: str, test: Callable[[str], bool]) -> float:
        written = [n for by in names.values() for n in by.get(exchange_id, ())]
        return sum(map(test, written)) / len(written)

    assert share("thanh_hoa_exchange", lambda n: n == n.upper()) > 0.7
    assert share("national_exchange", lambda n: n.startswith(("Cty ", "Công ty CP "))) > 0.5
    assert share("ninh_binh_exchange", lambda n: n.startswith(("Công ty ", "Hợp tác xã "))) > 0.6


def test_posters_come_from_the_exchanges_province_or_from_everywhere(
    served: dict[tuple[str, str], list[dict[str, Any]]],
) -> None:
    def provinces(exchange_id: str) -> Counter[str]:
        return Counter(r["ma_tinh"] for r in served[(exchange_id, "listing")])

    assert provinces("ninh_binh_exchange").most_common(1)[0][0] == "37"
    assert provinces("thanh_hoa_exchange").most_common(1)[0][0] == "38"
    national = provinces("national_exchange")
    assert len(national) >= 8 and national.most_common(1)[0][1] < 0.5 * sum(national.values())


def test_transactions_refer_to_listings_of_their_exchange(
    served: dict[tuple[str, str], list[dict[str, Any]]],
) -> None:
    listings: dict[str, dict[str, Any]] = {}
    for record in served[("ninh_binh_exchange", "listing")]:
        listings.setdefault(record["ma_tin"], record)  # its first revision
    transactions = served[("ninh_binh_exchange", "transaction")]
    linked = [t for t in transactions if t["ma_tin"] in listings]
    assert len(linked) > 0.7 * len(transactions)
    assert any(t["ma_tin"] is None for t in transactions)
    for deal in linked:
        listing = listings[deal["ma_tin"]]
        assert sort_key(listing, "listing")[0] <= sort_key(deal, "transaction")[0]
        code = listing["ma_so_thue"]
        if code is not None and not mst.is_valid(code):
            continue  # a dirty listing: its poster's code was altered
        if listing["loai_tin"] == "chao_ban":  # the poster of an offer sells
            assert deal["ma_so_thue_ben_ban"] == code
        elif mst.is_valid(deal["ma_so_thue_ben_mua"]):  # the poster of a demand buys
            assert deal["ma_so_thue_ben_mua"] == code


def test_same_settings_serve_byte_identical_pages(contract: OpenAPI) -> None:
    def bodies(exchange: RunningExchange) -> list[bytes]:
        client = ContractClient(exchange, contract)
        headers = {"X-Session-Token": client.session()}
        url = exchange.base_url + PATHS["transaction"]
        return [
            client.http.get(
                url, params={"page": p, "page_size": 60}, headers=headers, timeout=30
            ).content
            for p in (1, 2, 3)
        ]

    with run_exchange("national_exchange", listings=200, transactions=150, seed=7) as one:
        first = bodies(one)
    with run_exchange("national_exchange", listings=200, transactions=150, seed=7) as twin:
        assert bodies(twin) == first

    def records(seed: int) -> list[dict[str, Any]]:
        data = ExchangeData(
            EXCHANGES["national_exchange"], listings=200, transactions=150, seed=seed
        )
        store = data.stores["transaction"]
        return store.page(store.window(None, data.clock.now), 0, 150)

    assert (
        records(7)
        == orjson.loads(first[0])["items"]
        + orjson.loads(first[1])["items"]
        + (orjson.loads(first[2])["items"])
    )
    assert records(8) != records(7)


# --- Changes and drift ----------------------------------------------------------------------


def test_changes_move_records_to_the_end_with_a_higher_revision(contract: OpenAPI) -> None:
    with run_exchange("thanh_hoa_exchange", listings=300, transactions=100, seed=3) as ex:
        client = ContractClient(ex, contract)
        before = client.traverse("listing")
        by_id = {r["ma_tin"]: r for r in before}
        bound = client.list("listing").json()["modified_to"]

        changed = client.admin(
            "POST", "/_standin/changes", json={"entity": "listing", "update": 3, "withdraw": 2}
        ).json()
        assert len(set(changed["updated"] + changed["withdrawn"])) == 5

        # The old window is unchanged but for the records that left it.
        old_window = client.list("listing", {"modified_to": bound, "page_size": 5000}).json()
        moved = set(changed["updated"] + changed["withdrawn"])
        assert old_window["items"] == [r for r in before if r["ma_tin"] not in moved]
        # The next window holds exactly the changes, in the order they were made.
        after = client.traverse("listing", modified_from=bound)
        assert [r["ma_tin"] for r in after] == changed["updated"] + changed["withdrawn"]
        for record in after:
            original = by_id[record["ma_tin"]]
            assert record["phien_ban"] == original["phien_ban"] + 1
            assert record["da_go"] is (record["ma_tin"] in changed["withdrawn"])
        stats = client.admin("GET", "/_standin/stats").json()["listing"]
        assert stats["changes"] == {"updated": 3, "withdrawn": 2}
        assert stats["withdrawn"] == stats["kinds"]["withdrawn"] + 2
        assert len(client.traverse("listing")) == 300  # changes move records, never add one

        refused = client.admin(
            "POST", "/_standin/changes", json={"entity": "listing", "update": 10_000}
        )
        assert refused.status_code == 409
        for body in ({"entity": "listings", "update": 1}, {"entity": "listing", "update": -1}):
            assert client.admin("POST", "/_standin/changes", json=body).status_code == 400


def test_the_connector_misses_nothing_while_records_change_under_it(
    contract: OpenAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="connectors.exchange_api")
    with run_exchange("ninh_binh_exchange", listings=1000, transactions=10, seed=5) as ex:
        admin = ContractClient(ex, contract)
        ids = {r["ma_tin"] for r in admin.traverse("listing", page_size=1000)}

        def change(update: int, withdraw: int = 0) -> set[str]:
            body = {"entity": "listing", "update": update, "withdraw": withdraw}
            answer = admin.admin("POST", "/_standin/changes", json=body).json()
            return set(answer["updated"] + answer["withdrawn"])

        with ExchangeClient(ex.base_url, ex.api_key, page_size=100) as client:
            first_run = []
            for page in client.iter_pages("listing"):
                first_run += page.records
                if page.number == 1:
                    changed = change(25, 5)
                elif page.number == 4:
                    changed |= change(5)  # and again, later in the run
            # The next run starts from the highest ngay_cap_nhat landed, as the landing does.
            high_watermark = max(exchange_envelope("listing", r)[2] for r in first_run)
            second_run = [
                r for p in client.iter_pages("listing", high_watermark) for r in p.records
            ]

    assert any("resuming after" in r.getMessage() for r in caplog.records)  # it did resume
    keys = [(r["ma_tin"], r["phien_ban"]) for r in first_run]
    assert len(keys) == len(set(keys))  # nothing read twice
    read = {r["ma_tin"] for r in first_run}
    assert ids - changed <= read  # nothing that stayed in the window was skipped
    assert {r["ma_tin"] for r in second_run} >= changed  # the changes come in the next run
    assert read | {r["ma_tin"] for r in second_run} == ids


def test_drift_adds_removes_and_retypes_fields(nb: ContractClient) -> None:
    url = nb.exchange.base_url + PATHS["listing"]
    headers = {"X-Session-Token": nb.session()}
    clean = nb.http.get(url, params={"page_size": 3}, headers=headers, timeout=10).json()["items"]
    changes = [
        {"action": "add", "field": "nguon_tin", "value": "techmart"},
        {"action": "remove", "field": "linh_vuc"},
        {"action": "retype", "field": "phien_ban", "to": "string"},
    ]
    try:
        for change in changes:
            response = nb.admin("POST", "/_standin/drift", json={"entity": "listing", **change})
            assert response.status_code == 200, response.text
        drifted = nb.http.get(url, params={"page_size": 3}, headers=headers, timeout=10).json()
        for before, after in zip(clean, drifted["items"], strict=True):
            expected = {k: v for k, v in before.items() if k != "linh_vuc"}
            expected |= {"phien_ban": str(before["phien_ban"]), "nguon_tin": "techmart"}
            assert after == expected
        # Transactions are untouched; a bad drift is refused.
        deals = nb.list("transaction", {"page_size": 3}).json()["items"]
        assert all("nguon_tin" not in d for d in deals)
        bad = {"entity": "listing", "action": "retype", "field": "phien_ban", "to": "date"}
        assert nb.admin("POST", "/_standin/drift", json=bad).status_code == 400
    finally:
        nb.admin("POST", "/_standin/drift", json={"entity": "listing", "action": "reset"})
    assert nb.http.get(url, params={"page_size": 3}, headers=headers).json()["items"] == clean


def test_admin_endpoints_check_their_bodies(nb: ContractClient) -> None:
    for path in ("/_standin/faults", "/_standin/changes", "/_standin/drift"):
        assert nb.admin("POST", path, data=b"[").status_code == 400


# --- In-process checks of the data layer ----------------------------------------------------


def test_a_million_listings_page_from_anywhere_quickly() -> None:
    data = ExchangeData(
        EXCHANGES["national_exchange"], listings=1_000_000, transactions=0, seed=SEED
    )
    store = data.stores["listing"]
    window = store.window(None, data.clock.now)
    assert window.total == 1_000_000
    durations = []
    for offset in (0, 500_000, 999_000, 250_000, 750_000):
        started = time.perf_counter()
        records = store.page(window, offset, 1000)
        orjson.dumps({"items": records})
        durations.append(time.perf_counter() - started)
        assert len(records) == 1000
    assert statistics.median(durations) < 0.05  # a page of 1,000 well under 50 ms
    assert len(store.page(window, 999_990, 100)) == 10


def test_positions_and_times_invert() -> None:
    generator = ListingGenerator(
        EXCHANGES["ninh_binh_exchange"], 12_345, SEED, 0.0875, draw_enterprises(SEED)
    )
    for i in (0, 1, 77, 6000, 12_344):
        t = generator.time(i)
        assert generator.first_at_or_after(t) == i
        assert generator.first_at_or_after(t + 1) == i + 1
    assert generator.first_at_or_after(FIRST - 10) == 0
    assert generator.time(12_344) < generator.time(12_345)


def test_api_keys_are_distinct_per_exchange_and_secret() -> None:
    keys = {api_key_for(s, e) for s in ("a", "b") for e in EXCHANGES}
    assert len(keys) == 6


# --- Process --------------------------------------------------------------------------------


def test_secrets_are_not_shown_and_never_logged(tmp_path: Path) -> None:
    secret = "s3cret-" + "x" * 20
    key = api_key_for(secret, "ninh_binh_exchange")
    assert key not in repr(RunningExchange("ninh_binh_exchange", "http://127.0.0.1:1/x", key))
    log_path = tmp_path / "exchange.log"
    port = _free_port()
    command = [sys.executable, "-m", "local.exchange", "--port", str(port), "--listings", "20"]
    env = {**os.environ, SECRET_ENV: secret, "PYTHONPATH": str(REPO_ROOT)}
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    try:
        base_url = f"http://127.0.0.1:{port}/ninh_binh_exchange"
        with requests.Session() as http:
            http.trust_env = False
            for _ in range(400):  # up to ~20 s for start-up
                with contextlib.suppress(requests.ConnectionError):
                    if http.get(base_url + "/api/health", timeout=1).ok:
                        break
                time.sleep(0.05)
            token = http.post(base_url + "/api/auth/login", headers={"X-Api-Key": key}).json()[
                "session_token"
            ]
            assert http.get(base_url + PATHS["listing"], headers={"X-Session-Token": token}).ok
            http.post(base_url + "/api/auth/login", headers={"X-Api-Key": "wrong"})
    finally:
        server.terminate()
        server.wait(10)
    log_text = log_path.read_text()
    assert "GET /ninh_binh_exchange/api/v1/listings" in log_text  # the access log is on
    for secret_text in (secret, key, token):
        assert secret_text not in log_text


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_startup_failure_reports_the_server_error() -> None:
    with pytest.raises(RuntimeError, match="special-share"), run_exchange(special_share=0.9):
        pass


# --- Contract edges (issue 13) --------------------------------------------------------------


def test_a_future_modified_to_is_clamped_to_the_exchange_clock(contract: OpenAPI) -> None:
    with run_exchange("ninh_binh_exchange", listings=60, transactions=10, seed=5) as ex:
        client = ContractClient(ex, contract)
        clock = client.admin("GET", "/_standin/stats").json()["clock"]
        future = {"modified_to": "2099-01-01T00:00:00+07:00", "page_size": 5000}
        page = client.list("listing", future).json()
        assert page["modified_to"] == clock  # the bound applied, not the one asked for
        assert page["total_items"] == 60

        changed = client.admin("POST", "/_standin/changes", json={"entity": "listing", "update": 1})
        # The echoed bound closed the window: the change falls after it, into the next one.
        window = client.list("listing", {"modified_to": page["modified_to"], "page_size": 5000})
        assert window.json()["total_items"] == 59
        assert changed.json()["updated"][0] not in {r["ma_tin"] for r in window.json()["items"]}
        later = client.list("listing", {**future, "modified_from": page["modified_to"]}).json()
        assert later["modified_to"] > page["modified_to"]  # the clock moved on with the change
        assert [r["ma_tin"] for r in later["items"]][-1] == changed.json()["updated"][0]


def test_problem_details_name_the_path_as_sent_and_paths_match_exactly(
    nb: ContractClient,
) -> None:
    prefix = "/" + nb.exchange.base_url.rsplit("/", 1)[1]
    response = nb.http.get(nb.exchange.base_url + "/api/v1/%C3%A5%5D", timeout=10)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert response.json()["instance"] == prefix + "/api/v1/%C3%A5%5D"  # not ".../å]"
    for path in ("/api/health/", "/api/v1/listings/"):
        response = nb.http.get(nb.exchange.base_url + path, allow_redirects=False, timeout=10)
        assert response.status_code == 404, (path, response.status_code)
        assert "Location" not in response.headers
        assert response.headers["Content-Type"] == "application/problem+json"


def test_over_long_request_targets_are_414_problems(nb: ContractClient) -> None:
    target = urlsplit(nb.exchange.base_url).path + PATHS["listing"] + "?modified_from="
    at_limit = {"modified_from": "x" * (MAX_TARGET - len(target))}
    response = nb.list("listing", at_limit, check_request=False)
    assert response.status_code == 400  # read (a bad parameter), not refused for its length
    for length in (MAX_TARGET + 1, 70_000):  # past the old server limit of 64 KiB too
        too_long = {"modified_from": "x" * (length - len(target))}
        response = nb.list("listing", too_long, check_request=False)
        assert response.status_code == 414, response.text[:300]
        assert response.json()["code"] == "uri_too_long"
        assert response.json()["title"] == "URI Too Long"
