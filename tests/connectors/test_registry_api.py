"""RegistryClient against a scripted HTTP server on 127.0.0.1, over real sockets.

Each test queues the replies a path should give, in order, runs the client, then checks what
it yielded or raised and the requests the server recorded. Backoffs are tiny, and the sleeps
that would be long (Retry-After, application-level backoff) are recorded instead of slept.
"""

from __future__ import annotations

import logging
import pickle
import socket
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
from connectors.registry_api import Page, RegistryClient, format_rfc3339

CLIENT_ID = "ninh-binh-sti"
CLIENT_SECRET = "s3cr3t-NB-7f2c9e1a"
TOKEN_1 = "tok-ALPHA-4b1e8d20"
TOKEN_2 = "tok-BRAVO-93c0aa57"
ENTITY = "st-tasks"
DATA_PATH = f"/v1/{ENTITY}"
TOKEN_PATH = "/oauth/token"

# ----------------------------------------------------------------------------- scripted server


@dataclass
class Reply:
    """What the server sends back for one request."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # Announce more bytes than are sent, then close: a connection cut mid-body.
    cut_after: int | None = None
    # Wait this long before answering (to provoke client read timeouts).
    delay: float = 0.0
    # Send this many body bytes, then go silent (a stalled transfer).
    stall_after: int | None = None


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]
    peer_port: int  # the client's side of the TCP connection

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


def json_reply(payload: Any, status: int = 200, **kwargs: Any) -> Reply:
    return Reply(status=status, body=orjson.dumps(payload), **kwargs)


def token_reply(token: str, expires_in: int = 3600) -> Reply:
    return json_reply({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})


def page_reply(records: list[dict[str, Any]], next_cursor: str | None) -> Reply:
    return json_reply(
        {"data": records, "next_cursor": next_cursor, "has_more": next_cursor is not None}
    )


def problem_reply(status: int, title: str, detail: str, **headers: str) -> Reply:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Reply(
        status=status,
        body=orjson.dumps(body),
        content_type="application/problem+json",
        headers=headers,
    )


class ScriptedServer:
    def __init__(self) -> None:
        self._scripts: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        # A short poll interval makes shutdown() quick at teardown.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def script(self, method: str, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[(method, path)].extend(replies)

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

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
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def _make_handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real registry
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length).decode() if length else ""
            request = Recorded(
                method=self.command,
                path=split.path,
                query={k: v[-1] for k, v in parse_qs(split.query).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
                form={k: v[-1] for k, v in parse_qs(raw_body).items()},
                peer_port=self.client_address[1],
            )
            reply = server.next_reply(request)
            if reply.delay and server.stopping.wait(reply.delay):
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            if reply.cut_after is not None:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if reply.stall_after is not None:
                self.wfile.write(reply.body[: reply.stall_after])
                server.stopping.wait(5.0)
                self.close_connection = True
                return
            self.wfile.write(reply.body[: reply.cut_after])

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler


@pytest.fixture(autouse=True)
def _no_proxy_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's HTTP(S)_PROXY must not capture requests to the local test server.
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


# ----------------------------------------------------------------------------- helpers


def make_records(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"NB-2023-DT-{i:04d}",
            "version": 1,
            "updated_at": "2024-03-05T08:15:00Z",
            "deleted": False,
            "title": "Nghiên cứu ứng dụng công nghệ sinh học",
            "province_code": "37",
        }
        for i in range(start, start + count)
    ]


HTML_ERROR_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head>\n<body><h1>502 Bad Gateway</h1>"
    b"<hr>nginx</body></html>"
)


@pytest.fixture
def app_sleeps() -> list[float]:
    """Waits of the client's application-level retry, recorded instead of slept."""
    return []


