"""ExchangeClient against a scripted HTTP server on 127.0.0.1, over real sockets.

Each test queues the replies a path should give, in order, runs the client, then checks what
it yielded or raised and the requests the server recorded. Backoffs are tiny, and the sleeps
that would be long (Retry-After, application-level backoff) are recorded instead of slept.
Pages follow exchange API v1 (connectors/contracts/exchange_api_v1.openapi.yaml).
"""

from __future__ import annotations

import logging
import math
import pickle
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import urllib3.util.retry as urllib3_retry

from connectors.errors import (
    ContractError,
    RepeatedCursorError,
    SourceAuthError,
    SourceResponseError,
    SourceUnavailableError,
)
from connectors.exchange_api import (
    ExchangeClient,
    InconsistentPagesError,
    Page,
    RepeatedPageError,
    exchange_envelope,
    format_instant,
    parse_local_timestamp,
)

API_KEY = "exk_NB-7f2c9e1a-secret"
SESSION_1 = "sess-ALPHA-4b1e8d20"
SESSION_2 = "sess-BRAVO-93c0aa57"
LOGIN_PATH = "/api/auth/login"
LISTINGS = "/api/v1/listings"
BOUND = "2026-06-30T23:59:59+07:00"
VN = timezone(timedelta(hours=7))

# ----------------------------------------------------------------------------- scripted server


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None  # announce the full length, send this many bytes, close


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    peer_port: int


