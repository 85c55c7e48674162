"""The stand-in registries send signed change events to the real intake: a record changed
through `/_standin/changes` arrives in `ops.event_inbox` once, with its kind, id, version and
time; events made while the intake is down arrive when it comes up; a wrong secret is refused
and counted, and stores nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from standardwebhooks import Webhook

from connectors.catalogue import Source, load_catalogue
from local.airflow_env import connection_env
from local.registry.events import EventTarget, new_signing_secret
from local.registry.process import _events, run_registry
from local.standin_process import free_loopback_port, serve
from local.standins import StandIns, run_standins, signing_connections

NB = "ninh_binh_registry"
NB_SUBSCRIPTION = "ninh-binh-registry"
CATALOGUE = f"""\
sources:
  - {{id: {NB}, name: NB, province_code: "37", system: registry,
     contract: registry-api-v1, connection_id: nb, entities: [st_task, ip_right],
     schedule: "0 3 * * *", owner: nb,
     events: {{subscription: {NB_SUBSCRIPTION}, signing_secret: ninh_binh_registry_events}}}}
"""
STANDINS = StandIns(profile="demo", sources={NB: {"registry": "ninh_binh"}})
CHANGED_SINCE = "2026-07-01T00:00:00Z"  # changes tick on from the last base record's time
WAIT = 15.0  # seconds at most for events to arrive; they take well under one


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    path = tmp_path / "sources.yml"
    path.write_text(CATALOGUE, encoding="utf-8")
    return path


@pytest.fixture
def sources(catalogue: Path) -> list[Source]:
    return load_catalogue(catalogue)


@contextmanager
def intake(
    port: int, warehouse_url: str, catalogue: Path, sources: list[Source], secrets: dict[str, str]
) -> Iterator[str]:
    """`python -m connectors.event_intake` on `port`, its secrets in AIRFLOW_CONN_* as the
    demo passes them."""
    env = connection_env(warehouse_url, signing_connections(sources, secrets))
    arguments = [
        "-m",
        "connectors.event_intake",
        "--port",
        str(port),
        "--catalogue",
        str(catalogue),
    ]
    url = f"http://127.0.0.1:{port}"
    with serve(
        arguments,
        {**env, "WAREHOUSE_URL": warehouse_url},
        [url + "/healthz"],
        name="event intake",
        startup_timeout=30,
    ):
        yield url


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(url, json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def stats(base_url: str) -> dict[str, Any]:
    return requests.get(base_url + "/_standin/stats", timeout=10).json()["events"]


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {WAIT} s: {what}")


def inbox(warehouse_url: str) -> list[tuple]:
    with psycopg.connect(warehouse_url) as conn:
        return conn.execute(
            "select source_id, entity, record_id, version, change_kind, event_time, event_id"
            " from ops.event_inbox order by inbox_id"
        ).fetchall()


def changed_records(connection: dict[str, Any], path: str = "st-tasks") -> list[dict[str, Any]]:
    """The records the registry serves as changed, through its API like a sync would."""
    base = connection["host"]
    form = {"grant_type": "client_credentials"}
    auth = (connection["login"], connection["password"])
    token = requests.post(base + "/oauth/token", data=form, auth=auth, timeout=10).json()
    response = requests.get(
        f"{base}/v1/{path}",
        params={"updated_since": CHANGED_SINCE},
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def expected_rows(records: list[dict[str, Any]]) -> list[tuple]:
    return [
        (
            NB,
            "st_task",
            r["id"],
            r["version"],
            "delete" if r["deleted"] else "upsert",
            datetime.fromisoformat(r["updated_at"]),
        )
        for r in records
    ]


def test_a_change_in_a_registry_is_an_event_in_the_inbox(
    warehouse_url, catalogue, sources, tmp_path
):
    secrets = {NB: new_signing_secret()}
    port = free_loopback_port()
    target = EventTarget(f"http://127.0.0.1:{port}", secrets)
    with (
        intake(port, warehouse_url, catalogue, sources, secrets),
        run_standins(sources, tmp_path / "drops", STANDINS, events=target) as connections,
    ):
        base = connections["nb"]["host"]
        assert stats(base) == {
            "subscription": NB_SUBSCRIPTION,
            "delivered": 0,
            "pending": 0,
            "refused": 0,
            "retries": 0,
            "last_error": None,
        }
        changed = post(base + "/_standin/changes", {"update": 3, "delete": 1, "entity": "st_task"})
        wait_for(lambda: stats(base)["delivered"] == 4, "4 events delivered")
        records = changed_records(connections["nb"])

    assert [r["id"] for r in records] == changed["updated"] + changed["deleted"]
    rows = inbox(warehouse_url)
    assert [row[:6] for row in rows] == expected_rows(records)
    assert len({row[6] for row in rows}) == 4
    assert [row[3] for row in rows] == [r["version"] for r in records] and records[0]["version"] > 1


def test_events_made_while_the_intake_is_down_arrive_once_it_is_up(
    warehouse_url, catalogue, sources, tmp_path
):
    secrets = {NB: new_signing_secret()}
    port = free_loopback_port()
    target = EventTarget(f"http://127.0.0.1:{port}", secrets)
    with run_standins(sources, tmp_path / "drops", STANDINS, events=target) as connections:
        base = connections["nb"]["host"]
        post(base + "/_standin/changes", {"update": 2, "delete": 1})
        down = wait_for(lambda: (s := stats(base))["retries"] >= 2 and s, "retries")
        assert (down["delivered"], down["pending"], down["refused"]) == (0, 3, 0)
        assert "ConnectionError" in down["last_error"]

        with intake(port, warehouse_url, catalogue, sources, secrets):
            up = wait_for(lambda: (s := stats(base))["pending"] == 0 and s, "events delivered")
            records = changed_records(connections["nb"])
            time.sleep(0.3)  # room for a stray re-send to show up
            rows = inbox(warehouse_url)

    assert (up["delivered"], up["refused"], up["last_error"]) == (3, 0, None)
    assert [row[:6] for row in rows] == expected_rows(records)
    assert len({row[6] for row in rows}) == len({row[2] for row in rows}) == 3


def test_a_wrong_secret_is_refused_counted_and_stores_nothing(warehouse_url, catalogue, sources):
    port = free_loopback_port()
    # The single-registry mode (run_registry) is registry ninh_binh, keyed by registry id.
    target = EventTarget(
        f"http://127.0.0.1:{port}",
        {"ninh_binh": new_signing_secret()},
        {"ninh_binh": NB_SUBSCRIPTION},
    )
    with (
        intake(port, warehouse_url, catalogue, sources, {NB: new_signing_secret()}),
        run_registry(records=50, events=target) as registry,
    ):
        post(registry.base_url + "/_standin/changes", {"update": 2})
        done = wait_for(lambda: (s := stats(registry.base_url))["pending"] == 0 and s, "refusals")
    assert (done["delivered"], done["refused"]) == (0, 2)
    assert "HTTP 401" in done["last_error"]
    assert inbox(warehouse_url) == []


def test_without_an_intake_no_events_are_sent():
    with run_registry(records=20) as registry:
        post(registry.base_url + "/_standin/changes", {"update": 1})
        assert stats(registry.base_url) is None


def test_signing_secrets_are_fresh_and_never_on_the_command_line():
    first, second = new_signing_secret(), new_signing_secret()
    assert first.startswith("whsec_") and first != second
    Webhook(first)  # a valid Standard Webhooks secret
    target = EventTarget("http://127.0.0.1:9", {"ninh_binh": first}, {"ninh_binh": "nb"})
    arguments, env = _events(["ninh_binh"], target)
    assert first not in " ".join(arguments) and first not in repr(target)
    assert env == {"STANDIN_REGISTRY_EVENTS_SECRET_NINH_BINH": first}
    with pytest.raises(ValueError, match="subscription"):
        _events(["ninh_binh"], EventTarget("http://127.0.0.1:9", {"ninh_binh": first}))