@pytest.fixture
def make_client(
    server: ScriptedServer, app_sleeps: list[float]
) -> Iterator[Callable[..., RegistryClient]]:
    clients: list[RegistryClient] = []

    def build(**overrides: Any) -> RegistryClient:
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
        client = RegistryClient(server.base_url, CLIENT_ID, CLIENT_SECRET, **options)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def transport_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Waits urllib3's Retry asks for (backoff, Retry-After), recorded instead of slept."""
    slept: list[float] = []
    fake_time = SimpleNamespace(sleep=slept.append, time=urllib3_retry.time.time)
    monkeypatch.setattr(urllib3_retry, "time", fake_time)
    return slept


def three_pages(server: ScriptedServer) -> list[dict[str, Any]]:
    """Script a token and three pages (cursors c1, c2); return all records in order."""
    records = make_records(1, 8)
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script(
        "GET",
        DATA_PATH,
        page_reply(records[0:3], "c1"),
        page_reply(records[3:6], "c2"),
        page_reply(records[6:8], None),
    )
    return records


def all_records(pages: list[Page]) -> list[dict[str, Any]]:
    return [record for page in pages for record in page.records]


# ----------------------------------------------------------------------------- pagination


def test_follows_the_cursor_and_sends_updated_since_only_on_the_first_request(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    records = three_pages(server)
    since = datetime(2024, 3, 5, 15, 15, tzinfo=timezone(timedelta(hours=7)))  # Hanoi time

    pages = list(make_client().iter_pages(ENTITY, updated_since=since))

    assert [page.number for page in pages] == [1, 2, 3]
    assert [page.next_cursor for page in pages] == ["c1", "c2", None]
    assert all_records(pages) == records
    assert [r.query for r in server.requests_to("GET", DATA_PATH)] == [
        {"updated_since": "2024-03-05T08:15:00Z", "limit": "3"},
        {"cursor": "c1", "limit": "3"},
        {"cursor": "c2", "limit": "3"},
    ]


def test_without_updated_since_the_first_request_sends_only_the_limit(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script("GET", DATA_PATH, page_reply([], None))

    pages = list(make_client(page_size=10_000).iter_pages(ENTITY))

    assert [(page.number, page.records, page.next_cursor) for page in pages] == [(1, [], None)]
    assert server.requests_to("GET", DATA_PATH)[0].query == {"limit": "10000"}


def test_naive_updated_since_is_rejected_before_any_request(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_client().iter_pages(ENTITY, updated_since=datetime(2024, 3, 5))
    assert server.requests == []


def test_rfc3339_keeps_fractional_seconds() -> None:
    moment = datetime(2024, 3, 5, 8, 15, 0, 250_000, tzinfo=UTC)
    assert format_rfc3339(moment) == "2024-03-05T08:15:00.250000Z"


@pytest.mark.parametrize(
    ("moment", "sent"),
    [
        (datetime.min.replace(tzinfo=UTC), "0001-01-01T00:00:00Z"),  # "from the beginning"
        (datetime(999, 6, 1, 12, 30, tzinfo=UTC), "0999-06-01T12:30:00Z"),
        (datetime(1, 1, 1, 3, tzinfo=timezone(timedelta(hours=-5))), "0001-01-01T08:00:00Z"),
        # Converted to UTC they would leave the years a datetime holds: clamped to the edge.
        (datetime.min.replace(tzinfo=timezone(timedelta(hours=7))), "0001-01-01T00:00:00Z"),
        (datetime.max.replace(tzinfo=UTC), "9999-12-31T23:59:59.999999Z"),
        (datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))), "9999-12-31T23:59:59.999999Z"),
        (datetime.max.replace(tzinfo=timezone(timedelta(hours=5))), "9999-12-31T18:59:59.999999Z"),
    ],
)
def test_rfc3339_pads_the_year_and_survives_the_edges_of_time(moment: datetime, sent: str) -> None:
    assert format_rfc3339(moment) == sent


