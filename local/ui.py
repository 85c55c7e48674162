"""Airflow's UI on the local stack: warehouse, stand-in sources and `airflow standalone`.

Runs in the foreground until Ctrl-C, then stops everything it started. Uses the same
AIRFLOW_HOME as the demo, so the demo's runs are there to look at.
"""

from __future__ import annotations

import os
import signal
import subprocess

from connectors.catalogue import load_catalogue
from local.airflow_env import AIRFLOW_BIN, airflow_settings, connection_env, migrate_metadata_db
from local.demo import AIRFLOW_HOME, DROPS_ROOT
from local.standins import run_standins
from local.warehouse import local_server, resolve_warehouse_url

PORT = os.environ.get("AIRFLOW_UI_PORT", "8080")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C does
    embedded = not os.environ.get("WAREHOUSE_URL")
    warehouse_url = resolve_warehouse_url()
    settings = {
        **airflow_settings(AIRFLOW_HOME),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": PORT,
        # A single-user local stack: no login screen.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }
    migrate_metadata_db(settings)
    try:
        with run_standins(load_catalogue(), DROPS_ROOT) as standins:
            connections = connection_env(warehouse_url, standins)
            print(f"Airflow UI: http://localhost:{PORT}  (Ctrl-C stops all)")
            airflow = subprocess.Popen(
                [str(AIRFLOW_BIN), "standalone"],
                # standalone starts its components as `airflow ...` from PATH
                env={
                    **os.environ,
                    **settings,
                    **connections,
                    "PATH": f"{AIRFLOW_BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
                },
                start_new_session=True,
            )
            try:
                airflow.wait()
            except KeyboardInterrupt:
                pass
            finally:
                if airflow.poll() is None:
                    os.killpg(airflow.pid, signal.SIGTERM)
                    try:
                        airflow.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        os.killpg(airflow.pid, signal.SIGKILL)
    finally:
        if embedded:
            local_server().stop()
    return 0
