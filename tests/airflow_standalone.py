"""A real `airflow standalone` (API server, scheduler, DAG processor, triggerer) for e2e tests,
on a migrated metadata DB in a temporary home, with its own source catalogue."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

from connectors.catalogue import host_pools, load_catalogue
from local.airflow_env import AIRFLOW_BIN, airflow_settings, migrate_metadata_db
from local.airflow_stack import ensure_pools

T = TypeVar("T")

# One registry entity, with change events. The safety-net cron has had no occurrence since the
# DAGs' start date (29 February 2028 is the next), so unpausing creates no scheduled run: the
# only runs are those the events trigger.
DAG_ID = "ninh_binh_registry__st_task"
ASSET_URI = "sti://ninh_binh_registry/st_task"
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Standalone:
    base: str  # the API server, http://127.0.0.1:<port>
    process: subprocess.Popen
    log: Path
    home: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float) -> T:
        """`check()`'s first truthy result, polled every second; fails with the log's tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"airflow exited while waiting for {what}:\n{self.tail()}")
            result = check()
            if result:
                return result
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.tail()}")

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response | None:
        """GET on the API, or None while it is not up yet or too busy to answer."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            return requests.get(self.base + path, headers=headers, timeout=30, **kwargs)
        except (requests.ConnectionError, requests.Timeout):
            return None


@contextmanager
def airflow_standalone(
    home: Path,
    catalogue: str,
    env: Mapping[str, str],
    settings: Mapping[str, str] | None = None,
) -> Iterator[Standalone]:
    """Start `airflow standalone` with the DAGs of `catalogue` (sources.yml text), `env` (e.g.
    connections) and `settings` over the defaults (all users admins, a fast scheduler); yield
    once its API answers; stop its whole process group on exit."""
    path = home / "sources.yml"
    path.write_text(catalogue, encoding="utf-8")
    port = free_port()
    settings = {
        **airflow_settings(home),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "STI_SOURCE_CATALOGUE": str(path),
        **(settings or {}),
    }
    migrate_metadata_db(settings)
    ensure_pools(settings, host_pools(load_catalogue(path)))  # the extraction tasks' pools
    log = home / "standalone.log"
    full_env = {
        **os.environ,
        **settings,
        **env,
        "PATH": f"{AIRFLOW_BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(AIRFLOW_BIN), "standalone"],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    airflow = Standalone(f"http://127.0.0.1:{port}", process, log, home)
    try:

        def healthy() -> bool:
            reply = airflow.get("/api/v2/monitor/health")
            return reply is not None and reply.status_code == 200

        airflow.wait_for("the API server", healthy, 180)
        yield airflow
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
