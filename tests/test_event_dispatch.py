"""The dispatcher (connectors/event_dispatch.py): inbox rows → Airflow asset events.

Unit tests run against a real PostgreSQL and a small HTTP server playing the documented
contract of Airflow's `/auth/token`, `/api/v2/assets` and `/api/v2/assets/events` (Airflow is
remote to the dispatcher), which records what it received. The e2e test runs a real
`airflow standalone`: dispatched rows trigger the sync DAG, which publishes and marks them done.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests
from airflow_standalone import ASSET_URI, CATALOGUE, DAG_ID, airflow_standalone

from connectors.airflow_api import AirflowApi, api_from_environment
from connectors.event_dispatch import claim, dispatch_once, mark_done
from local.airflow_env import connection_env
from local.registry.process import run_registry

USER, PASSWORD = "sti_dispatcher", "dispatch-secret"
ASSETS = {"sti://nb/st_task": 7, "sti://nb/organisation": 8, "sti://th/st_task": 9}


class FakeAirflow(ThreadingHTTPServer):
    """Airflow's API as the dispatcher uses it; `fail_posts` answers the next N posts 503."""

    daemon_threads = True

    def __init__(self, post_delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.RLock()
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str, int]] = []  # method, path, status
        self.events: list[dict] = []  # the asset events created
        self.fail_posts = 0
        self.post_delay = post_delay

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def posted(self, uri: str) -> list[dict]:
        return [event["extra"] for event in self.events if event["uri"] == uri]