class ScriptedServer:
    def __init__(self) -> None:
        self._scripts: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/ninh_binh_exchange"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def script(self, method: str, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[(method, "/ninh_binh_exchange" + path)].extend(replies)

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            full = "/ninh_binh_exchange" + path
            return [r for r in self.requests if r.method == method and r.path == full]

    def next_reply(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            script = self._scripts[(request.method, request.path)]
            if script:
                return script.popleft()
        return problem_reply(418, "Unscripted request", f"{request.method} {request.path}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _make_handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real exchange
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            reply = server.next_reply(
                Recorded(
                    method=self.command,
                    path=split.path,
                    query={k: v[-1] for k, v in parse_qs(split.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    peer_port=self.client_address[1],
                )
            )
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            if reply.cut_after is not None:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(reply.body[: reply.cut_after])

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(autouse=True)
def _no_proxy_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    scripted.start()
    try:
        yield scripted
    finally:
        scripted.stop()


@pytest.fixture
def app_sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(
    server: ScriptedServer, app_sleeps: list[float]
) -> Iterator[Callable[..., ExchangeClient]]:
    clients: list[ExchangeClient] = []

    def build(**overrides: Any) -> ExchangeClient:
        options: dict[str, Any] = {
            "page_size": 3,
            "max_attempts": 3,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "connect_timeout": 1.0,
            "read_timeout": 2.0,
            "sleep": app_sleeps.append,
        }
        options.update(overrides)
        client = ExchangeClient(server.base_url, API_KEY, **options)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def transport_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Waits urllib3's Retry asks for (backoff, Retry-After), recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(
        urllib3_retry, "time", SimpleNamespace(sleep=slept.append, time=urllib3_retry.time.time)
    )
    return slept


# ----------------------------------------------------------------------------- replies


def json_reply(payload: Any, status: int = 200, **kwargs: Any) -> Reply:
    return Reply(status=status, body=orjson.dumps(payload), **kwargs)


def login_reply(token: str = SESSION_1, expires_in: int = 1800) -> Reply:
    return json_reply({"session_token": token, "token_type": "Session", "expires_in": expires_in})


def problem_reply(status: int, title: str, detail: str, **headers: str) -> Reply:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Reply(
        status=status,
        body=orjson.dumps(body),
        content_type="application/problem+json",
        headers=headers,
    )


def listing(n: int, stamp: str | None = None, version: int = 1) -> dict[str, Any]:
    """Listing n, modified n minutes after 08:00 on 05/03/2024 unless ``stamp`` is given."""
    return {
        "ma_tin": f"NB-CB-{n:06d}",
        "loai_tin": "chao_ban",
        "tieu_de": "Máy sấy nông sản sử dụng năng lượng mặt trời",
        "gia_tu": "1.250.000.000 đ",
        "gia_den": None,
        "phien_ban": version,
        "ngay_cap_nhat": stamp or f"05/03/2024 08:{n:02d}:00",
        "da_go": False,
    }


def page_reply(
    items: list[dict[str, Any]],
    page: int,
    total: int,
    page_size: int = 3,
    modified_to: str = BOUND,
) -> Reply:
    return json_reply(
        {
            "items": items,
            "page": page,
            "page_size": page_size,
            "total_items": total,
            "total_pages": math.ceil(total / page_size),
            "modified_to": modified_to,
        }
    )


def paged(records: list[dict[str, Any]], size: int = 3) -> list[Reply]:
    """The replies of a traversal of ``records`` in pages of ``size``."""
    return [
        page_reply(records[start : start + size], start // size + 1, len(records), size)
        for start in range(0, max(len(records), 1), size)
    ]


def all_records(pages: list[Page]) -> list[dict[str, Any]]:
    return [record for page in pages for record in page.records]


HTML_ERROR_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head>\n<body><h1>502 Bad Gateway</h1>"
    b"<hr>nginx</body></html>"
)

# ----------------------------------------------------------------------------- pagination


def test_reads_every_page_of_a_window_closed_at_the_first_answer(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(n) for n in range(1, 9)]
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, *paged(records))
    since = datetime(2024, 3, 5, 1, 0, 0, 750_000, tzinfo=UTC)  # 08:00:00.75 in Hanoi

    pages = list(make_client().iter_pages("listing", modified_since=since))

    assert all_records(pages) == records  # exactly as sent
    assert [(p.number, p.source_page, p.total_pages) for p in pages] == [
        (1, 1, 3),
        (2, 2, 3),
        (3, 3, 3),
    ]
    # The lower bound is sent in Vietnam time, rounded down to the second; the upper bound is
    # the exchange's, from the first answer on; no request goes beyond total_pages.
    assert [r.query for r in server.requests_to("GET", LISTINGS)] == [
        {"page": "1", "page_size": "3", "modified_from": "2024-03-05T08:00:00+07:00"},
        {"page": "2", "page_size": "3", "modified_from": "2024-03-05T08:00:00+07:00",
         "modified_to": BOUND},
        {"page": "3", "page_size": "3", "modified_from": "2024-03-05T08:00:00+07:00",
         "modified_to": BOUND},
    ]  # fmt: skip


def test_an_empty_window_is_one_empty_page(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, page_reply([], 1, 0, page_size=5000))

    pages = list(make_client(page_size=5000).iter_pages("listing"))

    assert [(p.number, p.records, p.total_pages) for p in pages] == [(1, [], 0)]
    assert server.requests_to("GET", LISTINGS)[0].query == {"page": "1", "page_size": "5000"}


def test_transactions_have_their_own_path(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    server.script("POST", LOGIN_PATH, login_reply())
    deal = {"ma_giao_dich": "NB-GD-000001", "ngay_cap_nhat": "05/03/2024 08:00:00"}
    server.script("GET", "/api/v1/transactions", page_reply([deal], 1, 1))

    assert all_records(list(make_client().iter_pages("transaction"))) == [deal]


def test_bad_arguments_are_rejected_before_any_request(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    client = make_client()
    with pytest.raises(ValueError, match="timezone-aware"):
        client.iter_pages("listing", modified_since=datetime(2024, 3, 5))
    with pytest.raises(ValueError, match="unknown exchange entity 'listings'"):
        client.iter_pages("listings")
    with pytest.raises(ValueError, match="page_size"):
        ExchangeClient(server.base_url, API_KEY, page_size=5001)
    assert server.requests == []


def test_all_requests_share_one_keep_alive_connection(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, *paged([listing(n) for n in range(1, 8)]))

    list(make_client().iter_pages("listing"))

    assert len(server.requests) == 4
    assert {r.peer_port for r in server.requests} == {server.requests[0].peer_port}


def test_a_page_size_the_exchange_caps_is_adopted_on_the_first_page(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(n) for n in range(1, 6)]
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, *paged(records, size=2))

    pages = list(make_client(page_size=5).iter_pages("listing"))

    assert all_records(pages) == records
    assert [r.query["page_size"] for r in server.requests_to("GET", LISTINGS)] == ["5", "2", "2"]


# ----------------------------------------------------------------------------- a changing window


def test_records_leaving_the_window_mid_run_are_resumed_after_without_a_gap(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    # Nine records; 3 and 4 share a second (ordered by id). After page 1, record 2 is modified
    # at the exchange: it leaves the closed window, everything shifts back by one, and a
    # plain "page 2" would start at record 5, skipping record 4.
    tie = "05/03/2024 08:03:00"
    records = [listing(n, tie if n in (3, 4) else None) for n in range(1, 10)]
    shifted = [r for r in records if r["ma_tin"] != "NB-CB-000002"]
    server.script("POST", LOGIN_PATH, login_reply())
    server.script(
        "GET",
        LISTINGS,
        page_reply(records[0:3], 1, 9),
        page_reply(shifted[3:6], 2, 8),  # total went down: discarded, resume
        # The resumed pass: from record 3's second, so records 3 and 4 come first.
        page_reply(shifted[1:4], 1, 7),
        page_reply(shifted[4:7], 2, 7),
        page_reply(shifted[7:8], 3, 7),
    )

    pages = list(make_client().iter_pages("listing"))

    got = [r["ma_tin"] for r in all_records(pages)]
    assert got == [f"NB-CB-{n:06d}" for n in range(1, 10)]  # none skipped, none twice
    resumed = server.requests_to("GET", LISTINGS)[2:]
    assert {r.query["modified_from"] for r in resumed} == {"2024-03-05T08:03:00+07:00"}
    assert {r.query["modified_to"] for r in resumed} == {BOUND}
    assert [r.query["page"] for r in resumed] == ["1", "2", "3"]
    assert [p.number for p in pages] == [1, 2, 3, 4]


def test_a_window_that_grows_although_closed_stops_the_run(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    server.script("POST", LOGIN_PATH, login_reply())
    records = [listing(n) for n in range(1, 8)]
    server.script("GET", LISTINGS, page_reply(records[0:3], 1, 6), page_reply(records[3:6], 2, 7))
    yielded: list[int] = []

    with pytest.raises(InconsistentPagesError, match="grew from 6 to 7 records") as caught:
        for page in make_client().iter_pages("listing"):
            yielded.append(page.number)

    assert yielded == [1]
    assert isinstance(caught.value, SourceResponseError)


def test_a_window_that_keeps_changing_fails_after_the_allowed_resumes(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(n) for n in range(1, 20)]
    server.script("POST", LOGIN_PATH, login_reply())
    server.script(
        "GET",
        LISTINGS,
        page_reply(records[0:3], 1, 12),
        page_reply(records[3:6], 2, 11),
        page_reply(records[3:6], 1, 10),
        page_reply(records[6:9], 2, 9),
    )

    with pytest.raises(InconsistentPagesError, match="kept changing"):
        list(make_client(max_resumes=1).iter_pages("listing"))


def test_an_echoed_modified_to_that_changes_stops_the_run(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(n) for n in range(1, 7)]
    server.script("POST", LOGIN_PATH, login_reply())
    server.script(
        "GET",
        LISTINGS,
        page_reply(records[0:3], 1, 6),
        page_reply(records[3:6], 2, 6, modified_to="2026-07-01T00:00:05+07:00"),
    )

    with pytest.raises(InconsistentPagesError, match="does not keep the window fixed"):
        list(make_client().iter_pages("listing"))


def test_a_page_size_that_changes_mid_run_stops_the_run(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(n) for n in range(1, 7)]
    server.script("POST", LOGIN_PATH, login_reply())
    server.script(
        "GET", LISTINGS, page_reply(records[0:3], 1, 6), page_reply(records[3:5], 2, 6, 2)
    )

    with pytest.raises(InconsistentPagesError, match="has page_size 2, but the traversal"):
        list(make_client().iter_pages("listing"))


def test_the_same_bound_written_another_way_is_accepted(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(n) for n in range(1, 5)]
    server.script("POST", LOGIN_PATH, login_reply())
    server.script(
        "GET",
        LISTINGS,
        page_reply(records[0:3], 1, 4),
        page_reply(records[3:4], 2, 4, modified_to="2026-06-30T16:59:59Z"),
    )

    assert all_records(list(make_client().iter_pages("listing"))) == records


def test_a_repeated_page_stops_the_run_before_it_is_yielded(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(n) for n in range(1, 10)]
    server.script("POST", LOGIN_PATH, login_reply())
    server.script(
        "GET",
        LISTINGS,
        page_reply(records[0:3], 1, 9),
        page_reply(records[3:6], 2, 9),
        page_reply(records[3:6], 3, 9),  # the exchange ignores `page`
    )
    yielded: list[int] = []

    with pytest.raises(RepeatedPageError, match="page 3") as caught:
        for page in make_client().iter_pages("listing"):
            yielded.append(page.number)

    assert yielded == [1, 2]
    assert "NB-CB-000004" in str(caught.value) and "NB-CB-000006" in str(caught.value)
    assert isinstance(caught.value, RepeatedCursorError)  # callers handling loops catch both
    assert len(server.requests_to("GET", LISTINGS)) == 3


def test_overlapping_pages_stop_the_run(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(n) for n in range(1, 10)]
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, page_reply(records[0:3], 1, 9), page_reply(records[2:5], 2, 9))

    with pytest.raises(InconsistentPagesError, match="pages overlap"):
        list(make_client().iter_pages("listing"))


def test_a_page_with_fewer_items_than_the_totals_imply_stops_the_run(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(n) for n in range(1, 10)]
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, page_reply(records[0:3], 1, 9), page_reply(records[3:5], 2, 9))

    with pytest.raises(InconsistentPagesError, match=r"has 2 items, but .* should have 3"):
        list(make_client().iter_pages("listing"))


# ----------------------------------------------------------------------------- session


def test_logs_in_once_with_the_api_key_and_reuses_the_session(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, *paged([listing(n) for n in range(1, 8)]))

    list(make_client().iter_pages("listing"))

    [login] = server.requests_to("POST", LOGIN_PATH)
    assert login.headers["x-api-key"] == API_KEY
    gets = server.requests_to("GET", LISTINGS)
    assert [r.headers["x-session-token"] for r in gets] == [SESSION_1] * 3
    assert all("x-api-key" not in r.headers for r in gets)  # the key goes to login only


def test_a_session_expiring_mid_run_is_renewed_and_the_same_page_asked_again(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(n) for n in range(1, 8)]
    replies = paged(records)
    server.script("POST", LOGIN_PATH, login_reply(SESSION_1), login_reply(SESSION_2))
    expired = problem_reply(401, "Unauthorized", "the session expired")
    server.script("GET", LISTINGS, replies[0], expired, replies[1], replies[2])

    pages = list(make_client().iter_pages("listing"))

    assert all_records(pages) == records  # nothing lost, nothing repeated
    gets = server.requests_to("GET", LISTINGS)
    assert [(r.headers["x-session-token"], r.query["page"]) for r in gets] == [
        (SESSION_1, "1"),
        (SESSION_1, "2"),
        (SESSION_2, "2"),
        (SESSION_2, "3"),
    ]


def test_a_second_401_after_logging_in_again_is_an_auth_error(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    server.script("POST", LOGIN_PATH, login_reply(SESSION_1), login_reply(SESSION_2))
    server.script(
        "GET",
        LISTINGS,
        problem_reply(401, "Unauthorized", "the session expired"),
        problem_reply(401, "Unauthorized", "consumer suspended"),
    )

    with pytest.raises(SourceAuthError, match=r"after logging in again.*consumer suspended"):
        list(make_client().iter_pages("listing"))


def test_the_session_is_renewed_shortly_before_it_expires(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    # expires_in 100 s -> margin min(30 s, 10 s) = 10 s -> renew from t + 90 s.
    server.script("POST", LOGIN_PATH, login_reply(SESSION_1, 100), login_reply(SESSION_2))
    server.script("GET", LISTINGS, *paged([listing(n) for n in range(1, 8)]))
    now = [1000.0]
    pages = make_client(clock=lambda: now[0]).iter_pages("listing")

    next(pages)
    now[0] += 89.0
    next(pages)
    now[0] += 2.0
    next(pages)

    gets = server.requests_to("GET", LISTINGS)
    assert [r.headers["x-session-token"] for r in gets] == [SESSION_1, SESSION_1, SESSION_2]


def test_a_refused_api_key_is_an_auth_error_and_not_retried(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    server.script(
        "POST", LOGIN_PATH, problem_reply(401, "Unauthorized", "the API key is not valid")
    )

    with pytest.raises(SourceAuthError, match=r"refused the API key.*not valid"):
        list(make_client().iter_pages("listing"))

    assert server.requests_to("GET", LISTINGS) == []
    assert len(server.requests_to("POST", LOGIN_PATH)) == 1


# ----------------------------------------------------------------------------- transport


def test_429_waits_as_long_as_retry_after_says_then_succeeds(
    server: ScriptedServer,
    make_client: Callable[..., ExchangeClient],
    transport_sleeps: list[float],
) -> None:
    records = [listing(1), listing(2)]
    server.script("POST", LOGIN_PATH, login_reply())
    server.script(
        "GET",
        LISTINGS,
        problem_reply(429, "Too Many Requests", "slow down", **{"Retry-After": "7"}),
        *paged(records),
    )

    assert all_records(list(make_client().iter_pages("listing"))) == records
    assert transport_sleeps == [7]


def test_503_until_the_attempts_run_out_is_source_unavailable(
    server: ScriptedServer,
    make_client: Callable[..., ExchangeClient],
    transport_sleeps: list[float],
) -> None:
    busy = problem_reply(503, "Service Unavailable", "nightly backup", **{"Retry-After": "2"})
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, busy, busy, busy)

    with pytest.raises(SourceUnavailableError, match=r"listing page 1.*HTTP 503.*nightly backup"):
        list(make_client(max_attempts=3).iter_pages("listing"))

    assert transport_sleeps == [2, 2]


# ----------------------------------------------------------------------------- bad bodies


def test_truncated_json_once_is_asked_again_and_recovers(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient], app_sleeps: list[float]
) -> None:
    records = [listing(n) for n in range(1, 4)]
    [good] = paged(records)
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, Reply(body=good.body[: len(good.body) // 2]), good)

    assert all_records(list(make_client().iter_pages("listing"))) == records
    assert len(app_sleeps) == 1 and 0 <= app_sleeps[0] <= 0.01


def test_a_connection_cut_mid_body_is_asked_again_and_recovers(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(n) for n in range(1, 4)]
    [good] = paged(records)
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, replace(good, cut_after=50), good)

    assert all_records(list(make_client().iter_pages("listing"))) == records


def test_truncated_json_every_time_is_a_response_error_naming_the_page(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(n) for n in range(1, 7)]
    first, second = paged(records)
    truncated = Reply(body=second.body[:-25])
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, first, truncated, truncated, truncated)

    with pytest.raises(SourceResponseError) as caught:
        list(make_client().iter_pages("listing"))

    message = str(caught.value)
    assert "listing page 2" in message and "invalid JSON" in message
    assert "after 3 attempts" in message
    assert f"{server.base_url}/api/v1/listings " in message  # no query string
    assert "modified_to=" not in message
    assert 'body starts \'{"items":[{"ma_tin":"NB-CB-000004"' in message


def test_an_html_page_with_status_200_once_recovers(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    records = [listing(1)]
    server.script("POST", LOGIN_PATH, login_reply())
    server.script(
        "GET", LISTINGS, Reply(body=HTML_ERROR_PAGE, content_type="text/html"), *paged(records)
    )

    assert all_records(list(make_client().iter_pages("listing"))) == records


def test_an_html_page_with_status_200_every_time_is_a_response_error(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    html = Reply(body=HTML_ERROR_PAGE, content_type="text/html; charset=utf-8")
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, html, html, html)

    with pytest.raises(SourceResponseError) as caught:
        list(make_client().iter_pages("listing"))

    message = str(caught.value)
    assert "content type 'text/html; charset=utf-8'" in message
    assert "<title>502 Bad Gateway</title></head> <body>" in message


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([listing(1)], "expected a JSON object, got list"),
        ({"data": [], "page": 1}, "no 'items' list"),
        ({"items": [], "page": 1, "page_size": 3, "total_items": "9", "total_pages": 3,
          "modified_to": BOUND}, "total_items must be an integer"),
        ({"items": [], "page": 2, "page_size": 3, "total_items": 0, "total_pages": 0,
          "modified_to": BOUND}, "asked for page 1, got page 2"),
        ({"items": [], "page": 1, "page_size": 3, "total_items": 9, "total_pages": 2,
          "modified_to": BOUND}, "total_pages 2 does not match"),
        ({"items": [], "page": 1, "page_size": 3, "total_items": 0, "total_pages": 0},
         "modified_to must be a date-time"),
        ({"items": [], "page": True, "page_size": 3, "total_items": 0, "total_pages": 0,
          "modified_to": BOUND}, "page must be an integer"),
    ],
)  # fmt: skip
def test_a_page_of_the_wrong_shape_is_a_response_error_and_not_retried(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient], body: Any, problem: str
) -> None:
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, json_reply(body))

    with pytest.raises(SourceResponseError, match="listing page 1") as caught:
        list(make_client().iter_pages("listing"))

    assert problem in str(caught.value)
    assert len(server.requests_to("GET", LISTINGS)) == 1


def test_a_bad_parameter_is_a_contract_error_with_the_problem_detail(
    server: ScriptedServer, make_client: Callable[..., ExchangeClient]
) -> None:
    server.script("POST", LOGIN_PATH, login_reply())
    server.script("GET", LISTINGS, problem_reply(400, "Bad Request", "page_size must be <= 500"))

    with pytest.raises(ContractError) as caught:
        list(make_client().iter_pages("listing"))

    error = caught.value
    assert (error.status, error.title, error.detail) == (
        400,
        "Bad Request",
        "page_size must be <= 500",
    )
    assert pickle.loads(pickle.dumps(error)).detail == error.detail  # noqa: S301 -- our own
    assert len(server.requests_to("GET", LISTINGS)) == 1


# ----------------------------------------------------------------------------- secrets


def test_the_key_and_sessions_never_reach_logs_exceptions_or_reprs(
    server: ScriptedServer,
    make_client: Callable[..., ExchangeClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    echo = f"X-Api-Key: {API_KEY} X-Session-Token: {SESSION_1}".encode()
    echo_both = Reply(
        body=b"<html>" + echo + b" " + SESSION_2.encode() + b"</html>", content_type="text/html"
    )
    first, _ = paged([listing(n) for n in range(1, 7)])
    server.script("POST", LOGIN_PATH, login_reply(SESSION_1), login_reply(SESSION_2))
    server.script(
        "GET",
        LISTINGS,
        first,
        problem_reply(401, "Unauthorized", f"session {SESSION_1} expired"),
        Reply(body=b"<html><pre>" + echo + b"</pre></html>", content_type="text/html"),
        problem_reply(503, "Service Unavailable", "busy", **{"Retry-After": "0"}),
        *[echo_both] * 3,
    )
    caplog.set_level(logging.DEBUG)
    client = make_client()
    texts = [repr(client)]

    with pytest.raises(SourceResponseError) as caught:
        texts += [repr(page) for page in client.iter_pages("listing")]

    texts += [str(caught.value), repr(caught.value)]
    texts += [record.getMessage() for record in caplog.records]
    assert any("retrying in" in r.getMessage() for r in caplog.records)
    assert "***" in str(caught.value)  # the echoed secrets were scrubbed, not dropped
    for text in texts:
        for secret in (API_KEY, SESSION_1, SESSION_2):
            assert secret not in text


# ----------------------------------------------------------------------------- envelope


def test_envelope_of_a_listing_and_a_transaction() -> None:
    stamp = datetime(2024, 3, 5, 15, 15, tzinfo=VN)
    assert exchange_envelope("listing", listing(7, "05/03/2024 15:15:00", version=3)) == (
        "NB-CB-000007",
        3,
        stamp,
        False,
    )
    deal = {"ma_giao_dich": "QG-GD-000045", "phien_ban": 2, "ngay_cap_nhat": "05/03/2024 15:15:00",
            "da_huy": True, "da_go": False}  # fmt: skip
    assert exchange_envelope("transaction", deal) == ("QG-GD-000045", 2, stamp, True)
    assert stamp == datetime(2024, 3, 5, 8, 15, tzinfo=UTC)  # +07:00, not naive


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"ma_tin": None}, (None, 1, True, False)),
        ({"ma_tin": ""}, (None, 1, True, False)),
        ({"ma_tin": 42}, ("42", 1, True, False)),
        ({"ma_tin": ["NB"]}, (None, 1, True, False)),
        ({"phien_ban": "2"}, ("NB-CB-000001", None, True, False)),
        ({"phien_ban": True}, ("NB-CB-000001", None, True, False)),
        ({"phien_ban": 2**63}, ("NB-CB-000001", None, True, False)),
        ({"phien_ban": 2.0}, ("NB-CB-000001", None, True, False)),
        ({"ngay_cap_nhat": "31/02/2024 08:00:00"}, ("NB-CB-000001", 1, False, False)),
        ({"ngay_cap_nhat": "2024-03-05T08:00:00+07:00"}, ("NB-CB-000001", 1, False, False)),
        ({"ngay_cap_nhat": "٠٥/03/2024 08:00:00"}, ("NB-CB-000001", 1, False, False)),
        ({"ngay_cap_nhat": 1709625600}, ("NB-CB-000001", 1, False, False)),
        ({"da_go": "false"}, ("NB-CB-000001", 1, True, None)),
        ({"da_go": 0}, ("NB-CB-000001", 1, True, None)),
    ],
)
def test_envelope_turns_malformed_values_into_none(
    changes: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    record_id, version, updated, deleted = exchange_envelope("listing", {**listing(1), **changes})
    assert (record_id, version, updated is not None, deleted) == expected


def test_envelope_of_a_record_without_fields_or_not_a_dict() -> None:
    assert exchange_envelope("listing", {}) == (None, None, None, None)
    assert exchange_envelope("transaction", ["not", "a", "record"]) == (None, None, None, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown exchange entity"):
        exchange_envelope("listings", {})


@pytest.mark.parametrize(
    ("moment", "sent"),
    [
        (datetime.min.replace(tzinfo=UTC), "0001-01-01T07:00:00+07:00"),
        (datetime(999, 6, 1, 12, 30, tzinfo=UTC), "0999-06-01T19:30:00+07:00"),
        # In Vietnam time they would leave the years a datetime holds: clamped to the edge.
        (datetime.min.replace(tzinfo=timezone(timedelta(hours=8))), "0001-01-01T00:00:00+07:00"),
        (datetime.max.replace(tzinfo=UTC), "9999-12-31T23:59:59+07:00"),
        (datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))), "9999-12-31T23:59:59+07:00"),
    ],
)
def test_bounds_at_the_edges_of_time_are_sent_in_vietnam_time(moment: datetime, sent: str) -> None:
    assert format_instant(moment) == sent


def test_timestamps_and_bounds() -> None:
    assert parse_local_timestamp("29/02/2024 23:59:59") == datetime(
        2024, 2, 29, 23, 59, 59, tzinfo=VN
    )
    assert parse_local_timestamp("29/02/2023 23:59:59") is None
    assert parse_local_timestamp("05/03/2024 8:15:00") is None
    assert format_instant(datetime(2024, 3, 5, 8, 15, 0, 999_999, tzinfo=UTC)) == (
        "2024-03-05T15:15:00+07:00"
    )
