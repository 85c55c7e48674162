"""A change event triggers its sync DAG in a running Airflow: `airflow standalone` (API server,
scheduler, DAG processor, triggerer) on a migrated metadata DB, the event posted the way a
registry's notifier would, through Airflow's REST API (`POST /api/v2/assets/events` with a JWT),
against the stand-in registry and a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import requests

from local.airflow_env import AIRFLOW_BIN, airflow_settings, connection_env, migrate_metadata_db
from local.registry.process import run_registry

pytestmark = pytest.mark.e2e

DAG_ID = "ninh_binh_registry__st_task"
ASSET_URI = "sti://ninh_binh_registry/st_task"
# The safety-net cron has had no occurrence since the DAGs' start date (29 February 2028 is the
# next), so unpausing creates no scheduled run: the only run is the event's.
CATALOGUE = """\
sources:
  - id: ninh_binh_registry
    name: Ninh Bình provincial STI registry
    province_code: "37"
    system: registry
    contract: registry-api-v1
    connection_id: ninh_binh_registry
    entities: [st_task]
    schedule: "0 3 29 2 *"
    owner: so-khcn-ninh-binh
    events: {subscription: ninh-binh-registry, signing_secret: ninh_binh_registry_events}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(what: str, check, timeout: float, airflow: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if airflow.poll() is not None:
            raise AssertionError(f"airflow exited while waiting for {what}:\n{_tail(log)}")
        result = check()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def _get(url: str, token: str | None = None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return requests.get(url, headers=headers, timeout=30, **kwargs)
    except (requests.ConnectionError, requests.Timeout):  # not up yet, or busy: ask again
        return None


def test_a_change_event_posted_to_the_api_runs_the_sync_dag(warehouse_url):
    with tempfile.TemporaryDirectory(prefix="sti-airflow-events-") as folder:
        home = Path(folder)
        catalogue = home / "sources.yml"
        catalogue.write_text(CATALOGUE, encoding="utf-8")
        port = _free_port()
        settings = {
            **airflow_settings(home),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "STI_SOURCE_CATALOGUE": str(catalogue),
        }
        migrate_metadata_db(settings)
        base = f"http://127.0.0.1:{port}"
        log = home / "standalone.log"
        with run_registry(records=120, bad_share=0.05, seed=11) as registry:
            env = {
                **os.environ,
                **settings,
                **connection_env(warehouse_url, {"ninh_binh_registry": registry}),
                "PATH": f"{AIRFLOW_BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            }
            with log.open("wb") as out:
                airflow = subprocess.Popen(
                    [str(AIRFLOW_BIN), "standalone"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                _run_scenario(base, airflow, log, warehouse_url)
            finally:
                os.killpg(airflow.pid, signal.SIGTERM)
                try:
                    airflow.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(airflow.pid, signal.SIGKILL)
                    airflow.wait()


def _run_scenario(base: str, airflow: subprocess.Popen, log: Path, warehouse_url: str) -> None:
    def healthy():
        reply = _get(f"{base}/api/v2/monitor/health")
        return reply is not None and reply.status_code == 200

    _wait_for("the API server", healthy, 180, airflow, log)
    token = requests.get(f"{base}/auth/token", timeout=30).json()["access_token"]

    def dag_parsed():
        reply = _get(f"{base}/api/v2/dags/{DAG_ID}", token)
        return reply is not None and reply.status_code == 200

    _wait_for("the DAG to be parsed", dag_parsed, 180, airflow, log)
    headers = {"Authorization": f"Bearer {token}"}
    requests.patch(
        f"{base}/api/v2/dags/{DAG_ID}", json={"is_paused": False}, headers=headers, timeout=30
    ).raise_for_status()

    def asset_id():
        reply = _get(f"{base}/api/v2/assets", token, params={"uri_pattern": ASSET_URI})
        assets = [] if reply is None or reply.status_code != 200 else reply.json()["assets"]
        return next((a["id"] for a in assets if a["uri"] == ASSET_URI), None)

    asset = _wait_for("the change-event asset", asset_id, 60, airflow, log)
    event = requests.post(
        f"{base}/api/v2/assets/events",
        json={"asset_id": asset, "extra": {"subscription": "ninh-binh-registry"}},
        headers=headers,
        timeout=30,
    )
    assert event.status_code == 200, event.text

    def finished_run():
        reply = _get(f"{base}/api/v2/dags/{DAG_ID}/dagRuns", token)
        runs = [] if reply is None or reply.status_code != 200 else reply.json()["dag_runs"]
        done = [r for r in runs if r["state"] in ("success", "failed")]
        return runs if done else None

    [run] = _wait_for("the triggered DAG run", finished_run, 300, airflow, log)
    assert run["run_type"] == "asset_triggered", run
    assert run["state"] == "success", _tail(log)
    with psycopg.connect(warehouse_url) as conn:
        batches = conn.execute("select state, records_landed from ops.load_batch").fetchall()
    assert batches == [("published", 120)]