def test_updated_since_the_beginning_of_time_is_sent_as_rfc3339(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script("GET", DATA_PATH, page_reply([], None))
    since = datetime.min.replace(tzinfo=timezone(timedelta(hours=7)))

    list(make_client().iter_pages(ENTITY, updated_since=since))

    assert server.requests_to("GET", DATA_PATH)[0].query["updated_since"] == (
        "0001-01-01T00:00:00Z"
    )


def test_all_requests_share_one_keep_alive_connection(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    three_pages(server)

    list(make_client().iter_pages(ENTITY))

    assert len(server.requests) == 4
    assert {r.peer_port for r in server.requests} == {server.requests[0].peer_port}


def test_repeated_cursor_stops_the_run_before_yielding_the_suspect_page(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script(
        "GET",
        DATA_PATH,
        page_reply(make_records(1, 3), "c1"),
        page_reply(make_records(4, 3), "c2"),
        page_reply(make_records(7, 3), "c1"),
    )
    yielded: list[int] = []

    with pytest.raises(RepeatedCursorError, match="page 3") as caught:
        for page in make_client().iter_pages(ENTITY):
            yielded.append(page.number)

    assert yielded == [1, 2]
    assert "'c1'" in str(caught.value)
    assert len(server.requests_to("GET", DATA_PATH)) == 3


# ----------------------------------------------------------------------------- token


def test_token_is_fetched_once_with_client_credentials_and_reused(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    three_pages(server)

    list(make_client().iter_pages(ENTITY))

    token_requests = server.requests_to("POST", TOKEN_PATH)
    assert [r.form for r in token_requests] == [
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
    ]
    assert [r.bearer for r in server.requests_to("GET", DATA_PATH)] == [TOKEN_1] * 3


def test_token_expiring_mid_run_is_refreshed_and_the_same_page_requested_again(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    records = make_records(1, 8)
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1), token_reply(TOKEN_2))
    server.script(
        "GET",
        DATA_PATH,
        page_reply(records[0:3], "c1"),
        problem_reply(
            401,
            "Unauthorized",
            "token expired",
            **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ),
        page_reply(records[3:6], "c2"),
        page_reply(records[6:8], None),
    )

    pages = list(make_client().iter_pages(ENTITY))

    assert all_records(pages) == records  # nothing lost, nothing repeated
    assert [page.number for page in pages] == [1, 2, 3]
    gets = server.requests_to("GET", DATA_PATH)
    assert [(r.bearer, r.query.get("cursor")) for r in gets] == [
        (TOKEN_1, None),
        (TOKEN_1, "c1"),
        (TOKEN_2, "c1"),
        (TOKEN_2, "c2"),
    ]
    assert len(server.requests_to("POST", TOKEN_PATH)) == 2


def test_a_second_401_after_the_refresh_is_an_auth_error(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1), token_reply(TOKEN_2))
    server.script(
        "GET",
        DATA_PATH,
        problem_reply(401, "Unauthorized", "token expired"),
        problem_reply(401, "Unauthorized", "client disabled"),
    )

    with pytest.raises(SourceAuthError, match=r"after a token refresh.*client disabled"):
        list(make_client().iter_pages(ENTITY))

    assert [r.bearer for r in server.requests_to("GET", DATA_PATH)] == [TOKEN_1, TOKEN_2]


def test_token_is_refreshed_proactively_shortly_before_it_expires(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    records = make_records(1, 8)
    # expires_in 100 s -> refresh margin min(30 s, 10% of 100 s) = 10 s -> refresh from t+90 s.
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1, expires_in=100), token_reply(TOKEN_2))
    server.script(
        "GET",
        DATA_PATH,
        page_reply(records[0:3], "c1"),
        page_reply(records[3:6], "c2"),
        page_reply(records[6:8], None),
    )
    now = [1000.0]
    pages_iter = make_client(clock=lambda: now[0]).iter_pages(ENTITY)

    first = next(pages_iter)
    now[0] += 89.0  # still 11 s left: keep the token
    second = next(pages_iter)
    now[0] += 2.0  # 9 s left: inside the margin, refresh before asking
    third = next(pages_iter)

    assert all_records([first, second, third]) == records
    assert [r.bearer for r in server.requests_to("GET", DATA_PATH)] == [TOKEN_1, TOKEN_1, TOKEN_2]
    assert len(server.requests_to("POST", TOKEN_PATH)) == 2


def test_bad_credentials_raise_an_auth_error_with_the_oauth_error_code(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    server.script(
        "POST",
        TOKEN_PATH,
        json_reply(
            {"error": "invalid_client", "error_description": "client authentication failed"},
            status=401,
        ),
    )

    with pytest.raises(SourceAuthError, match="invalid_client: client authentication failed"):
        list(make_client().iter_pages(ENTITY))

    assert server.requests_to("GET", DATA_PATH) == []
    assert len(server.requests_to("POST", TOKEN_PATH)) == 1  # a refusal is not retried


# ----------------------------------------------------------------------------- transport


def test_429_waits_as_long_as_retry_after_says_then_succeeds(
    server: ScriptedServer,
    make_client: Callable[..., RegistryClient],
    transport_sleeps: list[float],
) -> None:
    records = make_records(1, 2)
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script(
        "GET",
        DATA_PATH,
        problem_reply(429, "Too Many Requests", "slow down", **{"Retry-After": "7"}),
        page_reply(records, None),
    )

    pages = list(make_client().iter_pages(ENTITY))

    assert all_records(pages) == records
    assert transport_sleeps == [7]
    assert len(server.requests_to("GET", DATA_PATH)) == 2


def test_503_until_the_attempts_run_out_is_source_unavailable(
    server: ScriptedServer,
    make_client: Callable[..., RegistryClient],
    transport_sleeps: list[float],
) -> None:
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    busy = problem_reply(503, "Service Unavailable", "nightly backup", **{"Retry-After": "2"})
    server.script("GET", DATA_PATH, busy, busy, busy)

    with pytest.raises(SourceUnavailableError, match=r"HTTP 503.*nightly backup") as caught:
        list(make_client(max_attempts=3).iter_pages(ENTITY))

    assert "page 1" in str(caught.value)
    assert len(server.requests_to("GET", DATA_PATH)) == 3
    assert transport_sleeps == [2, 2]


def test_connection_refused_is_source_unavailable() -> None:
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = RegistryClient(
        f"http://127.0.0.1:{port}", CLIENT_ID, CLIENT_SECRET, max_attempts=2, backoff_base=0.01
    )

    with client, pytest.raises(SourceUnavailableError, match=r"POST .*/oauth/token failed"):
        list(client.iter_pages(ENTITY))


def test_read_timeouts_are_source_unavailable(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    slow = replace(page_reply([], None), delay=5.0)
    server.script("GET", DATA_PATH, slow, slow)

    with pytest.raises(SourceUnavailableError, match=r"GET .*/v1/st-tasks failed.*Read timed out"):
        list(make_client(max_attempts=2, read_timeout=0.2).iter_pages(ENTITY))

    assert len(server.requests_to("GET", DATA_PATH)) == 2


# ----------------------------------------------------------------------------- bad bodies


def test_truncated_json_once_is_requested_again_and_recovers(
    server: ScriptedServer, make_client: Callable[..., RegistryClient], app_sleeps: list[float]
) -> None:
    records = make_records(1, 3)
    good = page_reply(records, None)
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script("GET", DATA_PATH, Reply(body=good.body[:-40]), good)

    pages = list(make_client().iter_pages(ENTITY))

    assert all_records(pages) == records
    assert len(server.requests_to("GET", DATA_PATH)) == 2
    assert len(app_sleeps) == 1 and 0 <= app_sleeps[0] <= 0.01


def test_connection_cut_mid_body_is_requested_again_and_recovers(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    records = make_records(1, 3)
    good = page_reply(records, None)
    cut = replace(good, cut_after=50)
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script("GET", DATA_PATH, cut, good)

    pages = list(make_client().iter_pages(ENTITY))

    assert all_records(pages) == records
    assert len(server.requests_to("GET", DATA_PATH)) == 2


def test_transfer_stalled_mid_body_is_requested_again_and_recovers(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    records = make_records(1, 3)
    good = page_reply(records, None)
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script("GET", DATA_PATH, replace(good, stall_after=50), good)

    pages = list(make_client(read_timeout=0.2).iter_pages(ENTITY))

    assert all_records(pages) == records
    assert len(server.requests_to("GET", DATA_PATH)) == 2


def test_truncated_json_every_time_is_a_response_error_naming_the_page(
    server: ScriptedServer, make_client: Callable[..., RegistryClient], app_sleeps: list[float]
) -> None:
    truncated = Reply(body=page_reply(make_records(4, 3), "c2").body[:-25])
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script("GET", DATA_PATH, page_reply(make_records(1, 3), "c1"), *[truncated] * 4)

    with pytest.raises(SourceResponseError) as caught:
        list(make_client(max_attempts=4, backoff_max=0.02).iter_pages(ENTITY))

    message = str(caught.value)
    assert "st-tasks page 2" in message
    assert f"{server.base_url}/v1/st-tasks " in message  # the URL, without its query string
    assert "cursor=" not in message
    assert "invalid JSON" in message and "after 4 attempts" in message
    assert "'application/json'" in message
    assert 'body starts \'{"data":[{"id":"NB-2023-DT-0004"' in message
    assert len(server.requests_to("GET", DATA_PATH)) == 5
    # Full jitter between 0 and min(backoff_max, base * 2**n): 0.01, 0.02, then capped at 0.02.
    assert len(app_sleeps) == 3
    assert all(0 <= wait <= cap for wait, cap in zip(app_sleeps, [0.01, 0.02, 0.02], strict=True))


def test_html_error_page_with_status_200_once_recovers(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    records = make_records(1, 2)
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script(
        "GET",
        DATA_PATH,
        Reply(body=HTML_ERROR_PAGE, content_type="text/html"),
        page_reply(records, None),
    )

    pages = list(make_client().iter_pages(ENTITY))

    assert all_records(pages) == records


def test_html_error_page_with_status_200_every_time_is_a_response_error(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    html = Reply(body=HTML_ERROR_PAGE, content_type="text/html; charset=utf-8")
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script("GET", DATA_PATH, html, html, html)

    with pytest.raises(SourceResponseError) as caught:
        list(make_client(max_attempts=3).iter_pages(ENTITY))

    message = str(caught.value)
    assert "st-tasks page 1" in message
    assert "content type 'text/html; charset=utf-8'" in message
    assert "<title>502 Bad Gateway</title></head> <body>" in message  # one line, newline gone
    assert len(server.requests_to("GET", DATA_PATH)) == 3


@pytest.mark.parametrize(
    ("envelope", "problem"),
    [
        ([{"id": "NB-2023-DT-0001"}], "expected a JSON object, got list"),
        ({"items": [], "next_cursor": None}, "no 'data' list"),
        ({"data": {"id": "x"}, "next_cursor": None}, "no 'data' list"),
        ({"data": [], "next_cursor": 42}, "next_cursor must be a non-empty string"),
        ({"data": [], "next_cursor": None, "has_more": True}, "has_more is true"),
    ],
)
def test_wrong_envelope_shape_is_a_response_error_and_not_retried(
    server: ScriptedServer,
    make_client: Callable[..., RegistryClient],
    envelope: Any,
    problem: str,
) -> None:
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script("GET", DATA_PATH, json_reply(envelope))

    with pytest.raises(SourceResponseError, match="st-tasks page 1") as caught:
        list(make_client().iter_pages(ENTITY))

    assert problem in str(caught.value)
    assert len(server.requests_to("GET", DATA_PATH)) == 1


# ----------------------------------------------------------------------------- contract errors


def test_unknown_entity_is_a_contract_error_with_the_problem_detail(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script(
        "GET", "/v1/st-taskz", problem_reply(404, "Not Found", "unknown entity 'st-taskz'")
    )

    with pytest.raises(ContractError) as caught:
        list(make_client().iter_pages("st-taskz"))

    error = caught.value
    assert (error.status, error.title, error.detail) == (
        404,
        "Not Found",
        "unknown entity 'st-taskz'",
    )
    assert "HTTP 404: Not Found: unknown entity 'st-taskz'" in str(error)
    assert len(server.requests_to("GET", "/v1/st-taskz")) == 1  # not retried
    # Errors survive pickling (multiprocessing, executors); this is our own object.
    assert pickle.loads(pickle.dumps(error)).detail == "unknown entity 'st-taskz'"  # noqa: S301


def test_bad_parameter_is_a_contract_error_and_not_retried(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1))
    server.script(
        "GET",
        DATA_PATH,
        page_reply(make_records(1, 3), "c1"),
        problem_reply(400, "Bad Request", "cursor is malformed"),
    )

    with pytest.raises(ContractError, match=r"page 2.*HTTP 400: Bad Request: cursor is malformed"):
        list(make_client().iter_pages(ENTITY))

    assert len(server.requests_to("GET", DATA_PATH)) == 2


# ----------------------------------------------------------------------------- secrets


def test_secret_and_tokens_never_reach_logs_exceptions_or_reprs(
    server: ScriptedServer,
    make_client: Callable[..., RegistryClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A proxy page and an error body that echo the credentials back, a token refresh, and a
    # transport retry, so every log and error path gets a chance to leak.
    echo = f"Authorization: Bearer {TOKEN_1} client_secret={CLIENT_SECRET}".encode()
    echo_with_new_token = Reply(
        body=b"<html>" + echo + b" " + TOKEN_2.encode() + b"</html>", content_type="text/html"
    )
    server.script("POST", TOKEN_PATH, token_reply(TOKEN_1), token_reply(TOKEN_2))
    server.script(
        "GET",
        DATA_PATH,
        page_reply(make_records(1, 3), "c1"),
        problem_reply(401, "Unauthorized", f"token {TOKEN_1} expired"),
        Reply(body=b"<html><pre>" + echo + b"</pre></html>", content_type="text/html"),
        problem_reply(503, "Service Unavailable", "busy", **{"Retry-After": "0"}),
        page_reply(make_records(4, 3), "c2"),
        *[echo_with_new_token] * 3,
    )
    caplog.set_level(logging.DEBUG)
    client = make_client(max_attempts=3)
    texts = [repr(client)]

    with pytest.raises(SourceResponseError) as caught:
        texts += [repr(page) for page in client.iter_pages(ENTITY)]

    texts += [str(caught.value), repr(caught.value)]
    cause: BaseException | None = caught.value
    while cause is not None:
        texts += [str(cause), repr(cause)]
        cause = cause.__cause__ or cause.__context__
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    # The scenario really went through urllib3's retry and our warnings.
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    assert any("retrying in" in r.getMessage() for r in caplog.records)
    assert "***" in str(caught.value)  # the echoed credentials were scrubbed, not dropped
    for text in texts:
        for secret in (CLIENT_SECRET, TOKEN_1, TOKEN_2):
            assert secret not in text


def test_token_endpoint_echoing_the_secret_does_not_leak_it(
    server: ScriptedServer, make_client: Callable[..., RegistryClient]
) -> None:
    server.script(
        "POST",
        TOKEN_PATH,
        json_reply(
            {"error": "invalid_client", "error_description": f"unknown secret {CLIENT_SECRET}"},
            status=400,
        ),
    )

    with pytest.raises(SourceAuthError) as caught:
        list(make_client().iter_pages(ENTITY))

    assert "invalid_client: unknown secret ***" in str(caught.value)
    assert CLIENT_SECRET not in str(caught.value)
