"""Airflow's UI on the local stack: warehouse, stand-in sources and Airflow's components.

Runs in the foreground until Ctrl-C, then stops everything it started. Uses the same
AIRFLOW_HOME and metadata DB as the demo, so the demo's runs are there to look at.
"""

from __future__ import annotations

import os
import signal
import time

from connectors.catalogue import host_pools, load_catalogue
from local.airflow_env import connection_env
from local.airflow_stack import ADMIN, airflow_stack, executor_from_environment
from local.demo import AIRFLOW_HOME, DROPS_ROOT
from local.standins import run_standins
from local.warehouse import local_server, resolve_airflow_metadata_url, resolve_warehouse_url

PORT = int(os.environ.get("AIRFLOW_UI_PORT", "8080"))


def _interrupt(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one must not cut the clean-up
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C does
    embedded = not os.environ.get("WAREHOUSE_URL")
    warehouse_url = resolve_warehouse_url()
    sources = load_catalogue()
    try:
        with run_standins(sources, DROPS_ROOT) as standins:
            env = {**connection_env(warehouse_url, standins), "WAREHOUSE_URL": warehouse_url}
            metadata_url = resolve_airflow_metadata_url(warehouse_url)
            with airflow_stack(
                AIRFLOW_HOME,
                metadata_url,
                env,
                host_pools(sources),
                port=PORT,
                **executor_from_environment(),
            ) as airflow:
                print(
                    f"Airflow UI: http://localhost:{PORT}  user {ADMIN}, password in"
                    f" {airflow.home / 'passwords.json'}  (Ctrl-C stops all)",
                    flush=True,
                )
                try:
                    while True:
                        airflow.check_running()
                        time.sleep(2)
                except KeyboardInterrupt:
                    pass
    finally:
        if embedded:
            local_server().stop()
    return 0