class _Handler(BaseHTTPRequestHandler):
    server: FakeAirflow

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        path = urlsplit(self.path).path
        if path == "/auth/token":
            if body != {"username": USER, "password": PASSWORD}:
                return self._answer(401, {"detail": "Invalid credentials"})
            token = f"jwt-{len(self.server.tokens)}"
            self.server.tokens.add(token)
            return self._answer(201, {"access_token": token})
        if not self._authorised():
            return None
        if path != "/api/v2/assets/events":
            return self._answer(404, {"detail": "Not Found"})
        time.sleep(self.server.post_delay)
        with self.server.lock:
            if self.server.fail_posts:
                self.server.fail_posts -= 1
                return self._answer(503, {"detail": "Service Unavailable"})
            uri = next(uri for uri, id_ in ASSETS.items() if id_ == body["asset_id"])
            event = {
                "id": len(self.server.events) + 1,
                "asset_id": body["asset_id"],
                "uri": uri,
                "extra": {**body["extra"], "from_rest_api": True},
                "source_map_index": -1,
                "created_dagruns": [],
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
            self.server.events.append(event)
        return self._answer(200, event)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if not self._authorised():
            return
        if parts.path != "/api/v2/assets":
            return self._answer(404, {"detail": "Not Found"})
        pattern = parse_qs(parts.query).get("uri_pattern", [""])[0]
        assets = [{"id": i, "uri": u, "name": u} for u, i in ASSETS.items() if pattern in u]
        self._answer(200, {"assets": assets, "total_entries": len(assets)})

    def _authorised(self) -> bool:
        token = self.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.server.tokens:
            self._answer(401, {"detail": "Not authenticated"})
            return False
        return True

    def _answer(self, status: int, body: dict) -> None:
        with self.server.lock:
            self.server.requests.append((self.command, urlsplit(self.path).path, status))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_airflow():
    server = FakeAirflow()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _api(server: FakeAirflow) -> AirflowApi:
    return AirflowApi(server.base, USER, PASSWORD, timeout=5, backoff=0.01)


def _add_events(url: str, source: str, entity: str, count: int) -> list[int]:
    """`count` pending inbox rows, the newest changed an hour ago; their inbox ids."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "insert into ops.event_inbox"
            " (source_id, event_id, entity, record_id, version, change_kind, event_time)"
            " select %s, %s || '-' || g, %s, 'R' || g, 1, 'upsert',"
            "   timestamptz '2026-03-01 10:00+07' - g * interval '1 second'"
            " from generate_series(1, %s) as g returning inbox_id",
            (source, f"{entity}-{time.monotonic_ns()}", entity, count),
        ).fetchall()
    return [row[0] for row in rows]


def _states(url: str) -> Counter:
    with psycopg.connect(url) as conn:
        return Counter(
            conn.execute(
                "select source_id, entity, dispatch_state, dispatch_attempts from ops.event_inbox"
            ).fetchall()
        )


def test_a_burst_of_1000_events_becomes_one_asset_event_per_source_entity(
    warehouse_url, fake_airflow
):
    burst = _add_events(warehouse_url, "nb", "st_task", 1000)
    _add_events(warehouse_url, "nb", "organisation", 10)
    _add_events(warehouse_url, "th", "st_task", 3)

    cycle = dispatch_once(warehouse_url, _api(fake_airflow))

    assert cycle.claimed == 1013 and not cycle.failed and not cycle.full
    assert sorted(cycle.posted) == sorted(ASSETS)
    [extra] = fake_airflow.posted("sti://nb/st_task")
    assert extra["events"] == 1000 and extra["inbox_ids"] == burst
    newest = datetime(2026, 3, 1, 2, 59, 59, tzinfo=UTC)  # 10:00+07 less a second
    assert datetime.fromisoformat(extra["max_event_time"]) == newest
    assert [e["events"] for e in fake_airflow.posted("sti://nb/organisation")] == [10]
    with psycopg.connect(warehouse_url) as conn:
        marked = conn.execute(
            "select distinct asset_event_id, dispatched_at from ops.event_inbox"
            " where source_id = 'nb' and entity = 'st_task'"
        ).fetchall()
    [event] = [e for e in fake_airflow.events if e["uri"] == "sti://nb/st_task"]
    assert marked == [(event["id"], datetime.fromisoformat(event["timestamp"]))]
    assert _states(warehouse_url) == {
        ("nb", "st_task", "dispatched", 1): 1000,
        ("nb", "organisation", "dispatched", 1): 10,
        ("th", "st_task", "dispatched", 1): 3,
    }
    # Nothing is sent twice.
    assert dispatch_once(warehouse_url, _api(fake_airflow)).claimed == 0
    assert len(fake_airflow.events) == 3

    # A limit bounds an asset event: more rows than it make a few events, never one per row.
    more = _add_events(warehouse_url, "nb", "st_task", 1000)
    cycle = dispatch_once(warehouse_url, _api(fake_airflow), limit=400)
    assert cycle.full and cycle.claimed == 400
    while dispatch_once(warehouse_url, _api(fake_airflow), limit=400).claimed:
        pass
    sent = [extra["inbox_ids"] for extra in fake_airflow.posted("sti://nb/st_task")[1:]]
    assert [len(ids) for ids in sent] == [400, 400, 200]
    assert [i for ids in sent for i in ids] == more


def test_a_claim_never_confirmed_is_sent_again_after_the_lease_once(warehouse_url, fake_airflow):
    ids = _add_events(warehouse_url, "nb", "st_task", 50)
    api = _api(fake_airflow)
    # A dispatcher claims the rows, then hangs before posting (or its host vanished).
    dead = psycopg.connect(warehouse_url)
    try:
        assert len(claim(dead, "nb", "st_task", limit=100, lease=1, resend=3600)) == 50
        # While its claim lasts, the rows are its own: nobody else sends them.
        assert dispatch_once(warehouse_url, api, lease=1).claimed == 0
        time.sleep(2)  # the server ends the claim's transaction after the lease
        with pytest.raises(psycopg.Error):  # it is gone: its transaction and locks too
            dead.execute("select 1")
    finally:
        dead.close()

    cycle = dispatch_once(warehouse_url, api, lease=1)
    assert cycle.claimed == 50 and list(cycle.posted) == ["sti://nb/st_task"]
    assert dispatch_once(warehouse_url, api, lease=1).claimed == 0
    [extra] = fake_airflow.posted("sti://nb/st_task")
    assert extra["inbox_ids"] == ids
    assert _states(warehouse_url) == {("nb", "st_task", "dispatched", 1): 50}


def test_airflow_5xx_is_retried_and_an_outage_leaves_the_rows_pending(warehouse_url, fake_airflow):
    _add_events(warehouse_url, "nb", "st_task", 20)
    fake_airflow.fail_posts = 2

    cycle = dispatch_once(warehouse_url, _api(fake_airflow))

    assert list(cycle.posted) == ["sti://nb/st_task"] and not cycle.failed
    posts = [s for m, p, s in fake_airflow.requests if p == "/api/v2/assets/events"]
    assert posts == [503, 503, 200]
    assert len(fake_airflow.events) == 1
    assert _states(warehouse_url) == {("nb", "st_task", "dispatched", 1): 20}

    # Down for longer than the retries: the rows stay pending with the error, then go.
    _add_events(warehouse_url, "nb", "organisation", 5)
    fake_airflow.fail_posts = 100
    cycle = dispatch_once(warehouse_url, _api(fake_airflow))
    assert (
        list(cycle.failed) == ["sti://nb/organisation"]
        and "503" in cycle.failed["sti://nb/organisation"]
    )
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(
            "select dispatch_state, dispatch_attempts, last_error like '%%503%%'"
            " from ops.event_inbox where entity = 'organisation' group by 1, 2, 3"
        ).fetchall() == [("pending", 1, True)]
    fake_airflow.fail_posts = 0
    assert list(dispatch_once(warehouse_url, _api(fake_airflow)).posted) == [
        "sti://nb/organisation"
    ]
    assert _states(warehouse_url)[("nb", "organisation", "dispatched", 2)] == 5


def test_two_dispatchers_at_once_never_post_the_same_rows(warehouse_url, fake_airflow):
    ids = _add_events(warehouse_url, "nb", "st_task", 1000)
    # A dispatcher in the middle of sending the first 500: another skips them, never waits.
    busy = psycopg.connect(warehouse_url)
    try:
        held = claim(busy, "nb", "st_task", limit=500, lease=60, resend=3600)
        started = time.monotonic()
        dispatch_once(warehouse_url, _api(fake_airflow))
        assert time.monotonic() - started < 5
    finally:
        busy.rollback()
        busy.close()
    [extra] = fake_airflow.posted("sti://nb/st_task")
    assert extra["inbox_ids"] == ids[500:] and [row[0] for row in held] == ids[:500]

    # Two dispatchers racing over the rest and new rows, a slow Airflow, small claims.
    fake_airflow.post_delay = 0.02
    for source, entity in (("nb", "organisation"), ("th", "st_task")):
        ids += _add_events(warehouse_url, source, entity, 600)
    go = threading.Barrier(2)
    errors = []

    def dispatcher() -> None:
        try:
            api = _api(fake_airflow)
            go.wait()
            while dispatch_once(warehouse_url, api, limit=50).claimed:
                pass
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    posted = [i for event in fake_airflow.events for i in event["extra"]["inbox_ids"]]
    assert len(posted) == len(set(posted)) and sorted(posted) == sorted(ids)


def test_mark_done_covers_what_was_dispatched_before_the_run_and_stale_rows_go_again(
    warehouse_url, fake_airflow
):
    _add_events(warehouse_url, "nb", "st_task", 30)
    _add_events(warehouse_url, "nb", "organisation", 4)
    dispatch_once(warehouse_url, _api(fake_airflow))
    [event] = [e for e in fake_airflow.events if e["uri"] == "sti://nb/st_task"]
    sent_at = datetime.fromisoformat(event["timestamp"])
    late = _add_events(warehouse_url, "nb", "st_task", 2)  # after the run started: not covered

    assert mark_done(warehouse_url, "nb", "st_task", sent_at - timedelta(seconds=1)) == 0
    assert mark_done(warehouse_url, "nb", "st_task", sent_at + timedelta(seconds=1)) == 30
    assert _states(warehouse_url) == {
        ("nb", "st_task", "done", 1): 30,
        ("nb", "st_task", "pending", 0): 2,
        ("nb", "organisation", "dispatched", 1): 4,
    }

    # Dispatched long ago and never covered (its run failed): sent again.
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            "update ops.event_inbox set dispatched_at = now() - interval '2 hours'"
            " where entity = 'organisation'"
        )
    cycle = dispatch_once(warehouse_url, _api(fake_airflow))
    assert sorted(cycle.posted) == ["sti://nb/organisation", "sti://nb/st_task"]
    assert fake_airflow.posted("sti://nb/st_task")[-1]["inbox_ids"] == late
    assert _states(warehouse_url)[("nb", "organisation", "dispatched", 2)] == 4


def test_the_api_connection_comes_from_the_environment():
    conn = {"conn_type": "http", "host": "http://af:8080", "login": "u", "password": "p w"}
    api = api_from_environment({"AIRFLOW_CONN_STI_AIRFLOW_API": json.dumps(conn)})
    assert api.base_url == "http://af:8080"
    api = api_from_environment({"AIRFLOW_CONN_STI_AIRFLOW_API": "https://u:p%20w@af.example/"})
    assert api.base_url == "https://af.example"
    with pytest.raises(SystemExit, match="AIRFLOW_CONN_STI_AIRFLOW_API"):
        api_from_environment({})


# --- End to end, with a running Airflow --------------------------------------------------------


@pytest.mark.e2e
def test_dispatched_events_run_the_sync_dag_once_and_end_done(warehouse_url):
    with (
        tempfile.TemporaryDirectory(prefix="sti-airflow-dispatch-") as folder,
        run_registry(records=80, bad_share=0.0, seed=5) as registry,
    ):
        home = Path(folder)
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({USER: PASSWORD}), encoding="utf-8")
        settings = {  # a real login with the least role that may create asset events
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:op",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        }
        env = connection_env(warehouse_url, {"ninh_binh_registry": registry})
        with airflow_standalone(home, CATALOGUE, env, settings) as airflow:
            api = AirflowApi(airflow.base, USER, PASSWORD)
            token = requests.post(
                f"{airflow.base}/auth/token",
                json={"username": USER, "password": PASSWORD},
                timeout=30,
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}

            def dag_parsed():
                reply = airflow.get(f"/api/v2/dags/{DAG_ID}", token)
                return reply is not None and reply.status_code == 200

            airflow.wait_for("the DAG to be parsed", dag_parsed, 180)
            requests.patch(
                f"{airflow.base}/api/v2/dags/{DAG_ID}",
                json={"is_paused": False},
                headers=headers,
                timeout=30,
            ).raise_for_status()
            burst = _add_events(warehouse_url, "ninh_binh_registry", "st_task", 1000)

            def dispatched():  # until the DAG processor has registered the asset
                return dispatch_once(warehouse_url, api).posted

            posted = airflow.wait_for("the dispatch", dispatched, 60)
            assert list(posted) == [ASSET_URI]

            def finished_runs():
                reply = airflow.get(f"/api/v2/dags/{DAG_ID}/dagRuns", token)
                runs = [] if reply is None or reply.status_code != 200 else reply.json()["dag_runs"]
                return runs if any(r["state"] in ("success", "failed") for r in runs) else None

            [run] = airflow.wait_for("the triggered DAG run", finished_runs, 300)
            assert run["run_type"] == "asset_triggered", run
            assert run["state"] == "success", airflow.tail()
            reply = airflow.get("/api/v2/assets/events", token)
            events = [e for e in reply.json()["asset_events"] if e["uri"] == ASSET_URI]
            assert [e["extra"]["events"] for e in events] == [1000]
            assert events[0]["extra"]["inbox_ids"] == burst

    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("select state, records_landed from ops.load_batch").fetchall() == [
            ("published", 80)
        ]
        states = conn.execute(
            "select dispatch_state, asset_event_id, count(*) from ops.event_inbox group by 1, 2"
        ).fetchall()
    assert states == [("done", events[0]["id"], 1000)]
