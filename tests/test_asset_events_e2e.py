"""A change event triggers its sync DAG in a running Airflow: `airflow standalone` (API server,
scheduler, DAG processor, triggerer) on a migrated metadata DB, the event posted the way a
registry's notifier would, through Airflow's REST API (`POST /api/v2/assets/events` with a JWT),
against the stand-in registry and a real PostgreSQL."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest
import requests
from airflow_standalone import ASSET_URI, CATALOGUE, DAG_ID, Standalone, airflow_standalone

from local.airflow_env import connection_env
from local.registry.process import run_registry

pytestmark = pytest.mark.e2e


def test_a_change_event_posted_to_the_api_runs_the_sync_dag(warehouse_url):
    with (
        tempfile.TemporaryDirectory(prefix="sti-airflow-events-") as folder,
        run_registry(records=120, bad_share=0.05, seed=11) as registry,
    ):
        env = connection_env(warehouse_url, {"ninh_binh_registry": registry})
        with airflow_standalone(Path(folder), CATALOGUE, env) as airflow:
            _run_scenario(airflow, warehouse_url)


def _run_scenario(airflow: Standalone, warehouse_url: str) -> None:
    base = airflow.base
    token = requests.get(f"{base}/auth/token", timeout=30).json()["access_token"]

    def dag_parsed():
        reply = airflow.get(f"/api/v2/dags/{DAG_ID}", token)
        return reply is not None and reply.status_code == 200

    airflow.wait_for("the DAG to be parsed", dag_parsed, 180)
    headers = {"Authorization": f"Bearer {token}"}
    requests.patch(
        f"{base}/api/v2/dags/{DAG_ID}", json={"is_paused": False}, headers=headers, timeout=30
    ).raise_for_status()

    def asset_id():
        reply = airflow.get("/api/v2/assets", token, params={"uri_pattern": ASSET_URI})
        assets = [] if reply is None or reply.status_code != 200 else reply.json()["assets"]
        return next((a["id"] for a in assets if a["uri"] == ASSET_URI), None)

    asset = airflow.wait_for("the change-event asset", asset_id, 60)
    event = requests.post(
        f"{base}/api/v2/assets/events",
        json={"asset_id": asset, "extra": {"subscription": "ninh-binh-registry"}},
        headers=headers,
        timeout=30,
    )
    assert event.status_code == 200, event.text

    def finished_run():
        reply = airflow.get(f"/api/v2/dags/{DAG_ID}/dagRuns", token)
        runs = [] if reply is None or reply.status_code != 200 else reply.json()["dag_runs"]
        done = [r for r in runs if r["state"] in ("success", "failed")]
        return runs if done else None

    [run] = airflow.wait_for("the triggered DAG run", finished_run, 300)
    assert run["run_type"] == "asset_triggered", run
    assert run["state"] == "success", airflow.tail()
    with psycopg.connect(warehouse_url) as conn:
        batches = conn.execute("select state, records_landed from ops.load_batch").fetchall()
    assert batches == [("published", 120)]
